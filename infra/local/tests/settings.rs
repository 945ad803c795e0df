//! The local runner reads the documented variables as the Lambdas do (the same readers in
//! `kefu::config` and `kefu_bot::config`), including the ones it once ignored.

mod common;

use common::{free_addr, request, start};
use kefu::adapters::embedded::EmbeddedStore;
use kefu::ports::BlobStore;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// A JSON body of about `bytes` bytes.
fn padded(bytes: usize) -> Value {
    json!({"username": "demo", "password": "x".repeat(bytes)})
}

#[test]
fn given_kefu_max_body_bytes_when_a_larger_body_is_posted_then_413_on_the_web_and_agent_apis() {
    let data = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let mut runner = start(addr, data.path(), &[("KEFU_MAX_BODY_BYTES", "1024")]);
    let big = padded(2048);
    let login = request(addr, "POST", "/v1/agent/login", None, Some(&big)).unwrap();
    let session = request(addr, "POST", "/v1/web/sessions", None, Some(&big)).unwrap();
    let small = request(addr, "POST", "/v1/agent/login", None, Some(&padded(100))).unwrap();
    runner.kill().unwrap();
    runner.wait().unwrap();

    assert_eq!(login.0, 413, "agent login: {}", login.1);
    assert_eq!(session.0, 413, "web session: {}", session.1);
    // Under the limit the body is read (and the password is wrong).
    assert_eq!(small.0, 401, "{}", small.1);
}

/// Asks `text` as a new web visitor; the bot's reply, if one comes within `within`.
fn reply_to(addr: std::net::SocketAddr, text: &str, within: Duration) -> Option<String> {
    let (_, session) = request(addr, "POST", "/v1/web/sessions", None, None).unwrap();
    let token = session["visitor_token"].as_str().unwrap();
    let body = json!({"client_message_id": "q1", "text": text});
    let (status, ack) =
        request(addr, "POST", "/v1/web/messages", Some(token), Some(&body)).unwrap();
    assert_eq!(status, 202, "{ack}");
    let seq = ack["seq"].as_u64().unwrap();
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        let path = format!("/v1/web/messages?after={seq}&wait=2");
        let (_, page) = request(addr, "GET", &path, Some(token), None).unwrap();
        if let Some(reply) = page["messages"].as_array().and_then(|m| m.first()) {
            return reply["text"].as_str().map(str::to_owned);
        }
    }
    None
}

#[test]
fn given_kefu_faq_reload_secs_when_a_new_version_is_published_then_the_bot_answers_from_it_that_soon()
 {
    let data = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let mut runner = start(addr, data.path(), &[("KEFU_FAQ_RELOAD_SECS", "1")]);

    // Publish a new version beside the running runner, as `kefu faq publish --data-dir` does.
    let faq = concat!(
        r#"{"id": "password", "question": "What is the secret password of the shop?", "#,
        r#""similar": ["tell me the secret password", "shop secret password"], "#,
        r#""answer": "The secret password is marmalade."}"#,
        "\n"
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let storage = EmbeddedStore::open(data.path()).expect("open the data dir");
        let blobs = storage.blobs();
        blobs
            .put("faq/source/new.jsonl", faq.as_bytes().to_vec())
            .await
            .expect("upload the source");
        kefu_bot::library::publish(&blobs, "faq/source/new.jsonl")
            .await
            .expect("publish");
    });
    // Well inside the default 30 s: only a 1 s reload interval picks the version up.
    std::thread::sleep(Duration::from_secs(2));
    let reply = reply_to(
        addr,
        "What is the secret password of the shop?",
        Duration::from_secs(10),
    );
    runner.kill().unwrap();
    runner.wait().unwrap();

    let reply = reply.expect("a reply");
    assert!(reply.contains("marmalade"), "{reply}");
}
