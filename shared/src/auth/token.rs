//! Compact HMAC-signed bearer tokens.

use crate::domain::{ConversationId, Millis};
use crate::{Error, Result};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::sync::Arc;

/// How long a visitor token is valid: a week, so a returning visitor keeps their chat.
pub const VISITOR_TOKEN_TTL_SECS: i64 = 7 * 24 * 3600;

/// How long an agent token is valid: one working day.
pub const AGENT_TOKEN_TTL_SECS: i64 = 12 * 3600;

/// Longer tokens are refused before any decoding work.
const MAX_TOKEN_LEN: usize = 2048;

/// Who a token was issued to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    /// A web widget visitor; the token is bound to one conversation.
    Visitor,
    /// A human agent (local accounts).
    Agent,
}

/// What a token says about its bearer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    /// Visitor or agent.
    pub kind: TokenKind,
    /// The visitor's address (`v:<uuid>` / `u:<customer id>`) or the agent's username.
    pub sub: String,
    /// The visitor's conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conv: Option<ConversationId>,
    /// Expiry, Unix seconds.
    pub exp: i64,
}

impl Claims {
    /// Claims for a visitor of `conversation`, valid for [`VISITOR_TOKEN_TTL_SECS`].
    pub fn visitor(subject: impl Into<String>, conversation: ConversationId, now: Millis) -> Self {
        Self {
            kind: TokenKind::Visitor,
            sub: subject.into(),
            conv: Some(conversation),
            exp: now / 1000 + VISITOR_TOKEN_TTL_SECS,
        }
    }

    /// Claims for an agent, valid for [`AGENT_TOKEN_TTL_SECS`].
    pub fn agent(username: impl Into<String>, now: Millis) -> Self {
        Self {
            kind: TokenKind::Agent,
            sub: username.into(),
            conv: None,
            exp: now / 1000 + AGENT_TOKEN_TTL_SECS,
        }
    }
}

/// Issues and verifies tokens of the form `base64url(claims).base64url(mac)`, where `mac`
/// is HMAC-SHA256 over the first part. Verification is constant-time in the MAC.
#[derive(Clone)]
pub struct TokenSigner {
    key: Arc<[u8]>,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSigner { key: <redacted> }")
    }
}

impl TokenSigner {
    /// A signer keyed with `secret` (`KEFU_TOKEN_SECRET`), at least
    /// [`super::MIN_SECRET_BYTES`] bytes.
    pub fn new(secret: impl AsRef<[u8]>) -> Result<Self> {
        let secret = secret.as_ref();
        super::check_secret("KEFU_TOKEN_SECRET", secret)?;
        Ok(Self { key: secret.into() })
    }

    /// Signs `claims` into a token.
    pub fn issue(&self, claims: &Claims) -> String {
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims serialise"));
        let mac = URL_SAFE_NO_PAD.encode(self.mac(payload.as_bytes()).finalize().into_bytes());
        format!("{payload}.{mac}")
    }

    /// The claims of `token` if it was issued by this signer and has not expired at `now`.
    /// Anything else (malformed, forged, expired) is [`Error::Unauthorized`].
    pub fn verify(&self, token: &str, now: Millis) -> Result<Claims> {
        let invalid = || Error::Unauthorized("invalid token".into());
        if token.len() > MAX_TOKEN_LEN {
            return Err(invalid());
        }
        let (payload, mac) = token.split_once('.').ok_or_else(invalid)?;
        let mac = URL_SAFE_NO_PAD.decode(mac).map_err(|_| invalid())?;
        self.mac(payload.as_bytes())
            .verify_slice(&mac)
            .map_err(|_| invalid())?;
        let json = URL_SAFE_NO_PAD.decode(payload).map_err(|_| invalid())?;
        let claims: Claims = serde_json::from_slice(&json).map_err(|_| invalid())?;
        if claims.exp.saturating_mul(1000) <= now {
            return Err(Error::Unauthorized("token expired".into()));
        }
        Ok(claims)
    }

    fn mac(&self, data: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key size");
        mac.update(data);
        mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Channel, ConversationKey};

    const NOW: Millis = 1_700_000_000_000;

    fn signer() -> TokenSigner {
        TokenSigner::new("0123456789abcdef-test").unwrap()
    }

    fn conversation() -> ConversationId {
        ConversationKey::new(Channel::Web, "v:1").conversation_id()
    }

    #[test]
    fn given_a_short_secret_when_building_a_signer_then_it_is_refused() {
        assert!(TokenSigner::new("short").is_err());
        assert!(TokenSigner::new("").is_err());
    }

    #[test]
    fn given_an_issued_token_when_verified_then_claims_round_trip() {
        let claims = Claims::visitor("v:1", conversation(), NOW);
        let token = signer().issue(&claims);
        assert_eq!(signer().verify(&token, NOW).unwrap(), claims);
        assert_eq!(claims.exp, NOW / 1000 + VISITOR_TOKEN_TTL_SECS);
    }

    #[test]
    fn given_an_expired_token_when_verified_then_unauthorized() {
        let token = signer().issue(&Claims::agent("alice", NOW));
        let later = NOW + AGENT_TOKEN_TTL_SECS * 1000;
        assert!(signer().verify(&token, later - 1).is_ok());
        let err = signer().verify(&token, later).unwrap_err();
        assert!(matches!(err, Error::Unauthorized(ref m) if m == "token expired"));
    }

    #[test]
    fn given_a_token_from_another_key_when_verified_then_unauthorized() {
        let other = TokenSigner::new("another-secret-of-16+").unwrap();
        let token = other.issue(&Claims::agent("alice", NOW));
        assert!(matches!(
            signer().verify(&token, NOW),
            Err(Error::Unauthorized(_))
        ));
    }

    #[test]
    fn given_tampered_claims_when_verified_then_unauthorized() {
        let token = signer().issue(&Claims::agent("alice", NOW));
        let (_, mac) = token.split_once('.').unwrap();
        let forged_claims = Claims::agent("mallory", NOW);
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged_claims).unwrap());
        let forged = format!("{forged_payload}.{mac}");
        assert!(matches!(
            signer().verify(&forged, NOW),
            Err(Error::Unauthorized(_))
        ));
    }

    #[test]
    fn given_malformed_tokens_when_verified_then_unauthorized_without_panics() {
        let long = "a".repeat(MAX_TOKEN_LEN + 1);
        for token in [
            "", ".", "abc", "abc.", ".abc", "a.b.c", "!!!.???", "e30.e30", &long,
        ] {
            assert!(
                matches!(signer().verify(token, NOW), Err(Error::Unauthorized(_))),
                "{token:?}"
            );
        }
    }

    #[test]
    fn given_a_signed_payload_that_is_not_claims_when_verified_then_unauthorized() {
        let s = signer();
        let payload = URL_SAFE_NO_PAD.encode(br#"{"kind":"root","sub":"x","exp":9999999999}"#);
        let mac = URL_SAFE_NO_PAD.encode(s.mac(payload.as_bytes()).finalize().into_bytes());
        assert!(matches!(
            s.verify(&format!("{payload}.{mac}"), NOW),
            Err(Error::Unauthorized(_))
        ));
    }

    #[test]
    fn given_a_signer_when_debug_printed_then_the_key_is_hidden() {
        assert!(!format!("{:?}", signer()).contains("0123"));
    }
}
