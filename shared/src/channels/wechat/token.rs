//! The account's access token, cached centrally over the [`IdempotencyGuard`] (DynamoDB in
//! AWS, SQLite locally), so every dispatcher instance shares one token and only one of
//! them refreshes it at a time.
//!
//! The guard can only add keys (first writer wins, with a time to live), so the cache is a
//! short chain of *slots*, `wechat-token:{appid}:{n}`:
//!
//! - A reader takes the first slot whose token has not been reported stale.
//! - The first empty slot is where the next token goes. Whoever wins that slot's lease
//!   (`…:{n}:lease`, a few seconds) fetches the token with `POST /cgi-bin/stable_token`
//!   and stores it for its lifetime less a margin; the others poll the slot briefly.
//! - A token WeChat rejects (40001, 42001, 40014) is reported stale
//!   (`wechat-token-stale:{appid}:{digest}`), so every reader moves on to the next slot.
//!
//! `stable_token` with `force_refresh: false` returns the current token until it nears its
//! end, so fetches by several callers do not invalidate each other. Only when WeChat hands
//! back a token already reported stale is it asked with `force_refresh: true` (a few
//! such calls are allowed per day).

use crate::ports::IdempotencyGuard;
use crate::ports::SendError;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Slots tried before giving up (each one a rejected token: normally the first is used).
const MAX_SLOTS: u32 = 8;
/// Longest a refresher may hold a slot's lease (the HTTP timeout fits well within it).
const LEASE_TTL: Duration = Duration::from_secs(15);
/// Stored tokens expire this much before WeChat's `expires_in`.
const EXPIRY_MARGIN_SECS: u64 = 300;
/// A stale report outlives any token (WeChat's tokens live 7200 s).
const STALE_TTL: Duration = Duration::from_secs(7200);

/// How long a caller waits for another instance's refresh, and how often it looks.
#[derive(Debug, Clone, Copy)]
pub(super) struct Patience {
    pub(super) wait: Duration,
    pub(super) poll: Duration,
}

impl Default for Patience {
    fn default() -> Self {
        Self {
            wait: Duration::from_secs(5),
            poll: Duration::from_millis(100),
        }
    }
}

/// A token as handed to a caller.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct AccessToken(String);

impl AccessToken {
    pub(super) fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessToken(<redacted>)")
    }
}

/// The shared access-token cache of one account.
pub(super) struct AccessTokens {
    client: reqwest::Client,
    stable_token_url: String,
    appid: String,
    secret: String,
    cache: Arc<dyn IdempotencyGuard>,
    patience: Patience,
}

/// `POST /cgi-bin/stable_token` body.
#[derive(serde::Serialize)]
struct StableTokenRequest<'a> {
    grant_type: &'static str,
    appid: &'a str,
    secret: &'a str,
    force_refresh: bool,
}

/// Its answer: a token, or an error code.
#[derive(Deserialize)]
struct StableTokenResponse {
    access_token: Option<String>,
    expires_in: Option<u64>,
    #[serde(default)]
    errcode: i64,
    #[serde(default)]
    errmsg: String,
}

impl AccessTokens {
    pub(super) fn new(
        client: reqwest::Client,
        api_base: &str,
        appid: &str,
        secret: &str,
        cache: Arc<dyn IdempotencyGuard>,
        patience: Patience,
    ) -> Self {
        Self {
            client,
            stable_token_url: format!("{api_base}/cgi-bin/stable_token"),
            appid: appid.to_owned(),
            secret: secret.to_owned(),
            cache,
            patience,
        }
    }

    /// The current token: cached, or fetched by this or another instance.
    pub(super) async fn current(&self) -> Result<AccessToken, SendError> {
        for slot in 0..MAX_SLOTS {
            match self
                .cache
                .get(&self.slot_key(slot))
                .await
                .map_err(cache_error)?
            {
                None => return self.refresh(slot).await,
                Some(token) if self.is_stale(&token).await? => continue,
                Some(token) => return Ok(AccessToken(token)),
            }
        }
        Err(SendError::Transient(
            "WeChat rejected every recent access token".into(),
        ))
    }

    /// Reports `token` rejected by WeChat: no instance uses it again.
    pub(super) async fn invalidate(&self, token: &AccessToken) -> Result<(), SendError> {
        tracing::warn!("WeChat rejected the cached access token; refreshing it");
        self.cache
            .put_if_absent(&self.stale_key(token.as_str()), "1", STALE_TTL)
            .await
            .map_err(cache_error)?;
        Ok(())
    }

    async fn is_stale(&self, token: &str) -> Result<bool, SendError> {
        let stale = self.cache.get(&self.stale_key(token)).await;
        Ok(stale.map_err(cache_error)?.is_some())
    }

    /// Fills `slot`: fetches the token if this instance wins the lease, else waits for the
    /// instance that did.
    async fn refresh(&self, slot: u32) -> Result<AccessToken, SendError> {
        let key = self.slot_key(slot);
        let lease = format!("{key}:lease");
        let won = self
            .cache
            .put_if_absent(&lease, "1", LEASE_TTL)
            .await
            .map_err(cache_error)?
            .is_none();
        if won {
            let (mut token, mut lifetime) = self.fetch(false).await?;
            if self.is_stale(&token).await? {
                // WeChat still hands out the token it just rejected: ask for a new one.
                (token, lifetime) = self.fetch(true).await?;
            }
            let stored = self
                .cache
                .put_if_absent(&key, &token, lifetime)
                .await
                .map_err(cache_error)?;
            tracing::info!(slot, "WeChat access token refreshed");
            return Ok(AccessToken(stored.unwrap_or(token)));
        }
        let deadline = Instant::now() + self.patience.wait;
        while Instant::now() < deadline {
            tokio::time::sleep(self.patience.poll).await;
            if let Some(token) = self.cache.get(&key).await.map_err(cache_error)? {
                return Ok(AccessToken(token));
            }
        }
        Err(SendError::Transient(
            "another instance is refreshing the WeChat access token".into(),
        ))
    }

    /// Asks WeChat for the token; returns it with how long to keep it.
    async fn fetch(&self, force_refresh: bool) -> Result<(String, Duration), SendError> {
        let request = StableTokenRequest {
            grant_type: "client_credential",
            appid: &self.appid,
            secret: &self.secret,
            force_refresh,
        };
        let response = self
            .client
            .post(&self.stable_token_url)
            .json(&request)
            .send()
            .await
            .map_err(|e| {
                SendError::Transient(format!(
                    "fetching a WeChat access token: {}",
                    e.without_url()
                ))
            })?;
        let status = response.status();
        if !status.is_success() {
            return Err(SendError::Transient(format!(
                "fetching a WeChat access token: HTTP {status}"
            )));
        }
        let answer: StableTokenResponse = response.json().await.map_err(|e| {
            SendError::Transient(format!(
                "fetching a WeChat access token: unreadable answer: {}",
                e.without_url()
            ))
        })?;
        match (answer.access_token, answer.expires_in) {
            (Some(token), Some(expires_in)) if answer.errcode == 0 && !token.is_empty() => {
                Ok((token, keep_for(expires_in)))
            }
            _ => {
                // Wrong appid or secret, IP not allow-listed, …: the messages wait (and
                // end in the DLQ) until the configuration is fixed.
                tracing::error!(
                    errcode = answer.errcode,
                    errmsg = %answer.errmsg,
                    "WeChat refused to issue an access token"
                );
                Err(SendError::Transient(format!(
                    "WeChat refused to issue an access token: errcode {} ({})",
                    answer.errcode, answer.errmsg
                )))
            }
        }
    }

    fn slot_key(&self, slot: u32) -> String {
        format!("wechat-token:{}:{slot}", self.appid)
    }

    /// Keyed by a digest: tokens never appear in keys (or logs).
    fn stale_key(&self, token: &str) -> String {
        let digest = Sha256::digest(token.as_bytes());
        format!(
            "wechat-token-stale:{}:{}",
            self.appid,
            hex::encode(&digest[..16])
        )
    }
}

/// How long to keep a token WeChat says lives `expires_in` seconds.
fn keep_for(expires_in: u64) -> Duration {
    let secs = if expires_in > 2 * EXPIRY_MARGIN_SECS {
        expires_in - EXPIRY_MARGIN_SECS
    } else {
        expires_in / 2
    };
    Duration::from_secs(secs.max(1))
}

fn cache_error(error: crate::Error) -> SendError {
    SendError::Transient(format!(
        "access token cache: {}",
        crate::cause_chain(&error)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_token_lifetimes_when_kept_then_a_margin_is_left_before_expiry() {
        assert_eq!(keep_for(7200), Duration::from_secs(6900));
        assert_eq!(keep_for(400), Duration::from_secs(200));
        assert_eq!(keep_for(0), Duration::from_secs(1));
    }

    #[test]
    fn given_a_token_when_debug_printed_then_it_is_redacted() {
        let token = AccessToken("secret-token".into());
        assert!(!format!("{token:?}").contains("secret-token"));
    }
}
