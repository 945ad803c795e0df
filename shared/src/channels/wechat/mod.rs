//! The WeChat Official Account (公众号) channel.
//!
//! - **Ingress** ([`router`]): the webhook WeChat pushes customer messages and events to,
//!   in plaintext, compatible or safe (encrypted) mode. It checks the signatures, parses the
//!   push strictly ([`xml`]), normalises it (see [Normalisation](#normalisation)) and queues
//!   it, answering `success` at once; a new follower gets the welcome as a passive reply.
//! - **Egress** ([`WechatSender`]): the dispatcher's sender, through the customer-service
//!   message API, with the access token cached centrally over the idempotency guard.
//!
//! Configuration: [`WechatConfig::from_env`] (`KEFU_WECHAT_*`); without credentials the
//! channel is disabled and [`disabled_router`] answers 404.
//!
//! # Normalisation
//!
//! Text stays text; an image becomes `[图片] <PicUrl>`; a voice message becomes WeChat's
//! transcript, or `[语音]`; a menu click becomes the text configured for its key; a QR scan
//! by a follower becomes the greeting [`SCAN_GREETING`]; `subscribe` is answered with the
//! welcome and queues nothing; `unsubscribe` and link clicks do nothing.
//!
//! Built with the `channels` feature.
#![cfg(feature = "channels")]

mod config;
pub mod crypto;
mod ingress;
mod normalise;
mod sender;
mod token;
pub mod xml;

pub use config::{DEFAULT_API_BASE, REQUIRED_SETTINGS, WechatConfig};
pub use crypto::{AesKey, MessageCrypt};
pub use ingress::{PATH, WechatIngress, disabled_router, router};
pub use normalise::SCAN_GREETING;
pub use sender::{WINDOW_CLOSED, WechatSender};
