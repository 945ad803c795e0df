//! Composing a reply: an [`OutgoingMail`] written out as RFC 5322 bytes, and the HTML
//! alternative of a plain-text answer ([`html_of`]).
//!
//! What goes on the wire:
//! - CRLF line ends; header lines folded at 78 characters where there is whitespace to fold
//!   at; non-ASCII header text (subject, display names) as RFC 2047 `B` encoded-words of at
//!   most 75 characters, split between characters, never inside one.
//! - `multipart/alternative` with a `text/plain; charset=utf-8` and a
//!   `text/html; charset=utf-8` part, both base64 in lines of 76 (every client decodes it,
//!   and for Chinese text it is smaller than quoted-printable). The boundary is random and
//!   starts with `=_`, which base64 never contains.
//! - `Auto-Submitted: auto-replied` (RFC 3834) and `X-Auto-Response-Suppress: All` on
//!   answers no person wrote (bot and system messages), so that the customer's vacation
//!   responder does not answer them. An agent's reply carries neither: it is a person's
//!   mail, and helpdesks and list servers on the customer's side drop auto-submitted mail.
//!
//! Header injection is impossible by construction: every value put in a header has its
//! control characters (CR and LF among them) replaced by spaces, and addresses keep only
//! the characters an address may have outside quotes.

use super::Mailbox;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};

/// Longest header line we write when it can be folded (RFC 5322 §2.1.1).
const LINE: usize = 78;
/// Longest encoded-word (RFC 2047 §2).
const ENCODED_WORD: usize = 75;
/// Longest base64 body line (RFC 2045 §6.8).
const BODY_LINE: usize = 76;

/// A mail to send, before it is written out with [`OutgoingMail::to_mime`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMail {
    /// `From`.
    pub from: Mailbox,
    /// `To`.
    pub to: Mailbox,
    /// `Reply-To`, a bare address.
    pub reply_to: Option<String>,
    /// `Subject`, unencoded.
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// The HTML body (see [`html_of`]).
    pub html: String,
    /// `Message-ID`, without angle brackets.
    pub message_id: String,
    /// `In-Reply-To`, with angle brackets (as [`super::ReplyThreading`] has it).
    pub in_reply_to: Option<String>,
    /// `References`, ids with angle brackets separated by spaces.
    pub references: Option<String>,
    /// `Date`.
    pub date: DateTime<Utc>,
    /// Whether no person wrote it: adds `Auto-Submitted: auto-replied` (see the module docs).
    pub auto_submitted: bool,
}

impl OutgoingMail {
    /// The mail as RFC 5322 bytes (see the module docs for the format).
    pub fn to_mime(&self) -> Vec<u8> {
        let boundary = boundary();
        let mut out = String::with_capacity(1024 + self.text.len() * 3);
        header(&mut out, "Date", &[self.date.to_rfc2822()]);
        header(&mut out, "From", &mailbox(&self.from, room_after("From")));
        header(&mut out, "To", &mailbox(&self.to, room_after("To")));
        if let Some(reply_to) = &self.reply_to {
            header(&mut out, "Reply-To", &[address(reply_to)]);
        }
        header(
            &mut out,
            "Subject",
            &text_words(&self.subject, room_after("Subject")),
        );
        header(&mut out, "Message-ID", &[msg_id(&self.message_id)]);
        if let Some(in_reply_to) = &self.in_reply_to {
            header(&mut out, "In-Reply-To", &ids(in_reply_to));
        }
        if let Some(references) = &self.references {
            header(&mut out, "References", &ids(references));
        }
        if self.auto_submitted {
            header(&mut out, "Auto-Submitted", &["auto-replied".to_owned()]);
            header(&mut out, "X-Auto-Response-Suppress", &["All".to_owned()]);
        }
        header(&mut out, "MIME-Version", &["1.0".to_owned()]);
        header(
            &mut out,
            "Content-Type",
            &[
                "multipart/alternative;".to_owned(),
                format!("boundary=\"{boundary}\""),
            ],
        );
        out.push_str("\r\n");
        for (subtype, body) in [("plain", &self.text), ("html", &self.html)] {
            out.push_str(&format!("--{boundary}\r\n"));
            out.push_str(&format!("Content-Type: text/{subtype}; charset=utf-8\r\n"));
            out.push_str("Content-Transfer-Encoding: base64\r\n\r\n");
            base64_lines(&mut out, &crlf(body));
        }
        out.push_str(&format!("--{boundary}--\r\n"));
        out.into_bytes()
    }
}

/// A random multipart boundary. `=_` cannot occur in base64, so the boundary cannot occur
/// in the (base64) parts.
fn boundary() -> String {
    format!("=_kefu_{}", uuid::Uuid::new_v4().simple())
}

/// Writes `name: ` and `words` separated by spaces, folding before a word that would take
/// the line past [`LINE`] characters.
fn header(out: &mut String, name: &str, words: &[String]) {
    out.push_str(name);
    out.push(':');
    let mut line = name.len() + 1;
    for (n, word) in words.iter().enumerate() {
        // Never fold before an empty word: a line of nothing but whitespace is obsolete.
        if n > 0 && !word.is_empty() && line + 1 + word.len() > LINE {
            out.push_str("\r\n");
            line = 0;
        }
        out.push(' ');
        out.push_str(word);
        line += 1 + word.len();
    }
    out.push_str("\r\n");
}

/// `text` with every control character (CR, LF, TAB, NUL, …) as a space: header values
/// can then neither end the header nor start another.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// An address as it may stand inside `<…>`: printable ASCII without whitespace, angle
/// brackets, quotes or the other characters that would end or re-open the address.
fn address(address: &str) -> String {
    address
        .chars()
        .filter(|c| c.is_ascii_graphic() && !"<>()[]\\,;:\"".contains(*c))
        .collect()
}

/// `Name <address>`, or `<address>` without a name; `room`: see [`encoded_words`].
fn mailbox(mailbox: &Mailbox, room: usize) -> Vec<String> {
    let mut words = match mailbox.name.as_deref().map(one_line) {
        Some(name) if !name.trim().is_empty() => phrase(name.trim(), room),
        _ => Vec::new(),
    };
    words.push(format!("<{}>", address(&mailbox.address)));
    words
}

/// A display name: a quoted string when it is ASCII and fits in `room`, else encoded-words.
fn phrase(name: &str, room: usize) -> Vec<String> {
    let quoted = format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""));
    if name.is_ascii() && quoted.len() <= room {
        vec![quoted]
    } else {
        encoded_words(name, room)
    }
}

/// Unstructured text (a subject): its words when it is ASCII and can be folded, else
/// encoded-words (also for ASCII that would read as an encoded-word, or with a word too
/// long to fold). `room`: see [`encoded_words`].
fn text_words(text: &str, room: usize) -> Vec<String> {
    let text = one_line(text);
    let looks_encoded = text.contains("=?");
    let foldable = text
        .split(' ')
        .enumerate()
        .all(|(n, word)| word.len() <= if n == 0 { room } else { LINE - 1 });
    if text.is_ascii() && !looks_encoded && foldable {
        text.split(' ').map(str::to_owned).collect()
    } else {
        encoded_words(text.trim(), room)
    }
}

/// The room for the first word of header `name`'s value on the line `name: ` starts.
fn room_after(name: &str) -> usize {
    LINE - name.len() - 2
}

/// `text` as RFC 2047 `B` encoded-words, each holding whole characters (a decoder may
/// decode each word on its own): the first at most `room` characters long (it shares the
/// line with the header name), the others at most [`ENCODED_WORD`].
fn encoded_words(text: &str, room: usize) -> Vec<String> {
    const OPEN: &str = "=?utf-8?B?";
    const CLOSE: &str = "?=";
    // 4 base64 characters per 3 bytes: the longest payload in whole 4-character groups.
    let max_bytes = |length: usize| (length - OPEN.len() - CLOSE.len()) / 4 * 3;
    let mut limit = max_bytes(room.min(ENCODED_WORD));
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in text.chars() {
        if !chunk.is_empty() && chunk.len() + c.len_utf8() > limit {
            words.push(format!("{OPEN}{}{CLOSE}", BASE64.encode(&chunk)));
            chunk.clear();
            limit = max_bytes(ENCODED_WORD);
        }
        chunk.push(c);
    }
    if !chunk.is_empty() || words.is_empty() {
        words.push(format!("{OPEN}{}{CLOSE}", BASE64.encode(&chunk)));
    }
    words
}

/// `<id>` with the id cleaned like an address.
fn msg_id(id: &str) -> String {
    format!(
        "<{}>",
        address(id.trim().trim_start_matches('<').trim_end_matches('>'))
    )
}

/// A list of message ids (`<a@x> <b@y>`), each cleaned.
fn ids(list: &str) -> Vec<String> {
    one_line(list)
        .split([' ', '<', '>'])
        .filter(|id| !id.is_empty())
        .map(msg_id)
        .filter(|id| id.len() > 2)
        .collect()
}

/// `text` with CRLF line ends (what a `text/*` body must have before it is encoded).
fn crlf(text: &str) -> String {
    text.replace("\r\n", "\n")
        .replace('\r', "\n")
        .replace('\n', "\r\n")
}

/// `text` in base64, [`BODY_LINE`] characters a line.
fn base64_lines(out: &mut String, text: &str) {
    let encoded = BASE64.encode(text.as_bytes());
    for line in encoded.as_bytes().chunks(BODY_LINE) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push_str("\r\n");
    }
}

/// The HTML alternative of a plain-text answer: the text escaped, paragraphs at blank lines,
/// `<br>` at single line breaks, and `http://`/`https://` URLs as links.
pub fn html_of(text: &str) -> String {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut paragraphs: Vec<Vec<&str>> = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !current.is_empty() {
                paragraphs.push(std::mem::take(&mut current));
            }
        } else {
            current.push(line);
        }
    }
    if !current.is_empty() {
        paragraphs.push(current);
    }
    let mut out =
        String::from("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head><body>\n");
    for paragraph in paragraphs {
        let lines: Vec<String> = paragraph.iter().map(|line| linked(line)).collect();
        out.push_str("<p>");
        out.push_str(&lines.join("<br>\n"));
        out.push_str("</p>\n");
    }
    out.push_str("</body></html>\n");
    out
}

/// One line escaped, with its URLs as links.
fn linked(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + 16);
    let mut rest = line;
    while let Some(start) = next_url(rest) {
        out.push_str(&crate::render::escape_markup(&rest[..start]));
        let url = url_at(&rest[start..]);
        let href = crate::render::escape_markup(url);
        out.push_str(&format!("<a href=\"{href}\">{href}</a>"));
        rest = &rest[start + url.len()..];
    }
    out.push_str(&crate::render::escape_markup(rest));
    out
}

/// Where the next `http://` or `https://` URL starts that is not inside a word.
fn next_url(text: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(found) = text[from..].find("http") {
        let at = from + found;
        let tail = &text[at..];
        let scheme = tail.starts_with("https://") || tail.starts_with("http://");
        let word_start = text[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_ascii_alphanumeric());
        if scheme && word_start && url_at(tail).len() > tail.find("//").unwrap_or(0) + 2 {
            return Some(at);
        }
        from = at + 4;
    }
    None
}

/// The URL at the start of `text`: up to whitespace, a quote, an angle bracket or a
/// non-ASCII character (Chinese text often follows a URL without a space), without
/// trailing punctuation.
fn url_at(text: &str) -> &str {
    let end = text
        .find(|c: char| !c.is_ascii_graphic() || "<>\"'".contains(c))
        .unwrap_or(text.len());
    text[..end].trim_end_matches(['.', ',', ';', ':', '!', '?', ')', ']', '}'])
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use mail_parser::{HeaderValue, MessageParser};

    fn mail() -> OutgoingMail {
        let text = "您好，包裹已发出。\n\n查看物流 <https://shop.example/track?id=1&x=2>";
        OutgoingMail {
            from: Mailbox {
                address: "support@shop.example".into(),
                name: Some("小店客服".into()),
            },
            to: Mailbox {
                address: "li.wei@example.com".into(),
                name: None,
            },
            reply_to: Some("support+c123@shop.example".into()),
            subject: "Re: 我的订单什么时候发货？".into(),
            text: text.into(),
            html: html_of(text),
            message_id: "m1@shop.example".into(),
            in_reply_to: Some("<b@mail.example>".into()),
            references: Some("<a@mail.example> <b@mail.example>".into()),
            date: Utc.with_ymd_and_hms(2025, 1, 6, 10, 2, 0).unwrap(),
            auto_submitted: true,
        }
    }

    fn text_of(raw: &[u8]) -> &str {
        std::str::from_utf8(raw).expect("the mail is ASCII")
    }

    fn ids_of(value: &HeaderValue<'_>) -> Vec<String> {
        match value {
            HeaderValue::Text(id) => vec![id.to_string()],
            HeaderValue::TextList(ids) => ids.iter().map(|id| id.to_string()).collect(),
            _ => Vec::new(),
        }
    }

    #[test]
    fn given_a_chinese_reply_when_written_and_parsed_back_then_every_field_round_trips() {
        let raw = mail().to_mime();
        let parsed = MessageParser::default().parse(&raw).unwrap();
        assert_eq!(parsed.subject(), Some("Re: 我的订单什么时候发货？"));
        let from = parsed.from().and_then(|a| a.first()).unwrap();
        assert_eq!(from.name.as_deref(), Some("小店客服"));
        assert_eq!(from.address.as_deref(), Some("support@shop.example"));
        let reply_to = parsed.reply_to().and_then(|a| a.first()).unwrap();
        assert_eq!(
            reply_to.address.as_deref(),
            Some("support+c123@shop.example")
        );
        assert_eq!(parsed.message_id(), Some("m1@shop.example"));
        assert_eq!(ids_of(parsed.in_reply_to()), ["b@mail.example"]);
        assert_eq!(
            ids_of(parsed.references()),
            ["a@mail.example", "b@mail.example"]
        );
        assert_eq!(
            parsed.body_text(0).unwrap().replace("\r\n", "\n"),
            mail().text
        );
        let html = parsed.body_html(0).unwrap();
        assert!(html.contains("<p>您好，包裹已发出。</p>"), "{html}");
        assert!(
            html.contains(
                "&lt;<a href=\"https://shop.example/track?id=1&amp;x=2\">\
                 https://shop.example/track?id=1&amp;x=2</a>&gt;"
            ),
            "{html}"
        );
        assert_eq!(
            parsed.header_raw("Auto-Submitted").map(str::trim),
            Some("auto-replied")
        );
        assert_eq!(parsed.date().unwrap().to_rfc3339(), "2025-01-06T10:02:00Z");
    }

    #[test]
    fn given_a_mail_when_written_then_lines_end_in_crlf_and_none_is_too_long() {
        let url = format!("https://shop.example/{}", "p".repeat(90));
        for subject in [
            "很长的主题".repeat(30),
            format!("Re: {}", "order status ".repeat(20))
                .trim()
                .to_owned(),
            format!("Re: {url}"),
            url,
        ] {
            let mut mail = mail();
            mail.subject = subject;
            mail.from.name = Some(format!("Shop {}", "Support ".repeat(12)).trim().to_owned());
            mail.text = "x".repeat(500);
            mail.references = Some(
                (0..20)
                    .map(|n| format!("<{n}@mail.example>"))
                    .collect::<Vec<_>>()
                    .join(" "),
            );
            let raw = mail.to_mime();
            let text = text_of(&raw);
            assert!(!text.replace("\r\n", "").contains(['\r', '\n']));
            for line in text.split("\r\n") {
                assert!(line.len() <= LINE, "{} > {LINE}: {line}", line.len());
            }
            let parsed = MessageParser::default().parse(&raw).unwrap();
            assert_eq!(parsed.subject(), Some(mail.subject.as_str()));
            let from = parsed.from().and_then(|a| a.first()).unwrap();
            assert_eq!(from.name.as_deref(), mail.from.name.as_deref());
            assert_eq!(parsed.body_text(0).as_deref(), Some(mail.text.as_str()));
            assert_eq!(
                ids_of(parsed.references()).len(),
                20,
                "{:?}",
                parsed.references()
            );
        }
        let raw = mail().to_mime();
        let text = text_of(&raw);
        assert!(text.contains("MIME-Version: 1.0\r\n"));
        assert!(text.contains("Content-Type: text/plain; charset=utf-8\r\n"));
        assert!(text.contains("Content-Type: text/html; charset=utf-8\r\n"));
    }

    #[test]
    fn given_long_non_ascii_text_when_encoded_then_words_hold_whole_characters() {
        let words = encoded_words(&"订单".repeat(40), room_after("Subject"));
        assert!(words.len() > 1);
        for word in &words {
            assert!(word.len() <= ENCODED_WORD, "{word}");
            let payload = word.trim_start_matches("=?utf-8?B?").trim_end_matches("?=");
            let bytes = BASE64.decode(payload).unwrap();
            assert!(
                String::from_utf8(bytes).is_ok(),
                "{word} splits a character"
            );
        }
    }

    #[test]
    fn given_cr_lf_in_header_inputs_when_written_then_no_header_is_injected() {
        let mut mail = mail();
        mail.subject = "Hello\r\nBcc: victim@evil.example".into();
        mail.from.name = Some("Shop\r\nBcc: victim@evil.example".into());
        mail.to.address = "li.wei@example.com\r\nBcc: victim@evil.example".into();
        mail.reply_to = Some("x@y.example>\nBcc: victim@evil.example".into());
        mail.in_reply_to = Some("<a@b>\r\nBcc: victim@evil.example".into());
        mail.message_id = "m1@shop.example\r\nBcc: x@y".into();
        let raw = mail.to_mime();
        let text = text_of(&raw);
        let headers = &text[..text.find("\r\n\r\n").unwrap()];
        for line in headers.split("\r\n") {
            assert!(!line.starts_with("Bcc"), "injected: {line}");
        }
        let parsed = MessageParser::default().parse(&raw).unwrap();
        assert!(parsed.bcc().is_none());
        assert_eq!(parsed.subject(), Some("Hello  Bcc: victim@evil.example"));
        let to = parsed.to().and_then(|a| a.first()).unwrap();
        assert_eq!(
            to.address.as_deref(),
            Some("li.wei@example.comBccvictim@evil.example")
        );
        assert_eq!(parsed.to().map(|to| to.iter().count()), Some(1));
    }

    #[test]
    fn given_an_agent_reply_when_written_then_it_is_not_marked_auto_submitted() {
        let mut mail = mail();
        mail.auto_submitted = false;
        let raw = mail.to_mime();
        assert!(!text_of(&raw).contains("Auto-Submitted"));
    }

    #[test]
    fn given_ascii_names_with_quotes_when_written_then_they_are_quoted_and_escaped() {
        let mut mail = mail();
        mail.from.name = Some("Shop \"Best\" Support".into());
        mail.subject = "Re: Where is my order?".into();
        let raw = mail.to_mime();
        let text = text_of(&raw);
        assert!(text.contains("From: \"Shop \\\"Best\\\" Support\" <support@shop.example>\r\n"));
        assert!(text.contains("Subject: Re: Where is my order?\r\n"));
        let parsed = MessageParser::default().parse(&raw).unwrap();
        let from = parsed.from().and_then(|a| a.first()).unwrap();
        assert_eq!(from.name.as_deref(), Some("Shop \"Best\" Support"));
    }

    #[test]
    fn given_text_with_paragraphs_and_urls_when_made_html_then_escaped_and_linked() {
        let html = html_of("a < b & c\nsee http://x.example/p.\n\n\nnext https://y.example查看");
        assert!(html.contains(
            "<p>a &lt; b &amp; c<br>\nsee <a href=\"http://x.example/p\">http://x.example/p</a>.</p>\n\
             <p>next <a href=\"https://y.example\">https://y.example</a>查看</p>"
        ), "{html}");
        assert!(!html_of("nohttp://x and http:// alone").contains("<a "));
        assert!(html_of("<script>").contains("&lt;script&gt;"));
    }
}
