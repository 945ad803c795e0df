//! SMS configuration: plain values handed to the handlers; [`SmsConfig::from_env`] is for
//! binaries only. A provider whose secrets are unset is `None`, and its routes answer 404
//! ([`crate::channels::disabled`]).

use crate::config;
use std::fmt;

/// Default request body limit of the SMS webhooks: an SMS is at most 1600 characters, so
/// even a batch of them with their metadata fits.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;

/// Default help text (`KEFU_SMS_HELP`).
pub const DEFAULT_HELP: &str = "客服短信：直接回复您的问题即可，回复 STOP 退订。Reply with your question; reply STOP to unsubscribe.";

/// Everything the SMS ingress and egress need.
#[derive(Clone)]
pub struct SmsConfig {
    /// The public base URL the platforms call, without a trailing slash
    /// (`KEFU_PUBLIC_URL`, e.g. `https://abc.execute-api.eu-west-1.amazonaws.com`):
    /// Twilio signs the URL as it called it, not as the function sees it.
    pub public_url: String,
    /// Country calling code for numbers without one (`KEFU_SMS_DEFAULT_COUNTRY`, `86`).
    pub default_country: String,
    /// Answer to HELP / 帮助 (`KEFU_SMS_HELP`).
    pub help_text: String,
    /// Request body limit of the webhooks.
    pub max_body_bytes: usize,
    /// Twilio, when its credentials are set.
    pub twilio: Option<TwilioConfig>,
    /// Aliyun SMS upstream push, when its path token is set.
    pub aliyun: Option<AliyunConfig>,
    /// AWS End User Messaging via SNS, when the topic is set.
    pub sns: Option<SnsConfig>,
    /// The number SNS replies come from (`KEFU_SNS_ORIGINATION_NUMBER`, E.164): the one
    /// customers wrote to, so their answer stays in one thread on their phone.
    pub sns_origination_number: Option<String>,
    /// The alphanumeric sender SNS replies show where carriers allow one
    /// (`KEFU_SNS_SENDER_ID`).
    pub sns_sender_id: Option<String>,
}

impl fmt::Debug for SmsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmsConfig")
            .field("public_url", &self.public_url)
            .field("default_country", &self.default_country)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("twilio", &self.twilio)
            .field("aliyun", &self.aliyun.as_ref().map(|_| "<set>"))
            .field("sns", &self.sns)
            .finish_non_exhaustive()
    }
}

impl SmsConfig {
    /// A configuration with no provider enabled, calling back at `public_url`.
    pub fn new(public_url: impl Into<String>) -> Self {
        Self {
            public_url: public_url.into().trim_end_matches('/').to_owned(),
            default_country: "86".into(),
            help_text: DEFAULT_HELP.into(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            twilio: None,
            aliyun: None,
            sns: None,
            sns_origination_number: None,
            sns_sender_id: None,
        }
    }

    /// Reads `KEFU_PUBLIC_URL` (default `http://` + `KEFU_HTTP_ADDR`, itself defaulting to
    /// `127.0.0.1:8080`), `KEFU_SMS_DEFAULT_COUNTRY` (86), `KEFU_SMS_HELP`,
    /// `KEFU_MAX_BODY_BYTES`, and each provider's variables: `KEFU_TWILIO_ACCOUNT_SID` +
    /// `KEFU_TWILIO_AUTH_TOKEN` (+ `KEFU_TWILIO_FROM`, `KEFU_TWILIO_API_BASE`),
    /// `KEFU_ALIYUN_SMS_TOKEN`, `KEFU_SNS_TOPIC_ARN` (+ `KEFU_SNS_ORIGINATION_NUMBER`,
    /// `KEFU_SNS_SENDER_ID` for replies through SNS).
    pub fn from_env() -> crate::Result<Self> {
        let public_url = config::optional("KEFU_PUBLIC_URL").unwrap_or_else(|| {
            format!("http://{}", config::or("KEFU_HTTP_ADDR", "127.0.0.1:8080"))
        });
        let mut sms = Self::new(public_url);
        sms.default_country = config::or("KEFU_SMS_DEFAULT_COUNTRY", "86")
            .trim_start_matches('+')
            .to_owned();
        sms.help_text = config::or("KEFU_SMS_HELP", DEFAULT_HELP);
        sms.max_body_bytes = config::number("KEFU_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES)?;
        sms.twilio = match (
            config::optional("KEFU_TWILIO_ACCOUNT_SID"),
            config::optional("KEFU_TWILIO_AUTH_TOKEN"),
        ) {
            (Some(account_sid), Some(auth_token)) => Some(TwilioConfig {
                account_sid,
                auth_token,
                api_base: config::or("KEFU_TWILIO_API_BASE", TWILIO_API_BASE),
                from: config::optional("KEFU_TWILIO_FROM").map(TwilioFrom::parse),
            }),
            (None, None) => None,
            _ => {
                return Err(crate::Error::Config(
                    "set both KEFU_TWILIO_ACCOUNT_SID and KEFU_TWILIO_AUTH_TOKEN, or neither"
                        .into(),
                ));
            }
        };
        sms.aliyun = config::optional("KEFU_ALIYUN_SMS_TOKEN").map(|token| AliyunConfig { token });
        sms.sns = config::optional("KEFU_SNS_TOPIC_ARN").map(|topic_arn| SnsConfig { topic_arn });
        sms.sns_origination_number = config::optional("KEFU_SNS_ORIGINATION_NUMBER");
        sms.sns_sender_id = config::optional("KEFU_SNS_SENDER_ID");
        Ok(sms)
    }
}

/// Twilio's REST API.
pub const TWILIO_API_BASE: &str = "https://api.twilio.com";

/// Twilio credentials and sender.
#[derive(Clone)]
pub struct TwilioConfig {
    /// `AC…` (`KEFU_TWILIO_ACCOUNT_SID`).
    pub account_sid: String,
    /// Signs webhooks and authenticates API calls (`KEFU_TWILIO_AUTH_TOKEN`).
    pub auth_token: String,
    /// `KEFU_TWILIO_API_BASE`, default [`TWILIO_API_BASE`] (tests point it at a mock).
    pub api_base: String,
    /// Who replies come from (`KEFU_TWILIO_FROM`); without it, the number each customer
    /// wrote to.
    pub from: Option<TwilioFrom>,
}

impl fmt::Debug for TwilioConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioConfig")
            .field("account_sid", &self.account_sid)
            .field("api_base", &self.api_base)
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

/// The sender of Twilio messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TwilioFrom {
    /// A Twilio phone number (or alphanumeric sender id): the `From` parameter.
    Number(String),
    /// A messaging service (`MG…`), which picks the number: `MessagingServiceSid`.
    MessagingService(String),
}

impl TwilioFrom {
    /// `MG` + 32 hex digits is a messaging service sid; anything else is a sender.
    pub fn parse(value: String) -> Self {
        let is_service = value.len() == 34
            && value.starts_with("MG")
            && value[2..].bytes().all(|b| b.is_ascii_hexdigit());
        if is_service {
            TwilioFrom::MessagingService(value)
        } else {
            TwilioFrom::Number(value)
        }
    }
}

/// Aliyun SMS upstream push.
#[derive(Clone)]
pub struct AliyunConfig {
    /// The secret last path segment of the push URL (`KEFU_ALIYUN_SMS_TOKEN`); Aliyun
    /// documents no request signature.
    pub token: String,
}

/// AWS End User Messaging two-way SMS delivered through SNS.
#[derive(Debug, Clone)]
pub struct SnsConfig {
    /// The only topic accepted (`KEFU_SNS_TOPIC_ARN`).
    pub topic_arn: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_from_values_when_parsed_then_service_sids_are_told_from_numbers() {
        let sid = format!("MG{}", "a1".repeat(16));
        assert_eq!(
            TwilioFrom::parse(sid.clone()),
            TwilioFrom::MessagingService(sid)
        );
        assert_eq!(
            TwilioFrom::parse("+15005550006".into()),
            TwilioFrom::Number("+15005550006".into())
        );
        assert_eq!(
            TwilioFrom::parse("MGShop".into()),
            TwilioFrom::Number("MGShop".into())
        );
    }

    #[test]
    fn given_secrets_when_debug_printed_then_they_are_hidden() {
        let mut config = SmsConfig::new("https://example.com/");
        config.twilio = Some(TwilioConfig {
            account_sid: "AC1".into(),
            auth_token: "secret-token".into(),
            api_base: TWILIO_API_BASE.into(),
            from: None,
        });
        config.aliyun = Some(AliyunConfig {
            token: "path-secret".into(),
        });
        let text = format!("{config:?}");
        assert!(!text.contains("secret-token") && !text.contains("path-secret"));
        assert_eq!(config.public_url, "https://example.com");
    }
}
