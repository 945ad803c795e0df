//! Twilio: the inbound webhook (`POST /sms/twilio`) and, with the `channels` feature, the
//! [`TwilioSender`] that delivers replies through the Messages API.
//!
//! The webhook checks `X-Twilio-Signature` =
//! `base64(HMAC-SHA1(auth token, URL + every parameter as key + value, sorted))` over the
//! public URL Twilio called, then answers with TwiML: empty (`<Response/>`: the bot replies
//! later through the API) or, for a keyword, the confirmation as a `<Message>`.
//!
//! Without a sending number (`KEFU_TWILIO_FROM`), the webhook remembers the number each
//! customer wrote to (`To`) and the sender answers from it.

use super::SmsState;
use super::ingress::{Outcome, Provider, Received, accept};
use super::phone::PhoneNumber;
use crate::domain::now_millis;
use crate::http::ApiError;
use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use http::header::{CONTENT_TYPE, HeaderMap};
use http::{HeaderValue, StatusCode};
use sha1::Sha1;

/// The route of the webhook.
pub const PATH: &str = "/sms/twilio";

/// The signature header.
const SIGNATURE_HEADER: &str = "x-twilio-signature";

/// The signature Twilio sends for a request to `url` with form `params`.
pub fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    BASE64.encode(mac(auth_token, url, params).finalize().into_bytes())
}

/// Whether `header` is the signature of a request to `url` with `params`; also accepts
/// the URL with its default port added or removed, as Twilio's own validators do.
/// Constant-time.
pub fn verify_signature(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    header: &str,
) -> bool {
    let Ok(expected) = BASE64.decode(header.trim()) else {
        return false;
    };
    url_variants(url)
        .iter()
        .any(|url| mac(auth_token, url, params).verify_slice(&expected).is_ok())
}

fn mac(auth_token: &str, url: &str, params: &[(String, String)]) -> Hmac<Sha1> {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort(); // by key, then by value for repeated keys; byte order = case-sensitive
    let mut mac =
        Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()).expect("HMAC takes keys of any size");
    mac.update(url.as_bytes());
    for (key, value) in sorted {
        mac.update(key.as_bytes());
        mac.update(value.as_bytes());
    }
    mac
}

/// `url` as given, and with its scheme's default port added (when it has none) or removed
/// (when it has it).
fn url_variants(url: &str) -> Vec<String> {
    let mut variants = vec![url.to_owned()];
    let Some((scheme, rest)) = url.split_once("://") else {
        return variants;
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "https" => "443",
        "http" => "80",
        _ => return variants,
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let (userinfo, host_port) = match authority.rsplit_once('@') {
        Some((user, host)) => (format!("{user}@"), host),
        None => (String::new(), authority),
    };
    let has_port = host_port
        .rsplit_once(':')
        .is_some_and(|(_, port)| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()))
        && !host_port.ends_with(']');
    if !has_port {
        variants.push(format!(
            "{scheme}://{userinfo}{host_port}:{default_port}{tail}"
        ));
    } else if let Some(host) = host_port.strip_suffix(&format!(":{default_port}")) {
        variants.push(format!("{scheme}://{userinfo}{host}{tail}"));
    }
    variants
}

/// TwiML that sends nothing.
pub const EMPTY_TWIML: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#;

/// TwiML that answers with `text`.
fn message_twiml(text: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><Response><Message>{}</Message></Response>"#,
        crate::render::escape_markup(text)
    )
}

fn twiml(body: String) -> Response {
    (
        StatusCode::OK,
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/xml; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

/// `POST /sms/twilio`.
pub(super) async fn webhook(
    State(state): State<SmsState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let Some(config) = state.config.twilio.as_ref() else {
        return Err(ApiError::not_found("no such route"));
    };
    let form_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form_type {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected Content-Type: application/x-www-form-urlencoded",
        ));
    }
    let params: Vec<(String, String)> = serde_urlencoded::from_bytes(&body)
        .map_err(|e| ApiError::bad_request(format!("malformed form body: {e}")))?;
    let path_and_query = uri.path_and_query().map_or(PATH, |pq| pq.as_str());
    let url = format!("{}{path_and_query}", state.config.public_url);
    let signed = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|header| verify_signature(&config.auth_token, &url, &params, header));
    if !signed {
        tracing::warn!("Twilio webhook with a missing or forged signature");
        return Err(ApiError::forbidden("invalid X-Twilio-Signature"));
    }
    let received = parse(&params, &state.config.default_country)?;
    if config.from.is_none()
        && let Some(to) = param(&params, "To")
            .and_then(|to| PhoneNumber::parse(to, &state.config.default_country).ok())
    {
        // Before queueing: the reply must find it.
        state
            .guard
            .put_if_absent(&our_number_key(&received.from), to.as_str(), OUR_NUMBER_TTL)
            .await?;
    }
    match accept(&state, received).await? {
        Outcome::Reply(text) => Ok(twiml(message_twiml(&text))),
        _ => Ok(twiml(EMPTY_TWIML.to_owned())),
    }
}

/// How long the number a customer wrote to is remembered for replies.
const OUR_NUMBER_TTL: std::time::Duration = std::time::Duration::from_secs(400 * 24 * 3600);

/// Where the number `customer` first wrote to is kept (by conversation id: no phone number
/// in the key).
fn our_number_key(customer: &PhoneNumber) -> String {
    let conversation =
        crate::domain::ConversationKey::new(crate::domain::Channel::Sms, customer.as_str())
            .conversation_id();
    our_number_key_of(&conversation)
}

fn our_number_key_of(conversation: &crate::domain::ConversationId) -> String {
    format!("sms-to:twilio:{conversation}")
}

/// The first value of `key`.
fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// The note added for pictures and other media, which the bot cannot read.
pub const MEDIA_NOTE: &str = "[图片/media]";

/// The SMS in a verified webhook: `MessageSid`, `From`, `Body` (media noted).
fn parse(params: &[(String, String)], default_country: &str) -> Result<Received, ApiError> {
    let sid = param(params, "MessageSid")
        .or_else(|| param(params, "SmsSid"))
        .filter(|sid| {
            !sid.is_empty() && sid.len() <= 64 && sid.bytes().all(|b| b.is_ascii_alphanumeric())
        })
        .ok_or_else(|| ApiError::bad_request("MessageSid is missing or malformed"))?;
    let from = param(params, "From").ok_or_else(|| ApiError::bad_request("From is missing"))?;
    let from = PhoneNumber::parse(from, default_country)
        .map_err(|e| ApiError::bad_request(format!("From: {e}")))?;
    let body = param(params, "Body").unwrap_or_default().trim();
    let media: u32 = match param(params, "NumMedia") {
        None | Some("") => 0,
        Some(n) => n
            .parse()
            .map_err(|_| ApiError::bad_request("NumMedia must be a number"))?,
    };
    let text = match (body.is_empty(), media > 0) {
        (_, false) => body.to_owned(),
        (true, true) => MEDIA_NOTE.to_owned(),
        (false, true) => format!("{body}\n{MEDIA_NOTE}"),
    };
    Ok(Received {
        provider: Provider::Twilio,
        from,
        platform_id: sid.to_owned(),
        text,
        received_at: now_millis(),
    })
}

#[cfg(feature = "channels")]
pub use sender::TwilioSender;

#[cfg(feature = "channels")]
mod sender {
    use super::super::config::{TwilioConfig, TwilioFrom};
    use super::super::keywords::OptOuts;
    use super::super::phone::{PhoneNumber, scrub};
    use super::super::segments;
    use super::our_number_key_of;
    use crate::domain::OutboundMessage;
    use crate::ports::IdempotencyGuard;
    use crate::ports::{ChannelSender, SendError};
    use async_trait::async_trait;
    use std::sync::Arc;
    use std::time::Duration;

    /// Longest body one Messages API request takes; Twilio segments it itself.
    pub const MAX_BODY_CHARS: usize = 1600;

    /// Twilio's error code for a recipient who replied STOP.
    const UNSUBSCRIBED_RECIPIENT: u64 = 21610;

    /// How long a sent part is remembered, so a redelivered reply does not send it twice.
    const SENT_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

    /// Delivers SMS replies through Twilio's Messages API: HTTP Basic (account sid, auth
    /// token), form `To`, `From` or `MessagingServiceSid`, `Body`. Texts over 1600
    /// characters go as several requests, each remembered once sent. Refuses numbers that
    /// opted out. Without `KEFU_TWILIO_FROM`, a reply goes from the number the customer
    /// wrote to (remembered by the webhook).
    pub struct TwilioSender {
        client: reqwest::Client,
        messages_url: String,
        account_sid: String,
        auth_token: String,
        from: Option<TwilioFrom>,
        default_country: String,
        opt_outs: OptOuts,
        guard: Arc<dyn IdempotencyGuard>,
    }

    impl std::fmt::Debug for TwilioSender {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("TwilioSender")
                .field("messages_url", &self.messages_url)
                .field("from", &self.from)
                .finish_non_exhaustive()
        }
    }

    impl TwilioSender {
        /// A sender for `config`, with the opt-out register, sent parts and the numbers
        /// customers wrote to on `guard`.
        pub fn new(
            config: &TwilioConfig,
            default_country: &str,
            guard: Arc<dyn IdempotencyGuard>,
        ) -> crate::Result<Self> {
            let from = config.from.clone();
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .connect_timeout(Duration::from_secs(5))
                .build()
                .map_err(|e| crate::Error::backend("building the Twilio HTTP client", e))?;
            Ok(Self {
                client,
                messages_url: format!(
                    "{}/2010-04-01/Accounts/{}/Messages.json",
                    config.api_base.trim_end_matches('/'),
                    config.account_sid
                ),
                account_sid: config.account_sid.clone(),
                auth_token: config.auth_token.clone(),
                from,
                default_country: default_country.to_owned(),
                opt_outs: OptOuts::new(guard.clone()),
                guard,
            })
        }

        /// Who `message` goes from: `KEFU_TWILIO_FROM`, else the number its customer wrote
        /// to.
        async fn sender_number(&self, message: &OutboundMessage) -> Result<TwilioFrom, SendError> {
            if let Some(from) = &self.from {
                return Ok(from.clone());
            }
            let ours = self
                .guard
                .get(&our_number_key_of(&message.conversation_id))
                .await
                .map_err(SendError::backend)?;
            ours.map(TwilioFrom::Number).ok_or_else(|| {
                SendError::Permanent(
                    "no number to send from: set KEFU_TWILIO_FROM (the customer never wrote to a Twilio number)"
                        .into(),
                )
            })
        }

        /// Sends one request; `Ok` when Twilio accepted it.
        async fn post(
            &self,
            from: &TwilioFrom,
            to: &PhoneNumber,
            body: &str,
        ) -> Result<(), SendError> {
            let from = match from {
                TwilioFrom::Number(number) => ("From", number.as_str()),
                TwilioFrom::MessagingService(sid) => ("MessagingServiceSid", sid.as_str()),
            };
            let form = serde_urlencoded::to_string([("To", to.as_str()), from, ("Body", body)])
                .map_err(|e| SendError::Permanent(format!("encoding the Twilio request: {e}")))?;
            let response = self
                .client
                .post(&self.messages_url)
                .basic_auth(&self.account_sid, Some(&self.auth_token))
                .header(
                    http::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(form)
                .send()
                .await
                .map_err(|e| SendError::Transient(format!("Twilio unreachable: {e}")))?;
            let status = response.status();
            if status.is_success() {
                return Ok(());
            }
            let error: TwilioError = response.json().await.unwrap_or_default();
            let reason = scrub(&format!(
                "Twilio {} (code {}): {}",
                status.as_u16(),
                error.code.map_or("none".into(), |c| c.to_string()),
                error.message.as_deref().unwrap_or("no message")
            ));
            if status.as_u16() == 429 || status.is_server_error() {
                return Err(SendError::Transient(reason));
            }
            if error.code == Some(UNSUBSCRIBED_RECIPIENT) {
                // Twilio saw the STOP first (its own opt-out handling): remember it too.
                if let Err(e) = self.opt_outs.opt_out(to).await {
                    tracing::warn!(error = %crate::cause_chain(&e), "recording an opt-out reported by Twilio");
                }
            }
            Err(SendError::Permanent(reason))
        }
    }

    /// Twilio's error body (`{"code": 21610, "message": "…", "status": 400, …}`).
    #[derive(Debug, Default, serde::Deserialize)]
    struct TwilioError {
        code: Option<u64>,
        message: Option<String>,
    }

    #[async_trait]
    impl ChannelSender for TwilioSender {
        #[tracing::instrument(skip_all, fields(message_id = %message.message_id))]
        async fn send(&self, message: &OutboundMessage) -> Result<(), SendError> {
            let (to, text) = crate::channels::sms::outgoing(
                message,
                "Twilio",
                &self.default_country,
                &self.opt_outs,
            )
            .await?;
            let from = self.sender_number(message).await?;
            let parts = segments::split_utf16(&text, MAX_BODY_CHARS);
            for (n, part) in parts.iter().enumerate() {
                let sent_key = format!("sms-out:twilio:{}:{n}", message.message_id);
                if self
                    .guard
                    .get(&sent_key)
                    .await
                    .map_err(SendError::backend)?
                    .is_some()
                {
                    continue;
                }
                self.post(&from, &to, part).await?;
                if let Err(e) = self.guard.put_if_absent(&sent_key, "1", SENT_TTL).await {
                    // Sent but not remembered: a redelivery would send this part again,
                    // which beats failing a delivered message.
                    tracing::warn!(error = %crate::cause_chain(&e), "remembering a sent SMS part");
                }
            }
            tracing::info!(to = %to, parts = parts.len(), "SMS sent through Twilio");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// twilio-python `tests/unit/test_request_validator.py` (see CHANNELS.md).
    fn vector() -> (&'static str, &'static str, Vec<(String, String)>) {
        (
            "12345",
            "https://mycompany.com/myapp.php?foo=1&bar=2",
            pairs(&[
                ("CallSid", "CA1234567890ABCDE"),
                ("Caller", "+14158675309"),
                ("Digits", "1234"),
                ("From", "+14158675309"),
                ("To", "+18005551212"),
            ]),
        )
    }

    #[test]
    fn given_the_twilio_python_vector_when_signed_then_the_published_signature() {
        let (token, url, params) = vector();
        assert_eq!(
            signature(token, url, &params),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
        let mut shuffled = params.clone();
        shuffled.reverse();
        assert!(verify_signature(
            token,
            url,
            &shuffled,
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
    }

    #[test]
    fn given_a_changed_url_param_or_token_when_verified_then_rejected() {
        let (token, url, params) = vector();
        let good = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";
        assert!(!verify_signature("54321", url, &params, good));
        assert!(!verify_signature(
            token,
            "https://mycompany.com/myapp.php?foo=1",
            &params,
            good
        ));
        let mut changed = params.clone();
        changed[2].1 = "1235".into();
        assert!(!verify_signature(token, url, &changed, good));
        assert!(!verify_signature(token, url, &params, "not base64!"));
        assert!(!verify_signature(token, url, &params, ""));
    }

    #[test]
    fn given_the_url_with_or_without_the_default_port_when_verified_then_both_match() {
        let (token, url, params) = vector();
        let with_port = "https://mycompany.com:443/myapp.php?foo=1&bar=2";
        let signed_with_port = signature(token, with_port, &params);
        assert!(verify_signature(token, url, &params, &signed_with_port));
        let good = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";
        assert!(verify_signature(token, with_port, &params, good));
        // Another port is another URL.
        assert!(!verify_signature(
            token,
            "https://mycompany.com:8443/myapp.php?foo=1&bar=2",
            &params,
            good
        ));
    }

    #[test]
    fn given_repeated_keys_when_signed_then_sorted_by_value_too() {
        let a = pairs(&[("MediaUrl", "b"), ("MediaUrl", "a")]);
        let b = pairs(&[("MediaUrl", "a"), ("MediaUrl", "b")]);
        assert_eq!(
            signature("t", "https://x", &a),
            signature("t", "https://x", &b)
        );
        let mut mac = Hmac::<Sha1>::new_from_slice(b"t").unwrap();
        mac.update(b"https://xMediaUrlaMediaUrlb");
        assert_eq!(
            signature("t", "https://x", &a),
            BASE64.encode(mac.finalize().into_bytes())
        );
    }

    #[test]
    fn given_urls_when_varied_then_default_ports_are_added_or_removed() {
        assert_eq!(
            url_variants("https://h.example/p?q=1"),
            vec!["https://h.example/p?q=1", "https://h.example:443/p?q=1"]
        );
        assert_eq!(
            url_variants("http://127.0.0.1:80/sms"),
            vec!["http://127.0.0.1:80/sms", "http://127.0.0.1/sms"]
        );
        assert_eq!(
            url_variants("http://127.0.0.1:8080/sms"),
            vec!["http://127.0.0.1:8080/sms"]
        );
    }

    #[test]
    fn given_webhook_params_when_parsed_then_media_is_noted_and_numbers_normalised() {
        let params = pairs(&[
            ("MessageSid", "SM0123456789abcdef0123456789abcdef"),
            ("From", "+86 138 0013 8000"),
            ("Body", " 看看这个 "),
            ("NumMedia", "1"),
        ]);
        let received = parse(&params, "86").unwrap();
        assert_eq!(received.from.as_str(), "+8613800138000");
        assert_eq!(received.text, "看看这个\n[图片/media]");
        let only_media = pairs(&[
            ("MessageSid", "SM1"),
            ("From", "+14158675309"),
            ("Body", ""),
            ("NumMedia", "2"),
        ]);
        assert_eq!(parse(&only_media, "86").unwrap().text, MEDIA_NOTE);
        let no_sid = pairs(&[("From", "+14158675309"), ("Body", "hi")]);
        assert_eq!(
            parse(&no_sid, "86").unwrap_err().status(),
            StatusCode::BAD_REQUEST
        );
        let bad_from = pairs(&[
            ("MessageSid", "SM1"),
            ("From", "whatsapp:+1"),
            ("Body", "hi"),
        ]);
        assert_eq!(
            parse(&bad_from, "86").unwrap_err().status(),
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn given_text_with_markup_when_put_in_twiml_then_escaped() {
        assert_eq!(
            message_twiml("a<b & \"c\""),
            r#"<?xml version="1.0" encoding="UTF-8"?><Response><Message>a&lt;b &amp; &quot;c&quot;</Message></Response>"#
        );
    }
}
