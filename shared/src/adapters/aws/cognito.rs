//! [`AccountCheck`] over Cognito: `GetUser` with the caller's own access token, which
//! Cognito refuses once the user is disabled or deleted or the token is signed out
//! (`GlobalSignOut`, `RevokeToken`); API Gateway's JWT authorizer sees none of that.

use crate::ports::AccountCheck;
use crate::{Error, Result};
use async_trait::async_trait;
use aws_sdk_cognitoidentityprovider::Client;
use aws_sdk_cognitoidentityprovider::operation::get_user::GetUserError;

/// Asks the user pool that issued a token whether it still stands.
#[derive(Debug, Clone)]
pub struct CognitoAccounts {
    client: Client,
}

impl CognitoAccounts {
    /// Checks with `client` (any region's endpoint answers for its own pools).
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl AccountCheck for CognitoAccounts {
    async fn still_active(&self, access_token: &str) -> Result<bool> {
        match self
            .client
            .get_user()
            .access_token(access_token)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(error) => match error.as_service_error() {
                Some(GetUserError::NotAuthorizedException(_))
                | Some(GetUserError::UserNotFoundException(_))
                | Some(GetUserError::UserNotConfirmedException(_))
                | Some(GetUserError::PasswordResetRequiredException(_)) => Ok(false),
                _ => Err(Error::backend("Cognito GetUser", error)),
            },
        }
    }
}
