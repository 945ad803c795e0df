//! Replies to SMS customers through Amazon SNS `Publish` with `PhoneNumber` (the classic
//! SNS SMS API, delivered by AWS End User Messaging): the way back for customers whose SMS
//! came in through SNS ([`crate::channels::sms::handle_sns_event`], `POST /sms/sns`). Feature
//! `aws-senders`.

use crate::channels::sms::phone::scrub;
use crate::channels::sms::{OptOuts, PhoneNumber, SmsConfig, outgoing, segments};
use crate::domain::OutboundMessage;
use crate::ports::IdempotencyGuard;
use crate::ports::{ChannelSender, SendError};
use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_sns::Client;
use aws_sdk_sns::config::http::HttpResponse;
use aws_sdk_sns::config::retry::RetryConfig;
use aws_sdk_sns::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sns::types::MessageAttributeValue;
use std::sync::Arc;
use std::time::Duration;

/// Longest text one `Publish` takes; SNS splits it into SMS parts itself.
pub const MAX_PUBLISH_CHARS: usize = 1600;

/// How long a sent part is remembered, so a redelivered reply does not send it twice.
const SENT_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// Message attribute: `Promotional` or `Transactional` (higher reliability, sent to opted
/// in customers at any hour: what a service reply is).
const SMS_TYPE: &str = "AWS.SNS.SMS.SMSType";
/// Message attribute: the number the SMS comes from.
const ORIGINATION_NUMBER: &str = "AWS.MM.SMS.OriginationNumber";
/// Message attribute: the alphanumeric sender id.
const SENDER_ID: &str = "AWS.SNS.SMS.SenderID";

/// Delivers SMS replies through SNS `Publish` to a phone number, as transactional SMS,
/// from the configured origination number or sender id. Texts over
/// [`MAX_PUBLISH_CHARS`] go as several publishes, each remembered once sent.
///
/// Refuses numbers that opted out: those in kefu's register ([`OptOuts`]) and those SNS
/// itself lists as opted out (`CheckIfPhoneNumberIsOptedOut`, e.g. a STOP sent to the
/// carrier), which are then added to the register.
///
/// | SNS answers | Outcome |
/// |---|---|
/// | throttling, HTTP 429 or 5xx, timeout, no connection, unreadable answer | [`SendError::Transient`] |
/// | `InvalidParameter`, `AuthorizationError`, other 4xx; the number opted out | [`SendError::Permanent`] |
///
/// Needs `sns:Publish` and `sns:CheckIfPhoneNumberIsOptedOut`.
#[derive(Clone)]
pub struct SnsSmsSender {
    client: Client,
    default_country: String,
    guard: Arc<dyn IdempotencyGuard>,
    opt_outs: OptOuts,
    origination_number: Option<String>,
    sender_id: Option<String>,
}

impl std::fmt::Debug for SnsSmsSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnsSmsSender")
            .field("default_country", &self.default_country)
            .field("sender_id", &self.sender_id)
            .finish_non_exhaustive()
    }
}

impl SnsSmsSender {
    /// A sender over a client for `config` (region, credentials, endpoint override), from
    /// the origination number and sender id in `sms`, with the opt-out register and sent
    /// parts on `guard`. The SDK's own retries are off: the dispatcher retries transient
    /// failures at the channel's rate, so one attempt here is one in its count.
    pub fn new(config: &SdkConfig, sms: &SmsConfig, guard: Arc<dyn IdempotencyGuard>) -> Self {
        let sns_config = aws_sdk_sns::config::Builder::from(config)
            .retry_config(RetryConfig::disabled())
            .build();
        Self::from_client(Client::from_conf(sns_config), &sms.default_country, guard)
            .with_origination_number(sms.sns_origination_number.clone())
            .with_sender_id(sms.sns_sender_id.clone())
    }

    /// A sender over `client`, used as it is; numbers without a country code get
    /// `default_country` (digits, e.g. `86`).
    pub fn from_client(
        client: Client,
        default_country: &str,
        guard: Arc<dyn IdempotencyGuard>,
    ) -> Self {
        Self {
            client,
            default_country: default_country.trim_start_matches('+').to_owned(),
            opt_outs: OptOuts::new(guard.clone()),
            guard,
            origination_number: None,
            sender_id: None,
        }
    }

    /// Sends from `number` (`AWS.MM.SMS.OriginationNumber`); `None` lets AWS choose.
    pub fn with_origination_number(mut self, number: Option<String>) -> Self {
        self.origination_number = number.filter(|n| !n.trim().is_empty());
        self
    }

    /// Shows `sender_id` as the sender where carriers allow it (`AWS.SNS.SMS.SenderID`).
    pub fn with_sender_id(mut self, sender_id: Option<String>) -> Self {
        self.sender_id = sender_id.filter(|id| !id.trim().is_empty());
        self
    }

    /// The message attributes every publish carries.
    fn attributes(&self) -> Result<Vec<(&'static str, MessageAttributeValue)>, SendError> {
        let mut attributes = vec![(SMS_TYPE, "Transactional")];
        if let Some(number) = &self.origination_number {
            attributes.push((ORIGINATION_NUMBER, number));
        }
        if let Some(id) = &self.sender_id {
            attributes.push((SENDER_ID, id));
        }
        attributes
            .into_iter()
            .map(|(name, value)| {
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(value)
                    .build()
                    .map(|value| (name, value))
                    .map_err(|e| SendError::Permanent(format!("building the SNS request: {e}")))
            })
            .collect()
    }

    /// Whether SNS lists `to` as opted out; if so, kefu's register learns it too.
    async fn opted_out_at_sns(&self, to: &PhoneNumber) -> Result<bool, SendError> {
        let answer = self
            .client
            .check_if_phone_number_is_opted_out()
            .phone_number(to.as_str())
            .send()
            .await
            .map_err(|e| classify("CheckIfPhoneNumberIsOptedOut", e))?;
        let opted_out = answer.is_opted_out();
        if opted_out && let Err(e) = self.opt_outs.opt_out(to).await {
            tracing::warn!(error = %crate::cause_chain(&e), "recording an opt-out reported by SNS");
        }
        Ok(opted_out)
    }

    /// Publishes one text; returns SNS's message id.
    async fn publish(&self, to: &PhoneNumber, text: &str) -> Result<String, SendError> {
        let mut request = self
            .client
            .publish()
            .phone_number(to.as_str())
            .message(text);
        for (name, value) in self.attributes()? {
            request = request.message_attributes(name, value);
        }
        let answer = request.send().await.map_err(|e| classify("Publish", e))?;
        Ok(answer.message_id().unwrap_or_default().to_owned())
    }
}

#[async_trait]
impl ChannelSender for SnsSmsSender {
    #[tracing::instrument(skip_all, fields(message_id = %message.message_id))]
    async fn send(&self, message: &OutboundMessage) -> Result<(), SendError> {
        let (to, text) =
            outgoing(message, "SNS SMS", &self.default_country, &self.opt_outs).await?;
        let parts = segments::split_utf16(&text, MAX_PUBLISH_CHARS);
        let mut checked = false;
        for (n, part) in parts.iter().enumerate() {
            let sent_key = format!("sms-out:sns:{}:{n}", message.message_id);
            if self
                .guard
                .get(&sent_key)
                .await
                .map_err(SendError::backend)?
                .is_some()
            {
                continue;
            }
            if !checked {
                if self.opted_out_at_sns(&to).await? {
                    return Err(SendError::Permanent(
                        "the customer opted out (listed by SNS)".into(),
                    ));
                }
                checked = true;
            }
            let sns_id = self.publish(&to, part).await?;
            if let Err(e) = self.guard.put_if_absent(&sent_key, &sns_id, SENT_TTL).await {
                // Sent but not remembered: a redelivery would send this part again,
                // which beats failing a delivered message.
                tracing::warn!(error = %crate::cause_chain(&e), "remembering a sent SMS part");
            }
        }
        tracing::info!(to = %to, parts = parts.len(), "SMS sent through SNS");
        Ok(())
    }
}

/// Transient or permanent (see [`SnsSmsSender`]), with a reason agents can read and
/// phone numbers masked.
fn classify<E>(action: &str, error: SdkError<E, HttpResponse>) -> SendError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let status = error.raw_response().map(|raw| raw.status().as_u16());
    match error {
        SdkError::ServiceError(context) => {
            let error = context.into_err();
            let code = error.code();
            let reason = scrub(&format!(
                "SNS {action} {} ({}): {}",
                code.unwrap_or("error"),
                status.map_or("no status".to_owned(), |s| s.to_string()),
                error.message().unwrap_or("no message")
            ));
            if is_transient(status, code) {
                SendError::Transient(reason)
            } else {
                SendError::Permanent(reason)
            }
        }
        // Timeouts, connection failures, unreadable answers, credentials not loaded: a
        // retry may work, and the dead-letter queue keeps what never does.
        error => SendError::Transient(scrub(&format!(
            "SNS {action} failed: {}",
            DisplayErrorContext(&error)
        ))),
    }
}

/// Whether an SNS error answer is worth retrying: throttling and server errors are.
fn is_transient(status: Option<u16>, code: Option<&str>) -> bool {
    let throttled = code.is_some_and(|c| c.contains("Throttl") || c == "TooManyRequests");
    let server = code.is_some_and(|c| matches!(c, "InternalError" | "ServiceUnavailable"));
    throttled || server || status.is_none_or(|s| s == 429 || s >= 500)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_sns_error_answers_when_classified_then_throttling_and_5xx_are_transient() {
        assert!(is_transient(Some(500), Some("InternalError")));
        assert!(is_transient(Some(503), None));
        assert!(is_transient(Some(429), Some("Throttled")));
        assert!(is_transient(Some(400), Some("Throttling")));
        assert!(is_transient(Some(400), Some("KMSThrottling")));
        assert!(is_transient(None, None));
        assert!(!is_transient(Some(400), Some("InvalidParameter")));
        assert!(!is_transient(Some(400), Some("InvalidParameterValue")));
        assert!(!is_transient(Some(403), Some("AuthorizationError")));
        assert!(!is_transient(Some(404), Some("NotFound")));
    }

    /// Remembers nothing: these tests never send.
    struct Forgetful;

    #[async_trait]
    impl IdempotencyGuard for Forgetful {
        async fn put_if_absent(
            &self,
            _key: &str,
            _value: &str,
            _ttl: Duration,
        ) -> crate::Result<Option<String>> {
            Ok(None)
        }

        async fn get(&self, _key: &str) -> crate::Result<Option<String>> {
            Ok(None)
        }
    }

    fn sender(sms: &SmsConfig) -> SnsSmsSender {
        let config = SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        SnsSmsSender::new(&config, sms, Arc::new(Forgetful))
    }

    fn names(sender: &SnsSmsSender) -> Vec<(String, String)> {
        sender
            .attributes()
            .unwrap()
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value.string_value().unwrap().to_owned()))
            .collect()
    }

    #[test]
    fn given_an_origination_number_when_publishing_then_it_is_an_attribute_beside_the_type() {
        let mut sms = SmsConfig::new("https://sms.example.com");
        assert_eq!(
            names(&sender(&sms)),
            [(SMS_TYPE.to_owned(), "Transactional".to_owned())]
        );
        sms.sns_origination_number = Some("+12065550100".into());
        sms.sns_sender_id = Some(" ".into());
        assert_eq!(
            names(&sender(&sms)),
            [
                (SMS_TYPE.to_owned(), "Transactional".to_owned()),
                (ORIGINATION_NUMBER.to_owned(), "+12065550100".to_owned()),
            ]
        );
    }
}
