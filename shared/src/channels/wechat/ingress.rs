//! The webhook WeChat calls: `GET /wechat` verifies the URL, `POST /wechat` delivers pushes.
//!
//! Every request must carry a valid `signature` (token, timestamp, nonce); without one the
//! answer is 401, with a wrong one 403, and nothing is queued. In safe and compatible mode
//! (`encrypt_type=aes`) the `msg_signature` over the `Encrypt` field is checked too, and the
//! decrypted message must name our appid. When an AES key is configured, plaintext pushes
//! are refused: the plain `signature` does not cover the body. A request whose `timestamp`
//! is more than [`MAX_CLOCK_SKEW_SECS`] away from our clock is refused (403), the URL
//! verification included. Within that window each `timestamp` + `nonce` is remembered with
//! a digest of its body (the idempotency guard): the same URL with the same body is
//! WeChat's retry and is handled again (the message id deduplicates it), with another body
//! it is a replay of a captured URL and is refused (403) — in plaintext mode the signature
//! does not cover the body, so this is what stops a forged message.
//!
//! A push is answered at once: `success` after its message is durably queued (the bot
//! replies later through the customer-service API), or a passive reply (the welcome),
//! encrypted when the push was. A queue failure answers 500, so WeChat retries.

use super::config::{REQUIRED_SETTINGS, WechatConfig};
use super::crypto::{self, MessageCrypt};
use super::normalise::{self, Action};
use super::xml::{self, Document, Push};
use crate::channels::{self, Incoming};
use crate::domain::{Channel, now_millis};
use crate::http::{ApiError, Query, api_layers};
use crate::ports::{IdempotencyGuard, MessageQueue};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::StatusCode;
use http::header::{CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tracing::instrument;

/// The route WeChat is configured to call (服务器配置 → URL).
pub const PATH: &str = "/wechat";

/// How far a push's `timestamp` may be from our clock, in seconds.
pub const MAX_CLOCK_SKEW_SECS: i64 = 300;

/// Pushes are a few kilobytes; anything larger is not from WeChat.
const MAX_BODY_BYTES: usize = 16 * 1024;

/// How long a `timestamp` + `nonce` is remembered: a timestamp is accepted from
/// [`MAX_CLOCK_SKEW_SECS`] before our clock to as long after, so twice that covers it.
const NONCE_TTL: std::time::Duration =
    std::time::Duration::from_secs(2 * MAX_CLOCK_SKEW_SECS.unsigned_abs());

/// WeChat's nonces are short digit strings; a longer one is not from WeChat.
const MAX_NONCE_CHARS: usize = 64;

/// What the webhook needs: the account's settings, the inbound queue and the guard that
/// remembers nonces.
#[derive(Clone)]
pub struct WechatIngress {
    config: Arc<WechatConfig>,
    crypt: Option<MessageCrypt>,
    inbound: Arc<dyn MessageQueue>,
    nonces: Arc<dyn IdempotencyGuard>,
}

impl WechatIngress {
    /// The webhook of the account `config`, queueing on `inbound`
    /// (`KEFU_INBOUND_QUEUE_URL`) and remembering nonces on `nonces` (the table).
    pub fn new(
        config: WechatConfig,
        inbound: Arc<dyn MessageQueue>,
        nonces: Arc<dyn IdempotencyGuard>,
    ) -> Self {
        let crypt = config
            .aes_key
            .clone()
            .map(|key| MessageCrypt::new(key, config.appid.clone()));
        Self {
            config: Arc::new(config),
            crypt,
            inbound,
            nonces,
        }
    }

    fn signed(&self, signature: &str, timestamp: &str, nonce: &str) -> bool {
        let expected = crypto::signature(&self.config.token, timestamp, nonce);
        crypto::signatures_match(&expected, signature)
    }
}

/// The webhook routes (see the module docs). Serve with `lambda_http::run` or
/// `axum::serve`; no fallback is set, so it merges with other routers.
pub fn router(state: WechatIngress) -> Router {
    let routes = Router::new()
        .route(PATH, get(verify).post(receive))
        .with_state(Arc::new(state));
    api_layers(routes, MAX_BODY_BYTES)
}

/// The routes of the channel when it is not configured: 404 naming the settings.
pub fn disabled_router() -> Router {
    channels::disabled(Channel::Wechat, REQUIRED_SETTINGS, &[PATH])
}

/// The query WeChat adds to every call (it also sends `openid`, which is not needed).
#[derive(Debug, Default, Deserialize)]
struct Signed {
    signature: Option<String>,
    timestamp: Option<String>,
    nonce: Option<String>,
    echostr: Option<String>,
    encrypt_type: Option<String>,
    msg_signature: Option<String>,
}

/// URL verification: echo `echostr` only for a correctly signed, fresh request.
#[instrument(skip_all)]
async fn verify(State(state): State<Arc<WechatIngress>>, Query(query): Query<Signed>) -> Response {
    match (
        &query.signature,
        &query.timestamp,
        &query.nonce,
        query.echostr,
    ) {
        (Some(signature), Some(timestamp), Some(nonce), Some(echostr))
            if state.signed(signature, timestamp, nonce)
                && is_fresh(timestamp, now_millis() / 1000) =>
        {
            tracing::info!("URL verified");
            plain_text(echostr)
        }
        _ => {
            tracing::warn!("URL verification refused");
            ApiError::forbidden("signature does not match").into_response()
        }
    }
}

/// A push: check, parse, normalise, queue or reply.
#[instrument(skip_all, fields(mode, conversation))]
async fn receive(
    State(state): State<Arc<WechatIngress>>,
    Query(query): Query<Signed>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (Some(signature), Some(timestamp), Some(nonce)) =
        (&query.signature, &query.timestamp, &query.nonce)
    else {
        return Err(ApiError::unauthorized(
            "missing signature, timestamp or nonce",
        ));
    };
    if !state.signed(signature, timestamp, nonce) {
        tracing::warn!("push with a wrong signature refused");
        return Err(ApiError::forbidden("signature does not match"));
    }
    if !is_fresh(timestamp, now_millis() / 1000) {
        tracing::warn!("push with a stale timestamp refused");
        return Err(ApiError::forbidden(format!(
            "timestamp is more than {MAX_CLOCK_SKEW_SECS} s away from the server's clock"
        )));
    }
    check_nonce(&state, timestamp, nonce, &body).await?;
    let body =
        std::str::from_utf8(&body).map_err(|_| ApiError::bad_request("the body is not UTF-8"))?;
    let (push, sealed) = open(&state, &query, timestamp, nonce, body)?;
    let span = tracing::Span::current();
    span.record("mode", if sealed { "safe" } else { "plain" });

    let account = push.account.clone();
    let openid = push.openid.clone();
    match normalise::action(push, state.config.welcome.as_deref(), &state.config.menu) {
        Action::Enqueue(incoming) => {
            let conversation = enqueue(&state, incoming).await?;
            span.record("conversation", tracing::field::display(&conversation));
            tracing::info!("customer message queued");
            Ok(plain_text("success".to_owned()))
        }
        Action::Reply(text) => {
            let reply = xml::text_reply(&openid, &account, now_millis() / 1000, &text);
            let reply = match (&state.crypt, sealed) {
                (Some(crypt), true) => seal(&state.config.token, crypt, &reply),
                _ => reply,
            };
            tracing::info!("passive reply sent");
            Ok(([(CONTENT_TYPE, "application/xml; charset=utf-8")], reply).into_response())
        }
        Action::Ignore { why } => {
            tracing::info!(why, "push needs no answer");
            Ok(plain_text("success".to_owned()))
        }
    }
}

/// Remembers `timestamp` + `nonce` with a digest of `body`; 403 when they came before with
/// another body (a replayed URL), `Ok` the first time and for WeChat's retries.
async fn check_nonce(
    state: &WechatIngress,
    timestamp: &str,
    nonce: &str,
    body: &[u8],
) -> Result<(), ApiError> {
    if nonce.is_empty() || nonce.len() > MAX_NONCE_CHARS {
        return Err(ApiError::bad_request("malformed nonce"));
    }
    let digest = hex::encode(Sha256::digest(body));
    let key = format!("wechat-nonce:{timestamp}:{nonce}");
    match state.nonces.put_if_absent(&key, &digest, NONCE_TTL).await? {
        Some(first) if first != digest => {
            tracing::warn!("a used timestamp and nonce with another body refused");
            Err(ApiError::forbidden(
                "this timestamp and nonce were already used for another push",
            ))
        }
        _ => Ok(()),
    }
}

/// The push in the body, and whether it came encrypted. See the module docs for the modes.
fn open(
    state: &WechatIngress,
    query: &Signed,
    timestamp: &str,
    nonce: &str,
    body: &str,
) -> Result<(Push, bool), ApiError> {
    let document = Document::parse(body)?;
    match (query.encrypt_type.as_deref(), &state.crypt) {
        (Some("aes"), Some(crypt)) => {
            let msg_signature = query
                .msg_signature
                .as_deref()
                .ok_or_else(|| ApiError::unauthorized("missing msg_signature"))?;
            let encrypt = document.encrypt()?;
            let expected = crypto::msg_signature(&state.config.token, timestamp, nonce, encrypt);
            if !crypto::signatures_match(&expected, msg_signature) {
                tracing::warn!("push with a wrong msg_signature refused");
                return Err(ApiError::forbidden("msg_signature does not match"));
            }
            let plain = crypt.decrypt(encrypt).map_err(|e| {
                tracing::warn!(error = %e, "encrypted push refused");
                ApiError::forbidden(e.to_string())
            })?;
            Ok((Document::parse(&plain)?.push()?, true))
        }
        // Compatible mode without our key: the body also carries the message in clear.
        (Some("aes"), None) if document.has_plain_message() => Ok((document.push()?, false)),
        (Some("aes"), None) => Err(ApiError::bad_request(
            "the push is encrypted but KEFU_WECHAT_AES_KEY is not set",
        )),
        (None | Some("raw"), Some(_)) => Err(ApiError::forbidden(
            "pushes must be encrypted: KEFU_WECHAT_AES_KEY is set",
        )),
        (None | Some("raw"), None) => Ok((document.push()?, false)),
        (Some(_), _) => Err(ApiError::bad_request("unsupported encrypt_type")),
    }
}

/// Queues the message; returns its conversation id for the log.
async fn enqueue(
    state: &WechatIngress,
    incoming: Incoming,
) -> crate::Result<crate::domain::ConversationId> {
    let envelope = channels::enqueue(state.inbound.as_ref(), incoming).await?;
    Ok(envelope.conversation_id)
}

/// The safe-mode envelope of a passive reply, signed with a fresh timestamp and nonce.
fn seal(token: &str, crypt: &MessageCrypt, reply: &str) -> String {
    let encrypt = crypt.encrypt(reply);
    let timestamp = (now_millis() / 1000).to_string();
    let nonce = rand::random::<u32>().to_string();
    let signature = crypto::msg_signature(token, &timestamp, &nonce, &encrypt);
    xml::encrypted_reply(&encrypt, &signature, &timestamp, &nonce)
}

/// Whether `timestamp` (Unix seconds) is within [`MAX_CLOCK_SKEW_SECS`] of `now`.
fn is_fresh(timestamp: &str, now: i64) -> bool {
    timestamp
        .parse::<i64>()
        .is_ok_and(|t| t.abs_diff(now) <= MAX_CLOCK_SKEW_SECS.unsigned_abs())
}

/// Text that a browser must not read as anything else (`echostr` is the caller's text).
fn plain_text(body: String) -> Response {
    (
        StatusCode::OK,
        [
            (CONTENT_TYPE, "text/plain; charset=utf-8"),
            (X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_timestamps_around_now_when_checked_then_only_those_within_the_skew_pass() {
        let now = 1_700_000_000;
        assert!(is_fresh("1700000000", now));
        assert!(is_fresh("1699999700", now));
        assert!(is_fresh("1700000300", now));
        assert!(!is_fresh("1699999699", now));
        assert!(!is_fresh("1700000301", now));
        assert!(!is_fresh("soon", now));
        assert!(!is_fresh("", now));
    }
}
