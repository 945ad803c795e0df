//! End to end on the local runner: a customer mails the support address over SMTP and the
//! bot's answer lands in the Maildir outbox, threaded under the customer's mail; their
//! answer to that reply threads back into the same conversation; the same mail delivered
//! twice is answered once. The listener refuses recipients other than the support
//! mailbox, and a flood of huge HTML mails does not stall the runner's HTTP side.

mod common;

use common::{free_addr, start};
use kefu::channels::email::{self, ParsedMail, smtp};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

const SUPPORT: &str = "support@shop.example";
const CUSTOMER: &str = "li.wei@example.com";

/// A customer's mail, as a mail client writes it.
fn customer_mail(
    message_id: &str,
    subject: &str,
    body: &str,
    in_reply_to: Option<&str>,
) -> Vec<u8> {
    let threading = in_reply_to
        .map(|id| format!("In-Reply-To: <{id}>\r\nReferences: <{id}>\r\n"))
        .unwrap_or_default();
    format!(
        "From: Li Wei <{CUSTOMER}>\r\nTo: {SUPPORT}\r\nSubject: {subject}\r\n\
         Message-ID: <{message_id}>\r\n{threading}Date: Sun, 22 Nov 2026 08:00:00 +0800\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

/// The mails in the outbox (`new/`), parsed, with their raw text.
fn outbox(data: &Path) -> Vec<(ParsedMail, String)> {
    let Ok(entries) = std::fs::read_dir(data.join("outbox/new")) else {
        return Vec::new();
    };
    entries
        .map(|entry| {
            let raw = std::fs::read(entry.unwrap().path()).unwrap();
            (
                email::parse(&raw).unwrap(),
                String::from_utf8_lossy(&raw).into_owned(),
            )
        })
        .collect()
}

/// Waits until the outbox holds a reply to `message_id`.
async fn reply_to(data: &Path, message_id: &str) -> (ParsedMail, String) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Some(found) = outbox(data)
            .into_iter()
            .find(|(mail, _)| mail.in_reply_to.as_deref() == Some(message_id))
        {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no reply to {message_id} in the outbox: {:?}", outbox(data));
}

#[tokio::test(flavor = "multi_thread")]
async fn given_a_mail_over_smtp_then_a_threaded_reply_lands_in_the_outbox_once() {
    let data = tempfile::tempdir().unwrap();
    let (addr, smtp_addr) = (free_addr(), free_addr());
    let smtp_setting = smtp_addr.to_string();
    let data_dir = data.path().to_owned();
    let mut runner = tokio::task::spawn_blocking(move || {
        start(
            addr,
            &data_dir,
            &[
                ("KEFU_SMTP_ADDR", smtp_setting.as_str()),
                ("KEFU_EMAIL_ADDRESS", SUPPORT),
                ("KEFU_SHOP_NAME", "小店"),
            ],
        )
    })
    .await
    .unwrap();
    let smtp = smtp_addr.to_string();
    let recipients = [SUPPORT.to_owned()];

    // A new thread, delivered twice (a client retrying after a lost 250).
    let first = customer_mail(
        "q1@example.com",
        "运费怎么算",
        "你好，请问运费怎么算？",
        None,
    );
    smtp::relay(&smtp, CUSTOMER, &recipients, &first)
        .await
        .unwrap();
    smtp::relay(&smtp, CUSTOMER, &recipients, &first)
        .await
        .unwrap();
    let (reply, raw) = reply_to(data.path(), "q1@example.com").await;

    assert_eq!(reply.from.address, SUPPORT);
    assert_eq!(reply.recipients, [CUSTOMER]);
    assert_eq!(reply.subject.as_deref(), Some("Re: 运费怎么算"));
    assert_eq!(reply.references, ["q1@example.com"]);
    assert!(reply.text.contains("满99元全国包邮"), "{}", reply.text);
    assert!(raw.contains("Content-Type: text/html"), "{raw}");
    let reply_to_line = raw
        .lines()
        .find(|line| line.starts_with("Reply-To:"))
        .expect("a Reply-To header");
    assert!(reply_to_line.contains("support+c"), "{reply_to_line}");
    assert!(raw.contains("Auto-Submitted: auto-replied"), "{raw}");
    let mail_stored = std::fs::read_dir(data.path().join("blobs/email/inbound"))
        .unwrap()
        .count();
    assert_eq!(mail_stored, 2, "each delivery is kept raw, as SES keeps it");

    // The customer answers the reply: same conversation, answered in the same thread.
    let our_id = reply
        .message_id
        .clone()
        .expect("the reply has a Message-ID");
    let answer = customer_mail(
        "q2@example.com",
        "Re: 运费怎么算",
        "How long does a refund take?\r\n\r\nOn Sun, support wrote:\r\n> 满99元全国包邮",
        Some(&our_id),
    );
    smtp::relay(&smtp, CUSTOMER, &recipients, &answer)
        .await
        .unwrap();
    let (second, _) = reply_to(data.path(), "q2@example.com").await;
    assert_eq!(second.subject.as_deref(), Some("Re: 运费怎么算"));
    assert_eq!(second.references, [our_id.as_str(), "q2@example.com"]);
    assert!(
        second.text.to_lowercase().contains("refund"),
        "{}",
        second.text
    );

    // The duplicate delivery produced no second reply.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let replies = outbox(data.path());
    runner.kill().unwrap();
    runner.wait().unwrap();
    assert_eq!(replies.len(), 2, "{replies:?}");
}

/// The runner process, killed when the test ends, also when it fails.
struct Runner(Child);

impl Drop for Runner {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A runner with the support mailbox on `smtp_addr`; returns it and its HTTP address.
async fn runner_with_smtp(data: &Path, smtp_addr: SocketAddr) -> (Runner, SocketAddr) {
    let addr = free_addr();
    let data_dir = data.to_owned();
    let smtp_setting = smtp_addr.to_string();
    let child = tokio::task::spawn_blocking(move || {
        start(
            addr,
            &data_dir,
            &[
                ("KEFU_SMTP_ADDR", smtp_setting.as_str()),
                ("KEFU_EMAIL_ADDRESS", SUPPORT),
            ],
        )
    })
    .await
    .unwrap();
    (Runner(child), addr)
}

#[tokio::test(flavor = "multi_thread")]
async fn given_a_recipient_other_than_the_support_mailbox_when_mailed_over_smtp_then_550_5_1_1_at_rcpt()
 {
    let data = tempfile::tempdir().unwrap();
    let smtp_addr = free_addr();
    let (_runner, _) = runner_with_smtp(data.path(), smtp_addr).await;
    let smtp = smtp_addr.to_string();
    let mail = customer_mail("r1@example.com", "hi", "hello", None);

    for other in ["sales@shop.example", "support@elsewhere.example"] {
        let refused = smtp::relay(&smtp, CUSTOMER, &[other.to_owned()], &mail).await;
        assert!(
            matches!(&refused, Err(smtp::RelayError::Permanent(text)) if text.contains("550 5.1.1")),
            "{other}: {refused:?}"
        );
    }
    let inbound = data.path().join("blobs/email/inbound");
    let stored = std::fs::read_dir(&inbound).map_or(0, |entries| entries.count());
    assert_eq!(stored, 0, "nothing kept for a refused recipient");

    // The mailbox and its plus addresses are taken.
    for mailbox in [SUPPORT, "Support+c0ffee@shop.example"] {
        smtp::relay(&smtp, CUSTOMER, &[mailbox.to_owned()], &mail)
            .await
            .unwrap_or_else(|e| panic!("{mailbox}: {e}"));
    }
}

/// An HTML-only newsletter of about `bytes` bytes with a `<style>` in every section, as
/// mail clients and marketing tools write them.
fn html_mail(n: usize, bytes: usize) -> Vec<u8> {
    let mut html = String::with_capacity(bytes + 4096);
    html.push_str("<html><head><title>News</title></head><body>\r\n");
    let words = "Lorem ipsum dolor sit amet &amp; consectetur adipiscing elit. ".repeat(30);
    let mut section = 0;
    while html.len() < bytes {
        section += 1;
        html.push_str(&format!(
            "<div><style>.s{section} {{ color: #333; }}</style><p class=s{section}>{words}</p></div>\r\n"
        ));
    }
    html.push_str("</body></html>\r\n");
    let head = format!(
        "From: Li Wei <{CUSTOMER}>\r\nTo: {SUPPORT}\r\nSubject: big {n}\r\n\
         Message-ID: <big-{n}@example.com>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    );
    [head.into_bytes(), html.into_bytes()].concat()
}

/// `GET /healthz` with `within` for connecting and answering: the status, or why not.
fn healthz(addr: SocketAddr, within: Duration) -> Result<u16, String> {
    let started = Instant::now();
    let mut stream = TcpStream::connect_timeout(&addr, within).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(within))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .map_err(|e| format!("no answer after {:?}: {e}", started.elapsed()))?;
    if started.elapsed() > within {
        return Err(format!("answered after {:?}", started.elapsed()));
    }
    answer
        .get(9..12)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("no status line in {answer:?}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn given_three_10_mb_html_mails_being_processed_when_healthz_is_asked_then_it_answers_within_2_s()
 {
    let data = tempfile::tempdir().unwrap();
    let smtp_addr = free_addr();
    let (_runner, addr) = runner_with_smtp(data.path(), smtp_addr).await;
    let smtp = smtp_addr.to_string();

    let sends: Vec<_> = (1..=3)
        .map(|n| {
            let (smtp, raw) = (smtp.clone(), html_mail(n, 10_000_000));
            tokio::spawn(
                async move { smtp::relay(&smtp, CUSTOMER, &[SUPPORT.to_owned()], &raw).await },
            )
        })
        .collect();
    let mut asked = 0;
    loop {
        let answer = tokio::task::spawn_blocking(move || healthz(addr, Duration::from_secs(2)))
            .await
            .unwrap();
        assert_eq!(answer, Ok(200), "healthz while the mails were processed");
        asked += 1;
        if sends.iter().all(|send| send.is_finished()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for send in sends {
        send.await.unwrap().unwrap();
    }
    assert!(asked >= 1);
    let stored = std::fs::read_dir(data.path().join("blobs/email/inbound"))
        .unwrap()
        .count();
    assert_eq!(stored, 3);
}
