//! The SNS HTTPS subscription (`POST /sms/sns`): every message is checked against its SNS
//! signature before anything else — `SignatureVersion` 1 is SHA1withRSA, 2 is
//! SHA256withRSA, over `Key\nValue\n` of the fields SNS lists for the message type — with
//! the certificate fetched from `SigningCertURL`, which must be an `https` URL ending in
//! `.pem` on `sns.<region>.amazonaws.com(.cn)`. A `SubscriptionConfirmation` is confirmed
//! by fetching its `SubscribeURL` (same host rule); a `Notification` carries the SMS. A
//! signed message whose `Timestamp` is more than [`MAX_AGE`] old is refused (403): the
//! provider ids that catch replays are remembered for a week, a signature lasts forever.

use super::SmsState;
use super::ingress::{Outcome, accept};
use super::sns::{parse_message, timestamp};
use crate::http::ApiError;
use crate::{Error, Result};
use axum::body::Bytes;
use axum::extract::State;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use reqwest::Url;
use rsa::RsaPublicKey;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use x509_cert::Certificate;
use x509_cert::der::{DecodePem, Encode};

/// Certificates kept in memory; SNS rotates them rarely.
const MAX_CACHED_KEYS: usize = 8;

/// The oldest signed message accepted: longer than SNS retries an HTTPS delivery.
pub const MAX_AGE: Duration = Duration::from_secs(3600);

/// How far ahead of our clock a `Timestamp` may be.
const MAX_AHEAD: Duration = Duration::from_secs(300);

/// The JSON SNS posts to an HTTPS subscription.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct Envelope {
    #[serde(rename = "Type")]
    pub kind: String,
    pub message_id: String,
    #[serde(default)]
    pub token: Option<String>,
    pub topic_arn: String,
    #[serde(default)]
    pub subject: Option<String>,
    pub message: String,
    #[serde(default, rename = "SubscribeURL")]
    pub subscribe_url: Option<String>,
    pub timestamp: String,
    pub signature_version: String,
    pub signature: String,
    #[serde(rename = "SigningCertURL")]
    pub signing_cert_url: String,
}

/// The text SNS signs for `envelope`: `Key\nValue\n` for the fields of its type, in order.
pub(super) fn string_to_sign(envelope: &Envelope) -> Result<String> {
    let missing = |field: &str| Error::Invalid(format!("{field} is missing"));
    let mut fields: Vec<(&str, &str)> = vec![
        ("Message", &envelope.message),
        ("MessageId", &envelope.message_id),
    ];
    match envelope.kind.as_str() {
        "Notification" => {
            if let Some(subject) = &envelope.subject {
                fields.push(("Subject", subject));
            }
            fields.push(("Timestamp", &envelope.timestamp));
        }
        "SubscriptionConfirmation" | "UnsubscribeConfirmation" => {
            let url = envelope
                .subscribe_url
                .as_deref()
                .ok_or_else(|| missing("SubscribeURL"))?;
            let token = envelope.token.as_deref().ok_or_else(|| missing("Token"))?;
            fields.push(("SubscribeURL", url));
            fields.push(("Timestamp", &envelope.timestamp));
            fields.push(("Token", token));
        }
        other => {
            return Err(Error::Invalid(format!(
                "unknown SNS message type {:?}",
                other.chars().take(40).collect::<String>()
            )));
        }
    }
    fields.push(("TopicArn", &envelope.topic_arn));
    fields.push(("Type", &envelope.kind));
    let mut text = String::new();
    for (key, value) in fields {
        text.push_str(key);
        text.push('\n');
        text.push_str(value);
        text.push('\n');
    }
    Ok(text)
}

/// Which hosts certificates and confirmations may come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HostRule {
    /// `https://sns.<region>.amazonaws.com(.cn)` only: production.
    AwsSns,
    /// Any host and scheme: for tests against a local server, never for production.
    AnyForTests,
}

/// Checks SNS signatures and confirms subscriptions; caches signing certificates.
pub struct SnsVerifier {
    client: reqwest::Client,
    hosts: HostRule,
    /// Parsed keys by certificate URL, with the order they were fetched in.
    keys: Mutex<HashMap<String, (u64, RsaPublicKey)>>,
}

impl std::fmt::Debug for SnsVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnsVerifier")
            .field("hosts", &self.hosts)
            .finish_non_exhaustive()
    }
}

impl SnsVerifier {
    /// The production verifier: certificates and confirmations only from
    /// `https://sns.<region>.amazonaws.com(.cn)`.
    pub fn new() -> Result<Self> {
        Self::with_rule(HostRule::AwsSns)
    }

    /// A verifier that fetches certificates (still `….pem`) and confirms subscriptions
    /// from ANY host, over http too, so tests can serve a locally generated certificate. Never use it with
    /// real traffic: anyone could then sign messages with their own certificate.
    pub fn insecure_any_host_for_tests() -> Result<Self> {
        Self::with_rule(HostRule::AnyForTests)
    }

    fn with_rule(hosts: HostRule) -> Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            // A redirect could lead off the checked host.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::backend("building the SNS HTTP client", e))?;
        Ok(Self {
            client,
            hosts,
            keys: Mutex::default(),
        })
    }

    /// `url` parsed, if the host rule allows it; `Error::Unauthorized` otherwise.
    fn checked_url(&self, url: &str, must_end_in_pem: bool) -> Result<Url> {
        let parsed =
            Url::parse(url).map_err(|_| Error::Unauthorized("SNS URL is not a URL".into()))?;
        let pem_ok = !must_end_in_pem || parsed.path().ends_with(".pem");
        let origin_ok = match self.hosts {
            HostRule::AnyForTests => true,
            HostRule::AwsSns => {
                parsed.scheme() == "https"
                    && parsed.host_str().is_some_and(is_sns_host)
                    && parsed.username().is_empty()
                    && parsed.password().is_none()
                    && parsed.port().is_none_or(|port| port == 443)
            }
        };
        let ok = pem_ok && origin_ok;
        if ok {
            Ok(parsed)
        } else {
            Err(Error::Unauthorized(
                "SNS URL must be https://sns.<region>.amazonaws.com(.cn)/…".into(),
            ))
        }
    }

    async fn get(&self, url: Url, what: &str) -> Result<String> {
        let response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| Error::backend(format!("fetching the {what}"), e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(Error::backend(
                format!("fetching the {what}"),
                format!("HTTP {status}"),
            ));
        }
        response
            .text()
            .await
            .map_err(|e| Error::backend(format!("reading the {what}"), e))
    }

    async fn public_key(&self, cert_url: &str) -> Result<RsaPublicKey> {
        let url = self.checked_url(cert_url, true)?;
        if let Some((_, key)) = self.lock_keys().get(cert_url) {
            return Ok(key.clone());
        }
        let pem = self.get(url, "SNS signing certificate").await?;
        let key = rsa_key_of(&pem)?;
        let mut keys = self.lock_keys();
        // Full: the certificate fetched first goes (SNS moves to new ones, not back).
        if keys.len() >= MAX_CACHED_KEYS && !keys.contains_key(cert_url) {
            let oldest = keys
                .iter()
                .min_by_key(|(_, (order, _))| *order)
                .map(|(url, _)| url.clone());
            if let Some(oldest) = oldest {
                keys.remove(&oldest);
            }
        }
        let order = keys.values().map(|(order, _)| order + 1).max().unwrap_or(0);
        keys.insert(cert_url.to_owned(), (order, key.clone()));
        Ok(key)
    }

    fn lock_keys(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u64, RsaPublicKey)>> {
        // The map holds only parsed keys, valid even if a holder panicked.
        self.keys
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Checks `envelope`'s signature: `Ok` when SNS signed it, `Error::Unauthorized` when
    /// it is forged or unverifiable, `Error::Backend` when the certificate could not be
    /// fetched (worth a retry).
    pub(super) async fn verify(&self, envelope: &Envelope) -> Result<()> {
        let text = string_to_sign(envelope)?;
        let signature = BASE64
            .decode(envelope.signature.trim())
            .ok()
            .and_then(|bytes| Signature::try_from(bytes.as_slice()).ok())
            .ok_or_else(|| Error::Unauthorized("SNS signature is not base64".into()))?;
        let key = self.public_key(&envelope.signing_cert_url).await?;
        let valid = match envelope.signature_version.as_str() {
            "1" => VerifyingKey::<sha1::Sha1>::new(key)
                .verify(text.as_bytes(), &signature)
                .is_ok(),
            "2" => VerifyingKey::<sha2::Sha256>::new(key)
                .verify(text.as_bytes(), &signature)
                .is_ok(),
            _ => {
                return Err(Error::Unauthorized(
                    "SignatureVersion must be 1 or 2".into(),
                ));
            }
        };
        if valid {
            Ok(())
        } else {
            Err(Error::Unauthorized("SNS signature does not match".into()))
        }
    }

    /// Confirms a subscription by fetching its `SubscribeURL`.
    pub(super) async fn confirm(&self, subscribe_url: &str) -> Result<()> {
        let url = self.checked_url(subscribe_url, false)?;
        self.get(url, "SNS subscription confirmation")
            .await
            .map(drop)
    }
}

/// `sns.<region>.amazonaws.com` or `sns.<region>.amazonaws.com.cn`.
fn is_sns_host(host: &str) -> bool {
    let Some(rest) = host.strip_prefix("sns.") else {
        return false;
    };
    let region = rest
        .strip_suffix(".amazonaws.com")
        .or_else(|| rest.strip_suffix(".amazonaws.com.cn"));
    region.is_some_and(|region| {
        !region.is_empty()
            && region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    })
}

/// The RSA public key of a PEM certificate.
fn rsa_key_of(pem: &str) -> Result<RsaPublicKey> {
    let unusable = |what: &str| Error::Unauthorized(format!("SNS signing certificate: {what}"));
    let cert = Certificate::from_pem(pem.trim().as_bytes())
        .map_err(|_| unusable("not a PEM certificate"))?;
    let spki = cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|_| unusable("unreadable public key"))?;
    RsaPublicKey::from_public_key_der(&spki).map_err(|_| unusable("not an RSA key"))
}

/// Whether an SNS `Timestamp` is at most [`MAX_AGE`] old and not far ahead of `now`.
fn is_recent(timestamp: &str, now: crate::domain::Millis) -> bool {
    let Ok(at) = chrono::DateTime::parse_from_rfc3339(timestamp) else {
        return false;
    };
    let age_ms = now - at.timestamp_millis();
    age_ms <= MAX_AGE.as_millis() as i64 && -age_ms <= MAX_AHEAD.as_millis() as i64
}

/// `POST /sms/sns`.
pub(super) async fn webhook(
    State(state): State<SmsState>,
    body: Bytes,
) -> std::result::Result<&'static str, ApiError> {
    let (Some(config), Some(verifier)) = (state.config.sns.as_ref(), state.sns.as_ref()) else {
        return Err(ApiError::not_found("no such route"));
    };
    // SNS posts JSON as text/plain, so the content type is not checked.
    let envelope: Envelope = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("not an SNS message: {e}")))?;
    if envelope.topic_arn != config.topic_arn {
        tracing::warn!("SNS message for another topic");
        return Err(ApiError::forbidden("unexpected TopicArn"));
    }
    if let Err(e) = verifier.verify(&envelope).await {
        return Err(match e {
            Error::Unauthorized(reason) | Error::Invalid(reason) => {
                tracing::warn!(%reason, "SNS message rejected");
                ApiError::forbidden(reason)
            }
            other => other.into(),
        });
    }
    if !is_recent(&envelope.timestamp, crate::domain::now_millis()) {
        tracing::warn!("SNS message with an old or unreadable Timestamp rejected");
        return Err(ApiError::forbidden(format!(
            "Timestamp is more than {} s old (or not RFC 3339)",
            MAX_AGE.as_secs()
        )));
    }
    match envelope.kind.as_str() {
        "SubscriptionConfirmation" => {
            let url = envelope.subscribe_url.as_deref().unwrap_or_default();
            verifier.confirm(url).await.map_err(|e| match e {
                Error::Unauthorized(reason) => ApiError::forbidden(reason),
                other => other.into(),
            })?;
            tracing::info!("SNS subscription confirmed");
        }
        "UnsubscribeConfirmation" => tracing::warn!("SNS subscription ended"),
        _ => {
            let received = parse_message(
                &envelope.message,
                &state.config.default_country,
                timestamp(&envelope.timestamp),
            )?;
            if let Outcome::Reply(_) = accept(&state, received).await? {
                tracing::info!("SMS keyword recorded; End User Messaging answers it");
            }
        }
    }
    Ok("")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(kind: &str) -> Envelope {
        Envelope {
            kind: kind.into(),
            message_id: "m1".into(),
            token: Some("tok".into()),
            topic_arn: "arn:aws:sns:us-east-1:123456789012:sms".into(),
            subject: None,
            message: "hello".into(),
            subscribe_url: Some(
                "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription".into(),
            ),
            timestamp: "2024-05-01T00:00:00.000Z".into(),
            signature_version: "2".into(),
            signature: String::new(),
            signing_cert_url: "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-x.pem"
                .into(),
        }
    }

    #[test]
    fn given_each_message_type_when_prepared_then_the_documented_string_to_sign() {
        assert_eq!(
            string_to_sign(&envelope("Notification")).unwrap(),
            "Message\nhello\nMessageId\nm1\nTimestamp\n2024-05-01T00:00:00.000Z\n\
             TopicArn\narn:aws:sns:us-east-1:123456789012:sms\nType\nNotification\n"
        );
        let mut with_subject = envelope("Notification");
        with_subject.subject = Some("Hi".into());
        assert!(
            string_to_sign(&with_subject)
                .unwrap()
                .contains("MessageId\nm1\nSubject\nHi\nTimestamp\n")
        );
        assert_eq!(
            string_to_sign(&envelope("SubscriptionConfirmation")).unwrap(),
            "Message\nhello\nMessageId\nm1\n\
             SubscribeURL\nhttps://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription\n\
             Timestamp\n2024-05-01T00:00:00.000Z\nToken\ntok\n\
             TopicArn\narn:aws:sns:us-east-1:123456789012:sms\nType\nSubscriptionConfirmation\n"
        );
        assert!(string_to_sign(&envelope("Surprise")).is_err());
    }

    #[test]
    fn given_certificate_urls_when_checked_then_only_https_pem_on_sns_hosts() {
        let verifier = SnsVerifier::new().unwrap();
        for good in [
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
            "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-abc.pem",
            "https://sns.eu-west-1.amazonaws.com:443/x.pem",
        ] {
            assert!(verifier.checked_url(good, true).is_ok(), "{good}");
        }
        for bad in [
            "http://sns.us-east-1.amazonaws.com/x.pem",
            "https://sns.us-east-1.amazonaws.com/x.txt",
            "https://sns.us-east-1.amazonaws.com.evil.com/x.pem",
            "https://evil.com/sns.us-east-1.amazonaws.com/x.pem",
            "https://s3.us-east-1.amazonaws.com/x.pem",
            "https://sns..amazonaws.com/x.pem",
            "https://user@sns.us-east-1.amazonaws.com/x.pem",
            "https://sns.us-east-1.amazonaws.com:8443/x.pem",
            "not a url",
        ] {
            assert!(
                matches!(verifier.checked_url(bad, true), Err(Error::Unauthorized(_))),
                "{bad}"
            );
        }
        assert!(
            verifier
                .checked_url(
                    "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription",
                    false
                )
                .is_ok()
        );
        let relaxed = SnsVerifier::insecure_any_host_for_tests().unwrap();
        assert!(
            relaxed
                .checked_url("http://127.0.0.1:1/cert.pem", true)
                .is_ok()
        );
        assert!(
            relaxed
                .checked_url("http://127.0.0.1:1/cert", true)
                .is_err()
        );
    }

    /// A key and self-signed certificate made for these tests only (`testdata/`).
    const TEST_KEY: &str = include_str!("testdata/sns-test-key.pem");
    const TEST_CERT: &str = include_str!("testdata/sns-test-cert.pem");

    fn sign(text: &str, version: &str) -> String {
        use rsa::pkcs8::DecodePrivateKey;
        use rsa::signature::{SignatureEncoding, Signer};
        let key = rsa::RsaPrivateKey::from_pkcs8_pem(TEST_KEY).unwrap();
        let signature = match version {
            "1" => rsa::pkcs1v15::SigningKey::<sha1::Sha1>::new(key)
                .sign(text.as_bytes())
                .to_vec(),
            _ => rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key)
                .sign(text.as_bytes())
                .to_vec(),
        };
        BASE64.encode(signature)
    }

    /// A local stand-in for SNS: serves the test certificate at `/cert.pem` and counts
    /// subscription confirmations at `/confirm`.
    async fn fake_sns() -> (String, Arc<AtomicUsize>) {
        use axum::routing::get;
        let confirmations = Arc::new(AtomicUsize::new(0));
        let counter = confirmations.clone();
        let app = axum::Router::new()
            .route("/cert.pem", get(|| async { TEST_CERT }))
            .route(
                "/confirm",
                get(move || async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    "<ConfirmSubscriptionResponse/>"
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (base, confirmations)
    }

    fn signed(mut envelope: Envelope, base: &str, version: &str) -> Envelope {
        envelope.signing_cert_url = format!("{base}/cert.pem");
        envelope.signature_version = version.into();
        envelope.signature = sign(&string_to_sign(&envelope).unwrap(), version);
        envelope
    }

    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn given_signatures_of_both_versions_when_verified_then_accepted_and_forgeries_rejected()
    {
        let (base, _) = fake_sns().await;
        let verifier = SnsVerifier::insecure_any_host_for_tests().unwrap();
        for version in ["1", "2"] {
            let good = signed(envelope("Notification"), &base, version);
            verifier.verify(&good).await.unwrap();

            let mut tampered = good.clone();
            tampered.message = "hello!".into();
            assert!(matches!(
                verifier.verify(&tampered).await,
                Err(Error::Unauthorized(_))
            ));
            let mut other_version = good.clone();
            other_version.signature_version = if version == "1" { "2" } else { "1" }.into();
            assert!(matches!(
                verifier.verify(&other_version).await,
                Err(Error::Unauthorized(_))
            ));
        }
        let mut unknown = signed(envelope("Notification"), &base, "2");
        unknown.signature_version = "3".into();
        assert!(matches!(
            verifier.verify(&unknown).await,
            Err(Error::Unauthorized(_))
        ));
    }

    #[tokio::test]
    async fn given_a_local_certificate_when_the_production_verifier_checks_then_refused_before_fetching()
     {
        let (base, _) = fake_sns().await;
        let good = signed(envelope("Notification"), &base, "2");
        let verifier = SnsVerifier::new().unwrap();
        assert!(matches!(
            verifier.verify(&good).await,
            Err(Error::Unauthorized(_))
        ));
    }

    #[tokio::test]
    async fn given_an_unreachable_certificate_when_verified_then_a_backend_error_to_retry() {
        let mut envelope = envelope("Notification");
        envelope.signing_cert_url = "http://127.0.0.1:9/cert.pem".into();
        envelope.signature = BASE64.encode([0u8; 256]);
        let verifier = SnsVerifier::insecure_any_host_for_tests().unwrap();
        assert!(matches!(
            verifier.verify(&envelope).await,
            Err(Error::Backend { .. })
        ));
    }

    #[test]
    fn given_pem_that_is_not_a_certificate_when_read_then_unauthorized() {
        assert!(rsa_key_of(TEST_CERT).is_ok());
        assert!(matches!(rsa_key_of(TEST_KEY), Err(Error::Unauthorized(_))));
        assert!(matches!(rsa_key_of("junk"), Err(Error::Unauthorized(_))));
    }

    #[tokio::test]
    async fn given_a_full_certificate_cache_when_another_certificate_is_fetched_then_one_entry_is_evicted()
     {
        let (base, _) = fake_sns().await;
        let verifier = SnsVerifier::insecure_any_host_for_tests().unwrap();
        for n in 0..=MAX_CACHED_KEYS {
            verifier
                .public_key(&format!("{base}/cert.pem?n={n}"))
                .await
                .unwrap();
        }
        let keys = verifier.lock_keys();
        assert_eq!(keys.len(), MAX_CACHED_KEYS);
        assert!(keys.contains_key(&format!("{base}/cert.pem?n={MAX_CACHED_KEYS}")));
        assert!(
            !keys.contains_key(&format!("{base}/cert.pem?n=0")),
            "the oldest goes"
        );
    }

    #[cfg(feature = "embedded")]
    mod webhook {
        use super::*;
        use crate::adapters::embedded::{EmbeddedStore, INBOUND};
        use crate::channels::sms::{SmsConfig, SmsState, SnsConfig, router};
        use crate::domain::InboundMessage;
        use crate::ports::MessageQueue;
        use http_body_util::BodyExt;
        use tower::ServiceExt;

        const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:sms";

        fn app(store: &EmbeddedStore) -> axum::Router {
            let mut config = SmsConfig::new("http://127.0.0.1:8080");
            config.sns = Some(SnsConfig {
                topic_arn: TOPIC.into(),
            });
            let state = SmsState::new(
                Arc::new(store.queue(INBOUND)),
                Arc::new(store.idempotency()),
                config,
            )
            .unwrap()
            .with_sns_verifier(SnsVerifier::insecure_any_host_for_tests().unwrap());
            router(state)
        }

        /// `envelope(kind)` stamped now, as SNS stamps what it sends.
        fn fresh(kind: &str) -> Envelope {
            let mut envelope = envelope(kind);
            envelope.timestamp = crate::domain::rfc3339(crate::domain::now_millis());
            envelope
        }

        fn json(envelope: &Envelope) -> String {
            serde_json::json!({
                "Type": envelope.kind,
                "MessageId": envelope.message_id,
                "Token": envelope.token,
                "TopicArn": envelope.topic_arn,
                "Message": envelope.message,
                "SubscribeURL": envelope.subscribe_url,
                "Timestamp": envelope.timestamp,
                "SignatureVersion": envelope.signature_version,
                "Signature": envelope.signature,
                "SigningCertURL": envelope.signing_cert_url,
                "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe"
            })
            .to_string()
        }

        async fn post(app: axum::Router, body: String) -> (u16, String) {
            let request = http::Request::post("/sms/sns")
                .header("content-type", "text/plain; charset=UTF-8")
                .header("x-amz-sns-message-type", "Notification")
                .body(axum::body::Body::from(body))
                .unwrap();
            let response = app.oneshot(request).await.unwrap();
            let status = response.status().as_u16();
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            (status, String::from_utf8_lossy(&bytes).into_owned())
        }

        async fn queued(store: &EmbeddedStore) -> Vec<InboundMessage> {
            let queue = store.queue(INBOUND);
            let batch = queue
                .receive(10, Duration::from_secs(30), Duration::ZERO)
                .await
                .unwrap();
            batch
                .iter()
                .map(|d| InboundMessage::from_json(&d.body).unwrap())
                .collect()
        }

        fn sms(id: &str) -> String {
            serde_json::json!({
                "originationNumber": "+14255550182",
                "destinationNumber": "+12125550101",
                "messageKeyword": "KEYWORD_123456789012",
                "messageBody": "Where is my order?",
                "inboundMessageId": id,
                "previousPublishedMessageId": "p1"
            })
            .to_string()
        }

        #[tokio::test]
        async fn given_a_signed_notification_when_posted_twice_then_one_message_is_queued() {
            let dir = tempfile::tempdir().unwrap();
            let store = EmbeddedStore::open(dir.path()).unwrap();
            let (base, _) = fake_sns().await;
            let mut notification = fresh("Notification");
            notification.topic_arn = TOPIC.into();
            notification.message = sms("in-1");
            let notification = signed(notification, &base, "2");

            assert_eq!(post(app(&store), json(&notification)).await.0, 200);
            assert_eq!(post(app(&store), json(&notification)).await.0, 200);
            let messages = queued(&store).await;
            assert_eq!(messages.len(), 1);
            assert_eq!(messages[0].customer.address, "+14255550182");
            assert_eq!(messages[0].text, "Where is my order?");
        }

        #[tokio::test]
        async fn given_a_forged_or_foreign_notification_when_posted_then_403_and_nothing_queued() {
            let dir = tempfile::tempdir().unwrap();
            let store = EmbeddedStore::open(dir.path()).unwrap();
            let (base, _) = fake_sns().await;
            let mut notification = fresh("Notification");
            notification.topic_arn = TOPIC.into();
            notification.message = sms("in-2");
            let good = signed(notification, &base, "1");

            let mut forged = good.clone();
            forged.message = sms("in-3");
            assert_eq!(post(app(&store), json(&forged)).await.0, 403);

            let mut foreign = good.clone();
            foreign.topic_arn = "arn:aws:sns:us-east-1:999999999999:other".into();
            let foreign = signed(foreign, &base, "1");
            assert_eq!(post(app(&store), json(&foreign)).await.0, 403);

            assert_eq!(post(app(&store), "{".into()).await.0, 400);
            assert!(queued(&store).await.is_empty());
        }

        #[tokio::test]
        async fn given_a_signed_subscription_confirmation_when_posted_then_subscribe_url_is_fetched()
         {
            let dir = tempfile::tempdir().unwrap();
            let store = EmbeddedStore::open(dir.path()).unwrap();
            let (base, confirmations) = fake_sns().await;
            let mut confirmation = fresh("SubscriptionConfirmation");
            confirmation.topic_arn = TOPIC.into();
            confirmation.subscribe_url = Some(format!("{base}/confirm"));
            let confirmation = signed(confirmation, &base, "1");

            let mut forged = confirmation.clone();
            forged.subscribe_url = Some(format!("{base}/confirm?evil=1"));
            assert_eq!(post(app(&store), json(&forged)).await.0, 403);
            assert_eq!(confirmations.load(Ordering::SeqCst), 0);

            assert_eq!(post(app(&store), json(&confirmation)).await.0, 200);
            assert_eq!(confirmations.load(Ordering::SeqCst), 1);
            assert!(queued(&store).await.is_empty());
        }

        #[tokio::test]
        async fn given_a_signed_notification_older_than_an_hour_when_posted_then_403_and_nothing_queued()
         {
            let dir = tempfile::tempdir().unwrap();
            let store = EmbeddedStore::open(dir.path()).unwrap();
            let (base, _) = fake_sns().await;
            let mut old = fresh("Notification");
            old.topic_arn = TOPIC.into();
            old.message = sms("in-old");
            old.timestamp = crate::domain::rfc3339(crate::domain::now_millis() - 3_601_000);
            let old = signed(old, &base, "2");
            let (status, body) = post(app(&store), json(&old)).await;
            assert_eq!(status, 403, "{body}");
            assert!(body.contains("Timestamp"), "{body}");
            assert!(queued(&store).await.is_empty());

            let mut recent = fresh("Notification");
            recent.topic_arn = TOPIC.into();
            recent.message = sms("in-recent");
            recent.timestamp = crate::domain::rfc3339(crate::domain::now_millis() - 3_000_000);
            let recent = signed(recent, &base, "2");
            assert_eq!(post(app(&store), json(&recent)).await.0, 200);
        }
    }
}
