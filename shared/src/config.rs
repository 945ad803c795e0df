//! Reading configuration from the environment. Only binaries (`main.rs`) call these; the
//! handlers receive plain values. Every variable is listed in the README.

use anyhow::{Context, bail};
use std::time::Duration;

/// A required variable.
pub fn required(name: &str) -> anyhow::Result<String> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Ok(v.trim().to_owned()),
        _ => bail!("environment variable {name} must be set"),
    }
}

/// An optional variable (unset or blank → `None`).
pub fn optional(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
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
pub fn number<T: std::str::FromStr>(name: &str, default: T) -> anyhow::Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    match optional(name) {
        Some(v) => v
            .parse()
            .with_context(|| format!("environment variable {name} must be a number")),
        None => Ok(default),
    }
}

/// Seconds as a [`Duration`], with a default.
pub fn seconds(name: &str, default: u64) -> anyhow::Result<Duration> {
    number(name, default).map(Duration::from_secs)
}
