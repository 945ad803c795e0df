//! The SQLite database behind the embedded adapters: opening, pragmas, and running work off
//! the async runtime.
//!
//! Writes go through one writer connection behind an async mutex, so writers in this process
//! queue up in the runtime instead of fighting over SQLite's lock (no "database is locked").
//! Every write is a `BEGIN IMMEDIATE` transaction and every connection has a busy timeout, so
//! another process on the same file (a CLI tool beside the local runner) waits its turn too.
//! Reads use a small pool of connections that WAL lets run beside the writer.

use super::schema;
use crate::{Error, Result};
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::Semaphore;

/// File name of the database inside the store's directory.
const DB_FILE: &str = "kefu.db";
/// How long a connection waits for another process's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Read connections open at most at once.
const READERS: usize = 4;

/// Adds what was being done to a SQLite error.
pub(super) trait SqlContext<T> {
    /// Maps the error to [`Error::Backend`] with `what` as context.
    fn context(self, what: &str) -> Result<T>;
}

impl<T> SqlContext<T> for rusqlite::Result<T> {
    fn context(self, what: &str) -> Result<T> {
        self.map_err(|e| Error::backend(format!("sqlite: {what}"), e))
    }
}

/// The database: one writer connection, a pool of readers.
pub(super) struct Db {
    path: PathBuf,
    writer: Arc<tokio::sync::Mutex<Connection>>,
    readers: Arc<ReaderPool>,
}

struct ReaderPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
}

impl Db {
    /// Opens (creating if needed) the database in `dir` and brings its schema up to date.
    /// Blocking: call at start-up, not on a busy runtime thread.
    pub(super) fn open(dir: &Path) -> Result<Self> {
        let path = dir.join(DB_FILE);
        owner_only(&path)?;
        let mut writer = connect(&path)?;
        // WAL is a property of the file: set once, it stays.
        let mode: String = writer
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .context("enable WAL")?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::backend(
                "sqlite: enable WAL",
                format!("journal mode stayed {mode}"),
            ));
        }
        schema::migrate(&mut writer)?;
        Ok(Self {
            readers: Arc::new(ReaderPool {
                path: path.clone(),
                idle: Mutex::new(Vec::new()),
                permits: Arc::new(Semaphore::new(READERS)),
            }),
            writer: Arc::new(tokio::sync::Mutex::new(writer)),
            path,
        })
    }

    /// The database file.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `work` in one `BEGIN IMMEDIATE` transaction on a blocking thread; commits when it
    /// returns `Ok`, rolls back when it returns `Err`.
    pub(super) async fn write<T, F>(&self, what: &'static str, work: F) -> Result<T>
    where
        F: FnOnce(&Transaction<'_>) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let mut conn = self.writer.clone().lock_owned().await;
        // The guard moves into the closure: if the caller is cancelled, the transaction still
        // finishes (or rolls back) before the connection is handed to the next writer.
        tokio::task::spawn_blocking(move || {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .context(what)?;
            let out = work(&tx)?;
            tx.commit().context(what)?;
            Ok(out)
        })
        .await
        .map_err(|e| Error::backend(format!("sqlite: {what}"), e))?
    }

    /// Runs `work` on a read connection on a blocking thread.
    pub(super) async fn read<T, F>(&self, what: &'static str, work: F) -> Result<T>
    where
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.readers.clone();
        let permit = pool
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| Error::backend(format!("sqlite: {what}"), e))?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let idle = pool
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            let conn = match idle {
                Some(conn) => conn,
                None => {
                    let conn = connect(&pool.path)?;
                    conn.execute_batch("PRAGMA query_only = ON;")
                        .context("open reader")?;
                    conn
                }
            };
            let out = work(&conn);
            pool.idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(conn);
            out
        })
        .await
        .map_err(|e| Error::backend(format!("sqlite: {what}"), e))?
    }
}

/// Creates the database file readable and writable only by its owner (or narrows an
/// existing one to that) before SQLite opens it: it holds every conversation, and SQLite
/// gives its `-wal` and `-shm` files the database file's permissions.
fn owner_only(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let io =
            |e: std::io::Error| Error::backend(format!("sqlite: restrict {}", path.display()), e);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
        let mode = file.metadata().map_err(io)?.permissions().mode();
        if mode & 0o077 != 0 {
            file.set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(io)?;
            // Left by an older version with the old permissions.
            for suffix in ["-wal", "-shm"] {
                let mut side = path.as_os_str().to_owned();
                side.push(suffix);
                if std::fs::exists(&side).unwrap_or(false) {
                    std::fs::set_permissions(&side, std::fs::Permissions::from_mode(0o600))
                        .map_err(io)?;
                }
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Opens a connection with the settings every connection needs.
fn connect(path: &Path) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).context("open database")?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .context("set busy timeout")?;
    // FULL: a commit is on disk when it returns (WAL's default NORMAL may lose the last
    // commits on power loss, and "acknowledged" must mean durable).
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
        .context("set pragmas")?;
    Ok(conn)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[tokio::test]
    async fn given_a_new_data_dir_when_the_database_is_created_then_only_its_owner_can_read_it() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        db.write("touch", |tx| {
            tx.execute_batch("CREATE TABLE IF NOT EXISTS t (x)")
                .context("create")
        })
        .await
        .unwrap();
        for name in [DB_FILE, "kefu.db-wal", "kefu.db-shm"] {
            let path = dir.path().join(name);
            let Ok(meta) = std::fs::metadata(&path) else {
                assert_ne!(name, DB_FILE, "the database exists");
                continue;
            };
            assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{name}");
        }
    }
}
