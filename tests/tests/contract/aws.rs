//! The contract suite on the AWS adapters, against a moto server (see
//! `tests/support/moto.rs`): a fresh DynamoDB table and S3 bucket per test, a fresh FIFO
//! queue per queue handle.

use crate::Backend;
use async_trait::async_trait;
use kefu::adapters::aws::{DynamoStore, S3BlobStore, SqsMessageQueue, provision};
use kefu::ports::{
    AgentDirectory, BlobStore, ConversationStore, IdempotencyGuard, Leases, MessageQueue, WorkQueue,
};
use std::sync::Arc;

#[path = "../support/moto.rs"]
mod moto;

/// The adapters over one table and one bucket on moto.
struct Aws {
    store: DynamoStore,
    blobs: S3BlobStore,
}

impl Aws {
    async fn new() -> anyhow::Result<Self> {
        Ok(Self {
            store: moto::fresh_store().await,
            blobs: moto::fresh_blob_store("contract/").await,
        })
    }
}

#[async_trait]
impl Backend for Aws {
    async fn queue(&self) -> anyhow::Result<Arc<dyn MessageQueue>> {
        Ok(Arc::new(moto::fresh_queue().await))
    }

    async fn queue_with_dead_letters(
        &self,
        max_attempts: u32,
    ) -> anyhow::Result<(Arc<dyn MessageQueue>, Arc<dyn MessageQueue>)> {
        let client = aws_sdk_sqs::Client::new(&moto::aws_config().await);
        let name = moto::unique_name();
        // As in template.yaml: the redrive policy counts every receive, so it is only a
        // high backstop; the adapter counts attempts in the idempotency table.
        let (url, dead_letter_url) = provision::create_fifo_queue_with_dead_letters(
            &client,
            &format!("{name}.fifo"),
            &format!("{name}-dlq.fifo"),
            100,
        )
        .await?;
        let queue = SqsMessageQueue::new(client.clone(), url).with_dead_letters(
            dead_letter_url.clone(),
            max_attempts,
            Arc::new(self.store.clone()),
        );
        Ok((
            Arc::new(queue),
            Arc::new(SqsMessageQueue::new(client, dead_letter_url)),
        ))
    }

    async fn conversation_store(&self) -> anyhow::Result<Arc<dyn ConversationStore>> {
        Ok(Arc::new(self.store.clone()))
    }

    async fn work_queue(&self) -> anyhow::Result<Arc<dyn WorkQueue>> {
        Ok(Arc::new(self.store.clone()))
    }

    async fn idempotency_guard(&self) -> anyhow::Result<Arc<dyn IdempotencyGuard>> {
        Ok(Arc::new(self.store.clone()))
    }

    async fn blob_store(&self) -> anyhow::Result<Arc<dyn BlobStore>> {
        Ok(Arc::new(self.blobs.clone()))
    }

    async fn leases(&self) -> anyhow::Result<Arc<dyn Leases>> {
        Ok(Arc::new(self.store.clone()))
    }

    async fn agent_directory(&self) -> anyhow::Result<Arc<dyn AgentDirectory>> {
        Ok(Arc::new(self.store.clone()))
    }
}

contract_suite!(Aws::new().await?);
