//! Email egress against SESv2: replies sent through `EmailSender` + `SesTransport` on moto
//! (the raw mail moto recorded, read back from its `/moto-api/data.json`, and the SES
//! message id kept in the DynamoDB idempotency guard), and the SES error mapping against a
//! local mock of the SESv2 endpoint that answers with a chosen status.
//!
//! Run with `cargo test -p kefu-tests --test email_egress` (moto: see `support/moto.rs`).

mod support;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sqs::config::Credentials;
use axum::Router;
use axum::extract::State;
use axum::response::IntoResponse;
use http::StatusCode;
use kefu::adapters::aws::SesTransport;
use kefu::channels::email::{EmailConfig, EmailSender, MailThread};
use kefu::domain::{Author, Channel, ConversationKey, MessageId, OutboundMessage, SCHEMA_VERSION};
use kefu::ports::IdempotencyGuard;
use kefu::ports::MailTransport;
use kefu::ports::{ChannelSender, SendError};
use serde_json::Value;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use support::moto;

const CUSTOMER: &str = "li.wei@example.com";

/// A domain no other test uses, so moto's identities and recorded mail stay apart.
fn unique_domain() -> String {
    format!("{}.example", moto::unique_name())
}

/// Makes `domain` a verified SES identity on moto.
async fn verify(config: &SdkConfig, domain: &str) {
    aws_sdk_sesv2::Client::new(config)
        .create_email_identity()
        .email_identity(domain)
        .send()
        .await
        .expect("create the SES identity on moto");
}

/// A bot reply to the customer's mail `in_reply_to`.
fn reply(in_reply_to: Option<MessageId>) -> OutboundMessage {
    OutboundMessage {
        schema: SCHEMA_VERSION,
        message_id: MessageId::random(),
        conversation_id: ConversationKey::new(Channel::Email, CUSTOMER).conversation_id(),
        channel: Channel::Email,
        recipient: CUSTOMER.into(),
        author: Author::Bot,
        agent_id: None,
        text: "您好，包裹已发出。\n\nTrack it: https://shop.example/track/1234".into(),
        quick_replies: vec![],
        in_reply_to,
        created_at: 1,
    }
}

/// The raw mails moto recorded as sent from `source`: `(SES message id, raw mail)`.
async fn sent_from(source: &str) -> Vec<(String, String)> {
    let data: Value = reqwest::get(format!("{}/moto-api/data.json", moto::moto_url()))
        .await
        .expect("moto's data.json")
        .json()
        .await
        .expect("data.json is JSON");
    data["ses"]["RawMessage"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|message| message["source"] == source)
        .map(|message| {
            (
                message["id"].as_str().unwrap_or_default().to_owned(),
                message["raw_data"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// The header section of `raw`, unfolded, as `(name, value)` in order.
fn headers(raw: &str) -> Vec<(String, String)> {
    let (head, _body) = raw.split_once("\r\n\r\n").expect("a header section");
    head.replace("\r\n ", " ")
        .split("\r\n")
        .map(|line| {
            let (name, value) = line.split_once(':').expect("name: value");
            (name.to_owned(), value.trim().to_owned())
        })
        .collect()
}

#[tokio::test]
async fn given_a_verified_domain_when_a_reply_is_sent_through_ses_then_moto_has_the_exact_mail() {
    let config = moto::aws_config().await;
    let domain = unique_domain();
    verify(&config, &domain).await;
    let guard = Arc::new(moto::fresh_store().await);
    let email = EmailConfig::new(&format!("support@{domain}"), Some("小店客服".into())).unwrap();
    let sender = EmailSender::new(
        Arc::new(SesTransport::new(&config, None)),
        guard.clone(),
        email,
    );
    let customer_mail = MessageId::random();
    let thread = MailThread {
        message_id: Some("b@mail.example".into()),
        references: vec!["a@mail.example".into()],
        subject: Some("订单 1234 什么时候发货？".into()),
    };
    guard
        .put_if_absent(
            &MailThread::key_for_message(&customer_mail),
            &serde_json::to_string(&thread).unwrap(),
            MailThread::TTL,
        )
        .await
        .unwrap();
    let message = reply(Some(customer_mail));

    sender.send(&message).await.expect("sent through SES");

    let from = format!("support@{domain}");
    let sent = sent_from(&from).await;
    assert_eq!(sent.len(), 1, "one mail recorded by moto");
    let (ses_id, raw) = &sent[0];
    let headers = headers(raw);
    let value = |name: &str| -> Vec<&str> {
        headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    assert_eq!(
        value("From"),
        [format!("=?utf-8?B?5bCP5bqX5a6i5pyN?= <{from}>")]
    );
    assert_eq!(value("To"), [format!("<{CUSTOMER}>")]);
    assert_eq!(
        value("Reply-To"),
        [format!("support+{}@{domain}", message.conversation_id)]
    );
    assert_eq!(
        value("Subject"),
        ["=?utf-8?B?UmU6IOiuouWNlSAxMjM0IOS7gOS5iOaXtuWAmeWPkei0p++8nw==?="]
    );
    assert_eq!(
        value("Message-ID"),
        [format!("<{}@{domain}>", message.message_id)]
    );
    assert_eq!(value("In-Reply-To"), ["<b@mail.example>"]);
    assert_eq!(value("References"), ["<a@mail.example> <b@mail.example>"]);
    assert_eq!(value("Auto-Submitted"), ["auto-replied"]);
    assert_eq!(value("MIME-Version"), ["1.0"]);
    let date = value("Date");
    assert_eq!(date.len(), 1);
    chrono::DateTime::parse_from_rfc2822(date[0]).expect("an RFC 2822 date");
    let content_type = value("Content-Type");
    assert_eq!(content_type.len(), 1);
    let boundary = content_type[0]
        .strip_prefix("multipart/alternative; boundary=\"")
        .and_then(|rest| rest.strip_suffix('"'))
        .expect("multipart/alternative with a quoted boundary");
    assert!(raw.contains(&format!(
        "\r\n--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n"
    )));
    assert!(raw.contains(&format!(
        "\r\n--{boundary}\r\nContent-Type: text/html; charset=utf-8\r\n"
    )));
    assert!(raw.ends_with(&format!("\r\n--{boundary}--\r\n")));

    let outbound = MailThread::key_for_outbound(&message.message_id);
    assert_eq!(guard.get(&outbound).await.unwrap().as_ref(), Some(ses_id));
    assert_eq!(
        guard.get(&MailThread::key_for_sent(ses_id)).await.unwrap(),
        Some(message.conversation_id.to_string())
    );

    sender.send(&message).await.expect("a redelivery succeeds");
    assert_eq!(sent_from(&from).await.len(), 1, "and sends nothing");
}

#[tokio::test]
async fn given_an_unverified_from_when_sent_through_ses_then_permanent_and_nothing_recorded() {
    let config = moto::aws_config().await;
    let domain = unique_domain();
    let guard = Arc::new(moto::fresh_store().await);
    let email = EmailConfig::new(&format!("support@{domain}"), None).unwrap();
    let sender = EmailSender::new(
        Arc::new(SesTransport::new(&config, None)),
        guard.clone(),
        email,
    );
    let message = reply(None);

    let error = sender.send(&message).await.unwrap_err();

    assert!(matches!(error, SendError::Permanent(_)), "{error}");
    assert!(sent_from(&format!("support@{domain}")).await.is_empty());
    let outbound = MailThread::key_for_outbound(&message.message_id);
    assert_eq!(guard.get(&outbound).await.unwrap(), None);
}

/// What the mock SES endpoint answers, and how many requests it got.
#[derive(Clone, Default)]
struct Mock {
    answer: Arc<Mutex<(u16, Option<&'static str>)>>,
    requests: Arc<AtomicUsize>,
}

async fn mock_send_email(State(mock): State<Mock>) -> impl IntoResponse {
    mock.requests.fetch_add(1, Ordering::SeqCst);
    let (status, error_type) = *mock.answer.lock().unwrap();
    let mut response = (
        StatusCode::from_u16(status).unwrap(),
        [(http::header::CONTENT_TYPE, "application/json")],
        r#"{"message":"answer chosen by the test"}"#,
    )
        .into_response();
    if let Some(error_type) = error_type {
        response.headers_mut().insert(
            "x-amzn-errortype",
            http::HeaderValue::from_static(error_type),
        );
    }
    response
}

/// A mock SESv2 endpoint on a free loopback port; returns its state and URL.
async fn mock_ses() -> (Mock, String) {
    let mock = Mock::default();
    let app = Router::new()
        .route(
            "/v2/email/outbound-emails",
            axum::routing::post(mock_send_email),
        )
        .with_state(mock.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (mock, url)
}

#[tokio::test]
async fn given_ses_failing_when_sent_then_5xx_and_throttling_are_transient_and_4xx_permanent() {
    let (mock, url) = mock_ses().await;
    let config = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(&url)
        .region(Region::new(moto::REGION))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .load()
        .await;
    let transport = SesTransport::new(&config, None);
    let cases: [(u16, Option<&'static str>, bool); 6] = [
        (500, None, true),
        (503, Some("InternalFailure"), true),
        (429, Some("TooManyRequestsException"), true),
        (400, Some("MessageRejected"), false),
        (400, Some("MailFromDomainNotVerifiedException"), false),
        (403, Some("AccessDeniedException"), false),
    ];
    for (status, error_type, transient) in cases {
        *mock.answer.lock().unwrap() = (status, error_type);
        let before = mock.requests.load(Ordering::SeqCst);

        let error = transport
            .send(
                "support@shop.example",
                CUSTOMER,
                b"Subject: x\r\n\r\nx\r\n".to_vec(),
            )
            .await
            .unwrap_err();

        let case = format!("{status} {error_type:?}: {error}");
        assert_eq!(
            matches!(error, SendError::Transient(_)),
            transient,
            "{case}"
        );
        if let Some(error_type) = error_type {
            assert!(error.to_string().contains(error_type), "{case}");
        }
        // One attempt: retrying is the dispatcher's job.
        assert_eq!(mock.requests.load(Ordering::SeqCst), before + 1, "{case}");
    }
}
