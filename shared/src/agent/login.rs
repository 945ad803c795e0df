//! `POST /v1/agent/login` for local accounts, and managing accounts.
//!
//! Password guessing is slowed down twice over, by counters in the agents store (so every
//! instance sees the same counts): per account and per client address (an IPv6 address
//! counts by its /64). A key's first [`LoginLimits`] free failures are only counted; each
//! further failure backs the key off for twice as long as the one before, from
//! `first_backoff` up to `max_backoff`. While a key is backed off, logins are refused with
//! 429 and `Retry-After` before any password is checked, right ones included. A successful
//! login clears the account's counter; counters are forgotten `forget_after` their last
//! failure. Unknown usernames are counted like real ones, so 429 does not tell them apart.
//!
//! argon2 needs ~19 MiB per check, so at most `max_concurrent_checks` run at once per
//! instance; a login waits up to `check_wait` for a slot, then gets 429 with
//! `Retry-After: 1`.

use super::AgentState;
use crate::auth::{Claims, hash_password, verify_password_or_dummy};
use crate::domain::{Millis, now_millis, rfc3339};
use crate::http::{ApiError, Json};
use crate::ports::{AgentAccount, AgentDirectory, LoginFailures};
use crate::{Error, Result};
use axum::extract::{ConnectInfo, State};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tracing::instrument;

/// Longest username, in characters.
const MAX_USERNAME_CHARS: usize = 64;

/// The one answer for an unknown user and a wrong password, so neither can be probed.
const BAD_CREDENTIALS: &str = "wrong username or password";

/// How password guessing is slowed down (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginLimits {
    /// Failures per account before it is backed off.
    pub account_free_failures: u32,
    /// Failures per client address before it is backed off (higher: an office shares one).
    pub address_free_failures: u32,
    /// The first backoff; each further failure doubles it.
    pub first_backoff: Duration,
    /// The longest backoff.
    pub max_backoff: Duration,
    /// A counter is forgotten this long after its last failure.
    pub forget_after: Duration,
    /// Password checks running at once (per instance).
    pub max_concurrent_checks: usize,
    /// How long a login waits for a check slot before 429.
    pub check_wait: Duration,
}

impl Default for LoginLimits {
    fn default() -> Self {
        Self {
            account_free_failures: 5,
            address_free_failures: 20,
            first_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(15 * 60),
            forget_after: Duration::from_secs(3600),
            max_concurrent_checks: 4,
            check_wait: Duration::from_secs(2),
        }
    }
}

impl LoginLimits {
    /// Until when a key with `failures` is backed off, if at all.
    fn backed_off_until(&self, failures: LoginFailures, free: u32) -> Option<Millis> {
        let beyond = failures.count.checked_sub(free)?;
        let factor = 1u32.checked_shl(beyond.min(31)).unwrap_or(u32::MAX);
        let backoff = self
            .first_backoff
            .saturating_mul(factor)
            .min(self.max_backoff);
        let backoff = i64::try_from(backoff.as_millis()).unwrap_or(i64::MAX);
        Some(failures.last_at.saturating_add(backoff))
    }
}

/// The login limits and this instance's password-check slots. Cheap to clone.
#[derive(Debug, Clone)]
pub struct LoginGate {
    limits: LoginLimits,
    checks: Arc<Semaphore>,
}

impl LoginGate {
    /// A gate with `limits`.
    pub fn new(limits: LoginLimits) -> Self {
        let checks = Arc::new(Semaphore::new(limits.max_concurrent_checks.max(1)));
        Self { limits, checks }
    }

    /// The limits.
    pub fn limits(&self) -> &LoginLimits {
        &self.limits
    }

    /// The password-check slots (to observe or, in tests, to hold them).
    pub fn check_slots(&self) -> &Arc<Semaphore> {
        &self.checks
    }
}

impl Default for LoginGate {
    fn default() -> Self {
        Self::new(LoginLimits::default())
    }
}

/// The counter key of a client address; an IPv6 address counts by its /64, which one
/// customer line usually gets whole.
fn address_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("addr:{v4}"),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("addr:{v4}"),
            None => {
                let s = v6.segments();
                format!("addr:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Login {
    username: String,
    password: String,
}

#[derive(Debug, Serialize)]
pub(super) struct LoggedIn {
    token: String,
    display_name: String,
    expires_at: String,
}

/// Checks the password (off the async threads: argon2 is slow on purpose) and returns an
/// agent token. The client address is the connection's (`ConnectInfo`, set by the local
/// runner and, from API Gateway's `sourceIp`, by the agent-api Lambda).
#[instrument(skip_all)]
pub(super) async fn login(
    State(state): State<Arc<AgentState>>,
    extensions: http::Extensions,
    Json(body): Json<Login>,
) -> Result<axum::Json<LoggedIn>, ApiError> {
    if body.username.is_empty() || body.password.is_empty() {
        return Err(ApiError::bad_request("username and password are required"));
    }
    let limits = state.login.limits().clone();
    let valid_name = check_username(&body.username).is_ok();
    let mut keys = Vec::with_capacity(2);
    if valid_name {
        keys.push((
            format!("user:{}", body.username),
            limits.account_free_failures,
        ));
    }
    if let Some(ConnectInfo(addr)) = extensions.get::<ConnectInfo<SocketAddr>>() {
        keys.push((address_key(addr.ip()), limits.address_free_failures));
    }

    let now = now_millis();
    let mut wait_until = None;
    for (key, free) in &keys {
        let failures = state
            .agents
            .login_failures(key, now, limits.forget_after)
            .await?;
        let until = failures.and_then(|f| limits.backed_off_until(f, *free));
        if until.is_some_and(|until| until > now) {
            wait_until = wait_until.max(until);
        }
    }
    if let Some(until) = wait_until {
        tracing::info!("agent login backed off");
        let wait = Duration::from_millis(u64::try_from(until - now).unwrap_or(0));
        return Err(ApiError::too_many_requests(
            "too many failed logins; try again later",
            wait,
        ));
    }

    let account = if valid_name {
        state.agents.agent(&body.username).await?
    } else {
        None
    };
    let hash = account.as_ref().map(|a| a.password_hash.clone());
    let password = body.password;
    let slot = tokio::time::timeout(
        limits.check_wait,
        state.login.check_slots().clone().acquire_owned(),
    )
    .await;
    let Ok(Ok(slot)) = slot else {
        tracing::warn!("agent login refused: all password checks busy");
        return Err(ApiError::too_many_requests(
            "too many logins at once; try again",
            Duration::from_secs(1),
        ));
    };
    let matches = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        verify_password_or_dummy(&password, hash.as_deref())
    })
    .await
    .map_err(|e| Error::backend("verifying password", e))??;
    let account = match account {
        Some(account) if matches => account,
        _ => {
            for (key, _) in &keys {
                state
                    .agents
                    .note_login_failure(key, now_millis(), limits.forget_after)
                    .await?;
            }
            tracing::info!("agent login refused");
            return Err(ApiError::unauthorized(BAD_CREDENTIALS));
        }
    };
    if account.disabled {
        tracing::info!(agent = %account.username, "login to a disabled account refused");
        return Err(ApiError::forbidden("this account is disabled"));
    }
    state
        .agents
        .clear_login_failures(&format!("user:{}", account.username))
        .await?;
    let claims = Claims::agent(account.username.clone(), now_millis());
    tracing::info!(agent = %account.username, "agent logged in");
    Ok(axum::Json(LoggedIn {
        token: state.tokens.issue(&claims),
        display_name: account.display_name,
        expires_at: rfc3339(claims.exp.saturating_mul(1000)),
    }))
}

/// In Cognito mode the console signs in with Cognito's hosted UI instead.
pub(super) async fn handled_by_cognito() -> ApiError {
    ApiError::not_found("login is handled by Cognito")
}

async fn hash(password: &str) -> Result<String> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| Error::backend("hashing password", e))?
}

/// Creates a local agent account unless `username` exists (the password of an existing
/// account is left alone). Returns whether it was created.
pub async fn ensure_agent(
    agents: &dyn AgentDirectory,
    username: &str,
    password: &str,
    display_name: &str,
    queues: &[String],
) -> Result<bool> {
    check_username(username)?;
    if agents.agent(username).await?.is_some() {
        return Ok(false);
    }
    let created = agents
        .create_agent(&AgentAccount {
            username: username.to_owned(),
            display_name: display_name.to_owned(),
            password_hash: hash(password).await?,
            queues: queues.to_vec(),
            disabled: false,
            created_at: now_millis(),
        })
        .await?;
    if created {
        tracing::info!(agent = username, "agent account created");
    }
    Ok(created)
}

/// Creates the account, or makes an existing one enabled, with `password` (rehashed only
/// when it changed) and `queues`. Used for the local runner's demo account.
pub async fn provision_agent(
    agents: &dyn AgentDirectory,
    username: &str,
    password: &str,
    display_name: &str,
    queues: &[String],
) -> Result<()> {
    if ensure_agent(agents, username, password, display_name, queues).await? {
        return Ok(());
    }
    let Some(mut account) = agents.agent(username).await? else {
        return Err(Error::Conflict(format!(
            "account {username} was just deleted"
        )));
    };
    let hash_now = account.password_hash.clone();
    let given = password.to_owned();
    let same =
        tokio::task::spawn_blocking(move || verify_password_or_dummy(&given, Some(&hash_now)))
            .await
            .map_err(|e| Error::backend("verifying password", e))?
            .unwrap_or(false);
    if same && !account.disabled && account.queues == queues {
        return Ok(());
    }
    if !same {
        account.password_hash = hash(password).await?;
    }
    account.disabled = false;
    account.queues = queues.to_vec();
    agents.update_agent(&account).await?;
    tracing::info!(agent = username, "agent account updated");
    Ok(())
}

/// Disables the account (it cannot log in; its tokens stop working). Returns whether it
/// exists.
pub async fn disable_agent(agents: &dyn AgentDirectory, username: &str) -> Result<bool> {
    let Some(mut account) = agents.agent(username).await? else {
        return Ok(false);
    };
    if !account.disabled {
        account.disabled = true;
        agents.update_agent(&account).await?;
        tracing::info!(agent = username, "agent account disabled");
    }
    Ok(true)
}

/// 1–64 characters of `[A-Za-z0-9._@-]`.
fn check_username(username: &str) -> Result<()> {
    let ok = (1..=MAX_USERNAME_CHARS).contains(&username.chars().count())
        && username
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "username must be 1–{MAX_USERNAME_CHARS} characters of A-Z, a-z, 0-9, '.', '_', '@' or '-'"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_usernames_when_checked_then_only_plain_names_pass() {
        assert!(check_username("alice").is_ok());
        assert!(check_username("li.lei@shop-1").is_ok());
        for bad in ["", "a b", "李雷", "a/b", &"x".repeat(65)] {
            assert!(check_username(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn given_failure_counts_when_backed_off_then_free_then_doubling_then_capped() {
        let limits = LoginLimits::default();
        let at = |count| LoginFailures {
            count,
            last_at: 1_000,
        };
        assert_eq!(limits.backed_off_until(at(4), 5), None);
        assert_eq!(limits.backed_off_until(at(5), 5), Some(2_000));
        assert_eq!(limits.backed_off_until(at(6), 5), Some(3_000));
        assert_eq!(limits.backed_off_until(at(8), 5), Some(9_000));
        assert_eq!(limits.backed_off_until(at(40), 5), Some(1_000 + 900_000));
        assert_eq!(limits.backed_off_until(at(u32::MAX), 5), Some(901_000));
    }

    #[test]
    fn given_addresses_when_keyed_then_ipv6_counts_by_its_64() {
        assert_eq!(address_key("192.0.2.7".parse().unwrap()), "addr:192.0.2.7");
        assert_eq!(
            address_key("::ffff:192.0.2.7".parse().unwrap()),
            "addr:192.0.2.7"
        );
        assert_eq!(
            address_key("2001:db8:1:2:aaaa::1".parse().unwrap()),
            address_key("2001:db8:1:2:bbbb::9".parse().unwrap())
        );
        assert_ne!(
            address_key("2001:db8:1:2::1".parse().unwrap()),
            address_key("2001:db8:1:3::1".parse().unwrap())
        );
    }
}
