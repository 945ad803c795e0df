//! The receiving end: an RFC 5321 server for the local runner, so any mail client can write
//! to kefu. Each accepted mail goes to a [`MailSink`]; the client hears `250` only after
//! the sink stored it, and `451` (try again later) when it could not.

use super::line::{Line, read_line};
use crate::ports::{MailSink, ReceivedMail};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::io::{AsyncWriteExt, BufReader, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// The name the server gives itself in its greeting and `EHLO` answer.
const HOSTNAME: &str = "localhost";

/// Longest command line (RFC 5321 §4.5.3.1.4 allows 512 octets; extensions such as
/// `SMTPUTF8` addresses make real ones longer).
const MAX_COMMAND_LINE: usize = 2048;

/// Bad commands one session may send before it is closed.
const MAX_BAD_COMMANDS: usize = 20;

/// Bounds that keep one client from exhausting the process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpLimits {
    /// Largest message accepted, in bytes after dot-unstuffing; advertised as `SIZE`.
    pub max_message_bytes: usize,
    /// Most recipients of one mail; more get `452`.
    pub max_recipients: usize,
    /// A session that makes no progress for this long is closed (`421`): keep-alives
    /// (`NOOP`, `RSET`, `VRFY`) do not count as progress.
    pub idle_timeout: Duration,
    /// A session is closed (`421`) this long after it opened, whatever it does.
    pub max_session_time: Duration,
    /// Sessions served at once; more are turned away with `421`.
    pub max_sessions: usize,
    /// Sessions served at once for one client address; more are turned away with `421`,
    /// so that one client cannot take every session.
    pub max_sessions_per_client: usize,
}

impl Default for SmtpLimits {
    /// 10 MiB, 100 recipients, 60 s idle, 5 minutes per session, 100 sessions, 10 per
    /// client address.
    fn default() -> Self {
        Self {
            max_message_bytes: 10 * 1024 * 1024,
            max_recipients: 100,
            idle_timeout: Duration::from_secs(60),
            max_session_time: Duration::from_secs(5 * 60),
            max_sessions: 100,
            max_sessions_per_client: 10,
        }
    }
}

/// Serves SMTP on `listener` until the task is dropped or aborted, one task per connection:
/// a slow or panicking session never holds up the others, and a client that holds its
/// share of sessions (or keeps one open past its lifetime) does not lock others out.
pub async fn serve(listener: TcpListener, limits: SmtpLimits, on_mail: Arc<dyn MailSink>) {
    let limits = Arc::new(limits);
    let sessions = Arc::new(Semaphore::new(limits.max_sessions.max(1)));
    let clients = Arc::new(Mutex::new(HashMap::new()));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Usually out of file descriptors: give sessions a moment to end.
                tracing::warn!(error = %e, "accepting an SMTP connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(slot) = ClientSlot::take(&clients, peer.ip(), limits.max_sessions_per_client)
        else {
            tokio::spawn(turn_away(stream, "Too many connections from your address"));
            continue;
        };
        let Ok(permit) = sessions.clone().try_acquire_owned() else {
            tokio::spawn(turn_away(stream, "Too many connections"));
            continue;
        };
        let limits = limits.clone();
        let sink = on_mail.clone();
        tokio::spawn(async move {
            let mut session = Session::new(stream, peer, &limits, sink);
            if let Err(e) = session.run().await {
                tracing::debug!(%peer, error = %e, "SMTP session ended by an I/O error");
            }
            drop((permit, slot));
        });
    }
}

async fn turn_away(mut stream: TcpStream, why: &str) {
    let reply = format!("421 4.7.0 {HOSTNAME} {why}, try again later\r\n");
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.write_all(reply.as_bytes())).await;
}

/// Sessions open per client address.
type ClientCounts = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// One session of a client address, counted until dropped.
struct ClientSlot {
    clients: ClientCounts,
    ip: IpAddr,
}

impl ClientSlot {
    /// A slot for `ip`, unless it already holds `max` sessions.
    fn take(clients: &ClientCounts, ip: IpAddr, max: usize) -> Option<Self> {
        // An IPv4 client on a dual-stack listener is one client under either form.
        let ip = ip.to_canonical();
        let mut counts = clients.lock().unwrap_or_else(PoisonError::into_inner);
        let count = counts.entry(ip).or_insert(0);
        if *count >= max.max(1) {
            return None;
        }
        *count += 1;
        Some(Self {
            clients: clients.clone(),
            ip,
        })
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut counts = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// The envelope of the mail being received.
#[derive(Debug, Default)]
struct Envelope {
    mail_from: String,
    recipients: Vec<String>,
}

/// Whether the session goes on.
enum Flow {
    Continue,
    Close,
}

/// What came after `DATA`.
enum Data {
    Complete(Vec<u8>),
    TooBig,
    Closed,
}

struct Session<'a> {
    peer: SocketAddr,
    limits: &'a SmtpLimits,
    sink: Arc<dyn MailSink>,
    reader: BufReader<OwnedReadHalf>,
    writer: BufWriter<OwnedWriteHalf>,
    greeted: bool,
    envelope: Option<Envelope>,
    bad_commands: usize,
    /// When the session opened: it ends `max_session_time` later.
    opened: Instant,
    /// The last command or message line that moved the session on: it ends
    /// `idle_timeout` after that.
    progressed: Instant,
}

impl<'a> Session<'a> {
    fn new(
        stream: TcpStream,
        peer: SocketAddr,
        limits: &'a SmtpLimits,
        sink: Arc<dyn MailSink>,
    ) -> Self {
        let (read, write) = stream.into_split();
        Self {
            peer,
            limits,
            sink,
            reader: BufReader::new(read),
            writer: BufWriter::new(write),
            greeted: false,
            envelope: None,
            bad_commands: 0,
            opened: Instant::now(),
            progressed: Instant::now(),
        }
    }

    async fn run(&mut self) -> std::io::Result<()> {
        self.reply(&format!("220 {HOSTNAME} ESMTP kefu ready"))
            .await?;
        let mut line = Vec::with_capacity(256);
        loop {
            let read = self.read(&mut line, MAX_COMMAND_LINE).await?;
            let flow = match read {
                None => return Ok(()),
                Some(Line::Eof) => return Ok(()),
                Some(Line::TooLong) => self.bad("500 Line too long").await?,
                Some(Line::Complete) => self.command(&line).await?,
            };
            if let Flow::Close = flow {
                self.writer.flush().await?;
                return Ok(());
            }
        }
    }

    /// Reads a line before the session's idle or lifetime deadline, first sending the
    /// answers still buffered (pipelining: answers to a batch of commands go out together).
    /// `None` once a deadline passed, which has been announced to the client.
    async fn read(&mut self, line: &mut Vec<u8>, max: usize) -> std::io::Result<Option<Line>> {
        if self.reader.buffer().is_empty() {
            self.flush().await?;
        }
        let ends = self.opened + self.limits.max_session_time;
        let deadline = ends.min(self.progressed + self.limits.idle_timeout);
        // Checked before reading too: pipelined commands already buffered would
        // otherwise be read past the deadline.
        if Instant::now() < deadline {
            let read = read_line(&mut self.reader, line, max);
            if let Ok(read) = tokio::time::timeout_at(deadline, read).await {
                return read.map(Some);
            }
        }
        let why = if Instant::now() >= ends {
            "Session time limit reached"
        } else {
            "Idle timeout"
        };
        tracing::debug!(peer = %self.peer, why, "SMTP session closing");
        self.reply(&format!("421 4.4.2 {HOSTNAME} {why}, closing connection"))
            .await?;
        self.flush().await?;
        Ok(None)
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        tokio::time::timeout(self.limits.idle_timeout, self.writer.flush())
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "client not reading"))?
    }

    /// Queues one answer line (or several, separated by `\r\n`).
    async fn reply(&mut self, text: &str) -> std::io::Result<()> {
        self.writer.write_all(text.as_bytes()).await?;
        self.writer.write_all(b"\r\n").await
    }

    /// Answers a bad command; too many of them end the session.
    async fn bad(&mut self, text: &str) -> std::io::Result<Flow> {
        self.bad_commands += 1;
        if self.bad_commands > MAX_BAD_COMMANDS {
            self.reply(&format!(
                "421 {HOSTNAME} Too many errors, closing connection"
            ))
            .await?;
            return Ok(Flow::Close);
        }
        self.reply(text).await?;
        Ok(Flow::Continue)
    }

    async fn command(&mut self, line: &[u8]) -> std::io::Result<Flow> {
        let Ok(line) = std::str::from_utf8(line) else {
            return self
                .bad("500 Syntax error, command line is not UTF-8")
                .await;
        };
        let line = line.trim_end_matches(['\r', '\n']);
        let (verb, args) = match line.split_once(' ') {
            Some((verb, args)) => (verb, args.trim()),
            None => (line, ""),
        };
        let verb = verb.to_ascii_uppercase();
        // Keep-alives are not progress: a client that only sends them is idle.
        if !matches!(verb.as_str(), "NOOP" | "RSET" | "VRFY") {
            self.progressed = Instant::now();
        }
        match verb.as_str() {
            "EHLO" => self.hello(args, true).await,
            "HELO" => self.hello(args, false).await,
            "MAIL" => self.mail(args).await,
            "RCPT" => self.rcpt(args).await,
            "DATA" => self.data(args).await,
            "RSET" => {
                self.envelope = None;
                self.ok("250 OK").await
            }
            "NOOP" => self.ok("250 OK").await,
            "QUIT" => {
                self.reply(&format!("221 {HOSTNAME} Bye")).await?;
                Ok(Flow::Close)
            }
            "VRFY" => {
                self.ok("252 Cannot VRFY user, but will accept message and attempt delivery")
                    .await
            }
            "EXPN" | "HELP" | "TURN" | "ETRN" | "BDAT" | "AUTH" | "STARTTLS" => {
                self.bad("502 Command not implemented").await
            }
            _ => self.bad("500 Syntax error, command unrecognized").await,
        }
    }

    async fn ok(&mut self, text: &str) -> std::io::Result<Flow> {
        self.reply(text).await?;
        Ok(Flow::Continue)
    }

    async fn hello(&mut self, domain: &str, extended: bool) -> std::io::Result<Flow> {
        if domain.is_empty() {
            return self.bad("501 Syntax: EHLO/HELO domain").await;
        }
        self.greeted = true;
        self.envelope = None;
        if !extended {
            return self.ok(&format!("250 {HOSTNAME}")).await;
        }
        let answer = format!(
            "250-{HOSTNAME} greets {domain}\r\n250-SIZE {}\r\n250-8BITMIME\r\n250-PIPELINING\r\n250 SMTPUTF8",
            self.limits.max_message_bytes
        );
        self.ok(&answer).await
    }

    async fn mail(&mut self, args: &str) -> std::io::Result<Flow> {
        if !self.greeted {
            return self
                .bad("503 Bad sequence of commands: send EHLO first")
                .await;
        }
        if self.envelope.is_some() {
            return self
                .bad("503 Bad sequence of commands: nested MAIL command")
                .await;
        }
        let Some((from, params)) = path_after(args, "FROM:") else {
            return self.bad("501 Syntax: MAIL FROM:<address>").await;
        };
        for param in params {
            let (key, value) = param.split_once('=').unwrap_or((param, ""));
            match key.to_ascii_uppercase().as_str() {
                "SIZE" => match value.parse::<u64>() {
                    Ok(size) if size > self.limits.max_message_bytes as u64 => {
                        return self
                            .bad("552 Message size exceeds fixed maximum message size")
                            .await;
                    }
                    Ok(_) => {}
                    Err(_) => return self.bad("501 Syntax: SIZE=<bytes>").await,
                },
                "BODY" if ["7BIT", "8BITMIME"].contains(&value.to_ascii_uppercase().as_str()) => {}
                "SMTPUTF8" if value.is_empty() => {}
                _ => {
                    return self
                        .bad("555 MAIL FROM parameters not recognized or not implemented")
                        .await;
                }
            }
        }
        self.envelope = Some(Envelope {
            mail_from: from.to_owned(),
            recipients: Vec::new(),
        });
        self.ok("250 OK").await
    }

    async fn rcpt(&mut self, args: &str) -> std::io::Result<Flow> {
        let Some(recipients) = self.envelope.as_ref().map(|e| e.recipients.len()) else {
            return self
                .bad("503 Bad sequence of commands: send MAIL first")
                .await;
        };
        let recipient = match path_after(args, "TO:") {
            Some((to, mut params)) if !to.is_empty() => {
                if params.next().is_some() {
                    return self
                        .bad("555 RCPT TO parameters not recognized or not implemented")
                        .await;
                }
                to.to_owned()
            }
            _ => return self.bad("501 Syntax: RCPT TO:<address>").await,
        };
        if !self.sink.accepts(&recipient) {
            // Refused now, while the client can still tell its user; accepting it would
            // only mean dropping it later.
            return self.bad("550 5.1.1 No such mailbox here").await;
        }
        if recipients >= self.limits.max_recipients {
            return self.ok("452 Too many recipients").await;
        }
        if let Some(envelope) = self.envelope.as_mut() {
            envelope.recipients.push(recipient);
        }
        self.ok("250 OK").await
    }

    async fn data(&mut self, args: &str) -> std::io::Result<Flow> {
        if !args.is_empty() {
            return self.bad("501 Syntax: DATA takes no arguments").await;
        }
        let ready = self
            .envelope
            .as_ref()
            .is_some_and(|envelope| !envelope.recipients.is_empty());
        if !ready {
            return self
                .bad("503 Bad sequence of commands: send RCPT first")
                .await;
        }
        self.reply("354 End data with <CR><LF>.<CR><LF>").await?;
        let envelope = self.envelope.take().unwrap_or_default();
        let raw = match self.receive().await? {
            Data::Closed => return Ok(Flow::Close),
            Data::TooBig => {
                return self
                    .ok("552 Message size exceeds fixed maximum message size")
                    .await;
            }
            Data::Complete(raw) => raw,
        };
        let mail = ReceivedMail {
            id: uuid::Uuid::now_v7().simple().to_string(),
            mail_from: envelope.mail_from,
            recipients: envelope.recipients,
            raw,
            peer: self.peer,
        };
        let id = mail.id.clone();
        let (recipients, bytes) = (mail.recipients.len(), mail.raw.len());
        // A task of its own, so that a panicking sink costs this mail a 451, not the
        // session its answer.
        let sink = self.sink.clone();
        match tokio::spawn(async move { sink.accept(mail).await }).await {
            Ok(Ok(())) => {
                tracing::info!(mail = %id, recipients, bytes, "mail accepted over SMTP");
                self.ok(&format!("250 OK: queued as {id}")).await
            }
            Ok(Err(e)) => {
                tracing::warn!(mail = %id, error = %crate::cause_chain(&e), "storing a mail received over SMTP");
                self.ok("451 Requested action aborted: local error in processing")
                    .await
            }
            Err(e) => {
                tracing::error!(mail = %id, error = %e, "the mail sink failed");
                self.ok("451 Requested action aborted: local error in processing")
                    .await
            }
        }
    }

    /// Reads the message up to the `<CRLF>.<CRLF>` that ends it, undoing dot-stuffing.
    /// Past the size limit the rest is read and thrown away.
    async fn receive(&mut self) -> std::io::Result<Data> {
        let max = self.limits.max_message_bytes;
        let mut raw = Vec::new();
        let mut too_big = false;
        // The line before ended with CRLF: only then is "." + CRLF the end (a bare LF
        // before it does not count, so the end cannot be smuggled).
        let mut after_crlf = true;
        let mut line = Vec::with_capacity(1024);
        loop {
            let read = self.read(&mut line, max.saturating_add(3)).await?;
            self.progressed = Instant::now();
            match read {
                None | Some(Line::Eof) => return Ok(Data::Closed),
                Some(Line::TooLong) => {
                    too_big = true;
                    raw = Vec::new();
                    after_crlf = true;
                }
                Some(Line::Complete) => {
                    if after_crlf && line == b".\r\n" {
                        return Ok(if too_big {
                            Data::TooBig
                        } else {
                            Data::Complete(raw)
                        });
                    }
                    after_crlf = line.ends_with(b"\r\n");
                    let content = line.strip_prefix(b".").unwrap_or(&line);
                    if !too_big {
                        if raw.len() + content.len() > max {
                            too_big = true;
                            raw = Vec::new();
                        } else {
                            raw.extend_from_slice(content);
                        }
                    }
                }
            }
        }
    }
}

/// The address in `FROM:<address> PARAM…` or `TO:<address> PARAM…` (keyword matched
/// without regard to case, a space after the colon tolerated) and the parameters after
/// it. A source route (`<@relay:user@host>`) is dropped. `None` when malformed.
fn path_after<'a>(
    args: &'a str,
    keyword: &str,
) -> Option<(&'a str, impl Iterator<Item = &'a str>)> {
    let head = args.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = args[keyword.len()..].trim_start();
    let rest = rest.strip_prefix('<')?;
    let end = rest.find('>')?;
    let path = &rest[..end];
    let address = match path.strip_prefix('@') {
        Some(route) => route.split_once(':')?.1,
        None => path,
    };
    if address.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    Some((address, rest[end + 1..].split_whitespace()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use tokio::io::{AsyncBufReadExt, AsyncReadExt};

    /// Keeps nothing and fails nothing.
    struct Discard;

    #[async_trait]
    impl MailSink for Discard {
        async fn accept(&self, _mail: ReceivedMail) -> crate::Result<()> {
            Ok(())
        }
    }

    async fn start(limits: SmtpLimits) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(listener, limits, Arc::new(Discard)));
        addr
    }

    /// A client that speaks SMTP by hand.
    struct Raw {
        reader: BufReader<OwnedReadHalf>,
        writer: OwnedWriteHalf,
    }

    impl Raw {
        async fn connect(addr: SocketAddr) -> Self {
            let (read, writer) = TcpStream::connect(addr).await.unwrap().into_split();
            let mut raw = Self {
                reader: BufReader::new(read),
                writer,
            };
            assert!(raw.reply().await.starts_with("220 "));
            raw
        }

        async fn send(&mut self, bytes: &[u8]) {
            self.writer.write_all(bytes).await.unwrap();
        }

        /// One whole reply, its lines joined by `\n`.
        async fn reply(&mut self) -> String {
            let mut lines = Vec::new();
            loop {
                let mut line = String::new();
                self.reader.read_line(&mut line).await.unwrap();
                assert!(line.ends_with("\r\n"), "reply line {line:?}");
                let line = line.trim_end().to_owned();
                let last = line.as_bytes().get(3) != Some(&b'-');
                lines.push(line);
                if last {
                    return lines.join("\n");
                }
            }
        }

        /// Sends `command` and returns the reply code.
        async fn code(&mut self, command: &str) -> u16 {
            self.send(format!("{command}\r\n").as_bytes()).await;
            self.reply().await[..3].parse().unwrap()
        }
    }

    #[tokio::test]
    async fn given_a_session_spoken_by_hand_when_commands_are_sent_then_exact_codes_come_back() {
        let addr = start(SmtpLimits::default()).await;
        let mut smtp = Raw::connect(addr).await;
        assert_eq!(smtp.code("MAIL FROM:<a@example.com>").await, 503);
        smtp.send(b"EHLO client.example\r\n").await;
        let ehlo = smtp.reply().await;
        assert!(ehlo.starts_with("250-localhost"), "{ehlo}");
        for extension in [
            "250-SIZE 10485760",
            "250-8BITMIME",
            "250-PIPELINING",
            "250 SMTPUTF8",
        ] {
            assert!(
                ehlo.lines().any(|l| l == extension),
                "{extension} in {ehlo}"
            );
        }
        assert_eq!(smtp.code("HELO client.example").await, 250);
        assert_eq!(smtp.code("EHLO").await, 501);
        assert_eq!(smtp.code("VRFY someone").await, 252);
        assert_eq!(smtp.code("NOOP").await, 250);
        assert_eq!(smtp.code("FROBNICATE").await, 500);
        assert_eq!(smtp.code("EXPN list").await, 502);
        assert_eq!(smtp.code("RCPT TO:<b@example.com>").await, 503);
        assert_eq!(smtp.code("MAIL TO:<a@example.com>").await, 501);
        assert_eq!(
            smtp.code("mail from: <a@example.com> BODY=8BITMIME").await,
            250
        );
        assert_eq!(smtp.code("MAIL FROM:<a@example.com>").await, 503);
        assert_eq!(smtp.code("RCPT TO:<>").await, 501);
        assert_eq!(smtp.code("RCPT TO:<b@example.com> NOTIFY=NEVER").await, 555);
        assert_eq!(smtp.code("RSET").await, 250);
        assert_eq!(smtp.code("MAIL FROM:<> SIZE=10485761").await, 552);
        assert_eq!(smtp.code("MAIL FROM:<> XFOO=1").await, 555);
        assert_eq!(smtp.code("MAIL FROM:<> SIZE=100").await, 250);
        let long = format!("NOOP {}", "x".repeat(MAX_COMMAND_LINE));
        assert_eq!(smtp.code(&long).await, 500);
        assert_eq!(smtp.code("NOOP").await, 250);
        assert_eq!(smtp.code("QUIT").await, 221);
        let mut rest = Vec::new();
        smtp.reader.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty(), "closed after QUIT");
    }

    #[tokio::test]
    async fn given_data_before_rcpt_when_sent_then_503() {
        let addr = start(SmtpLimits::default()).await;
        let mut smtp = Raw::connect(addr).await;
        assert_eq!(smtp.code("EHLO c").await, 250);
        assert_eq!(smtp.code("DATA").await, 503);
        assert_eq!(smtp.code("MAIL FROM:<a@example.com>").await, 250);
        assert_eq!(smtp.code("DATA").await, 503);
        assert_eq!(smtp.code("RCPT TO:<b@example.com>").await, 250);
        assert_eq!(smtp.code("DATA").await, 354);
    }

    #[tokio::test]
    async fn given_a_message_over_the_limit_when_sent_then_552_and_the_session_goes_on() {
        let limits = SmtpLimits {
            max_message_bytes: 100,
            ..SmtpLimits::default()
        };
        let addr = start(limits).await;
        let mut smtp = Raw::connect(addr).await;
        assert_eq!(smtp.code("EHLO c").await, 250);
        assert_eq!(smtp.code("MAIL FROM:<a@example.com>").await, 250);
        assert_eq!(smtp.code("RCPT TO:<b@example.com>").await, 250);
        assert_eq!(smtp.code("DATA").await, 354);
        for _ in 0..10 {
            smtp.send(b"0123456789 0123456789\r\n").await;
        }
        // One line longer than the whole limit is discarded as well.
        smtp.send(&[b'y'; 300]).await;
        assert_eq!(smtp.code("\r\n.").await, 552);
        assert_eq!(smtp.code("NOOP").await, 250);
        assert_eq!(
            smtp.code("DATA").await,
            503,
            "the envelope went with the mail"
        );
    }

    #[tokio::test]
    async fn given_too_many_recipients_when_added_then_452() {
        let limits = SmtpLimits {
            max_recipients: 2,
            ..SmtpLimits::default()
        };
        let addr = start(limits).await;
        let mut smtp = Raw::connect(addr).await;
        assert_eq!(smtp.code("HELO c").await, 250);
        assert_eq!(smtp.code("MAIL FROM:<a@example.com>").await, 250);
        assert_eq!(smtp.code("RCPT TO:<b@example.com>").await, 250);
        assert_eq!(smtp.code("RCPT TO:<c@example.com>").await, 250);
        assert_eq!(smtp.code("RCPT TO:<d@example.com>").await, 452);
        assert_eq!(smtp.code("DATA").await, 354);
        assert_eq!(smtp.code("hi\r\n.").await, 250);
    }

    #[tokio::test]
    async fn given_an_idle_client_when_the_timeout_passes_then_421_and_closed() {
        let limits = SmtpLimits {
            idle_timeout: Duration::from_millis(200),
            ..SmtpLimits::default()
        };
        let addr = start(limits).await;
        let mut smtp = Raw::connect(addr).await;
        assert!(smtp.reply().await.starts_with("421 "));
        let mut rest = Vec::new();
        smtp.reader.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
    }

    #[tokio::test]
    async fn given_all_sessions_taken_when_another_connects_then_421() {
        let limits = SmtpLimits {
            max_sessions: 1,
            ..SmtpLimits::default()
        };
        let addr = start(limits).await;
        let _first = Raw::connect(addr).await;
        let (read, _write) = TcpStream::connect(addr).await.unwrap().into_split();
        let mut line = String::new();
        BufReader::new(read).read_line(&mut line).await.unwrap();
        assert!(line.starts_with("421 "), "{line}");
    }

    /// Takes mail for `support@shop.example` and its `+` addresses only.
    struct SupportOnly;

    #[async_trait]
    impl MailSink for SupportOnly {
        fn accepts(&self, recipient: &str) -> bool {
            let recipient = recipient.to_ascii_lowercase();
            recipient == "support@shop.example"
                || (recipient.starts_with("support+") && recipient.ends_with("@shop.example"))
        }

        async fn accept(&self, _mail: ReceivedMail) -> crate::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn given_a_sink_for_one_mailbox_when_another_recipient_is_given_then_550_5_1_1_at_rcpt() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(
            listener,
            SmtpLimits::default(),
            Arc::new(SupportOnly),
        ));
        let mut smtp = Raw::connect(addr).await;
        assert_eq!(smtp.code("EHLO c").await, 250);
        assert_eq!(smtp.code("MAIL FROM:<a@example.com>").await, 250);
        smtp.send(b"RCPT TO:<sales@shop.example>\r\n").await;
        let refused = smtp.reply().await;
        assert!(refused.starts_with("550 5.1.1 "), "{refused}");
        assert_eq!(smtp.code("DATA").await, 503, "no recipient was accepted");
        assert_eq!(
            smtp.code("RCPT TO:<Support+c0ffee@Shop.Example>").await,
            250
        );
        assert_eq!(smtp.code("RCPT TO:<support@other.example>").await, 550);
        assert_eq!(smtp.code("RCPT TO:<support@shop.example>").await, 250);
        assert_eq!(smtp.code("DATA").await, 354);
        assert_eq!(smtp.code("hi\r\n.").await, 250);
    }

    /// Connects from `local` (any 127/8 address is loopback on Linux) and returns the first
    /// line the server sends.
    async fn greeting_from(local: &str, addr: SocketAddr) -> (TcpStream, String) {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{local}:0").parse().unwrap()).unwrap();
        let stream = socket.connect(addr).await.unwrap();
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line).await.unwrap();
        (reader.into_inner(), line)
    }

    #[tokio::test]
    async fn given_one_client_holding_every_session_it_can_when_another_client_connects_then_it_is_served()
     {
        let limits = SmtpLimits::default();
        let addr = start(limits.clone()).await;
        let mut held = Vec::new();
        let mut greeted = 0;
        for _ in 0..limits.max_sessions {
            let (stream, line) = greeting_from("127.0.0.1", addr).await;
            if line.starts_with("220 ") {
                greeted += 1;
            } else {
                assert!(line.starts_with("421 "), "{line}");
            }
            held.push(stream);
        }
        assert_eq!(greeted, limits.max_sessions_per_client);
        let (_other, line) = greeting_from("127.0.0.2", addr).await;
        assert!(line.starts_with("220 "), "{line}");
    }

    /// Sends `command` every 100 ms until the server answers `421` (returned) or `within`
    /// passes (`None`).
    async fn repeat_until_421(smtp: &mut Raw, command: &str, within: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + within;
        while tokio::time::Instant::now() < deadline {
            let _ = smtp
                .writer
                .write_all(format!("{command}\r\n").as_bytes())
                .await;
            let mut line = String::new();
            if smtp.reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                return Some("closed without 421".into());
            }
            if line.starts_with("421 ") {
                return Some(line);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        None
    }

    #[tokio::test]
    async fn given_a_client_sending_only_noop_when_the_idle_timeout_passes_then_421_and_closed() {
        let limits = SmtpLimits {
            idle_timeout: Duration::from_millis(400),
            ..SmtpLimits::default()
        };
        let addr = start(limits).await;
        let mut smtp = Raw::connect(addr).await;
        assert_eq!(smtp.code("EHLO c").await, 250);
        let closed = repeat_until_421(&mut smtp, "NOOP", Duration::from_secs(5)).await;
        let line = closed.expect("NOOP kept the session open");
        assert!(line.starts_with("421 "), "{line}");
        let mut rest = Vec::new();
        smtp.reader.read_to_end(&mut rest).await.unwrap();
    }

    #[tokio::test]
    async fn given_a_busy_session_when_its_lifetime_passes_then_421_and_closed() {
        let limits = SmtpLimits {
            max_session_time: Duration::from_millis(600),
            ..SmtpLimits::default()
        };
        let addr = start(limits).await;
        let mut smtp = Raw::connect(addr).await;
        let closed = repeat_until_421(&mut smtp, "HELO c", Duration::from_secs(5)).await;
        let line = closed.expect("the session outlived its lifetime");
        assert!(line.starts_with("421 "), "{line}");
    }

    #[test]
    fn given_paths_when_parsed_then_routes_and_parameters_are_separated() {
        let (address, params) =
            path_after("from:<@a,@b:user@host> SIZE=5 BODY=7BIT", "FROM:").expect("valid");
        assert_eq!(address, "user@host");
        assert_eq!(params.collect::<Vec<_>>(), ["SIZE=5", "BODY=7BIT"]);
        assert_eq!(path_after("FROM:<>", "FROM:").unwrap().0, "");
        assert_eq!(
            path_after("TO:<用户@例子.中国>", "TO:").unwrap().0,
            "用户@例子.中国"
        );
        assert!(path_after("FROM:a@b", "FROM:").is_none());
        assert!(path_after("FROM:<a b@c>", "FROM:").is_none());
        assert!(path_after("TO:<a@b", "TO:").is_none());
        assert!(path_after("FRO", "FROM:").is_none());
    }
}
