//! [`BlobStore`] over an S3 bucket.

use crate::ports::BlobStore;
use crate::{Error, Result};
use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;

/// Blobs as objects in one bucket, optionally under a key prefix (e.g. `faq/`), so several
/// stores can share a bucket. Keys given to the port are relative to that prefix.
///
/// Against an S3 emulator build the client with [`super::s3_client`], which turns on the
/// path-style addressing emulators need.
#[derive(Debug, Clone)]
pub struct S3BlobStore {
    client: Client,
    bucket: String,
    prefix: String,
}

impl S3BlobStore {
    /// The store over `bucket`, with every key under `prefix` (`""` for none).
    pub fn new(client: Client, bucket: impl Into<String>, prefix: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
            prefix: prefix.into(),
        }
    }

    fn object_key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// Whether an object with exactly `key` exists, by listing it.
    async fn exists(&self, key: &str) -> Result<bool> {
        let object_key = self.object_key(key);
        let page = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&object_key)
            .max_keys(1)
            .send()
            .await
            .map_err(|e| Error::backend("listing an S3 object", e))?;
        Ok(page.contents().iter().any(|o| o.key() == Some(&object_key)))
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<()> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(self.object_key(key))
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| Error::backend("writing an S3 object", e))?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let output = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.object_key(key))
            .send()
            .await;
        let output = match output {
            Ok(output) => output,
            Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
                return Ok(None);
            }
            // A role whose s3:ListBucket is limited to its prefix gets 403, not 404, for a
            // missing key; a listing of exactly that key tells missing from refused.
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 403) => {
                if self.exists(key).await? {
                    return Err(Error::backend("reading an S3 object", e));
                }
                return Ok(None);
            }
            Err(e) => return Err(Error::backend("reading an S3 object", e)),
        };
        let bytes = output
            .body
            .collect()
            .await
            .map_err(|e| Error::backend("reading an S3 object body", e))?;
        Ok(Some(bytes.into_bytes().to_vec()))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(self.object_key(prefix))
            .into_paginator()
            .send();
        let mut keys = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| Error::backend("listing S3 objects", e))?;
            for object in page.contents() {
                if let Some(key) = object.key().and_then(|k| k.strip_prefix(&self.prefix)) {
                    keys.push(key.to_owned());
                }
            }
        }
        keys.sort();
        Ok(keys)
    }
}
