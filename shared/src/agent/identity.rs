//! Who the agent behind a request is, and what that agent may see.

use super::AgentState;
use crate::auth::TokenKind;
use crate::domain::{Conversation, now_millis};
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
    /// kefu-signed agent token, sent as `Authorization: Bearer <token>`. Every request
    /// reads the account, so a deleted or disabled account's token stops working at once
    /// and the account's queues are always the current ones.
    Local,
    /// Amazon Cognito: API Gateway's JWT authorizer checks the token and the Lambda main
    /// puts an [`AgentIdentity`] into the request extensions; the role and the queues come
    /// from the user's Cognito groups (see [`AgentIdentity::from_jwt_claims`]).
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

/// The JWT claim with the user's Cognito groups.
pub const COGNITO_GROUPS_CLAIM: &str = "cognito:groups";

/// The Cognito group that makes a user an agent.
pub const AGENT_ROLE_GROUP: &str = "role:agent";

/// Cognito groups named `queue:<name>` give the queues an agent works.
pub const QUEUE_GROUP_PREFIX: &str = "queue:";

/// What a caller is allowed to be. More roles come with the agent workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentRole {
    /// Works the conversations of its queues (Cognito group `role:agent`; every local
    /// account).
    Agent,
}

/// An authenticated caller of the agent API. Handlers extract it: in
/// [`AgentAuthMode::Local`] from the bearer token and the stored account (visitor tokens,
/// unknown and disabled accounts are refused), in [`AgentAuthMode::Cognito`] from the
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
/// Missing either way: 401; present without a role: 403.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentIdentity {
    /// The agent id (local username or Cognito username), stored as the assignee.
    pub agent_id: String,
    /// The role, if the caller has one (a Cognito user outside `role:agent` has none).
    pub role: Option<AgentRole>,
    /// The queues the agent works.
    pub queues: Vec<String>,
}

impl AgentIdentity {
    /// An agent working `queues`.
    pub fn agent(agent_id: impl Into<String>, queues: &[&str]) -> Self {
        Self {
            agent_id: agent_id.into(),
            role: Some(AgentRole::Agent),
            queues: queues.iter().map(|q| (*q).to_owned()).collect(),
        }
    }

    /// The caller named by the first present, non-empty claim of [`COGNITO_AGENT_CLAIMS`],
    /// with the role and queues of its groups ([`COGNITO_GROUPS_CLAIM`]): `role:agent`
    /// makes it an agent, each `queue:<name>` adds a queue; other groups are ignored.
    pub fn from_jwt_claims(claims: &HashMap<String, String>) -> Option<Self> {
        let agent_id = COGNITO_AGENT_CLAIMS
            .iter()
            .filter_map(|name| claims.get(*name))
            .map(|value| value.trim())
            .find(|value| !value.is_empty())?;
        let groups = claims
            .get(COGNITO_GROUPS_CLAIM)
            .map(|value| parse_groups(value))
            .unwrap_or_default();
        let role = groups
            .iter()
            .any(|group| group == AGENT_ROLE_GROUP)
            .then_some(AgentRole::Agent);
        let mut queues: Vec<String> = Vec::new();
        for queue in groups
            .iter()
            .filter_map(|group| group.strip_prefix(QUEUE_GROUP_PREFIX))
            .filter(|queue| !queue.is_empty())
        {
            if !queues.iter().any(|q| q == queue) {
                queues.push(queue.to_owned());
            }
        }
        Some(Self {
            agent_id: agent_id.to_owned(),
            role,
            queues,
        })
    }

    /// Whether the agent may read and act in `conversation`: it owns it, or the
    /// conversation was handed to a person in one of the agent's queues. A conversation the
    /// bot handled alone is nobody's to read.
    pub fn may_see(&self, conversation: &Conversation) -> bool {
        let owns = conversation.assignee.as_deref() == Some(self.agent_id.as_str());
        let in_my_queue = conversation
            .escalation
            .as_ref()
            .is_some_and(|escalation| self.works(&escalation.queue));
        self.role.is_some() && (owns || in_my_queue)
    }

    /// Whether the agent works `queue`.
    pub fn works(&self, queue: &str) -> bool {
        self.queues.iter().any(|q| q == queue)
    }
}

/// The groups in a `cognito:groups` claim. The HTTP API's JWT authorizer flattens array
/// claims into `[a b c]`; a JSON array and a bare comma list are accepted too. Cognito
/// group names contain no whitespace, so splitting on it is unambiguous.
fn parse_groups(value: &str) -> Vec<String> {
    let value = value.trim();
    if let Ok(groups) = serde_json::from_str::<Vec<String>>(value) {
        return groups;
    }
    value
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|group| !group.is_empty())
        .map(str::to_owned)
        .collect()
}

impl FromRequestParts<Arc<AgentState>> for AgentIdentity {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AgentState>,
    ) -> Result<Self, ApiError> {
        let identity = match state.auth {
            AgentAuthMode::Local => {
                let token = bearer_token(&parts.headers)?;
                let claims = state.tokens.verify(token, now_millis())?;
                if claims.kind != TokenKind::Agent {
                    return Err(Error::Unauthorized("not an agent token".into()).into());
                }
                // Checked on every use: deleting or disabling an account ends its tokens.
                match state.agents.agent(&claims.sub).await? {
                    Some(account) if !account.disabled => Self {
                        agent_id: account.username,
                        role: Some(AgentRole::Agent),
                        queues: account.queues,
                    },
                    _ => {
                        return Err(ApiError::unauthorized(
                            "the account of this token no longer exists or is disabled",
                        ));
                    }
                }
            }
            AgentAuthMode::Cognito => parts
                .extensions
                .get::<AgentIdentity>()
                .cloned()
                .ok_or_else(|| ApiError::unauthorized("missing agent identity"))?,
        };
        if identity.role.is_none() {
            return Err(ApiError::forbidden(format!(
                "not an agent: the user needs the group {AGENT_ROLE_GROUP}"
            )));
        }
        Ok(identity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Channel, ConversationKey, Customer, Escalation};

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

    #[test]
    fn given_cognito_groups_when_read_then_role_and_queues_come_from_them() {
        for groups in [
            "[role:agent queue:general queue:billing admins queue:general]",
            r#"["role:agent","queue:general","queue:billing","admins"]"#,
            "role:agent,queue:general,queue:billing",
        ] {
            let claims = HashMap::from([
                ("sub".to_owned(), "u-1".to_owned()),
                (COGNITO_GROUPS_CLAIM.to_owned(), groups.to_owned()),
            ]);
            let identity = AgentIdentity::from_jwt_claims(&claims).unwrap();
            assert_eq!(identity.role, Some(AgentRole::Agent), "{groups}");
            assert_eq!(identity.queues, ["general", "billing"], "{groups}");
        }
        let no_role = HashMap::from([
            ("sub".to_owned(), "u-1".to_owned()),
            (
                COGNITO_GROUPS_CLAIM.to_owned(),
                "[queue:general]".to_owned(),
            ),
        ]);
        assert_eq!(AgentIdentity::from_jwt_claims(&no_role).unwrap().role, None);
        let no_groups = HashMap::from([("sub".to_owned(), "u-1".to_owned())]);
        let identity = AgentIdentity::from_jwt_claims(&no_groups).unwrap();
        assert_eq!((identity.role, identity.queues.len()), (None, 0));
    }

    #[test]
    fn given_conversations_when_checked_then_only_own_or_handed_to_own_queue_are_seen() {
        let key = ConversationKey::new(Channel::Sms, "+8613800000000");
        let bot_only = Conversation::new(&key, Customer::default(), 1);
        let mut general = bot_only.clone();
        general
            .escalate(
                Escalation {
                    queue: "general".into(),
                    priority: 5,
                    reason: "customer_request".into(),
                },
                2,
            )
            .unwrap();
        let mut owned_by_bill = general.clone();
        owned_by_bill.claim("bill", 3).unwrap();
        let gina = AgentIdentity::agent("gina", &["general"]);
        let bill = AgentIdentity::agent("bill", &["billing"]);
        assert!(!gina.may_see(&bot_only));
        assert!(gina.may_see(&general));
        assert!(gina.may_see(&owned_by_bill));
        assert!(!bill.may_see(&general));
        assert!(bill.may_see(&owned_by_bill));
        let roleless = AgentIdentity {
            role: None,
            ..gina.clone()
        };
        assert!(!roleless.may_see(&general));
    }
}
