//! The sending end: hands one mail to a plain-SMTP relay (`KEFU_SMTP_RELAY`, e.g. a local
//! mailpit) so the local runner's replies land in a real mailbox.
//!
//! All or nothing: every recipient must be accepted before the message is sent, so a
//! retry after an error never delivers twice to the recipients that were fine.

use super::line::{Line, read_line};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// How long to wait for the TCP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for the answer to a command (RFC 5321 §4.5.3.2 suggests minutes;
/// a relay on the same machine answers at once).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// How long to wait for the answer after the message (the relay may be scanning it).
const DATA_TIMEOUT: Duration = Duration::from_secs(300);
/// Longest answer line read.
const MAX_REPLY_LINE: usize = 4096;
/// Most lines one answer may have.
const MAX_REPLY_LINES: usize = 100;

/// Why a relay did not take a mail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelayError {
    /// Worth retrying: a `4xx` answer, a refused or broken connection, a timeout.
    #[error("transient: {0}")]
    Transient(String),
    /// Will never work as sent: a `5xx` answer.
    #[error("permanent: {0}")]
    Permanent(String),
}

/// Sends `raw` (an RFC 5322 message) from `mail_from` (empty for `<>`) to `recipients`
/// through the SMTP server at `addr` (`host:port`, no TLS, no authentication). Line
/// endings are made CRLF and lines starting with `.` are dot-stuffed on the way.
pub async fn relay(
    addr: &str,
    mail_from: &str,
    recipients: &[String],
    raw: &[u8],
) -> Result<(), RelayError> {
    if recipients.is_empty() {
        return Err(RelayError::Permanent("a mail needs a recipient".into()));
    }
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| RelayError::Transient(format!("connecting to {addr}: timed out")))?
        .map_err(|e| RelayError::Transient(format!("connecting to {addr}: {e}")))?;
    let mut client = Client::new(stream)?;
    let sent = client.transaction(mail_from, recipients, raw).await;
    // Polite close; the outcome is already decided.
    let _ = tokio::time::timeout(
        Duration::from_secs(5),
        client.command("QUIT", COMMAND_TIMEOUT),
    )
    .await;
    sent
}

/// An answer: its code and its text lines.
#[derive(Debug)]
struct Reply {
    code: u16,
    lines: Vec<String>,
}

impl Reply {
    /// `Ok` when the code is one of `expected`; else the error its class calls for.
    fn expect(&self, expected: &[u16], step: &str) -> Result<(), RelayError> {
        if expected.contains(&self.code) {
            return Ok(());
        }
        let text = format!("{step}: {} {}", self.code, self.lines.join(" / "));
        match self.code / 100 {
            5 => Err(RelayError::Permanent(text)),
            _ => Err(RelayError::Transient(text)),
        }
    }
}

struct Client {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    /// How this side names itself in EHLO: an address literal of the local socket.
    hello_name: String,
}

impl Client {
    fn new(stream: TcpStream) -> Result<Self, RelayError> {
        let local = stream
            .local_addr()
            .map_err(|e| RelayError::Transient(format!("local address: {e}")))?;
        let (read, writer) = stream.into_split();
        Ok(Self {
            reader: BufReader::new(read),
            writer,
            hello_name: address_literal(local),
        })
    }

    async fn transaction(
        &mut self,
        mail_from: &str,
        recipients: &[String],
        raw: &[u8],
    ) -> Result<(), RelayError> {
        self.read_reply(COMMAND_TIMEOUT)
            .await?
            .expect(&[220], "greeting")?;
        let ehlo = self
            .command(&format!("EHLO {}", self.hello_name), COMMAND_TIMEOUT)
            .await?;
        let extensions: Vec<String> = if ehlo.code == 250 {
            ehlo.lines
                .iter()
                .skip(1)
                .map(|l| l.to_ascii_uppercase())
                .collect()
        } else if ehlo.code / 100 == 5 {
            // An old server without ESMTP.
            self.command(&format!("HELO {}", self.hello_name), COMMAND_TIMEOUT)
                .await?
                .expect(&[250], "HELO")?;
            Vec::new()
        } else {
            ehlo.expect(&[250], "EHLO")?;
            Vec::new()
        };
        let has = |name: &str| {
            extensions
                .iter()
                .any(|e| e.split_whitespace().next() == Some(name))
        };
        let body = stuff(raw);
        let mut mail = format!("MAIL FROM:<{mail_from}>");
        if has("SIZE") {
            mail.push_str(&format!(" SIZE={}", message_size(&body)));
        }
        if has("8BITMIME") && !raw.is_ascii() {
            mail.push_str(" BODY=8BITMIME");
        }
        let utf8_envelope = !mail_from.is_ascii() || recipients.iter().any(|r| !r.is_ascii());
        if has("SMTPUTF8") && utf8_envelope {
            mail.push_str(" SMTPUTF8");
        }
        self.command(&mail, COMMAND_TIMEOUT)
            .await?
            .expect(&[250], "MAIL FROM")?;
        for recipient in recipients {
            self.command(&format!("RCPT TO:<{recipient}>"), COMMAND_TIMEOUT)
                .await?
                .expect(&[250, 251], "RCPT TO")?;
        }
        self.command("DATA", COMMAND_TIMEOUT)
            .await?
            .expect(&[354], "DATA")?;
        self.write(&body).await?;
        self.read_reply(DATA_TIMEOUT)
            .await?
            .expect(&[250], "end of data")
    }

    async fn command(&mut self, command: &str, wait: Duration) -> Result<Reply, RelayError> {
        self.write(format!("{command}\r\n").as_bytes()).await?;
        self.read_reply(wait).await
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), RelayError> {
        tokio::time::timeout(COMMAND_TIMEOUT, self.writer.write_all(bytes))
            .await
            .map_err(|_| RelayError::Transient("sending: timed out".into()))?
            .map_err(|e| RelayError::Transient(format!("sending: {e}")))
    }

    /// One answer, possibly of several lines (`250-…` continues, `250 …` ends).
    async fn read_reply(&mut self, wait: Duration) -> Result<Reply, RelayError> {
        tokio::time::timeout(wait, self.read_reply_lines())
            .await
            .map_err(|_| {
                RelayError::Transient("waiting for the server's answer: timed out".into())
            })?
    }

    async fn read_reply_lines(&mut self) -> Result<Reply, RelayError> {
        let mut lines = Vec::new();
        let mut buf = Vec::new();
        loop {
            let read = read_line(&mut self.reader, &mut buf, MAX_REPLY_LINE)
                .await
                .map_err(|e| RelayError::Transient(format!("reading the answer: {e}")))?;
            match read {
                Line::Complete => {}
                Line::Eof => {
                    return Err(RelayError::Transient(
                        "the server closed the connection".into(),
                    ));
                }
                Line::TooLong => {
                    return Err(RelayError::Transient(
                        "the server's answer is too long".into(),
                    ));
                }
            }
            let line = String::from_utf8_lossy(&buf);
            let line = line.trim_end_matches(['\r', '\n']);
            let code = line
                .get(..3)
                .filter(|c| c.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|c| c.parse::<u16>().ok())
                .ok_or_else(|| {
                    RelayError::Transient(format!("malformed answer from the server: {line:?}"))
                })?;
            let more = line.as_bytes().get(3) == Some(&b'-');
            lines.push(line.get(4..).unwrap_or_default().to_owned());
            if !more {
                return Ok(Reply { code, lines });
            }
            if lines.len() >= MAX_REPLY_LINES {
                return Err(RelayError::Transient(
                    "the server's answer is too long".into(),
                ));
            }
        }
    }
}

/// `[127.0.0.1]` or `[IPv6:::1]`: how a client without a host name names itself.
fn address_literal(addr: SocketAddr) -> String {
    match addr.ip() {
        IpAddr::V4(ip) => format!("[{ip}]"),
        IpAddr::V6(ip) => format!("[IPv6:{ip}]"),
    }
}

/// The message as it goes after `DATA`: every line ending made CRLF (a bare CR or LF
/// would otherwise let the end marker be smuggled), a `.` doubled at the start of a line,
/// a final CRLF if missing, and the `.` line that ends it.
pub(super) fn stuff(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 64 + 5);
    let mut line_start = true;
    let mut bytes = raw.iter().copied().peekable();
    while let Some(byte) = bytes.next() {
        if line_start && byte == b'.' {
            out.push(b'.');
        }
        match byte {
            b'\r' => {
                bytes.next_if_eq(&b'\n');
                out.extend_from_slice(b"\r\n");
                line_start = true;
            }
            b'\n' => {
                out.extend_from_slice(b"\r\n");
                line_start = true;
            }
            other => {
                out.push(other);
                line_start = false;
            }
        }
    }
    if !line_start {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// The size of the message a server receives from `stuffed` (what `SIZE=` declares):
/// without the end marker and the dots added for stuffing.
fn message_size(stuffed: &[u8]) -> usize {
    let added_dots = stuffed
        .split(|&b| b == b'\n')
        .filter(|line| line.starts_with(b".."))
        .count();
    stuffed.len().saturating_sub(3 + added_dots)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncBufReadExt;
    use tokio::net::TcpListener;

    #[test]
    fn given_messages_when_stuffed_then_dots_doubled_and_lines_crlf() {
        assert_eq!(stuff(b"a\r\n.b\r\n..c\r\n"), b"a\r\n..b\r\n...c\r\n.\r\n");
        assert_eq!(stuff(b".\r\n"), b"..\r\n.\r\n");
        assert_eq!(stuff(b"a\nb\rc"), b"a\r\nb\r\nc\r\n.\r\n");
        assert_eq!(stuff(b"x.y\r\n"), b"x.y\r\n.\r\n");
        assert_eq!(stuff(b""), b".\r\n");
        assert_eq!(stuff(b"a\n.\n"), b"a\r\n..\r\n.\r\n");
    }

    #[test]
    fn given_a_stuffed_message_when_measured_then_the_size_the_server_will_count() {
        assert_eq!(
            message_size(&stuff(b"a\n.b\n..c")),
            b"a\r\n.b\r\n..c\r\n".len()
        );
        assert_eq!(message_size(&stuff(b"")), 0);
    }

    /// A server that answers each line it reads with the next scripted answer, and
    /// returns the lines it read.
    async fn scripted(
        answers: &'static [&'static str],
    ) -> (String, tokio::task::JoinHandle<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let task = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let (read, mut write) = stream.into_split();
            let mut reader = BufReader::new(read);
            let mut heard = Vec::new();
            let (greeting, rest) = answers.split_first().unwrap();
            write.write_all(greeting.as_bytes()).await.unwrap();
            let mut in_data = false;
            for answer in rest {
                // A command, or after 354 the whole message up to its "." line.
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).await.unwrap() == 0 {
                        return heard;
                    }
                    let line = line.trim_end().to_owned();
                    let end = line == ".";
                    heard.push(line);
                    if !in_data || end {
                        break;
                    }
                }
                in_data = answer.starts_with("354");
                write.write_all(answer.as_bytes()).await.unwrap();
            }
            heard
        });
        (addr, task)
    }

    #[tokio::test]
    async fn given_a_server_without_ehlo_when_relaying_then_helo_is_used() {
        let (addr, server) = scripted(&[
            "220 old\r\n",
            "502 what\r\n",
            "250 old\r\n",
            "250 ok\r\n",
            "250 ok\r\n",
            "354 go\r\n",
            "250 ok\r\n",
            "221 bye\r\n",
        ])
        .await;
        relay(&addr, "a@example.com", &["b@example.com".into()], b"hi\r\n")
            .await
            .unwrap();
        let heard = server.await.unwrap();
        assert!(heard[0].starts_with("EHLO [127.0.0.1]"), "{heard:?}");
        assert!(heard[1].starts_with("HELO "), "{heard:?}");
        // No ESMTP parameters after HELO.
        assert_eq!(
            heard[2..],
            [
                "MAIL FROM:<a@example.com>",
                "RCPT TO:<b@example.com>",
                "DATA",
                "hi",
                ".",
                "QUIT"
            ]
        );
    }

    #[tokio::test]
    async fn given_answers_of_each_class_when_relaying_then_4xx_is_transient_and_5xx_permanent() {
        let (addr, _server) =
            scripted(&["220 x\r\n", "250 x\r\n", "250 ok\r\n", "450 busy\r\n"]).await;
        let error = relay(&addr, "a@example.com", &["b@example.com".into()], b"hi\r\n")
            .await
            .unwrap_err();
        assert!(
            matches!(&error, RelayError::Transient(text) if text.contains("450 busy")),
            "{error}"
        );
        let (addr, _server) = scripted(&[
            "220 x\r\n",
            "250 x\r\n",
            "250 ok\r\n",
            "550 no such user\r\n",
        ])
        .await;
        let error = relay(&addr, "a@example.com", &["b@example.com".into()], b"hi\r\n")
            .await
            .unwrap_err();
        assert!(
            matches!(&error, RelayError::Permanent(text) if text.contains("550")),
            "{error}"
        );
        let (addr, _server) = scripted(&["554 go away\r\n"]).await;
        let error = relay(&addr, "a@example.com", &["b@example.com".into()], b"hi\r\n")
            .await
            .unwrap_err();
        assert!(matches!(error, RelayError::Permanent(_)), "{error}");
    }

    #[tokio::test]
    async fn given_nobody_listening_when_relaying_then_transient() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        let error = relay(&addr, "a@example.com", &["b@example.com".into()], b"hi\r\n")
            .await
            .unwrap_err();
        assert!(matches!(error, RelayError::Transient(_)), "{error}");
    }
}
