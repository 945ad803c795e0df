//! The whole kefu system on one machine: the same routers as API Gateway, the bot and the
//! dispatcher as queue-consumer tasks, embedded durable storage, the demo FAQ, the demo
//! page with the chat widget and a demo agent account; the WeChat and SMS webhooks and
//! senders when their secrets are configured; email over SMTP with a Maildir outbox.

mod email;
mod serve;

pub use email::{EMAIL_PREFIX, EmailSettings};
pub use serve::HEADER_READ_TIMEOUT;

use anyhow::Context;
use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use kefu::adapters::demo_orders::DemoOrderSource;
use kefu::adapters::embedded::{EmbeddedStore, INBOUND, OUTBOUND};
use kefu::agent::{AgentAuthMode, AgentState, LoginGate, disable_agent, provision_agent};
use kefu::auth::{ShopIdentitySecret, TokenSigner};
use kefu::channels::Egress;
use kefu::channels::sms::{self, SmsConfig, SmsState};
use kefu::channels::wechat::{self, WechatConfig, WechatIngress};
use kefu::config;
use kefu::consumer::{PumpConfig, Shutdown, pump};
use kefu::dispatch::Dispatcher;
use kefu::ports::{AgentDirectory, BlobStore, IdempotencyGuard, MessageQueue};
use kefu::web::{WebConfig, WebState};
use kefu_bot::calibrate::TargetWrongRate;
use kefu_bot::flows::{FlowConfig, Flows};
use kefu_bot::handler::{Bot, BotConfig};
use kefu_bot::library::{FaqLibrary, SOURCE_PREFIX, publish_with};
use kefu_bot::policy::EscalationPolicy;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Everything the local runner reads from the environment (see the README's table).
#[derive(Debug, Clone)]
pub struct Settings {
    /// `KEFU_HTTP_ADDR`.
    pub addr: SocketAddr,
    /// `KEFU_DATA_DIR`.
    pub data_dir: PathBuf,
    /// `KEFU_FAQ_SOURCE`.
    pub faq_source: PathBuf,
    /// `KEFU_FAQ_TARGET_WRONG_RATE`: the wrong-answer rate the FAQ is calibrated for.
    pub faq_target_wrong_rate: TargetWrongRate,
    /// `KEFU_TOKEN_SECRET`; generated once and kept in the data dir when unset.
    pub token_secret: Option<String>,
    /// `KEFU_ID_SECRET`; generated once and kept in the data dir when unset.
    pub id_secret: Option<String>,
    /// `KEFU_SHOP_IDENTITY_SECRET`.
    pub shop_identity_secret: Option<String>,
    /// The widget API's settings (`KEFU_CORS_ORIGINS`, `KEFU_MAX_BODY_BYTES`,
    /// `KEFU_MAX_POLLS_PER_VISITOR`), read as `web-api` reads them.
    pub web: WebConfig,
    /// `KEFU_MAX_BODY_BYTES`, for the agent API.
    pub max_body_bytes: usize,
    /// `KEFU_FAQ_RELOAD_SECS`: how often the bot checks for a new FAQ version.
    pub faq_reload: Duration,
    /// `KEFU_QUEUES`.
    pub queues: Vec<String>,
    /// `KEFU_DEMO_PASSWORD`: see [`demo_password`].
    pub demo_password: Option<String>,
    /// The bot's settings (`KEFU_DEFAULT_QUEUE`, `KEFU_SHOP_NAME`, `KEFU_SERVICE_HOURS`),
    /// read as the bot Lambda reads them.
    pub bot: BotConfig,
    /// `KEFU_VISIBILITY_SECS`: how long a message taken by a consumer stays hidden.
    pub visibility: Duration,
    /// The escalation policy (`KEFU_ESCALATE_*`, `KEFU_VIP_*`, `KEFU_PRIORITY_*`).
    pub policy: EscalationPolicy,
    /// The WeChat Official Account (`KEFU_WECHAT_*`); `None`: the channel is off.
    pub wechat: Option<WechatConfig>,
    /// The SMS providers (`KEFU_PUBLIC_URL`, `KEFU_TWILIO_*`, `KEFU_ALIYUN_SMS_TOKEN`, …).
    pub sms: SmsConfig,
    /// Email (`KEFU_SMTP_ADDR`, `KEFU_EMAIL_ADDRESS`, `KEFU_SMTP_RELAY`); `None`: off.
    pub email: Option<EmailSettings>,
}

impl Settings {
    /// Reads the environment, with the documented defaults.
    pub fn from_env() -> anyhow::Result<Self> {
        let queues = config::list("KEFU_QUEUES", &["general"]);
        Ok(Self {
            addr: config::or("KEFU_HTTP_ADDR", "127.0.0.1:8080")
                .parse()
                .context("KEFU_HTTP_ADDR must be host:port")?,
            data_dir: config::or("KEFU_DATA_DIR", "./.kefu").into(),
            faq_source: config::or("KEFU_FAQ_SOURCE", default_faq_source()).into(),
            faq_target_wrong_rate: config::number(
                "KEFU_FAQ_TARGET_WRONG_RATE",
                TargetWrongRate::default(),
            )?,
            token_secret: config::optional("KEFU_TOKEN_SECRET"),
            id_secret: config::optional("KEFU_ID_SECRET"),
            shop_identity_secret: config::optional("KEFU_SHOP_IDENTITY_SECRET"),
            web: WebConfig {
                // Locally a long poll re-reads the store often: it costs nothing.
                poll_interval: Duration::from_millis(100),
                ..config::web_config()?
            },
            max_body_bytes: config::max_body_bytes()?,
            faq_reload: kefu_bot::config::faq_reload_interval()?,
            demo_password: config::optional("KEFU_DEMO_PASSWORD"),
            bot: kefu_bot::config::bot_config()?,
            queues,
            visibility: config::seconds("KEFU_VISIBILITY_SECS", 30)?,
            policy: kefu_bot::config::escalation_policy()?,
            wechat: WechatConfig::from_env()?,
            sms: SmsConfig::from_env()?,
            email: EmailSettings::from_env()?,
        })
    }
}

/// The local runner's demo agent account.
pub const DEMO_USERNAME: &str = "demo";

/// The demo account's password: `KEFU_DEMO_PASSWORD` when set; otherwise `demo`, but only
/// while the runner listens on loopback alone. Anywhere else a well-known password would
/// let anyone who reaches the port read customers' conversations, so there is none and the
/// account (if an earlier start created it) is disabled.
pub fn demo_password(addr: SocketAddr, configured: Option<&str>) -> Option<String> {
    match configured {
        Some(password) => Some(password.to_owned()),
        None if addr.ip().is_loopback() => Some("demo".to_owned()),
        None => None,
    }
}

/// Creates, updates or disables the demo account as [`demo_password`] says.
async fn demo_account(agents: &dyn AgentDirectory, settings: &Settings) -> anyhow::Result<()> {
    match demo_password(settings.addr, settings.demo_password.as_deref()) {
        Some(password) => {
            provision_agent(
                agents,
                DEMO_USERNAME,
                &password,
                "Demo Agent",
                &settings.queues,
            )
            .await?;
            if settings.demo_password.is_some() {
                tracing::info!(
                    "demo agent account: username demo, password from KEFU_DEMO_PASSWORD"
                );
            } else {
                tracing::info!("demo agent account: username demo, password demo");
            }
        }
        None => {
            disable_agent(agents, DEMO_USERNAME).await?;
            tracing::warn!(
                "no demo agent account: listening on {}, not loopback, and KEFU_DEMO_PASSWORD is unset",
                settings.addr
            );
        }
    }
    Ok(())
}

/// The demo FAQ shipped in the repository.
fn default_faq_source() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../faq/faq.jsonl")
}

/// Starts everything and serves until `shutdown` fires. `ready` receives the bound address
/// once the FAQ is loaded and the consumers run.
pub async fn run(
    settings: Settings,
    shutdown: Shutdown,
    ready: Option<tokio::sync::oneshot::Sender<SocketAddr>>,
) -> anyhow::Result<()> {
    let storage = EmbeddedStore::open(&settings.data_dir)
        .with_context(|| format!("opening {}", settings.data_dir.display()))?;
    kefu::domain::install_id_secret(&data_dir_secret(
        &settings.data_dir,
        "id-secret",
        settings.id_secret.as_deref(),
    )?)
    .context("KEFU_ID_SECRET")?;
    let store = Arc::new(storage.conversations());
    let blobs: Arc<dyn BlobStore> = Arc::new(storage.blobs());
    let inbound: Arc<dyn MessageQueue> = Arc::new(storage.queue(INBOUND));
    let outbound: Arc<dyn MessageQueue> = Arc::new(storage.queue(OUTBOUND));
    let tokens = TokenSigner::new(data_dir_secret(
        &settings.data_dir,
        "token-secret",
        settings.token_secret.as_deref(),
    )?)?;

    let faq = Arc::new(FaqLibrary::new(settings.faq_reload));
    load_faq(
        &faq,
        blobs.as_ref(),
        &settings.faq_source,
        settings.faq_target_wrong_rate,
    )
    .await?;

    let agents = Arc::new(storage.agents());
    demo_account(agents.as_ref(), &settings).await?;

    let bot = Arc::new(
        Bot::new(
            store.clone(),
            outbound.clone(),
            faq,
            blobs.clone(),
            settings.bot.clone(),
        )
        .with_work_queue(store.clone())
        .with_policy(settings.policy.clone())
        // Sample orders (see `DemoOrderSource`): try "我的订单123456到哪了".
        .with_flows(Flows::new(
            Arc::new(DemoOrderSource::new()),
            FlowConfig::default(),
        )),
    );
    let guard: Arc<dyn IdempotencyGuard> = Arc::new(storage.idempotency());
    let email_egress = match &settings.email {
        Some(email) => Some((email.mailbox.clone(), email.transport(&settings.data_dir)?)),
        None => None,
    };
    let dispatcher = Arc::new(kefu::channels::senders(
        Dispatcher::new(store.clone()),
        Egress {
            wechat: settings.wechat.as_ref(),
            sms: &settings.sms,
            sms_fallback: None,
            email: email_egress,
        },
        &guard,
    )?);
    let pump_config = PumpConfig {
        visibility: settings.visibility,
        ..PumpConfig::default()
    };
    let consumers = [
        tokio::spawn(pump(
            inbound.clone(),
            pump_config.clone(),
            shutdown.clone(),
            {
                move |body| {
                    let bot = bot.clone();
                    async move { bot.handle(&body).await }
                }
            },
        )),
        tokio::spawn(pump(outbound.clone(), pump_config, shutdown.clone(), {
            move |body| {
                let dispatcher = dispatcher.clone();
                async move { dispatcher.handle(&body).await }
            }
        })),
    ];

    let channels = channel_routes(&settings, &inbound, &guard)?;
    let smtp = match &settings.email {
        Some(email) => {
            let (addr, server) =
                email::listen(email, blobs.clone(), inbound.clone(), guard.clone()).await?;
            tracing::info!(
                "email: SMTP on {addr} for {}; replies {}",
                email.mailbox.address(),
                match &email.relay {
                    Some(relay) => format!("relayed to {relay}"),
                    None => format!("in {}", settings.data_dir.join("outbox").display()),
                }
            );
            Some(server)
        }
        None => None,
    };
    let web = WebState {
        store: store.clone(),
        inbound,
        polls: Arc::new(storage.leases()),
        tokens: tokens.clone(),
        shop_identity_secret: settings
            .shop_identity_secret
            .as_deref()
            .map(ShopIdentitySecret::new)
            .transpose()?,
        config: settings.web.clone(),
    };
    let agent = AgentState {
        store: store.clone(),
        work: store,
        agents,
        outbound,
        tokens,
        auth: AgentAuthMode::Local,
        queues: settings.queues.clone(),
        login: LoginGate::default(),
        max_body_bytes: settings.max_body_bytes,
    };
    let app = app(web, agent).merge(channels);

    let listener = tokio::net::TcpListener::bind(settings.addr)
        .await
        .with_context(|| format!("binding {}", settings.addr))?;
    let addr = listener.local_addr()?;
    tracing::info!(
        "kefu is ready on http://{addr}/ (data in {})",
        settings.data_dir.display()
    );
    if let Some(ready) = ready {
        let _ = ready.send(addr);
    }
    serve::serve(listener, app, shutdown.clone()).await;
    if let Some(smtp) = smtp {
        smtp.abort();
    }
    for consumer in consumers {
        let _ = consumer.await;
    }
    Ok(())
}

/// The local HTTP surface: the API routes exactly as API Gateway routes them, plus the
/// demo page, the widget script and the health check.
pub fn app(web: WebState, agent: AgentState) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { page("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/widget.js",
            get(|| async { page("text/javascript; charset=utf-8", WIDGET_JS) }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .merge(kefu::web::router(web))
        .merge(kefu::agent::router(agent))
}

/// The webhooks of the other channels, each answering 404 while its secrets are unset.
fn channel_routes(
    settings: &Settings,
    inbound: &Arc<dyn MessageQueue>,
    guard: &Arc<dyn IdempotencyGuard>,
) -> anyhow::Result<Router> {
    let wechat = match &settings.wechat {
        Some(config) => wechat::router(WechatIngress::new(
            config.clone(),
            inbound.clone(),
            guard.clone(),
        )),
        None => wechat::disabled_router(),
    };
    let sms = sms::router(SmsState::new(
        inbound.clone(),
        guard.clone(),
        settings.sms.clone(),
    )?);
    Ok(wechat.merge(sms))
}

const INDEX_HTML: &str = include_str!("../static/index.html");
const WIDGET_JS: &str = include_str!("../static/widget.js");

fn page(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, content_type)], body)
}

/// Starts with the FAQ source file's current content, published exactly as the faq-indexer
/// would publish it, for `target` wrong answers. An unchanged source keeps the version
/// built from it, so a restart is quick; it is rebuilt when that version no longer loads
/// (e.g. built by an older release) or was calibrated for another target.
async fn load_faq(
    faq: &FaqLibrary,
    blobs: &dyn BlobStore,
    source: &std::path::Path,
    target: TargetWrongRate,
) -> anyhow::Result<()> {
    let bytes = tokio::fs::read(source)
        .await
        .with_context(|| format!("reading the FAQ source {}", source.display()))?;
    let name = source
        .file_name()
        .and_then(|n| n.to_str())
        .context("the FAQ source needs a file name")?;
    let key = format!("{SOURCE_PREFIX}{name}");
    let unchanged = blobs.get(&key).await?.as_deref() == Some(bytes.as_slice());
    if unchanged {
        match faq.load(blobs).await {
            Ok(Some(version))
                if faq
                    .current()
                    .is_some_and(|index| index.target_wrong_rate() == target) =>
            {
                tracing::info!(%version, "FAQ source unchanged; keeping its version");
                return Ok(());
            }
            Ok(Some(version)) => {
                tracing::info!(%version, target_wrong_rate = target.get(), "FAQ version calibrated for another target wrong-answer rate; rebuilding");
            }
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(error = %kefu::cause_chain(&error), "FAQ version does not load; rebuilding");
            }
        }
    }
    blobs.put(&key, bytes).await?;
    let published = publish_with(blobs, &key, target).await?;
    tracing::info!(
        version = %published.version,
        entries = published.entries,
        build_ms = published.build_ms,
        "FAQ published"
    );
    faq.load(blobs).await?;
    Ok(())
}

/// The configured secret, or a random one generated once into `dir/name` (readable only by
/// its owner) and read from there at every start, so tokens and ids survive restarts.
fn data_dir_secret(
    dir: &std::path::Path,
    name: &str,
    configured: Option<&str>,
) -> anyhow::Result<String> {
    if let Some(secret) = configured {
        return Ok(secret.to_owned());
    }
    let path = dir.join(name);
    if let Ok(secret) = std::fs::read_to_string(&path) {
        owner_only(&path)?;
        return Ok(secret.trim().to_owned());
    }
    let secret = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options
        .open(&path)
        .and_then(|mut file| std::io::Write::write_all(&mut file, secret.as_bytes()));
    match written {
        Ok(()) => Ok(secret),
        // Another runner on the same data dir wrote it first: use that one.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Ok(std::fs::read_to_string(&path)?.trim().to_owned())
        }
        Err(e) => Err(e).with_context(|| format!("writing {}", path.display())),
    }
}

/// Narrows a secret file written by an older version (world-readable) to its owner.
fn owner_only(path: &std::path::Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)?.permissions().mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("restricting {}", path.display()))?;
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kefu::auth::verify_password;

    #[test]
    fn given_listen_addresses_when_choosing_the_demo_password_then_demo_only_on_loopback() {
        let at = |addr: &str| addr.parse::<SocketAddr>().unwrap();
        for loopback in ["127.0.0.1:8080", "127.1.2.3:80", "[::1]:8080"] {
            assert_eq!(demo_password(at(loopback), None).as_deref(), Some("demo"));
        }
        for exposed in ["0.0.0.0:8080", "[::]:8080", "192.168.1.5:8080"] {
            assert_eq!(demo_password(at(exposed), None), None, "{exposed}");
            assert_eq!(
                demo_password(at(exposed), Some("s3cret-demo")).as_deref(),
                Some("s3cret-demo")
            );
        }
    }

    /// GIVEN a demo account made by a loopback start WHEN the runner restarts on all
    /// interfaces THEN the account is disabled; with `KEFU_DEMO_PASSWORD` it is enabled
    /// again with that password, and `demo` no longer works.
    #[tokio::test]
    async fn given_a_demo_account_when_restarted_off_loopback_then_disabled_unless_a_password_is_set()
     {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = EmbeddedStore::open(dir.path()).expect("store");
        let agents = storage.agents();
        let mut settings = Settings::from_env().expect("settings");
        settings.addr = "127.0.0.1:8080".parse().unwrap();
        settings.demo_password = None;
        demo_account(&agents, &settings).await.expect("loopback");
        let account = agents.agent(DEMO_USERNAME).await.unwrap().expect("created");
        assert!(!account.disabled);
        assert!(verify_password("demo", &account.password_hash).unwrap());

        settings.addr = "0.0.0.0:8080".parse().unwrap();
        demo_account(&agents, &settings).await.expect("exposed");
        assert!(agents.agent(DEMO_USERNAME).await.unwrap().unwrap().disabled);

        settings.demo_password = Some("a-better-demo-password".into());
        demo_account(&agents, &settings)
            .await
            .expect("with a password");
        let account = agents.agent(DEMO_USERNAME).await.unwrap().unwrap();
        assert!(!account.disabled);
        assert!(verify_password("a-better-demo-password", &account.password_hash).unwrap());
        assert!(!verify_password("demo", &account.password_hash).unwrap());
    }

    const ENTRY: &str = r#"{"id":"hours","question":"When are you open?","answer":"9am-6pm."}"#;

    #[tokio::test]
    async fn given_an_unchanged_faq_source_when_restarted_then_its_version_is_kept_and_an_edit_or_another_target_republishes()
     {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = EmbeddedStore::open(&dir.path().join("data")).expect("store");
        let blobs = storage.blobs();
        let source = dir.path().join("faq.jsonl");
        std::fs::write(&source, format!("{ENTRY}\n")).expect("write source");
        let (blobs, path) = (&blobs, source.as_path());
        let start = |target: f32| async move {
            let faq = FaqLibrary::new(Duration::from_secs(30));
            let target = TargetWrongRate::new(target).expect("valid target");
            load_faq(&faq, blobs, path, target).await.expect("loads");
            let index = faq.current().expect("an index is in use");
            assert_eq!(index.target_wrong_rate(), target);
            faq.version().expect("a version is in use")
        };

        let first = start(0.05).await;
        let restarted = start(0.05).await;
        let retargeted = start(0.1).await;
        let back = start(0.05).await;
        std::fs::write(
            &source,
            format!(
                "{ENTRY}\n{}\n",
                r#"{"id":"fee","question":"How much is shipping?","answer":"CNY 8."}"#
            ),
        )
        .expect("edit source");
        let edited = start(0.05).await;

        assert_eq!(restarted, first, "nothing changed: nothing rebuilt");
        assert_ne!(
            retargeted, first,
            "another target wrong-answer rate is published"
        );
        assert_ne!(back, retargeted, "and so is the first one again");
        assert_ne!(edited, back, "the edit is published");
    }
}
