//! Email on the local runner: an SMTP listener that any mail client can write to, storing
//! each mail as SES would (raw under `email/inbound/<id>` in the blob store) before handing
//! it to the same ingress as the `email-webhook` Lambda; replies go to a Maildir outbox
//! under the data dir, or to an SMTP relay.

use anyhow::Context;
use async_trait::async_trait;
use kefu::adapters::PrefixedBlobs;
use kefu::channels::email::smtp::SmtpLimits;
use kefu::channels::email::{
    Delivery, EmailConfig, EmailIngress, MaildirTransport, SmtpRelayTransport, raw_key,
};
use kefu::config;
use kefu::domain::now_millis;
use kefu::ports::MailTransport;
use kefu::ports::{BlobStore, IdempotencyGuard, MessageQueue};
use kefu::ports::{MailSink, ReceivedMail};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

/// Where the email channel's blobs live in the blob store, as in the bucket in AWS.
pub const EMAIL_PREFIX: &str = "email/";

/// The local email settings.
#[derive(Debug, Clone)]
pub struct EmailSettings {
    /// The support mailbox (`KEFU_EMAIL_ADDRESS`, default `support@kefu.localhost`).
    pub mailbox: EmailConfig,
    /// `KEFU_SMTP_ADDR` (default `127.0.0.1:2525`; port 0 picks a free one).
    pub smtp_addr: SocketAddr,
    /// `KEFU_SMTP_RELAY`: replies are relayed there instead of written to the outbox.
    pub relay: Option<String>,
}

impl EmailSettings {
    /// From the environment; `None` when `KEFU_SMTP_ADDR=off`.
    pub fn from_env() -> anyhow::Result<Option<Self>> {
        let addr = config::or("KEFU_SMTP_ADDR", kefu::channels::email::smtp::DEFAULT_ADDR);
        if addr.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        Ok(Some(Self {
            mailbox: EmailConfig::from_env_or("support@kefu.localhost")?,
            smtp_addr: addr
                .parse()
                .context("KEFU_SMTP_ADDR must be host:port or off")?,
            relay: config::optional("KEFU_SMTP_RELAY"),
        }))
    }

    /// Where replies go: the relay when set, else the Maildir `outbox/` in `data_dir`.
    pub fn transport(&self, data_dir: &Path) -> anyhow::Result<Arc<dyn MailTransport>> {
        Ok(match &self.relay {
            Some(relay) => Arc::new(SmtpRelayTransport::new(relay.clone())),
            None => Arc::new(MaildirTransport::open(data_dir.join("outbox"))?),
        })
    }
}

/// Stores each accepted mail as SES would, then runs the ingress on it.
struct LocalMailbox {
    raw: Arc<dyn BlobStore>,
    ingress: EmailIngress,
}

#[async_trait]
impl MailSink for LocalMailbox {
    /// Only the support mailbox and its `+` addresses: other recipients are refused at
    /// `RCPT` rather than accepted and dropped.
    fn accepts(&self, recipient: &str) -> bool {
        self.ingress.config().is_mailbox(recipient)
    }

    async fn accept(&self, mail: ReceivedMail) -> kefu::Result<()> {
        self.raw.put(&raw_key(&mail.id), mail.raw.clone()).await?;
        let delivery = Delivery {
            platform_id: mail.id,
            recipients: mail.recipients,
            // No scanner locally: nothing is judged spam or infected.
            spam: None,
            virus: None,
            spf: None,
            dkim: None,
            dmarc: Some(local_dmarc(mail.peer.ip()).to_owned()),
            received_at: now_millis(),
        };
        // Dropped mail is still accepted (and logged), as SES accepts it.
        self.ingress.receive(mail.raw, &delivery).await.map(|_| ())
    }
}

/// The DMARC verdict of a mail received locally, where there are no DNS records to check
/// the sender against: a client on loopback is this machine's own user, whose mail passes;
/// any other client (`KEFU_SMTP_ADDR` bound beyond loopback) could claim any `From`, so its
/// mail fails and is dropped as `unauthenticated`.
fn local_dmarc(peer: IpAddr) -> &'static str {
    if peer.to_canonical().is_loopback() {
        "PASS"
    } else {
        "FAIL"
    }
}

/// Binds the SMTP listener and serves it in a task; returns the bound address.
pub async fn listen(
    settings: &EmailSettings,
    blobs: Arc<dyn BlobStore>,
    inbound: Arc<dyn MessageQueue>,
    guard: Arc<dyn IdempotencyGuard>,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(settings.smtp_addr)
        .await
        .with_context(|| format!("binding SMTP on {} (KEFU_SMTP_ADDR)", settings.smtp_addr))?;
    let addr = listener.local_addr()?;
    let email_blobs: Arc<dyn BlobStore> = Arc::new(PrefixedBlobs::new(blobs, EMAIL_PREFIX));
    let mailbox = LocalMailbox {
        raw: email_blobs.clone(),
        ingress: EmailIngress::new(inbound, email_blobs, guard, settings.mailbox.clone()),
    };
    let server = tokio::spawn(kefu::channels::email::smtp::serve(
        listener,
        SmtpLimits::default(),
        Arc::new(mailbox),
    ));
    Ok((addr, server))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_client_addresses_when_judged_then_only_loopback_passes_dmarc() {
        for (peer, verdict) in [
            ("127.0.0.1", "PASS"),
            ("127.0.0.2", "PASS"),
            ("::1", "PASS"),
            ("::ffff:127.0.0.1", "PASS"),
            ("192.168.1.20", "FAIL"),
            ("::ffff:10.0.0.5", "FAIL"),
            ("2001:db8::1", "FAIL"),
        ] {
            let ip: IpAddr = peer.parse().unwrap();
            assert_eq!(local_dmarc(ip), verdict, "{peer}");
        }
    }
}
