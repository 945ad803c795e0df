//! [`BlobStore`] contract: whole-blob round trips, sorted prefix listings, absent keys.

use crate::support::unique;
use kefu::ports::BlobStore;
use std::sync::Arc;

/// GIVEN binary, empty and overwritten blobs WHEN read back THEN the bytes are exactly the
/// last ones written.
pub async fn put_get_round_trip(blobs: Arc<dyn BlobStore>) -> anyhow::Result<()> {
    let dir = unique("t");
    let binary: Vec<u8> = (0..=255).chain(0..=255).collect();
    let (bin_key, empty_key, over_key) = (
        format!("{dir}/bin"),
        format!("{dir}/empty"),
        format!("{dir}/index/CURRENT"),
    );

    blobs.put(&bin_key, binary.clone()).await?;
    blobs.put(&empty_key, Vec::new()).await?;
    blobs.put(&over_key, b"v1".to_vec()).await?;
    blobs.put(&over_key, b"v2".to_vec()).await?;

    assert_eq!(blobs.get(&bin_key).await?, Some(binary));
    assert_eq!(blobs.get(&empty_key).await?, Some(Vec::new()));
    assert_eq!(blobs.get(&over_key).await?, Some(b"v2".to_vec()));
    Ok(())
}

/// GIVEN no blob under a key WHEN read THEN `None`.
pub async fn missing_key_is_none(blobs: Arc<dyn BlobStore>) -> anyhow::Result<()> {
    let key = format!("{}/nothing-here", unique("t"));

    assert_eq!(blobs.get(&key).await?, None);
    Ok(())
}

/// GIVEN blobs under nested prefixes WHEN listed by prefix THEN exactly the keys starting
/// with it come back, sorted.
pub async fn list_by_prefix_is_sorted(blobs: Arc<dyn BlobStore>) -> anyhow::Result<()> {
    let dir = unique("t");
    for key in ["b", "a/2", "c/x/y", "a/1", "ab"] {
        blobs
            .put(&format!("{dir}/{key}"), key.as_bytes().to_vec())
            .await?;
    }

    let all = blobs.list(&format!("{dir}/")).await?;
    let under_a = blobs.list(&format!("{dir}/a/")).await?;
    let starting_a = blobs.list(&format!("{dir}/a")).await?;
    let none = blobs.list(&format!("{dir}/zzz")).await?;

    let strip = |keys: Vec<String>| -> Vec<String> {
        keys.into_iter()
            .map(|k| k.trim_start_matches(&format!("{dir}/")).to_owned())
            .collect()
    };
    assert_eq!(strip(all), ["a/1", "a/2", "ab", "b", "c/x/y"]);
    assert_eq!(strip(under_a), ["a/1", "a/2"]);
    assert_eq!(strip(starting_a), ["a/1", "a/2", "ab"]);
    assert!(none.is_empty());
    Ok(())
}
