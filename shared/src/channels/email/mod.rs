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
//!   auto-replies (which would otherwise answer our answers forever) and bounces.
//! - [`reply_address`], [`token_in`], [`references_chain`]: threading. Replies carry
//!   `Reply-To: support+<conversation id>@domain`, so an answer finds its conversation even
//!   when a client drops `In-Reply-To`/`References`; SES replaces the `Message-ID` we set,
//!   so our own reference travels in `References`.
//!
//! Not built yet (next): the SES receipt-event handler, fetching the raw mail from S3,
//! storing attachments in S3, the SESv2 `SendEmail` sender, and a local SMTP ingress with a
//! Maildir outbox for the local runner.
//!
//! Built with the `channels` feature.
#![cfg(feature = "channels")]

mod config;
mod filter;
mod html;
mod parse;
mod reply;
pub mod smtp;
mod thread;

pub use config::EmailConfig;
pub use filter::drop_reason;
pub use parse::{Attachment, Mailbox, ParsedMail, parse};
pub use reply::new_text;
pub use thread::{
    MailThread, ReplyThreading, referenced_ids, references_chain, reply_address, token_in,
};
