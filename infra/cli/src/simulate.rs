//! `kefu simulate`: try the WeChat, SMS and email channels of a local runner without a
//! phone or a mail client.
//!
//! `kefu simulate apis` stands in for the platforms' send APIs and prints every reply the
//! runner sends; `kefu simulate wechat|sms <text>` plays the customer, sending a correctly
//! signed webhook exactly as WeChat or Twilio would; `kefu simulate email <text>` mails the
//! runner over SMTP and prints the threaded reply from its outbox. They read the runner's
//! own settings (`KEFU_WECHAT_*`, `KEFU_TWILIO_*`, `KEFU_PUBLIC_URL`, `KEFU_SMTP_ADDR`,
//! `KEFU_EMAIL_ADDRESS`, `KEFU_DATA_DIR`), so one set of exports configures both sides:
//!
//! ```sh
//! export KEFU_WECHAT_TOKEN=demo KEFU_WECHAT_APPID=wxdemo KEFU_WECHAT_APPSECRET=demo \
//!        KEFU_TWILIO_ACCOUNT_SID=ACdemo KEFU_TWILIO_AUTH_TOKEN=demo KEFU_TWILIO_FROM=+15005550006 \
//!        KEFU_WECHAT_API_BASE=http://127.0.0.1:9090 KEFU_TWILIO_API_BASE=http://127.0.0.1:9090
//! kefu simulate apis &            # prints the replies
//! cargo run --release -p kefu-local &
//! kefu simulate wechat "运费怎么算"
//! kefu simulate sms "How long does a refund take?"
//! kefu simulate email "运费怎么算"
//! ```

use anyhow::{Context, bail};
use axum::Router;
use axum::extract::{Form, Json, Path};
use axum::routing::{get, post};
use clap::{Args, Subcommand};
use kefu::channels::email::{self, OutgoingMail};
use kefu::channels::sms::twilio_signature;
use kefu::channels::wechat::{AesKey, MessageCrypt, crypto};
use kefu::config;
use serde_json::{Value, json};
use std::collections::HashMap;

/// What to simulate.
#[derive(Subcommand, Debug)]
pub enum SimulateCommand {
    /// Stand in for the WeChat and Twilio APIs and print the replies sent to them.
    Apis(ApisArgs),
    /// Send a text as a WeChat follower (signed; encrypted when KEFU_WECHAT_AES_KEY is set).
    Wechat(CustomerArgs),
    /// Send a text as an SMS through Twilio's webhook (signed with KEFU_TWILIO_AUTH_TOKEN).
    Sms(CustomerArgs),
    /// Mail a text to the runner over SMTP and print the reply it writes to its outbox.
    Email(EmailArgs),
}

/// `kefu simulate email`.
#[derive(Args, Debug)]
pub struct EmailArgs {
    /// What the customer writes.
    text: String,
    /// The subject (default: none, the text alone is the question).
    #[arg(long)]
    subject: Option<String>,
    /// Who writes.
    #[arg(long, default_value = "li.wei@example.com")]
    from: String,
    /// The runner's SMTP address (default: KEFU_SMTP_ADDR, else 127.0.0.1:2525).
    #[arg(long)]
    smtp: Option<String>,
    /// How long to wait for the reply in the outbox, in seconds (0: don't wait).
    #[arg(long, default_value_t = 30)]
    wait: u64,
}

/// `kefu simulate apis`.
#[derive(Args, Debug)]
pub struct ApisArgs {
    /// Address to listen on; point KEFU_WECHAT_API_BASE and KEFU_TWILIO_API_BASE at it.
    #[arg(long, default_value = "127.0.0.1:9090")]
    addr: String,
}

/// `kefu simulate wechat|sms`.
#[derive(Args, Debug)]
pub struct CustomerArgs {
    /// What the customer writes.
    text: String,
    /// The runner's public base URL (default: KEFU_PUBLIC_URL, else http://127.0.0.1:8080).
    #[arg(long)]
    url: Option<String>,
    /// Who writes: a WeChat OpenID or a phone number.
    #[arg(long)]
    from: Option<String>,
}

/// Runs one simulation.
pub fn run(command: SimulateCommand) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        match command {
            SimulateCommand::Apis(args) => serve_apis(&args.addr).await,
            SimulateCommand::Wechat(args) => send_wechat(args).await,
            SimulateCommand::Sms(args) => send_sms(args).await,
            SimulateCommand::Email(args) => send_email(args).await,
        }
    })
}

fn base_url(args: &CustomerArgs) -> String {
    args.url
        .clone()
        .or_else(|| config::optional("KEFU_PUBLIC_URL"))
        .unwrap_or_else(|| "http://127.0.0.1:8080".into())
        .trim_end_matches('/')
        .to_owned()
}

fn setting(name: &str) -> anyhow::Result<String> {
    config::optional(name).with_context(|| format!("set {name} as for the runner"))
}

/// A random decimal string: nonces and message ids.
fn digits(n: usize) -> String {
    (0..n)
        .map(|_| char::from(b'0' + rand::random::<u8>() % 10))
        .collect()
}

async fn send_wechat(args: CustomerArgs) -> anyhow::Result<()> {
    let token = setting("KEFU_WECHAT_TOKEN")?;
    let appid = setting("KEFU_WECHAT_APPID")?;
    let openid = args
        .from
        .clone()
        .unwrap_or_else(|| "o6_bmjrPTlm6_2sgVt7hMZOPfL2M".into());
    let timestamp = chrono::Utc::now().timestamp().to_string();
    let nonce = digits(9);
    let push = format!(
        "<xml><ToUserName><![CDATA[gh_kefu_simulator]]></ToUserName>\
         <FromUserName><![CDATA[{openid}]]></FromUserName><CreateTime>{timestamp}</CreateTime>\
         <MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{}]]></Content>\
         <MsgId>{}</MsgId></xml>",
        args.text.replace("]]>", "]]]]><![CDATA[>"),
        digits(18).trim_start_matches('0'),
    );
    let mut query = vec![
        ("signature", crypto::signature(&token, &timestamp, &nonce)),
        ("timestamp", timestamp.clone()),
        ("nonce", nonce.clone()),
        ("openid", openid),
    ];
    let crypt = config::optional("KEFU_WECHAT_AES_KEY")
        .map(|key| AesKey::parse(&key).map(|key| MessageCrypt::new(key, appid)))
        .transpose()
        .context("KEFU_WECHAT_AES_KEY")?;
    let body = match &crypt {
        None => push,
        Some(crypt) => {
            let encrypt = crypt.encrypt(&push);
            query.push(("encrypt_type", "aes".into()));
            query.push((
                "msg_signature",
                crypto::msg_signature(&token, &timestamp, &nonce, &encrypt),
            ));
            format!(
                "<xml><ToUserName><![CDATA[gh_kefu_simulator]]></ToUserName>\
                 <Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
            )
        }
    };
    let url = format!("{}/wechat", base_url(&args));
    let request = reqwest::Client::new()
        .post(&url)
        .query(&query)
        .header("content-type", "text/xml")
        .body(body);
    deliver(request, &url, "WeChat", "the customer-service API").await
}

async fn send_sms(args: CustomerArgs) -> anyhow::Result<()> {
    let auth_token = setting("KEFU_TWILIO_AUTH_TOKEN")?;
    let account = setting("KEFU_TWILIO_ACCOUNT_SID")?;
    let to = config::optional("KEFU_TWILIO_FROM").unwrap_or_else(|| "+15005550006".into());
    let from = args.from.clone().unwrap_or_else(|| "+8613800138000".into());
    let params: Vec<(String, String)> = [
        ("AccountSid", account),
        ("Body", args.text.clone()),
        ("From", from),
        (
            "MessageSid",
            format!("SM{}", hex::encode(rand::random::<[u8; 16]>())),
        ),
        ("NumMedia", "0".into()),
        ("NumSegments", "1".into()),
        ("To", to),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let url = format!("{}/sms/twilio", base_url(&args));
    let request = reqwest::Client::new()
        .post(&url)
        .header(
            "X-Twilio-Signature",
            twilio_signature(&auth_token, &url, &params),
        )
        .form(&params);
    deliver(request, &url, "Twilio", "Twilio's Messages API").await
}

/// Sends a webhook request and prints what the runner answered; an error when refused.
async fn deliver(
    request: reqwest::RequestBuilder,
    url: &str,
    platform: &str,
    reply_via: &str,
) -> anyhow::Result<()> {
    let response = request
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = response.status();
    let answer = response.text().await.unwrap_or_default();
    println!("{platform} webhook answered {status}: {answer}");
    if !status.is_success() {
        bail!("the runner refused the message");
    }
    println!("The bot's reply arrives at {reply_via} (see `kefu simulate apis`).");
    Ok(())
}

async fn send_email(args: EmailArgs) -> anyhow::Result<()> {
    let smtp = args
        .smtp
        .clone()
        .unwrap_or_else(|| config::or("KEFU_SMTP_ADDR", email::smtp::DEFAULT_ADDR));
    let support = config::or("KEFU_EMAIL_ADDRESS", "support@kefu.localhost");
    let message_id = format!("{}@simulator.kefu", hex::encode(rand::random::<[u8; 16]>()));
    let mail = OutgoingMail {
        from: email::Mailbox {
            address: args.from.clone(),
            name: Some("Simulated Customer".into()),
        },
        to: email::Mailbox {
            address: support.clone(),
            name: None,
        },
        reply_to: None,
        subject: args.subject.clone().unwrap_or_default(),
        html: email::html_of(&args.text),
        text: args.text.clone(),
        message_id: message_id.clone(),
        in_reply_to: None,
        references: None,
        date: chrono::Utc::now(),
        auto_submitted: false,
    };
    email::smtp::relay(
        &smtp,
        &args.from,
        std::slice::from_ref(&support),
        &mail.to_mime(),
    )
    .await
    .with_context(|| format!("mailing {support} through {smtp}"))?;
    println!(
        "Mailed {support} through {smtp} as {} (<{message_id}>).",
        args.from
    );
    if args.wait == 0 {
        return Ok(());
    }
    let outbox = std::path::Path::new(&config::or("KEFU_DATA_DIR", "./.kefu")).join("outbox/new");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(args.wait);
    while std::time::Instant::now() < deadline {
        if let Some(reply) = reply_in(&outbox, &message_id)? {
            println!(
                "Reply to {}: {}\n{}",
                reply.to,
                reply.subject,
                reply.text.trim_end()
            );
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    bail!(
        "no reply in {} after {} s (is the runner relaying to KEFU_SMTP_RELAY instead?)",
        outbox.display(),
        args.wait
    )
}

/// A reply found in the outbox.
struct OutboxReply {
    to: String,
    subject: String,
    text: String,
}

/// The mail in the Maildir folder `new` that answers `message_id`, if any.
fn reply_in(new: &std::path::Path, message_id: &str) -> anyhow::Result<Option<OutboxReply>> {
    let Ok(entries) = std::fs::read_dir(new) else {
        return Ok(None);
    };
    for entry in entries {
        let raw = std::fs::read(entry?.path())?;
        let Ok(mail) = email::parse(&raw) else {
            continue;
        };
        if mail.in_reply_to.as_deref() == Some(message_id) {
            let to = mail.recipients.first().cloned().unwrap_or_default();
            return Ok(Some(OutboxReply {
                to,
                subject: mail.subject.unwrap_or_default(),
                text: mail.text,
            }));
        }
    }
    Ok(None)
}

async fn serve_apis(addr: &str) -> anyhow::Result<()> {
    let token = || async { Json(json!({"access_token": "simulated-token", "expires_in": 7200})) };
    let app = Router::new()
        .route("/cgi-bin/stable_token", post(token))
        .route("/cgi-bin/token", get(token))
        .route(
            "/cgi-bin/message/custom/send",
            post(|Json(body): Json<Value>| async move {
                println!(
                    "WeChat → {}: {}",
                    body["touser"].as_str().unwrap_or("?"),
                    body["text"]["content"].as_str().unwrap_or("?")
                );
                Json(json!({"errcode": 0, "errmsg": "ok"}))
            }),
        )
        .route(
            "/2010-04-01/Accounts/{account}/Messages.json",
            post(
                |Path(_account): Path<String>, Form(form): Form<HashMap<String, String>>| async move {
                    let field = |name: &str| form.get(name).map_or("?", String::as_str);
                    println!("SMS → {}: {}", field("To"), field("Body"));
                    (
                        axum::http::StatusCode::CREATED,
                        Json(json!({"sid": format!("SM{}", hex::encode(rand::random::<[u8; 16]>())), "status": "queued"})),
                    )
                },
            ),
        );
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr}"))?;
    eprintln!(
        "simulated WeChat and Twilio APIs on http://{addr}: set KEFU_WECHAT_API_BASE and \
         KEFU_TWILIO_API_BASE to it; replies are printed below"
    );
    axum::serve(listener, app).await.context("serving")?;
    Ok(())
}
