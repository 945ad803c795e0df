//! Raw RFC 5322 mail into the fields the email channel needs.

use super::html;
use crate::{Error, Result};
use mail_parser::{Address, HeaderValue, Message, MessageParser, MimeHeaders, PartType};

/// How much of a mail's HTML is reduced to text: the first 1 MiB of its HTML parts, the
/// rest ignored. The bot reads a few thousand characters of the customer's new text, which
/// comes first; the cap bounds the work a huge newsletter can cause.
pub const MAX_HTML_BYTES: usize = 1024 * 1024;

/// A mail as the channel sees it: who wrote, how it threads, whether a machine sent it,
/// what it says and what it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedMail {
    /// The `From` mailbox.
    pub from: Mailbox,
    /// The `To` and `Cc` addresses, lowercased (where a plus-address reply token may be).
    pub recipients: Vec<String>,
    /// The decoded subject.
    pub subject: Option<String>,
    /// `Message-ID`, without angle brackets.
    pub message_id: Option<String>,
    /// `In-Reply-To`: the first id, without angle brackets.
    pub in_reply_to: Option<String>,
    /// `References`, oldest first, without angle brackets.
    pub references: Vec<String>,
    /// `Auto-Submitted` (RFC 3834), lowercased: `no`, `auto-replied`, `auto-generated`, …
    pub auto_submitted: Option<String>,
    /// `Precedence`, lowercased: `bulk`, `junk`, `list`, …
    pub precedence: Option<String>,
    /// Whether `X-Autoreply` or `X-Autorespond` is present (set by vacation responders that
    /// predate RFC 3834).
    pub autoreply_header: bool,
    /// The address inside `Return-Path`; `Some("")` for the null sender `<>` of bounces.
    pub return_path: Option<String>,
    /// Whether the mail is a delivery status notification
    /// (`multipart/report; report-type=delivery-status`, RFC 3464).
    pub delivery_report: bool,
    /// The text body: the `text/plain` parts, or the HTML parts reduced to text when there
    /// is no plain alternative. Quoted history is still in it (see [`super::new_text`]).
    pub text: String,
    /// The attached files, in order.
    pub attachments: Vec<Attachment>,
}

/// An email mailbox: address and display name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    /// The address, lowercased so that one customer is one conversation whatever the case
    /// their client writes it in.
    pub address: String,
    /// The display name, decoded, when there is one.
    pub name: Option<String>,
}

/// A file attached to a mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The file name the sender gave, when there is one.
    pub file_name: Option<String>,
    /// `type/subtype`, lowercased (`application/octet-stream` when not declared).
    pub content_type: String,
    /// The decoded content.
    pub bytes: Vec<u8>,
}

/// Parses a raw mail (as SES stores it in S3).
///
/// Errors: [`Error::Invalid`] when the bytes are not a mail (no header section) or have no
/// `From` address — nothing to answer to.
pub fn parse(raw: &[u8]) -> Result<ParsedMail> {
    let message = MessageParser::default()
        .parse(raw)
        .filter(|message| !message.headers().is_empty())
        .ok_or_else(|| Error::Invalid("not an email message: no header section".into()))?;
    let from = message
        .from()
        .and_then(Address::first)
        .and_then(|addr| {
            let address = addr.address.as_deref()?.trim();
            address.contains('@').then(|| Mailbox {
                address: address.to_lowercase(),
                name: non_empty(addr.name.as_deref()),
            })
        })
        .ok_or_else(|| Error::Invalid("email has no From address".into()))?;
    Ok(ParsedMail {
        from,
        recipients: recipients(&message),
        subject: non_empty(message.subject()),
        message_id: non_empty(message.message_id()),
        in_reply_to: ids(message.in_reply_to()).into_iter().next(),
        references: ids(message.references()),
        auto_submitted: lowercase_header(&message, "Auto-Submitted"),
        precedence: lowercase_header(&message, "Precedence"),
        autoreply_header: message.header_raw("X-Autoreply").is_some()
            || message.header_raw("X-Autorespond").is_some(),
        return_path: message.header_raw("Return-Path").map(return_address),
        delivery_report: is_delivery_report(&message),
        text: body_text(&message),
        attachments: message.attachments().map(attachment).collect(),
    })
}

/// The `To` and `Cc` addresses, lowercased.
fn recipients(message: &Message<'_>) -> Vec<String> {
    message
        .all_to()
        .chain(message.all_cc())
        .flat_map(|address| match address {
            Address::List(list) => list.iter().collect::<Vec<_>>(),
            Address::Group(groups) => groups.iter().flat_map(|g| &g.addresses).collect(),
        })
        .filter_map(|addr| addr.address.as_deref())
        .map(|address| address.trim().to_lowercase())
        .collect()
}

/// The message ids of an id-list header (`In-Reply-To`, `References`).
fn ids(value: &HeaderValue<'_>) -> Vec<String> {
    match value {
        HeaderValue::Text(id) => vec![id.to_string()],
        HeaderValue::TextList(list) => list.iter().map(|id| id.to_string()).collect(),
        _ => Vec::new(),
    }
}

/// A header's first value, trimmed and lowercased.
fn lowercase_header(message: &Message<'_>, name: &str) -> Option<String> {
    non_empty(message.header_raw(name)).map(|value| value.to_ascii_lowercase())
}

/// The address in a raw `Return-Path` value: `<a@b>` → `a@b`, `<>` → empty.
fn return_address(raw: &str) -> String {
    let raw = raw.trim();
    raw.strip_prefix('<')
        .and_then(|inner| inner.strip_suffix('>'))
        .unwrap_or(raw)
        .trim()
        .to_lowercase()
}

fn is_delivery_report(message: &Message<'_>) -> bool {
    message.root_part().content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case("multipart")
            && ct
                .subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case("report"))
            && ct
                .attribute("report-type")
                .is_some_and(|t| t.eq_ignore_ascii_case("delivery-status"))
    })
}

/// The text of the body parts, joined by blank lines; `mail-parser` already picked the
/// plain alternative where there is one and lists HTML parts only where there is not.
fn body_text(message: &Message<'_>) -> String {
    let mut html_left = MAX_HTML_BYTES;
    let parts: Vec<String> = message
        .text_bodies()
        .filter_map(|part| match &part.body {
            PartType::Text(text) => Some(text.replace("\r\n", "\n")),
            PartType::Html(markup) => {
                let read = html_start(markup, html_left);
                html_left -= read.len();
                Some(html::to_text(read))
            }
            _ => None,
        })
        .map(|text| text.trim_end().to_owned())
        .filter(|text| !text.is_empty())
        .collect();
    parts.join("\n\n")
}

/// The first `max` bytes of `markup` (at a character boundary), without a tag the cut
/// left open, which would otherwise read as text.
fn html_start(markup: &str, max: usize) -> &str {
    if markup.len() <= max {
        return markup;
    }
    let mut end = max;
    while !markup.is_char_boundary(end) {
        end -= 1;
    }
    let start = &markup[..end];
    match start.rfind(['<', '>']) {
        Some(open) if start.as_bytes()[open] == b'<' => &start[..open],
        _ => start,
    }
}

fn attachment(part: &mail_parser::MessagePart<'_>) -> Attachment {
    let content_type = part.content_type().map_or_else(
        || "application/octet-stream".to_owned(),
        |ct| match ct.subtype() {
            Some(subtype) => format!("{}/{}", ct.ctype(), subtype),
            None => ct.ctype().to_owned(),
        },
    );
    Attachment {
        file_name: non_empty(part.attachment_name()),
        content_type: content_type.to_ascii_lowercase(),
        bytes: part.contents().to_vec(),
    }
}

fn non_empty(value: Option<&str>) -> Option<String> {
    value
        .map(str::trim)
        .filter(|value| !value.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::super::{drop_reason, new_text, token_in};
    use super::*;

    const TOKEN: &str = "c3f9a1e07b2d4c6e8f0a1b2c3d4e5f67";

    fn fixture(raw: &[u8]) -> ParsedMail {
        match parse(raw) {
            Ok(mail) => mail,
            Err(error) => panic!("fixture does not parse: {error}"),
        }
    }

    #[test]
    fn given_a_gmail_reply_when_parsed_then_headers_plain_body_and_token_are_read() {
        let mail = fixture(include_bytes!("testdata/gmail_reply.eml"));
        assert_eq!(mail.from.address, "li.wei.shopper@gmail.com");
        assert_eq!(mail.from.name.as_deref(), Some("Li Wei"));
        assert_eq!(
            mail.subject.as_deref(),
            Some("Re: Your order #8841 has shipped")
        );
        assert_eq!(
            mail.message_id.as_deref(),
            Some("CAJ8s0+Yq1xZ4nB7mK2pR9tW@mail.gmail.com")
        );
        let ses_id =
            "0100019440c1d2e3-5f1a2b3c-4d5e-6f70-8192-a3b4c5d6e7f8-000000@email.amazonses.com";
        assert_eq!(mail.in_reply_to.as_deref(), Some(ses_id));
        assert_eq!(mail.references, ["order-8841@shop.example", ses_id]);
        // The plain alternative, not the HTML one: it still holds the '>' quotes.
        assert!(mail.text.contains("> Your order #8841 has shipped"));
        assert_eq!(
            new_text(&mail.text),
            "Hi,\n\nThe tracking page still says “label created” after three days. Could you\n\
             check with the courier?\n\nThanks,\nLi Wei"
        );
        let id = token_in(&mail.recipients, "support").map(|id| id.to_string());
        assert_eq!(id.as_deref(), Some(TOKEN));
        assert_eq!(drop_reason(&mail, Some("PASS"), Some("PASS")), None);
    }

    #[test]
    fn given_an_outlook_reply_when_parsed_then_the_original_message_is_cut() {
        let mail = fixture(include_bytes!("testdata/outlook_reply.eml"));
        assert_eq!(mail.from.name.as_deref(), Some("Chen, Mei"));
        assert_eq!(
            mail.recipients,
            ["support@shop.example", "purchasing@contoso.example"]
        );
        assert_eq!(
            new_text(&mail.text),
            "Hello,\n\nWe would like 40 units instead of 25. Does the 8% discount still apply?\n\n\
             Best regards\nMei Chen\nProcurement, Contoso Ltd."
        );
        assert_eq!(drop_reason(&mail, None, None), None);
    }

    #[test]
    fn given_a_gb2312_base64_mail_when_parsed_then_name_subject_and_body_are_decoded() {
        let mail = fixture(include_bytes!("testdata/gbk.eml"));
        assert_eq!(mail.from.name.as_deref(), Some("王芳"));
        assert_eq!(mail.subject.as_deref(), Some("保温杯漏水"));
        assert_eq!(
            mail.text,
            "您好，我上周买的保温杯盖子漏水，能换一个吗？\n订单号：20250105-7731\n\n谢谢！"
        );
    }

    #[test]
    fn given_a_big5_quoted_printable_mail_when_parsed_then_it_is_decoded() {
        let raw = b"From: =?big5?B?s6+l/aXN?= <chen@example.com.tw>\r\n\
                    To: support@shop.example\r\n\
                    Subject: stock\r\n\
                    MIME-Version: 1.0\r\n\
                    Content-Type: text/plain; charset=big5\r\n\
                    Content-Transfer-Encoding: quoted-printable\r\n\r\n\
                    =BD=D0=B0=DD=A6=B3=B2{=B3f=B6=DC=A1H\r\n";
        let mail = fixture(raw);
        assert_eq!(mail.from.name.as_deref(), Some("陳先生"));
        assert_eq!(mail.text, "請問有現貨嗎？");
    }

    #[test]
    fn given_a_pdf_attachment_when_parsed_then_name_type_and_bytes_are_kept() {
        let mail = fixture(include_bytes!("testdata/pdf_attachment.eml"));
        assert_eq!(
            mail.text,
            "The attached invoice lists 3 items; we received 2."
        );
        let [pdf] = mail.attachments.as_slice() else {
            panic!("expected one attachment, got {}", mail.attachments.len());
        };
        assert_eq!(pdf.file_name.as_deref(), Some("invoice-8902.pdf"));
        assert_eq!(pdf.content_type, "application/pdf");
        assert!(pdf.bytes.starts_with(b"%PDF-1.4\n"));
        assert!(pdf.bytes.ends_with(b"%%EOF\n"));
    }

    #[test]
    fn given_an_out_of_office_reply_when_parsed_then_it_is_dropped_as_auto_reply() {
        let mail = fixture(include_bytes!("testdata/out_of_office.eml"));
        assert_eq!(mail.auto_submitted.as_deref(), Some("auto-replied"));
        assert_eq!(
            drop_reason(&mail, Some("PASS"), Some("PASS")),
            Some("auto_reply")
        );
    }

    #[test]
    fn given_a_mailer_daemon_report_when_parsed_then_it_is_dropped_as_bounce() {
        let mail = fixture(include_bytes!("testdata/bounce.eml"));
        assert_eq!(mail.return_path.as_deref(), Some(""));
        assert!(mail.delivery_report);
        assert_eq!(mail.from.address, "mailer-daemon@amazonses.com");
        assert_eq!(drop_reason(&mail, None, None), Some("bounce"));
    }

    #[test]
    fn given_an_html_only_mail_when_parsed_then_the_text_is_its_visible_lines() {
        let mail = fixture(include_bytes!("testdata/html_only.eml"));
        assert_eq!(mail.from.name.as_deref(), Some("赵磊"));
        assert_eq!(mail.subject.as_deref(), Some("退款进度"));
        assert_eq!(
            mail.text,
            "你好，\n我的退款 & 退货还没到账。\n订单：#8977\n金额 <¥199>\n提交于 1月10日\n赵磊"
        );
    }

    #[test]
    fn given_html_longer_than_the_limit_when_parsed_then_only_its_start_is_read() {
        let head = "From: a@example.com\r\nContent-Type: text/html; charset=utf-8\r\n\r\n";
        let filler = "<p>filler words</p>".repeat(MAX_HTML_BYTES / 19 + 10);
        let raw = format!("{head}<p>first line</p>{filler}<p>past the limit</p>");
        let mail = fixture(raw.as_bytes());
        assert!(mail.text.starts_with("first line\nfiller words\n"));
        assert!(!mail.text.contains("past the limit"));

        // Cut inside a tag: the partial tag is not read as text.
        let long_word = "x".repeat(MAX_HTML_BYTES - 6);
        let raw = format!("{head}<p>{long_word}<p class=cut>after</p>");
        let mail = fixture(raw.as_bytes());
        assert_eq!(mail.text, long_word);
    }

    #[test]
    fn given_bytes_that_are_not_a_mail_when_parsed_then_invalid() {
        for raw in [&b""[..], b"\x00\x01\x02 binary", b"just some words\n"] {
            assert!(
                matches!(parse(raw), Err(Error::Invalid(_))),
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn given_a_mail_without_from_when_parsed_then_invalid_naming_from() {
        let raw = b"To: support@shop.example\r\nSubject: hi\r\n\r\nhello\r\n";
        match parse(raw) {
            Err(Error::Invalid(reason)) => assert!(reason.contains("From"), "{reason}"),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }
}
