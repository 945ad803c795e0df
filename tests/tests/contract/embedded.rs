//! The contract suite on the embedded adapters: SQLite and files in a fresh temporary
//! directory per test.

use crate::Backend;
use crate::support::unique;
use async_trait::async_trait;
use kefu::adapters::embedded::EmbeddedStore;
use kefu::ports::{
    AgentDirectory, BlobStore, ConversationStore, IdempotencyGuard, Leases, MessageQueue, WorkQueue,
};
use std::sync::Arc;
use tempfile::TempDir;

/// An [`EmbeddedStore`] in a directory that is removed when the test ends.
struct Embedded {
    store: EmbeddedStore,
    _dir: TempDir,
}

impl Embedded {
    fn new() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        Ok(Self {
            store: EmbeddedStore::open(dir.path())?,
            _dir: dir,
        })
    }
}

#[async_trait]
impl Backend for Embedded {
    async fn queue(&self) -> anyhow::Result<Arc<dyn MessageQueue>> {
        Ok(Arc::new(self.store.queue(&unique("queue-"))))
    }

    async fn queue_with_dead_letters(
        &self,
        max_attempts: u32,
    ) -> anyhow::Result<(Arc<dyn MessageQueue>, Arc<dyn MessageQueue>)> {
        let name = unique("queue-");
        Ok((
            Arc::new(self.store.queue(&name).with_max_receives(max_attempts)),
            Arc::new(self.store.dead_letter_queue(&name)),
        ))
    }

    async fn conversation_store(&self) -> anyhow::Result<Arc<dyn ConversationStore>> {
        Ok(Arc::new(self.store.conversations()))
    }

    async fn work_queue(&self) -> anyhow::Result<Arc<dyn WorkQueue>> {
        Ok(Arc::new(self.store.conversations()))
    }

    async fn idempotency_guard(&self) -> anyhow::Result<Arc<dyn IdempotencyGuard>> {
        Ok(Arc::new(self.store.idempotency()))
    }

    async fn blob_store(&self) -> anyhow::Result<Arc<dyn BlobStore>> {
        Ok(Arc::new(self.store.blobs()))
    }

    async fn leases(&self) -> anyhow::Result<Arc<dyn Leases>> {
        Ok(Arc::new(self.store.leases()))
    }

    async fn agent_directory(&self) -> anyhow::Result<Arc<dyn AgentDirectory>> {
        Ok(Arc::new(self.store.agents()))
    }
}

contract_suite!(Embedded::new()?);
