//! `POST /v1/web/sessions`: open a conversation for a visitor.

use super::WebState;
use crate::Error;
use crate::auth::{Claims, SignedIdentity};
use crate::domain::{Channel, Conversation, ConversationId, ConversationKey, Customer, now_millis};
use crate::http::{ApiError, Json};
use axum::extract::State;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tracing::instrument;

/// The optional request body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateSession {
    /// A shop-signed identity of a signed-in customer.
    #[serde(default)]
    identity: Option<SignedIdentity>,
}

#[derive(Debug, Serialize)]
pub(super) struct SessionCreated {
    conversation_id: ConversationId,
    visitor_token: String,
}

/// Anonymous visitors get a fresh conversation (`v:<uuid>`); a customer the shop vouched
/// for gets the conversation keyed by their customer id (`u:<id>`), created on first use
/// and resumed afterwards, on any device.
#[instrument(skip_all, fields(conversation))]
pub(super) async fn create(
    State(state): State<Arc<WebState>>,
    body: Option<Json<CreateSession>>,
) -> Result<(StatusCode, axum::Json<SessionCreated>), ApiError> {
    let now = now_millis();
    let identity = body.and_then(|Json(body)| body.identity);
    let verified = identity.is_some();
    let customer = match identity {
        None => Customer {
            address: format!("v:{}", uuid::Uuid::new_v4().simple()),
            name: None,
            verified_id: None,
        },
        Some(identity) => {
            let secret = state.shop_identity_secret.as_ref().ok_or_else(|| {
                Error::Invalid("signed customer identities are not enabled for this shop".into())
            })?;
            let customer = secret.verify(&identity, now / 1000)?;
            Customer {
                address: format!("u:{}", customer.customer_id),
                name: customer.name,
                verified_id: Some(customer.customer_id),
            }
        }
    };
    let key = ConversationKey::new(Channel::Web, customer.address.clone());
    let conversation = state
        .store
        .create(&Conversation::new(&key, customer, now))
        .await?;
    tracing::Span::current().record("conversation", conversation.id.as_str());
    let claims = Claims::visitor(
        conversation.customer.address.clone(),
        conversation.id.clone(),
        now,
    );
    tracing::info!(
        verified,
        resumed = conversation.created_at != now,
        "web session opened"
    );
    Ok((
        StatusCode::CREATED,
        axum::Json(SessionCreated {
            visitor_token: state.tokens.issue(&claims),
            conversation_id: conversation.id,
        }),
    ))
}
