//! Key attribute names and key values of the single-table layout.

use crate::domain::{ConversationId, MessageId, Millis};

/// Partition key attribute.
pub(super) const PK: &str = "pk";
/// Sort key attribute.
pub(super) const SK: &str = "sk";
/// Work-queue index partition key attribute.
pub(super) const GSI1PK: &str = "gsi1pk";
/// Work-queue index sort key attribute.
pub(super) const GSI1SK: &str = "gsi1sk";
/// Sort key of an item that is alone in its partition (conversation, agent).
pub(super) const META: &str = "META";
/// Sort key of an idempotency item.
pub(super) const IDEM: &str = "IDEM";

/// The partition key prefixes, by the port whose items they hold (`WorkQueue`'s on the
/// `gsi1` index). `template.yaml` grants each function `dynamodb:LeadingKeys` on exactly the
/// prefixes of the ports its code is handed, so an internet-facing webhook cannot read an
/// agent's password hash; `infra/scripts/check-template.py` checks that the two agree.
pub const PARTITION_PREFIXES: &[(&str, &str)] = &[
    ("ConversationStore", "CONV#"),
    ("IdempotencyGuard", "IDEM#"),
    ("AgentDirectory", "AGENT#"),
    ("Leases", "LEASE#"),
    ("WorkQueue", "QUEUE#"),
];

/// Digits of a zero-padded message seq; seqs sort as strings.
const SEQ_DIGITS: usize = 12;
/// The highest seq the key layout can hold.
pub(super) const MAX_SEQ: u64 = 999_999_999_999;

pub(super) fn conversation_pk(id: &ConversationId) -> String {
    format!("CONV#{id}")
}

pub(super) fn message_sk(seq: u64) -> String {
    format!("MSG#{seq:0SEQ_DIGITS$}")
}

pub(super) fn marker_sk(message_id: &MessageId) -> String {
    format!("MID#{message_id}")
}

pub(super) fn idempotency_pk(key: &str) -> String {
    format!("IDEM#{key}")
}

pub(super) fn agent_pk(username: &str) -> String {
    format!("AGENT#{username}")
}

pub(super) fn lease_pk(key: &str) -> String {
    format!("LEASE#{key}")
}

pub(super) fn lease_sk(slot: u32) -> String {
    format!("SLOT#{slot}")
}

/// A failed-login counter lives in the agents' partition space (`AGENT#user:<name>`,
/// `AGENT#addr:<address>`); usernames contain no `:`, so it never meets an account.
pub(super) fn login_failures_pk(key: &str) -> String {
    format!("AGENT#{key}")
}

/// Sort key of a failed-login counter.
pub(super) const FAILURES: &str = "FAILURES";

pub(super) fn queue_pk(queue: &str) -> String {
    format!("QUEUE#{queue}")
}

/// Orders a queue: higher priority first (so `9 - priority` ascending), then older first;
/// the id breaks ties and keeps the key unique.
pub(super) fn queue_sk(priority: u8, waiting_since: Millis, id: &ConversationId) -> String {
    let rank = 9 - priority.min(9);
    let since = waiting_since.max(0);
    format!("{rank}#{since:013}#{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: char) -> ConversationId {
        ConversationId::parse(&format!("c{}", n.to_string().repeat(31))).expect("valid id")
    }

    fn prefix_of(port: &str) -> &'static str {
        PARTITION_PREFIXES
            .iter()
            .find(|(p, _)| *p == port)
            .map(|(_, prefix)| *prefix)
            .expect("listed port")
    }

    #[test]
    fn given_every_partition_key_when_built_then_it_starts_with_its_ports_listed_prefix() {
        let keys = [
            ("ConversationStore", conversation_pk(&id('a'))),
            ("IdempotencyGuard", idempotency_pk("k")),
            ("AgentDirectory", agent_pk("li")),
            ("Leases", lease_pk("poll:c")),
            ("WorkQueue", queue_pk("general")),
        ];
        for (port, key) in &keys {
            assert!(key.starts_with(prefix_of(port)), "{port}: {key}");
        }
        assert_eq!(
            keys.len(),
            PARTITION_PREFIXES.len(),
            "every prefix has a key"
        );
    }

    #[test]
    fn given_seqs_when_formatted_then_string_order_is_numeric_order() {
        assert!(message_sk(9) < message_sk(10));
        assert!(message_sk(MAX_SEQ - 1) < message_sk(MAX_SEQ));
        assert_eq!(message_sk(42), "MSG#000000000042");
    }

    #[test]
    fn given_waiting_conversations_when_keyed_then_priority_then_age_orders_them() {
        let urgent_new = queue_sk(9, 2_000, &id('a'));
        let normal_old = queue_sk(5, 1_000, &id('b'));
        let normal_new = queue_sk(5, 2_000, &id('c'));
        assert!(urgent_new < normal_old);
        assert!(normal_old < normal_new);
        assert_eq!(
            queue_sk(12, -5, &id('a')),
            format!("0#0000000000000#{}", id('a'))
        );
    }
}
