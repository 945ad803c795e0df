//! The local runner killed with SIGKILL while messages are in flight, then restarted on
//! the same data dir: every acknowledged message is answered, none twice.

mod common;

use common::{free_addr, request, start};
use kefu::domain::{ConversationId, MessageId};
use serde_json::json;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The runner's id key, installed here too: the test derives the reply ids it expects.
const ID_SECRET: &str = "crash-test-id-secret-0123456789";

/// Questions the demo FAQ answers and that never hand the conversation to a person, so
/// every one of them must get exactly one bot reply.
fn faq_questions() -> Vec<String> {
    [
        "运费怎么算",
        "How long does a refund take?",
        "可以开发票吗",
        "What payment methods do you accept?",
        "退货流程是什么",
        "Do you ship overseas?",
    ]
    .map(String::from)
    .to_vec()
}

#[test]
fn given_a_sigkill_with_messages_in_flight_when_restarted_then_every_acked_message_is_answered_once()
 {
    kefu::domain::install_id_secret(ID_SECRET).unwrap();
    let data = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let mut runner = start(addr, data.path(), &[("KEFU_ID_SECRET", ID_SECRET)]);

    let sessions: Vec<(ConversationId, String)> = (0..4)
        .map(|_| {
            let (status, body) =
                request(addr, "POST", "/v1/web/sessions", None, Some(&json!({}))).unwrap();
            assert_eq!(status, 201);
            (
                ConversationId::parse(body["conversation_id"].as_str().unwrap()).unwrap(),
                body["visitor_token"].as_str().unwrap().to_owned(),
            )
        })
        .collect();

    // Senders post FAQ questions as fast as they can; each ack is recorded.
    let questions = faq_questions();
    let acked: Arc<Mutex<Vec<(usize, MessageId)>>> = Arc::default();
    let senders: Vec<_> = sessions
        .iter()
        .enumerate()
        .map(|(i, (_, token))| {
            let (token, questions, acked) = (token.clone(), questions.clone(), acked.clone());
            std::thread::spawn(move || {
                for n in 0..1000 {
                    let body = json!({"client_message_id": format!("s{i}-{n}"), "text": questions[(i * 7 + n) % questions.len()]});
                    match request(addr, "POST", "/v1/web/messages", Some(&token), Some(&body)) {
                        Ok((202, ack)) => acked.lock().unwrap().push((
                            i,
                            MessageId::parse(ack["message_id"].as_str().unwrap()).unwrap(),
                        )),
                        _ => return,
                    }
                }
            })
        })
        .collect();

    while acked.lock().unwrap().len() < 40 {
        std::thread::sleep(Duration::from_millis(5));
    }
    runner.kill().unwrap(); // SIGKILL
    runner.wait().unwrap();
    for sender in senders {
        sender.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();

    let mut runner = start(addr, data.path(), &[("KEFU_ID_SECRET", ID_SECRET)]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let replies = loop {
        let replies = replies_by_id(addr, &sessions);
        let all_answered = acked
            .iter()
            .all(|(_, id)| replies.contains_key(&MessageId::reply_to(id)));
        if all_answered || Instant::now() > deadline {
            break replies;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    runner.kill().unwrap();
    runner.wait().unwrap();

    for (session, id) in &acked {
        let count = replies.get(&MessageId::reply_to(id)).copied().unwrap_or(0);
        assert_eq!(
            count, 1,
            "session {session}: acked message {id} answered {count} times"
        );
    }
}

/// Every bot reply across the sessions, counted by message id.
fn replies_by_id(
    addr: SocketAddr,
    sessions: &[(ConversationId, String)],
) -> HashMap<MessageId, usize> {
    let mut counts = HashMap::new();
    for (_, token) in sessions {
        let (status, body) = request(
            addr,
            "GET",
            "/v1/web/messages?after=0&wait=0",
            Some(token),
            None,
        )
        .unwrap();
        assert_eq!(status, 200);
        for m in body["messages"].as_array().unwrap() {
            if m["author"] == "bot" {
                let id = MessageId::parse(m["message_id"].as_str().unwrap()).unwrap();
                *counts.entry(id).or_default() += 1;
            }
        }
    }
    counts
}
