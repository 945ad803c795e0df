//! Reading configuration from the environment. Only binaries (`main.rs`) call these; the
//! handlers receive plain values. Every variable is listed in the README.
//!
//! Secrets are settings too, but on AWS they are not in the environment: a Lambda reads
//! them from Secrets Manager at cold start (the AWS adapter's `Secrets`, driven by
//! `<NAME>_SECRET_ID` variables) and publishes them here with [`set_secret`]; a published
//! value takes precedence over the variable of the same name.

use crate::{Error, Result};
use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};
use std::time::Duration;

/// Settings read from a secret store, by variable name.
static SECRETS: RwLock<Option<HashMap<String, String>>> = RwLock::new(None);

/// Publishes the value of setting `name` read from a secret store (replacing an older one).
pub fn set_secret(name: &str, value: &str) {
    let mut secrets = SECRETS.write().unwrap_or_else(PoisonError::into_inner);
    secrets
        .get_or_insert_with(HashMap::new)
        .insert(name.to_owned(), value.to_owned());
}

/// A published secret, else the environment variable.
fn lookup(name: &str) -> Option<String> {
    let secrets = SECRETS.read().unwrap_or_else(PoisonError::into_inner);
    match secrets.as_ref().and_then(|s| s.get(name)) {
        Some(value) => Some(value.clone()),
        None => std::env::var(name).ok(),
    }
}

/// A required variable.
pub fn required(name: &str) -> Result<String> {
    match lookup(name) {
        Some(v) if !v.trim().is_empty() => Ok(v.trim().to_owned()),
        _ => Err(Error::Config(format!(
            "environment variable {name} must be set"
        ))),
    }
}

/// An optional variable (unset or blank → `None`).
pub fn optional(name: &str) -> Option<String> {
    lookup(name)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// A variable with a default.
pub fn or(name: &str, default: &str) -> String {
    optional(name).unwrap_or_else(|| default.to_owned())
}

/// A comma-separated list (blank items dropped), with a default.
pub fn list(name: &str, default: &[&str]) -> Vec<String> {
    match optional(name) {
        Some(v) => v
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        None => default.iter().map(|s| (*s).to_owned()).collect(),
    }
}

/// A number with a default.
pub fn number<T: std::str::FromStr>(name: &str, default: T) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    match optional(name) {
        Some(v) => v.parse().map_err(|e| {
            Error::Config(format!("environment variable {name} must be a number: {e}"))
        }),
        None => Ok(default),
    }
}

/// Seconds as a [`Duration`], with a default.
pub fn seconds(name: &str, default: u64) -> Result<Duration> {
    number(name, default).map(Duration::from_secs)
}

/// Installs `KEFU_ID_SECRET` (required, at least 16 bytes) as the key conversation and
/// message ids are derived under ([`crate::domain::install_id_secret`]). Every binary that
/// derives ids calls this once at start, before anything else can derive one.
pub fn install_id_secret() -> Result<()> {
    let secret = required("KEFU_ID_SECRET")?;
    crate::domain::install_id_secret(&secret)
        .map_err(|e| Error::Config(format!("KEFU_ID_SECRET: {e}")))
}

/// A yes/no flag (`1`/`true`/`yes` or `0`/`false`/`no`), with a default.
pub fn flag(name: &str, default: bool) -> Result<bool> {
    match optional(name).as_deref() {
        None => Ok(default),
        Some("1" | "true" | "yes") => Ok(true),
        Some("0" | "false" | "no") => Ok(false),
        Some(_) => Err(Error::Config(format!(
            "environment variable {name} must be true or false"
        ))),
    }
}

/// `KEFU_MAX_BODY_BYTES`: the request body limit of the web and agent APIs (413 above).
pub fn max_body_bytes() -> Result<usize> {
    number("KEFU_MAX_BODY_BYTES", 16 * 1024)
}

/// The widget API's settings (`KEFU_CORS_ORIGINS`, `KEFU_MAX_BODY_BYTES`,
/// `KEFU_MAX_POLLS_PER_VISITOR`), the same for `web-api` and the local runner.
pub fn web_config() -> Result<crate::web::WebConfig> {
    let max_polls_per_visitor = number(
        "KEFU_MAX_POLLS_PER_VISITOR",
        crate::web::MAX_POLLS_PER_VISITOR,
    )?;
    if max_polls_per_visitor < 1 {
        return Err(Error::Config(
            "KEFU_MAX_POLLS_PER_VISITOR must be at least 1".into(),
        ));
    }
    Ok(crate::web::WebConfig {
        cors_origins: list("KEFU_CORS_ORIGINS", &[]),
        max_body_bytes: max_body_bytes()?,
        max_polls_per_visitor,
        ..crate::web::WebConfig::default()
    })
}
