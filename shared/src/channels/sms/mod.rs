//! The SMS channel: three inbound providers, one outbound (Twilio), one opt-out register.
//!
//! | Route | Provider | Checked by |
//! |---|---|---|
//! | `POST /sms/twilio` | Twilio webhook (form) | `X-Twilio-Signature` over [`SmsConfig::public_url`] + path |
//! | `POST /sms/sns` | AWS End User Messaging via an SNS HTTPS subscription | SNS signature (`channels` feature) |
//! | `POST /sms/aliyun/{token}` | Aliyun upstream push (JSON array) | secret path token |
//!
//! and, without HTTP, [`handle_sns_event`] for SNS invoking a Lambda function directly.
//! [`router`] serves all three routes; a provider that is not configured answers 404
//! ([`crate::channels::disabled`]).
//!
//! Every received SMS gets the same treatment: the sender's number is normalised to E.164
//! ([`PhoneNumber`]), a provider retry (same provider message id) is dropped, the keywords
//! STOP / START / HELP ([`Keyword`]) are handled here and change the central opt-out
//! register ([`OptOuts`]), messages from opted-out numbers are dropped, and everything
//! else is queued for the bot. Only Twilio lets us answer in-line (TwiML), so keyword
//! confirmations are sent there; End User Messaging and the Chinese carriers answer
//! keywords themselves.
//!
//! Outbound, [`TwilioSender`] (`channels` feature) and `adapters::aws::SnsSmsSender`
//! (`aws-senders` feature, SNS `Publish`) send replies and refuse numbers that opted out. [`segments`]
//! knows how SMS are counted and split.

mod aliyun;
mod config;
mod ingress;
mod keywords;
mod outgoing;
pub mod phone;
pub mod segments;
mod sns;
#[cfg(feature = "channels")]
mod sns_https;
mod twilio;

pub use config::{
    AliyunConfig, DEFAULT_HELP, DEFAULT_MAX_BODY_BYTES, SmsConfig, SnsConfig, TWILIO_API_BASE,
    TwilioConfig, TwilioFrom,
};
pub use keywords::{Keyword, MAX_CHANGES, OptOuts, START_CONFIRMATION, STOP_CONFIRMATION};
pub use outgoing::outgoing;
pub use phone::PhoneNumber;
pub use sns::{SnsLambdaEvent, SnsLambdaMessage, SnsLambdaRecord, handle_sns_event};
#[cfg(feature = "channels")]
pub use sns_https::SnsVerifier;
#[cfg(feature = "channels")]
pub use twilio::TwilioSender;
pub use twilio::{EMPTY_TWIML, MEDIA_NOTE, signature as twilio_signature};

use crate::domain::Channel;
use crate::ports::{IdempotencyGuard, MessageQueue};
use axum::Router;
use axum::routing::post;
use std::sync::Arc;

/// The routes [`router`] serves.
pub const PATHS: [&str; 3] = [twilio::PATH, SNS_PATH, aliyun::PATH];

const SNS_PATH: &str = "/sms/sns";

/// What the SMS webhooks need. Cheap to clone.
#[derive(Clone)]
pub struct SmsState {
    inbound: Arc<dyn MessageQueue>,
    guard: Arc<dyn IdempotencyGuard>,
    opt_outs: OptOuts,
    config: Arc<SmsConfig>,
    #[cfg(feature = "channels")]
    sns: Option<Arc<SnsVerifier>>,
}

impl std::fmt::Debug for SmsState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsState")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl SmsState {
    /// State over the inbound queue (`KEFU_INBOUND_QUEUE_URL`) and the idempotency guard
    /// (provider retries, the opt-out register). With the `channels` feature and an SNS
    /// topic configured, SNS signatures are checked against AWS's certificates.
    pub fn new(
        inbound: Arc<dyn MessageQueue>,
        guard: Arc<dyn IdempotencyGuard>,
        config: SmsConfig,
    ) -> crate::Result<Self> {
        #[cfg(feature = "channels")]
        let sns = match config.sns {
            Some(_) => Some(Arc::new(SnsVerifier::new()?)),
            None => None,
        };
        Ok(Self {
            inbound,
            opt_outs: OptOuts::new(guard.clone()),
            guard,
            config: Arc::new(config),
            #[cfg(feature = "channels")]
            sns,
        })
    }

    /// Replaces the SNS verifier (tests: [`SnsVerifier::insecure_any_host_for_tests`]).
    #[cfg(feature = "channels")]
    pub fn with_sns_verifier(mut self, verifier: SnsVerifier) -> Self {
        self.sns = Some(Arc::new(verifier));
        self
    }

    /// The configuration.
    pub fn config(&self) -> &SmsConfig {
        &self.config
    }

    /// The opt-out register.
    pub fn opt_outs(&self) -> &OptOuts {
        &self.opt_outs
    }
}

/// The SMS webhooks (see the module docs), with the API layers (body limit, JSON errors,
/// request tracing). No fallback, so it merges with other routers.
pub fn router(state: SmsState) -> Router {
    let config = state.config.clone();
    let mut routes = Router::new();
    let mut disabled = Router::new();
    if config.twilio.is_some() {
        routes = routes.route(twilio::PATH, post(twilio::webhook));
    } else {
        disabled = disabled.merge(crate::channels::disabled(
            Channel::Sms,
            "KEFU_TWILIO_ACCOUNT_SID and KEFU_TWILIO_AUTH_TOKEN",
            &[twilio::PATH],
        ));
    }
    if config.aliyun.is_some() {
        routes = routes.route(aliyun::PATH, post(aliyun::webhook));
    } else {
        disabled = disabled.merge(crate::channels::disabled(
            Channel::Sms,
            "KEFU_ALIYUN_SMS_TOKEN",
            &[aliyun::PATH],
        ));
    }
    #[cfg(feature = "channels")]
    let sns_enabled = config.sns.is_some();
    #[cfg(not(feature = "channels"))]
    let sns_enabled = false;
    if sns_enabled {
        #[cfg(feature = "channels")]
        {
            routes = routes.route(SNS_PATH, post(sns_https::webhook));
        }
    } else {
        disabled = disabled.merge(crate::channels::disabled(
            Channel::Sms,
            "KEFU_SNS_TOPIC_ARN, in a build with the channels feature",
            &[SNS_PATH],
        ));
    }
    let routes = routes.with_state(state).merge(disabled);
    crate::http::api_layers(routes, config.max_body_bytes)
}

/// Compares secrets in time independent of where they differ.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_secrets_when_compared_then_only_equal_bytes_match() {
        assert!(constant_time_eq(b"token", b"token"));
        assert!(!constant_time_eq(b"token", b"tokeN"));
        assert!(!constant_time_eq(b"token", b"token2"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}
