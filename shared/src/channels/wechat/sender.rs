//! Egress: replies through the customer-service message API
//! (`POST {api_base}/cgi-bin/message/custom/send?access_token=…`).
//!
//! | WeChat answers | Outcome |
//! |---|---|
//! | `errcode` 0 | delivered |
//! | 40001, 42001, 40014 (token invalid or expired) | token reported stale, refreshed, sent once more |
//! | 45015 (no customer message for 48 hours) | [`SendError::Permanent`], the reason agents see |
//! | -1 (busy), 45009 / 45011 (API quota) | [`SendError::Transient`] |
//! | any other `errcode` (bad OpenID, content refused, …) | [`SendError::Permanent`] |
//! | HTTP 5xx or 429, timeout, unreadable answer | [`SendError::Transient`] |
//! | other HTTP 4xx | [`SendError::Permanent`] |

use super::config::WechatConfig;
use super::token::{AccessToken, AccessTokens, Patience};
use crate::domain::{Channel, OutboundMessage};
use crate::ports::IdempotencyGuard;
use crate::ports::{ChannelSender, SendError};
use crate::{Error, render};
use async_trait::async_trait;
use reqwest::Url;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// Limit for connecting and for each whole API call.
const TIMEOUT: Duration = Duration::from_secs(5);

/// The reason recorded when WeChat's 48-hour reply window is closed.
pub const WINDOW_CLOSED: &str =
    "the customer has not written for 48 hours: WeChat allows no reply now";

/// Delivers replies on WeChat (see the module docs).
pub struct WechatSender {
    client: reqwest::Client,
    send_url: Url,
    tokens: AccessTokens,
}

/// The API's text message body.
#[derive(Serialize)]
struct CustomSend<'a> {
    touser: &'a str,
    msgtype: &'static str,
    text: TextContent<'a>,
}

#[derive(Serialize)]
struct TextContent<'a> {
    content: &'a str,
}

/// Every WeChat API answer carries these (0 and empty on success).
#[derive(Deserialize)]
struct ApiAnswer {
    #[serde(default)]
    errcode: i64,
    #[serde(default)]
    errmsg: String,
}

/// A call that reached WeChat and was not otherwise refused.
#[derive(Debug, PartialEq, Eq)]
enum Posted {
    Sent,
    TokenRejected(i64),
}

impl WechatSender {
    /// A sender for the account `config`, with its access token cached in `cache` (the
    /// idempotency table: shared by every dispatcher instance). Builds the HTTP client once.
    pub fn new(config: &WechatConfig, cache: Arc<dyn IdempotencyGuard>) -> crate::Result<Self> {
        let send_url = Url::parse(&format!("{}/cgi-bin/message/custom/send", config.api_base))
            .map_err(|e| Error::Invalid(format!("KEFU_WECHAT_API_BASE: {e}")))?;
        let client = reqwest::Client::builder()
            .connect_timeout(TIMEOUT)
            .timeout(TIMEOUT)
            // A redirect would carry the access token elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::backend("building the WeChat API client", e))?;
        let tokens = AccessTokens::new(
            client.clone(),
            &config.api_base,
            &config.appid,
            &config.appsecret,
            cache,
            Patience::default(),
        );
        Ok(Self {
            client,
            send_url,
            tokens,
        })
    }

    /// One call of the send API with `token`.
    async fn post(
        &self,
        token: &AccessToken,
        openid: &str,
        content: &str,
    ) -> Result<Posted, SendError> {
        let mut url = self.send_url.clone();
        url.query_pairs_mut()
            .append_pair("access_token", token.as_str());
        let body = CustomSend {
            touser: openid,
            msgtype: "text",
            text: TextContent { content },
        };
        // `without_url`: the URL carries the access token, which must not reach a log.
        let response = self
            .client
            .post(url)
            .json(&body)
            .send()
            .await
            .map_err(|e| SendError::Transient(format!("calling WeChat: {}", e.without_url())))?;
        let status = response.status();
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(SendError::Transient(format!(
                "WeChat answered HTTP {status}"
            )));
        }
        if !status.is_success() {
            return Err(SendError::Permanent(format!(
                "WeChat answered HTTP {status}"
            )));
        }
        let answer: ApiAnswer = response.json().await.map_err(|e| {
            SendError::Transient(format!(
                "unreadable answer from WeChat: {}",
                e.without_url()
            ))
        })?;
        classify(answer)
    }
}

/// What an answer's `errcode` means for the message.
fn classify(answer: ApiAnswer) -> Result<Posted, SendError> {
    match answer.errcode {
        0 => Ok(Posted::Sent),
        code @ (40001 | 42001 | 40014) => Ok(Posted::TokenRejected(code)),
        45015 => Err(SendError::Permanent(WINDOW_CLOSED.to_owned())),
        code @ (-1 | 45009 | 45011) => Err(SendError::Transient(format!(
            "WeChat is busy or over quota: errcode {code} ({})",
            answer.errmsg
        ))),
        code => Err(SendError::Permanent(format!(
            "WeChat refused the message: errcode {code} ({})",
            answer.errmsg
        ))),
    }
}

#[async_trait]
impl ChannelSender for WechatSender {
    #[tracing::instrument(skip_all, fields(conversation = %message.conversation_id))]
    async fn send(&self, message: &OutboundMessage) -> Result<(), SendError> {
        if message.recipient.trim().is_empty() {
            return Err(SendError::Permanent("the message has no OpenID".into()));
        }
        let content = render::for_channel(Channel::Wechat, &message.text, &message.quick_replies);
        let token = self.tokens.current().await?;
        let code = match self.post(&token, &message.recipient, &content).await? {
            Posted::Sent => return Ok(()),
            Posted::TokenRejected(code) => code,
        };
        tracing::warn!(errcode = code, "access token rejected");
        self.tokens.invalidate(&token).await?;
        let token = self.tokens.current().await?;
        match self.post(&token, &message.recipient, &content).await? {
            Posted::Sent => Ok(()),
            Posted::TokenRejected(code) => Err(SendError::Transient(format!(
                "WeChat rejected a freshly fetched access token: errcode {code}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(errcode: i64) -> ApiAnswer {
        ApiAnswer {
            errcode,
            errmsg: "msg".into(),
        }
    }

    #[test]
    fn given_each_errcode_when_classified_then_the_documented_outcome() {
        assert_eq!(classify(answer(0)), Ok(Posted::Sent));
        for code in [40001, 42001, 40014] {
            assert_eq!(classify(answer(code)), Ok(Posted::TokenRejected(code)));
        }
        assert_eq!(
            classify(answer(45015)),
            Err(SendError::Permanent(WINDOW_CLOSED.into()))
        );
        for code in [-1, 45009, 45011] {
            assert!(matches!(
                classify(answer(code)),
                Err(SendError::Transient(_))
            ));
        }
        for code in [40003, 43004, 45047, 87014] {
            assert!(
                matches!(classify(answer(code)), Err(SendError::Permanent(reason)) if reason.contains(&code.to_string())),
                "{code}"
            );
        }
    }
}
