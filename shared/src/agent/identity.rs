//! Who the agent behind a request is.

use super::AgentState;
use crate::auth::TokenKind;
use crate::domain::now_millis;
use crate::http::{ApiError, bearer_token};
use crate::{Error, Result};
use axum::extract::FromRequestParts;
use http::request::Parts;
use std::collections::HashMap;
use std::sync::Arc;

/// How agents authenticate (`KEFU_AGENT_AUTH`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentAuthMode {
    /// Local accounts: `POST /v1/agent/login` with an argon2-checked password returns a
    /// kefu-signed agent token, sent as `Authorization: Bearer <token>`.
    Local,
    /// Amazon Cognito: API Gateway's JWT authorizer checks the token and the Lambda main
    /// puts an [`AgentIdentity`] into the request extensions.
    Cognito,
}

impl AgentAuthMode {
    /// Parses `local` or `cognito`.
    pub fn parse(value: &str) -> Result<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "local" => Ok(Self::Local),
            "cognito" => Ok(Self::Cognito),
            other => Err(Error::Invalid(format!(
                "KEFU_AGENT_AUTH must be `local` or `cognito`, not {other:?}"
            ))),
        }
    }
}

/// The JWT claims that name a Cognito agent, in order of preference: `cognito:username`
/// (ID tokens), `username` (access tokens), then `sub` (the immutable user id).
pub const COGNITO_AGENT_CLAIMS: [&str; 3] = ["cognito:username", "username", "sub"];

/// An authenticated agent. Handlers extract it: in [`AgentAuthMode::Local`] from the
/// bearer token (visitor tokens are refused), in [`AgentAuthMode::Cognito`] from the
/// request extensions, where the Lambda main inserts it before calling the router:
///
/// ```ignore
/// // in functions/agent-api: claims from the HTTP API JWT authorizer
/// let claims = &request.request_context_ref()...authorizer.jwt.claims;
/// if let Some(agent) = AgentIdentity::from_jwt_claims(claims) {
///     request.extensions_mut().insert(agent);
/// }
/// ```
///
/// Missing either way: 401.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentIdentity {
    /// The agent id (local username or Cognito username), stored as the assignee.
    pub agent_id: String,
}

impl AgentIdentity {
    /// The agent named by the first present, non-empty claim of [`COGNITO_AGENT_CLAIMS`].
    pub fn from_jwt_claims(claims: &HashMap<String, String>) -> Option<Self> {
        COGNITO_AGENT_CLAIMS
            .iter()
            .filter_map(|name| claims.get(*name))
            .map(|value| value.trim())
            .find(|value| !value.is_empty())
            .map(|value| Self {
                agent_id: value.to_owned(),
            })
    }
}

impl FromRequestParts<Arc<AgentState>> for AgentIdentity {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AgentState>,
    ) -> Result<Self, ApiError> {
        match state.auth {
            AgentAuthMode::Local => {
                let token = bearer_token(&parts.headers)?;
                let claims = state.tokens.verify(token, now_millis())?;
                if claims.kind != TokenKind::Agent {
                    return Err(Error::Unauthorized("not an agent token".into()).into());
                }
                Ok(Self {
                    agent_id: claims.sub,
                })
            }
            AgentAuthMode::Cognito => parts
                .extensions
                .get::<AgentIdentity>()
                .cloned()
                .ok_or_else(|| Error::Unauthorized("missing agent identity".into()).into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_auth_mode_names_when_parsed_then_only_local_and_cognito() {
        assert_eq!(AgentAuthMode::parse("local").unwrap(), AgentAuthMode::Local);
        assert_eq!(
            AgentAuthMode::parse(" Cognito ").unwrap(),
            AgentAuthMode::Cognito
        );
        assert!(matches!(
            AgentAuthMode::parse("ldap"),
            Err(Error::Invalid(_))
        ));
    }

    #[test]
    fn given_jwt_claims_when_read_then_username_claims_win_over_sub() {
        let mut claims = HashMap::from([("sub".to_owned(), "u-123".to_owned())]);
        assert_eq!(
            AgentIdentity::from_jwt_claims(&claims).unwrap().agent_id,
            "u-123"
        );
        claims.insert("username".into(), "alice".into());
        assert_eq!(
            AgentIdentity::from_jwt_claims(&claims).unwrap().agent_id,
            "alice"
        );
        claims.insert("cognito:username".into(), "alice-id".into());
        assert_eq!(
            AgentIdentity::from_jwt_claims(&claims).unwrap().agent_id,
            "alice-id"
        );
        assert_eq!(AgentIdentity::from_jwt_claims(&HashMap::new()), None);
        let blank = HashMap::from([("sub".to_owned(), " ".to_owned())]);
        assert_eq!(AgentIdentity::from_jwt_claims(&blank), None);
    }
}
