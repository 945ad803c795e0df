//! [`SesTransport`]: email replies sent with Amazon SESv2 (feature `aws-senders`).

use crate::ports::MailTransport;
use crate::ports::SendError;
use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::config::http::HttpResponse;
use aws_sdk_sesv2::config::retry::RetryConfig;
use aws_sdk_sesv2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sesv2::operation::send_email::SendEmailError;
use aws_sdk_sesv2::primitives::Blob;
use aws_sdk_sesv2::types::{Destination, EmailContent, RawMessage};

/// Sends through Amazon SESv2 `SendEmail` with raw content (`Content.Raw`,
/// `FromEmailAddress`, `Destination.ToAddresses`, optional `ConfigurationSetName`);
/// returns SES's `MessageId` (SES sends the mail as `<MessageId>@<region>.amazonses.com`).
///
/// | SES answers | Outcome |
/// |---|---|
/// | `TooManyRequestsException`, HTTP 429 or 5xx, timeout, no connection, unreadable answer | [`SendError::Transient`] |
/// | `MessageRejected`, `MailFromDomainNotVerifiedException`, `AccountSuspendedException`, `SendingPausedException`, `BadRequestException`, other 4xx | [`SendError::Permanent`] |
#[derive(Debug, Clone)]
pub struct SesTransport {
    client: Client,
    configuration_set: Option<String>,
}

impl SesTransport {
    /// A transport over a client for `config` (region, credentials, endpoint override),
    /// sending with `configuration_set` when given. The SDK's own retries are off: the
    /// dispatcher retries transient failures, at the channel's rate, so one attempt
    /// here is one attempt in its count.
    pub fn new(config: &SdkConfig, configuration_set: Option<String>) -> Self {
        let ses_config = aws_sdk_sesv2::config::Builder::from(config)
            .retry_config(RetryConfig::disabled())
            .build();
        Self::from_client(Client::from_conf(ses_config), configuration_set)
    }

    /// A transport over `client`, used as it is.
    pub fn from_client(client: Client, configuration_set: Option<String>) -> Self {
        Self {
            client,
            configuration_set: configuration_set.filter(|name| !name.trim().is_empty()),
        }
    }
}

#[async_trait]
impl MailTransport for SesTransport {
    async fn send(&self, from: &str, to: &str, raw: Vec<u8>) -> Result<String, SendError> {
        let raw = RawMessage::builder()
            .data(Blob::new(raw))
            .build()
            .map_err(|e| SendError::Permanent(format!("building the SES request: {e}")))?;
        let answer = self
            .client
            .send_email()
            .from_email_address(from)
            .destination(Destination::builder().to_addresses(to).build())
            .content(EmailContent::builder().raw(raw).build())
            .set_configuration_set_name(self.configuration_set.clone())
            .send()
            .await
            .map_err(classify)?;
        let id = answer.message_id().unwrap_or_default().to_owned();
        if id.is_empty() {
            // Sent all the same: failing would send it again.
            tracing::warn!("SES accepted a mail without returning its MessageId");
        }
        Ok(id)
    }
}

/// Transient or permanent, with a reason agents can read (see [`SesTransport`]).
fn classify(error: SdkError<SendEmailError, HttpResponse>) -> SendError {
    let status = error.raw_response().map(|raw| raw.status().as_u16());
    match error {
        SdkError::ServiceError(context) => {
            let error = context.into_err();
            let reason = format!(
                "SES {} ({}): {}",
                error.code().unwrap_or("error"),
                status.map_or("no status".to_owned(), |s| s.to_string()),
                error.message().unwrap_or("no message")
            );
            let transient = match &error {
                SendEmailError::TooManyRequestsException(_) => true,
                SendEmailError::MessageRejected(_)
                | SendEmailError::MailFromDomainNotVerifiedException(_)
                | SendEmailError::AccountSuspendedException(_)
                | SendEmailError::SendingPausedException(_)
                | SendEmailError::BadRequestException(_)
                | SendEmailError::NotFoundException(_)
                | SendEmailError::LimitExceededException(_) => false,
                _ => status.is_none_or(|s| s == 429 || s >= 500),
            };
            if transient {
                SendError::Transient(reason)
            } else {
                SendError::Permanent(reason)
            }
        }
        SdkError::ConstructionFailure(_) => SendError::Permanent(format!(
            "building the SES request: {}",
            DisplayErrorContext(&error)
        )),
        // Timeouts, connection failures, unreadable answers.
        error => SendError::Transient(format!("SES unreachable: {}", DisplayErrorContext(&error))),
    }
}
