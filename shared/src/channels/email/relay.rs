//! [`SmtpRelayTransport`]: replies handed to an SMTP server (a local mail catcher such as
//! mailpit, or the shop's relay), for the local runner with `KEFU_SMTP_RELAY`.

use super::smtp::{RelayError, relay};
use super::transport::message_id_of;
use crate::ports::MailTransport;
use crate::ports::SendError;
use async_trait::async_trait;

/// Relays mail to the SMTP server at `host:port` (plain SMTP, no authentication).
#[derive(Debug, Clone)]
pub struct SmtpRelayTransport {
    addr: String,
}

impl SmtpRelayTransport {
    /// A transport relaying to `addr` (`host:port`).
    pub fn new(addr: impl Into<String>) -> Self {
        Self { addr: addr.into() }
    }
}

#[async_trait]
impl MailTransport for SmtpRelayTransport {
    /// Returns the mail's `Message-ID`: the relay keeps it as is.
    async fn send(&self, from: &str, to: &str, raw: Vec<u8>) -> Result<String, SendError> {
        let id = message_id_of(&raw)
            .ok_or_else(|| SendError::Permanent("the mail has no Message-ID".into()))?;
        relay(&self.addr, from, &[to.to_owned()], &raw)
            .await
            .map_err(|e| match e {
                RelayError::Transient(reason) => {
                    SendError::Transient(format!("SMTP relay {}: {reason}", self.addr))
                }
                RelayError::Permanent(reason) => {
                    SendError::Permanent(format!("SMTP relay {}: {reason}", self.addr))
                }
            })?;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::email::smtp::{SmtpLimits, serve};
    use crate::ports::{MailSink, ReceivedMail};
    use std::sync::{Arc, Mutex};

    /// Keeps what it accepts, or refuses everything.
    #[derive(Default)]
    struct Catcher {
        mail: Mutex<Vec<ReceivedMail>>,
        refuse: bool,
    }

    #[async_trait]
    impl MailSink for Catcher {
        async fn accept(&self, mail: ReceivedMail) -> crate::Result<()> {
            if self.refuse {
                return Err(crate::Error::Invalid("full".into()));
            }
            self.mail.lock().unwrap().push(mail);
            Ok(())
        }
    }

    async fn server(catcher: Arc<Catcher>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(serve(listener, SmtpLimits::default(), catcher));
        addr
    }

    const MAIL: &[u8] = b"From: support@shop.example\r\nTo: li@example.com\r\nMessage-ID: <m1@shop.example>\r\nSubject: Re: hi\r\n\r\nhello\r\n";

    #[tokio::test]
    async fn given_a_relay_when_a_reply_is_sent_then_it_receives_the_mail_as_composed() {
        let catcher = Arc::new(Catcher::default());
        let transport = SmtpRelayTransport::new(server(catcher.clone()).await);
        let id = transport
            .send("support@shop.example", "li@example.com", MAIL.to_vec())
            .await
            .unwrap();
        assert_eq!(id, "m1@shop.example");
        let mail = catcher.mail.lock().unwrap();
        assert_eq!(mail.len(), 1);
        assert_eq!(mail[0].mail_from, "support@shop.example");
        assert_eq!(mail[0].recipients, ["li@example.com"]);
        assert_eq!(mail[0].raw, MAIL);
    }

    #[tokio::test]
    async fn given_a_relay_that_fails_or_is_down_when_sent_then_the_error_is_transient() {
        let refusing = Arc::new(Catcher {
            refuse: true,
            ..Catcher::default()
        });
        let transport = SmtpRelayTransport::new(server(refusing).await);
        let refused = transport
            .send("s@x.example", "c@y.example", MAIL.to_vec())
            .await;
        assert!(
            matches!(refused, Err(SendError::Transient(_))),
            "{refused:?}"
        );

        let down = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().to_string()
        };
        let unreachable = SmtpRelayTransport::new(down)
            .send("s@x.example", "c@y.example", MAIL.to_vec())
            .await;
        assert!(
            matches!(unreachable, Err(SendError::Transient(_))),
            "{unreachable:?}"
        );
    }

    #[tokio::test]
    async fn given_a_mail_without_message_id_when_sent_then_it_is_refused_for_good() {
        let transport = SmtpRelayTransport::new("127.0.0.1:9");
        let sent = transport
            .send(
                "s@x.example",
                "c@y.example",
                b"Subject: x\r\n\r\nno id\r\n".to_vec(),
            )
            .await;
        assert!(matches!(sent, Err(SendError::Permanent(_))), "{sent:?}");
    }
}
