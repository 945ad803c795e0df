//! Durability of the embedded store as a whole: what was committed survives closing the
//! store and a crashed process; the database refuses schemas it does not know.

use super::*;
use crate::domain::{
    Author, Channel, Conversation, ConversationKey, Customer, MessageId, NewMessage, now_millis,
};
use crate::ports::{
    AgentAccount, AgentDirectory, BlobStore, ConversationStore, IdempotencyGuard, MessageQueue,
};
use std::process::Command;

/// Set for the child process of the crash test: the directory it writes to.
const CRASH_DIR_ENV: &str = "KEFU_EMBEDDED_CRASH_DIR";
/// The visibility of the message the crashing process holds: short, so the test is quick.
const CRASH_VISIBILITY: Duration = Duration::from_millis(300);

fn conversation(address: &str) -> Conversation {
    Conversation::new(
        &ConversationKey::new(Channel::Sms, address),
        Customer::default(),
        now_millis(),
    )
}

fn new_message(platform_id: &str, conversation: &Conversation) -> NewMessage {
    NewMessage {
        message_id: MessageId::for_inbound(&conversation.id, platform_id),
        author: Author::Customer,
        agent_id: None,
        text: "你好".into(),
        created_at: 2,
        sentiment: None,
        quick_replies: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn given_committed_writes_when_the_store_is_reopened_then_all_are_there() {
    let dir = tempfile::tempdir().unwrap();
    let conv = conversation("+100");
    {
        let store = EmbeddedStore::open(dir.path()).unwrap();
        store.conversations().create(&conv).await.unwrap();
        let conversations = store.conversations();
        conversations
            .append(&conv.id, new_message("p1", &conv))
            .await
            .unwrap();
        store
            .idempotency()
            .put_if_absent("k", "v", Duration::from_secs(60))
            .await
            .unwrap();
        store
            .blobs()
            .put("faq/source/a.csv", b"q,a".to_vec())
            .await
            .unwrap();
        let account = AgentAccount {
            username: "alice".into(),
            display_name: "Alice".into(),
            password_hash: "$argon2id$x".into(),
            queues: vec!["general".into()],
            disabled: false,
            created_at: 3,
        };
        store.agents().create_agent(&account).await.unwrap();
        store.queue(INBOUND).send("g", "d", "body").await.unwrap();
    }

    let store = EmbeddedStore::open(dir.path()).unwrap();

    let stored = store.conversations().get(&conv.id).await.unwrap().unwrap();
    assert_eq!(stored.last_seq, 1);
    let messages = store
        .conversations()
        .messages(&conv.id, 0, 10)
        .await
        .unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(
        store.idempotency().get("k").await.unwrap().as_deref(),
        Some("v")
    );
    assert_eq!(
        store.blobs().get("faq/source/a.csv").await.unwrap(),
        Some(b"q,a".to_vec())
    );
    assert!(store.agents().agent("alice").await.unwrap().is_some());
    assert_eq!(store.queue(INBOUND).depth().await.unwrap().visible, 1);
    // The duplicate window survives too.
    store.queue(INBOUND).send("g", "d", "body").await.unwrap();
    assert_eq!(store.queue(INBOUND).depth().await.unwrap().visible, 1);
}

/// Not a test of its own: the body of the process that [`given_a_crashed_process_...`]
/// runs and kills. Ignored so it only runs when asked for by name.
///
/// [`given_a_crashed_process_...`]: given_a_crashed_process_when_reopened_then_commits_survive_and_its_message_returns
#[tokio::test(flavor = "multi_thread")]
#[ignore = "run as a child process by the crash test"]
async fn crashing_child_process() {
    let Some(dir) = std::env::var_os(CRASH_DIR_ENV) else {
        return;
    };
    let store = EmbeddedStore::open(Path::new(&dir)).unwrap();
    let conv = conversation("+200");
    store.conversations().create(&conv).await.unwrap();
    store
        .conversations()
        .append(&conv.id, new_message("p1", &conv))
        .await
        .unwrap();
    let inbound = store.queue(INBOUND);
    inbound.send("g", "d", "in flight").await.unwrap();
    let taken = inbound
        .receive(1, CRASH_VISIBILITY, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    // Die holding the message, without closing the database.
    std::process::abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn given_a_crashed_process_when_reopened_then_commits_survive_and_its_message_returns() {
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "adapters::embedded::tests::crashing_child_process",
            "--test-threads=1",
        ])
        .env(CRASH_DIR_ENV, dir.path())
        .output()
        .unwrap()
        .status;
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.signal(),
            Some(6),
            "the child must die by abort: {status}"
        );
    }
    assert!(!status.success(), "the child process must have died");

    let store = EmbeddedStore::open(dir.path()).unwrap();

    let conv = conversation("+200");
    let stored = store.conversations().get(&conv.id).await.unwrap();
    assert_eq!(stored.map(|c| c.last_seq), Some(1));
    let inbound = store.queue(INBOUND);
    let again = inbound
        .receive(1, Duration::from_secs(30), Duration::from_secs(3))
        .await
        .unwrap();
    assert_eq!(
        again.len(),
        1,
        "the expired in-flight message is delivered again"
    );
    assert_eq!(
        (again[0].body.as_str(), again[0].receive_count),
        ("in flight", 2)
    );
}

#[tokio::test]
async fn given_an_open_store_then_connections_use_wal_and_full_sync() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();

    let (mode, sync): (String, i64) = store
        .db
        .read("pragmas", |conn| {
            let mode = conn
                .query_row("PRAGMA journal_mode", [], |row| row.get(0))
                .unwrap();
            let sync = conn
                .query_row("PRAGMA synchronous", [], |row| row.get(0))
                .unwrap();
            Ok((mode, sync))
        })
        .await
        .unwrap();

    assert_eq!(mode, "wal");
    assert_eq!(sync, 2, "synchronous = FULL");
}

#[test]
fn given_a_database_from_a_newer_build_when_opened_then_it_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(EmbeddedStore::open(dir.path()).unwrap());
    let conn = rusqlite::Connection::open(dir.path().join("kefu.db")).unwrap();
    conn.pragma_update(None, "user_version", schema::VERSION + 1)
        .unwrap();
    drop(conn);

    let reopened = EmbeddedStore::open(dir.path());

    assert!(matches!(reopened, Err(Error::Corrupt(_))));
}

#[test]
fn given_a_current_database_when_reopened_then_the_schema_version_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    drop(EmbeddedStore::open(dir.path()).unwrap());

    drop(EmbeddedStore::open(dir.path()).unwrap());

    let conn = rusqlite::Connection::open(dir.path().join("kefu.db")).unwrap();
    let version: u32 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap();
    assert_eq!(version, schema::VERSION);
}

#[tokio::test(flavor = "multi_thread")]
async fn given_a_database_from_the_previous_version_when_opened_then_it_is_migrated_and_keeps_its_messages()
 {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let conversations = store.conversations();
    let conversation = conversations
        .create(&conversation("+8613800000003"))
        .await
        .unwrap();
    let (stored, _) = conversations
        .append(&conversation.id, new_message("old-1", &conversation))
        .await
        .unwrap();
    drop((conversations, store));
    // What a build of schema version 2 left behind: no quick_replies column, no leases, no
    // disabled agents or failed-login counters.
    let conn = rusqlite::Connection::open(dir.path().join("kefu.db")).unwrap();
    conn.execute_batch(
        "ALTER TABLE messages DROP COLUMN quick_replies; DROP TABLE leases;
         DROP INDEX conversations_empty; ALTER TABLE agents DROP COLUMN disabled;
         DROP TABLE login_failures; PRAGMA user_version = 2;",
    )
    .unwrap();
    drop(conn);

    let reopened = EmbeddedStore::open(dir.path()).unwrap().conversations();
    let messages = reopened.messages(&conversation.id, 0, 10).await.unwrap();

    assert_eq!(messages, vec![stored]);
    assert!(messages[0].quick_replies.is_empty());
}
