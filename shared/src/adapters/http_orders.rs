//! [`HttpOrderSource`]: the shop's order API over HTTPS, as documented in
//! `docs/order-api.md`.
//!
//! Every request is signed (`X-Kefu-Timestamp`, `X-Kefu-Signature` = hex HMAC-SHA256 over
//! method, path, timestamp and body), changes carry the customer message's id as
//! `request_id` in their (signed) body so the shop can apply a retried request once, and
//! every call gives up after the configured timeout
//! (2 s by default, connection included): a customer waits on it, and the bot hands off to
//! a person on any [`OrderError`] rather than keep them waiting.
//!
//! When the shop refuses the signature (`401`/`403`) the secret may have been rotated:
//! with a [`KeyRefresh`] the source asks for the current secret and, when it changed,
//! sends the request once more under it.

use crate::domain::{CancelOutcome, Order, OrderError, ReturnKind, ReturnTicket};
use crate::ports::OrderSource;
use async_trait::async_trait;
use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode, Url, header};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::Sha256;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

/// Re-reads the order API secret after the shop refused a signature: the new secret when
/// it changed, `None` when it did not (or could not be read).
pub type KeyRefresh =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Option<String>> + Send>> + Send + Sync>;

/// Header carrying the request's Unix time in seconds.
pub const TIMESTAMP_HEADER: &str = "X-Kefu-Timestamp";
/// Header carrying the request's signature (see [`signature`]).
pub const SIGNATURE_HEADER: &str = "X-Kefu-Signature";

/// Where the shop's order API is and how to talk to it.
#[derive(Clone)]
pub struct HttpOrderConfig {
    /// Base URL; the API lives under `{base_url}/orders/…` (a trailing `/` is ignored).
    pub base_url: String,
    /// Shared HMAC secret agreed with the shop.
    pub secret: String,
    /// Limit for connecting and for the whole request.
    pub timeout: Duration,
}

impl HttpOrderConfig {
    /// A config with the default 2 s timeout.
    pub fn new(base_url: impl Into<String>, secret: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            secret: secret.into(),
            timeout: Duration::from_secs(2),
        }
    }
}

impl std::fmt::Debug for HttpOrderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpOrderConfig")
            .field("base_url", &self.base_url)
            .field("secret", &"<redacted>")
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The shop's order API (see the module docs).
pub struct HttpOrderSource {
    client: reqwest::Client,
    base: Url,
    secret: RwLock<Vec<u8>>,
    refresh: Option<KeyRefresh>,
}

/// `POST …/cancel` body.
#[derive(Serialize)]
struct CancelRequest<'a> {
    request_id: &'a str,
}

/// `POST …/returns` body.
#[derive(Serialize)]
struct ReturnRequest<'a> {
    kind: ReturnKind,
    reason: &'a str,
    request_id: &'a str,
}

impl HttpOrderSource {
    /// Builds the client once (at cold start). `Error::Invalid` for a base URL that is not
    /// an absolute http(s) URL or an empty secret.
    pub fn new(config: HttpOrderConfig) -> crate::Result<Self> {
        let mut base = Url::parse(config.base_url.trim_end_matches('/'))
            .map_err(|e| crate::Error::Invalid(format!("order API base URL: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(crate::Error::Invalid(
                "order API base URL must be http(s)".into(),
            ));
        }
        if config.secret.is_empty() {
            return Err(crate::Error::Invalid("order API secret is empty".into()));
        }
        base.set_query(None);
        let client = reqwest::Client::builder()
            .connect_timeout(config.timeout)
            .timeout(config.timeout)
            // A redirect would be followed unsigned-for-its-path; treat it as an error.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| crate::Error::backend("building the order API client", e))?;
        Ok(Self {
            client,
            base,
            secret: RwLock::new(config.secret.into_bytes()),
            refresh: None,
        })
    }

    /// The same source, asking `refresh` for a rotated secret when a signature is refused.
    pub fn with_key_refresh(self, refresh: KeyRefresh) -> Self {
        Self {
            refresh: Some(refresh),
            ..self
        }
    }

    /// `{base}/orders/{id}{suffix}`, or `None` for ids that are not plain tokens (they
    /// cannot be orders, and must not reach a path).
    fn url(&self, order_id: &str, suffix: &str) -> Option<Url> {
        let plain = !order_id.is_empty()
            && order_id.len() <= 64
            && order_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !plain {
            return None;
        }
        let path = format!(
            "{}/orders/{order_id}{suffix}",
            self.base.path().trim_end_matches('/')
        );
        let mut url = self.base.clone();
        url.set_path(&path);
        Some(url)
    }

    /// Sends one signed request, and once more under a rotated secret if the first was
    /// refused and the secret changed; returns the status and body.
    async fn send(
        &self,
        method: Method,
        url: Url,
        body: String,
    ) -> Result<(StatusCode, Vec<u8>), OrderError> {
        let first = self.send_once(method.clone(), url.clone(), &body).await?;
        let refused = matches!(first.0, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN);
        let Some(refresh) = self.refresh.as_ref().filter(|_| refused) else {
            return Ok(first);
        };
        let Some(secret) = refresh().await.filter(|s| !s.is_empty()) else {
            return Ok(first);
        };
        tracing::info!("order API refused the signature; retrying with the rotated secret");
        *self.secret.write().unwrap_or_else(PoisonError::into_inner) = secret.into_bytes();
        self.send_once(method, url, &body).await
    }

    async fn send_once(
        &self,
        method: Method,
        url: Url,
        body: &str,
    ) -> Result<(StatusCode, Vec<u8>), OrderError> {
        let timestamp = chrono::Utc::now().timestamp().to_string();
        let signed = {
            let secret = self.secret.read().unwrap_or_else(PoisonError::into_inner);
            signature(&secret, method.as_str(), url.path(), &timestamp, body)
        };
        let mut request = self
            .client
            .request(method, url)
            .header(TIMESTAMP_HEADER, &timestamp)
            .header(SIGNATURE_HEADER, signed)
            .header(header::ACCEPT, "application/json");
        if !body.is_empty() {
            request = request
                .header(header::CONTENT_TYPE, "application/json")
                .body(body.to_owned());
        }
        let response = request
            .send()
            .await
            .map_err(|e| unavailable("request", e))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| unavailable("response body", e))?;
        Ok((status, bytes.to_vec()))
    }
}

#[async_trait]
impl OrderSource for HttpOrderSource {
    async fn order(&self, order_id: &str) -> Result<Option<Order>, OrderError> {
        let Some(url) = self.url(order_id, "") else {
            return Ok(None);
        };
        match self.send(Method::GET, url, String::new()).await? {
            (StatusCode::OK, body) => parse(&body).map(Some),
            (StatusCode::NOT_FOUND, _) => Ok(None),
            (status, _) => Err(OrderError::Status(status.as_u16())),
        }
    }

    async fn cancel(&self, order_id: &str, request_id: &str) -> Result<CancelOutcome, OrderError> {
        let Some(url) = self.url(order_id, "/cancel") else {
            return Ok(CancelOutcome::NotFound);
        };
        let body =
            serde_json::to_string(&CancelRequest { request_id }).map_err(OrderError::Malformed)?;
        match self.send(Method::POST, url, body).await? {
            (StatusCode::OK | StatusCode::CONFLICT, body) => parse(&body),
            (StatusCode::NOT_FOUND, _) => Ok(CancelOutcome::NotFound),
            (status, _) => Err(OrderError::Status(status.as_u16())),
        }
    }

    async fn request_return(
        &self,
        order_id: &str,
        kind: ReturnKind,
        reason: &str,
        request_id: &str,
    ) -> Result<ReturnTicket, OrderError> {
        let Some(url) = self.url(order_id, "/returns") else {
            return Err(OrderError::Refused("unknown order".into()));
        };
        let body = serde_json::to_string(&ReturnRequest {
            kind,
            reason,
            request_id,
        })
        .map_err(OrderError::Malformed)?;
        match self.send(Method::POST, url, body).await? {
            (StatusCode::OK | StatusCode::CREATED, body) => parse(&body),
            (StatusCode::NOT_FOUND, _) => Err(OrderError::Refused("unknown order".into())),
            (StatusCode::CONFLICT | StatusCode::UNPROCESSABLE_ENTITY, _) => {
                Err(OrderError::Refused("order is not eligible".into()))
            }
            (status, _) => Err(OrderError::Status(status.as_u16())),
        }
    }
}

/// Lowercase hex HMAC-SHA256 of `METHOD \n path \n timestamp \n body` under `secret`: the
/// value of [`SIGNATURE_HEADER`]. `path` is the request path as sent (base path included,
/// no query); `body` is empty for `GET`.
pub fn signature(secret: &[u8], method: &str, path: &str, timestamp: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key size");
    for (i, part) in [method, path, timestamp, body].iter().enumerate() {
        if i > 0 {
            mac.update(b"\n");
        }
        mac.update(part.as_bytes());
    }
    hex::encode(mac.finalize().into_bytes())
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, OrderError> {
    serde_json::from_slice(body).map_err(OrderError::Malformed)
}

fn unavailable(what: &str, error: reqwest::Error) -> OrderError {
    let context = if error.is_timeout() {
        format!("{what} timed out")
    } else {
        format!("{what} failed")
    };
    OrderError::Unavailable {
        context,
        // Without the URL: it carries the order id.
        source: error.without_url().into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::OrderStatus;
    use axum::extract::State;
    use axum::http::{HeaderMap, Method as AxumMethod, Uri};
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    const SECRET: &str = "shop-order-secret";

    /// One request as the mock shop saw it.
    #[derive(Debug, Clone)]
    struct Seen {
        method: String,
        path: String,
        body: String,
        content_type: Option<String>,
        /// Checked here with an independent HMAC, and within 5 minutes of now.
        signature_ok: bool,
    }

    type Reply = fn(&Seen) -> (u16, &'static str);

    #[derive(Clone)]
    struct Mock {
        seen: Arc<Mutex<Vec<Seen>>>,
        reply: Reply,
        delay: Duration,
    }

    async fn serve(
        State(mock): State<Mock>,
        method: AxumMethod,
        uri: Uri,
        headers: HeaderMap,
        body: String,
    ) -> (axum::http::StatusCode, String) {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let timestamp = header(TIMESTAMP_HEADER).unwrap_or_default();
        let fresh = timestamp
            .parse::<i64>()
            .is_ok_and(|t| (chrono::Utc::now().timestamp() - t).abs() < 300);
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("any key");
        mac.update(format!("{method}\n{}\n{timestamp}\n{body}", uri.path()).as_bytes());
        let given = header(SIGNATURE_HEADER).and_then(|s| hex::decode(s).ok());
        let signature_ok = fresh && given.is_some_and(|g| mac.verify_slice(&g).is_ok());
        let seen = Seen {
            method: method.to_string(),
            path: uri.path().to_owned(),
            body,
            content_type: header("content-type"),
            signature_ok,
        };
        mock.seen.lock().expect("not poisoned").push(seen.clone());
        tokio::time::sleep(mock.delay).await;
        let (status, body) = (mock.reply)(&seen);
        let status = axum::http::StatusCode::from_u16(status).expect("valid status");
        (status, body.to_owned())
    }

    /// A shop on 127.0.0.1 under `/shop-api`, answering with `reply` after `delay`.
    async fn shop(reply: Reply, delay: Duration) -> (HttpOrderSource, Arc<Mutex<Vec<Seen>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mock = Mock {
            seen: seen.clone(),
            reply,
            delay,
        };
        let app = axum::Router::new().fallback(serve).with_state(mock);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("bound");
        tokio::spawn(async move { axum::serve(listener, app).await });
        let source = HttpOrderSource::new(HttpOrderConfig::new(
            format!("http://{addr}/shop-api/"),
            SECRET,
        ))
        .expect("valid config");
        (source, seen)
    }

    fn seen(log: &Arc<Mutex<Vec<Seen>>>) -> Vec<Seen> {
        log.lock().expect("not poisoned").clone()
    }

    const ORDER_JSON: &str = r#"{"id":"123456","status":"shipped",
        "owner":{"phone_e164":"+8613800138000","customer_id":"42"},
        "items":[{"name":"T恤","quantity":2}],"total":"¥198.00","carrier":"顺丰速运",
        "tracking_number":"SF1","tracking_events":[{"at":"2025-06-02T14:05:00+08:00","description":"派送中"}]}"#;

    #[test]
    fn given_published_vectors_when_signing_then_values_match_openssl() {
        // printf 'GET\n/orders/123456\n1700000000\n' | openssl dgst -sha256 -hmac shop-order-secret
        assert_eq!(
            signature(SECRET.as_bytes(), "GET", "/orders/123456", "1700000000", ""),
            "b19acb5f58557491a08905179d62e33bb5d49424484b649caf3b041bbfab9550"
        );
        assert_eq!(
            signature(
                SECRET.as_bytes(),
                "POST",
                "/api/kefu/orders/123458/returns",
                "1700000000",
                r#"{"kind":"return","reason":"尺码偏小","request_id":"m-1"}"#
            ),
            "47ad4db3c204d4823593ae0f25c8e61c6af90a554002602d309f33b0d6ffbd06"
        );
    }

    #[tokio::test]
    async fn given_known_order_when_fetched_then_signed_get_and_parsed_order() {
        let (source, log) = shop(|_| (200, ORDER_JSON), Duration::ZERO).await;
        let order = source.order("123456").await.expect("200 is an order");
        let order = order.expect("found");
        assert_eq!(order.status, OrderStatus::Shipped);
        assert_eq!(order.owner.customer_id.as_deref(), Some("42"));
        assert_eq!(order.tracking_events.len(), 1);
        let requests = seen(&log);
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].method, "GET");
        assert_eq!(requests[0].path, "/shop-api/orders/123456");
        assert_eq!(requests[0].body, "");
        assert!(
            requests[0].signature_ok,
            "signature rejected: {:?}",
            requests[0]
        );
    }

    /// A source signing with `stale` whose refresh hook answers `rotated`, against the shop.
    async fn rotated_shop(
        rotated: Option<&'static str>,
    ) -> (HttpOrderSource, Arc<Mutex<Vec<Seen>>>) {
        let (source, log) = shop(
            |seen| {
                if seen.signature_ok {
                    (200, ORDER_JSON)
                } else {
                    (401, "")
                }
            },
            Duration::ZERO,
        )
        .await;
        let base = source.base.to_string();
        let source = HttpOrderSource::new(HttpOrderConfig::new(base, "stale-secret"))
            .expect("valid config")
            .with_key_refresh(Arc::new(move || {
                Box::pin(async move { rotated.map(str::to_owned) })
            }));
        (source, log)
    }

    #[tokio::test]
    async fn given_a_rotated_secret_when_the_shop_refuses_the_old_one_then_the_request_is_signed_again_once()
     {
        let (source, log) = rotated_shop(Some(SECRET)).await;
        let order = source
            .order("123456")
            .await
            .expect("answered after the retry");
        assert!(order.is_some());
        let signed: Vec<bool> = seen(&log).iter().map(|s| s.signature_ok).collect();
        assert_eq!(signed, [false, true]);
        // The rotated secret is kept: the next request is signed right at once.
        source.order("123456").await.expect("answered");
        assert_eq!(seen(&log).len(), 3);
    }

    #[tokio::test]
    async fn given_an_unchanged_secret_when_the_shop_refuses_it_then_the_refusal_stands_without_a_retry()
     {
        let (source, log) = rotated_shop(None).await;
        assert!(matches!(
            source.order("123456").await,
            Err(OrderError::Status(401))
        ));
        assert_eq!(seen(&log).len(), 1);
    }

    #[tokio::test]
    async fn given_unknown_order_when_fetched_then_none() {
        let (source, _) = shop(|_| (404, r#"{"error":"not found"}"#), Duration::ZERO).await;
        assert!(
            source
                .order("999999")
                .await
                .expect("404 is no order")
                .is_none()
        );
    }

    #[tokio::test]
    async fn given_cancel_when_sent_then_signed_post_and_both_outcomes_read() {
        let (source, log) = shop(
            |seen| match seen.path.as_str() {
                "/shop-api/orders/123457/cancel" => (200, r#"{"outcome":"cancelled"}"#),
                _ => (409, r#"{"outcome":"too_late","status":"shipped"}"#),
            },
            Duration::ZERO,
        )
        .await;
        assert_eq!(
            source.cancel("123457", "m-1").await.expect("200"),
            CancelOutcome::Cancelled
        );
        assert_eq!(
            source.cancel("123456", "m-2").await.expect("409"),
            CancelOutcome::TooLate {
                status: OrderStatus::Shipped
            }
        );
        let first = &seen(&log)[0];
        assert_eq!(first.method, "POST");
        assert_eq!(first.body, r#"{"request_id":"m-1"}"#);
        assert_eq!(first.content_type.as_deref(), Some("application/json"));
        assert!(first.signature_ok);
    }

    #[tokio::test]
    async fn given_return_when_requested_then_exact_body_and_ticket() {
        let (source, log) = shop(|_| (201, r#"{"ticket_id":"RT-9"}"#), Duration::ZERO).await;
        let ticket = source
            .request_return("123458", ReturnKind::Exchange, "尺码偏小 \"L\"", "m-3")
            .await
            .expect("201 is a ticket");
        assert_eq!(ticket.ticket_id, "RT-9");
        let request = &seen(&log)[0];
        assert_eq!(request.path, "/shop-api/orders/123458/returns");
        assert_eq!(
            request.body,
            r#"{"kind":"exchange","reason":"尺码偏小 \"L\"","request_id":"m-3"}"#
        );
        assert!(request.signature_ok);
    }

    #[tokio::test]
    async fn given_slow_shop_when_fetched_then_error_after_about_two_seconds() {
        let (source, _) = shop(|_| (200, ORDER_JSON), Duration::from_secs(3)).await;
        let started = Instant::now();
        let result = source.order("123456").await;
        let waited = started.elapsed();
        assert!(
            matches!(result, Err(OrderError::Unavailable { .. })),
            "{result:?}"
        );
        assert!(waited >= Duration::from_millis(1900), "{waited:?}");
        assert!(waited < Duration::from_millis(2800), "{waited:?}");
    }

    #[tokio::test]
    async fn given_failing_or_odd_answers_when_fetched_then_errors_not_panics() {
        let (source, _) = shop(|_| (502, "<html>bad gateway</html>"), Duration::ZERO).await;
        assert!(matches!(
            source.order("123456").await,
            Err(OrderError::Status(502))
        ));
        let (source, _) = shop(|_| (200, "{\"id\":"), Duration::ZERO).await;
        assert!(matches!(
            source.order("123456").await,
            Err(OrderError::Malformed(_))
        ));
        let (source, _) = shop(|_| (200, r#"{"outcome":"maybe"}"#), Duration::ZERO).await;
        assert!(matches!(
            source.cancel("123456", "m-4").await,
            Err(OrderError::Malformed(_))
        ));
        let (source, _) = shop(|_| (302, ""), Duration::ZERO).await;
        assert!(matches!(
            source.order("123456").await,
            Err(OrderError::Status(302))
        ));
        let (source, _) = shop(|_| (422, "{}"), Duration::ZERO).await;
        assert!(matches!(
            source
                .request_return("123456", ReturnKind::Return, "x", "m-5")
                .await,
            Err(OrderError::Refused(_))
        ));
    }

    #[tokio::test]
    async fn given_nobody_listening_when_fetched_then_unavailable() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("bound");
        drop(listener);
        let source = HttpOrderSource::new(HttpOrderConfig::new(format!("http://{addr}"), SECRET))
            .expect("valid config");
        assert!(matches!(
            source.order("123456").await,
            Err(OrderError::Unavailable { .. })
        ));
    }

    #[tokio::test]
    async fn given_id_that_is_not_a_token_when_fetched_then_no_request_is_made() {
        let (source, log) = shop(|_| (200, ORDER_JSON), Duration::ZERO).await;
        assert!(source.order("../admin").await.expect("no call").is_none());
        assert_eq!(
            source.cancel("1 2", "m-6").await.expect("no call"),
            CancelOutcome::NotFound
        );
        assert!(seen(&log).is_empty());
    }

    #[test]
    fn given_bad_configs_when_built_then_invalid() {
        for (base, secret) in [
            ("ftp://shop", "s"),
            ("not a url", "s"),
            ("https://shop", ""),
        ] {
            assert!(matches!(
                HttpOrderSource::new(HttpOrderConfig::new(base, secret)),
                Err(crate::Error::Invalid(_))
            ));
        }
    }
}
