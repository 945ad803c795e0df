//! [`MessageQueue`] on SQLite with SQS FIFO semantics: ordered groups, a group blocked while
//! one of its messages is in flight, a five-minute deduplication window, visibility timeouts,
//! and poison messages moved to a dead-letter queue after too many attempts.
//!
//! `receive_count` counts attempts: a receive given back with [`MessageQueue::defer`] (not
//! attempted) is taken off again, so a message held behind its group's failure, or waiting
//! for its channel, never reaches the dead-letter queue for it.

use super::db::{Db, SqlContext};
use super::{millis, sql_limit};
use crate::domain::now_millis;
use crate::ports::{Delivery, MessageQueue};
use crate::{Error, Result};
use async_trait::async_trait;
use rusqlite::{OptionalExtension, Transaction, params};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// How many failed attempts move a message to the dead-letter queue (a release after the
/// fifth, or a receive after five attempts that ended without an answer, e.g. a crash).
pub const DEFAULT_MAX_RECEIVES: u32 = 5;
/// A second send with the same deduplication id within this window is dropped.
const DEDUP_WINDOW: Duration = Duration::from_secs(5 * 60);
/// How often a long poll looks again when nothing in this process signalled a change
/// (visibility timeouts expire silently; other processes may send).
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// SQS's limit on message bodies.
const MAX_BODY_BYTES: usize = 256 * 1024;
/// SQS's limit on group and deduplication ids.
const MAX_ID_CHARS: usize = 128;

/// How many messages a queue holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueDepth {
    /// Ready to be received (or blocked behind their group's message in flight).
    pub visible: u64,
    /// Received and neither deleted nor past their visibility timeout.
    pub in_flight: u64,
}

impl QueueDepth {
    /// All messages, visible or in flight.
    pub fn total(&self) -> u64 {
        self.visible + self.in_flight
    }
}

/// Wakes long polls in this process when a queue changes, one [`Notify`] per queue name.
#[derive(Default)]
pub(super) struct Signals(Mutex<HashMap<String, Arc<Notify>>>);

impl Signals {
    fn get(&self, queue: &str) -> Arc<Notify> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(queue.to_owned())
            .or_default()
            .clone()
    }
}

/// A queue's name and the signal that wakes its long polls.
struct Route {
    name: String,
    wake: Arc<Notify>,
}

/// A FIFO queue stored in the embedded database. Cheap to clone; handles on the same name
/// share the queue.
#[derive(Clone)]
pub struct SqliteMessageQueue {
    db: Arc<Db>,
    queue: Arc<Route>,
    /// Where poison messages go; `None` for a dead-letter queue itself.
    dead_letters: Option<Arc<Route>>,
    max_receives: u32,
}

impl SqliteMessageQueue {
    /// The queue `name`, with poison messages going to `<name>-dlq`.
    pub(super) fn new(db: Arc<Db>, signals: &Signals, name: &str) -> Self {
        let dlq = dead_letter_name(name);
        Self {
            db,
            queue: route(signals, name),
            dead_letters: Some(route(signals, &dlq)),
            max_receives: DEFAULT_MAX_RECEIVES,
        }
    }

    /// The dead-letter queue of `name` (`<name>-dlq`), which has no dead-letter queue itself.
    pub(super) fn dead_letters_of(db: Arc<Db>, signals: &Signals, name: &str) -> Self {
        Self {
            db,
            queue: route(signals, &dead_letter_name(name)),
            dead_letters: None,
            max_receives: DEFAULT_MAX_RECEIVES,
        }
    }

    /// Moves a message to the dead-letter queue after `max_receives` attempts (at least 1):
    /// when its `max_receives`-th attempt is released, or on the next receive when that
    /// attempt never ended (its consumer crashed).
    pub fn with_max_receives(mut self, max_receives: u32) -> Self {
        self.max_receives = max_receives.max(1);
        self
    }

    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.queue.name
    }

    /// How many messages the queue holds now.
    pub async fn depth(&self) -> Result<QueueDepth> {
        let queue = self.queue.name.clone();
        self.db
            .read("count queue messages", move |conn| {
                let now = now_millis();
                conn.query_row(
                    "SELECT COALESCE(SUM(visible_at <= ?2), 0), COALESCE(SUM(visible_at > ?2), 0)
                     FROM queue_messages WHERE queue = ?1",
                    params![queue, now],
                    |row| {
                        Ok(QueueDepth {
                            visible: row.get(0)?,
                            in_flight: row.get(1)?,
                        })
                    },
                )
                .context("count queue messages")
            })
            .await
    }

    /// Moves every message of this queue's dead-letter queue back into this queue (after the
    /// cause of the failures is fixed), with fresh receive counts. Returns how many moved.
    pub async fn redrive_dead_letters(&self) -> Result<usize> {
        let Some(dlq) = self.dead_letters.clone() else {
            return Err(Error::Invalid(format!(
                "queue {} has no dead-letter queue",
                self.queue.name
            )));
        };
        let queue = self.queue.name.clone();
        let moved = self
            .db
            .write("redrive dead letters", move |tx| {
                tx.execute(
                    "UPDATE queue_messages
                     SET queue = ?1, visible_at = 0, receipt = NULL, receive_count = 0
                     WHERE queue = ?2",
                    params![queue, dlq.name],
                )
                .context("redrive dead letters")
            })
            .await?;
        if moved > 0 {
            tracing::info!(queue = %self.queue.name, moved, "dead letters redriven");
            self.queue.wake.notify_waiters();
        }
        Ok(moved)
    }

    /// One receive attempt: marks up to `max` deliverable messages in flight. Also returns
    /// how many poison messages it moved to the dead-letter queue instead.
    async fn receive_once(
        &self,
        max: usize,
        visibility: Duration,
    ) -> Result<(Vec<Delivery>, usize)> {
        // Idle polls only read: the single writer stays free for real work.
        let queue = self.queue.name.clone();
        let ready = self
            .db
            .read("look for deliverable messages", move |conn| {
                conn.query_row(
                    &format!("SELECT EXISTS (SELECT 1 {DELIVERABLE})"),
                    params![queue, now_millis()],
                    |row| row.get::<_, bool>(0),
                )
                .context("look for deliverable messages")
            })
            .await?;
        if !ready {
            return Ok((Vec::new(), 0));
        }
        let queue = self.queue.name.clone();
        let redrive = self
            .dead_letters
            .as_ref()
            .map(|dlq| (dlq.name.clone(), self.max_receives));
        let (deliveries, moved) = self
            .db
            .write("receive queue messages", move |tx| {
                take_deliverable(tx, &queue, redrive.as_ref(), max, visibility)
            })
            .await?;
        if moved > 0
            && let Some(dlq) = &self.dead_letters
        {
            dlq.wake.notify_waiters();
        }
        Ok((deliveries, moved))
    }
}

#[async_trait]
impl MessageQueue for SqliteMessageQueue {
    async fn send(&self, group: &str, dedup_id: &str, body: &str) -> Result<()> {
        check_id("message group id", group)?;
        check_id("deduplication id", dedup_id)?;
        check_body(body)?;
        let (queue, group_owned, dedup, body) = (
            self.queue.name.clone(),
            group.to_owned(),
            dedup_id.to_owned(),
            body.to_owned(),
        );
        let stored = self
            .db
            .write("send queue message", move |tx| {
                let now = now_millis();
                tx.execute(
                    "DELETE FROM queue_dedup WHERE expires_at <= ?1",
                    params![now],
                )
                .context("purge deduplication ids")?;
                let fresh = tx
                    .execute(
                        "INSERT INTO queue_dedup (queue, dedup_id, expires_at) VALUES (?1, ?2, ?3)
                         ON CONFLICT DO NOTHING",
                        params![queue, dedup, now.saturating_add(millis(DEDUP_WINDOW))],
                    )
                    .context("record deduplication id")?
                    == 1;
                if fresh {
                    tx.execute(
                        "INSERT INTO queue_messages (queue, grp, body, sent_at)
                         VALUES (?1, ?2, ?3, ?4)",
                        params![queue, group_owned, body, now],
                    )
                    .context("store queue message")?;
                }
                Ok(fresh)
            })
            .await?;
        if stored {
            self.queue.wake.notify_waiters();
        } else {
            tracing::debug!(queue = %self.queue.name, group, "duplicate send dropped");
        }
        Ok(())
    }

    async fn receive(
        &self,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> Result<Vec<Delivery>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let deadline = Instant::now() + wait;
        loop {
            // Listen before looking, so a send between the look and the nap is not missed.
            let changed = self.queue.wake.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let (deliveries, moved) = self.receive_once(max, visibility).await?;
            if !deliveries.is_empty() {
                return Ok(deliveries);
            }
            if moved > 0 {
                // The poison message may have been blocking its group: look again at once.
                continue;
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(deliveries);
            }
            let _ = tokio::time::timeout((deadline - now).min(POLL_INTERVAL), changed).await;
        }
    }

    async fn delete(&self, receipt: &str) -> Result<()> {
        let (queue, receipt_owned) = (self.queue.name.clone(), receipt.to_owned());
        let deleted = self
            .db
            .write("delete queue message", move |tx| {
                tx.execute(
                    "DELETE FROM queue_messages WHERE queue = ?1 AND receipt = ?2",
                    params![queue, receipt_owned],
                )
                .context("delete queue message")
            })
            .await?;
        if deleted == 0 {
            // Already deleted, or received again since (a newer receipt replaced this one):
            // the consumers are idempotent, so this is not an error.
            tracing::debug!(queue = %self.queue.name, "delete with a stale receipt ignored");
        } else {
            // The message's group may be unblocked now.
            self.queue.wake.notify_waiters();
        }
        Ok(())
    }

    async fn release(&self, delivery: &Delivery, delay: Duration) -> Result<()> {
        let (queue, receipt) = (self.queue.name.clone(), delivery.receipt.clone());
        let redrive = self
            .dead_letters
            .as_ref()
            .map(|dlq| (dlq.name.clone(), self.max_receives));
        let (released, dead) = self
            .db
            .write("release queue message", move |tx| {
                let found = tx
                    .query_row(
                        "SELECT id, receive_count FROM queue_messages
                         WHERE queue = ?1 AND receipt = ?2",
                        params![queue, receipt],
                        |row| Ok((row.get::<_, i64>(0)?, row.get::<_, u32>(1)?)),
                    )
                    .optional()
                    .context("find released message")?;
                let Some((id, attempts)) = found else {
                    return Ok((false, false));
                };
                if let Some((dlq, max_receives)) = &redrive
                    && attempts >= *max_receives
                {
                    move_to_dead_letters(tx, id, dlq)?;
                    return Ok((true, true));
                }
                let visible_at = now_millis().saturating_add(millis(delay));
                tx.execute(
                    "UPDATE queue_messages SET visible_at = ?1 WHERE id = ?2",
                    params![visible_at, id],
                )
                .context("release queue message")?;
                Ok((true, false))
            })
            .await?;
        if !released {
            tracing::debug!(queue = %self.queue.name, "release with a stale receipt ignored");
            return Ok(());
        }
        if dead && let Some(dlq) = &self.dead_letters {
            tracing::warn!(queue = %self.queue.name, dead_letters = %dlq.name,
                group = %delivery.group, attempts = self.max_receives,
                "message failed its last attempt; moved to the dead-letter queue");
            dlq.wake.notify_waiters();
        }
        self.queue.wake.notify_waiters();
        Ok(())
    }

    async fn defer(&self, delivery: &Delivery, delay: Duration) -> Result<()> {
        let (queue, receipt) = (self.queue.name.clone(), delivery.receipt.clone());
        let deferred = self
            .db
            .write("defer queue message", move |tx| {
                // This receive was no attempt: take it off the count.
                tx.execute(
                    "UPDATE queue_messages
                     SET visible_at = ?1, receive_count = MAX(receive_count - 1, 0)
                     WHERE queue = ?2 AND receipt = ?3",
                    params![now_millis().saturating_add(millis(delay)), queue, receipt],
                )
                .context("defer queue message")
            })
            .await?;
        if deferred == 0 {
            tracing::debug!(queue = %self.queue.name, "defer with a stale receipt ignored");
        } else {
            self.queue.wake.notify_waiters();
        }
        Ok(())
    }
}

/// The messages of queue `?1` that may be received at time `?2`: those of groups without a
/// message in flight (`m` is the message).
const DELIVERABLE: &str = "FROM queue_messages m
     WHERE m.queue = ?1
       AND NOT EXISTS (SELECT 1 FROM queue_messages b
                       WHERE b.queue = ?1 AND b.grp = m.grp AND b.visible_at > ?2)";

/// Marks up to `max` messages in flight, oldest first, skipping groups that have a message
/// in flight; moves messages whose attempts are spent (a crashed consumer's last one) to the
/// dead-letter queue instead.
fn take_deliverable(
    tx: &Transaction<'_>,
    queue: &str,
    redrive: Option<&(String, u32)>,
    max: usize,
    visibility: Duration,
) -> Result<(Vec<Delivery>, usize)> {
    let now = now_millis();
    let invisible_until = now.saturating_add(millis(visibility));
    let candidates = {
        let mut stmt = tx
            .prepare_cached(&format!(
                "SELECT m.id, m.grp, m.body, m.receive_count {DELIVERABLE} ORDER BY m.id LIMIT ?3"
            ))
            .context("select deliverable messages")?;
        let rows = stmt
            .query_map(params![queue, now, sql_limit(max)], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, u32>(3)?,
                ))
            })
            .context("select deliverable messages")?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .context("read deliverable messages")?
    };

    let mut deliveries = Vec::with_capacity(candidates.len());
    let mut moved = 0;
    for (id, group, body, receive_count) in candidates {
        if let Some((dlq, max_receives)) = redrive
            && receive_count >= *max_receives
        {
            move_to_dead_letters(tx, id, dlq)?;
            tracing::warn!(queue, dead_letters = %dlq, group = %group, receive_count,
                "poison message moved to the dead-letter queue");
            moved += 1;
            continue;
        }
        let receipt = uuid::Uuid::new_v4().simple().to_string();
        tx.execute(
            "UPDATE queue_messages
             SET visible_at = ?1, receipt = ?2, receive_count = receive_count + 1
             WHERE id = ?3",
            params![invisible_until, receipt, id],
        )
        .context("mark message in flight")?;
        deliveries.push(Delivery {
            receipt,
            message_id: id.to_string(),
            group,
            body,
            receive_count: receive_count.saturating_add(1),
        });
    }
    Ok((deliveries, moved))
}

/// Re-sends message `id` at the end of `dlq`, as a fresh message.
fn move_to_dead_letters(tx: &Transaction<'_>, id: i64, dlq: &str) -> Result<()> {
    tx.execute(
        "INSERT INTO queue_messages (queue, grp, body, sent_at)
         SELECT ?1, grp, body, sent_at FROM queue_messages WHERE id = ?2",
        params![dlq, id],
    )
    .context("copy message to dead-letter queue")?;
    tx.execute("DELETE FROM queue_messages WHERE id = ?1", params![id])
        .context("remove dead-lettered message")?;
    Ok(())
}

fn route(signals: &Signals, name: &str) -> Arc<Route> {
    Arc::new(Route {
        name: name.to_owned(),
        wake: signals.get(name),
    })
}

/// The dead-letter queue's name for queue `name`.
pub(super) fn dead_letter_name(name: &str) -> String {
    format!("{name}-dlq")
}

/// SQS's rule for group and deduplication ids: 1–128 printable ASCII characters.
fn check_id(what: &str, id: &str) -> Result<()> {
    let ok = !id.is_empty() && id.len() <= MAX_ID_CHARS && id.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "{what} must be 1-{MAX_ID_CHARS} printable ASCII characters"
        )))
    }
}

/// SQS's rules for bodies: at most 256 KiB of XML-safe characters.
fn check_body(body: &str) -> Result<()> {
    if body.len() > MAX_BODY_BYTES {
        return Err(Error::Invalid(format!(
            "queue message body exceeds {MAX_BODY_BYTES} bytes"
        )));
    }
    let xml_safe = body.chars().all(|c| {
        matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}')
            || c >= '\u{10000}'
    });
    if !xml_safe {
        return Err(Error::Invalid(
            "queue message body contains characters queues cannot carry".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::EmbeddedStore;
    use super::*;

    const VISIBILITY: Duration = Duration::from_secs(30);

    fn store() -> (tempfile::TempDir, EmbeddedStore) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = EmbeddedStore::open(dir.path()).expect("open store");
        (dir, store)
    }

    #[tokio::test]
    async fn given_a_message_released_max_times_when_received_again_then_it_is_in_the_dlq() {
        let (_dir, store) = store();
        let queue = store.queue("inbound").with_max_receives(2);
        queue.send("g", "d1", "poison").await.unwrap();
        queue.send("g", "d2", "next").await.unwrap();
        for attempt in 1..=2 {
            let got = queue.receive(1, VISIBILITY, Duration::ZERO).await.unwrap();
            assert_eq!(got.len(), 1);
            assert_eq!(
                (got[0].body.as_str(), got[0].receive_count),
                ("poison", attempt)
            );
            queue.release(&got[0], Duration::ZERO).await.unwrap();
        }

        let got = queue.receive(10, VISIBILITY, Duration::ZERO).await.unwrap();

        let bodies: Vec<_> = got.iter().map(|d| d.body.as_str()).collect();
        assert_eq!(
            bodies,
            ["next"],
            "the poison message no longer blocks its group"
        );
        let dlq = store.dead_letter_queue("inbound");
        assert_eq!(
            dlq.depth().await.unwrap(),
            QueueDepth {
                visible: 1,
                in_flight: 0
            }
        );
        let dead = dlq.receive(10, VISIBILITY, Duration::ZERO).await.unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(
            (dead[0].body.as_str(), dead[0].group.as_str()),
            ("poison", "g")
        );
        assert_eq!(
            dead[0].receive_count, 1,
            "the dead-letter queue counts afresh"
        );
    }

    #[tokio::test]
    async fn given_dead_letters_when_redriven_then_the_source_queue_delivers_them_again() {
        let (_dir, store) = store();
        let queue = store.queue("outbound").with_max_receives(1);
        queue.send("g", "d1", "poison").await.unwrap();
        let got = queue.receive(1, VISIBILITY, Duration::ZERO).await.unwrap();
        queue.release(&got[0], Duration::ZERO).await.unwrap();
        assert!(
            queue
                .receive(1, VISIBILITY, Duration::ZERO)
                .await
                .unwrap()
                .is_empty()
        );

        let moved = queue.redrive_dead_letters().await.unwrap();

        assert_eq!(moved, 1);
        assert_eq!(
            store
                .dead_letter_queue("outbound")
                .depth()
                .await
                .unwrap()
                .total(),
            0
        );
        let again = queue.receive(1, VISIBILITY, Duration::ZERO).await.unwrap();
        assert_eq!(
            (again[0].body.as_str(), again[0].receive_count),
            ("poison", 1)
        );
        assert!(
            store
                .dead_letter_queue("outbound")
                .redrive_dead_letters()
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn given_two_named_queues_when_used_then_they_do_not_share_messages() {
        let (_dir, store) = store();
        store.queue("inbound").send("g", "d", "in").await.unwrap();

        let outbound = store.queue("outbound");

        assert!(
            outbound
                .receive(10, VISIBILITY, Duration::ZERO)
                .await
                .unwrap()
                .is_empty()
        );
        let depth = store.queue("inbound").depth().await.unwrap();
        assert_eq!(
            depth,
            QueueDepth {
                visible: 1,
                in_flight: 0
            }
        );
    }

    #[tokio::test]
    async fn given_a_message_in_flight_when_counted_then_depth_shows_it_in_flight() {
        let (_dir, store) = store();
        let queue = store.queue("inbound");
        queue.send("a", "1", "x").await.unwrap();
        queue.send("b", "2", "y").await.unwrap();

        queue.receive(1, VISIBILITY, Duration::ZERO).await.unwrap();

        let depth = queue.depth().await.unwrap();
        assert_eq!(
            depth,
            QueueDepth {
                visible: 1,
                in_flight: 1
            }
        );
        assert_eq!(depth.total(), 2);
    }

    #[tokio::test]
    async fn given_bad_ids_or_bodies_when_sent_then_invalid_and_nothing_is_queued() {
        let (_dir, store) = store();
        let queue = store.queue("inbound");
        let long = "x".repeat(MAX_ID_CHARS + 1);
        let huge = "x".repeat(MAX_BODY_BYTES + 1);
        let cases = [
            ("", "d", "b"),
            ("g", "", "b"),
            ("has space", "d", "b"),
            (long.as_str(), "d", "b"),
            ("g", "d", huge.as_str()),
            ("g", "d", "nul\u{0}"),
        ];
        for (group, dedup, body) in cases {
            let result = queue.send(group, dedup, body).await;
            assert!(
                matches!(result, Err(Error::Invalid(_))),
                "{group:?} {dedup:?}"
            );
        }
        assert_eq!(queue.depth().await.unwrap().total(), 0);
    }

    #[tokio::test]
    async fn given_a_stale_receipt_when_deleted_then_the_redelivered_message_stays() {
        let (_dir, store) = store();
        let queue = store.queue("inbound");
        queue.send("g", "d", "x").await.unwrap();
        let first = queue
            .receive(1, Duration::ZERO, Duration::ZERO)
            .await
            .unwrap();
        let second = queue.receive(1, VISIBILITY, Duration::ZERO).await.unwrap();
        assert_eq!(second[0].receive_count, 2);

        queue.delete(&first[0].receipt).await.unwrap();

        assert_eq!(
            queue.depth().await.unwrap(),
            QueueDepth {
                visible: 0,
                in_flight: 1
            }
        );
        queue.delete(&second[0].receipt).await.unwrap();
        assert_eq!(queue.depth().await.unwrap().total(), 0);
    }
}
