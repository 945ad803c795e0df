//! Which blob store a command works on: the local runner's data directory (the default) or
//! an S3 bucket.

use anyhow::{Context, bail};
use kefu::adapters::aws::Aws;
use kefu::adapters::embedded::EmbeddedStore;
use kefu::ports::BlobStore;
use std::fmt;
use std::path::PathBuf;

/// `--bucket` / `--data-dir`, shared by the commands that read or write blobs.
#[derive(clap::Args, Debug)]
pub struct StoreArgs {
    /// S3 bucket (default: KEFU_BUCKET). AWS region and credentials come from the
    /// environment, as for the SDK.
    #[arg(long, value_name = "NAME", conflicts_with = "data_dir")]
    pub bucket: Option<String>,
    /// The local runner's data directory (default: KEFU_DATA_DIR, else ./.kefu).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

/// A resolved blob store location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An S3 bucket.
    Bucket(String),
    /// An embedded store directory.
    DataDir(PathBuf),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Bucket(bucket) => write!(f, "s3://{bucket}"),
            Target::DataDir(dir) => write!(f, "{}", dir.display()),
        }
    }
}

impl StoreArgs {
    /// A flag wins; else `KEFU_BUCKET` selects S3; else `KEFU_DATA_DIR` or `./.kefu`.
    pub fn target(&self) -> Target {
        self.resolve(
            kefu::config::optional("KEFU_BUCKET"),
            kefu::config::optional("KEFU_DATA_DIR"),
        )
    }

    fn resolve(&self, env_bucket: Option<String>, env_data_dir: Option<String>) -> Target {
        if let Some(bucket) = &self.bucket {
            return Target::Bucket(bucket.clone());
        }
        if let Some(dir) = &self.data_dir {
            return Target::DataDir(dir.clone());
        }
        match env_bucket {
            Some(bucket) => Target::Bucket(bucket),
            None => Target::DataDir(env_data_dir.unwrap_or_else(|| "./.kefu".into()).into()),
        }
    }
}

/// Whether a missing data directory may be created (publishing) or is a mistake (reading).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// Create it.
    Create,
    /// Fail with a hint.
    Fail,
}

/// Opens the blob store at `target`.
pub async fn open(target: &Target, missing: Missing) -> anyhow::Result<Box<dyn BlobStore>> {
    match target {
        Target::Bucket(bucket) => Ok(Box::new(Aws::from_env().await.blobs(bucket))),
        Target::DataDir(dir) => {
            if missing == Missing::Fail && !dir.is_dir() {
                bail!(
                    "{} does not exist: pass --data-dir (or set KEFU_DATA_DIR) to the local \
                     runner's data directory, or --bucket for S3",
                    dir.display()
                );
            }
            let dir = dir.clone();
            let store = tokio::task::spawn_blocking(move || {
                EmbeddedStore::open(&dir).with_context(|| format!("opening {}", dir.display()))
            })
            .await??;
            Ok(Box::new(store.blobs()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(bucket: Option<&str>, data_dir: Option<&str>) -> StoreArgs {
        StoreArgs {
            bucket: bucket.map(str::to_owned),
            data_dir: data_dir.map(PathBuf::from),
        }
    }

    #[test]
    fn given_flags_and_environment_when_resolved_then_flags_win_then_bucket_then_data_dir() {
        let env = || (Some("env-bucket".to_owned()), Some("/env/dir".to_owned()));
        let (bucket, dir) = env();
        assert_eq!(
            args(None, Some("/flag")).resolve(bucket, dir),
            Target::DataDir("/flag".into())
        );
        let (bucket, dir) = env();
        assert_eq!(
            args(Some("flag-bucket"), None).resolve(bucket, dir),
            Target::Bucket("flag-bucket".into())
        );
        let (bucket, dir) = env();
        assert_eq!(
            args(None, None).resolve(bucket, dir),
            Target::Bucket("env-bucket".into())
        );
        assert_eq!(
            args(None, None).resolve(None, Some("/env/dir".into())),
            Target::DataDir("/env/dir".into())
        );
        assert_eq!(
            args(None, None).resolve(None, None),
            Target::DataDir("./.kefu".into())
        );
    }
}
