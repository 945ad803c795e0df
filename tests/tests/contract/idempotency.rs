//! [`IdempotencyGuard`] contract: first writer wins until the entry expires.

use crate::support::{eventually, unique};
use kefu::ports::IdempotencyGuard;
use std::sync::Arc;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(3600);

/// GIVEN a stored key WHEN it is put again with another value THEN the first value is
/// returned and kept.
pub async fn put_if_absent_first_writer_wins(
    guard: Arc<dyn IdempotencyGuard>,
) -> anyhow::Result<()> {
    let key = unique("k");
    assert_eq!(guard.get(&key).await?, None);

    let first = guard.put_if_absent(&key, "reply-1", LONG).await?;
    let second = guard.put_if_absent(&key, "reply-2", LONG).await?;

    assert_eq!(first, None, "the first put stores");
    assert_eq!(second.as_deref(), Some("reply-1"));
    assert_eq!(guard.get(&key).await?.as_deref(), Some("reply-1"));
    Ok(())
}

/// GIVEN 20 tasks putting one key with different values at once THEN exactly one stores,
/// and all others see its value.
pub async fn concurrent_puts_one_wins(guard: Arc<dyn IdempotencyGuard>) -> anyhow::Result<()> {
    let key = unique("k");
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let (guard, key) = (guard.clone(), key.clone());
            tokio::spawn(async move { guard.put_if_absent(&key, &format!("v{i}"), LONG).await })
        })
        .collect();
    let mut winners = Vec::new();
    let mut seen = Vec::new();
    for (i, task) in tasks.into_iter().enumerate() {
        match task.await?? {
            None => winners.push(format!("v{i}")),
            Some(value) => seen.push(value),
        }
    }

    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    assert!(seen.iter().all(|value| *value == winners[0]), "{seen:?}");
    assert_eq!(guard.get(&key).await?.as_ref(), winners.first());
    Ok(())
}

/// GIVEN a key with a one-second TTL WHEN it has expired THEN it reads as absent and a new
/// put stores again.
pub async fn expired_entries_count_as_absent(
    guard: Arc<dyn IdempotencyGuard>,
) -> anyhow::Result<()> {
    let key = unique("k");
    guard
        .put_if_absent(&key, "old", Duration::from_secs(1))
        .await?;
    assert_eq!(guard.get(&key).await?.as_deref(), Some("old"));

    let expired = eventually(Duration::from_secs(3), || async {
        Ok(guard.get(&key).await?.is_none().then_some(()))
    })
    .await?;

    assert!(expired.is_some(), "still present after its TTL");
    assert_eq!(guard.put_if_absent(&key, "new", LONG).await?, None);
    assert_eq!(guard.get(&key).await?.as_deref(), Some("new"));
    Ok(())
}
