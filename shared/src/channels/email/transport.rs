//! Where composed mail goes: [`SesTransport`] (Amazon SESv2, with the `aws-senders`
//! feature) in AWS, [`MaildirTransport`] (a local outbox) for the local runner.

use super::sender::MailTransport;
use crate::dispatch::SendError;
use crate::{Error, Result};
use async_trait::async_trait;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A Maildir outbox: each mail is a file in `new/`, written by the Maildir delivery
/// protocol (into `tmp/` first, then renamed), so a reader never sees half a mail. Any
/// Maildir reader (mutt, a mail client, a test) can open it.
#[derive(Debug, Clone)]
pub struct MaildirTransport {
    dir: PathBuf,
}

impl MaildirTransport {
    /// The Maildir at `dir`, creating it (`tmp/`, `new/`, `cur/`) when missing.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        for sub in ["tmp", "new", "cur"] {
            std::fs::create_dir_all(dir.join(sub)).map_err(|e| {
                Error::backend(format!("creating the Maildir {}", dir.display()), e)
            })?;
        }
        Ok(Self { dir })
    }

    /// The Maildir's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[async_trait]
impl MailTransport for MaildirTransport {
    /// Delivers into `new/`; returns the mail's `Message-ID` (without angle brackets), or
    /// the file name when it has none.
    async fn send(&self, _from: &str, _to: &str, raw: Vec<u8>) -> Result<String, SendError> {
        // `<seconds>.<unique>.<host>`, as Maildir names go; the uuid makes it unique.
        let name = format!(
            "{}.{}.kefu",
            chrono::Utc::now().timestamp(),
            uuid::Uuid::new_v4().simple()
        );
        let id = message_id_of(&raw).unwrap_or_else(|| name.clone());
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || deliver(&dir, &name, &raw))
            .await
            .map_err(|e| SendError::Transient(format!("writing to the Maildir: {e}")))?
            .map_err(|e| {
                SendError::Transient(format!(
                    "writing to the Maildir {}: {e}",
                    self.dir.display()
                ))
            })?;
        Ok(id)
    }
}

/// Writes `raw` to `tmp/<name>`, flushes it to disk, then renames it into `new/`.
fn deliver(dir: &Path, name: &str, raw: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join("tmp").join(name);
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .and_then(|mut file| {
            file.write_all(raw)?;
            file.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, dir.join("new").join(name)));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// The `Message-ID` of `raw`, without angle brackets.
pub(super) fn message_id_of(raw: &[u8]) -> Option<String> {
    mail_parser::MessageParser::new()
        .parse_headers(raw)?
        .message_id()
        .map(str::to_owned)
}

#[cfg(feature = "aws-senders")]
pub use ses::SesTransport;

#[cfg(feature = "aws-senders")]
mod ses {
    use super::MailTransport;
    use crate::dispatch::SendError;
    use async_trait::async_trait;
    use aws_config::SdkConfig;
    use aws_sdk_sesv2::Client;
    use aws_sdk_sesv2::config::http::HttpResponse;
    use aws_sdk_sesv2::config::retry::RetryConfig;
    use aws_sdk_sesv2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
    use aws_sdk_sesv2::operation::send_email::SendEmailError;
    use aws_sdk_sesv2::primitives::Blob;
    use aws_sdk_sesv2::types::{Destination, EmailContent, RawMessage};

    /// Sends through Amazon SESv2 `SendEmail` with raw content (`Content.Raw`,
    /// `FromEmailAddress`, `Destination.ToAddresses`, optional `ConfigurationSetName`);
    /// returns SES's `MessageId` (SES sends the mail as `<MessageId>@<region>.amazonses.com`).
    ///
    /// | SES answers | Outcome |
    /// |---|---|
    /// | `TooManyRequestsException`, HTTP 429 or 5xx, timeout, no connection, unreadable answer | [`SendError::Transient`] |
    /// | `MessageRejected`, `MailFromDomainNotVerifiedException`, `AccountSuspendedException`, `SendingPausedException`, `BadRequestException`, other 4xx | [`SendError::Permanent`] |
    #[derive(Debug, Clone)]
    pub struct SesTransport {
        client: Client,
        configuration_set: Option<String>,
    }

    impl SesTransport {
        /// A transport over a client for `config` (region, credentials, endpoint override),
        /// sending with `configuration_set` when given. The SDK's own retries are off: the
        /// dispatcher retries transient failures, at the channel's rate, so one attempt
        /// here is one attempt in its count.
        pub fn new(config: &SdkConfig, configuration_set: Option<String>) -> Self {
            let ses_config = aws_sdk_sesv2::config::Builder::from(config)
                .retry_config(RetryConfig::disabled())
                .build();
            Self::from_client(Client::from_conf(ses_config), configuration_set)
        }

        /// A transport over `client`, used as it is.
        pub fn from_client(client: Client, configuration_set: Option<String>) -> Self {
            Self {
                client,
                configuration_set: configuration_set.filter(|name| !name.trim().is_empty()),
            }
        }
    }

    #[async_trait]
    impl MailTransport for SesTransport {
        async fn send(&self, from: &str, to: &str, raw: Vec<u8>) -> Result<String, SendError> {
            let raw = RawMessage::builder()
                .data(Blob::new(raw))
                .build()
                .map_err(|e| SendError::Permanent(format!("building the SES request: {e}")))?;
            let answer = self
                .client
                .send_email()
                .from_email_address(from)
                .destination(Destination::builder().to_addresses(to).build())
                .content(EmailContent::builder().raw(raw).build())
                .set_configuration_set_name(self.configuration_set.clone())
                .send()
                .await
                .map_err(classify)?;
            let id = answer.message_id().unwrap_or_default().to_owned();
            if id.is_empty() {
                // Sent all the same: failing would send it again.
                tracing::warn!("SES accepted a mail without returning its MessageId");
            }
            Ok(id)
        }
    }

    /// Transient or permanent, with a reason agents can read (see [`SesTransport`]).
    fn classify(error: SdkError<SendEmailError, HttpResponse>) -> SendError {
        let status = error.raw_response().map(|raw| raw.status().as_u16());
        match error {
            SdkError::ServiceError(context) => {
                let error = context.into_err();
                let reason = format!(
                    "SES {} ({}): {}",
                    error.code().unwrap_or("error"),
                    status.map_or("no status".to_owned(), |s| s.to_string()),
                    error.message().unwrap_or("no message")
                );
                let transient = match &error {
                    SendEmailError::TooManyRequestsException(_) => true,
                    SendEmailError::MessageRejected(_)
                    | SendEmailError::MailFromDomainNotVerifiedException(_)
                    | SendEmailError::AccountSuspendedException(_)
                    | SendEmailError::SendingPausedException(_)
                    | SendEmailError::BadRequestException(_)
                    | SendEmailError::NotFoundException(_)
                    | SendEmailError::LimitExceededException(_) => false,
                    _ => status.is_none_or(|s| s == 429 || s >= 500),
                };
                if transient {
                    SendError::Transient(reason)
                } else {
                    SendError::Permanent(reason)
                }
            }
            SdkError::ConstructionFailure(_) => SendError::Permanent(format!(
                "building the SES request: {}",
                DisplayErrorContext(&error)
            )),
            // Timeouts, connection failures, unreadable answers.
            error => {
                SendError::Transient(format!("SES unreachable: {}", DisplayErrorContext(&error)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn given_a_mail_when_delivered_then_it_is_in_new_whole_and_named_by_its_id() {
        let dir = tempfile::tempdir().unwrap();
        let maildir = MaildirTransport::open(dir.path().join("outbox")).unwrap();
        for sub in ["tmp", "new", "cur"] {
            assert!(maildir.dir().join(sub).is_dir(), "{sub}");
        }
        let raw = b"Message-ID: <m1@shop.example>\r\nSubject: x\r\n\r\nbody\r\n".to_vec();
        let id = maildir
            .send("a@b.example", "c@d.example", raw.clone())
            .await
            .unwrap();
        assert_eq!(id, "m1@shop.example");
        let files: Vec<_> = std::fs::read_dir(maildir.dir().join("new"))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        assert_eq!(files.len(), 1);
        assert_eq!(std::fs::read(&files[0]).unwrap(), raw);
        assert!(
            std::fs::read_dir(maildir.dir().join("tmp"))
                .unwrap()
                .next()
                .is_none()
        );
    }
}
