//! [`MessageQueue`] contract: SQS FIFO semantics, and nothing beyond them (ordering across
//! groups, batch sizes and exact timings are left to the backend).
//!
//! Every body gets a queue of its own (receives see the whole queue).

use crate::support::{eventually, unique};
use kefu::ports::{Delivery, MessageQueue};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Long enough that nothing is redelivered by timeout during a test.
const HOLD: Duration = Duration::from_secs(30);
/// SQS's smallest non-zero visibility timeout (it counts in whole seconds).
const SHORT_VISIBILITY: Duration = Duration::from_secs(1);
/// Long-poll wait for a message that should be there.
const WAIT: Duration = Duration::from_secs(1);
/// How long to look for a message that must not come.
const ABSENCE: Duration = Duration::from_millis(500);

/// Receives (holding each message for [`HOLD`]) until `count` messages arrived or `within`
/// passed; deletes each one when `delete` is set.
async fn collect(
    queue: &dyn MessageQueue,
    count: usize,
    within: Duration,
    delete: bool,
) -> anyhow::Result<Vec<Delivery>> {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    while got.len() < count && Instant::now() < deadline {
        let wait = deadline.saturating_duration_since(Instant::now()).min(WAIT);
        for delivery in queue.receive(10, HOLD, wait).await? {
            if delete {
                queue.delete(&delivery.receipt).await?;
            }
            got.push(delivery);
        }
    }
    Ok(got)
}

fn bodies(deliveries: &[Delivery]) -> Vec<&str> {
    deliveries.iter().map(|d| d.body.as_str()).collect()
}

/// GIVEN two groups sent interleaved WHEN everything is received and deleted THEN each
/// group's messages came in the order they were sent.
pub async fn fifo_order_within_group(queue: Arc<dyn MessageQueue>) -> anyhow::Result<()> {
    let groups = [unique("a"), unique("b")];
    for i in 0..5 {
        for group in &groups {
            queue.send(group, &unique("d"), &format!("{i}")).await?;
        }
    }

    let got = collect(queue.as_ref(), 10, Duration::from_secs(3), true).await?;

    let mut per_group: HashMap<&str, Vec<&str>> = HashMap::new();
    for delivery in &got {
        per_group
            .entry(delivery.group.as_str())
            .or_default()
            .push(delivery.body.as_str());
    }
    for group in &groups {
        assert_eq!(
            per_group.get(group.as_str()).map(Vec::as_slice),
            Some(&["0", "1", "2", "3", "4"][..]),
            "order of group {group}"
        );
    }
    assert_eq!(got.len(), 10);
    Ok(())
}

/// GIVEN a group's first message in flight WHEN receiving again THEN its second message is
/// held back while other groups flow, and comes once the first is deleted.
pub async fn group_blocked_while_in_flight(queue: Arc<dyn MessageQueue>) -> anyhow::Result<()> {
    let (blocked, other) = (unique("blocked"), unique("other"));
    queue.send(&blocked, &unique("d"), "first").await?;
    queue.send(&blocked, &unique("d"), "second").await?;
    let first = queue.receive(1, HOLD, WAIT).await?;
    assert_eq!(bodies(&first), ["first"]);
    queue.send(&other, &unique("d"), "other").await?;

    let meanwhile = collect(queue.as_ref(), 1, Duration::from_secs(1), false).await?;

    assert_eq!(bodies(&meanwhile), ["other"], "only the other group flows");
    queue.delete(&first[0].receipt).await?;
    let after = collect(queue.as_ref(), 1, Duration::from_secs(1), true).await?;
    assert_eq!(bodies(&after), ["second"]);
    Ok(())
}

/// GIVEN a message sent twice with one deduplication id WHEN the queue is drained THEN it
/// is delivered once, while a different id in the same group is not dropped.
pub async fn dedup_window_drops_duplicates(queue: Arc<dyn MessageQueue>) -> anyhow::Result<()> {
    let (group, dedup) = (unique("g"), unique("d"));
    queue.send(&group, &dedup, "original").await?;
    queue.send(&group, &dedup, "retry").await?;
    queue.send(&group, &unique("d"), "distinct").await?;

    let got = collect(queue.as_ref(), 2, Duration::from_secs(2), true).await?;
    let late = queue.receive(10, HOLD, ABSENCE).await?;

    assert_eq!(bodies(&got), ["original", "distinct"]);
    assert!(
        late.is_empty(),
        "the duplicate was dropped: {:?}",
        bodies(&late)
    );
    Ok(())
}

/// GIVEN a received message that is neither deleted nor released WHEN its visibility
/// timeout passes THEN it is delivered again with a higher receive count.
pub async fn visibility_timeout_redelivers(queue: Arc<dyn MessageQueue>) -> anyhow::Result<()> {
    queue
        .send(&unique("g"), &unique("d"), "lost worker")
        .await?;
    let first = queue.receive(1, SHORT_VISIBILITY, WAIT).await?;
    assert_eq!(bodies(&first), ["lost worker"]);
    assert_eq!(first[0].receive_count, 1);
    assert!(
        queue.receive(10, HOLD, Duration::ZERO).await?.is_empty(),
        "invisible while in flight"
    );

    let again = eventually(Duration::from_secs(3), || async {
        let got = queue.receive(1, HOLD, Duration::from_millis(200)).await?;
        Ok(got.into_iter().next())
    })
    .await?
    .expect("redelivered after the visibility timeout");

    assert_eq!(again.body, "lost worker");
    assert_eq!(again.receive_count, 2);
    assert_ne!(again.receipt, first[0].receipt);
    queue.delete(&again.receipt).await?;
    Ok(())
}

/// GIVEN a received message WHEN it is released THEN it is delivered again at once, long
/// before its visibility timeout.
pub async fn release_redelivers_now(queue: Arc<dyn MessageQueue>) -> anyhow::Result<()> {
    queue.send(&unique("g"), &unique("d"), "retry me").await?;
    let first = queue.receive(1, HOLD, WAIT).await?;
    assert_eq!(bodies(&first), ["retry me"]);

    queue.release(&first[0], Duration::ZERO).await?;

    let again = collect(queue.as_ref(), 1, Duration::from_secs(2), true).await?;
    assert_eq!(bodies(&again), ["retry me"]);
    assert_eq!(again[0].receive_count, 2);
    Ok(())
}

/// GIVEN a received message WHEN it is deleted THEN it never comes back, even after its
/// visibility timeout.
pub async fn delete_removes_for_good(queue: Arc<dyn MessageQueue>) -> anyhow::Result<()> {
    queue.send(&unique("g"), &unique("d"), "done").await?;
    let first = queue.receive(1, SHORT_VISIBILITY, WAIT).await?;
    assert_eq!(bodies(&first), ["done"]);

    queue.delete(&first[0].receipt).await?;

    let later = queue
        .receive(10, HOLD, SHORT_VISIBILITY + Duration::from_millis(500))
        .await?;
    assert!(later.is_empty(), "deleted message came back");
    Ok(())
}

/// GIVEN an empty queue WHEN a receive is waiting and a message is sent meanwhile THEN that
/// same receive returns it (long polling).
pub async fn receive_waits_for_a_late_message(queue: Arc<dyn MessageQueue>) -> anyhow::Result<()> {
    let sender = queue.clone();
    let send = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        sender.send(&unique("g"), &unique("d"), "late").await
    });

    let got = queue.receive(1, HOLD, Duration::from_secs(2)).await?;

    send.await??;
    assert_eq!(bodies(&got), ["late"]);
    Ok(())
}

/// GIVEN a message released (attempted and failed) `max_attempts` times WHEN the queue is
/// read again THEN it has moved to the dead-letter queue and no longer blocks its group.
pub async fn poison_message_moves_to_dead_letters(
    queue: Arc<dyn MessageQueue>,
    dead_letters: Arc<dyn MessageQueue>,
    max_attempts: u32,
) -> anyhow::Result<()> {
    let group = unique("g");
    queue.send(&group, &unique("d"), "poison").await?;
    queue.send(&group, &unique("d"), "healthy").await?;
    for attempt in 1..=max_attempts {
        let got = queue.receive(1, HOLD, WAIT).await?;
        assert_eq!(bodies(&got), ["poison"], "attempt {attempt}");
        assert_eq!(got[0].receive_count, attempt);
        queue.release(&got[0], Duration::ZERO).await?;
    }

    let next = collect(queue.as_ref(), 1, Duration::from_secs(2), true).await?;

    assert_eq!(bodies(&next), ["healthy"]);
    let dead = collect(dead_letters.as_ref(), 1, Duration::from_secs(2), true).await?;
    assert_eq!(bodies(&dead), ["poison"]);
    assert_eq!(dead[0].group, group);
    Ok(())
}

/// GIVEN a message deferred (received, not attempted) many times WHEN it is then released
/// THEN only the releases count: it moves to the dead-letter queue after `max_attempts`
/// releases, not before, and keeps its place in its group meanwhile.
pub async fn deferred_receives_spend_no_attempts(
    queue: Arc<dyn MessageQueue>,
    dead_letters: Arc<dyn MessageQueue>,
    max_attempts: u32,
) -> anyhow::Result<()> {
    let group = unique("g");
    queue.send(&group, &unique("d"), "waiting").await?;
    queue.send(&group, &unique("d"), "behind").await?;
    for round in 0..max_attempts * 3 {
        let got = collect(queue.as_ref(), 1, Duration::from_secs(2), false).await?;
        assert_eq!(bodies(&got[..1]), ["waiting"], "deferral {round}");
        for delivery in &got {
            queue.defer(delivery, Duration::ZERO).await?;
        }
    }
    for attempt in 1..max_attempts {
        let got = collect(queue.as_ref(), 1, Duration::from_secs(2), false).await?;
        assert_eq!(bodies(&got[..1]), ["waiting"], "attempt {attempt}");
        queue.release(&got[0], Duration::ZERO).await?;
        for held in &got[1..] {
            queue.defer(held, Duration::ZERO).await?;
        }
    }
    let dead = collect(dead_letters.as_ref(), 1, ABSENCE, false).await?;
    assert!(dead.is_empty(), "dead-lettered before its last attempt");

    let last = collect(queue.as_ref(), 1, Duration::from_secs(2), false).await?;
    assert_eq!(bodies(&last[..1]), ["waiting"]);
    queue.release(&last[0], Duration::ZERO).await?;
    for held in &last[1..] {
        queue.defer(held, Duration::ZERO).await?;
    }

    let next = collect(queue.as_ref(), 1, Duration::from_secs(2), true).await?;
    assert_eq!(bodies(&next), ["behind"]);
    let dead = collect(dead_letters.as_ref(), 1, Duration::from_secs(2), true).await?;
    assert_eq!(bodies(&dead), ["waiting"]);
    Ok(())
}

/// GIVEN a received message WHEN it is released or deferred with a delay THEN it stays away
/// for the delay and then comes back.
pub async fn delayed_give_back_hides_the_message(
    queue: Arc<dyn MessageQueue>,
) -> anyhow::Result<()> {
    for defer in [false, true] {
        queue.send(&unique("g"), &unique("d"), "later").await?;
        let got = queue.receive(1, HOLD, WAIT).await?;
        assert_eq!(bodies(&got), ["later"]);
        let delay = Duration::from_secs(2);
        if defer {
            queue.defer(&got[0], delay).await?;
        } else {
            queue.release(&got[0], delay).await?;
        }

        let meanwhile = queue.receive(10, HOLD, Duration::from_secs(1)).await?;

        assert!(
            meanwhile.is_empty(),
            "came back early: {:?}",
            bodies(&meanwhile)
        );
        let again = collect(queue.as_ref(), 1, Duration::from_secs(5), true).await?;
        assert_eq!(bodies(&again), ["later"], "defer: {defer}");
    }
    Ok(())
}
