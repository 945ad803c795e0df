//! The web widget API over the embedded adapters, driven through the router with
//! `tower::ServiceExt::oneshot`: what a client sees, and that bad input changes nothing.

use axum::Router;
use axum::body::Body;
use http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use kefu::adapters::embedded::{
    EmbeddedStore, INBOUND, SqliteConversationStore, SqliteMessageQueue,
};
use kefu::auth::{Claims, ShopIdentitySecret, TokenSigner};
use kefu::domain::{
    Author, Channel, ConversationId, ConversationKey, InboundMessage, MessageId, NewMessage,
    now_millis,
};
use kefu::ports::{ConversationStore, MessageQueue};
use kefu::web::{WebConfig, WebState, router};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tempfile::TempDir;
use tower::ServiceExt;

const TOKEN_SECRET: &str = "web-api-test-token-secret";
const SHOP_SECRET: &str = "web-api-test-shop-secret";
const ALLOWED_ORIGIN: &str = "https://shop.example.com";
const MAX_BODY: usize = 1024;

struct App {
    _dir: TempDir,
    embedded: EmbeddedStore,
    router: Router,
    tokens: TokenSigner,
}

/// A response: status, headers and the JSON body (`Value::Null` when empty).
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Reply {
    fn error_code(&self) -> &str {
        self.body["error"]["code"]
            .as_str()
            .unwrap_or("<no error code>")
    }

    fn error_message(&self) -> &str {
        self.body["error"]["message"]
            .as_str()
            .unwrap_or("<no error message>")
    }
}

impl App {
    fn new() -> Self {
        Self::with_config(WebConfig {
            cors_origins: vec![ALLOWED_ORIGIN.to_owned()],
            max_body_bytes: MAX_BODY,
            max_wait: Duration::from_secs(20),
            poll_interval: Duration::from_millis(20),
            max_polls_per_visitor: 2,
        })
    }

    fn with_config(config: WebConfig) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let embedded = EmbeddedStore::open(dir.path()).expect("embedded store");
        let tokens = TokenSigner::new(TOKEN_SECRET).expect("signer");
        let state = WebState {
            store: Arc::new(embedded.conversations()),
            inbound: Arc::new(embedded.queue(INBOUND)),
            polls: Arc::new(embedded.leases()),
            tokens: tokens.clone(),
            shop_identity_secret: Some(ShopIdentitySecret::new(SHOP_SECRET).expect("secret")),
            config,
        };
        Self {
            _dir: dir,
            router: router(state),
            embedded,
            tokens,
        }
    }

    fn store(&self) -> SqliteConversationStore {
        self.embedded.conversations()
    }

    fn inbound(&self) -> SqliteMessageQueue {
        self.embedded.queue(INBOUND)
    }

    async fn send(&self, request: Request<Body>) -> Reply {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn post(&self, uri: &str, token: Option<&str>, body: &str) -> Reply {
        self.send(request(
            Method::POST,
            uri,
            token,
            Some("application/json"),
            body,
        ))
        .await
    }

    async fn get(&self, uri: &str, token: Option<&str>) -> Reply {
        self.send(request(Method::GET, uri, token, None, "")).await
    }

    /// Opens an anonymous session: (conversation id, visitor token).
    async fn session(&self) -> (ConversationId, String) {
        let reply = self.post("/v1/web/sessions", None, "").await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        let id = ConversationId::parse(reply.body["conversation_id"].as_str().unwrap()).unwrap();
        (id, reply.body["visitor_token"].as_str().unwrap().to_owned())
    }

    async fn stored_messages(&self, id: &ConversationId) -> usize {
        self.store().messages(id, 0, 100).await.unwrap().len()
    }

    async fn queued(&self) -> u64 {
        self.inbound().depth().await.unwrap().total()
    }
}

fn request(
    method: Method,
    uri: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: &str,
) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    if let Some(content_type) = content_type {
        builder = builder.header(header::CONTENT_TYPE, content_type);
    }
    builder.body(Body::from(body.to_owned())).unwrap()
}

fn message(client_id: &str, text: &str) -> String {
    json!({ "client_message_id": client_id, "text": text }).to_string()
}

fn identity(customer_id: &str, name: Option<&str>, timestamp: i64) -> Value {
    let secret = ShopIdentitySecret::new(SHOP_SECRET).unwrap();
    json!({
        "identity": {
            "customer_id": customer_id,
            "name": name,
            "timestamp": timestamp,
            "signature": secret.sign(customer_id, name, timestamp),
        }
    })
}

fn now_secs() -> i64 {
    now_millis() / 1000
}

// ---- sessions ----------------------------------------------------------------------------

#[tokio::test]
async fn given_no_identity_when_opening_a_session_then_a_fresh_anonymous_conversation_and_token() {
    let app = App::new();
    let (id, token) = app.session().await;
    let (other, _) = app.session().await;
    assert_ne!(id, other, "each anonymous session is its own conversation");

    let claims = app.tokens.verify(&token, now_millis()).unwrap();
    assert_eq!(claims.conv.as_ref(), Some(&id));
    let conversation = app.store().get(&id).await.unwrap().expect("created");
    assert_eq!(conversation.channel, Channel::Web);
    assert!(conversation.customer.address.starts_with("v:"));
    assert_eq!(conversation.customer.verified_id, None);
    assert_eq!(claims.sub, conversation.customer.address);
}

#[tokio::test]
async fn given_a_shop_signed_identity_when_opening_sessions_then_the_same_conversation_resumes() {
    let app = App::new();
    let body = identity("42", Some("Li Lei"), now_secs()).to_string();
    let first = app.post("/v1/web/sessions", None, &body).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let again = app.post("/v1/web/sessions", None, &body).await;
    assert_eq!(first.body["conversation_id"], again.body["conversation_id"]);

    let expected = ConversationKey::new(Channel::Web, "u:42").conversation_id();
    assert_eq!(first.body["conversation_id"], expected.as_str());
    let conversation = app.store().get(&expected).await.unwrap().unwrap();
    assert_eq!(conversation.customer.verified_id.as_deref(), Some("42"));
    assert_eq!(conversation.customer.name.as_deref(), Some("Li Lei"));
}

#[tokio::test]
async fn given_a_bad_identity_when_opening_a_session_then_rejected_and_nothing_created() {
    let app = App::new();
    let mut forged = identity("42", None, now_secs());
    forged["identity"]["customer_id"] = json!("43");
    let stale = identity("43", None, now_secs() - 11 * 60);
    let mut not_hex = identity("43", None, now_secs());
    not_hex["identity"]["signature"] = json!("not-hex");
    let mut unknown_field = identity("43", None, now_secs());
    unknown_field["identity"]["admin"] = json!(true);
    let cases = [
        (forged.to_string(), StatusCode::UNAUTHORIZED),
        (stale.to_string(), StatusCode::UNAUTHORIZED),
        (not_hex.to_string(), StatusCode::BAD_REQUEST),
        (unknown_field.to_string(), StatusCode::BAD_REQUEST),
        (r#"{"identity": "#.to_owned(), StatusCode::BAD_REQUEST),
        (r#"{"who": 1}"#.to_owned(), StatusCode::BAD_REQUEST),
        ("[]".to_owned(), StatusCode::BAD_REQUEST),
    ];
    for (body, status) in cases {
        let reply = app.post("/v1/web/sessions", None, &body).await;
        assert_eq!(reply.status, status, "{body}: {}", reply.body);
        assert!(!reply.error_message().is_empty());
    }
    let key = ConversationKey::new(Channel::Web, "u:43").conversation_id();
    assert_eq!(app.store().get(&key).await.unwrap(), None);
}

#[tokio::test]
async fn given_no_shop_secret_when_an_identity_is_sent_then_400() {
    let dir = tempfile::tempdir().unwrap();
    let embedded = EmbeddedStore::open(dir.path()).unwrap();
    let app = router(WebState {
        store: Arc::new(embedded.conversations()),
        inbound: Arc::new(embedded.queue(INBOUND)),
        polls: Arc::new(embedded.leases()),
        tokens: TokenSigner::new(TOKEN_SECRET).unwrap(),
        shop_identity_secret: None,
        config: WebConfig::default(),
    });
    let body = identity("42", None, now_secs()).to_string();
    let response = app
        .oneshot(request(
            Method::POST,
            "/v1/web/sessions",
            None,
            Some("application/json"),
            &body,
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let key = ConversationKey::new(Channel::Web, "u:42").conversation_id();
    assert_eq!(embedded.conversations().get(&key).await.unwrap(), None);
}

#[tokio::test]
async fn given_a_session_body_that_is_not_json_when_posted_then_415() {
    let app = App::new();
    let reply = app
        .send(request(
            Method::POST,
            "/v1/web/sessions",
            None,
            Some("text/plain"),
            "hello",
        ))
        .await;
    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(reply.error_code(), "unsupported_media_type");
}

// ---- posting messages ----------------------------------------------------------------------

#[tokio::test]
async fn given_the_same_message_posted_three_times_then_one_stored_and_one_queued() {
    let app = App::new();
    let (id, token) = app.session().await;
    let body = message("c-1", "  我的订单到哪了？ ");
    let mut replies = Vec::new();
    for _ in 0..3 {
        let reply = app.post("/v1/web/messages", Some(&token), &body).await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
        replies.push(reply.body);
    }
    assert!(replies.iter().all(|r| r == &replies[0]), "{replies:?}");
    let expected_id = MessageId::for_inbound(&id, "c-1");
    assert_eq!(replies[0]["message_id"], expected_id.as_str());
    assert_eq!(replies[0]["seq"], 1);

    assert_eq!(app.stored_messages(&id).await, 1);
    assert_eq!(app.queued().await, 1);
    let delivery = app
        .inbound()
        .receive(10, Duration::from_secs(30), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(delivery.len(), 1);
    assert_eq!(delivery[0].group, id.as_str());
    let envelope = InboundMessage::from_json(&delivery[0].body).unwrap();
    assert_eq!(envelope.message_id, expected_id);
    assert_eq!(envelope.conversation_id, id);
    assert_eq!(envelope.channel, Channel::Web);
    assert_eq!(envelope.text, "我的订单到哪了？");
    assert!(envelope.customer.address.starts_with("v:"));
}

#[tokio::test]
async fn given_two_different_messages_when_posted_then_consecutive_seqs_and_two_queued() {
    let app = App::new();
    let (id, token) = app.session().await;
    let first = app
        .post("/v1/web/messages", Some(&token), &message("a", "one"))
        .await;
    let second = app
        .post("/v1/web/messages", Some(&token), &message("b", "two"))
        .await;
    assert_eq!(
        (first.body["seq"].as_u64(), second.body["seq"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(app.stored_messages(&id).await, 2);
    assert_eq!(app.queued().await, 2);
}

#[tokio::test]
async fn given_a_reused_client_id_with_other_text_when_posted_then_409_and_nothing_new() {
    let app = App::new();
    let (id, token) = app.session().await;
    app.post("/v1/web/messages", Some(&token), &message("c-1", "hello"))
        .await;
    let reply = app
        .post(
            "/v1/web/messages",
            Some(&token),
            &message("c-1", "something else"),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CONFLICT);
    assert_eq!(app.stored_messages(&id).await, 1);
    assert_eq!(app.queued().await, 1);
}

#[tokio::test]
async fn given_bad_message_bodies_when_posted_then_4xx_with_reason_and_nothing_stored_or_queued() {
    let app = App::new();
    let (id, token) = app.session().await;
    let too_long = "字".repeat(2001);
    let cases: Vec<(String, Option<&str>, StatusCode, &str)> = vec![
        (
            "{\"client_message_id\":".into(),
            None,
            StatusCode::BAD_REQUEST,
            "malformed JSON",
        ),
        (
            "not json".into(),
            None,
            StatusCode::BAD_REQUEST,
            "malformed JSON",
        ),
        (
            r#"{"text":"hi"}"#.into(),
            None,
            StatusCode::BAD_REQUEST,
            "client_message_id",
        ),
        (
            r#"{"client_message_id":"a"}"#.into(),
            None,
            StatusCode::BAD_REQUEST,
            "text",
        ),
        (
            r#"{"client_message_id":"a","text":"hi","extra":1}"#.into(),
            None,
            StatusCode::BAD_REQUEST,
            "unknown field",
        ),
        (
            r#"{"client_message_id":7,"text":"hi"}"#.into(),
            None,
            StatusCode::BAD_REQUEST,
            "invalid type",
        ),
        (
            message("", "hi"),
            None,
            StatusCode::BAD_REQUEST,
            "client_message_id",
        ),
        (
            message("a b", "hi"),
            None,
            StatusCode::BAD_REQUEST,
            "client_message_id",
        ),
        (
            message(&"x".repeat(65), "hi"),
            None,
            StatusCode::BAD_REQUEST,
            "client_message_id",
        ),
        (message("a", "   "), None, StatusCode::BAD_REQUEST, "empty"),
        (
            message("a", &too_long),
            None,
            StatusCode::PAYLOAD_TOO_LARGE,
            "too large",
        ),
        (
            message("a", "hi"),
            Some("text/plain"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type",
        ),
    ];
    for (body, content_type, status, reason) in cases {
        let reply = app
            .send(request(
                Method::POST,
                "/v1/web/messages",
                Some(&token),
                Some(content_type.unwrap_or("application/json")),
                &body,
            ))
            .await;
        assert_eq!(reply.status, status, "{body:.80}: {}", reply.body);
        assert!(
            reply.error_message().contains(reason),
            "{body:.80}: expected {reason:?} in {}",
            reply.body
        );
    }
    assert_eq!(app.stored_messages(&id).await, 0);
    assert_eq!(app.queued().await, 0);
}

#[tokio::test]
async fn given_text_over_the_limit_within_the_body_limit_when_posted_then_400() {
    let app = App::with_config(WebConfig {
        max_body_bytes: 64 * 1024,
        ..WebConfig::default()
    });
    let (id, token) = app.session().await;
    let reply = app
        .post(
            "/v1/web/messages",
            Some(&token),
            &message("a", &"x".repeat(2001)),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        reply.error_message().contains("at most 2000"),
        "{}",
        reply.body
    );
    assert_eq!(app.stored_messages(&id).await, 0);
    assert_eq!(app.queued().await, 0);
}

#[tokio::test]
async fn given_bad_credentials_when_posting_then_401_and_nothing_stored_or_queued() {
    let app = App::new();
    let (id, token) = app.session().await;
    let forged = TokenSigner::new("some-other-secret-value")
        .unwrap()
        .issue(&Claims::visitor("v:x", id.clone(), now_millis()));
    let expired = app.tokens.issue(&Claims::visitor(
        "v:x",
        id.clone(),
        now_millis() - 8 * 24 * 3600 * 1000,
    ));
    let agent = app.tokens.issue(&Claims::agent("alice", now_millis()));
    let (payload, _) = token.split_once('.').unwrap();
    let truncated = format!("{payload}.");
    let body = message("c-1", "hi");
    for token in [
        None,
        Some(forged.as_str()),
        Some(expired.as_str()),
        Some(agent.as_str()),
        Some(truncated.as_str()),
        Some("garbage"),
    ] {
        let reply = app.post("/v1/web/messages", token, &body).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(reply.error_code(), "unauthorized");
        assert_eq!(reply.headers[header::WWW_AUTHENTICATE], "Bearer");
    }
    let basic = app
        .send(
            Request::post("/v1/web/messages")
                .header(header::AUTHORIZATION, "Basic YTpi")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.clone()))
                .unwrap(),
        )
        .await;
    assert_eq!(basic.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.stored_messages(&id).await, 0);
    assert_eq!(app.queued().await, 0);
}

#[tokio::test]
async fn given_a_valid_token_for_an_unknown_conversation_when_posting_then_404_and_nothing_queued()
{
    let app = App::new();
    let ghost = ConversationKey::new(Channel::Web, "v:ghost").conversation_id();
    let token = app
        .tokens
        .issue(&Claims::visitor("v:ghost", ghost.clone(), now_millis()));
    let reply = app
        .post("/v1/web/messages", Some(&token), &message("c-1", "hi"))
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.error_code(), "not_found");
    assert_eq!(app.store().get(&ghost).await.unwrap(), None);
    assert_eq!(app.queued().await, 0);

    let poll = app.get("/v1/web/messages?after=0", Some(&token)).await;
    assert_eq!(poll.status, StatusCode::NOT_FOUND);
}

// ---- reading messages ----------------------------------------------------------------------

#[tokio::test]
async fn given_messages_when_polled_then_those_after_the_seq_in_order_with_rfc3339_times() {
    let app = App::new();
    let (_, token) = app.session().await;
    for (client_id, text) in [("a", "one"), ("b", "two"), ("c", "three")] {
        app.post("/v1/web/messages", Some(&token), &message(client_id, text))
            .await;
    }
    let reply = app.get("/v1/web/messages?after=1", Some(&token)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let messages = reply.body["messages"].as_array().unwrap();
    let seqs: Vec<u64> = messages
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [2, 3]);
    assert_eq!(messages[0]["author"], "customer");
    assert_eq!(messages[0]["text"], "two");
    let created_at = messages[0]["created_at"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(created_at).is_ok(),
        "{created_at}"
    );
}

#[tokio::test]
async fn given_nothing_new_when_long_polling_then_returns_as_soon_as_a_reply_is_stored() {
    let app = App::new();
    let (id, token) = app.session().await;
    let store = app.store();
    let writer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        store
            .append(
                &id,
                NewMessage {
                    message_id: MessageId::random(),
                    author: Author::Bot,
                    agent_id: None,
                    text: "您好！".into(),
                    created_at: now_millis(),
                    sentiment: None,
                    quick_replies: Vec::new(),
                },
            )
            .await
            .unwrap();
    });
    let started = Instant::now();
    let reply = app
        .get("/v1/web/messages?after=0&wait=10", Some(&token))
        .await;
    let elapsed = started.elapsed();
    writer.await.unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["messages"][0]["author"], "bot");
    assert_eq!(reply.body["messages"][0]["text"], "您好！");
    assert!(elapsed >= Duration::from_millis(250), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
}

#[tokio::test]
async fn given_nothing_new_when_long_polling_then_an_empty_list_after_wait() {
    let app = App::new();
    let (_, token) = app.session().await;
    let started = Instant::now();
    let reply = app.get("/v1/web/messages?wait=1", Some(&token)).await;
    let elapsed = started.elapsed();
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, json!({ "messages": [] }));
    assert!(elapsed >= Duration::from_secs(1), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(4), "{elapsed:?}");

    let started = Instant::now();
    let reply = app.get("/v1/web/messages", Some(&token)).await;
    assert_eq!(reply.body, json!({ "messages": [] }));
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "no wait by default"
    );
}

#[tokio::test]
async fn given_a_visitor_with_its_polls_all_waiting_when_it_polls_again_then_429_until_one_answers()
{
    let app = App::new();
    let (id, token) = app.session().await;
    let (_, other_token) = app.session().await;
    let waiting: Vec<_> = (0..2)
        .map(|_| {
            let (router, token) = (app.router.clone(), token.clone());
            tokio::spawn(async move {
                let request = request(
                    Method::GET,
                    "/v1/web/messages?after=0&wait=20",
                    Some(&token),
                    None,
                    "",
                );
                router.oneshot(request).await.expect("infallible").status()
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let refused = app
        .get("/v1/web/messages?after=0&wait=20", Some(&token))
        .await;
    assert_eq!(
        refused.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        refused.body
    );
    assert_eq!(refused.error_code(), "too_many_requests");
    let quick = app.get("/v1/web/messages?after=0", Some(&token)).await;
    assert_eq!(
        quick.status,
        StatusCode::OK,
        "a poll that does not wait holds no slot"
    );
    let other = app
        .get("/v1/web/messages?after=0&wait=1", Some(&other_token))
        .await;
    assert_eq!(
        other.status,
        StatusCode::OK,
        "another visitor is not affected"
    );

    // A reply answers both waiting polls, which give their slots back.
    app.store()
        .append(
            &id,
            NewMessage {
                message_id: MessageId::random(),
                author: Author::Bot,
                agent_id: None,
                text: "您好！".into(),
                created_at: now_millis(),
                sentiment: None,
                quick_replies: Vec::new(),
            },
        )
        .await
        .unwrap();
    for poll in waiting {
        assert_eq!(poll.await.unwrap(), StatusCode::OK);
    }
    let again = app
        .get("/v1/web/messages?after=1&wait=1", Some(&token))
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
}

#[tokio::test]
async fn given_a_wait_above_the_maximum_when_polling_then_it_is_clamped() {
    let app = App::with_config(WebConfig {
        max_wait: Duration::from_millis(300),
        poll_interval: Duration::from_millis(20),
        ..WebConfig::default()
    });
    let (_, token) = app.session().await;
    let started = Instant::now();
    let reply = app.get("/v1/web/messages?wait=3600", Some(&token)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn given_bad_poll_parameters_or_credentials_then_4xx_json() {
    let app = App::new();
    let (_, token) = app.session().await;
    for query in [
        "after=-1",
        "after=abc",
        "after=",
        "wait=-5",
        "wait=soon",
        "after=1.5",
        "since=3",
        "after=99999999999999999999999",
    ] {
        let reply = app
            .get(&format!("/v1/web/messages?{query}"), Some(&token))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{query}: {}",
            reply.body
        );
        assert_eq!(reply.error_code(), "bad_request");
        assert!(!reply.error_message().is_empty());
    }
    let reply = app.get("/v1/web/messages?after=0", None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let agent = app.tokens.issue(&Claims::agent("alice", now_millis()));
    let reply = app.get("/v1/web/messages?after=0", Some(&agent)).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}

// ---- routing, CORS -----------------------------------------------------------------------

#[tokio::test]
async fn given_unknown_routes_or_methods_then_json_404_and_405() {
    let app = App::new();
    let reply = app.get("/v1/web/nothing", None).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.error_code(), "not_found");
    let reply = app.get("/v1/web/sessions", None).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.error_code(), "method_not_allowed");
    let reply = app
        .send(request(Method::DELETE, "/v1/web/messages", None, None, ""))
        .await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
}

fn preflight(origin: &str) -> Request<Body> {
    Request::builder()
        .method(Method::OPTIONS)
        .uri("/v1/web/messages")
        .header(header::ORIGIN, origin)
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .header(
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            "authorization,content-type",
        )
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn given_an_allowed_origin_when_preflighting_then_cors_headers_allow_it() {
    let app = App::new();
    let reply = app.send(preflight(ALLOWED_ORIGIN)).await;
    assert!(reply.status.is_success(), "{}", reply.status);
    assert_eq!(
        reply.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        ALLOWED_ORIGIN
    );
    let allowed_headers = reply.headers[header::ACCESS_CONTROL_ALLOW_HEADERS]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        allowed_headers.contains("authorization"),
        "{allowed_headers}"
    );
    assert!(
        allowed_headers.contains("content-type"),
        "{allowed_headers}"
    );
    let methods = reply.headers[header::ACCESS_CONTROL_ALLOW_METHODS]
        .to_str()
        .unwrap();
    assert!(
        methods.contains("POST") && methods.contains("GET"),
        "{methods}"
    );

    // The actual request carries the header too.
    let mut post = request(Method::POST, "/v1/web/sessions", None, None, "");
    post.headers_mut()
        .insert(header::ORIGIN, ALLOWED_ORIGIN.parse().unwrap());
    let reply = app.send(post).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(
        reply.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        ALLOWED_ORIGIN
    );
}

#[tokio::test]
async fn given_another_origin_when_preflighting_then_no_cors_allowance() {
    let app = App::new();
    for origin in [
        "https://evil.example.com",
        "https://shop.example.com.evil.com",
        "http://shop.example.com",
    ] {
        let reply = app.send(preflight(origin)).await;
        assert!(
            !reply
                .headers
                .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN),
            "{origin} must not be allowed"
        );
    }
}

#[tokio::test]
async fn given_no_configured_origins_when_preflighting_then_no_cors_allowance() {
    let app = App::with_config(WebConfig::default());
    let reply = app.send(preflight(ALLOWED_ORIGIN)).await;
    assert!(
        !reply
            .headers
            .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN)
    );
}
