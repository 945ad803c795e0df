//! The local runner killed with SIGKILL while messages are in flight, then restarted on
//! the same data dir: every acknowledged message is answered, none twice.

use kefu::domain::{ConversationId, MessageId};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn start(addr: SocketAddr, data: &Path) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kefu-local"))
        .env("KEFU_HTTP_ADDR", addr.to_string())
        .env("KEFU_DATA_DIR", data)
        .env("KEFU_VISIBILITY_SECS", "2")
        .env("KEFU_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start kefu-local");
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if matches!(request(addr, "GET", "/healthz", None, None), Ok((200, _))) {
            return child;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("kefu-local did not become healthy");
}

/// A minimal HTTP/1.1 client: one request per connection.
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> std::io::Result<(u16, Value)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw)?;
    let status = raw
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status line"))?;
    let (_, payload) = raw.split_once("\r\n\r\n").unwrap_or(("", ""));
    Ok((status, serde_json::from_str(payload).unwrap_or(Value::Null)))
}

fn faq_questions() -> Vec<String> {
    let source = include_str!("../../faq/faq.jsonl");
    source
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["question"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

#[test]
fn given_a_sigkill_with_messages_in_flight_when_restarted_then_every_acked_message_is_answered_once()
 {
    let data = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let mut runner = start(addr, data.path());

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

    let mut runner = start(addr, data.path());
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
