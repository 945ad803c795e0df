//! The event SES invokes a Lambda function with when a receipt rule's Lambda action runs
//! (the fields used here; SES adds fields over time, so unknown ones are ignored, but the
//! ones used must be present), and its handling.
//!
//! SES's event carries the headers but not the body: the receipt rule's S3 action, run
//! first, stores the raw mail at `<email prefix>inbound/<messageId>` ([`super::raw_key`]),
//! and the function reads it from there. SES → Lambda is authenticated by IAM, so the
//! event needs no signature check.

use super::{Delivery, EmailIngress, Received, raw_key};
use crate::ports::BlobStore;
use crate::{Error, Result};
use chrono::{DateTime, Utc};
use serde::Deserialize;

/// The `eventSource` of SES records.
const EVENT_SOURCE: &str = "aws:ses";

/// Longest SES message id accepted (they are about 40–60 characters).
const MAX_MESSAGE_ID: usize = 200;

/// An SES receipt event: `{"Records": [{"eventSource": "aws:ses", "ses": {…}}]}`.
#[derive(Debug, Clone, Deserialize)]
pub struct SesEvent {
    /// One record per received mail (in practice one).
    #[serde(rename = "Records")]
    pub records: Vec<SesRecord>,
}

/// One record of an [`SesEvent`].
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SesRecord {
    /// Always `aws:ses`.
    pub event_source: String,
    /// The mail and what SES found receiving it.
    pub ses: SesMessage,
}

/// The `ses` object of an [`SesRecord`].
#[derive(Debug, Clone, Deserialize)]
pub struct SesMessage {
    /// The mail.
    pub mail: SesMail,
    /// How it was received.
    pub receipt: SesReceipt,
}

/// The `mail` object: the received mail's identity.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SesMail {
    /// SES's id of the mail; also the S3 object name its S3 action wrote.
    pub message_id: String,
    /// When SES received it.
    pub timestamp: DateTime<Utc>,
}

/// The `receipt` object: recipients and verdicts.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SesReceipt {
    /// The envelope recipients this receipt rule matched.
    pub recipients: Vec<String>,
    /// The spam scan; absent when the receipt rule does not scan.
    #[serde(default)]
    pub spam_verdict: Option<SesVerdict>,
    /// The virus scan; absent when the receipt rule does not scan.
    #[serde(default)]
    pub virus_verdict: Option<SesVerdict>,
    /// Whether the sending host may send for the envelope sender's domain (SPF).
    #[serde(default)]
    pub spf_verdict: Option<SesVerdict>,
    /// Whether a DKIM signature of the mail verified.
    #[serde(default)]
    pub dkim_verdict: Option<SesVerdict>,
    /// Whether the `From` domain's DMARC policy is met (SPF or DKIM passing and aligned
    /// with `From`); `GRAY` when the domain publishes no DMARC record.
    #[serde(default)]
    pub dmarc_verdict: Option<SesVerdict>,
}

/// A verdict: `{"status": "PASS" | "FAIL" | "GRAY" | "PROCESSING_FAILED"}`.
#[derive(Debug, Clone, Deserialize)]
pub struct SesVerdict {
    /// The verdict.
    pub status: String,
}

impl SesRecord {
    /// The delivery this record describes.
    fn delivery(&self) -> Delivery {
        let receipt = &self.ses.receipt;
        let status = |verdict: &Option<SesVerdict>| verdict.as_ref().map(|v| v.status.clone());
        Delivery {
            platform_id: self.ses.mail.message_id.clone(),
            recipients: receipt.recipients.clone(),
            spam: status(&receipt.spam_verdict),
            virus: status(&receipt.virus_verdict),
            spf: status(&receipt.spf_verdict),
            dkim: status(&receipt.dkim_verdict),
            dmarc: status(&receipt.dmarc_verdict),
            received_at: self.ses.mail.timestamp.timestamp_millis(),
        }
    }
}

/// Handles an SES receipt event: for each record, reads the raw mail from `raw_mail` (the
/// email blob store, at [`raw_key`]) and hands it to `ingress`. Returns what became of each
/// record, in order.
///
/// Errors (Lambda retries the asynchronous event; the ingress is idempotent): the raw mail
/// is not in the store ([`Error::NotFound`]: the S3 action did not run, or wrote
/// elsewhere), a record is not from SES or has a message id that cannot be an object name
/// ([`Error::Invalid`]), or a backend failed.
pub async fn handle_ses_event(
    ingress: &EmailIngress,
    raw_mail: &dyn BlobStore,
    event: &SesEvent,
) -> Result<Vec<Received>> {
    let mut results = Vec::with_capacity(event.records.len());
    for record in &event.records {
        if record.event_source != EVENT_SOURCE {
            return Err(Error::Invalid(format!(
                "record from {:?}, not {EVENT_SOURCE}",
                record.event_source
            )));
        }
        let id = &record.ses.mail.message_id;
        check_message_id(id)?;
        let key = raw_key(id);
        let raw = raw_mail
            .get(&key)
            .await?
            .ok_or_else(|| Error::NotFound(format!("raw mail {key} is not in the mail store")))?;
        results.push(ingress.receive(raw, &record.delivery()).await?);
    }
    Ok(results)
}

/// SES message ids are letters, digits, `-` and `_`; anything else could leave the `inbound/`
/// prefix or name another object.
fn check_message_id(id: &str) -> Result<()> {
    let valid = !id.is_empty()
        && id.len() <= MAX_MESSAGE_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "SES messageId {:?} is malformed",
            id.chars().take(40).collect::<String>()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> serde_json::Value {
        serde_json::from_str(include_str!("../../../../infra/events/ses-receipt.json")).unwrap()
    }

    #[test]
    fn given_the_ses_lambda_action_event_when_parsed_then_the_delivery_is_read() {
        let event: SesEvent = serde_json::from_value(fixture()).unwrap();
        let [record] = event.records.as_slice() else {
            panic!("one record");
        };
        let delivery = record.delivery();
        assert_eq!(
            delivery.platform_id,
            "o3vrnil0e2ic28trm7dfhrc2v0cnbeccl4nbp0g1"
        );
        assert_eq!(delivery.recipients, ["support@shop.example"]);
        assert_eq!(delivery.spam.as_deref(), Some("PASS"));
        assert_eq!(delivery.virus.as_deref(), Some("PASS"));
        let authentication = [&delivery.spf, &delivery.dkim, &delivery.dmarc];
        assert_eq!(authentication.map(Option::as_deref), [Some("PASS"); 3]);
        assert_eq!(delivery.received_at, 1_736_514_237_412);
        assert_eq!(
            raw_key(&delivery.platform_id),
            "inbound/o3vrnil0e2ic28trm7dfhrc2v0cnbeccl4nbp0g1"
        );
    }

    #[test]
    fn given_an_event_without_verdicts_when_parsed_then_they_are_none() {
        let mut event = fixture();
        let receipt = event["Records"][0]["ses"]["receipt"]
            .as_object_mut()
            .unwrap();
        for verdict in [
            "spamVerdict",
            "virusVerdict",
            "spfVerdict",
            "dkimVerdict",
            "dmarcVerdict",
        ] {
            receipt.remove(verdict);
        }
        let event: SesEvent = serde_json::from_value(event).unwrap();
        let delivery = event.records[0].delivery();
        assert_eq!((delivery.spam, delivery.virus), (None, None));
        assert_eq!(
            (delivery.spf, delivery.dkim, delivery.dmarc),
            (None, None, None)
        );
    }

    #[test]
    fn given_an_event_missing_a_used_field_when_parsed_then_it_is_refused() {
        for (object, field) in [
            ("mail", "messageId"),
            ("mail", "timestamp"),
            ("receipt", "recipients"),
        ] {
            let mut event = fixture();
            event["Records"][0]["ses"][object]
                .as_object_mut()
                .unwrap()
                .remove(field);
            assert!(
                serde_json::from_value::<SesEvent>(event).is_err(),
                "{object}.{field}"
            );
        }
        let mut event = fixture();
        event["Records"][0]["ses"]["receipt"]["spamVerdict"] = serde_json::json!({});
        assert!(serde_json::from_value::<SesEvent>(event).is_err());
    }

    #[test]
    fn given_message_ids_when_checked_then_only_object_names_pass() {
        assert!(check_message_id("o3vrnil0e2ic28trm7dfhrc2v0cnbeccl4nbp0g1").is_ok());
        assert!(check_message_id("EXAMPLE7c191be45-e9aedb9a-02f9-4d12").is_ok());
        for bad in ["", "../faq/index/CURRENT", "a/b", "a b", &"a".repeat(201)] {
            assert!(
                matches!(check_message_id(bad), Err(Error::Invalid(_))),
                "{bad}"
            );
        }
    }
}
