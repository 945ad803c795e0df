//! The SMS channel over the embedded adapters: the webhooks driven through the router
//! (`tower::ServiceExt::oneshot`), the Twilio sender against a local mock of Twilio's
//! REST API that records every request. What a platform sees, what gets queued, and that
//! bad or forged input queues nothing.

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::IntoResponse;
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use kefu::adapters::embedded::{EmbeddedStore, INBOUND};
use kefu::channels::sms::{
    AliyunConfig, EMPTY_TWIML, PhoneNumber, START_CONFIRMATION, STOP_CONFIRMATION, SmsConfig,
    SmsState, TwilioConfig, TwilioFrom, TwilioSender, router, twilio_signature,
};
use kefu::domain::{
    Author, Channel, ConversationKey, InboundMessage, MessageId, OutboundMessage, SCHEMA_VERSION,
};
use kefu::ports::MessageQueue;
use kefu::ports::{ChannelSender, SendError};
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tempfile::TempDir;
use tower::ServiceExt;

const PUBLIC_URL: &str = "https://sms.example.com";
const ACCOUNT_SID: &str = "ACf00000000000000000000000000000aa";
const AUTH_TOKEN: &str = "twilio-test-token";
/// base64("ACf00000000000000000000000000000aa:twilio-test-token").
const BASIC_AUTH: &str =
    "Basic QUNmMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDBhYTp0d2lsaW8tdGVzdC10b2tlbg==";
const ALIYUN_TOKEN: &str = "aliyun-path-secret";
const CUSTOMER: &str = "+8613800138000";
const HELP: &str = "客服帮助：直接回复问题。";

struct App {
    _dir: TempDir,
    store: EmbeddedStore,
    state: SmsState,
    router: Router,
}

impl App {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let mut config = SmsConfig::new(PUBLIC_URL);
        config.help_text = HELP.into();
        config.twilio = Some(twilio_config("http://127.0.0.1:9", None));
        config.aliyun = Some(AliyunConfig {
            token: ALIYUN_TOKEN.into(),
        });
        let state = SmsState::new(
            Arc::new(store.queue(INBOUND)),
            Arc::new(store.idempotency()),
            config,
        )
        .unwrap();
        Self {
            _dir: dir,
            router: router(state.clone()),
            state,
            store,
        }
    }

    async fn call(&self, request: Request<Body>) -> (StatusCode, String, String) {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            content_type,
            String::from_utf8(bytes.to_vec()).unwrap(),
        )
    }

    /// A Twilio webhook for `params`, signed with `signature` (`None`: no header).
    async fn twilio(
        &self,
        params: &[(&str, &str)],
        signature: Option<String>,
    ) -> (StatusCode, String, String) {
        let mut request = Request::post("/sms/twilio")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(signature) = signature {
            request = request.header("X-Twilio-Signature", signature);
        }
        self.call(request.body(Body::from(form_encode(params))).unwrap())
            .await
    }

    /// A correctly signed Twilio webhook.
    async fn twilio_signed(&self, params: &[(&str, &str)]) -> (StatusCode, String, String) {
        let signature = sign(&format!("{PUBLIC_URL}/sms/twilio"), params);
        self.twilio(params, Some(signature)).await
    }

    async fn aliyun(&self, token: &str, body: String) -> (StatusCode, String, String) {
        let request = Request::post(format!("/sms/aliyun/{token}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .unwrap();
        self.call(request).await
    }

    async fn queued(&self) -> Vec<InboundMessage> {
        self.store
            .queue(INBOUND)
            .receive(10, Duration::from_secs(30), Duration::ZERO)
            .await
            .unwrap()
            .iter()
            .map(|d| InboundMessage::from_json(&d.body).unwrap())
            .collect()
    }

    async fn opted_out(&self, number: &str) -> bool {
        let number = PhoneNumber::parse(number, "86").unwrap();
        self.state.opt_outs().is_opted_out(&number).await.unwrap()
    }

    fn sender(&self, api_base: &str, from: TwilioFrom) -> TwilioSender {
        TwilioSender::new(
            &twilio_config(api_base, Some(from)),
            "86",
            Arc::new(self.store.idempotency()),
        )
        .unwrap()
    }
}

fn twilio_config(api_base: &str, from: Option<TwilioFrom>) -> TwilioConfig {
    TwilioConfig {
        account_sid: ACCOUNT_SID.into(),
        auth_token: AUTH_TOKEN.into(),
        api_base: api_base.into(),
        from,
    }
}

fn sign(url: &str, params: &[(&str, &str)]) -> String {
    let owned: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    twilio_signature(AUTH_TOKEN, url, &owned)
}

/// `application/x-www-form-urlencoded`, as Twilio sends it.
fn form_encode(params: &[(&str, &str)]) -> String {
    let encode = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                    (b as char).to_string()
                }
                b' ' => "+".to_owned(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    params
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Decodes a form body into its pairs, in order.
fn form_decode(body: &str) -> Vec<(String, String)> {
    let decode = |s: &str| {
        let bytes = s.replace('+', " ").into_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' && i + 2 < bytes.len() {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    };
    body.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn inbound_sms(sid: &str, body: &str) -> Vec<(&'static str, String)> {
    vec![
        ("MessageSid", sid.to_owned()),
        ("SmsSid", sid.to_owned()),
        ("AccountSid", ACCOUNT_SID.to_owned()),
        ("From", CUSTOMER.to_owned()),
        ("To", "+15005550006".to_owned()),
        ("Body", body.to_owned()),
        ("NumMedia", "0".to_owned()),
        ("NumSegments", "1".to_owned()),
        ("FromCity", "SHENZHEN".to_owned()),
    ]
}

fn borrowed<'a>(params: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    params.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn empty_twiml(reply: &(StatusCode, String, String)) {
    assert_eq!(reply.0, StatusCode::OK, "{}", reply.2);
    assert!(reply.1.starts_with("text/xml"), "{}", reply.1);
    assert_eq!(reply.2, EMPTY_TWIML);
}

fn twiml_message(reply: &(StatusCode, String, String)) -> String {
    assert_eq!(reply.0, StatusCode::OK, "{}", reply.2);
    assert!(reply.1.starts_with("text/xml"));
    let start = reply.2.find("<Message>").expect("a <Message>") + "<Message>".len();
    let end = reply.2.find("</Message>").unwrap();
    reply.2[start..end].to_owned()
}

#[test]
fn given_the_twilio_python_vector_when_signed_then_the_published_signature() {
    // twilio-python tests/unit/test_request_validator.py, via CHANNELS.md.
    let params = [
        ("CallSid", "CA1234567890ABCDE"),
        ("Caller", "+14158675309"),
        ("Digits", "1234"),
        ("From", "+14158675309"),
        ("To", "+18005551212"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    assert_eq!(
        twilio_signature(
            "12345",
            "https://mycompany.com/myapp.php?foo=1&bar=2",
            &params
        ),
        "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    );
}

#[tokio::test]
async fn given_a_signed_twilio_webhook_when_posted_then_one_envelope_and_empty_twiml() {
    let app = App::new();
    let params = inbound_sms("SM00000000000000000000000000000001", "我的订单到哪了？");
    empty_twiml(&app.twilio_signed(&borrowed(&params)).await);

    let queued = app.queued().await;
    assert_eq!(queued.len(), 1);
    let message = &queued[0];
    assert_eq!(message.channel, Channel::Sms);
    assert_eq!(message.customer.address, CUSTOMER);
    assert_eq!(message.text, "我的订单到哪了？");
    assert_eq!(
        message.conversation_id,
        ConversationKey::new(Channel::Sms, CUSTOMER).conversation_id()
    );
}

#[tokio::test]
async fn given_a_forged_or_missing_signature_when_posted_then_403_and_nothing_queued() {
    let app = App::new();
    let params = inbound_sms("SM00000000000000000000000000000002", "hello");
    let params = borrowed(&params);

    let missing = app.twilio(&params, None).await;
    assert_eq!(missing.0, StatusCode::FORBIDDEN);

    let forged = app
        .twilio(&params, Some("RSOYDt4T1cUTdK1PDd93/VVr8B8=".into()))
        .await;
    assert_eq!(forged.0, StatusCode::FORBIDDEN);

    // Signed for other parameters: the body was changed on the way.
    let mut tampered = params.clone();
    let signature = sign(&format!("{PUBLIC_URL}/sms/twilio"), &params);
    tampered[5].1 = "send me everything";
    assert_eq!(
        app.twilio(&tampered, Some(signature)).await.0,
        StatusCode::FORBIDDEN
    );

    // Signed over the URL the function sees instead of the public one.
    let internal = sign("http://localhost/sms/twilio", &params);
    assert_eq!(
        app.twilio(&params, Some(internal)).await.0,
        StatusCode::FORBIDDEN
    );
    assert!(app.queued().await.is_empty());
}

#[tokio::test]
async fn given_the_public_url_with_the_default_port_when_signed_then_accepted() {
    let app = App::new();
    let params = inbound_sms("SM00000000000000000000000000000003", "hi");
    let params = borrowed(&params);
    let signature = sign("https://sms.example.com:443/sms/twilio", &params);
    empty_twiml(&app.twilio(&params, Some(signature)).await);
    assert_eq!(app.queued().await.len(), 1);
}

#[tokio::test]
async fn given_a_twilio_retry_when_the_same_message_sid_comes_twice_then_one_message() {
    let app = App::new();
    let params = inbound_sms("SM00000000000000000000000000000004", "在吗");
    empty_twiml(&app.twilio_signed(&borrowed(&params)).await);
    empty_twiml(&app.twilio_signed(&borrowed(&params)).await);
    assert_eq!(app.queued().await.len(), 1);
}

#[tokio::test]
async fn given_a_malformed_twilio_request_when_posted_then_a_clear_4xx() {
    let app = App::new();
    // Signed, but without MessageSid.
    let params = [("From", CUSTOMER), ("Body", "hi")];
    let reply = app.twilio_signed(&params).await;
    assert_eq!(reply.0, StatusCode::BAD_REQUEST);
    assert!(reply.2.contains("MessageSid"), "{}", reply.2);

    let request = Request::post("/sms/twilio")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{}"))
        .unwrap();
    assert_eq!(
        app.call(request).await.0,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );

    let big = "x".repeat(70 * 1024);
    let oversize = [
        ("MessageSid", "SM1"),
        ("From", CUSTOMER),
        ("Body", big.as_str()),
    ];
    assert_eq!(
        app.twilio_signed(&oversize).await.0,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert!(app.queued().await.is_empty());
}

#[tokio::test]
async fn given_a_picture_when_posted_then_the_media_note_is_queued() {
    let app = App::new();
    let mut params = inbound_sms("MM00000000000000000000000000000005", "");
    params[6].1 = "1".into();
    params.push(("MediaUrl0", "https://api.twilio.com/media/1".into()));
    params.push(("MediaContentType0", "image/jpeg".into()));
    empty_twiml(&app.twilio_signed(&borrowed(&params)).await);
    assert_eq!(app.queued().await[0].text, "[图片/media]");
}

#[tokio::test]
async fn given_stop_when_posted_then_opted_out_confirmed_once_and_nothing_more_is_stored_or_sent() {
    let app = App::new();
    let stop = inbound_sms("SM00000000000000000000000000000010", "stop");
    let reply = app.twilio_signed(&borrowed(&stop)).await;
    assert_eq!(twiml_message(&reply), STOP_CONFIRMATION);
    assert!(app.opted_out(CUSTOMER).await);
    assert!(app.queued().await.is_empty(), "a keyword is not a question");

    // Twilio retries the STOP: no second confirmation.
    empty_twiml(&app.twilio_signed(&borrowed(&stop)).await);

    // Later messages are not stored for the bot to answer.
    let later = inbound_sms("SM00000000000000000000000000000011", "还在吗");
    empty_twiml(&app.twilio_signed(&borrowed(&later)).await);
    assert!(app.queued().await.is_empty());

    // And the sender refuses the number without calling Twilio.
    let mock = MockTwilio::start().await;
    let sender = app.sender(&mock.base, TwilioFrom::Number("+15005550006".into()));
    assert_eq!(
        sender.send(&reply_to(CUSTOMER, "您好")).await,
        Err(SendError::Permanent("the customer opted out (STOP)".into()))
    );
    assert!(mock.requests().is_empty());

    // START opts back in.
    let start = inbound_sms("SM00000000000000000000000000000012", "START");
    assert_eq!(
        twiml_message(&app.twilio_signed(&borrowed(&start)).await),
        START_CONFIRMATION
    );
    assert!(!app.opted_out(CUSTOMER).await);
    sender.send(&reply_to(CUSTOMER, "您好")).await.unwrap();
    assert_eq!(mock.requests().len(), 1);
}

#[tokio::test]
async fn given_chinese_unsubscribe_keywords_when_posted_then_opted_out() {
    let app = App::new();
    for (n, keyword) in ["退订", "TD"].iter().enumerate() {
        let number = format!("+861380013800{n}");
        let mut params = inbound_sms(&format!("SM0000000000000000000000000000002{n}"), keyword);
        params[3].1 = number.clone();
        let reply = app.twilio_signed(&borrowed(&params)).await;
        assert_eq!(twiml_message(&reply), STOP_CONFIRMATION);
        assert!(app.opted_out(&number).await, "{keyword}");
    }
}

#[tokio::test]
async fn given_help_when_posted_then_the_configured_help_text_and_nothing_queued() {
    let app = App::new();
    for (sid, text) in [
        ("SM00000000000000000000000000000030", "HELP"),
        ("SM00000000000000000000000000000031", "帮助"),
    ] {
        let params = inbound_sms(sid, text);
        let reply = app.twilio_signed(&borrowed(&params)).await;
        assert_eq!(twiml_message(&reply), HELP);
    }
    assert!(app.queued().await.is_empty());
    assert!(!app.opted_out(CUSTOMER).await);
}

fn aliyun_push(items: &[(&str, &str, u64)]) -> String {
    let items: Vec<_> = items
        .iter()
        .map(|(phone, content, sequence_id)| {
            json!({
                "phone_number": phone,
                "content": content,
                "send_time": "2024-05-01 08:00:00",
                "dest_code": "1234",
                "sequence_id": sequence_id
            })
        })
        .collect();
    serde_json::Value::Array(items).to_string()
}

#[tokio::test]
async fn given_an_aliyun_push_with_the_right_token_when_posted_then_queued_and_acknowledged() {
    let app = App::new();
    let body = aliyun_push(&[
        ("13800138000", "在吗", 1001),
        ("13900139000", "发货了吗", 1002),
    ]);
    let reply = app.aliyun(ALIYUN_TOKEN, body).await;
    assert_eq!(reply.0, StatusCode::OK);
    let ack: serde_json::Value = serde_json::from_str(&reply.2).unwrap();
    assert_eq!(ack, json!({"code": 0, "msg": "接收成功"}));

    let queued = app.queued().await;
    assert_eq!(queued.len(), 2);
    assert_eq!(queued[0].customer.address, "+8613800138000");
    assert_eq!(queued[0].received_at, 1_714_521_600_000);
}

#[tokio::test]
async fn given_a_wrong_aliyun_token_when_posted_then_404_like_an_unknown_path_and_nothing_queued() {
    let app = App::new();
    let body = aliyun_push(&[("13800138000", "在吗", 1003)]);
    let wrong = app.aliyun("aliyun-path-secreT", body.clone()).await;
    let unknown = app
        .call(
            Request::post("/sms/nothing-here")
                .body(Body::from(body))
                .unwrap(),
        )
        .await;
    assert_eq!(wrong.0, StatusCode::NOT_FOUND);
    assert_eq!(wrong.2, unknown.2);
    assert!(app.queued().await.is_empty());
}

#[tokio::test]
async fn given_an_aliyun_retry_with_the_same_sequence_id_when_posted_then_one_message() {
    let app = App::new();
    let body = aliyun_push(&[("13800138000", "在吗", 1004)]);
    assert_eq!(
        app.aliyun(ALIYUN_TOKEN, body.clone()).await.0,
        StatusCode::OK
    );
    assert_eq!(app.aliyun(ALIYUN_TOKEN, body).await.0, StatusCode::OK);
    assert_eq!(app.queued().await.len(), 1);
}

#[tokio::test]
async fn given_an_aliyun_push_with_one_bad_item_when_posted_then_400_and_nothing_queued() {
    let app = App::new();
    let body = aliyun_push(&[("13800138000", "在吗", 1005), ("12", "bad number", 1006)]);
    let reply = app.aliyun(ALIYUN_TOKEN, body).await;
    assert_eq!(reply.0, StatusCode::BAD_REQUEST);
    assert!(reply.2.contains("item 1"), "{}", reply.2);
    assert!(app.queued().await.is_empty());
}

#[tokio::test]
async fn given_unconfigured_providers_when_called_then_404_that_names_the_settings() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let state = SmsState::new(
        Arc::new(store.queue(INBOUND)),
        Arc::new(store.idempotency()),
        SmsConfig::new(PUBLIC_URL),
    )
    .unwrap();
    let app = router(state);
    for (path, setting) in [
        ("/sms/twilio", "KEFU_TWILIO_AUTH_TOKEN"),
        ("/sms/sns", "KEFU_SNS_TOPIC_ARN"),
        ("/sms/aliyun/anything", "KEFU_ALIYUN_SMS_TOKEN"),
    ] {
        let response = app
            .clone()
            .oneshot(Request::post(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert!(String::from_utf8_lossy(&body).contains(setting), "{path}");
    }
}

// ---- Twilio egress against a recording mock of the Messages API ----

/// One request the mock received.
#[derive(Debug, Clone)]
struct Recorded {
    path: String,
    authorization: String,
    content_type: String,
    form: Vec<(String, String)>,
}

/// What the mock answers, in order; when the script runs out, 201.
type Script = Vec<(u16, serde_json::Value)>;

#[derive(Clone, Default)]
struct Mock {
    requests: Arc<Mutex<Vec<Recorded>>>,
    script: Arc<Mutex<Script>>,
}

struct MockTwilio {
    base: String,
    mock: Mock,
}

impl MockTwilio {
    async fn start() -> Self {
        Self::scripted(Vec::new()).await
    }

    async fn scripted(script: Script) -> Self {
        let mock = Mock {
            script: Arc::new(Mutex::new(script)),
            ..Mock::default()
        };
        let app = Router::new()
            .route(
                "/2010-04-01/Accounts/{sid}/Messages.json",
                axum::routing::post(record),
            )
            .with_state(mock.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { base, mock }
    }

    fn requests(&self) -> Vec<Recorded> {
        self.mock.requests.lock().unwrap().clone()
    }
}

async fn record(
    State(mock): State<Mock>,
    uri: http::Uri,
    headers: http::HeaderMap,
    body: String,
) -> axum::response::Response {
    let text = |name: header::HeaderName| {
        headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    mock.requests.lock().unwrap().push(Recorded {
        path: uri.path().to_owned(),
        authorization: text(header::AUTHORIZATION),
        content_type: text(header::CONTENT_TYPE),
        form: form_decode(&body),
    });
    let next = {
        let mut script = mock.script.lock().unwrap();
        (!script.is_empty()).then(|| script.remove(0))
    };
    let (status, body) = next.unwrap_or((
        201,
        json!({"sid": "SM00000000000000000000000000000099", "status": "queued"}),
    ));
    (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
}

fn reply_to(recipient: &str, text: &str) -> OutboundMessage {
    let conversation_id = ConversationKey::new(Channel::Sms, recipient).conversation_id();
    OutboundMessage {
        schema: SCHEMA_VERSION,
        message_id: MessageId::random(),
        conversation_id,
        channel: Channel::Sms,
        recipient: recipient.into(),
        author: Author::Bot,
        agent_id: None,
        text: text.into(),
        quick_replies: Vec::new(),
        in_reply_to: None,
        created_at: 1,
    }
}

fn field<'a>(request: &'a Recorded, key: &str) -> Option<&'a str> {
    request
        .form
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn given_a_reply_when_sent_then_twilio_gets_basic_auth_and_the_exact_form() {
    let app = App::new();
    let mock = MockTwilio::start().await;
    let sender = app.sender(&mock.base, TwilioFrom::Number("+15005550006".into()));
    let mut message = reply_to(CUSTOMER, "查看物流：[点此](https://shop.example.com/t/1)");
    message.quick_replies = vec!["退货".into()];
    sender.send(&message).await.unwrap();

    let requests = mock.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(
        request.path,
        format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json")
    );
    assert_eq!(request.authorization, BASIC_AUTH);
    assert_eq!(request.content_type, "application/x-www-form-urlencoded");
    let keys: Vec<&str> = request.form.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["To", "From", "Body"]);
    assert_eq!(field(request, "To"), Some(CUSTOMER));
    assert_eq!(field(request, "From"), Some("+15005550006"));
    assert_eq!(
        field(request, "Body"),
        Some("查看物流：点此: https://shop.example.com/t/1\n\n- 退货")
    );
}

#[tokio::test]
async fn given_a_messaging_service_when_sent_then_messaging_service_sid_replaces_from() {
    let app = App::new();
    let mock = MockTwilio::start().await;
    let service = format!("MG{}", "0123456789abcdef".repeat(2));
    let sender = app.sender(&mock.base, TwilioFrom::MessagingService(service.clone()));
    sender.send(&reply_to(CUSTOMER, "hi")).await.unwrap();
    let request = &mock.requests()[0];
    assert_eq!(
        field(request, "MessagingServiceSid"),
        Some(service.as_str())
    );
    assert_eq!(field(request, "From"), None);
}

#[tokio::test]
async fn given_twilio_fails_when_sending_then_5xx_and_429_are_transient_and_4xx_permanent() {
    let app = App::new();
    let mock = MockTwilio::scripted(vec![
        (500, json!({"code": 20500, "message": "Internal Server Error"})),
        (429, json!({"code": 20429, "message": "Too Many Requests"})),
        (
            400,
            json!({"code": 21211, "message": "The 'To' number +8613800138000 is not a valid phone number.", "status": 400}),
        ),
    ])
    .await;
    let sender = app.sender(&mock.base, TwilioFrom::Number("+15005550006".into()));
    let message = reply_to(CUSTOMER, "hi");
    assert!(matches!(
        sender.send(&message).await,
        Err(SendError::Transient(_))
    ));
    assert!(matches!(
        sender.send(&message).await,
        Err(SendError::Transient(_))
    ));
    match sender.send(&message).await {
        Err(SendError::Permanent(reason)) => {
            assert!(reason.contains("21211"), "{reason}");
            assert!(
                !reason.contains("13800138000"),
                "number not masked: {reason}"
            );
        }
        other => panic!("expected a permanent failure, got {other:?}"),
    }
}

#[tokio::test]
async fn given_twilio_reports_an_unsubscribed_recipient_when_sending_then_permanent_and_opted_out()
{
    let app = App::new();
    let mock = MockTwilio::scripted(vec![(
        400,
        json!({"code": 21610, "message": "Attempt to send to unsubscribed recipient", "status": 400}),
    )])
    .await;
    let sender = app.sender(&mock.base, TwilioFrom::Number("+15005550006".into()));
    match sender.send(&reply_to(CUSTOMER, "hi")).await {
        Err(SendError::Permanent(reason)) => assert!(reason.contains("unsubscribed"), "{reason}"),
        other => panic!("expected a permanent failure, got {other:?}"),
    }
    assert!(app.opted_out(CUSTOMER).await);
}

#[tokio::test]
async fn given_twilio_is_unreachable_when_sending_then_transient() {
    let app = App::new();
    let sender = app.sender(
        "http://127.0.0.1:9",
        TwilioFrom::Number("+15005550006".into()),
    );
    assert!(matches!(
        sender.send(&reply_to(CUSTOMER, "hi")).await,
        Err(SendError::Transient(_))
    ));
}

#[tokio::test]
async fn given_a_reply_over_1600_characters_when_redelivered_after_a_failure_then_each_part_is_sent_once()
 {
    let app = App::new();
    // The first part goes through, the second fails once.
    let mock = MockTwilio::scripted(vec![
        (201, json!({"sid": "SM1"})),
        (
            503,
            json!({"code": 20503, "message": "Service Unavailable"}),
        ),
    ])
    .await;
    let sender = app.sender(&mock.base, TwilioFrom::Number("+15005550006".into()));
    let text = "您的订单已发货，预计三天内送达。".repeat(120); // 1920 characters
    let message = reply_to(CUSTOMER, &text);

    assert!(matches!(
        sender.send(&message).await,
        Err(SendError::Transient(_))
    ));
    sender.send(&message).await.unwrap();

    let bodies: Vec<String> = mock
        .requests()
        .iter()
        .map(|r| field(r, "Body").unwrap().to_owned())
        .collect();
    assert_eq!(bodies.len(), 3, "part 1, part 2 (failed), part 2 again");
    assert_eq!(bodies[1], bodies[2]);
    assert_ne!(bodies[0], bodies[1]);
    assert!(bodies.iter().all(|b| b.chars().count() <= 1600));
    assert_eq!(format!("{}{}", bodies[0], bodies[1]), text);
}

#[tokio::test]
async fn given_a_twilio_sms_over_2000_characters_when_posted_then_it_is_queued_cut_at_the_limit() {
    let app = App::new();
    let long = "a".repeat(2500);
    let params = inbound_sms("SM00000000000000000000000000000077", &long);
    empty_twiml(&app.twilio_signed(&borrowed(&params)).await);

    let queued = app.queued().await;
    assert_eq!(queued.len(), 1, "the SMS is not lost");
    assert_eq!(queued[0].text, "a".repeat(kefu::http::MAX_TEXT_CHARS));
}

#[tokio::test]
async fn given_no_twilio_sending_number_when_replying_then_the_reply_comes_from_the_number_the_customer_wrote_to()
 {
    let app = App::new();
    let params = inbound_sms("SM00000000000000000000000000000078", "在吗");
    empty_twiml(&app.twilio_signed(&borrowed(&params)).await);
    let mock = MockTwilio::start().await;
    let sender = TwilioSender::new(
        &twilio_config(&mock.base, None),
        "86",
        Arc::new(app.store.idempotency()),
    )
    .expect("a sender without KEFU_TWILIO_FROM");

    sender.send(&reply_to(CUSTOMER, "在的")).await.unwrap();
    let requests = mock.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(field(&requests[0], "From"), Some("+15005550006"));
    assert_eq!(field(&requests[0], "To"), Some(CUSTOMER));

    // A customer who never wrote to us has no number to be answered from.
    assert!(matches!(
        sender.send(&reply_to("+8613900139000", "您好")).await,
        Err(SendError::Permanent(_))
    ));
}
