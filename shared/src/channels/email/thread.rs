//! Threading: finding a reply's conversation, and threading our replies.

use crate::domain::{ConversationId, MessageId};
use serde::{Deserialize, Serialize};

/// How many ids a reply's `References` keeps: the thread's root and the latest ones
/// (RFC 5322 §3.6.4 allows trimming; some servers reject very long headers).
const MAX_REFERENCES: usize = 20;

/// The `Reply-To` address of a reply in `conversation`: `<local>+<conversation id>@domain`.
///
/// The conversation id is already an opaque digest, so it serves as the token as is; a
/// customer's answer to this address finds its conversation even when their client drops
/// `In-Reply-To` and `References`.
pub fn reply_address(local: &str, domain: &str, conversation: &ConversationId) -> String {
    format!("{local}+{conversation}@{domain}")
}

/// The conversation named by a plus-address token in `recipients` (bare addresses, as in
/// SES's `receipt.recipients`) for the mailbox `local`; `None` when no recipient carries a
/// valid one. Local parts compare case-insensitively, as mail servers treat them.
pub fn token_in(recipients: &[String], local: &str) -> Option<ConversationId> {
    let prefix = format!("{}+", local.to_ascii_lowercase());
    recipients.iter().find_map(|recipient| {
        let address = recipient
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>');
        let (mailbox, _domain) = address.rsplit_once('@')?;
        let token = mailbox
            .to_ascii_lowercase()
            .strip_prefix(&prefix)?
            .to_owned();
        ConversationId::parse(&token).ok()
    })
}

/// `In-Reply-To` and `References` of a reply, with angle brackets, ready for the headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyThreading {
    /// `<message-id>` of the mail answered.
    pub in_reply_to: String,
    /// The answered mail's references followed by its id, space separated (the writer of
    /// the header folds it).
    pub references: String,
}

/// The threading headers of a reply to a mail with `message_id` and `references` (ids
/// without angle brackets, as [`super::ParsedMail`] has them). Repeated ids are dropped; a
/// long chain keeps its root and its latest ids.
pub fn references_chain(message_id: &str, references: &[String]) -> ReplyThreading {
    let message_id = bare(message_id);
    let mut chain: Vec<&str> = Vec::with_capacity(references.len() + 1);
    for id in references.iter().map(|id| bare(id)).chain([message_id]) {
        if !id.is_empty() && !chain.contains(&id) {
            chain.push(id);
        }
    }
    if chain.len() > MAX_REFERENCES {
        chain.drain(1..chain.len() - (MAX_REFERENCES - 1));
    }
    ReplyThreading {
        in_reply_to: format!("<{message_id}>"),
        references: chain
            .iter()
            .map(|id| format!("<{id}>"))
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// What a reply needs to know of the customer mail it answers: recorded by the ingress
/// (in the [`crate::ports::IdempotencyGuard`], under [`MailThread::key_for_message`] and,
/// for the first mail of a conversation, [`MailThread::key_for_conversation`]) and read
/// by the sender.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct MailThread {
    /// The mail's `Message-ID`, without angle brackets.
    pub message_id: Option<String>,
    /// Its `References`, oldest first, without angle brackets.
    pub references: Vec<String>,
    /// Its decoded subject.
    pub subject: Option<String>,
}

impl MailThread {
    /// How long the record is kept: replies to older mail start a new thread.
    pub const TTL: std::time::Duration = std::time::Duration::from_secs(90 * 24 * 3600);

    /// The record of the customer message `id` (what a bot reply answers).
    pub fn key_for_message(id: &MessageId) -> String {
        format!("email:mail:{id}")
    }

    /// The record of a conversation's first mail (what an agent's reply, which answers no
    /// particular message, threads under).
    pub fn key_for_conversation(id: &ConversationId) -> String {
        format!("email:thread:{id}")
    }

    /// The conversation a sent reply belongs to, by the id the mail service gave it (SES
    /// replaces our `Message-ID` with `<that id@….amazonses.com>`), so a customer's
    /// `In-Reply-To`/`References` lead back to it. Written by the sender.
    pub fn key_for_sent(provider_id: &str) -> String {
        format!("email:sent:{provider_id}")
    }

    /// The mail service's id of our outbound message `id`, once sent: a redelivered reply
    /// is not mailed twice. Written by the sender.
    pub fn key_for_outbound(id: &MessageId) -> String {
        format!("email:outbound:{id}")
    }
}

/// The ids under which [`MailThread::key_for_sent`] may have recorded a referenced mail:
/// the whole id and, for SES (`<provider id>@region.amazonses.com`), its local part.
/// `In-Reply-To` first, then `References` from the latest back.
pub fn referenced_ids(in_reply_to: Option<&str>, references: &[String]) -> Vec<String> {
    let mut ids = Vec::new();
    for id in in_reply_to
        .into_iter()
        .chain(references.iter().rev().map(String::as_str))
    {
        let id = bare(id);
        for candidate in [Some(id), id.split_once('@').map(|(local, _)| local)]
            .into_iter()
            .flatten()
        {
            if !candidate.is_empty() && !ids.iter().any(|known| known == candidate) {
                ids.push(candidate.to_owned());
            }
        }
    }
    ids
}

/// An id without surrounding whitespace and angle brackets.
fn bare(id: &str) -> &str {
    id.trim().trim_start_matches('<').trim_end_matches('>')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Channel, ConversationKey};

    fn conversation() -> ConversationId {
        ConversationKey::new(Channel::Email, "li.wei@example.com").conversation_id()
    }

    #[test]
    fn given_a_reply_address_when_it_comes_back_as_recipient_then_the_token_is_found() {
        let id = conversation();
        let address = reply_address("support", "shop.example", &id);
        assert_eq!(address, format!("support+{id}@shop.example"));
        let recipients = vec!["sales@shop.example".to_owned(), address.to_uppercase()];
        assert_eq!(token_in(&recipients, "Support"), Some(id));
    }

    #[test]
    fn given_no_or_malformed_tokens_when_searched_then_none() {
        let recipients = vec![
            "support@shop.example".to_owned(),
            "support+not-an-id@shop.example".to_owned(),
            format!("sales+{}@shop.example", conversation()),
        ];
        assert_eq!(token_in(&recipients, "support"), None);
    }

    #[test]
    fn given_in_reply_to_and_references_when_listed_then_latest_first_with_local_parts() {
        let ids = referenced_ids(
            Some("<0100abc@eu-west-1.amazonses.com>"),
            &[
                "root@x".to_owned(),
                "0100abc@eu-west-1.amazonses.com".to_owned(),
            ],
        );
        assert_eq!(
            ids,
            [
                "0100abc@eu-west-1.amazonses.com",
                "0100abc",
                "root@x",
                "root"
            ]
        );
        assert!(referenced_ids(None, &[]).is_empty());
    }

    #[test]
    fn given_a_mail_with_references_when_chained_then_its_id_comes_last() {
        let threading = references_chain("<b@x>", &["a@x".to_owned(), "b@x".to_owned()]);
        assert_eq!(threading.in_reply_to, "<b@x>");
        assert_eq!(threading.references, "<a@x> <b@x>");
        let first = references_chain("a@x", &[]);
        assert_eq!(first.references, "<a@x>");
    }

    #[test]
    fn given_a_long_chain_when_chained_then_the_root_and_latest_ids_are_kept() {
        let references: Vec<String> = (0..30).map(|n| format!("{n}@x")).collect();
        let threading = references_chain("30@x", &references);
        let ids: Vec<&str> = threading.references.split(' ').collect();
        assert_eq!(ids.len(), MAX_REFERENCES);
        assert_eq!(ids[0], "<0@x>");
        assert_eq!(ids[1], "<12@x>");
        assert_eq!(ids[MAX_REFERENCES - 1], "<30@x>");
    }
}
