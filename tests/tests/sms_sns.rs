//! SMS replies through SNS `Publish` ([`SnsSmsSender`]): against moto, reading back what
//! it recorded as sent (`GET /moto-api/data.json`, model `sns.SMS`), and against a local
//! mock of the SNS query API for the failures moto does not produce.
//!
//! Run with `cargo test -p kefu-tests --test sms_sns` (moto: see `support/moto.rs`).

mod support;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sqs::config::Credentials;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use kefu::adapters::aws::{MAX_PUBLISH_CHARS, SnsSmsSender};
use kefu::adapters::embedded::EmbeddedStore;
use kefu::channels::sms::{OptOuts, PhoneNumber, SmsConfig};
use kefu::domain::{Author, Channel, ConversationKey, MessageId, OutboundMessage, SCHEMA_VERSION};
use kefu::ports::{ChannelSender, SendError};
use std::sync::{Arc, Mutex};
use support::moto;
use tempfile::TempDir;

/// A sender with its own embedded guard (opt-out register, sent parts).
struct Fixture {
    _dir: TempDir,
    opt_outs: OptOuts,
    sender: SnsSmsSender,
}

impl Fixture {
    fn new(config: &SdkConfig, sms: &SmsConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let guard = Arc::new(store.idempotency());
        Self {
            _dir: dir,
            opt_outs: OptOuts::new(guard.clone()),
            sender: SnsSmsSender::new(config, sms, guard),
        }
    }

    async fn on_moto() -> Self {
        Self::new(&moto::aws_config().await, &sms_config())
    }
}

fn sms_config() -> SmsConfig {
    let mut sms = SmsConfig::new("https://sms.example.com");
    sms.sns_origination_number = Some("+12065550100".into());
    sms
}

/// A Chinese mobile number (national form, 11 digits) no other test uses, ending in
/// `tail`: moto reports numbers ending in 99 as opted out.
fn national_number(tail: &str) -> String {
    let random = uuid::Uuid::new_v4().as_u128() % 10u128.pow(8 - tail.len() as u32);
    format!("139{random:0width$}{tail}", width = 8 - tail.len())
}

fn e164(national: &str) -> String {
    format!("+86{national}")
}

fn reply_to(recipient: &str, text: &str, quick_replies: &[&str]) -> OutboundMessage {
    OutboundMessage {
        schema: SCHEMA_VERSION,
        message_id: MessageId::random(),
        conversation_id: ConversationKey::new(Channel::Sms, recipient).conversation_id(),
        channel: Channel::Sms,
        recipient: recipient.into(),
        author: Author::Bot,
        agent_id: None,
        text: text.into(),
        quick_replies: quick_replies.iter().map(|r| (*r).to_owned()).collect(),
        in_reply_to: None,
        created_at: 1,
    }
}

/// The texts moto recorded as SMS to `number`, oldest first.
async fn sms_sent_to(number: &str) -> Vec<String> {
    let data: serde_json::Value = reqwest::get(format!("{}/moto-api/data.json", moto::moto_url()))
        .await
        .expect("moto's model data")
        .json()
        .await
        .expect("moto's model data as JSON");
    data["sns"]["SMS"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter(|sms| sms["phone_number"] == number)
        .map(|sms| sms["message"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn given_a_reply_when_sent_then_sns_has_one_sms_with_the_exact_number_and_text() {
    let fixture = Fixture::on_moto().await;
    let national = national_number("0");
    let message = reply_to(
        &national,
        "您的订单已发货。[查订单](https://shop.example/o/1)",
        &["退货", "人工客服"],
    );
    fixture.sender.send(&message).await.unwrap();
    assert_eq!(
        sms_sent_to(&e164(&national)).await,
        ["您的订单已发货。查订单: https://shop.example/o/1\n\n- 退货\n- 人工客服"]
    );
}

#[tokio::test]
async fn given_a_text_over_the_publish_limit_when_sent_then_it_goes_in_parts_that_join_up() {
    let fixture = Fixture::on_moto().await;
    let national = national_number("1");
    let text = "0123456789".repeat(200);
    fixture
        .sender
        .send(&reply_to(&national, &text, &[]))
        .await
        .unwrap();
    let sent = sms_sent_to(&e164(&national)).await;
    assert_eq!(sent.len(), 2);
    assert!(
        sent.iter()
            .all(|part| part.chars().count() <= MAX_PUBLISH_CHARS)
    );
    assert_eq!(sent.concat(), text);
}

#[tokio::test]
async fn given_a_redelivered_reply_when_sent_again_then_sns_published_it_once() {
    let fixture = Fixture::on_moto().await;
    let national = national_number("2");
    let message = reply_to(&national, "已为您登记退货。", &[]);
    fixture.sender.send(&message).await.unwrap();
    fixture.sender.send(&message).await.unwrap();
    assert_eq!(sms_sent_to(&e164(&national)).await, ["已为您登记退货。"]);
}

#[tokio::test]
async fn given_a_number_that_sent_stop_when_replied_then_permanent_and_nothing_published() {
    let fixture = Fixture::on_moto().await;
    let national = national_number("3");
    let number = PhoneNumber::parse(&e164(&national), "86").unwrap();
    fixture.opt_outs.opt_out(&number).await.unwrap();
    let error = fixture
        .sender
        .send(&reply_to(&national, "还在吗？", &[]))
        .await
        .unwrap_err();
    assert!(matches!(error, SendError::Permanent(_)), "{error}");
    assert!(sms_sent_to(number.as_str()).await.is_empty());
}

#[tokio::test]
async fn given_a_number_sns_lists_as_opted_out_when_replied_then_permanent_and_remembered() {
    let fixture = Fixture::on_moto().await;
    let national = national_number("99");
    let number = PhoneNumber::parse(&e164(&national), "86").unwrap();
    let error = fixture
        .sender
        .send(&reply_to(&national, "还在吗？", &[]))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, SendError::Permanent(reason) if reason.contains("opted out")),
        "{error}"
    );
    assert!(sms_sent_to(number.as_str()).await.is_empty());
    assert!(fixture.opt_outs.is_opted_out(&number).await.unwrap());
}

/// What the mock SNS answers to `Publish`.
#[derive(Clone, Copy)]
enum Answer {
    Sent,
    Error(u16, &'static str),
}

/// One request's form parameters.
type Form = Vec<(String, String)>;

#[derive(Clone)]
struct Mock {
    answer: Answer,
    /// The form parameters of every request.
    requests: Arc<Mutex<Vec<Form>>>,
}

impl Mock {
    fn publishes(&self) -> Vec<Form> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|request| param(request, "Action") == Some("Publish"))
            .cloned()
            .collect()
    }
}

fn param<'a>(request: &'a [(String, String)], key: &str) -> Option<&'a str> {
    request
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

const XMLNS: &str = "http://sns.amazonaws.com/doc/2010-03-31/";

fn xml(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/xml")], body).into_response()
}

/// The SNS query API: form-encoded `Action=…` in, XML out.
async fn sns_api(State(mock): State<Mock>, body: String) -> Response {
    let request: Form = reqwest::Url::parse(&format!("http://sns/?{body}"))
        .expect("form body")
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let action = param(&request, "Action").unwrap_or_default().to_owned();
    let number = param(&request, "PhoneNumber")
        .or_else(|| param(&request, "phoneNumber"))
        .unwrap_or_default()
        .to_owned();
    mock.requests.lock().unwrap().push(request);
    match (action.as_str(), mock.answer) {
        ("CheckIfPhoneNumberIsOptedOut", _) => xml(
            StatusCode::OK,
            format!(
                "<CheckIfPhoneNumberIsOptedOutResponse xmlns=\"{XMLNS}\"><CheckIfPhoneNumberIsOptedOutResult>\
<isOptedOut>false</isOptedOut></CheckIfPhoneNumberIsOptedOutResult><ResponseMetadata>\
<RequestId>r-check</RequestId></ResponseMetadata></CheckIfPhoneNumberIsOptedOutResponse>"
            ),
        ),
        ("Publish", Answer::Sent) => xml(
            StatusCode::OK,
            format!(
                "<PublishResponse xmlns=\"{XMLNS}\"><PublishResult><MessageId>m-1</MessageId>\
</PublishResult><ResponseMetadata><RequestId>r-publish</RequestId></ResponseMetadata></PublishResponse>"
            ),
        ),
        ("Publish", Answer::Error(status, code)) => xml(
            StatusCode::from_u16(status).unwrap(),
            format!(
                "<ErrorResponse xmlns=\"{XMLNS}\"><Error><Type>Sender</Type><Code>{code}</Code>\
<Message>Invalid parameter: PhoneNumber Reason: {number} is not valid</Message></Error>\
<RequestId>r-error</RequestId></ErrorResponse>"
            ),
        ),
        _ => xml(StatusCode::BAD_REQUEST, String::new()),
    }
}

/// A fixture whose SNS is a mock answering `Publish` with `answer`.
async fn on_mock(answer: Answer) -> (Fixture, Mock) {
    let mock = Mock {
        answer,
        requests: Arc::default(),
    };
    let app = Router::new().fallback(sns_api).with_state(mock.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let config = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(url)
        .region(Region::new(moto::REGION))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "mock"))
        .load()
        .await;
    (Fixture::new(&config, &sms_config()), mock)
}

#[tokio::test]
async fn given_a_reply_when_published_then_it_is_transactional_from_the_origination_number() {
    let (fixture, mock) = on_mock(Answer::Sent).await;
    fixture
        .sender
        .send(&reply_to("13800138000", "好的", &[]))
        .await
        .unwrap();
    let publishes = mock.publishes();
    assert_eq!(publishes.len(), 1);
    let publish = &publishes[0];
    assert_eq!(param(publish, "PhoneNumber"), Some("+8613800138000"));
    assert_eq!(param(publish, "Message"), Some("好的"));
    let attributes: Vec<(&str, &str)> = (1..=3)
        .filter_map(|n| {
            let name = param(publish, &format!("MessageAttributes.entry.{n}.Name"))?;
            let value = param(
                publish,
                &format!("MessageAttributes.entry.{n}.Value.StringValue"),
            )?;
            Some((name, value))
        })
        .collect();
    assert!(
        attributes.contains(&("AWS.SNS.SMS.SMSType", "Transactional")),
        "{attributes:?}"
    );
    assert!(
        attributes.contains(&("AWS.MM.SMS.OriginationNumber", "+12065550100")),
        "{attributes:?}"
    );
}

#[tokio::test]
async fn given_sns_failing_with_5xx_or_throttling_when_sent_then_transient_after_one_attempt() {
    for (status, code) in [(500, "InternalError"), (429, "Throttled")] {
        let (fixture, mock) = on_mock(Answer::Error(status, code)).await;
        let error = fixture
            .sender
            .send(&reply_to("13800138000", "好的", &[]))
            .await
            .unwrap_err();
        assert!(
            matches!(&error, SendError::Transient(reason) if reason.contains(code)),
            "{status}: {error}"
        );
        assert_eq!(
            mock.publishes().len(),
            1,
            "the dispatcher does the retrying"
        );
    }
}

#[tokio::test]
async fn given_sns_refusing_with_400_when_sent_then_permanent_with_the_number_masked() {
    let (fixture, mock) = on_mock(Answer::Error(400, "InvalidParameter")).await;
    let message = reply_to("13800138000", "好的", &[]);
    let error = fixture.sender.send(&message).await.unwrap_err();
    let SendError::Permanent(reason) = &error else {
        panic!("expected permanent, got {error}");
    };
    assert!(reason.contains("InvalidParameter"), "{reason}");
    assert!(!reason.contains("13800138000"), "{reason}");
    // Not sent, so not remembered: a later attempt publishes again.
    let _ = fixture.sender.send(&message).await;
    assert_eq!(mock.publishes().len(), 2);
}
