//! AWS End User Messaging two-way SMS, published to an SNS topic: the SMS itself (the
//! topic's `Message`, a JSON document) and the Lambda event SNS invokes a subscribed
//! function with. SNS → Lambda is authenticated by IAM, so the event needs no signature
//! check; the HTTPS subscription does (see `sns_https`).
//!
//! Keywords are recorded here; their replies come from End User Messaging's own keyword
//! responses configured on the number, since SNS gives no way to answer in-line.

use super::SmsState;
use super::ingress::{Outcome, Provider, Received, accept};
use super::phone::PhoneNumber;
use crate::domain::{Millis, now_millis};
use crate::{Error, Result};
use serde::Deserialize;

/// The SMS End User Messaging publishes (the SNS `Message`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct InboundSms {
    /// The customer.
    origination_number: String,
    /// The keyword End User Messaging matched, if any (we match our own).
    #[allow(dead_code)] // documented shape; keywords are matched on the body
    #[serde(default)]
    message_keyword: Option<String>,
    message_body: String,
    inbound_message_id: String,
}

/// Parses an SNS `Message` into a received SMS.
pub(super) fn parse_message(
    message: &str,
    default_country: &str,
    received_at: Millis,
) -> Result<Received> {
    let sms: InboundSms = serde_json::from_str(message)
        .map_err(|e| Error::Invalid(format!("not an End User Messaging SMS: {e}")))?;
    let id = sms.inbound_message_id.trim();
    if id.is_empty()
        || id.len() > 128
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(Error::Invalid("inboundMessageId is malformed".into()));
    }
    Ok(Received {
        provider: Provider::Sns,
        from: PhoneNumber::parse(&sms.origination_number, default_country)
            .map_err(|e| Error::Invalid(format!("originationNumber: {e}")))?,
        platform_id: id.to_owned(),
        text: sms.message_body.trim().to_owned(),
        received_at,
    })
}

/// SNS timestamps (`2024-05-01T00:00:00.000Z`) in [`Millis`]; now when unreadable.
pub(super) fn timestamp(text: &str) -> Millis {
    chrono::DateTime::parse_from_rfc3339(text)
        .map_or_else(|_| now_millis(), |t| t.timestamp_millis())
}

/// The event SNS invokes a subscribed Lambda function with (the fields used here).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SnsLambdaEvent {
    /// One record per SNS message (in practice one).
    #[serde(rename = "Records")]
    pub records: Vec<SnsLambdaRecord>,
}

/// One record of an [`SnsLambdaEvent`].
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SnsLambdaRecord {
    /// The SNS message.
    #[serde(rename = "Sns")]
    pub sns: SnsLambdaMessage,
}

/// The SNS message in an [`SnsLambdaRecord`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SnsLambdaMessage {
    /// SNS's id of the message.
    #[serde(default)]
    pub message_id: String,
    /// The topic it was published to.
    #[serde(default)]
    pub topic_arn: String,
    /// The published message: here, the SMS as JSON.
    pub message: String,
    /// When SNS published it (RFC 3339).
    #[serde(default)]
    pub timestamp: String,
}

/// Handles an SNS Lambda event: each record's SMS is checked and queued like a webhook's.
/// Records from another topic than `KEFU_SNS_TOPIC_ARN` (when set) and malformed records
/// are logged and dropped, since a retry cannot fix them; `Err` only for backend failures,
/// so Lambda retries the event (ingress is idempotent by `inboundMessageId`).
pub async fn handle_sns_event(state: &SmsState, event: &SnsLambdaEvent) -> Result<()> {
    for record in &event.records {
        let sns = &record.sns;
        if let Some(config) = &state.config.sns
            && sns.topic_arn != config.topic_arn
        {
            tracing::warn!(message_id = %sns.message_id, "SNS record from an unexpected topic; dropped");
            continue;
        }
        let received = match parse_message(
            &sns.message,
            &state.config.default_country,
            timestamp(&sns.timestamp),
        ) {
            Ok(received) => received,
            Err(e) => {
                tracing::error!(message_id = %sns.message_id, error = %e, "malformed SMS from SNS; dropped");
                continue;
            }
        };
        if let Outcome::Reply(_) = accept(state, received).await? {
            tracing::info!("SMS keyword recorded; End User Messaging answers it");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_an_end_user_messaging_sms_when_parsed_then_received() {
        let message = serde_json::json!({
            "originationNumber": "+14255550182",
            "destinationNumber": "+12125550101",
            "messageKeyword": "JOIN",
            "messageBody": " Where is my order? ",
            "inboundMessageId": "cae173d2-66b9-564c-8309-21f858e9fb84",
            "previousPublishedMessageId": "wJ0ZW1vMz7ZzMRXvMV3smC"
        })
        .to_string();
        let received = parse_message(&message, "86", 7).unwrap();
        assert_eq!(received.provider, Provider::Sns);
        assert_eq!(received.from.as_str(), "+14255550182");
        assert_eq!(received.text, "Where is my order?");
        assert_eq!(received.platform_id, "cae173d2-66b9-564c-8309-21f858e9fb84");
        assert_eq!(received.received_at, 7);
    }

    #[test]
    fn given_malformed_sms_when_parsed_then_invalid() {
        for message in [
            "not json",
            r#"{"originationNumber":"+14255550182","messageBody":"x"}"#,
            r#"{"originationNumber":"+14255550182","messageBody":"x","inboundMessageId":"a b"}"#,
            r#"{"originationNumber":"abc","messageBody":"x","inboundMessageId":"id1"}"#,
        ] {
            assert!(
                matches!(parse_message(message, "86", 0), Err(Error::Invalid(_))),
                "{message}"
            );
        }
    }

    #[test]
    fn given_sns_timestamps_when_read_then_millis() {
        assert_eq!(timestamp("2024-05-01T00:00:00.000Z"), 1_714_521_600_000);
        assert!(timestamp("garbage") > 1_714_521_600_000);
    }
}
