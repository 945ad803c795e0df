//! Lambda runtime tests: the real function binaries run under `cargo lambda watch` (the
//! Lambda runtime API emulator), invoked with real API Gateway v2, SQS and S3 events from
//! `infra/events/`, against AWS APIs emulated by moto. Each test asserts the effect in moto.
//! As on AWS, the functions read their secrets from Secrets Manager (moto) at cold start:
//! the environment only names them.
//!
//! Needs `cargo-lambda` (installed into the venv by `infra/scripts/test-all.sh`); run by
//! `infra/scripts/lambda-runtime-tests.sh`.

mod support;

use kefu::adapters::aws::provision;
use serde_json::{Value, json};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::moto;

const TOKEN_SECRET: &str = "kefu-test-token-secret-0123456789";
/// The id key the event fixtures' ids were derived under (`infra/events/README.md`).
const ID_SECRET: &str = "kefu-test-id-secret-0123456789";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `PATH` with the venv's `bin` first, where `cargo-lambda` lives.
fn path_with_venv() -> String {
    let venv = std::env::var("KEFU_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace().join(".venv"));
    format!(
        "{}:{}",
        venv.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

fn event(name: &str) -> Value {
    let path = workspace().join("infra/events").join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `cargo lambda watch` on a free port; killed (with its functions) when dropped.
struct Emulator {
    child: Child,
    port: u16,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        // The functions the emulator started end with the PID namespace the test script
        // runs in (see infra/scripts/lambda-runtime-tests.sh).
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Env {
    table: String,
    inbound_url: String,
    outbound_url: String,
    bucket: String,
    sqs: aws_sdk_sqs::Client,
    s3: aws_sdk_s3::Client,
    dynamodb: aws_sdk_dynamodb::Client,
    /// Secrets Manager secrets: the token and id secrets, and the WeChat account as JSON.
    token_secret: String,
    id_secret: String,
    wechat_token: String,
    wechat_appid: String,
    wechat_appsecret: String,
}

async fn create_secret(value: &str) -> String {
    let name = format!("kefu/{}", moto::unique_name());
    aws_sdk_secretsmanager::Client::new(&moto::aws_config().await)
        .create_secret()
        .name(&name)
        .secret_string(value)
        .send()
        .await
        .unwrap();
    name
}

async fn aws_env() -> Env {
    let (dynamodb, table) = moto::fresh_table().await;
    let (sqs, inbound_url) = moto::fresh_fifo_queue().await;
    let outbound_url = provision::create_fifo_queue(&sqs, &format!("{}.fifo", moto::unique_name()))
        .await
        .unwrap();
    let (s3, bucket) = moto::fresh_bucket().await;
    Env {
        token_secret: create_secret(TOKEN_SECRET).await,
        id_secret: create_secret(ID_SECRET).await,
        // One secret per setting: `cargo lambda watch` reads `#` in its env file as the
        // start of a comment, so the `<secret>#<json key>` form (tested in secrets.rs)
        // cannot pass through it.
        wechat_token: create_secret(WECHAT_TOKEN).await,
        wechat_appid: create_secret("wx0123456789abcdef").await,
        wechat_appsecret: create_secret("runtime-test-app-secret").await,
        table,
        inbound_url,
        outbound_url,
        bucket,
        sqs,
        s3,
        dynamodb,
    }
}

fn start_emulator(env: &Env) -> Emulator {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let env_file = std::env::temp_dir().join(format!("kefu-lambda-env-{port}"));
    let vars = [
        ("AWS_ENDPOINT_URL", moto::moto_url().to_owned()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("KEFU_TABLE", env.table.clone()),
        ("KEFU_INBOUND_QUEUE_URL", env.inbound_url.clone()),
        ("KEFU_OUTBOUND_QUEUE_URL", env.outbound_url.clone()),
        ("KEFU_BUCKET", env.bucket.clone()),
        ("KEFU_TOKEN_SECRET_SECRET_ID", env.token_secret.clone()),
        ("KEFU_ID_SECRET_SECRET_ID", env.id_secret.clone()),
        ("KEFU_EMAIL_ADDRESS", "support@shop.example".into()),
        ("KEFU_WECHAT_TOKEN_SECRET_ID", env.wechat_token.clone()),
        ("KEFU_WECHAT_APPID_SECRET_ID", env.wechat_appid.clone()),
        (
            "KEFU_WECHAT_APPSECRET_SECRET_ID",
            env.wechat_appsecret.clone(),
        ),
        ("KEFU_LOG", "info".into()),
    ];
    let text: String = vars.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    std::fs::write(&env_file, text).unwrap();
    let child = Command::new("cargo")
        .current_dir(workspace())
        .env("PATH", path_with_venv())
        .args(["lambda", "watch", "--ignore-changes", "--quiet"])
        .args([
            "--invoke-address",
            "127.0.0.1",
            "--invoke-port",
            &port.to_string(),
        ])
        .arg("--env-file")
        .arg(&env_file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("cargo lambda watch (pip install cargo-lambda into the venv)");
    let emulator = Emulator { child, port };
    for _ in 0..300 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return emulator;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("cargo lambda watch did not start");
}

/// `cargo lambda invoke <function>` with `payload`; returns the function's response.
fn invoke(emulator: &Emulator, function: &str, payload: &Value) -> Value {
    let file = std::env::temp_dir().join(format!("kefu-event-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(&file, payload.to_string()).unwrap();
    let output = Command::new("cargo")
        .current_dir(workspace())
        .env("PATH", path_with_venv())
        .args(["lambda", "invoke", function, "--output-format", "json"])
        .args([
            "--invoke-address",
            "127.0.0.1",
            "--invoke-port",
            &emulator.port.to_string(),
        ])
        .arg("--data-file")
        .arg(&file)
        .stdin(Stdio::null())
        .output()
        .expect("cargo lambda invoke");
    let _ = std::fs::remove_file(&file);
    assert!(
        output.status.success(),
        "invoking {function} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "{function} answered non-JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

fn http_body(response: &Value) -> Value {
    serde_json::from_str(response["body"].as_str().unwrap_or("null")).unwrap()
}

async fn receive_all(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<aws_sdk_sqs::types::Message> {
    let out = sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
        .send()
        .await
        .unwrap();
    out.messages.unwrap_or_default()
}

/// The SQS event fixture with its record replaced by `message` from `queue_arn`.
fn sqs_event(message: &aws_sdk_sqs::types::Message, queue_arn: &str) -> Value {
    let mut event = event("sqs-inbound.json");
    let mut record = event["Records"][0].clone();
    record["messageId"] = json!(message.message_id());
    record["receiptHandle"] = json!(message.receipt_handle());
    record["body"] = json!(message.body());
    record["eventSourceARN"] = json!(queue_arn);
    if let Some(attributes) = message.attributes() {
        for (k, v) in attributes {
            record["attributes"][k.as_str()] = json!(v);
        }
    }
    event["Records"] = json!([record]);
    event
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs cargo-lambda: run by infra/scripts/lambda-runtime-tests.sh"]
async fn given_the_function_binaries_under_the_lambda_runtime_then_a_web_message_is_queued_answered_and_the_faq_published()
 {
    let env = aws_env().await;
    let emulator = start_emulator(&env);

    // faq-indexer: an S3 ObjectCreated event for a source uploaded to moto.
    let faq = std::fs::read(workspace().join("infra/faq/faq.jsonl")).unwrap();
    env.s3
        .put_object()
        .bucket(&env.bucket)
        .key("faq/source/faq.jsonl")
        .body(faq.into())
        .send()
        .await
        .unwrap();
    let mut s3_event = event("s3-faq-source.json");
    s3_event["Records"][0]["s3"]["bucket"]["name"] = json!(env.bucket);
    s3_event["Records"][0]["s3"]["bucket"]["arn"] = json!(format!("arn:aws:s3:::{}", env.bucket));
    let published = invoke(&emulator, "faq-indexer", &s3_event);
    let version = published["published"][0]
        .as_str()
        .expect("a version")
        .to_owned();
    let current = env
        .s3
        .get_object()
        .bucket(&env.bucket)
        .key("faq/index/CURRENT")
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();
    assert_eq!(String::from_utf8_lossy(&current).trim(), version);
    let index = env
        .s3
        .head_object()
        .bucket(&env.bucket)
        .key(format!("faq/index/{version}"))
        .send()
        .await
        .unwrap();
    assert!(index.content_length().unwrap_or(0) > 1000);

    // web-api: a session, then a message, both as API Gateway HTTP API v2 events.
    let session = invoke(&emulator, "web-api", &event("apigw-web-sessions.json"));
    assert_eq!(session["statusCode"], 201, "{session}");
    let session = http_body(&session);
    let conversation = session["conversation_id"].as_str().unwrap().to_owned();
    let mut post = event("apigw-web-messages.json");
    post["headers"]["authorization"] = json!(format!(
        "Bearer {}",
        session["visitor_token"].as_str().unwrap()
    ));
    let ack = invoke(&emulator, "web-api", &post);
    assert_eq!(ack["statusCode"], 202, "{ack}");
    let ack = http_body(&ack);

    let queued = receive_all(&env.sqs, &env.inbound_url).await;
    assert_eq!(queued.len(), 1);
    let attributes = queued[0].attributes().unwrap();
    assert_eq!(
        attributes
            .get(&aws_sdk_sqs::types::MessageSystemAttributeName::MessageGroupId)
            .map(String::as_str),
        Some(conversation.as_str())
    );
    assert_eq!(
        attributes
            .get(&aws_sdk_sqs::types::MessageSystemAttributeName::MessageDeduplicationId)
            .map(String::as_str),
        ack["message_id"].as_str()
    );

    // bot: the queued message as an SQS event; the reply lands on the outbound queue.
    let inbound_arn = format!(
        "arn:aws:sqs:us-east-1:123456789012:{}",
        env.inbound_url.rsplit('/').next().unwrap()
    );
    let response = invoke(&emulator, "bot", &sqs_event(&queued[0], &inbound_arn));
    assert_eq!(response["batchItemFailures"], json!([]), "{response}");
    let replies = receive_all(&env.sqs, &env.outbound_url).await;
    assert_eq!(replies.len(), 1);
    let reply: Value = serde_json::from_str(replies[0].body().unwrap()).unwrap();
    assert_eq!(reply["conversation_id"], conversation.as_str());
    assert_eq!(reply["author"], "bot");
    let answers: Vec<String> = std::fs::read_to_string(workspace().join("infra/faq/faq.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["answer"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(
        answers.iter().any(|a| reply["text"] == a.as_str()),
        "answered from the FAQ: {reply}"
    );

    // dispatcher: the reply as an SQS event; it is stored in the conversation (DynamoDB).
    let response = invoke(
        &emulator,
        "dispatcher",
        &sqs_event(&replies[0], &inbound_arn),
    );
    assert_eq!(response["batchItemFailures"], json!([]), "{response}");
    let items = env
        .dynamodb
        .query()
        .table_name(&env.table)
        .key_condition_expression("pk = :pk AND begins_with(sk, :msg)")
        .expression_attribute_values(
            ":pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("CONV#{conversation}")),
        )
        .expression_attribute_values(
            ":msg",
            aws_sdk_dynamodb::types::AttributeValue::S("MSG#".into()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(items.count(), 2, "customer message and bot reply stored");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs cargo-lambda: run by infra/scripts/lambda-runtime-tests.sh"]
async fn given_the_email_webhook_binary_when_invoked_with_an_ses_receipt_event_then_the_mail_is_queued()
 {
    let env = aws_env().await;
    let emulator = start_emulator(&env);
    // What the receipt rule's S3 action does before SES invokes the function.
    let ses = event("ses-receipt.json");
    let ses_id = ses["Records"][0]["ses"]["mail"]["messageId"]
        .as_str()
        .unwrap();
    let raw =
        std::fs::read(workspace().join("shared/src/channels/email/testdata/pdf_attachment.eml"))
            .unwrap();
    env.s3
        .put_object()
        .bucket(&env.bucket)
        .key(format!("email/inbound/{ses_id}"))
        .body(raw.into())
        .send()
        .await
        .unwrap();

    let answer = invoke(&emulator, "email-webhook", &ses);
    let queued = receive_all(&env.sqs, &env.inbound_url).await;
    assert_eq!(queued.len(), 1, "{answer}");
    let body: Value = serde_json::from_str(queued[0].body().unwrap()).unwrap();
    assert_eq!(answer["queued"], json!([body["message_id"]]), "{answer}");
    assert_eq!(body["channel"], "email");
    assert_eq!(body["customer"]["address"], "orders@acme-retail.example");
    let attachment = env
        .s3
        .head_object()
        .bucket(&env.bucket)
        .key(format!(
            "email/attachments/{}/1-invoice-8902.pdf",
            body["message_id"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap();
    assert!(attachment.content_length().unwrap_or(0) > 0);
}

/// The WeChat push token in the emulator's environment.
const WECHAT_TOKEN: &str = "runtime-test-push-token";

/// `event` with its WeChat signature made now (pushes over 5 minutes old are refused).
fn signed_wechat_push(mut push: Value, token: &str) -> Value {
    let timestamp = chrono::Utc::now().timestamp().to_string();
    let nonce = push["queryStringParameters"]["nonce"]
        .as_str()
        .unwrap()
        .to_owned();
    let openid = push["queryStringParameters"]["openid"]
        .as_str()
        .unwrap()
        .to_owned();
    let signature = kefu::channels::wechat::crypto::signature(token, &timestamp, &nonce);
    push["queryStringParameters"]["timestamp"] = json!(timestamp);
    push["queryStringParameters"]["signature"] = json!(signature);
    push["rawQueryString"] = json!(format!(
        "signature={signature}&timestamp={timestamp}&nonce={nonce}&openid={openid}"
    ));
    push
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs cargo-lambda: run by infra/scripts/lambda-runtime-tests.sh"]
async fn given_the_channel_webhook_binaries_when_invoked_with_platform_events_then_each_message_is_queued_once()
 {
    let env = aws_env().await;
    let emulator = start_emulator(&env);

    // Two-way SMS through SNS, delivered twice (SNS retries a Lambda delivery).
    let sns = event("sns-sms.json");
    assert_eq!(invoke(&emulator, "sms-webhook", &sns), Value::Null);
    assert_eq!(invoke(&emulator, "sms-webhook", &sns), Value::Null);

    // A WeChat push through API Gateway: forged first, then signed.
    let push = event("apigw-wechat-push.json");
    let forged = invoke(
        &emulator,
        "wechat-webhook",
        &signed_wechat_push(push.clone(), "guess"),
    );
    assert!(
        matches!(forged["statusCode"].as_i64(), Some(401 | 403)),
        "{forged}"
    );
    let signed = signed_wechat_push(push, WECHAT_TOKEN);
    let answer = invoke(&emulator, "wechat-webhook", &signed);
    assert_eq!(answer["statusCode"], 200, "{answer}");
    assert_eq!(answer["body"], "success");

    let queued = receive_all(&env.sqs, &env.inbound_url).await;
    let mut bodies: Vec<Value> = queued
        .iter()
        .map(|m| serde_json::from_str(m.body().unwrap()).unwrap())
        .collect();
    bodies.sort_by_key(|body| body["channel"].as_str().unwrap().to_owned());
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    assert_eq!(bodies[0]["channel"], "sms");
    assert_eq!(bodies[0]["customer"]["address"], "+14255550182");
    assert_eq!(bodies[0]["text"], "Where is my order?");
    assert_eq!(bodies[1]["channel"], "wechat");
    assert_eq!(
        bodies[1]["customer"]["address"],
        "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"
    );
    assert_eq!(bodies[1]["text"], "运费怎么算");
}
