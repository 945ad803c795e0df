//! The email-webhook Lambda: SES receives the support mailbox's mail, a receipt rule's S3
//! action stores the raw MIME at `<KEFU_EMAIL_PREFIX>inbound/<messageId>`, and its Lambda
//! action (invocation type `Event`) invokes this function with the SES receipt event.
//! Each mail is read from S3 and handed to [`kefu::channels::email::EmailIngress`].
//!
//! A failure (the raw mail not in S3 yet, a backend error) fails the invocation, so
//! Lambda retries the asynchronous event; the ingress is idempotent, so a retry queues
//! nothing twice.

use kefu::channels::email::{EmailConfig, EmailIngress, Received, SesEvent, handle_ses_event};
use kefu::ports::{BlobStore, IdempotencyGuard, MessageQueue};
use serde_json::{Value, json};
use std::sync::Arc;

/// What one invocation needs, built once at cold start.
pub struct Handler {
    ingress: EmailIngress,
    mail: Arc<dyn BlobStore>,
}

impl std::fmt::Debug for Handler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handler")
            .field("ingress", &self.ingress)
            .finish_non_exhaustive()
    }
}

impl Handler {
    /// A handler over the inbound queue, the idempotency guard and `mail`, the blob store
    /// rooted at the email prefix (raw mail is read from it, attachments written to it).
    pub fn new(
        inbound: Arc<dyn MessageQueue>,
        guard: Arc<dyn IdempotencyGuard>,
        mail: Arc<dyn BlobStore>,
        config: EmailConfig,
    ) -> Self {
        Self {
            ingress: EmailIngress::new(inbound, mail.clone(), guard, config),
            mail,
        }
    }

    /// Handles one SES receipt event. Answers `{"disposition": "CONTINUE", "queued":
    /// [message ids], "dropped": [reasons]}` (SES reads only `disposition`, and only for
    /// synchronous invocations).
    pub async fn handle(&self, payload: Value) -> Result<Value, lambda_runtime::Error> {
        let event: SesEvent = serde_json::from_value(payload).map_err(|e| {
            tracing::error!(error = %e, "not an SES receipt event");
            e
        })?;
        let results = match handle_ses_event(&self.ingress, self.mail.as_ref(), &event).await {
            Ok(results) => results,
            Err(e) => {
                // Lambda retries the event; the ingress is idempotent.
                tracing::error!(error = %kefu::cause_chain(&e), "SES event failed");
                return Err(e.into());
            }
        };
        let mut queued = Vec::new();
        let mut dropped = Vec::new();
        for result in results {
            match result {
                Received::Queued(envelope) => queued.push(envelope.message_id.to_string()),
                Received::Dropped(reason) => dropped.push(reason),
            }
        }
        Ok(json!({"disposition": "CONTINUE", "queued": queued, "dropped": dropped}))
    }
}

/// The handler from the environment (`KEFU_EMAIL_ADDRESS`, required here, and
/// `KEFU_EMAIL_NAME`; see [`EmailConfig::from_env`]) and the adapters.
pub fn handler_from_env(
    inbound: Arc<dyn MessageQueue>,
    guard: Arc<dyn IdempotencyGuard>,
    mail: Arc<dyn BlobStore>,
) -> anyhow::Result<Handler> {
    let config = EmailConfig::from_env()?
        .ok_or_else(|| anyhow::anyhow!("KEFU_EMAIL_ADDRESS (the support mailbox) is required"))?;
    Ok(Handler::new(inbound, guard, mail, config))
}

/// The key prefix of the email blobs (`KEFU_EMAIL_PREFIX`), ending in `/` so that `email`
/// and `email/` name the same folder; empty for the bucket's root.
pub fn email_prefix(raw: &str) -> String {
    let prefix = raw.trim().trim_start_matches('/');
    if prefix.is_empty() || prefix.ends_with('/') {
        prefix.to_owned()
    } else {
        format!("{prefix}/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kefu::adapters::embedded::{EmbeddedStore, INBOUND};
    use kefu::channels::email::raw_key;
    use kefu::domain::InboundMessage;
    use std::time::Duration;

    const EVENT: &str = include_str!("../../../infra/events/ses-receipt.json");
    const MAIL: &[u8] =
        include_bytes!("../../../shared/src/channels/email/testdata/pdf_attachment.eml");
    const SES_ID: &str = "o3vrnil0e2ic28trm7dfhrc2v0cnbeccl4nbp0g1";

    struct Fixture {
        _dir: tempfile::TempDir,
        store: EmbeddedStore,
        handler: Handler,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let handler = Handler::new(
            Arc::new(store.queue(INBOUND)),
            Arc::new(store.idempotency()),
            Arc::new(store.blobs()),
            EmailConfig::new("support@shop.example", None).unwrap(),
        );
        Fixture {
            _dir: dir,
            store,
            handler,
        }
    }

    impl Fixture {
        async fn store_raw_mail(&self) {
            self.store
                .blobs()
                .put(&raw_key(SES_ID), MAIL.to_vec())
                .await
                .unwrap();
        }

        async fn queued(&self) -> Vec<InboundMessage> {
            self.store
                .queue(INBOUND)
                .receive(10, Duration::from_secs(30), Duration::ZERO)
                .await
                .unwrap()
                .iter()
                .map(|message| InboundMessage::from_json(&message.body).unwrap())
                .collect()
        }
    }

    fn event() -> Value {
        serde_json::from_str(EVENT).unwrap()
    }

    #[tokio::test]
    async fn given_an_ses_event_and_its_raw_mail_when_handled_then_the_mail_is_queued() {
        let f = fixture();
        f.store_raw_mail().await;
        let answer = f.handler.handle(event()).await.unwrap();
        let queued = f.queued().await;
        let [envelope] = queued.as_slice() else {
            panic!("expected one queued message, got {queued:?}");
        };
        assert_eq!(
            answer,
            json!({"disposition": "CONTINUE", "queued": [envelope.message_id], "dropped": []})
        );
        assert_eq!(envelope.customer.address, "orders@acme-retail.example");
        assert!(
            envelope
                .text
                .starts_with("Invoice for order 8902 is wrong\nThe attached invoice"),
            "{}",
            envelope.text
        );
        assert_eq!(envelope.received_at, 1_736_514_237_412);
        let attachments = f
            .store
            .blobs()
            .list(&format!("attachments/{}/", envelope.message_id))
            .await
            .unwrap();
        assert_eq!(attachments.len(), 1);
    }

    #[tokio::test]
    async fn given_the_same_event_twice_when_handled_then_one_message_is_queued() {
        let f = fixture();
        f.store_raw_mail().await;
        let first = f.handler.handle(event()).await.unwrap();
        let again = f.handler.handle(event()).await.unwrap();
        assert_eq!(first, again);
        assert_eq!(f.queued().await.len(), 1);
    }

    #[tokio::test]
    async fn given_an_event_whose_raw_mail_is_missing_when_handled_then_it_fails_for_a_retry() {
        let f = fixture();
        let error = f.handler.handle(event()).await.unwrap_err();
        assert!(error.to_string().contains(&raw_key(SES_ID)), "{error}");
        assert!(f.queued().await.is_empty());
    }

    #[tokio::test]
    async fn given_a_spam_verdict_when_handled_then_the_mail_is_dropped_not_queued() {
        let f = fixture();
        f.store_raw_mail().await;
        let mut event = event();
        event["Records"][0]["ses"]["receipt"]["spamVerdict"]["status"] = json!("FAIL");
        let answer = f.handler.handle(event).await.unwrap();
        assert_eq!(answer["dropped"], json!(["spam"]));
        assert!(f.queued().await.is_empty());
    }

    #[tokio::test]
    async fn given_a_dmarc_fail_verdict_when_handled_then_the_mail_is_dropped_unauthenticated() {
        let f = fixture();
        f.store_raw_mail().await;
        let mut event = event();
        event["Records"][0]["ses"]["receipt"]["dmarcVerdict"]["status"] = json!("FAIL");
        let answer = f.handler.handle(event).await.unwrap();
        assert_eq!(answer["dropped"], json!(["unauthenticated"]));
        assert!(f.queued().await.is_empty());
    }

    #[tokio::test]
    async fn given_other_events_when_handled_then_they_are_refused() {
        let f = fixture();
        f.store_raw_mail().await;
        let mut sns = event();
        sns["Records"][0]["eventSource"] = json!("aws:sns");
        assert!(f.handler.handle(sns).await.is_err());
        assert!(f.handler.handle(json!({"hello": "world"})).await.is_err());
        assert!(f.queued().await.is_empty());
    }

    #[test]
    fn given_prefixes_when_normalised_then_they_end_in_a_slash() {
        assert_eq!(email_prefix("email/"), "email/");
        assert_eq!(email_prefix("email"), "email/");
        assert_eq!(email_prefix(" /mail/in "), "mail/in/");
        assert_eq!(email_prefix(""), "");
    }
}
