//! `kefu simulate email`: the simulator mails the runner's SMTP address as a customer's
//! client would, then finds the threaded reply in the runner's Maildir outbox.
//!
//! The SMTP side here is kefu's own server with a sink that records the mail and files an
//! answer in the outbox, as the runner's dispatcher does (the runner itself is tested end
//! to end in `infra/local/tests/email.rs`).

use async_trait::async_trait;
use kefu::channels::email::smtp::{SmtpLimits, serve};
use kefu::channels::email::{self, Mailbox, OutgoingMail};
use kefu::ports::{MailSink, ReceivedMail};
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};

/// Records each mail and, when `outbox` is set, files a reply to it there.
struct Runner {
    mail: Mutex<Vec<ReceivedMail>>,
    outbox: Option<PathBuf>,
}

#[async_trait]
impl MailSink for Runner {
    async fn accept(&self, mail: ReceivedMail) -> kefu::Result<()> {
        if let Some(outbox) = &self.outbox {
            let question = email::parse(&mail.raw)?;
            let reply = OutgoingMail {
                from: Mailbox {
                    address: "support@kefu.localhost".into(),
                    name: None,
                },
                to: question.from.clone(),
                reply_to: None,
                subject: "Re: 运费".into(),
                text: "满99元全国包邮。".into(),
                html: email::html_of("满99元全国包邮。"),
                message_id: "reply-1@kefu.localhost".into(),
                in_reply_to: question.message_id.as_ref().map(|id| format!("<{id}>")),
                references: None,
                date: chrono::Utc::now(),
                auto_submitted: true,
            };
            std::fs::create_dir_all(outbox.join("new")).unwrap();
            std::fs::write(outbox.join("new/1.reply"), reply.to_mime()).unwrap();
        }
        self.mail.lock().unwrap().push(mail);
        Ok(())
    }
}

async fn runner(outbox: Option<PathBuf>) -> (String, Arc<Runner>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let runner = Arc::new(Runner {
        mail: Mutex::new(Vec::new()),
        outbox,
    });
    tokio::spawn(serve(listener, SmtpLimits::default(), runner.clone()));
    (addr, runner)
}

fn simulate(smtp: &str, data: &std::path::Path, wait: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_kefu"))
        .args(["simulate", "email", "运费怎么算？", "--wait", wait])
        .env("KEFU_SMTP_ADDR", smtp)
        .env("KEFU_DATA_DIR", data)
        .env_remove("KEFU_EMAIL_ADDRESS")
        .output()
        .expect("the kefu binary runs")
}

#[tokio::test(flavor = "multi_thread")]
async fn given_a_runner_when_simulating_an_email_then_it_is_mailed_and_the_reply_printed() {
    let data = tempfile::tempdir().unwrap();
    let (smtp, runner) = runner(Some(data.path().join("outbox"))).await;
    let dir = data.path().to_owned();
    let output = tokio::task::spawn_blocking(move || simulate(&smtp, &dir, "10"))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("Re: 运费"), "{stdout}");
    assert!(stdout.contains("满99元全国包邮"), "{stdout}");

    let mail = runner.mail.lock().unwrap();
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0].mail_from, "li.wei@example.com");
    assert_eq!(mail[0].recipients, ["support@kefu.localhost"]);
    let sent = email::parse(&mail[0].raw).unwrap();
    assert_eq!(sent.text.trim(), "运费怎么算？");
    assert!(sent.message_id.is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn given_no_reply_when_the_wait_ends_then_exit_2_saying_where_it_looked() {
    let data = tempfile::tempdir().unwrap();
    let (smtp, runner) = runner(None).await;
    let dir = data.path().to_owned();
    let output = tokio::task::spawn_blocking(move || simulate(&smtp, &dir, "1"))
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("outbox"), "{stderr}");
    assert_eq!(runner.mail.lock().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn given_no_runner_when_simulating_an_email_then_exit_2_naming_the_address() {
    let data = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let dir = data.path().to_owned();
    let addr = closed.clone();
    let output = tokio::task::spawn_blocking(move || simulate(&addr, &dir, "0"))
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains(&closed));
}
