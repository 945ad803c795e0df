//! [`MaildirTransport`]: composed mail into a local outbox, for the local runner (in AWS,
//! `adapters::aws::SesTransport` sends it with SESv2).

use crate::ports::MailTransport;
use crate::ports::SendError;
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
