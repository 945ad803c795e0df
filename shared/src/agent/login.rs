//! `POST /v1/agent/login` for local accounts, and creating accounts.

use super::AgentState;
use crate::auth::{Claims, hash_password, verify_password_or_dummy};
use crate::domain::{now_millis, rfc3339};
use crate::http::{ApiError, Json};
use crate::ports::{AgentAccount, AgentDirectory};
use crate::{Error, Result};
use axum::extract::State;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tracing::instrument;

/// Longest username, in characters.
const MAX_USERNAME_CHARS: usize = 64;

/// The one answer for an unknown user and a wrong password, so neither can be probed.
const BAD_CREDENTIALS: &str = "wrong username or password";

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
/// agent token.
#[instrument(skip_all)]
pub(super) async fn login(
    State(state): State<Arc<AgentState>>,
    Json(body): Json<Login>,
) -> Result<axum::Json<LoggedIn>, ApiError> {
    if body.username.is_empty() || body.password.is_empty() {
        return Err(ApiError::bad_request("username and password are required"));
    }
    let account = if check_username(&body.username).is_ok() {
        state.agents.agent(&body.username).await?
    } else {
        None
    };
    let hash = account.as_ref().map(|a| a.password_hash.clone());
    let password = body.password;
    let matches =
        tokio::task::spawn_blocking(move || verify_password_or_dummy(&password, hash.as_deref()))
            .await
            .map_err(|e| Error::backend("verifying password", e))??;
    let account = match account {
        Some(account) if matches => account,
        _ => {
            tracing::info!("agent login refused");
            return Err(ApiError::unauthorized(BAD_CREDENTIALS));
        }
    };
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

/// Creates a local agent account unless `username` exists (the password of an existing
/// account is left alone). Returns whether it was created. Used for the demo account.
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
    let password = password.to_owned();
    let password_hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| Error::backend("hashing password", e))??;
    let created = agents
        .create_agent(&AgentAccount {
            username: username.to_owned(),
            display_name: display_name.to_owned(),
            password_hash,
            queues: queues.to_vec(),
            created_at: now_millis(),
        })
        .await?;
    if created {
        tracing::info!(agent = username, "agent account created");
    }
    Ok(created)
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
}
