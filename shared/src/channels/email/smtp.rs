//! Plain SMTP for the local runner, over tokio with no mail library: on AWS, SES receives
//! and sends mail; on a laptop, any mail client writes to kefu over [`serve`]
//! (`KEFU_SMTP_ADDR`, default `127.0.0.1:2525`) and replies go out through [`relay`] to a
//! local catcher such as mailpit (`KEFU_SMTP_RELAY`).
//!
//! - [`serve`]: the RFC 5321 subset a mail client needs (`EHLO`/`HELO`, `MAIL`, `RCPT`,
//!   `DATA`, `RSET`, `NOOP`, `QUIT`, `VRFY`) with `SIZE`, `8BITMIME`, `PIPELINING` and
//!   `SMTPUTF8`; every accepted mail goes to a [`MailSink`], and `250` is answered only
//!   once the sink has it. No TLS and no authentication: bind it to loopback.
//! - [`relay`]: one mail to one relay, errors split by whether a retry can help
//!   ([`RelayError`]).

mod client;
mod line;
mod server;

pub use client::{RelayError, relay};
pub use server::{SmtpLimits, serve};

/// Where the local runner listens for SMTP unless `KEFU_SMTP_ADDR` says otherwise.
pub const DEFAULT_ADDR: &str = "127.0.0.1:2525";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{MailSink, ReceivedMail};
    use async_trait::async_trait;
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::{TcpListener, TcpStream};

    /// Keeps every mail, or fails as told.
    #[derive(Default)]
    struct Recorder {
        mails: Mutex<Vec<ReceivedMail>>,
        fail: bool,
        panic: bool,
    }

    #[async_trait]
    impl MailSink for Recorder {
        async fn accept(&self, mail: ReceivedMail) -> crate::Result<()> {
            if self.panic {
                panic!("the sink broke");
            }
            if self.fail {
                return Err(crate::Error::backend("storing the mail", "disk full"));
            }
            self.mails.lock().unwrap().push(mail);
            Ok(())
        }
    }

    impl Recorder {
        fn mails(&self) -> Vec<ReceivedMail> {
            self.mails.lock().unwrap().clone()
        }
    }

    async fn start(limits: SmtpLimits, sink: Arc<Recorder>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(serve(listener, limits, sink));
        addr
    }

    const MESSAGE: &[u8] = b"From: Customer <c@example.com>\r\n\
To: support@shop.example\r\n\
Subject: =?UTF-8?B?6K6i5Y2V?=\r\n\
\r\n\
Line one.\r\n\
.leading dot\r\n\
..two dots\r\n\
.\r\n\
\x20.not at the start\r\n\
\xe4\xbd\xa0\xe5\xa5\xbd, 8-bit\r\n";

    #[tokio::test]
    async fn given_a_mail_with_dot_lines_when_relayed_then_the_sink_gets_the_same_bytes() {
        let sink = Arc::new(Recorder::default());
        let addr = start(SmtpLimits::default(), sink.clone()).await;
        relay(
            &addr,
            "c@example.com",
            &["support@shop.example".into()],
            MESSAGE,
        )
        .await
        .unwrap();
        let mails = sink.mails();
        assert_eq!(mails.len(), 1);
        assert_eq!(mails[0].raw, MESSAGE);
        assert_eq!(mails[0].mail_from, "c@example.com");
        assert_eq!(mails[0].recipients, ["support@shop.example"]);
        assert!(!mails[0].id.is_empty());
    }

    #[tokio::test]
    async fn given_several_recipients_and_mails_when_relayed_then_each_mail_has_its_own_id() {
        let sink = Arc::new(Recorder::default());
        let addr = start(SmtpLimits::default(), sink.clone()).await;
        let recipients: Vec<String> = ["a@shop.example", "b@shop.example", "用户@例子.中国"]
            .map(String::from)
            .into();
        relay(&addr, "", &recipients, b"Subject: one\r\n\r\nbody\r\n")
            .await
            .unwrap();
        relay(
            &addr,
            "c@example.com",
            &recipients[..1],
            b"Subject: two\r\n\r\nbody\r\n",
        )
        .await
        .unwrap();
        let mails = sink.mails();
        assert_eq!(mails.len(), 2);
        assert_eq!(mails[0].recipients, recipients);
        assert_eq!(mails[0].mail_from, "", "a bounce has the null sender");
        assert_eq!(mails[1].recipients, recipients[..1]);
        assert_ne!(mails[0].id, mails[1].id);
    }

    #[tokio::test]
    async fn given_a_mail_over_the_size_limit_when_relayed_then_permanent_and_nothing_kept() {
        let sink = Arc::new(Recorder::default());
        let limits = SmtpLimits {
            max_message_bytes: 64,
            ..SmtpLimits::default()
        };
        let addr = start(limits, sink.clone()).await;
        let big = "x".repeat(100);
        let error = relay(
            &addr,
            "c@example.com",
            &["s@shop.example".into()],
            big.as_bytes(),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(&error, RelayError::Permanent(text) if text.contains("552")),
            "{error}"
        );
        assert!(sink.mails().is_empty());
        // Exactly at the limit, with dots that stuffing doubles on the way: accepted.
        let full = format!(".{}\r\n.\r\n", "y".repeat(58));
        assert_eq!(full.len(), 64);
        relay(
            &addr,
            "c@example.com",
            &["s@shop.example".into()],
            full.as_bytes(),
        )
        .await
        .unwrap();
        assert_eq!(sink.mails()[0].raw, full.as_bytes());
    }

    #[tokio::test]
    async fn given_a_failing_sink_when_relayed_then_451_and_the_client_may_retry() {
        let failing = Arc::new(Recorder {
            fail: true,
            ..Recorder::default()
        });
        let addr = start(SmtpLimits::default(), failing).await;
        let error = relay(
            &addr,
            "c@example.com",
            &["s@shop.example".into()],
            b"hi\r\n",
        )
        .await
        .unwrap_err();
        assert!(
            matches!(&error, RelayError::Transient(text) if text.contains("451")),
            "{error}"
        );
    }

    #[tokio::test]
    async fn given_a_panicking_sink_when_relayed_then_451_and_the_server_keeps_serving() {
        let panicking = Arc::new(Recorder {
            panic: true,
            ..Recorder::default()
        });
        let addr = start(SmtpLimits::default(), panicking).await;
        for _ in 0..2 {
            let error = relay(
                &addr,
                "c@example.com",
                &["s@shop.example".into()],
                b"hi\r\n",
            )
            .await
            .unwrap_err();
            assert!(
                matches!(&error, RelayError::Transient(text) if text.contains("451")),
                "{error}"
            );
        }
    }

    #[tokio::test]
    async fn given_a_silent_session_when_another_client_relays_then_it_is_served() {
        let sink = Arc::new(Recorder::default());
        let addr = start(SmtpLimits::default(), sink.clone()).await;
        let _silent = TcpStream::connect(&addr).await.unwrap();
        let mut half_done = TcpStream::connect(&addr).await.unwrap();
        half_done
            .write_all(
                b"EHLO x\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\npart",
            )
            .await
            .unwrap();
        relay(
            &addr,
            "c@example.com",
            &["s@shop.example".into()],
            b"hi\r\n",
        )
        .await
        .unwrap();
        assert_eq!(sink.mails().len(), 1);
    }

    /// Reads one reply (all its lines) and returns its code.
    async fn code(reader: &mut BufReader<TcpStream>) -> u16 {
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).await.unwrap();
            if line.as_bytes().get(3) != Some(&b'-') {
                return line[..3].parse().unwrap();
            }
        }
    }

    #[tokio::test]
    async fn given_pipelined_commands_when_sent_in_one_write_then_answers_come_in_order() {
        let sink = Arc::new(Recorder::default());
        let addr = start(SmtpLimits::default(), sink.clone()).await;
        let addr: SocketAddr = addr.parse().unwrap();
        let mut smtp = BufReader::new(TcpStream::connect(addr).await.unwrap());
        assert_eq!(code(&mut smtp).await, 220);
        smtp.get_mut()
            .write_all(
                b"EHLO client\r\nMAIL FROM:<c@example.com> SIZE=20\r\n\
RCPT TO:<a@shop.example>\r\nRCPT TO:<b@shop.example>\r\nDATA\r\n",
            )
            .await
            .unwrap();
        let mut codes = Vec::new();
        for _ in 0..5 {
            codes.push(code(&mut smtp).await);
        }
        assert_eq!(codes, [250, 250, 250, 250, 354]);
        smtp.get_mut()
            .write_all(b"Subject: p\r\n\r\n..x\r\n.\r\nRSET\r\nNOOP\r\nQUIT\r\n")
            .await
            .unwrap();
        let mut codes = Vec::new();
        for _ in 0..4 {
            codes.push(code(&mut smtp).await);
        }
        assert_eq!(codes, [250, 250, 250, 221]);
        let mails = sink.mails();
        assert_eq!(mails.len(), 1);
        assert_eq!(mails[0].raw, b"Subject: p\r\n\r\n.x\r\n");
        assert_eq!(mails[0].recipients, ["a@shop.example", "b@shop.example"]);
    }
}
