//! The WeChat channel over real parts: the webhook router over the embedded inbound queue
//! (driven with `tower::ServiceExt::oneshot`, requests signed as WeChat signs them), and the
//! sender against a local mock of the WeChat API that records every request.

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use kefu::adapters::embedded::{EmbeddedStore, INBOUND};
use kefu::channels::wechat::crypto::{msg_signature, signature};
use kefu::channels::wechat::xml::Document;
use kefu::channels::wechat::{
    AesKey, MessageCrypt, SCAN_GREETING, WINDOW_CLOSED, WechatConfig, WechatIngress, WechatSender,
    router,
};
use kefu::domain::{
    Author, Channel, ConversationKey, InboundMessage, MessageId, OutboundMessage, SCHEMA_VERSION,
};
use kefu::ports::{ChannelSender, SendError};
use kefu::ports::{IdempotencyGuard, MessageQueue};
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tempfile::TempDir;
use tower::ServiceExt;

const TOKEN: &str = "kefu-test-token";
const APPID: &str = "wx1234567890abcdef";
const SECRET: &str = "kefu-test-secret";
// The EncodingAESKey of wechatpy's published test vector.
const AES_KEY: &str = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR";
const ACCOUNT: &str = "gh_kefu_shop";
const OPENID: &str = "oKefuCustomer0001";
const WELCOME: &str = "欢迎关注小店！有问题直接发消息给我们。";

// ---------------------------------------------------------------------------------------
// Ingress
// ---------------------------------------------------------------------------------------

struct Webhook {
    _dir: TempDir,
    embedded: EmbeddedStore,
    router: Router,
    safe: bool,
}

struct Answer {
    status: StatusCode,
    content_type: String,
    headers: http::HeaderMap,
    body: String,
}

impl Webhook {
    fn plaintext() -> Self {
        Self::with(WechatConfig::new(TOKEN, APPID, SECRET))
    }

    fn safe_mode() -> Self {
        let mut config = WechatConfig::new(TOKEN, APPID, SECRET);
        config.aes_key = Some(AesKey::parse(AES_KEY).unwrap());
        Self::with(config)
    }

    fn with(mut config: WechatConfig) -> Self {
        config.welcome = Some(WELCOME.to_owned());
        config.menu = HashMap::from([("MENU_SHIPPING".to_owned(), "运费怎么算".to_owned())]);
        let safe = config.aes_key.is_some();
        let dir = tempfile::tempdir().unwrap();
        let embedded = EmbeddedStore::open(dir.path()).unwrap();
        let inbound: Arc<dyn MessageQueue> = Arc::new(embedded.queue(INBOUND));
        let nonces: Arc<dyn IdempotencyGuard> = Arc::new(embedded.idempotency());
        Self {
            router: router(WechatIngress::new(config, inbound, nonces)),
            _dir: dir,
            embedded,
            safe,
        }
    }

    async fn call(&self, method: &str, uri: &str, body: &str) -> Answer {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::CONTENT_TYPE, "text/xml")
            .body(Body::from(body.to_owned()))
            .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            content_type,
            headers,
            body: String::from_utf8(bytes.to_vec()).unwrap(),
        }
    }

    /// Posts `message` as WeChat would in this webhook's mode, correctly signed.
    async fn push(&self, message: &str) -> Answer {
        let (query, body) = if self.safe {
            sealed(message, APPID, TOKEN)
        } else {
            (
                signed_query(TOKEN, &now(), &fresh_nonce()),
                message.to_owned(),
            )
        };
        self.call("POST", &format!("/wechat?{query}"), &body).await
    }

    /// Everything on the inbound queue (received, so a second call sees nothing new).
    async fn queued(&self) -> Vec<InboundMessage> {
        self.embedded
            .queue(INBOUND)
            .receive(10, Duration::from_secs(60), Duration::ZERO)
            .await
            .unwrap()
            .iter()
            .map(|d| InboundMessage::from_json(&d.body).unwrap())
            .collect()
    }

    async fn queue_depth(&self) -> u64 {
        self.embedded.queue(INBOUND).depth().await.unwrap().total()
    }
}

/// A nonce no other request of this run used, as WeChat makes one per request.
fn fresh_nonce() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    (93821 + NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)).to_string()
}

/// The current Unix time, as WeChat puts it in the query.
fn now() -> String {
    (kefu::domain::now_millis() / 1000).to_string()
}

fn signed_query(token: &str, timestamp: &str, nonce: &str) -> String {
    format!(
        "signature={}&timestamp={timestamp}&nonce={nonce}&openid={OPENID}",
        signature(token, timestamp, nonce)
    )
}

/// A safe-mode push: the query with both signatures, and the encrypted envelope.
fn sealed(message: &str, appid: &str, token: &str) -> (String, String) {
    let (timestamp, nonce) = (now(), fresh_nonce());
    let (timestamp, nonce) = (timestamp.as_str(), nonce.as_str());
    let crypt = MessageCrypt::new(AesKey::parse(AES_KEY).unwrap(), appid);
    let encrypt = crypt.encrypt(message);
    let query = format!(
        "{}&encrypt_type=aes&msg_signature={}",
        signed_query(token, timestamp, nonce),
        msg_signature(token, timestamp, nonce, &encrypt)
    );
    let body = format!(
        "<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
    );
    (query, body)
}

fn text_push(content: &str, msg_id: u64) -> String {
    format!(
        "<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>\
         <FromUserName><![CDATA[{OPENID}]]></FromUserName><CreateTime>1700000000</CreateTime>\
         <MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{content}]]></Content>\
         <MsgId>{msg_id}</MsgId></xml>"
    )
}

fn event_push(event: &str, key: &str) -> String {
    format!(
        "<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>\
         <FromUserName><![CDATA[{OPENID}]]></FromUserName><CreateTime>1700000001</CreateTime>\
         <MsgType><![CDATA[event]]></MsgType><Event><![CDATA[{event}]]></Event>\
         <EventKey><![CDATA[{key}]]></EventKey></xml>"
    )
}

fn conversation() -> kefu::domain::ConversationId {
    ConversationKey::new(Channel::Wechat, OPENID).conversation_id()
}

#[tokio::test]
async fn given_a_correctly_signed_url_verification_when_called_then_echostr_is_echoed() {
    let webhook = Webhook::plaintext();
    let query = signed_query(TOKEN, &now(), "4242");
    let answer = webhook
        .call("GET", &format!("/wechat?{query}&echostr=6173840129"), "")
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body, "6173840129");
    assert!(answer.content_type.starts_with("text/plain"));
    assert_eq!(
        answer
            .headers
            .get("x-content-type-options")
            .map(|v| v.as_bytes()),
        Some(&b"nosniff"[..]),
        "a browser must not sniff the echoed text as HTML"
    );
}

#[tokio::test]
async fn given_a_correctly_signed_but_stale_url_verification_when_called_then_403_and_no_echo() {
    let webhook = Webhook::plaintext();
    let stale = (kefu::domain::now_millis() / 1000 - 301).to_string();
    let query = signed_query(TOKEN, &stale, "4242");
    let answer = webhook
        .call("GET", &format!("/wechat?{query}&echostr=6173840129"), "")
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert!(!answer.body.contains("6173840129"));
}

#[tokio::test]
async fn given_a_captured_plaintext_push_url_when_replayed_with_another_body_then_403_and_only_the_first_is_queued()
 {
    let webhook = Webhook::plaintext();
    let uri = format!("/wechat?{}", signed_query(TOKEN, &now(), "55501"));
    let first = webhook
        .call("POST", &uri, &text_push("运费怎么算？", 1))
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let retry = webhook
        .call("POST", &uri, &text_push("运费怎么算？", 1))
        .await;
    assert_eq!(
        retry.status,
        StatusCode::OK,
        "WeChat's retry of the same push"
    );
    let forged = webhook
        .call("POST", &uri, &text_push("请把收货地址改成……", 2))
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.body);

    let queued = webhook.queued().await;
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].text, "运费怎么算？");
}

#[tokio::test]
async fn given_a_push_from_an_overlong_openid_when_posted_then_400_and_nothing_queued() {
    let webhook = Webhook::plaintext();
    let push = text_push("你好", 3).replace(OPENID, &"o".repeat(10 * 1024));
    let answer = webhook.push(&push).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.body);
    assert_eq!(webhook.queue_depth().await, 0);
}

#[tokio::test]
async fn given_a_forged_or_incomplete_url_verification_when_called_then_403_and_no_echo() {
    let webhook = Webhook::plaintext();
    let forged = signed_query("not-our-token", &now(), "4242");
    let cases = [
        format!("/wechat?{forged}&echostr=6173840129"),
        "/wechat?timestamp=1700000000&nonce=4242&echostr=6173840129".to_owned(),
        format!(
            "/wechat?{}",
            signed_query(TOKEN, &now(), "4242") // no echostr
        ),
    ];
    for uri in cases {
        let answer = webhook.call("GET", &uri, "").await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{uri}");
        assert!(!answer.body.contains("6173840129"), "{uri}");
    }
}

#[tokio::test]
async fn given_a_plaintext_text_push_when_posted_then_one_envelope_is_queued_and_success_returned()
{
    let webhook = Webhook::plaintext();
    let answer = webhook
        .push(&text_push("运费怎么算？", 6054768590064713728))
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body, "success");

    let queued = webhook.queued().await;
    assert_eq!(queued.len(), 1);
    let message = &queued[0];
    assert_eq!(message.channel, Channel::Wechat);
    assert_eq!(message.conversation_id, conversation());
    assert_eq!(message.customer.address, OPENID);
    assert_eq!(message.text, "运费怎么算？");
    assert_eq!(message.received_at, 1_700_000_000_000);
    assert_eq!(
        message.message_id,
        MessageId::for_inbound(&conversation(), "6054768590064713728")
    );
}

#[tokio::test]
async fn given_a_safe_mode_text_push_when_posted_then_it_is_decrypted_and_queued() {
    let webhook = Webhook::safe_mode();
    let answer = webhook.push(&text_push("我的订单到哪了", 77)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body, "success");

    let queued = webhook.queued().await;
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].conversation_id, conversation());
    assert_eq!(queued[0].text, "我的订单到哪了");
}

#[tokio::test]
async fn given_forged_credentials_when_pushing_then_refused_and_nothing_is_queued() {
    let plaintext = Webhook::plaintext();
    let body = text_push("hi", 1);
    let forged = signed_query("not-our-token", &now(), "93821");
    let answer = plaintext
        .call("POST", &format!("/wechat?{forged}"), &body)
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    let answer = plaintext
        .call("POST", "/wechat?timestamp=1700000000&nonce=93821", &body)
        .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    // Correctly signed, but long ago: a captured signature replayed.
    let replayed = signed_query(TOKEN, "1700000000", "93821");
    let answer = plaintext
        .call("POST", &format!("/wechat?{replayed}"), &body)
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert!(answer.body.contains("timestamp"), "{}", answer.body);
    assert_eq!(plaintext.queue_depth().await, 0);

    let safe = Webhook::safe_mode();
    // A correct plain signature, but the msg_signature was made with another token.
    let (query, envelope) = sealed(&body, APPID, TOKEN);
    let (other_query, _) = sealed(&body, APPID, "not-our-token");
    let msg_sig_of = |q: &str| q.split("msg_signature=").nth(1).unwrap().to_owned();
    let forged_msg = query.replace(&msg_sig_of(&query), &msg_sig_of(&other_query));
    let answer = safe
        .call("POST", &format!("/wechat?{forged_msg}"), &envelope)
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    // Missing msg_signature.
    let without = query.split("&msg_signature=").next().unwrap();
    let answer = safe
        .call("POST", &format!("/wechat?{without}"), &envelope)
        .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    // Correctly signed, but sealed for another account.
    let (query, envelope) = sealed(&body, "wx0000000000000000", TOKEN);
    let answer = safe
        .call("POST", &format!("/wechat?{query}"), &envelope)
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert!(answer.body.contains("another appid"), "{}", answer.body);
    // Plaintext although the account is configured for encryption.
    let query = signed_query(TOKEN, &now(), "93821");
    let answer = safe.call("POST", &format!("/wechat?{query}"), &body).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(safe.queue_depth().await, 0);
}

#[tokio::test]
async fn given_malformed_pushes_when_posted_then_400_with_a_reason_and_nothing_is_queued() {
    let webhook = Webhook::plaintext();
    let cases = [
        ("<xml><MsgType>text", "malformed XML"),
        (
            &*text_push("hi", 1).replace("<![CDATA[text]]>", "hologram"),
            "unsupported MsgType",
        ),
        (
            &*text_push("hi", 1).replace("<MsgId>1</MsgId>", ""),
            "MsgId",
        ),
    ];
    for (body, reason) in cases {
        let answer = webhook.push(body).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(answer.body.contains(reason), "{}", answer.body);
    }
    let huge = text_push(&"字".repeat(20_000), 1);
    assert_eq!(
        webhook.push(&huge).await.status,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_eq!(webhook.queue_depth().await, 0);
}

#[tokio::test]
async fn given_the_same_push_delivered_three_times_when_posted_then_one_message_is_queued() {
    for webhook in [Webhook::plaintext(), Webhook::safe_mode()] {
        for _ in 0..3 {
            let answer = webhook.push(&text_push("在吗", 5_000_000_001)).await;
            assert_eq!(answer.body, "success");
        }
        let event = event_push("CLICK", "MENU_SHIPPING");
        for _ in 0..3 {
            assert_eq!(webhook.push(&event).await.body, "success");
        }
        let queued = webhook.queued().await;
        let texts: Vec<&str> = queued.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(texts, ["在吗", "运费怎么算"]);
    }
}

#[tokio::test]
async fn given_a_subscribe_event_when_posted_then_the_welcome_is_a_passive_reply() {
    let webhook = Webhook::plaintext();
    let answer = webhook.push(&event_push("subscribe", "")).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.content_type.contains("xml"));
    let reply = Document::parse(&answer.body).unwrap();
    assert_eq!(reply.field("ToUserName"), Some(OPENID));
    assert_eq!(reply.field("FromUserName"), Some(ACCOUNT));
    assert_eq!(reply.field("MsgType"), Some("text"));
    assert_eq!(reply.field("Content"), Some(WELCOME));
    assert_eq!(webhook.queue_depth().await, 0);
}

#[tokio::test]
async fn given_a_subscribe_event_in_safe_mode_when_posted_then_the_reply_is_sealed_and_signed() {
    let webhook = Webhook::safe_mode();
    let answer = webhook.push(&event_push("subscribe", "qrscene_12")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert!(!answer.body.contains(WELCOME));

    let envelope = Document::parse(&answer.body).unwrap();
    let encrypt = envelope.encrypt().unwrap();
    let timestamp = envelope.field("TimeStamp").unwrap();
    let nonce = envelope.field("Nonce").unwrap();
    assert_eq!(
        envelope.field("MsgSignature").unwrap(),
        msg_signature(TOKEN, timestamp, nonce, encrypt)
    );
    let crypt = MessageCrypt::new(AesKey::parse(AES_KEY).unwrap(), APPID);
    let reply = Document::parse(&crypt.decrypt(encrypt).unwrap()).unwrap();
    assert_eq!(reply.field("ToUserName"), Some(OPENID));
    assert_eq!(reply.field("Content"), Some(WELCOME));
    assert_eq!(webhook.queue_depth().await, 0);
}

#[tokio::test]
async fn given_events_when_posted_then_scan_greets_unknown_keys_and_unsubscribe_do_nothing() {
    let webhook = Webhook::plaintext();
    for (event, key) in [
        ("unsubscribe", ""),
        ("CLICK", "NOT_IN_THE_MENU"),
        ("VIEW", "https://shop.example.com"),
    ] {
        let answer = webhook.push(&event_push(event, key)).await;
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (StatusCode::OK, "success")
        );
    }
    assert_eq!(webhook.queue_depth().await, 0);

    webhook.push(&event_push("SCAN", "12")).await;
    let queued = webhook.queued().await;
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].text, SCAN_GREETING);
}

#[tokio::test]
async fn given_media_pushes_when_posted_then_they_are_described() {
    let webhook = Webhook::plaintext();
    let image = format!(
        "<xml><ToUserName>{ACCOUNT}</ToUserName><FromUserName>{OPENID}</FromUserName>\
         <CreateTime>1700000002</CreateTime><MsgType>image</MsgType>\
         <PicUrl>http://mmbiz.qpic.cn/pic1</PicUrl><MediaId>media1</MediaId><MsgId>11</MsgId></xml>"
    );
    let voice = format!(
        "<xml><ToUserName>{ACCOUNT}</ToUserName><FromUserName>{OPENID}</FromUserName>\
         <CreateTime>1700000003</CreateTime><MsgType>voice</MsgType><MediaId>media2</MediaId>\
         <Format>amr</Format><Recognition>我要退货</Recognition><MsgId>12</MsgId></xml>"
    );
    webhook.push(&image).await;
    webhook.push(&voice).await;
    let texts: Vec<String> = webhook.queued().await.into_iter().map(|m| m.text).collect();
    assert_eq!(texts, ["[图片] http://mmbiz.qpic.cn/pic1", "我要退货"]);
}

// ---------------------------------------------------------------------------------------
// Egress
// ---------------------------------------------------------------------------------------

/// One request the mock WeChat API received.
#[derive(Debug, Clone)]
struct Recorded {
    path: &'static str,
    access_token: Option<String>,
    body: Value,
}

#[derive(Default)]
struct MockState {
    requests: Mutex<Vec<Recorded>>,
    /// Answers for the send API, in order; after them, success.
    send_answers: Mutex<VecDeque<(StatusCode, Value)>>,
    tokens_issued: Mutex<u32>,
}

struct MockWechat {
    state: Arc<MockState>,
    base: String,
}

impl MockWechat {
    async fn start() -> Self {
        let state = Arc::new(MockState::default());
        let app = Router::new()
            .route("/cgi-bin/stable_token", axum::routing::post(stable_token))
            .route(
                "/cgi-bin/message/custom/send",
                axum::routing::post(custom_send),
            )
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { state, base }
    }

    fn answer_sends_with(&self, answers: impl IntoIterator<Item = (StatusCode, Value)>) {
        self.state.send_answers.lock().unwrap().extend(answers);
    }

    fn requests(&self, path: &str) -> Vec<Recorded> {
        let requests = self.state.requests.lock().unwrap();
        requests
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    fn sends(&self) -> Vec<Recorded> {
        self.requests("send")
    }

    fn token_fetches(&self) -> Vec<Recorded> {
        self.requests("stable_token")
    }

    fn config(&self) -> WechatConfig {
        let mut config = WechatConfig::new(TOKEN, APPID, SECRET);
        config.api_base = self.base.clone();
        config
    }
}

async fn stable_token(
    State(state): State<Arc<MockState>>,
    axum::Json(body): axum::Json<Value>,
) -> axum::Json<Value> {
    state.requests.lock().unwrap().push(Recorded {
        path: "stable_token",
        access_token: None,
        body,
    });
    let mut issued = state.tokens_issued.lock().unwrap();
    *issued += 1;
    axum::Json(json!({"access_token": format!("ACCESS-TOKEN-{issued}"), "expires_in": 7200}))
}

async fn custom_send(
    State(state): State<Arc<MockState>>,
    Query(query): Query<HashMap<String, String>>,
    axum::Json(body): axum::Json<Value>,
) -> (StatusCode, axum::Json<Value>) {
    state.requests.lock().unwrap().push(Recorded {
        path: "send",
        access_token: query.get("access_token").cloned(),
        body,
    });
    let answer = state.send_answers.lock().unwrap().pop_front();
    let (status, body) = answer.unwrap_or((StatusCode::OK, json!({"errcode": 0, "errmsg": "ok"})));
    (status, axum::Json(body))
}

struct Egress {
    _dir: TempDir,
    cache: Arc<dyn IdempotencyGuard>,
    mock: MockWechat,
    sender: WechatSender,
}

impl Egress {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let cache: Arc<dyn IdempotencyGuard> =
            Arc::new(EmbeddedStore::open(dir.path()).unwrap().idempotency());
        let mock = MockWechat::start().await;
        let sender = WechatSender::new(&mock.config(), cache.clone()).unwrap();
        Self {
            _dir: dir,
            cache,
            mock,
            sender,
        }
    }
}

fn reply(text: &str) -> OutboundMessage {
    let conversation_id = conversation();
    let inbound = MessageId::for_inbound(&conversation_id, "77");
    OutboundMessage {
        schema: SCHEMA_VERSION,
        message_id: MessageId::reply_to(&inbound),
        conversation_id,
        channel: Channel::Wechat,
        recipient: OPENID.to_owned(),
        author: Author::Bot,
        agent_id: None,
        text: text.to_owned(),
        quick_replies: Vec::new(),
        in_reply_to: Some(inbound),
        created_at: 1_700_000_000_000,
    }
}

#[tokio::test]
async fn given_a_reply_when_sent_then_the_requests_have_the_exact_shapes_wechat_expects() {
    let egress = Egress::start().await;
    let message = reply("运费请看[运费说明](https://shop.example.com/shipping)");
    egress.sender.send(&message).await.unwrap();

    let fetches = egress.mock.token_fetches();
    assert_eq!(fetches.len(), 1);
    assert_eq!(
        fetches[0].body,
        json!({
            "grant_type": "client_credential",
            "appid": APPID,
            "secret": SECRET,
            "force_refresh": false
        })
    );
    let sends = egress.mock.sends();
    assert_eq!(sends.len(), 1);
    assert_eq!(sends[0].access_token.as_deref(), Some("ACCESS-TOKEN-1"));
    assert_eq!(
        sends[0].body,
        json!({
            "touser": OPENID,
            "msgtype": "text",
            "text": {"content": "运费请看<a href=\"https://shop.example.com/shipping\">运费说明</a>"}
        })
    );
}

#[tokio::test]
async fn given_two_sends_and_a_second_instance_when_sending_then_the_token_is_fetched_once() {
    let egress = Egress::start().await;
    egress.sender.send(&reply("一")).await.unwrap();
    egress.sender.send(&reply("二")).await.unwrap();
    // Another dispatcher instance over the same central cache.
    let other = WechatSender::new(&egress.mock.config(), egress.cache.clone()).unwrap();
    other.send(&reply("三")).await.unwrap();

    assert_eq!(egress.mock.token_fetches().len(), 1);
    let tokens: Vec<Option<String>> = egress
        .mock
        .sends()
        .into_iter()
        .map(|r| r.access_token)
        .collect();
    assert_eq!(tokens, vec![Some("ACCESS-TOKEN-1".to_owned()); 3]);
}

#[tokio::test]
async fn given_an_invalid_token_answer_when_sending_then_one_refresh_and_one_retry() {
    let egress = Egress::start().await;
    egress.mock.answer_sends_with([(
        StatusCode::OK,
        json!({"errcode": 40001, "errmsg": "invalid credential"}),
    )]);
    egress.sender.send(&reply("你好")).await.unwrap();

    assert_eq!(egress.mock.token_fetches().len(), 2);
    let tokens: Vec<Option<String>> = egress
        .mock
        .sends()
        .into_iter()
        .map(|r| r.access_token)
        .collect();
    assert_eq!(
        tokens,
        [
            Some("ACCESS-TOKEN-1".to_owned()),
            Some("ACCESS-TOKEN-2".to_owned())
        ]
    );
    // The rejected token is not used again, and the new one is cached.
    egress.sender.send(&reply("再见")).await.unwrap();
    assert_eq!(egress.mock.token_fetches().len(), 2);
    let last = egress.mock.sends().pop().unwrap();
    assert_eq!(last.access_token.as_deref(), Some("ACCESS-TOKEN-2"));
}

#[tokio::test]
async fn given_a_closed_48_hour_window_when_sending_then_permanent_with_the_reason() {
    let egress = Egress::start().await;
    egress.mock.answer_sends_with([(
        StatusCode::OK,
        json!({"errcode": 45015, "errmsg": "response out of time limit"}),
    )]);
    let error = egress.sender.send(&reply("你好")).await.unwrap_err();
    assert_eq!(error, SendError::Permanent(WINDOW_CLOSED.to_owned()));
    assert_eq!(egress.mock.sends().len(), 1);
}

#[tokio::test]
async fn given_a_server_error_or_busy_answer_when_sending_then_transient() {
    let egress = Egress::start().await;
    egress.mock.answer_sends_with([
        (StatusCode::INTERNAL_SERVER_ERROR, json!({})),
        (
            StatusCode::OK,
            json!({"errcode": -1, "errmsg": "system error"}),
        ),
    ]);
    for _ in 0..2 {
        let error = egress.sender.send(&reply("你好")).await.unwrap_err();
        assert!(matches!(error, SendError::Transient(_)), "{error}");
    }
    assert_eq!(egress.mock.sends().len(), 2);
}

#[tokio::test]
async fn given_a_client_error_code_when_sending_then_permanent_without_retry() {
    let egress = Egress::start().await;
    egress.mock.answer_sends_with([(
        StatusCode::OK,
        json!({"errcode": 40003, "errmsg": "invalid openid"}),
    )]);
    let error = egress.sender.send(&reply("你好")).await.unwrap_err();
    assert!(
        matches!(&error, SendError::Permanent(reason) if reason.contains("40003")),
        "{error}"
    );
    assert_eq!(egress.mock.sends().len(), 1);
    assert_eq!(egress.mock.token_fetches().len(), 1);
}

#[tokio::test]
async fn given_an_unreachable_api_when_sending_then_transient() {
    let dir = tempfile::tempdir().unwrap();
    let cache: Arc<dyn IdempotencyGuard> =
        Arc::new(EmbeddedStore::open(dir.path()).unwrap().idempotency());
    // Bind and drop a listener: nothing answers on that port.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut config = WechatConfig::new(TOKEN, APPID, SECRET);
    config.api_base = format!("http://127.0.0.1:{port}");
    let sender = WechatSender::new(&config, cache).unwrap();
    let error = sender.send(&reply("你好")).await.unwrap_err();
    assert!(matches!(error, SendError::Transient(_)), "{error}");
}
