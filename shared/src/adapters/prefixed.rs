//! A [`BlobStore`] seen through a key prefix: one store shared by several users, each in
//! its own corner (the email channel under `email/`, beside the FAQ under `faq/`).

use crate::Result;
use crate::ports::BlobStore;
use async_trait::async_trait;
use std::sync::Arc;

/// The blobs of `inner` whose keys start with `prefix`, addressed without it.
#[derive(Clone)]
pub struct PrefixedBlobs {
    inner: Arc<dyn BlobStore>,
    prefix: String,
}

impl PrefixedBlobs {
    /// The view of `inner` under `prefix` (e.g. `email/`).
    pub fn new(inner: Arc<dyn BlobStore>, prefix: impl Into<String>) -> Self {
        Self {
            inner,
            prefix: prefix.into(),
        }
    }
}

#[async_trait]
impl BlobStore for PrefixedBlobs {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<()> {
        self.inner
            .put(&format!("{}{key}", self.prefix), bytes)
            .await
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.inner.get(&format!("{}{key}", self.prefix)).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let keys = self.inner.list(&format!("{}{prefix}", self.prefix)).await?;
        Ok(keys
            .into_iter()
            .filter_map(|key| key.strip_prefix(&self.prefix).map(str::to_owned))
            .collect())
    }
}

#[cfg(all(test, feature = "embedded"))]
mod tests {
    use super::*;
    use crate::adapters::embedded::EmbeddedStore;

    #[tokio::test]
    async fn given_a_prefixed_view_when_written_then_the_inner_store_holds_the_prefixed_key() {
        let dir = tempfile::tempdir().unwrap();
        let inner: Arc<dyn BlobStore> = Arc::new(EmbeddedStore::open(dir.path()).unwrap().blobs());
        inner.put("faq/source/a", b"faq".to_vec()).await.unwrap();
        let email = PrefixedBlobs::new(inner.clone(), "email/");
        email.put("inbound/m1", b"raw".to_vec()).await.unwrap();

        assert_eq!(
            inner.get("email/inbound/m1").await.unwrap(),
            Some(b"raw".to_vec())
        );
        assert_eq!(
            email.get("inbound/m1").await.unwrap(),
            Some(b"raw".to_vec())
        );
        assert_eq!(email.list("").await.unwrap(), ["inbound/m1"]);
        assert_eq!(email.get("faq/source/a").await.unwrap(), None);
    }
}
