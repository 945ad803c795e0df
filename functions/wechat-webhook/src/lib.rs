//! The wechat-webhook Lambda: the WeChat Official Account webhook behind API Gateway (HTTP
//! API, payload 2.0). The routes live in [`kefu::channels::wechat`]; this crate chooses
//! between them and the disabled channel.

use axum::Router;
use kefu::channels::wechat::{self, WechatConfig, WechatIngress};
use kefu::ports::{IdempotencyGuard, MessageQueue};
use std::sync::Arc;

/// The webhook of the account `config`, queueing on `inbound` and remembering nonces on
/// `nonces`; without a configuration, routes that answer 404 naming the settings to set.
pub fn app(
    config: Option<WechatConfig>,
    inbound: Arc<dyn MessageQueue>,
    nonces: Arc<dyn IdempotencyGuard>,
) -> Router {
    match config {
        Some(config) => wechat::router(WechatIngress::new(config, inbound, nonces)),
        None => {
            tracing::warn!(
                settings = wechat::REQUIRED_SETTINGS,
                "the WeChat channel is not configured"
            );
            wechat::disabled_router()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use kefu::adapters::embedded::EmbeddedStore;
    use tower::ServiceExt;

    async fn get(app: Router, uri: &str) -> (StatusCode, String) {
        let request = Request::get(uri).body(axum::body::Body::empty()).unwrap();
        let response = app.oneshot(request).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    fn queue(dir: &tempfile::TempDir) -> Arc<dyn MessageQueue> {
        Arc::new(EmbeddedStore::open(dir.path()).unwrap().queue("inbound"))
    }

    fn nonces(dir: &tempfile::TempDir) -> Arc<dyn IdempotencyGuard> {
        Arc::new(EmbeddedStore::open(dir.path()).unwrap().idempotency())
    }

    #[tokio::test]
    async fn given_no_configuration_when_called_then_404_names_the_settings() {
        let dir = tempfile::tempdir().unwrap();
        let (status, body) = get(app(None, queue(&dir), nonces(&dir)), "/wechat").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(body.contains("KEFU_WECHAT_TOKEN"), "{body}");
    }

    #[tokio::test]
    async fn given_a_configuration_when_wechat_verifies_the_url_then_echostr_comes_back() {
        let dir = tempfile::tempdir().unwrap();
        let config = WechatConfig::new("test", "wx1", "secret");
        let timestamp = (kefu::domain::now_millis() / 1000).to_string();
        let signature = wechat::crypto::signature("test", &timestamp, "test");
        let uri =
            format!("/wechat?signature={signature}&timestamp={timestamp}&nonce=test&echostr=hello");
        let (status, body) = get(app(Some(config), queue(&dir), nonces(&dir)), &uri).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, "hello");
    }
}
