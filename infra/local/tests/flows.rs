//! End to end on the local runner: a customer asks where their order is. An anonymous
//! visitor is asked to verify (and learns nothing about the order); a signed-in customer
//! who owns it gets its status.

mod common;

use common::{free_addr, request, start};
use kefu::auth::ShopIdentitySecret;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const SHOP_SECRET: &str = "flows-test-shop-secret-0123456789";

fn ask(addr: std::net::SocketAddr, session: &Value, text: &str) -> String {
    let token = session["visitor_token"].as_str().unwrap();
    let body = json!({"client_message_id": "q1", "text": text});
    let (status, ack) =
        request(addr, "POST", "/v1/web/messages", Some(token), Some(&body)).unwrap();
    assert_eq!(status, 202, "{ack}");
    let seq = ack["seq"].as_u64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let path = format!("/v1/web/messages?after={seq}&wait=5");
        let (_, page) = request(addr, "GET", &path, Some(token), None).unwrap();
        if let Some(reply) = page["messages"].as_array().and_then(|m| m.first()) {
            return reply["text"].as_str().unwrap().to_owned();
        }
    }
    panic!("no reply to {text}");
}

#[test]
fn given_an_order_question_then_only_its_owner_sees_the_order() {
    let data = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let mut runner = start(
        addr,
        data.path(),
        &[("KEFU_SHOP_IDENTITY_SECRET", SHOP_SECRET)],
    );

    let (_, anonymous) = request(addr, "POST", "/v1/web/sessions", None, Some(&json!({}))).unwrap();
    let stranger = ask(addr, &anonymous, "我的订单123456到哪了");

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let signature = ShopIdentitySecret::new(SHOP_SECRET)
        .unwrap()
        .sign("42", Some("Li Lei"), now);
    let body = json!({"identity": {"customer_id": "42", "name": "Li Lei", "timestamp": now, "signature": signature}});
    let (status, owner) = request(addr, "POST", "/v1/web/sessions", None, Some(&body)).unwrap();
    assert_eq!(status, 201, "{owner}");
    let answer = ask(addr, &owner, "我的订单123456到哪了");

    runner.kill().unwrap();
    runner.wait().unwrap();

    assert!(
        !stranger.contains("SF1234567890123") && !stranger.contains("顺丰"),
        "leaked: {stranger}"
    );
    assert!(
        stranger.contains("验证") || stranger.contains("登录"),
        "asks to verify: {stranger}"
    );
    assert!(
        answer.contains("SF1234567890123") || answer.contains("顺丰"),
        "owner sees the order: {answer}"
    );
}
