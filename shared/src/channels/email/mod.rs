//! The email channel: customers write to the shop's support address.
//!
//! Amazon SES receives the mail, stores the raw MIME in S3 and then invokes the email
//! function. This module holds the pure core that function builds on — no I/O, no AWS:
//!
//! - [`parse`]: raw RFC 5322 bytes into a [`ParsedMail`] (sender, threading headers,
//!   automation markers, the text body — HTML reduced to text when there is no plain part —
//!   and attachments); charsets and transfer encodings are decoded by `mail-parser`.
//! - [`new_text`]: what the customer actually wrote in a reply, without the quoted history
//!   and signature their mail client appended.
//! - [`drop_reason`]: mail that must not reach the bot or an agent — spam, viruses,
//!   auto-replies (which would otherwise answer our answers forever) and bounces;
//!   [`unauthenticated`]: mail whose sender SES's SPF/DKIM/DMARC verdicts do not bear out.
//! - [`reply_address`], [`token_in`], [`references_chain`]: threading. Replies carry
//!   `Reply-To: support+<conversation id>@domain`, so an answer finds its conversation even
//!   when a client drops `In-Reply-To`/`References`; SES replaces the `Message-ID` we set,
//!   so our own reference travels in `References`.
//!
//! Around it, the ingress:
//!
//! - [`EmailIngress::receive`]: one raw mail to the inbound queue — size limit, sender
//!   authentication, parse (on a blocking thread; HTML read up to [`MAX_HTML_BYTES`]),
//!   filter (dropped mail is logged as `email_dropped` with its `reason`), threading checked
//!   against the sender's own conversation, attachments stored under
//!   `attachments/<message id>/`, the [`MailThread`] recorded for the reply, then enqueued.
//!   The mail's `Message-ID` is its platform id, so a mail delivered twice is one message.
//! - [`handle_ses_event`]: the SES receipt event (Lambda action after an S3 action that
//!   stored the raw mail at [`raw_key`]), one [`Delivery`] per record.
//!
//! And the egress:
//!
//! - [`EmailSender`]: the dispatcher's sender. Threads a reply under the recorded
//!   [`MailThread`] (`Re:` subject, `In-Reply-To`, `References`, `Reply-To` token), sends
//!   it once (the service's id is kept under [`MailThread::key_for_outbound`] and
//!   [`MailThread::key_for_sent`]) through a [`MailTransport`]: `adapters::aws::SesTransport` (SESv2
//!   `SendEmail`, feature `aws-senders`) in AWS, [`MaildirTransport`] (a local outbox) or
//!   [`SmtpRelayTransport`] (an SMTP relay) locally.
//! - [`OutgoingMail::to_mime`]: the reply as RFC 5322 bytes, text and [`html_of`] HTML.
//!
//! Built with the `channels` feature.
#![cfg(feature = "channels")]

mod compose;
mod config;
mod filter;
mod html;
mod ingress;
mod parse;
mod relay;
mod reply;
mod sender;
mod ses;
pub mod smtp;
mod thread;
mod transport;

pub use compose::{OutgoingMail, html_of};
pub use config::EmailConfig;
pub use filter::{drop_reason, unauthenticated};
pub use ingress::{Delivery, EmailIngress, Received, raw_key};
pub use parse::{Attachment, MAX_HTML_BYTES, Mailbox, ParsedMail, parse};
pub use relay::SmtpRelayTransport;
pub use reply::new_text;
pub use sender::EmailSender;
pub use ses::{SesEvent, SesMail, SesMessage, SesReceipt, SesRecord, SesVerdict, handle_ses_event};
pub use thread::{
    MailThread, ReplyThreading, referenced_ids, references_chain, reply_address, token_in,
};
pub use transport::MaildirTransport;
