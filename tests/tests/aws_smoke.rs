//! The AWS adapters against a moto server: what the shared contract suite does not cover.
//! Run with `cargo test -p kefu-tests --test aws_smoke` (see `support/moto.rs` for moto).

mod support;

use kefu::Error;
use kefu::domain::{
    Author, Channel, Conversation, ConversationKey, ConversationState, Customer, DeliveryState,
    Escalation, MessageId, NewMessage,
};
use kefu::ports::{
    AgentAccount, AgentDirectory, BlobStore, ConversationStore, MessageQueue, WorkQueue,
};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use support::moto;

const NO_WAIT: Duration = Duration::ZERO;
const VISIBLE_LONG: Duration = Duration::from_secs(60);

fn conversation(address: &str) -> Conversation {
    Conversation::new(
        &ConversationKey::new(Channel::Web, address),
        Customer {
            address: address.into(),
            name: Some("王小明".into()),
            verified_id: None,
        },
        1_000,
    )
}

fn waiting(address: &str, priority: u8, since: i64) -> Conversation {
    let mut conversation = conversation(address);
    conversation
        .escalate(
            Escalation {
                queue: "general".into(),
                priority,
                reason: "customer_request".into(),
            },
            since,
        )
        .expect("a bot conversation escalates");
    conversation
}

fn customer_message(text: &str) -> NewMessage {
    NewMessage {
        message_id: MessageId::random(),
        author: Author::Customer,
        agent_id: None,
        text: text.into(),
        created_at: 2_000,
    }
}

// ---- SQS ------------------------------------------------------------------------------

#[tokio::test]
async fn given_a_sent_message_when_received_and_deleted_then_it_is_gone() {
    let queue = moto::fresh_queue().await;
    queue.send("c-group", "m1", "hello").await.expect("send");

    let got = queue
        .receive(10, VISIBLE_LONG, NO_WAIT)
        .await
        .expect("receive");
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].group.as_str(), got[0].body.as_str()),
        ("c-group", "hello")
    );
    assert_eq!(got[0].receive_count, 1);

    queue.delete(&got[0].receipt).await.expect("delete");
    queue.release(&got[0].receipt).await.ok(); // a stale receipt must not bring it back
    assert!(
        queue
            .receive(10, VISIBLE_LONG, NO_WAIT)
            .await
            .expect("receive")
            .is_empty()
    );
}

#[tokio::test]
async fn given_two_sends_with_one_dedup_id_when_received_then_one_message_arrives() {
    let queue = moto::fresh_queue().await;
    queue.send("g", "same-id", "first").await.expect("send");
    queue
        .send("g", "same-id", "second")
        .await
        .expect("duplicate send is accepted");

    let got = queue
        .receive(10, VISIBLE_LONG, NO_WAIT)
        .await
        .expect("receive");
    let bodies: Vec<_> = got.iter().map(|d| d.body.as_str()).collect();
    assert_eq!(bodies, ["first"]);
}

#[tokio::test]
async fn given_a_group_when_received_then_order_holds_and_in_flight_blocks_the_group() {
    let queue = moto::fresh_queue().await;
    for (i, body) in ["one", "two", "three"].into_iter().enumerate() {
        queue.send("g", &format!("m{i}"), body).await.expect("send");
    }
    let first = queue
        .receive(1, VISIBLE_LONG, NO_WAIT)
        .await
        .expect("receive");
    assert_eq!(first[0].body, "one");
    let blocked = queue
        .receive(10, VISIBLE_LONG, NO_WAIT)
        .await
        .expect("receive");
    assert!(
        blocked.is_empty(),
        "the group is locked while `one` is in flight"
    );

    queue.release(&first[0].receipt).await.expect("release");
    let again = queue
        .receive(10, VISIBLE_LONG, NO_WAIT)
        .await
        .expect("receive");
    let bodies: Vec<_> = again.iter().map(|d| d.body.as_str()).collect();
    assert_eq!(bodies, ["one", "two", "three"]);
    assert_eq!(
        again[0].receive_count, 2,
        "a released message counts its redelivery"
    );
}

#[tokio::test]
async fn given_a_short_visibility_when_it_lapses_then_the_message_is_redelivered() {
    let queue = moto::fresh_queue().await;
    queue.send("g", "m", "body").await.expect("send");
    let first = queue
        .receive(1, Duration::from_secs(1), NO_WAIT)
        .await
        .expect("receive");
    assert_eq!(first.len(), 1);

    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let again = queue
        .receive(1, VISIBLE_LONG, NO_WAIT)
        .await
        .expect("receive");
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].receive_count, 2);
}

// ---- DynamoDB: conversations ------------------------------------------------------------

#[tokio::test]
async fn given_an_existing_conversation_when_created_again_then_the_stored_one_is_returned() {
    let store = moto::fresh_store().await;
    let original = conversation("s1");
    assert_eq!(store.create(&original).await.expect("create"), original);

    let mut other = original.clone();
    other.customer.name = Some("someone else".into());
    assert_eq!(store.create(&other).await.expect("create again"), original);
    assert_eq!(store.get(&original.id).await.expect("get"), Some(original));
}

#[tokio::test]
async fn given_a_message_when_appended_twice_then_it_is_stored_once() {
    let store = moto::fresh_store().await;
    let conv = store.create(&conversation("s1")).await.expect("create");
    let message = customer_message("where is my order?");

    let (first, created) = store
        .append(&conv.id, message.clone())
        .await
        .expect("append");
    assert!(created);
    assert_eq!(
        (first.seq, first.channel, &first.delivery),
        (1, Channel::Web, &DeliveryState::Pending)
    );
    let (again, created) = store.append(&conv.id, message).await.expect("append again");
    assert!(!created);
    assert_eq!(again, first);

    let (second, _) = store
        .append(&conv.id, customer_message("hello?"))
        .await
        .expect("append");
    assert_eq!(second.seq, 2);
    assert_eq!(
        store
            .get(&conv.id)
            .await
            .expect("get")
            .expect("exists")
            .last_seq,
        2
    );
    let all = store.messages(&conv.id, 0, 10).await.expect("messages");
    assert_eq!(all, [first.clone(), second.clone()]);
    assert_eq!(
        store.messages(&conv.id, 1, 10).await.expect("messages"),
        [second]
    );
}

#[tokio::test]
async fn given_no_conversation_when_appending_then_not_found() {
    let store = moto::fresh_store().await;
    let missing = conversation("nobody").id;
    let result = store.append(&missing, customer_message("hi")).await;
    assert!(matches!(result, Err(Error::NotFound(_))), "{result:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn given_concurrent_appends_when_they_race_then_seqs_are_unique_and_gapless() {
    const WRITERS: u64 = 20;
    let store = Arc::new(moto::fresh_store().await);
    let conv = store.create(&conversation("busy")).await.expect("create");

    let tasks: Vec<_> = (0..WRITERS)
        .map(|i| {
            let (store, id) = (store.clone(), conv.id.clone());
            tokio::spawn(async move { store.append(&id, customer_message(&format!("#{i}"))).await })
        })
        .collect();
    let mut seqs = BTreeSet::new();
    for task in tasks {
        let (message, created) = task.await.expect("task").expect("append");
        assert!(created);
        seqs.insert(message.seq);
    }
    assert_eq!(seqs, (1..=WRITERS).collect());
    let stored = store.messages(&conv.id, 0, 100).await.expect("messages");
    assert_eq!(
        stored.iter().map(|m| m.seq).collect::<Vec<_>>(),
        (1..=WRITERS).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn given_more_messages_than_the_limit_when_listed_then_pages_are_in_order() {
    let store = moto::fresh_store().await;
    let conv = store.create(&conversation("long")).await.expect("create");
    for i in 0..5 {
        store
            .append(&conv.id, customer_message(&format!("#{i}")))
            .await
            .expect("append");
    }
    let page = store.messages(&conv.id, 2, 2).await.expect("messages");
    assert_eq!(page.iter().map(|m| m.seq).collect::<Vec<_>>(), [3, 4]);
    assert!(
        store
            .messages(&conv.id, 5, 10)
            .await
            .expect("messages")
            .is_empty()
    );
    assert!(
        store
            .messages(&conv.id, 0, 0)
            .await
            .expect("messages")
            .is_empty()
    );
}

#[tokio::test]
async fn given_a_stored_message_when_delivery_is_recorded_then_find_shows_it() {
    let store = moto::fresh_store().await;
    let conv = store.create(&conversation("s1")).await.expect("create");
    let (message, _) = store
        .append(&conv.id, customer_message("hi"))
        .await
        .expect("append");

    let failed = DeliveryState::Failed("channel refused".into());
    store
        .set_delivery(&conv.id, &message.message_id, failed.clone())
        .await
        .expect("set");
    let found = store
        .find_message(&conv.id, &message.message_id)
        .await
        .expect("find");
    assert_eq!(found.expect("stored").delivery, failed);

    store
        .set_delivery(&conv.id, &message.message_id, DeliveryState::Delivered)
        .await
        .expect("set");
    let found = store
        .find_message(&conv.id, &message.message_id)
        .await
        .expect("find");
    assert_eq!(found.expect("stored").delivery, DeliveryState::Delivered);

    let unknown = MessageId::random();
    assert_eq!(
        store.find_message(&conv.id, &unknown).await.expect("find"),
        None
    );
    let result = store
        .set_delivery(&conv.id, &unknown, DeliveryState::Delivered)
        .await;
    assert!(matches!(result, Err(Error::NotFound(_))), "{result:?}");
}

#[tokio::test]
async fn given_two_readers_when_both_save_then_the_second_conflicts_and_last_seq_survives() {
    let store = moto::fresh_store().await;
    let conv = store.create(&conversation("s1")).await.expect("create");
    let mut first = store.get(&conv.id).await.expect("get").expect("exists");
    let mut second = first.clone();
    store
        .append(&conv.id, customer_message("hi"))
        .await
        .expect("append");

    first.bot_misses = 1;
    store.save(&mut first).await.expect("first save wins");
    assert_eq!(first.version, conv.version + 1);
    second.bot_misses = 2;
    let lost = store.save(&mut second).await;
    assert!(matches!(lost, Err(Error::Conflict(_))), "{lost:?}");
    assert_eq!(
        second.version, conv.version,
        "a lost save leaves the version alone"
    );

    let stored = store.get(&conv.id).await.expect("get").expect("exists");
    assert_eq!(
        (stored.bot_misses, stored.last_seq),
        (1, 1),
        "save keeps append's last_seq"
    );
}

#[tokio::test]
async fn given_no_stored_conversation_when_saved_then_not_found() {
    let store = moto::fresh_store().await;
    let mut ghost = conversation("ghost");
    let result = store.save(&mut ghost).await;
    assert!(matches!(result, Err(Error::NotFound(_))), "{result:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn given_fifty_agents_when_they_claim_one_conversation_then_exactly_one_wins() {
    let store = Arc::new(moto::fresh_store().await);
    let conv = store
        .create(&waiting("s1", 5, 1_000))
        .await
        .expect("create");

    let agents: Vec<_> = (0..50)
        .map(|i| {
            let (store, id) = (store.clone(), conv.id.clone());
            tokio::spawn(async move {
                let agent = format!("agent{i}");
                loop {
                    let mut current = store.get(&id).await?.expect("exists");
                    current.claim(&agent, 2_000)?;
                    match store.save(&mut current).await {
                        Err(Error::Conflict(_)) => continue, // re-read, then claim decides
                        other => return other.map(|()| agent),
                    }
                }
            })
        })
        .collect();
    let mut winners = Vec::new();
    for agent in agents {
        match agent.await.expect("task") {
            Ok(winner) => winners.push(winner),
            Err(Error::Conflict(_)) => {}
            Err(other) => panic!("unexpected error: {other}"),
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    let stored = store.get(&conv.id).await.expect("get").expect("exists");
    assert_eq!(stored.state, ConversationState::Assigned);
    assert_eq!(stored.assignee.as_deref(), Some(winners[0].as_str()));
}

#[tokio::test]
async fn given_waiting_conversations_when_listed_then_priority_then_age_orders_them() {
    let store = moto::fresh_store().await;
    let old_normal = store.create(&waiting("a", 5, 1_000)).await.expect("create");
    let new_urgent = store.create(&waiting("b", 9, 3_000)).await.expect("create");
    let new_normal = store.create(&waiting("c", 5, 2_000)).await.expect("create");
    store
        .create(&conversation("bot-only"))
        .await
        .expect("create");

    let ids = |list: Vec<Conversation>| list.into_iter().map(|c| c.id).collect::<Vec<_>>();
    let queue = store.waiting("general", 10).await.expect("waiting");
    assert_eq!(
        ids(queue),
        [
            new_urgent.id.clone(),
            old_normal.id.clone(),
            new_normal.id.clone()
        ]
    );
    assert_eq!(
        ids(store.waiting("general", 1).await.expect("waiting")),
        vec![new_urgent.id.clone()]
    );
    assert!(
        store
            .waiting("billing", 10)
            .await
            .expect("waiting")
            .is_empty()
    );

    let mut claimed = store
        .get(&new_urgent.id)
        .await
        .expect("get")
        .expect("exists");
    claimed.claim("alice", 4_000).expect("claim");
    store.save(&mut claimed).await.expect("save");
    let queue = store.waiting("general", 10).await.expect("waiting");
    assert_eq!(
        ids(queue),
        [old_normal.id, new_normal.id],
        "a claimed one leaves the queue"
    );
}

// ---- DynamoDB: idempotency and agents ---------------------------------------------------

#[tokio::test]
async fn given_a_key_when_put_twice_then_the_first_value_wins_until_it_expires() {
    // Imported here only: its `get` would be ambiguous with the conversation store's.
    use kefu::ports::IdempotencyGuard;

    let store = moto::fresh_store().await;
    let ttl = Duration::from_secs(1);
    assert_eq!(
        store.put_if_absent("k", "first", ttl).await.expect("put"),
        None
    );
    assert_eq!(
        store.put_if_absent("k", "second", ttl).await.expect("put"),
        Some("first".into())
    );
    assert_eq!(
        IdempotencyGuard::get(&store, "k").await.expect("get"),
        Some("first".into())
    );
    assert_eq!(
        IdempotencyGuard::get(&store, "other").await.expect("get"),
        None
    );

    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(
        IdempotencyGuard::get(&store, "k").await.expect("get"),
        None,
        "expired"
    );
    assert_eq!(
        store.put_if_absent("k", "third", ttl).await.expect("put"),
        None
    );
    assert_eq!(
        IdempotencyGuard::get(&store, "k").await.expect("get"),
        Some("third".into())
    );
}

#[tokio::test]
async fn given_an_agent_when_created_twice_then_the_first_account_stays() {
    let store = moto::fresh_store().await;
    let account = AgentAccount {
        username: "alice".into(),
        display_name: "Alice".into(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        queues: vec!["general".into(), "returns".into()],
        created_at: 1_000,
    };
    assert!(store.create_agent(&account).await.expect("create"));
    let impostor = AgentAccount {
        display_name: "Mallory".into(),
        ..account.clone()
    };
    assert!(!store.create_agent(&impostor).await.expect("create again"));
    assert_eq!(store.agent("alice").await.expect("agent"), Some(account));
    assert_eq!(store.agent("bob").await.expect("agent"), None);
}

// ---- S3 ---------------------------------------------------------------------------------

#[tokio::test]
async fn given_blobs_when_written_read_and_listed_then_they_round_trip_under_the_prefix() {
    let blobs = moto::fresh_blob_store("faq/").await;
    blobs
        .put("index/2/meta", b"two".to_vec())
        .await
        .expect("put");
    blobs
        .put("index/10/meta", b"ten".to_vec())
        .await
        .expect("put");
    blobs
        .put("source/faq.csv", "问,答\n".as_bytes().to_vec())
        .await
        .expect("put");
    blobs
        .put("index/2/meta", b"two, again".to_vec())
        .await
        .expect("overwrite");

    assert_eq!(
        blobs.get("index/2/meta").await.expect("get"),
        Some(b"two, again".to_vec())
    );
    assert_eq!(blobs.get("index/3/meta").await.expect("get"), None);
    assert_eq!(
        blobs.list("index/").await.expect("list"),
        ["index/10/meta", "index/2/meta"]
    );
    assert_eq!(blobs.list("").await.expect("list").len(), 3);
}
