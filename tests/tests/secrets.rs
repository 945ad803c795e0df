//! Secret settings read from Secrets Manager (moto) at cold start, cached, and re-read after
//! an authentication failure so that a rotated secret needs no redeploy.
//!
//! The published settings are process-wide, so every test here uses setting names of its own.

mod support;

use axum::Router;
use http::{Method, Request, StatusCode, header};
use kefu::adapters::aws::{Aws, Rebuilt, RetryOnAuthFailure, Secrets};
use kefu::adapters::embedded::{EmbeddedStore, INBOUND};
use kefu::auth::{Claims, TokenSigner};
use kefu::config;
use kefu::domain::{Channel, Conversation, ConversationKey, Customer, now_millis};
use kefu::ports::ConversationStore;
use kefu::web::{WebConfig, WebState, router};
use std::sync::Arc;
use std::time::Duration;
use support::moto;
use tower::ServiceExt;

async fn client() -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(&moto::aws_config().await)
}

/// Creates a secret holding `value`; returns its name.
async fn create_secret(value: &str) -> String {
    let name = format!("kefu/{}", moto::unique_name());
    client()
        .await
        .create_secret()
        .name(&name)
        .secret_string(value)
        .send()
        .await
        .expect("create secret");
    name
}

async fn rotate(name: &str, value: &str) {
    client()
        .await
        .put_secret_value()
        .secret_id(name)
        .secret_string(value)
        .send()
        .await
        .expect("put secret value");
}

async fn secrets(vars: &[(&str, String)]) -> Secrets {
    let vars = vars.iter().map(|(k, v)| ((*k).to_owned(), v.clone()));
    Aws::from_config(&moto::aws_config().await)
        .secrets(vars)
        .expect("valid variables")
}

#[tokio::test]
async fn given_secret_ids_when_loaded_then_the_settings_hold_the_secrets_values() {
    let plain = create_secret("plain-value-1").await;
    let json = create_secret(r#"{"token":"wx-token","appid":"wx1","aes_key":""}"#).await;
    let secrets = secrets(&[
        ("KEFU_S1_PLAIN_SECRET_ID", plain),
        ("KEFU_S1_TOKEN_SECRET_ID", format!("{json}#token")),
        ("KEFU_S1_APPID_SECRET_ID", format!("{json}#appid")),
        ("KEFU_S1_AES_KEY_SECRET_ID", format!("{json}#aes_key")),
    ])
    .await;
    assert_eq!(
        config::optional("KEFU_S1_PLAIN"),
        None,
        "nothing before the load"
    );

    secrets.load().await.expect("load");

    assert_eq!(
        config::optional("KEFU_S1_PLAIN").as_deref(),
        Some("plain-value-1")
    );
    assert_eq!(
        config::optional("KEFU_S1_TOKEN").as_deref(),
        Some("wx-token")
    );
    assert_eq!(config::optional("KEFU_S1_APPID").as_deref(), Some("wx1"));
    assert_eq!(
        config::optional("KEFU_S1_AES_KEY"),
        None,
        "an empty key reads as unset"
    );
}

#[tokio::test]
async fn given_a_rotated_secret_when_refreshed_then_the_new_value_is_published_once() {
    let name = create_secret("before-rotation").await;
    let secrets = secrets(&[("KEFU_S2_KEY_SECRET_ID", name.clone())])
        .await
        .with_min_refresh_interval(Duration::ZERO);
    secrets.load().await.expect("load");
    rotate(&name, "after-rotation").await;

    assert_eq!(
        config::optional("KEFU_S2_KEY").as_deref(),
        Some("before-rotation"),
        "cached until refreshed"
    );
    assert!(secrets.refresh().await.expect("refresh"), "changed");
    assert_eq!(
        config::optional("KEFU_S2_KEY").as_deref(),
        Some("after-rotation")
    );
    assert!(!secrets.refresh().await.expect("refresh"), "unchanged");
}

#[tokio::test]
async fn given_a_refresh_right_after_the_load_when_asked_then_secrets_manager_is_not_called_again()
{
    let name = create_secret("first").await;
    let secrets = secrets(&[("KEFU_S3_KEY_SECRET_ID", name.clone())]).await;
    secrets.load().await.expect("load");
    rotate(&name, "second").await;

    assert!(!secrets.refresh().await.expect("refresh"), "rate limited");
    assert_eq!(config::optional("KEFU_S3_KEY").as_deref(), Some("first"));
}

#[tokio::test]
async fn given_a_missing_secret_or_key_when_loaded_then_the_error_names_the_variable_only() {
    let missing = secrets(&[("KEFU_S4_GONE_SECRET_ID", "kefu/no-such-secret".into())]).await;
    let error = format!("{:#}", missing.load().await.expect_err("missing secret"));
    assert!(error.contains("KEFU_S4_GONE_SECRET_ID"), "{error}");

    let json = create_secret(r#"{"token":"do-not-echo"}"#).await;
    let no_key = secrets(&[("KEFU_S4_APPID_SECRET_ID", format!("{json}#appid"))]).await;
    let error = format!("{:#}", no_key.load().await.expect_err("missing key"));
    assert!(error.contains("KEFU_S4_APPID_SECRET_ID"), "{error}");
    assert!(!error.contains("do-not-echo"), "{error}");
    assert_eq!(config::optional("KEFU_S4_APPID"), None);
}

#[tokio::test]
async fn given_a_visitor_token_signed_with_a_rotated_secret_when_polling_then_it_is_accepted_after_one_refresh()
 {
    const OLD: &str = "token-secret-before-rotation";
    const NEW: &str = "token-secret-after-rotation!";
    let name = create_secret(OLD).await;
    let secrets = secrets(&[("KEFU_S5_TOKEN_SECRET_SECRET_ID", name.clone())])
        .await
        .with_min_refresh_interval(Duration::ZERO);
    secrets.load().await.expect("load");
    let dir = tempfile::tempdir().unwrap();
    let embedded = EmbeddedStore::open(dir.path()).unwrap();
    let key = ConversationKey::new(Channel::Web, "v:rotation");
    let conversation = Conversation::new(&key, Customer::default(), now_millis());
    embedded
        .conversations()
        .create(&conversation)
        .await
        .unwrap();
    let build = {
        let embedded = embedded.clone();
        move || -> kefu::Result<Router> {
            Ok(router(WebState {
                store: Arc::new(embedded.conversations()),
                inbound: Arc::new(embedded.queue(INBOUND)),
                polls: Arc::new(embedded.leases()),
                tokens: TokenSigner::new(config::required("KEFU_S5_TOKEN_SECRET")?)?,
                shop_identity_secret: None,
                config: WebConfig::default(),
            }))
        }
    };
    let app = Rebuilt::new(secrets, build).expect("built");
    let first_router = app.current();
    let service = RetryOnAuthFailure::new(app);

    rotate(&name, NEW).await;
    let claims = Claims::visitor("v:rotation", conversation.id.clone(), now_millis());
    let token = TokenSigner::new(NEW).unwrap().issue(&claims);
    let poll = || {
        Request::builder()
            .method(Method::GET)
            .uri("/v1/web/messages?after=0")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(String::new())
            .unwrap()
    };

    let cached = first_router.as_ref().clone().oneshot(poll()).await.unwrap();
    assert_eq!(
        cached.status(),
        StatusCode::UNAUTHORIZED,
        "the cached secret refuses it"
    );
    let answered = service.clone().oneshot(poll()).await.unwrap();
    assert_eq!(
        answered.status(),
        StatusCode::OK,
        "re-read, rebuilt, answered"
    );

    let forged = TokenSigner::new("a-secret-nobody-has-12345")
        .unwrap()
        .issue(&claims);
    let request = Request::builder()
        .uri("/v1/web/messages?after=0")
        .header(header::AUTHORIZATION, format!("Bearer {forged}"))
        .body(String::new())
        .unwrap();
    let refused = service.oneshot(request).await.unwrap();
    assert_eq!(
        refused.status(),
        StatusCode::UNAUTHORIZED,
        "a forged token stays refused"
    );
}
