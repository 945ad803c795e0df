//! Embedded adapters: every port on one SQLite database plus a directory of blob files, for
//! the local runner and fast tests. Durable and crash-safe: WAL with `synchronous = FULL`
//! (a commit that returned is on disk), writes in `BEGIN IMMEDIATE` transactions, blobs
//! renamed into place after an fsync.
//!
//! Open one [`EmbeddedStore`] per directory and process, and take the port handles from it:
//!
//! ```no_run
//! # async fn demo() -> kefu::Result<()> {
//! use kefu::adapters::embedded::{EmbeddedStore, INBOUND};
//! use kefu::ports::MessageQueue;
//! use std::time::Duration;
//!
//! let store = EmbeddedStore::open(std::path::Path::new("/tmp/kefu"))?;
//! let inbound = store.queue(INBOUND);
//! let batch = inbound.receive(10, Duration::from_secs(30), Duration::from_secs(20)).await?;
//! # Ok(()) }
//! ```

mod agents;
mod blobs;
mod conversations;
mod db;
mod idempotency;
mod leases;
mod queue;
mod schema;

pub use agents::SqliteAgentDirectory;
pub use blobs::FileBlobStore;
pub use conversations::SqliteConversationStore;
pub use idempotency::SqliteIdempotencyGuard;
pub use leases::SqliteLeases;
pub use queue::{DEFAULT_MAX_RECEIVES, QueueDepth, SqliteMessageQueue};

use crate::domain::Millis;
use crate::{Error, Result};
use db::Db;
use queue::Signals;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Name of the queue of customer messages (ingress → bot).
pub const INBOUND: &str = "inbound";
/// Name of the queue of replies (bot and agents → dispatcher).
pub const OUTBOUND: &str = "outbound";

/// The embedded storage in one directory: `kefu.db` (SQLite) and `blobs/`. Cheap to clone;
/// every handle it gives out shares the same database.
#[derive(Clone)]
pub struct EmbeddedStore {
    dir: PathBuf,
    db: Arc<Db>,
    signals: Arc<Signals>,
    blobs: FileBlobStore,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl EmbeddedStore {
    /// Opens the store in `dir`, creating the directory, the database and its schema as
    /// needed, and migrating an older schema. Blocking: call it at start-up.
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::backend("create embedded store directory", e))?;
        let db = Db::open(dir)?;
        let blobs = FileBlobStore::open(dir)?;
        tracing::info!(path = %db.path().display(), schema = schema::VERSION, "embedded store open");
        Ok(Self {
            dir: dir.to_owned(),
            db: Arc::new(db),
            signals: Arc::default(),
            blobs,
        })
    }

    /// The directory the store lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The FIFO queue `name` (e.g. [`INBOUND`], [`OUTBOUND`]). Messages received more than
    /// [`DEFAULT_MAX_RECEIVES`] times move to its dead-letter queue `<name>-dlq`
    /// (see [`SqliteMessageQueue::with_max_receives`]).
    pub fn queue(&self, name: &str) -> SqliteMessageQueue {
        SqliteMessageQueue::new(self.db.clone(), &self.signals, name)
    }

    /// The dead-letter queue of queue `name`, to inspect poison messages (receive them like
    /// any message) or count them.
    pub fn dead_letter_queue(&self, name: &str) -> SqliteMessageQueue {
        SqliteMessageQueue::dead_letters_of(self.db.clone(), &self.signals, name)
    }

    /// Conversations and messages; also the agents' work queues.
    pub fn conversations(&self) -> SqliteConversationStore {
        SqliteConversationStore::new(self.db.clone())
    }

    /// Idempotency keys.
    pub fn idempotency(&self) -> SqliteIdempotencyGuard {
        SqliteIdempotencyGuard::new(self.db.clone())
    }

    /// Counted leases (concurrent long polls per visitor).
    pub fn leases(&self) -> SqliteLeases {
        SqliteLeases::new(self.db.clone())
    }

    /// Blobs (FAQ sources and index versions, raw email).
    pub fn blobs(&self) -> FileBlobStore {
        self.blobs.clone()
    }

    /// Local agent accounts.
    pub fn agents(&self) -> SqliteAgentDirectory {
        SqliteAgentDirectory::new(self.db.clone())
    }
}

/// A duration as [`Millis`], saturating.
fn millis(duration: Duration) -> Millis {
    Millis::try_from(duration.as_millis()).unwrap_or(Millis::MAX)
}

/// A `LIMIT` value: SQLite takes signed 64-bit integers.
fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
