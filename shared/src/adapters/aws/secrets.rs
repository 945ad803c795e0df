//! Secrets from Secrets Manager, read at cold start instead of sitting in the environment.
//!
//! The environment names each secret setting's source: `KEFU_TOKEN_SECRET_SECRET_ID=<name or
//! ARN>` for a plain-string secret, `KEFU_WECHAT_TOKEN_SECRET_ID=<name or ARN>#token` for one
//! key of a JSON secret. [`Secrets::load`] reads each named secret once and publishes the
//! values with [`config::set_secret`], where `config::required("KEFU_TOKEN_SECRET")` finds
//! them. A credential rotated in Secrets Manager is picked up without a redeploy: after an
//! authentication failure the caller asks [`Rebuilt::refresh`], which re-reads the secrets (at
//! most once per [`MIN_REFRESH_INTERVAL`]) and, when a value changed, rebuilds what was built
//! from them; [`RetryOnAuthFailure`] does that for an HTTP function and answers the request
//! again.

use crate::config;
use crate::{Error, Result};
use aws_sdk_secretsmanager::Client;
use axum::Router;
use axum::body::{Bytes, HttpBody};
use axum::response::Response;
use http::{Request, StatusCode};
use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;
use tower::ServiceExt;

/// Ending of a variable that names the secret a setting is read from.
pub const SECRET_ID_SUFFIX: &str = "_SECRET_ID";

/// Least time between two reads of the secrets, so that a flood of forged requests cannot
/// turn into a flood of Secrets Manager calls.
pub const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(60);

/// Where one setting's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Source {
    /// The setting, e.g. `KEFU_TOKEN_SECRET`.
    setting: String,
    /// The secret's name or ARN.
    secret_id: String,
    /// The key inside a JSON secret; `None` for a plain string.
    key: Option<String>,
}

/// The secret settings of this process, read from Secrets Manager. Cheap to clone.
#[derive(Clone)]
pub struct Secrets {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    sources: Vec<Source>,
    min_interval: Duration,
    /// When the secrets were last read, and the values then published.
    state: Mutex<(Option<Instant>, BTreeMap<String, String>)>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let settings: Vec<_> = self.inner.sources.iter().map(|s| &s.setting).collect();
        f.debug_struct("Secrets")
            .field("settings", &settings)
            .finish_non_exhaustive()
    }
}

impl Secrets {
    /// The secrets named by `vars` (`KEFU_<SETTING>_SECRET_ID=<id>[#<json key>]`; other
    /// variables are ignored), read through `client`. Reads nothing yet.
    pub fn from_vars(
        client: Client,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self> {
        let mut sources = Vec::new();
        for (name, value) in vars {
            let Some(setting) = name.strip_suffix(SECRET_ID_SUFFIX) else {
                continue;
            };
            if !setting.starts_with("KEFU_") || value.trim().is_empty() {
                continue;
            }
            let (secret_id, key) = match value.trim().split_once('#') {
                Some((id, key)) if !id.is_empty() && !key.is_empty() => {
                    (id.to_owned(), Some(key.to_owned()))
                }
                Some(_) => {
                    return Err(Error::Config(format!(
                        "{name} must be <secret name or ARN>[#<json key>]"
                    )));
                }
                None => (value.trim().to_owned(), None),
            };
            sources.push(Source {
                setting: setting.to_owned(),
                secret_id,
                key,
            });
        }
        sources.sort_by(|a, b| a.setting.cmp(&b.setting));
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                sources,
                min_interval: MIN_REFRESH_INTERVAL,
                state: Mutex::new((None, BTreeMap::new())),
            }),
        })
    }

    /// The same secrets, re-read at most once per `interval` (tests use zero).
    pub fn with_min_refresh_interval(self, interval: Duration) -> Self {
        let inner = Arc::try_unwrap(self.inner).unwrap_or_else(|shared| Inner {
            client: shared.client.clone(),
            sources: shared.sources.clone(),
            min_interval: shared.min_interval,
            state: Mutex::new((None, BTreeMap::new())),
        });
        Self {
            inner: Arc::new(Inner {
                min_interval: interval,
                ..inner
            }),
        }
    }

    /// The settings these secrets provide.
    pub fn settings(&self) -> impl Iterator<Item = &str> {
        self.inner.sources.iter().map(|s| s.setting.as_str())
    }

    /// Reads every secret and publishes the values. At cold start a failure here is fatal:
    /// a function without its credentials must not start.
    pub async fn load(&self) -> Result<()> {
        let mut state = self.inner.state.lock().await;
        let values = self.read().await?;
        publish(&values);
        *state = (Some(Instant::now()), values);
        Ok(())
    }

    /// Re-reads the secrets unless they were read less than the minimum interval ago;
    /// `true` when a value changed (and the new values are published).
    pub async fn refresh(&self) -> Result<bool> {
        if self.inner.sources.is_empty() {
            return Ok(false);
        }
        let mut state = self.inner.state.lock().await;
        if state
            .0
            .is_some_and(|at| at.elapsed() < self.inner.min_interval)
        {
            return Ok(false);
        }
        state.0 = Some(Instant::now());
        let values = self.read().await?;
        let changed = values != state.1;
        if changed {
            publish(&values);
            state.1 = values;
            tracing::info!("secrets changed in Secrets Manager; reloaded");
        }
        Ok(changed)
    }

    /// The current value of every setting, one call per secret.
    async fn read(&self) -> Result<BTreeMap<String, String>> {
        let mut secrets: HashMap<&str, String> = HashMap::new();
        let mut values = BTreeMap::new();
        for source in &self.inner.sources {
            let id = source.secret_id.as_str();
            if !secrets.contains_key(id) {
                let text = self.get(id).await.map_err(|e| {
                    let reading = format!("reading {}{SECRET_ID_SUFFIX}", source.setting);
                    Error::backend(reading, e)
                })?;
                secrets.insert(id, text);
            }
            let secret = &secrets[id];
            let value = match &source.key {
                None => secret.clone(),
                Some(key) => json_field(secret, key).map_err(|why| {
                    Error::Config(format!(
                        "secret {} of {}{SECRET_ID_SUFFIX} {why}",
                        source.secret_id, source.setting
                    ))
                })?,
            };
            values.insert(source.setting.clone(), value);
        }
        Ok(values)
    }

    async fn get(&self, secret_id: &str) -> Result<String> {
        let output = self
            .inner
            .client
            .get_secret_value()
            .secret_id(secret_id)
            .send()
            .await
            .map_err(|e| Error::backend(format!("GetSecretValue {secret_id}"), e))?;
        output
            .secret_string()
            .map(str::to_owned)
            .ok_or_else(|| Error::Config(format!("secret {secret_id} holds no string")))
    }
}

fn publish(values: &BTreeMap<String, String>) {
    for (setting, value) in values {
        config::set_secret(setting, value);
    }
}

/// The string (or number, or boolean) at `key` of a JSON object; never echoes the secret.
fn json_field(secret: &str, key: &str) -> std::result::Result<String, String> {
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(secret).map_err(|_| "is not a JSON object".to_owned())?;
    match object.get(key) {
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(serde_json::Value::Number(n)) => Ok(n.to_string()),
        Some(serde_json::Value::Bool(b)) => Ok(b.to_string()),
        Some(_) => Err(format!("key {key} is not a string")),
        None => Err(format!("has no key {key}")),
    }
}

/// Something built from the settings (a router, a dispatcher) and built again when the
/// secrets it was built from change.
pub struct Rebuilt<T> {
    secrets: Secrets,
    build: Box<dyn Fn() -> Result<T> + Send + Sync>,
    current: RwLock<Arc<T>>,
}

impl<T> Rebuilt<T> {
    /// Builds the first value now (an error here is a configuration error).
    pub fn new(
        secrets: Secrets,
        build: impl Fn() -> Result<T> + Send + Sync + 'static,
    ) -> Result<Self> {
        let current = RwLock::new(Arc::new(build()?));
        Ok(Self {
            secrets,
            build: Box::new(build),
            current,
        })
    }

    /// The value to use for the next request or batch.
    pub fn current(&self) -> Arc<T> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Call after an authentication failure (a credential rejected, a signature that does
    /// not verify): re-reads the secrets and, when they changed, rebuilds. `true` when
    /// rebuilt. Failures are logged; the old value stays.
    pub async fn refresh(&self) -> bool {
        match self.secrets.refresh().await {
            Ok(true) => {}
            Ok(false) => return false,
            Err(error) => {
                tracing::warn!(error = %crate::cause_chain(&error), "secrets not re-read");
                return false;
            }
        }
        match (self.build)() {
            Ok(value) => {
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(value);
                true
            }
            Err(error) => {
                let error = crate::cause_chain(&error);
                tracing::error!(%error, "rebuild with new secrets failed");
                false
            }
        }
    }
}

/// An HTTP service over a [`Rebuilt`] router: when the router answers 401 or 403 and the
/// secrets turn out to have changed, the request is answered again by the rebuilt router
/// (a token signed with a rotated secret, a platform that signs with its new token).
#[derive(Clone)]
pub struct RetryOnAuthFailure {
    router: Arc<Rebuilt<Router>>,
}

impl RetryOnAuthFailure {
    /// Serves `router`.
    pub fn new(router: Rebuilt<Router>) -> Self {
        Self {
            router: Arc::new(router),
        }
    }
}

impl<B> tower::Service<Request<B>> for RetryOnAuthFailure
where
    B: HttpBody<Data = Bytes> + Clone + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let router = self.router.clone();
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let again = Request::from_parts(parts.clone(), body.clone());
            let first = serve(&router, Request::from_parts(parts, body)).await?;
            let refused = matches!(
                first.status(),
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
            );
            if refused && router.refresh().await {
                return serve(&router, again).await;
            }
            Ok(first)
        })
    }
}

async fn serve<B>(router: &Rebuilt<Router>, request: Request<B>) -> Result<Response, Infallible>
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    router.current().as_ref().clone().oneshot(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> Client {
        let config = aws_sdk_secretsmanager::Config::builder()
            .behavior_version(aws_sdk_secretsmanager::config::BehaviorVersion::latest())
            .region(aws_sdk_secretsmanager::config::Region::new("us-east-1"))
            .build();
        Client::from_conf(config)
    }

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn given_secret_id_variables_when_parsed_then_each_names_its_setting_secret_and_key() {
        let secrets = Secrets::from_vars(
            client(),
            vars(&[
                (
                    "KEFU_TOKEN_SECRET_SECRET_ID",
                    "arn:aws:secretsmanager:r:1:secret:t-AbCdEf",
                ),
                ("KEFU_WECHAT_TOKEN_SECRET_ID", " kefu/wechat#token "),
                ("KEFU_TABLE", "t"),
                ("OTHER_SECRET_ID", "x"),
                ("KEFU_BLANK_SECRET_ID", " "),
            ]),
        )
        .expect("valid");
        assert_eq!(
            secrets.inner.sources,
            [
                Source {
                    setting: "KEFU_TOKEN_SECRET".into(),
                    secret_id: "arn:aws:secretsmanager:r:1:secret:t-AbCdEf".into(),
                    key: None,
                },
                Source {
                    setting: "KEFU_WECHAT_TOKEN".into(),
                    secret_id: "kefu/wechat".into(),
                    key: Some("token".into()),
                },
            ]
        );
        for bad in ["#token", "kefu/wechat#"] {
            let error = Secrets::from_vars(client(), vars(&[("KEFU_X_SECRET_ID", bad)]))
                .expect_err("malformed");
            assert!(error.to_string().contains("KEFU_X_SECRET_ID"), "{error}");
        }
    }

    #[test]
    fn given_a_json_secret_when_a_key_is_read_then_its_value_and_errors_never_echo_it() {
        let secret = r#"{"token":"t0k","aes_key":"","port":5}"#;
        assert_eq!(json_field(secret, "token").unwrap(), "t0k");
        assert_eq!(json_field(secret, "aes_key").unwrap(), "");
        assert_eq!(json_field(secret, "port").unwrap(), "5");
        let missing = json_field(secret, "appid").unwrap_err().to_string();
        assert!(!missing.contains("t0k"), "{missing}");
        let not_json = json_field("hunter2", "token").unwrap_err().to_string();
        assert!(!not_json.contains("hunter2"), "{not_json}");
    }
}
