//! [`Leases`] contract: at most `slots` holders of a key, across handles and processes;
//! released or lapsed slots can be taken again, and a stale release frees nothing.

use crate::support::{eventually, unique};
use kefu::ports::Leases;
use std::sync::Arc;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(60);

/// GIVEN two slots of a key WHEN three holders ask THEN the third is refused until one of
/// the first two releases; another key is not affected.
pub async fn slots_cap_holders_until_released(leases: Arc<dyn Leases>) -> anyhow::Result<()> {
    let key = unique("poll:");
    let first = leases.acquire(&key, 2, LONG).await?.expect("first slot");
    let second = leases.acquire(&key, 2, LONG).await?.expect("second slot");
    assert_ne!(first.slot, second.slot);

    assert_eq!(
        leases.acquire(&key, 2, LONG).await?,
        None,
        "both slots held"
    );
    assert!(leases.acquire(&unique("poll:"), 2, LONG).await?.is_some());

    leases.release(&first).await?;
    let third = leases.acquire(&key, 2, LONG).await?;
    assert!(third.is_some(), "a released slot is free again");
    assert_eq!(leases.acquire(&key, 2, LONG).await?, None);
    Ok(())
}

/// GIVEN 20 holders asking for three slots at once THEN exactly three get one.
pub async fn concurrent_acquires_never_exceed_slots(leases: Arc<dyn Leases>) -> anyhow::Result<()> {
    let key = unique("poll:");
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (leases, key) = (leases.clone(), key.clone());
            tokio::spawn(async move { leases.acquire(&key, 3, LONG).await })
        })
        .collect();
    let mut held = 0;
    for task in tasks {
        if task.await??.is_some() {
            held += 1;
        }
    }
    assert_eq!(held, 3);
    Ok(())
}

/// GIVEN a holder that never releases WHEN its lease's ttl passes THEN its slot is taken by
/// another, and the first holder's late release does not free the new holder's slot.
pub async fn lapsed_lease_frees_its_slot_and_a_stale_release_frees_nothing(
    leases: Arc<dyn Leases>,
) -> anyhow::Result<()> {
    let key = unique("poll:");
    let stale = leases
        .acquire(&key, 1, Duration::from_millis(300))
        .await?
        .expect("slot");
    assert_eq!(
        leases.acquire(&key, 1, LONG).await?,
        None,
        "held until it lapses"
    );

    let taken = eventually(Duration::from_secs(5), || {
        let (leases, key) = (leases.clone(), key.clone());
        async move { Ok(leases.acquire(&key, 1, LONG).await?) }
    })
    .await?
    .expect("the lapsed slot is taken again");
    assert_eq!(taken.slot, stale.slot);

    leases.release(&stale).await?;
    assert_eq!(
        leases.acquire(&key, 1, LONG).await?,
        None,
        "the stale release left the new holder's slot alone"
    );
    leases.release(&taken).await?;
    assert!(leases.acquire(&key, 1, LONG).await?.is_some());
    Ok(())
}
