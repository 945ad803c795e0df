//! End to end on the local runner: a WeChat follower's text is answered through the
//! customer-service message API, and an SMS through Twilio's webhook gets an empty TwiML
//! acknowledgement and its answer through Twilio's REST API. Both platforms' APIs are a
//! local mock that records every request, so the exact shapes are checked.

mod common;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::HeaderMap;
use axum::routing::post;
use common::{free_addr, start};
use kefu::channels::sms::{EMPTY_TWIML, twilio_signature};
use kefu::channels::wechat::crypto;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WECHAT_TOKEN: &str = "e2e-push-token";
const APPID: &str = "wxe2e0000000000001";
const APPSECRET: &str = "e2e-app-secret";
const OPENID: &str = "oE2E_follower_000000000000001";
const TWILIO_SID: &str = "ACe2e00000000000000000000000000001";
const TWILIO_TOKEN: &str = "e2e-twilio-auth-token";
const SHOP_NUMBER: &str = "+15005550006";
const CUSTOMER_NUMBER: &str = "+8613800138000";

/// One request the mock platform API received.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    query: String,
    authorization: Option<String>,
    body: String,
}

type Log = Arc<Mutex<Vec<Seen>>>;

async fn record(
    State(log): State<Log>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> (axum::http::StatusCode, axum::Json<Value>) {
    let seen = Seen {
        path: uri.path().to_owned(),
        query: uri.query().unwrap_or_default().to_owned(),
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let path = seen.path.clone();
    log.lock().unwrap().push(seen);
    match path.as_str() {
        "/cgi-bin/stable_token" => (
            axum::http::StatusCode::OK,
            axum::Json(json!({"access_token": "ACCESS-1", "expires_in": 7200})),
        ),
        "/cgi-bin/message/custom/send" => (
            axum::http::StatusCode::OK,
            axum::Json(json!({"errcode": 0, "errmsg": "ok"})),
        ),
        _ => (
            axum::http::StatusCode::CREATED,
            axum::Json(json!({"sid": "SM00000000000000000000000000000001", "status": "queued"})),
        ),
    }
}

/// The WeChat and Twilio APIs on a free loopback port; returns the base URL and the log.
async fn mock_platforms() -> (String, Log) {
    let log: Log = Arc::default();
    let app = Router::new()
        .route("/cgi-bin/stable_token", post(record))
        .route("/cgi-bin/message/custom/send", post(record))
        .route("/2010-04-01/Accounts/{sid}/Messages.json", post(record))
        .with_state(log.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), log)
}

/// Waits until the mock saw a request to `path`.
async fn sent_to(log: &Log, path: &str) -> Seen {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Some(seen) = log.lock().unwrap().iter().find(|s| s.path == path) {
            return seen.clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("nothing was sent to {path}: {:?}", log.lock().unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn given_a_wechat_text_and_an_sms_then_each_is_answered_through_its_platform_api() {
    let (api, log) = mock_platforms().await;
    let data = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let public_url = format!("http://{addr}");
    let env = [
        ("KEFU_WECHAT_TOKEN", WECHAT_TOKEN),
        ("KEFU_WECHAT_APPID", APPID),
        ("KEFU_WECHAT_APPSECRET", APPSECRET),
        ("KEFU_WECHAT_API_BASE", api.as_str()),
        ("KEFU_TWILIO_ACCOUNT_SID", TWILIO_SID),
        ("KEFU_TWILIO_AUTH_TOKEN", TWILIO_TOKEN),
        ("KEFU_TWILIO_FROM", SHOP_NUMBER),
        ("KEFU_TWILIO_API_BASE", api.as_str()),
        ("KEFU_PUBLIC_URL", public_url.as_str()),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    let data_dir = data.path().to_owned();
    let mut runner = tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        start(addr, &data_dir, &env)
    })
    .await
    .unwrap();
    let client = reqwest::Client::new();

    // A follower writes on WeChat (plaintext mode).
    let timestamp = chrono::Utc::now().timestamp().to_string();
    let push = format!(
        "<xml><ToUserName><![CDATA[gh_e2e]]></ToUserName><FromUserName><![CDATA[{OPENID}]]></FromUserName>\
         <CreateTime>{timestamp}</CreateTime><MsgType><![CDATA[text]]></MsgType>\
         <Content><![CDATA[运费怎么算]]></Content><MsgId>7000000000000000001</MsgId></xml>"
    );
    let acked = client
        .post(format!("{public_url}/wechat"))
        .query(&[
            (
                "signature",
                crypto::signature(WECHAT_TOKEN, &timestamp, "77"),
            ),
            ("timestamp", timestamp.clone()),
            ("nonce", "77".to_owned()),
            ("openid", OPENID.to_owned()),
        ])
        .body(push)
        .send()
        .await
        .unwrap();
    assert_eq!(acked.status(), 200);
    assert_eq!(acked.text().await.unwrap(), "success");

    // A customer texts the shop's Twilio number.
    let webhook = format!("{public_url}/sms/twilio");
    let params: Vec<(String, String)> = [
        ("AccountSid", TWILIO_SID),
        ("Body", "How long does a refund take?"),
        ("From", CUSTOMER_NUMBER),
        ("MessageSid", "SM0000000000000000000000000000e2e1"),
        ("NumMedia", "0"),
        ("To", SHOP_NUMBER),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .into();
    let twiml = client
        .post(&webhook)
        .header(
            "X-Twilio-Signature",
            twilio_signature(TWILIO_TOKEN, &webhook, &params),
        )
        .form(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(twiml.status(), 200);
    assert_eq!(twiml.text().await.unwrap(), EMPTY_TWIML);

    let wechat = sent_to(&log, "/cgi-bin/message/custom/send").await;
    let token = sent_to(&log, "/cgi-bin/stable_token").await;
    let sms = sent_to(
        &log,
        &format!("/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"),
    )
    .await;
    runner.kill().unwrap();
    runner.wait().unwrap();

    let token_request: Value = serde_json::from_str(&token.body).unwrap();
    assert_eq!(token_request["appid"], APPID);
    assert_eq!(token_request["secret"], APPSECRET);
    assert_eq!(wechat.query, "access_token=ACCESS-1");
    let message: Value = serde_json::from_str(&wechat.body).unwrap();
    assert_eq!(message["touser"], OPENID);
    assert_eq!(message["msgtype"], "text");
    let content = message["text"]["content"].as_str().unwrap();
    assert!(content.contains("满99元全国包邮"), "{content}");

    let basic = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{TWILIO_SID}:{TWILIO_TOKEN}")
        )
    );
    assert_eq!(sms.authorization.as_deref(), Some(basic.as_str()));
    let form: Vec<(String, String)> = serde_urlencoded::from_str(&sms.body).unwrap();
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(field("To"), Some(CUSTOMER_NUMBER));
    assert_eq!(field("From"), Some(SHOP_NUMBER));
    assert!(
        field("Body").is_some_and(|b| b.contains("business days")),
        "{form:?}"
    );
}
