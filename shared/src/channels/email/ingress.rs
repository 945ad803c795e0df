//! One received mail, from raw bytes to the inbound queue: parse, filter, thread, store
//! the attachments, record the thread for the reply, enqueue.
//!
//! Every step before the enqueue is idempotent (attachments and thread records are keyed
//! by the message id), so a redelivery — Lambda retrying the SES event, SES delivering the
//! same mail twice — redoes them harmlessly and the queue's deduplication (by message id)
//! keeps one message.

use super::{Attachment, EmailConfig};
use super::{
    MailThread, ParsedMail, drop_reason, new_text, parse, referenced_ids, token_in, unauthenticated,
};
use crate::Result;
use crate::channels::{Incoming, enqueue};
use crate::domain::{Channel, ConversationId, ConversationKey, InboundMessage, Millis};
use crate::http::MAX_TEXT_CHARS;
use crate::ports::{BlobStore, IdempotencyGuard, MessageQueue};
use std::sync::Arc;

/// Where the raw mail of delivery `platform_id` lives in the email blob store: SES's S3
/// action writes `<prefix>inbound/<SES message id>`, and the local SMTP listener writes the
/// same layout.
pub fn raw_key(platform_id: &str) -> String {
    format!("inbound/{platform_id}")
}

/// Where attachment `n` (from 1) of message `message_id` is stored: agents find a
/// message's files under `attachments/<message id>/`.
fn attachment_key(message_id: &str, n: usize, file_name: Option<&str>) -> String {
    format!(
        "attachments/{message_id}/{n}-{}",
        sanitised_file_name(file_name)
    )
}

/// How one mail was delivered: the facts the mail service knows that the mail does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// SES's `messageId` (also the raw mail's object name), or the local SMTP id.
    pub platform_id: String,
    /// The envelope recipients (`RCPT TO`, SES's `receipt.recipients`): where a plus-address
    /// reply token is looked for.
    pub recipients: Vec<String>,
    /// SES's spam verdict (`PASS`, `FAIL`, `GRAY`, `PROCESSING_FAILED`), when scanned.
    pub spam: Option<String>,
    /// SES's virus verdict, when scanned.
    pub virus: Option<String>,
    /// SES's SPF verdict (`PASS`, `FAIL`, `GRAY`, `PROCESSING_FAILED`), when given.
    pub spf: Option<String>,
    /// SES's DKIM verdict, when given.
    pub dkim: Option<String>,
    /// SES's DMARC verdict for the `From` domain, when given.
    pub dmarc: Option<String>,
    /// When the mail service received the mail.
    pub received_at: Millis,
}

/// What became of a received mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// Queued for the bot (a redelivery is queued again under the same message id, which
    /// the queue drops).
    Queued(InboundMessage),
    /// Not for the bot, and why: `too_large`, `not_for_mailbox`, `unauthenticated` (see
    /// [`unauthenticated`]), `invalid`, `empty`, or a [`drop_reason`] (`virus`, `spam`,
    /// `bounce`, `auto_reply`).
    Dropped(&'static str),
}

/// How a mail relates to the sender's earlier mail, as far as its threading shows.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Threading {
    /// Nothing names a conversation: a new thread (or a client that dropped everything).
    New,
    /// The plus-address reply token names the sender's conversation.
    Token,
    /// `In-Reply-To`/`References` name one of our replies in the sender's conversation.
    Reference,
    /// A token or reference names another conversation: ignored, since conversation ids
    /// are not secret and must not let one address write into another's conversation.
    Foreign,
}

impl Threading {
    fn as_str(&self) -> &'static str {
        match self {
            Threading::New => "new",
            Threading::Token => "token",
            Threading::Reference => "reference",
            Threading::Foreign => "foreign",
        }
    }
}

/// The email ingress: see the module docs. Cheap to share behind an `Arc`.
pub struct EmailIngress {
    queue: Arc<dyn MessageQueue>,
    blobs: Arc<dyn BlobStore>,
    guard: Arc<dyn IdempotencyGuard>,
    config: EmailConfig,
}

impl std::fmt::Debug for EmailIngress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailIngress")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl EmailIngress {
    /// The largest raw mail accepted: SES refuses mail over 40 MB, so anything larger did
    /// not come through it.
    pub const MAX_RAW_BYTES: usize = 40 * 1024 * 1024;

    /// The ingress over the inbound queue, the email blob store (rooted at the email
    /// prefix: raw mail under `inbound/`, attachments written under `attachments/`), the
    /// idempotency guard (thread records) and the support mailbox.
    pub fn new(
        queue: Arc<dyn MessageQueue>,
        blobs: Arc<dyn BlobStore>,
        guard: Arc<dyn IdempotencyGuard>,
        config: EmailConfig,
    ) -> Self {
        Self {
            queue,
            blobs,
            guard,
            config,
        }
    }

    /// The support mailbox.
    pub fn config(&self) -> &EmailConfig {
        &self.config
    }

    /// Handles one received mail. Mail that cannot or must not be answered is
    /// [`Received::Dropped`] (logged as `email_dropped` with its `reason`, to be counted),
    /// never an error: retrying would not change it. `Err` only for backend failures, so
    /// the delivery is retried.
    pub async fn receive(&self, raw: Vec<u8>, delivery: &Delivery) -> Result<Received> {
        if raw.len() > Self::MAX_RAW_BYTES {
            return Ok(dropped("too_large", delivery));
        }
        if !delivery.recipients.is_empty()
            && !delivery
                .recipients
                .iter()
                .any(|r| self.config.is_mailbox(r))
        {
            // Other mail for the domain (the receipt rule covers all of it).
            return Ok(dropped("not_for_mailbox", delivery));
        }
        let (spf, dkim, dmarc) = (
            delivery.spf.as_deref(),
            delivery.dkim.as_deref(),
            delivery.dmarc.as_deref(),
        );
        if unauthenticated(spf, dkim, dmarc) {
            // Its `From` may be anyone's: it must neither write into that customer's
            // conversation nor make the shop mail them. Unread, so nothing of it is echoed.
            tracing::warn!(
                platform_id = %delivery.platform_id,
                spf, dkim, dmarc,
                "mail whose sender failed authentication"
            );
            return Ok(dropped("unauthenticated", delivery));
        }
        // Parsing costs time in proportion to the mail (up to 40 MB): on a blocking thread,
        // so that one huge mail holds up no other request on the async workers.
        let mail = match tokio::task::spawn_blocking(move || parse(&raw)).await {
            Ok(Ok(mail)) => mail,
            Ok(Err(e)) => {
                tracing::warn!(platform_id = %delivery.platform_id, error = %e, "unreadable mail");
                return Ok(dropped("invalid", delivery));
            }
            Err(e) => {
                tracing::error!(platform_id = %delivery.platform_id, error = %e, "parsing a mail failed");
                return Ok(dropped("invalid", delivery));
            }
        };
        if let Some(reason) =
            drop_reason(&mail, delivery.spam.as_deref(), delivery.virus.as_deref())
        {
            return Ok(dropped(reason, delivery));
        }
        let Some(text) = message_text(&mail) else {
            return Ok(dropped("empty", delivery));
        };
        let conversation =
            ConversationKey::new(Channel::Email, mail.from.address.clone()).conversation_id();
        let threading = self.threading(&mail, delivery, &conversation).await?;
        let incoming = Incoming {
            channel: Channel::Email,
            address: mail.from.address.clone(),
            name: mail.from.name.clone(),
            // The same mail delivered twice (even under two SES ids) is one message.
            platform_id: mail
                .message_id
                .clone()
                .unwrap_or_else(|| delivery.platform_id.clone()),
            text,
            received_at: delivery.received_at,
        };
        let message_id = incoming.clone().into_envelope().message_id;
        // Written before the enqueue: once the bot sees the message, its attachments and
        // thread are there. A retry rewrites the same keys.
        for (n, attachment) in mail.attachments.iter().enumerate() {
            let key = attachment_key(message_id.as_str(), n + 1, attachment.file_name.as_deref());
            self.blobs.put(&key, attachment.bytes.clone()).await?;
        }
        let thread = serde_json::to_string(&MailThread {
            message_id: mail.message_id.clone(),
            references: mail.references.clone(),
            subject: mail.subject.clone(),
        })
        .map_err(|e| crate::Error::backend("encoding the mail thread record", e))?;
        self.guard
            .put_if_absent(
                &MailThread::key_for_message(&message_id),
                &thread,
                MailThread::TTL,
            )
            .await?;
        // Only the conversation's first mail (within the record's lifetime) is recorded.
        self.guard
            .put_if_absent(
                &MailThread::key_for_conversation(&conversation),
                &thread,
                MailThread::TTL,
            )
            .await?;
        let envelope = enqueue(self.queue.as_ref(), incoming).await?;
        tracing::info!(
            platform_id = %delivery.platform_id,
            conversation = %envelope.conversation_id,
            message_id = %envelope.message_id,
            attachments = mail.attachments.len(),
            threading = threading.as_str(),
            "email queued"
        );
        Ok(Received::Queued(envelope))
    }

    /// How `mail` threads: a plus-address token in the envelope recipients, else the first
    /// referenced id recorded as one of our sent replies. Either counts only when it names
    /// the sender's own `conversation`.
    async fn threading(
        &self,
        mail: &ParsedMail,
        delivery: &Delivery,
        conversation: &ConversationId,
    ) -> Result<Threading> {
        let mut foreign = false;
        if let Some(token) = token_in(&delivery.recipients, &self.config.local) {
            if &token == conversation {
                return Ok(Threading::Token);
            }
            tracing::warn!(
                platform_id = %delivery.platform_id,
                conversation = %conversation,
                named = %token,
                "reply token names another conversation; ignored"
            );
            foreign = true;
        }
        for id in referenced_ids(mail.in_reply_to.as_deref(), &mail.references) {
            let Some(recorded) = self.guard.get(&MailThread::key_for_sent(&id)).await? else {
                continue;
            };
            match ConversationId::parse(recorded.trim()) {
                Ok(named) if &named == conversation => return Ok(Threading::Reference),
                Ok(named) => {
                    tracing::warn!(
                        platform_id = %delivery.platform_id,
                        conversation = %conversation,
                        named = %named,
                        "mail references a reply in another conversation; ignored"
                    );
                    foreign = true;
                }
                Err(e) => {
                    tracing::warn!(key = %MailThread::key_for_sent(&id), error = %e, "unreadable sent-mail record");
                }
            }
        }
        Ok(if foreign {
            Threading::Foreign
        } else {
            Threading::New
        })
    }
}

/// Logs and counts a dropped mail (`email_dropped`, by `reason`).
fn dropped(reason: &'static str, delivery: &Delivery) -> Received {
    tracing::info!(reason, platform_id = %delivery.platform_id, "email_dropped");
    Received::Dropped(reason)
}

/// The text for the bot: the subject first on a new thread (customers often ask in it),
/// the new text of the body (or the subject when it is empty), then one line per
/// attachment. At most [`MAX_TEXT_CHARS`] characters, the attachment lines kept; `None`
/// when there is nothing to say.
fn message_text(mail: &ParsedMail) -> Option<String> {
    let body = new_text(&mail.text);
    let body = body.trim();
    let subject = mail.subject.as_deref().map(str::trim).unwrap_or_default();
    let said = match (body.is_empty(), subject.is_empty()) {
        (true, _) => subject.to_owned(),
        (false, false) if mail.in_reply_to.is_none() => format!("{subject}\n{body}"),
        (false, _) => body.to_owned(),
    };
    let files: Vec<String> = mail.attachments.iter().map(attachment_line).collect();
    let files = files.join("\n");
    let files_chars = files.chars().count();
    let room = MAX_TEXT_CHARS.saturating_sub(files_chars + 1);
    let mut text: String = said.chars().take(room).collect();
    if !files.is_empty() {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(&files);
    }
    let text: String = text.chars().take(MAX_TEXT_CHARS).collect();
    let text = text.trim().to_owned();
    (!text.is_empty()).then_some(text)
}

/// `[附件 attachment: invoice.pdf, application/pdf, 12 KB]`.
fn attachment_line(attachment: &Attachment) -> String {
    format!(
        "[附件 attachment: {}, {}, {}]",
        attachment.file_name.as_deref().unwrap_or("unnamed"),
        attachment.content_type,
        human_size(attachment.bytes.len())
    )
}

/// A size as people read it: `512 B`, `12 KB` (rounded up), `3.4 MB`.
fn human_size(bytes: usize) -> String {
    const KIB: usize = 1024;
    const MIB: usize = 1024 * 1024;
    if bytes < KIB {
        format!("{bytes} B")
    } else if bytes < MIB {
        format!("{} KB", bytes.div_ceil(KIB))
    } else {
        format!("{:.1} MB", bytes as f64 / MIB as f64)
    }
}

/// A file name safe as one key segment on S3 and on disk: letters, digits, `.`, `-` and
/// `_` kept (other characters become `_`), at most 100 characters, never empty.
fn sanitised_file_name(name: Option<&str>) -> String {
    const MAX_CHARS: usize = 100;
    let name: String = name
        .unwrap_or_default()
        // Only the last path component: some clients send `C:\Users\…\file.pdf`.
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let name = name.trim_matches(['.', '_']);
    let chars = name.chars().count();
    let name: String = if chars > MAX_CHARS {
        // Keep the end, where the extension is.
        name.chars().skip(chars - MAX_CHARS).collect()
    } else {
        name.to_owned()
    };
    if name.is_empty() {
        "attachment".to_owned()
    } else {
        name
    }
}

#[cfg(all(test, feature = "embedded"))]
mod tests {
    use super::*;
    use crate::adapters::embedded::{EmbeddedStore, FileBlobStore, INBOUND};
    use crate::domain::MessageId;
    use std::time::Duration;

    const GMAIL_TOKEN: &str = "c3f9a1e07b2d4c6e8f0a1b2c3d4e5f67";

    struct Fixture {
        _dir: tempfile::TempDir,
        store: EmbeddedStore,
        ingress: EmailIngress,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let ingress = EmailIngress::new(
            Arc::new(store.queue(INBOUND)),
            Arc::new(store.blobs()),
            Arc::new(store.idempotency()),
            EmailConfig::new("support@shop.example", None).unwrap(),
        );
        Fixture {
            _dir: dir,
            store,
            ingress,
        }
    }

    fn delivery(platform_id: &str) -> Delivery {
        Delivery {
            platform_id: platform_id.into(),
            recipients: vec!["support@shop.example".into()],
            spam: Some("PASS".into()),
            virus: Some("PASS".into()),
            spf: Some("PASS".into()),
            dkim: Some("PASS".into()),
            dmarc: Some("PASS".into()),
            received_at: 1_736_400_000_000,
        }
    }

    impl Fixture {
        async fn receive(&self, raw: &[u8], delivery: &Delivery) -> Received {
            self.ingress.receive(raw.to_vec(), delivery).await.unwrap()
        }

        async fn queued(&self, raw: &[u8], delivery: &Delivery) -> InboundMessage {
            match self.receive(raw, delivery).await {
                Received::Queued(envelope) => envelope,
                other => panic!("expected the mail queued, got {other:?}"),
            }
        }

        /// Everything on the inbound queue, as envelopes.
        async fn inbound(&self) -> Vec<InboundMessage> {
            self.store
                .queue(INBOUND)
                .receive(10, Duration::from_secs(30), Duration::ZERO)
                .await
                .unwrap()
                .iter()
                .map(|message| InboundMessage::from_json(&message.body).unwrap())
                .collect()
        }

        fn blobs(&self) -> FileBlobStore {
            self.store.blobs()
        }
    }

    fn conversation_of(address: &str) -> ConversationId {
        ConversationKey::new(Channel::Email, address).conversation_id()
    }

    #[tokio::test]
    async fn given_a_gmail_reply_when_received_then_only_the_new_text_is_queued() {
        let f = fixture();
        let raw = include_bytes!("testdata/gmail_reply.eml");
        let envelope = f.queued(raw, &delivery("ses-gmail")).await;
        assert_eq!(
            envelope.text,
            "Hi,\n\nThe tracking page still says “label created” after three days. Could you\n\
             check with the courier?\n\nThanks,\nLi Wei"
        );
        assert_eq!(envelope.channel, Channel::Email);
        assert_eq!(envelope.customer.address, "li.wei.shopper@gmail.com");
        assert_eq!(envelope.customer.name.as_deref(), Some("Li Wei"));
        assert_eq!(
            envelope.conversation_id,
            conversation_of("li.wei.shopper@gmail.com")
        );
        assert_eq!(envelope.received_at, 1_736_400_000_000);
        assert_eq!(f.inbound().await, [envelope]);
    }

    #[tokio::test]
    async fn given_an_outlook_reply_when_received_then_the_original_message_is_not_queued() {
        let f = fixture();
        let raw = include_bytes!("testdata/outlook_reply.eml");
        let envelope = f.queued(raw, &delivery("ses-outlook")).await;
        assert_eq!(
            envelope.text,
            "Hello,\n\nWe would like 40 units instead of 25. Does the 8% discount still apply?\n\n\
             Best regards\nMei Chen\nProcurement, Contoso Ltd."
        );
        assert!(!envelope.text.contains("Original Message"));
    }

    #[tokio::test]
    async fn given_a_gbk_mail_starting_a_thread_when_received_then_subject_and_body_are_chinese() {
        let f = fixture();
        let envelope = f
            .queued(include_bytes!("testdata/gbk.eml"), &delivery("ses-gbk"))
            .await;
        assert_eq!(
            envelope.text,
            "保温杯漏水\n您好，我上周买的保温杯盖子漏水，能换一个吗？\n订单号：20250105-7731\n\n谢谢！"
        );
        assert_eq!(envelope.customer.name.as_deref(), Some("王芳"));
    }

    #[tokio::test]
    async fn given_a_pdf_attachment_when_received_then_the_exact_bytes_are_stored_and_named_in_the_text()
     {
        let f = fixture();
        let raw = include_bytes!("testdata/pdf_attachment.eml");
        let envelope = f.queued(raw, &delivery("ses-pdf")).await;
        let expected = parse(raw).unwrap().attachments.remove(0).bytes;
        assert!(expected.starts_with(b"%PDF-1.4"));
        let key = format!("attachments/{}/1-invoice-8902.pdf", envelope.message_id);
        assert_eq!(f.blobs().get(&key).await.unwrap(), Some(expected.clone()));
        assert_eq!(
            f.blobs()
                .list(&format!("attachments/{}/", envelope.message_id))
                .await
                .unwrap(),
            [key]
        );
        assert_eq!(
            envelope.text,
            format!(
                "Invoice for order 8902 is wrong\n\
                 The attached invoice lists 3 items; we received 2.\n\
                 [附件 attachment: invoice-8902.pdf, application/pdf, {} B]",
                expected.len()
            )
        );
    }

    #[tokio::test]
    async fn given_auto_replies_and_bounces_when_received_then_dropped_and_nothing_queued() {
        let f = fixture();
        let out_of_office = f
            .receive(
                include_bytes!("testdata/out_of_office.eml"),
                &delivery("ses-oof"),
            )
            .await;
        let bounce = f
            .receive(include_bytes!("testdata/bounce.eml"), &delivery("ses-dsn"))
            .await;
        assert_eq!(out_of_office, Received::Dropped("auto_reply"));
        assert_eq!(bounce, Received::Dropped("bounce"));
        assert!(f.inbound().await.is_empty());
    }

    #[tokio::test]
    async fn given_spam_or_virus_fail_verdicts_when_received_then_dropped_and_nothing_queued() {
        let f = fixture();
        let raw = include_bytes!("testdata/gbk.eml");
        let mut spam = delivery("ses-spam");
        spam.spam = Some("FAIL".into());
        let mut virus = delivery("ses-virus");
        virus.virus = Some("FAIL".into());
        assert_eq!(f.receive(raw, &spam).await, Received::Dropped("spam"));
        assert_eq!(f.receive(raw, &virus).await, Received::Dropped("virus"));
        assert!(f.inbound().await.is_empty());
        // No thread is recorded for a dropped mail either.
        let conversation = conversation_of("wangfang88@163.example");
        let guard = f.store.idempotency();
        assert_eq!(
            guard
                .get(&MailThread::key_for_conversation(&conversation))
                .await
                .unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn given_a_sender_failing_authentication_when_received_then_dropped_unauthenticated_and_nothing_queued_or_recorded()
     {
        let f = fixture();
        // A reply naming the customer's conversation by token and reference: a forger
        // aims exactly there.
        let raw = include_bytes!("testdata/gmail_reply.eml");
        let mail = parse(raw).unwrap();
        let own = conversation_of(&mail.from.address);
        let with = |dmarc: Option<&str>, spf: Option<&str>, dkim: Option<&str>| {
            let mut d = delivery("ses-forged");
            d.recipients = vec![format!("support+{own}@shop.example")];
            (d.dmarc, d.spf, d.dkim) = (
                dmarc.map(String::from),
                spf.map(String::from),
                dkim.map(String::from),
            );
            d
        };
        for forged in [
            with(Some("FAIL"), Some("PASS"), Some("PASS")),
            with(Some("fail"), None, None),
            with(Some("GRAY"), Some("FAIL"), Some("FAIL")),
            with(None, Some("FAIL"), Some("FAIL")),
            with(Some("PROCESSING_FAILED"), Some("FAIL"), Some("FAIL")),
        ] {
            assert_eq!(
                f.receive(raw, &forged).await,
                Received::Dropped("unauthenticated"),
                "{forged:?}"
            );
        }
        assert!(f.inbound().await.is_empty());
        let guard = f.store.idempotency();
        let recorded = guard
            .get(&MailThread::key_for_conversation(&own))
            .await
            .unwrap();
        assert_eq!(recorded, None, "no thread a reply could echo");

        // Without a DMARC verdict, one passing check is enough; with none given at all
        // (a receipt rule that reports nothing) the mail is kept too.
        for kept in [
            with(Some("GRAY"), Some("PASS"), Some("FAIL")),
            with(None, Some("FAIL"), Some("GRAY")),
            with(None, None, None),
        ] {
            assert!(
                matches!(f.receive(raw, &kept).await, Received::Queued(_)),
                "{kept:?}"
            );
        }
    }

    #[tokio::test]
    async fn given_the_same_mail_under_two_delivery_ids_when_received_then_one_message_is_queued() {
        let f = fixture();
        let raw = include_bytes!("testdata/outlook_reply.eml");
        let first = f.queued(raw, &delivery("ses-id-1")).await;
        let again = f.queued(raw, &delivery("ses-id-2")).await;
        assert_eq!(first.message_id, again.message_id);
        assert_eq!(f.inbound().await, [first]);
    }

    #[tokio::test]
    async fn given_a_mail_without_message_id_when_received_then_the_delivery_id_tells_deliveries_apart()
     {
        let f = fixture();
        let raw =
            b"From: a@example.com\r\nTo: support@shop.example\r\nSubject: hi\r\n\r\nhello\r\n";
        let first = f.queued(raw, &delivery("ses-a")).await;
        let retry = f.queued(raw, &delivery("ses-a")).await;
        let other = f.queued(raw, &delivery("ses-b")).await;
        assert_eq!(first.message_id, retry.message_id);
        assert_ne!(first.message_id, other.message_id);
        assert_eq!(first.text, "hi\nhello");
        assert_eq!(f.inbound().await.len(), 2);
    }

    #[tokio::test]
    async fn given_mail_for_another_address_of_the_domain_when_received_then_dropped() {
        let f = fixture();
        let mut sales = delivery("ses-sales");
        sales.recipients = vec!["sales@shop.example".into()];
        let raw = include_bytes!("testdata/gmail_reply.eml");
        assert_eq!(
            f.receive(raw, &sales).await,
            Received::Dropped("not_for_mailbox")
        );
        assert!(f.inbound().await.is_empty());
    }

    #[tokio::test]
    async fn given_a_token_naming_another_conversation_when_received_then_it_is_ignored() {
        let f = fixture();
        let raw = include_bytes!("testdata/gmail_reply.eml");
        let mail = parse(raw).unwrap();
        let own = conversation_of(&mail.from.address);
        let mut foreign = delivery("ses-foreign");
        foreign.recipients = vec![format!("support+{GMAIL_TOKEN}@shop.example")];
        assert_ne!(own.as_str(), GMAIL_TOKEN);

        let threading = f.ingress.threading(&mail, &foreign, &own).await.unwrap();
        assert_eq!(threading, Threading::Foreign);
        let envelope = f.queued(raw, &foreign).await;
        assert_eq!(envelope.conversation_id, own);
    }

    #[tokio::test]
    async fn given_a_token_naming_the_senders_conversation_when_received_then_threaded_by_token() {
        let f = fixture();
        let raw = include_bytes!("testdata/gbk.eml");
        let mail = parse(raw).unwrap();
        let own = conversation_of(&mail.from.address);
        let mut reply = delivery("ses-token");
        reply.recipients = vec![format!("Support+{own}@shop.example")];
        let threading = f.ingress.threading(&mail, &reply, &own).await.unwrap();
        assert_eq!(threading, Threading::Token);
    }

    #[tokio::test]
    async fn given_in_reply_to_one_of_our_replies_when_received_then_threaded_by_reference() {
        let f = fixture();
        let raw = include_bytes!("testdata/outlook_reply.eml");
        let mail = parse(raw).unwrap();
        let own = conversation_of(&mail.from.address);
        let delivery = delivery("ses-ref");
        let guard = f.store.idempotency();
        assert_eq!(
            f.ingress.threading(&mail, &delivery, &own).await.unwrap(),
            Threading::New
        );
        // The sender records SES's id of the reply the customer answers.
        guard
            .put_if_absent(
                &MailThread::key_for_sent(
                    "0100019445e0aa11-1f2e3d4c-5b6a-4789-a0b1-c2d3e4f5a6b7-000000",
                ),
                own.as_str(),
                MailThread::TTL,
            )
            .await
            .unwrap();
        assert_eq!(
            f.ingress.threading(&mail, &delivery, &own).await.unwrap(),
            Threading::Reference
        );
        // A reply in the thread carries no subject line.
        let envelope = f.queued(raw, &delivery).await;
        assert!(envelope.text.starts_with("Hello,"), "{}", envelope.text);
    }

    #[tokio::test]
    async fn given_a_reference_to_another_conversations_reply_when_received_then_it_is_ignored() {
        let f = fixture();
        let raw = include_bytes!("testdata/outlook_reply.eml");
        let mail = parse(raw).unwrap();
        let own = conversation_of(&mail.from.address);
        let other = conversation_of("someone.else@example.com");
        f.store
            .idempotency()
            .put_if_absent(
                &MailThread::key_for_sent("0100019445e0aa11-1f2e3d4c-5b6a-4789-a0b1-c2d3e4f5a6b7-000000@email.amazonses.com"),
                other.as_str(),
                MailThread::TTL,
            )
            .await
            .unwrap();
        let delivery = delivery("ses-other");
        assert_eq!(
            f.ingress.threading(&mail, &delivery, &own).await.unwrap(),
            Threading::Foreign
        );
        assert_eq!(f.queued(raw, &delivery).await.conversation_id, own);
    }

    #[tokio::test]
    async fn given_a_queued_mail_then_its_thread_is_recorded_for_the_reply() {
        let f = fixture();
        let guard = f.store.idempotency();
        let first = f
            .queued(include_bytes!("testdata/gbk.eml"), &delivery("ses-1"))
            .await;
        let recorded = |key: String| {
            let guard = guard.clone();
            async move {
                let json = guard.get(&key).await.unwrap().expect("a thread record");
                serde_json::from_str::<MailThread>(&json).unwrap()
            }
        };
        let expected = MailThread {
            message_id: Some("5f3a2c1b.4d2e.19448b7c6a1.Coremail.wangfang88@163.example".into()),
            references: Vec::new(),
            subject: Some("保温杯漏水".into()),
        };
        assert_eq!(
            recorded(MailThread::key_for_message(&first.message_id)).await,
            expected
        );
        let conversation_key = MailThread::key_for_conversation(&first.conversation_id);
        assert_eq!(recorded(conversation_key.clone()).await, expected);

        // A later mail of the same customer gets its own record; the conversation keeps
        // its first mail's.
        let raw = b"From: =?GB2312?B?zfW3vA==?= <wangfang88@163.example>\r\n\
                    To: support@shop.example\r\nSubject: again\r\n\
                    Message-ID: <second@163.example>\r\n\r\nstill leaking\r\n";
        let second = f.queued(raw, &delivery("ses-2")).await;
        assert_eq!(second.conversation_id, first.conversation_id);
        assert_eq!(
            recorded(MailThread::key_for_message(&second.message_id))
                .await
                .message_id
                .as_deref(),
            Some("second@163.example")
        );
        assert_eq!(recorded(conversation_key).await, expected);
    }

    #[tokio::test]
    async fn given_unparseable_oversized_or_empty_mail_when_received_then_dropped_not_failed() {
        let f = fixture();
        let d = delivery("ses-x");
        assert_eq!(
            f.receive(b"\x00\x01 not mail", &d).await,
            Received::Dropped("invalid")
        );
        assert_eq!(
            f.receive(b"To: support@shop.example\r\n\r\nno sender\r\n", &d)
                .await,
            Received::Dropped("invalid")
        );
        let mut huge = b"From: a@example.com\r\nSubject: big\r\n\r\n".to_vec();
        huge.resize(EmailIngress::MAX_RAW_BYTES + 1, b'a');
        assert_eq!(f.receive(&huge, &d).await, Received::Dropped("too_large"));
        let empty = b"From: a@example.com\r\nTo: support@shop.example\r\n\r\n> only a quote\r\n";
        assert_eq!(f.receive(empty, &d).await, Received::Dropped("empty"));
        assert!(f.inbound().await.is_empty());
    }

    #[tokio::test]
    async fn given_a_reply_with_an_empty_body_when_received_then_the_subject_is_the_text() {
        let f = fixture();
        let raw = b"From: a@example.com\r\nTo: support@shop.example\r\nSubject: Re: refund?\r\n\
                    In-Reply-To: <x@y>\r\nMessage-ID: <e@a>\r\n\r\n";
        assert_eq!(f.queued(raw, &delivery("ses-e")).await.text, "Re: refund?");
    }

    #[test]
    fn given_a_long_mail_with_attachments_when_cut_then_the_attachment_lines_are_kept() {
        let mut mail = parse(include_bytes!("testdata/pdf_attachment.eml")).unwrap();
        mail.text = "字".repeat(MAX_TEXT_CHARS * 2);
        let text = message_text(&mail).unwrap();
        assert_eq!(text.chars().count(), MAX_TEXT_CHARS);
        let line = "\n[附件 attachment: invoice-8902.pdf, application/pdf, 125 B]";
        assert_eq!(mail.attachments[0].bytes.len(), 125);
        assert!(text.ends_with(line), "{text}");
        assert!(text.starts_with("Invoice for order 8902 is wrong\n字字"));
    }

    #[test]
    fn given_file_names_when_sanitised_then_one_safe_segment_remains() {
        for (name, expected) in [
            (Some("invoice-8902.pdf"), "invoice-8902.pdf"),
            (Some("发票 2025.pdf"), "发票_2025.pdf"),
            (Some("../../etc/passwd"), "passwd"),
            (Some("C:\\Users\\me\\scan.png"), "scan.png"),
            (Some(".."), "attachment"),
            (Some(".hidden"), "hidden"),
            (None, "attachment"),
        ] {
            assert_eq!(sanitised_file_name(name), expected, "{name:?}");
        }
        let long = format!("{}.pdf", "a".repeat(300));
        let cut = sanitised_file_name(Some(&long));
        assert_eq!(cut.chars().count(), 100);
        assert!(cut.ends_with(".pdf"));
        assert_eq!(
            attachment_key("m1", 2, Some("a b.txt")),
            "attachments/m1/2-a_b.txt"
        );
    }

    #[test]
    fn given_sizes_when_shown_then_bytes_kilobytes_or_megabytes() {
        assert_eq!(human_size(95), "95 B");
        assert_eq!(human_size(12 * 1024 - 5), "12 KB");
        assert_eq!(human_size(3 * 1024 * 1024 + 512 * 1024), "3.5 MB");
    }

    #[test]
    fn given_a_delivery_id_when_keyed_then_it_is_under_inbound() {
        assert_eq!(
            raw_key("d6iitobk75ur44p8kdnnp7g2n800"),
            "inbound/d6iitobk75ur44p8kdnnp7g2n800"
        );
        // Message ids are opaque digests: a key never escapes its prefix.
        let id = MessageId::for_inbound(&conversation_of("a@b.example"), "x");
        assert!(attachment_key(id.as_str(), 1, None).starts_with("attachments/m"));
    }
}
