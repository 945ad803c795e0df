//! AWS-adapter behaviour the shared contract suite (`contract.rs`, which runs every port on
//! moto too) does not pin down: the sparse work-queue index, `NotFound` cases, idempotent
//! provisioning. Run with `cargo test -p kefu-tests --test aws_smoke` (moto: see
//! `support/moto.rs`).

mod support;

use kefu::Error;
use kefu::adapters::aws::provision;
use kefu::domain::{
    Author, Channel, Conversation, ConversationKey, Customer, DeliveryState, Escalation, MessageId,
    NewMessage, now_millis,
};
use kefu::ports::{ConversationStore, WorkQueue};
use support::moto;

fn conversation(address: &str) -> Conversation {
    Conversation::new(
        &ConversationKey::new(Channel::Web, address),
        Customer {
            address: address.into(),
            name: None,
            verified_id: None,
        },
        now_millis(),
    )
}

fn escalation() -> Escalation {
    Escalation {
        queue: "general".into(),
        priority: 5,
        reason: "customer_request".into(),
    }
}

#[tokio::test]
async fn given_a_waiting_conversation_when_claimed_and_saved_then_it_leaves_the_work_queue() {
    let store = moto::fresh_store().await;
    let mut first = store.create(&conversation("a")).await.expect("create");
    let mut second = store.create(&conversation("b")).await.expect("create");
    first.escalate(escalation(), 2_000).expect("escalate");
    second.escalate(escalation(), 3_000).expect("escalate");
    store.save(&mut first).await.expect("save");
    store.save(&mut second).await.expect("save");
    assert_eq!(
        store.waiting("general", 10).await.expect("waiting").len(),
        2
    );

    first.claim("alice", 4_000).expect("claim");
    store.save(&mut first).await.expect("save");

    let ids: Vec<_> = store
        .waiting("general", 10)
        .await
        .expect("waiting")
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(
        ids,
        [second.id],
        "the index entry went with the waiting state"
    );
}

#[tokio::test]
async fn given_no_stored_conversation_when_saved_then_not_found() {
    let store = moto::fresh_store().await;
    let mut ghost = conversation("ghost");

    let result = store.save(&mut ghost).await;

    assert!(matches!(result, Err(Error::NotFound(_))), "{result:?}");
    assert_eq!(ghost.version, 0);
}

#[tokio::test]
async fn given_a_failed_delivery_when_delivered_later_then_the_reason_is_gone() {
    let store = moto::fresh_store().await;
    let conv = store.create(&conversation("s")).await.expect("create");
    let reply = NewMessage {
        message_id: MessageId::random(),
        author: Author::Bot,
        agent_id: None,
        text: "您好".into(),
        created_at: 2_000,
        sentiment: None,
        quick_replies: Vec::new(),
    };
    let (stored, _) = store.append(&conv.id, reply).await.expect("append");
    let failed = DeliveryState::Failed("rate limited".into());
    store
        .set_delivery(&conv.id, &stored.message_id, failed)
        .await
        .expect("set");

    store
        .set_delivery(&conv.id, &stored.message_id, DeliveryState::Delivered)
        .await
        .expect("set");

    let found = store
        .find_message(&conv.id, &stored.message_id)
        .await
        .expect("find")
        .expect("stored");
    assert_eq!(found.delivery, DeliveryState::Delivered);
    let unknown = MessageId::random();
    let result = store
        .set_delivery(&conv.id, &unknown, DeliveryState::Delivered)
        .await;
    assert!(matches!(result, Err(Error::NotFound(_))), "{result:?}");
}

#[tokio::test]
async fn given_provisioned_resources_when_provisioned_again_then_nothing_fails_or_changes() {
    let (dynamodb, table) = moto::fresh_table().await;
    let (sqs, queue_url) = moto::fresh_fifo_queue().await;
    let (s3, bucket) = moto::fresh_bucket().await;
    let queue_name = queue_url
        .rsplit('/')
        .next()
        .expect("a queue URL has a name");

    provision::create_table(&dynamodb, &table)
        .await
        .expect("table again");
    let again = provision::create_fifo_queue(&sqs, queue_name)
        .await
        .expect("queue again");
    provision::create_bucket(&s3, &bucket)
        .await
        .expect("bucket again");

    assert_eq!(again, queue_url);
    let not_fifo = provision::create_fifo_queue(&sqs, "plain").await;
    assert!(matches!(not_fifo, Err(Error::Invalid(_))), "{not_fifo:?}");
}
