//! [`BlobStore`] on plain files: `<dir>/blobs/<key>`, written atomically.

use crate::ports::BlobStore;
use crate::{Error, Result};
use async_trait::async_trait;
use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// S3's limit on key length, kept so that keys work on both adapters.
const MAX_KEY_BYTES: usize = 1024;

/// Blobs as files under one directory. A put writes a temporary file, syncs it, and renames
/// it into place, so readers see the old or the new blob, never half of one, and a crash
/// leaves no partial blob. Keys are `/`-separated relative paths without `.` or `..`
/// segments. A key cannot also be a prefix directory of another key (`a` beside `a/b`).
/// Cheap to clone.
#[derive(Clone)]
pub struct FileBlobStore {
    dirs: Arc<Dirs>,
}

struct Dirs {
    /// Where blobs live.
    root: PathBuf,
    /// Where puts stage their temporary files: beside `root`, so a rename never crosses
    /// file systems and listings never see a half-written file.
    staging: PathBuf,
}

impl FileBlobStore {
    /// Opens the store in `dir` (creating `dir/blobs`), dropping temporary files a crash
    /// left behind. Blocking.
    pub(super) fn open(dir: &Path) -> Result<Self> {
        let dirs = Dirs {
            root: dir.join("blobs"),
            staging: dir.join("blobs-staging"),
        };
        fs::create_dir_all(&dirs.root).map_err(|e| io_error("create blob directory", e))?;
        match fs::remove_dir_all(&dirs.staging) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(io_error("clear blob staging directory", e)),
        }
        fs::create_dir_all(&dirs.staging)
            .map_err(|e| io_error("create blob staging directory", e))?;
        Ok(Self {
            dirs: Arc::new(dirs),
        })
    }
}

#[async_trait]
impl BlobStore for FileBlobStore {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<()> {
        check_key(key)?;
        let dirs = self.dirs.clone();
        let key = key.to_owned();
        blocking("write blob", move || write_atomically(&dirs, &key, &bytes)).await
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        check_key(key)?;
        match tokio::fs::read(self.dirs.root.join(key)).await {
            Ok(bytes) => Ok(Some(bytes)),
            // A directory is only the prefix of other keys, not a blob.
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::IsADirectory) => Ok(None),
            Err(e) => Err(io_error("read blob", e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        // Walk only the directory the prefix's complete segments name.
        let (dir_part, _) = prefix.rsplit_once('/').unwrap_or(("", prefix));
        if !dir_part.is_empty() {
            check_key(dir_part)?;
        }
        let dirs = self.dirs.clone();
        let prefix = prefix.to_owned();
        let dir_part = dir_part.to_owned();
        blocking("list blobs", move || {
            let mut keys = Vec::new();
            collect_keys(&dirs.root.join(&dir_part), &dir_part, &mut keys)?;
            keys.retain(|key| key.starts_with(&prefix));
            keys.sort();
            Ok(keys)
        })
        .await
    }
}

/// Stage, sync, rename, then sync the directories so the rename itself is durable.
fn write_atomically(dirs: &Dirs, key: &str, bytes: &[u8]) -> Result<()> {
    let target = dirs.root.join(key);
    let parent = target.parent().unwrap_or(&dirs.root);
    fs::create_dir_all(parent).map_err(|e| io_error("create blob directory", e))?;
    let staged = dirs.staging.join(uuid::Uuid::new_v4().simple().to_string());
    let written = (|| {
        let mut file = File::create(&staged)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&staged, &target)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&staged);
        return Err(io_error("write blob", e));
    }
    // New directories on the way need their own entries synced too.
    for dir in parent.ancestors().take_while(|d| d.starts_with(&dirs.root)) {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_error("sync blob directory", e))?;
    }
    Ok(())
}

/// Appends the keys of every file under `dir` (whose key prefix is `key_dir`) to `keys`.
fn collect_keys(dir: &Path, key_dir: &str, keys: &mut Vec<String>) -> Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
            return Ok(());
        }
        Err(e) => return Err(io_error("list blobs", e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| io_error("list blobs", e))?;
        let Ok(name) = entry.file_name().into_string() else {
            tracing::warn!(path = %entry.path().display(), "non-UTF-8 blob file name skipped");
            continue;
        };
        let key = if key_dir.is_empty() {
            name
        } else {
            format!("{key_dir}/{name}")
        };
        let kind = entry.file_type().map_err(|e| io_error("list blobs", e))?;
        if kind.is_dir() {
            collect_keys(&entry.path(), &key, keys)?;
        } else if kind.is_file() {
            keys.push(key);
        }
    }
    Ok(())
}

/// Keys are relative `/`-separated paths that cannot leave the blob directory.
fn check_key(key: &str) -> Result<()> {
    let reason = if key.is_empty() {
        Some("is empty")
    } else if key.len() > MAX_KEY_BYTES {
        Some("is too long")
    } else if key.contains(['\\', '\0']) {
        Some("contains a backslash or NUL")
    } else if key
        .split('/')
        .any(|segment| segment.is_empty() || segment == "." || segment == "..")
    {
        Some("has an empty, `.` or `..` segment, or starts or ends with `/`")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::Invalid(format!("blob key {reason}"))),
        None => Ok(()),
    }
}

async fn blocking<T: Send + 'static>(
    what: &'static str,
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::backend(what, e))?
}

fn io_error(what: &str, e: std::io::Error) -> Error {
    Error::backend(what, e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, FileBlobStore) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = FileBlobStore::open(dir.path()).expect("open blobs");
        (dir, store)
    }

    #[tokio::test]
    async fn given_keys_that_escape_or_are_malformed_when_used_then_invalid() {
        let (dir, store) = store();
        for key in [
            "",
            "../x",
            "a/../../x",
            "/etc/passwd",
            "a//b",
            "a/./b",
            "a/",
            "a\\b",
        ] {
            let put = store.put(key, b"x".to_vec()).await;
            assert!(matches!(put, Err(Error::Invalid(_))), "put {key:?}");
            assert!(
                matches!(store.get(key).await, Err(Error::Invalid(_))),
                "get {key:?}"
            );
        }
        assert!(matches!(store.list("../").await, Err(Error::Invalid(_))));
        assert!(!dir.path().join("x").exists());
    }

    #[tokio::test]
    async fn given_a_put_when_done_then_no_staging_file_is_left_and_the_blob_is_whole() {
        let (dir, store) = store();

        store.put("faq/index/v1", vec![7; 10_000]).await.unwrap();

        assert_eq!(
            store.get("faq/index/v1").await.unwrap(),
            Some(vec![7; 10_000])
        );
        let staged = fs::read_dir(dir.path().join("blobs-staging"))
            .unwrap()
            .count();
        assert_eq!(staged, 0);
        assert_eq!(store.list("faq/").await.unwrap(), ["faq/index/v1"]);
    }

    #[tokio::test]
    async fn given_a_crash_left_a_staging_file_when_reopened_then_it_is_removed_and_unlisted() {
        let (dir, _store) = store();
        fs::write(dir.path().join("blobs-staging/leftover"), b"half").unwrap();

        let reopened = FileBlobStore::open(dir.path()).unwrap();

        assert!(!dir.path().join("blobs-staging/leftover").exists());
        assert!(reopened.list("").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn given_a_key_that_is_a_prefix_directory_when_read_then_absent() {
        let (_dir, store) = store();
        store.put("a/b", b"x".to_vec()).await.unwrap();

        assert_eq!(store.get("a").await.unwrap(), None);
        assert_eq!(store.list("a").await.unwrap(), ["a/b"]);
    }
}
