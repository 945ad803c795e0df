//! Egress: replies as mail, through a [`MailTransport`] (SESv2 in AWS, a Maildir outbox
//! locally).
//!
//! A reply threads under the customer mail it answers: the ingress records a
//! [`MailThread`] per customer mail and per conversation; the reply takes `Re: <subject>`,
//! `In-Reply-To` and `References` from it, and always carries
//! `Reply-To: <local>+<conversation>@<domain>` so the customer's answer finds its
//! conversation even when their client drops the threading headers.
//!
//! Exactly once: the transport's id of a sent reply is stored under
//! [`MailThread::key_for_outbound`] before the dispatcher records the delivery, and a
//! redelivered reply whose id is already there is not mailed again. The same id is stored
//! under [`MailThread::key_for_sent`] with the conversation, so a customer mail that
//! answers ours (`In-Reply-To: <that id@…>`) is led back to it.

use super::compose::{OutgoingMail, html_of};
use super::{EmailConfig, MailThread, Mailbox, references_chain, reply_address};
use crate::domain::{Author, Channel, OutboundMessage};
use crate::ports::{ChannelSender, IdempotencyGuard, MailTransport, SendError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::Arc;

/// Reply prefixes (before `:` or `：`, any case) that mark a subject as a reply already:
/// English and Latin `Re`, German `AW`, Dutch `Antw`, Scandinavian `SV`/`VS`, Italian `Rif`,
/// and what Chinese clients write.
const REPLY_PREFIXES: &[&str] = &[
    "re", "aw", "antw", "sv", "vs", "rif", "回复", "答复", "回覆", "答覆",
];

/// Delivers email replies (see the module docs).
pub struct EmailSender {
    transport: Arc<dyn MailTransport>,
    guard: Arc<dyn IdempotencyGuard>,
    config: EmailConfig,
}

impl std::fmt::Debug for EmailSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailSender")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl EmailSender {
    /// A sender mailing as `config`'s mailbox through `transport`, with threads and sent ids
    /// on `guard` (the idempotency table the ingress writes the threads to).
    pub fn new(
        transport: Arc<dyn MailTransport>,
        guard: Arc<dyn IdempotencyGuard>,
        config: EmailConfig,
    ) -> Self {
        Self {
            transport,
            guard,
            config,
        }
    }

    /// The thread `message` answers: the record of the customer mail it replies to, else
    /// that of the conversation's first mail. An unreadable record counts as none: a reply
    /// without threading headers still reaches the customer.
    async fn thread_of(&self, message: &OutboundMessage) -> Result<MailThread, SendError> {
        let keys = message
            .in_reply_to
            .iter()
            .map(MailThread::key_for_message)
            .chain([MailThread::key_for_conversation(&message.conversation_id)]);
        for key in keys {
            let Some(json) = self.guard.get(&key).await.map_err(SendError::backend)? else {
                continue;
            };
            match serde_json::from_str(&json) {
                Ok(thread) => return Ok(thread),
                Err(e) => tracing::warn!(key, error = %e, "unreadable mail thread record"),
            }
        }
        Ok(MailThread::default())
    }

    /// The mail for `message` to `to`, in `thread`, dated `date`.
    fn compose(
        &self,
        message: &OutboundMessage,
        to: &str,
        thread: &MailThread,
        date: DateTime<Utc>,
    ) -> OutgoingMail {
        let text =
            crate::render::for_channel(Channel::Email, &message.text, &message.quick_replies);
        let threading = thread
            .message_id
            .as_deref()
            .filter(|id| !id.trim().is_empty())
            .map(|id| references_chain(id, &thread.references));
        OutgoingMail {
            from: Mailbox {
                address: self.config.address(),
                name: self.config.display_name.clone(),
            },
            to: Mailbox {
                address: to.to_owned(),
                name: None,
            },
            reply_to: Some(reply_address(
                &self.config.local,
                &self.config.domain,
                &message.conversation_id,
            )),
            subject: reply_subject(thread.subject.as_deref(), &self.config),
            html: html_of(&text),
            text,
            message_id: format!("{}@{}", message.message_id, self.config.domain),
            in_reply_to: threading.as_ref().map(|t| t.in_reply_to.clone()),
            references: threading.map(|t| t.references),
            date,
            auto_submitted: matches!(message.author, Author::Bot | Author::System),
        }
    }

    /// Remembers that `message` went out as `provider_id`. A failure is logged, not
    /// returned: the mail is sent, and failing would make the dispatcher send it again.
    async fn remember(&self, message: &OutboundMessage, provider_id: &str) {
        let outbound = MailThread::key_for_outbound(&message.message_id);
        if let Err(e) = self
            .guard
            .put_if_absent(&outbound, provider_id, MailThread::TTL)
            .await
        {
            tracing::warn!(error = %crate::cause_chain(&e), "remembering a sent mail; a redelivery would send it again");
        }
        if provider_id.is_empty() {
            return;
        }
        let sent = MailThread::key_for_sent(provider_id);
        let conversation = message.conversation_id.to_string();
        if let Err(e) = self
            .guard
            .put_if_absent(&sent, &conversation, MailThread::TTL)
            .await
        {
            tracing::warn!(error = %crate::cause_chain(&e), "remembering a sent mail's conversation; answers to it rely on Reply-To");
        }
    }
}

#[async_trait]
impl ChannelSender for EmailSender {
    #[tracing::instrument(skip_all, fields(message_id = %message.message_id))]
    async fn send(&self, message: &OutboundMessage) -> Result<(), SendError> {
        if message.channel != Channel::Email {
            return Err(SendError::Permanent(format!(
                "the email sender cannot deliver {} messages",
                message.channel
            )));
        }
        let to = email_address(&message.recipient)
            .ok_or_else(|| SendError::Permanent("the recipient is not an email address".into()))?;
        let outbound = MailThread::key_for_outbound(&message.message_id);
        if let Some(provider_id) = self
            .guard
            .get(&outbound)
            .await
            .map_err(SendError::backend)?
        {
            tracing::info!(provider_id, "mail already sent; not sending it again");
            return Ok(());
        }
        let thread = self.thread_of(message).await?;
        let raw = self.compose(message, to, &thread, Utc::now()).to_mime();
        let provider_id = self.transport.send(&self.config.address(), to, raw).await?;
        self.remember(message, &provider_id).await;
        tracing::info!(provider_id, "mail sent");
        Ok(())
    }
}

/// `recipient` when it is a plain `local@domain` address (ASCII, a dotted domain of
/// letters, digits and hyphens, within the SMTP length limits), trimmed.
fn email_address(recipient: &str) -> Option<&str> {
    let address = recipient.trim();
    let (local, domain) = address.rsplit_once('@')?;
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local
            .chars()
            .all(|c| c.is_ascii_graphic() && !"<>()[]\\,;:\"@".contains(c));
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    let domain_ok = domain.contains('.') && domain.split('.').all(label_ok);
    (address.len() <= 254 && local_ok && domain_ok).then_some(address)
}

/// The subject of a reply to a mail with `subject`: `Re: <subject>`, unchanged when it is
/// a reply already (see [`REPLY_PREFIXES`]). Without one — an agent opening a conversation
/// whose first mail had no subject — it is `<display name> 客服 / Customer service`, or
/// `客服 / Customer service` without a display name.
fn reply_subject(subject: Option<&str>, config: &EmailConfig) -> String {
    match subject.map(str::trim).filter(|s| !s.is_empty()) {
        Some(subject) if is_reply(subject) => subject.to_owned(),
        Some(subject) => format!("Re: {subject}"),
        None => match &config.display_name {
            Some(name) => format!("{} 客服 / Customer service", name.trim()),
            None => "客服 / Customer service".to_owned(),
        },
    }
}

/// Whether `subject` starts with a reply prefix, also counted (`Re[2]:`) or spaced (`RE :`).
fn is_reply(subject: &str) -> bool {
    REPLY_PREFIXES.iter().any(|prefix| {
        let Some(head) = subject.get(..prefix.len()) else {
            return false;
        };
        if !head.eq_ignore_ascii_case(prefix) {
            return false;
        }
        let mut rest = &subject[prefix.len()..];
        if let Some(counted) = rest.strip_prefix('[')
            && let Some((count, after)) = counted.split_once(']')
            && !count.is_empty()
            && count.bytes().all(|b| b.is_ascii_digit())
        {
            rest = after;
        }
        let rest = rest.trim_start_matches(' ');
        rest.starts_with(':') || rest.starts_with('：')
    })
}

#[cfg(all(test, feature = "embedded"))]
mod tests {
    use super::super::transport::MaildirTransport;
    use super::*;
    use crate::adapters::embedded::EmbeddedStore;
    use crate::domain::{ConversationKey, MessageId, SCHEMA_VERSION};
    use mail_parser::{HeaderValue, MessageParser};
    use std::path::PathBuf;

    const CUSTOMER: &str = "li.wei@example.com";

    struct Setup {
        _dir: tempfile::TempDir,
        outbox: PathBuf,
        guard: Arc<dyn IdempotencyGuard>,
        sender: EmailSender,
    }

    fn setup() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(&dir.path().join("store")).unwrap();
        let guard: Arc<dyn IdempotencyGuard> = Arc::new(store.idempotency());
        let outbox = dir.path().join("outbox");
        let transport = Arc::new(MaildirTransport::open(&outbox).unwrap());
        let config = EmailConfig::new("support@shop.example", Some("小店".into())).unwrap();
        let sender = EmailSender::new(transport, guard.clone(), config);
        Setup {
            _dir: dir,
            outbox,
            guard,
            sender,
        }
    }

    fn reply(in_reply_to: Option<MessageId>) -> OutboundMessage {
        OutboundMessage {
            schema: SCHEMA_VERSION,
            message_id: MessageId::random(),
            conversation_id: ConversationKey::new(Channel::Email, CUSTOMER).conversation_id(),
            channel: Channel::Email,
            recipient: CUSTOMER.into(),
            author: Author::Bot,
            agent_id: None,
            text: "包裹已发出。".into(),
            quick_replies: vec![],
            in_reply_to,
            created_at: 1,
        }
    }

    async fn record(guard: &dyn IdempotencyGuard, key: &str, thread: &MailThread) {
        let json = serde_json::to_string(thread).unwrap();
        guard
            .put_if_absent(key, &json, MailThread::TTL)
            .await
            .unwrap();
    }

    fn delivered(outbox: &std::path::Path) -> Vec<Vec<u8>> {
        let mut files: Vec<_> = std::fs::read_dir(outbox.join("new"))
            .unwrap()
            .map(|entry| std::fs::read(entry.unwrap().path()).unwrap())
            .collect();
        files.sort();
        files
    }

    fn ids_of(value: &HeaderValue<'_>) -> Vec<String> {
        match value {
            HeaderValue::Text(id) => vec![id.to_string()],
            HeaderValue::TextList(ids) => ids.iter().map(|id| id.to_string()).collect(),
            _ => Vec::new(),
        }
    }

    #[tokio::test]
    async fn given_a_reply_to_a_recorded_mail_when_sent_then_one_threaded_file_in_new() {
        let s = setup();
        let customer_mail = MessageId::random();
        let thread = MailThread {
            message_id: Some("b@mail.example".into()),
            references: vec!["a@mail.example".into()],
            subject: Some("订单 1234 什么时候发货？".into()),
        };
        record(
            &*s.guard,
            &MailThread::key_for_message(&customer_mail),
            &thread,
        )
        .await;
        let message = reply(Some(customer_mail));
        s.sender.send(&message).await.unwrap();

        let files = delivered(&s.outbox);
        assert_eq!(files.len(), 1);
        assert!(
            std::fs::read_dir(s.outbox.join("tmp"))
                .unwrap()
                .next()
                .is_none()
        );
        let mail = MessageParser::default().parse(&files[0]).unwrap();
        assert_eq!(mail.subject(), Some("Re: 订单 1234 什么时候发货？"));
        let from = mail.from().and_then(|a| a.first()).unwrap();
        assert_eq!(from.address.as_deref(), Some("support@shop.example"));
        assert_eq!(from.name.as_deref(), Some("小店"));
        let to = mail.to().and_then(|a| a.first()).unwrap();
        assert_eq!(to.address.as_deref(), Some(CUSTOMER));
        let reply_to = mail.reply_to().and_then(|a| a.first()).unwrap();
        let expected = format!("support+{}@shop.example", message.conversation_id);
        assert_eq!(reply_to.address.as_deref(), Some(expected.as_str()));
        let message_id = format!("{}@shop.example", message.message_id);
        assert_eq!(mail.message_id(), Some(message_id.as_str()));
        assert_eq!(ids_of(mail.in_reply_to()), ["b@mail.example"]);
        assert_eq!(
            ids_of(mail.references()),
            ["a@mail.example", "b@mail.example"]
        );
        assert_eq!(mail.body_text(0).as_deref(), Some("包裹已发出。"));
        assert_eq!(
            mail.header_raw("Auto-Submitted").map(str::trim),
            Some("auto-replied")
        );

        let outbound = MailThread::key_for_outbound(&message.message_id);
        assert_eq!(
            s.guard.get(&outbound).await.unwrap().as_deref(),
            Some(message_id.as_str())
        );
        let sent = MailThread::key_for_sent(&message_id);
        assert_eq!(
            s.guard.get(&sent).await.unwrap(),
            Some(message.conversation_id.to_string())
        );
    }

    #[tokio::test]
    async fn given_the_same_message_twice_when_sent_then_one_mail() {
        let s = setup();
        let message = reply(None);
        s.sender.send(&message).await.unwrap();
        s.sender.send(&message).await.unwrap();
        assert_eq!(delivered(&s.outbox).len(), 1);
        s.sender.send(&reply(None)).await.unwrap();
        assert_eq!(delivered(&s.outbox).len(), 2);
    }

    #[tokio::test]
    async fn given_an_agent_reply_without_a_mail_record_when_sent_then_the_conversation_thread() {
        let s = setup();
        let mut message = reply(Some(MessageId::random()));
        message.author = Author::Agent;
        let thread = MailThread {
            message_id: Some("first@mail.example".into()),
            references: vec![],
            subject: Some("RE: 退货".into()),
        };
        let key = MailThread::key_for_conversation(&message.conversation_id);
        record(&*s.guard, &key, &thread).await;
        s.sender.send(&message).await.unwrap();

        let files = delivered(&s.outbox);
        let mail = MessageParser::default().parse(&files[0]).unwrap();
        assert_eq!(mail.subject(), Some("RE: 退货"));
        assert_eq!(ids_of(mail.in_reply_to()), ["first@mail.example"]);
        assert_eq!(ids_of(mail.references()), ["first@mail.example"]);
        assert!(mail.header_raw("Auto-Submitted").is_none());
    }

    #[tokio::test]
    async fn given_no_thread_record_when_sent_then_the_default_subject_and_no_threading() {
        let s = setup();
        s.sender.send(&reply(None)).await.unwrap();
        let files = delivered(&s.outbox);
        let mail = MessageParser::default().parse(&files[0]).unwrap();
        assert_eq!(mail.subject(), Some("小店 客服 / Customer service"));
        assert!(ids_of(mail.in_reply_to()).is_empty());
        assert!(ids_of(mail.references()).is_empty());
    }

    #[tokio::test]
    async fn given_a_recipient_that_is_no_email_address_when_sent_then_permanent_and_no_mail() {
        let s = setup();
        for bad in [
            "+8613800138000",
            "li.wei@localhost",
            "a b@example.com",
            "x@y.example\r\nBcc: z@w.example",
        ] {
            let mut message = reply(None);
            message.recipient = bad.into();
            let error = s.sender.send(&message).await.unwrap_err();
            assert!(matches!(error, SendError::Permanent(_)), "{bad:?}: {error}");
        }
        let mut sms = reply(None);
        sms.channel = Channel::Sms;
        assert!(matches!(
            s.sender.send(&sms).await,
            Err(SendError::Permanent(_))
        ));
        assert!(delivered(&s.outbox).is_empty());
    }

    #[test]
    fn given_subjects_when_replied_then_re_is_added_once() {
        let config = EmailConfig::new("support@shop.example", None).unwrap();
        for (subject, expected) in [
            ("Order", "Re: Order"),
            ("Re: Order", "Re: Order"),
            ("RE : Order", "RE : Order"),
            ("Re[2]: Order", "Re[2]: Order"),
            ("AW: Bestellung", "AW: Bestellung"),
            ("回复：订单", "回复：订单"),
            ("答复: 订单", "答复: 订单"),
            ("Reorder", "Re: Reorder"),
            ("Sverige: order", "Re: Sverige: order"),
        ] {
            assert_eq!(reply_subject(Some(subject), &config), expected);
        }
        assert_eq!(
            reply_subject(Some("  "), &config),
            "客服 / Customer service"
        );
        assert_eq!(reply_subject(None, &config), "客服 / Customer service");
    }
}
