//! The visitor behind a request, from its bearer token.

use super::WebState;
use crate::Error;
use crate::auth::TokenKind;
use crate::domain::{ConversationId, now_millis};
use crate::http::{ApiError, bearer_token};
use axum::extract::FromRequestParts;
use http::request::Parts;
use std::sync::Arc;

/// A verified visitor token: the visitor may read and write this one conversation.
#[derive(Debug, Clone)]
pub(super) struct Visitor {
    pub conversation: ConversationId,
}

impl FromRequestParts<Arc<WebState>> for Visitor {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<WebState>,
    ) -> Result<Self, ApiError> {
        let token = bearer_token(&parts.headers)?;
        let claims = state.tokens.verify(token, now_millis())?;
        match (claims.kind, claims.conv) {
            (TokenKind::Visitor, Some(conversation)) => Ok(Self { conversation }),
            _ => Err(Error::Unauthorized("not a visitor token".into()).into()),
        }
    }
}
