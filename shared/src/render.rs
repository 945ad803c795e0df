//! Answer rendering: an answer is written once — with variables, links and quick replies —
//! and each channel gets what it can show.
//!
//! - Variables: `{{customer_name}}`, or with a fallback for when the value is unknown,
//!   `{{customer_name|亲}}`. The names are [`VARIABLES`]; the bot fills them in when it
//!   answers ([`fill`]), so the stored message reads as the customer saw it.
//! - Links: `[label](https://…)` (http and https only).
//! - Quick replies: short follow-up questions the customer can send with one tap; they
//!   travel beside the text (`quick_replies` on the message).
//!
//! [`for_channel`] turns text and quick replies into one channel's text: the web widget
//! draws links and buttons itself; WeChat gets `<a>` links and `weixin://bizmsgmenu` menu
//! links, which send their text when tapped; SMS and email get plain text with the URLs
//! written out and the quick replies as a list.

use crate::domain::Channel;

/// The variables an answer may use.
pub const VARIABLES: [&str; 2] = ["customer_name", "shop_name"];

/// Most quick replies one answer may offer (WeChat shows at most ten menu items).
pub const MAX_QUICK_REPLIES: usize = 10;

/// Longest quick reply, in characters: a button label, not a paragraph.
pub const MAX_QUICK_REPLY_CHARS: usize = 40;

/// Values for the variables of one answer; `None` uses the placeholder's fallback.
#[derive(Debug, Clone, Copy, Default)]
pub struct Variables<'a> {
    /// The customer's display name, when the channel gave one.
    pub customer_name: Option<&'a str>,
    /// The shop's name (configuration).
    pub shop_name: Option<&'a str>,
}

impl Variables<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        match name {
            "customer_name" => self.customer_name,
            "shop_name" => self.shop_name,
            _ => None,
        }
        .map(str::trim)
        .filter(|v| !v.is_empty())
    }
}

/// One piece of an answer template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece<'a> {
    Text(&'a str),
    Variable { name: &'a str, fallback: &'a str },
    Link { label: &'a str, url: &'a str },
}

/// Splits a template into pieces; `Err` names the first problem, in words an FAQ author
/// understands.
fn parse(template: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut pieces = Vec::new();
    let mut rest = template;
    while !rest.is_empty() {
        let next = [rest.find("{{"), link_start(rest)]
            .into_iter()
            .flatten()
            .min();
        let Some(at) = next else {
            if rest.contains("}}") {
                return Err("\"}}\" without \"{{\"".into());
            }
            pieces.push(Piece::Text(rest));
            break;
        };
        if at > 0 {
            if rest[..at].contains("}}") {
                return Err("\"}}\" without \"{{\"".into());
            }
            pieces.push(Piece::Text(&rest[..at]));
        }
        rest = &rest[at..];
        if let Some(inner) = rest.strip_prefix("{{") {
            let end = inner
                .find("}}")
                .ok_or_else(|| "\"{{\" without \"}}\"".to_owned())?;
            let (name, fallback) = inner[..end].split_once('|').unwrap_or((&inner[..end], ""));
            let name = name.trim();
            if !VARIABLES.contains(&name) {
                return Err(format!(
                    "unknown variable {{{{{name}}}}} (known: {})",
                    VARIABLES.join(", ")
                ));
            }
            pieces.push(Piece::Variable {
                name,
                fallback: fallback.trim(),
            });
            rest = &inner[end + 2..];
        } else {
            let (label, url, len) = link_at(rest).expect("link_start found a link");
            pieces.push(Piece::Link { label, url });
            rest = &rest[len..];
        }
    }
    Ok(pieces)
}

/// Where the first well-formed `[label](http…)` link starts.
fn link_start(text: &str) -> Option<usize> {
    text.match_indices('[')
        .map(|(at, _)| at)
        .find(|&at| link_at(&text[at..]).is_some())
}

/// A link at the very start of `text`: `(label, url, bytes used)`.
fn link_at(text: &str) -> Option<(&str, &str, usize)> {
    let inner = text.strip_prefix('[')?;
    let label_end = inner.find(']')?;
    let label = &inner[..label_end];
    let after = inner[label_end + 1..].strip_prefix('(')?;
    let url_end = after.find(')')?;
    let url = &after[..url_end];
    let web = url.starts_with("https://") || url.starts_with("http://");
    let clean = !url.contains(char::is_whitespace) && !url.contains(['"', '<', '>']);
    if label.trim().is_empty() || label.contains('[') || !web || !clean {
        return None;
    }
    Some((label, url, 1 + label_end + 2 + url_end + 1))
}

/// Checks an answer template: known variables, balanced braces.
pub fn check_template(template: &str) -> Result<(), String> {
    parse(template).map(drop)
}

/// Checks quick replies: at most [`MAX_QUICK_REPLIES`], each non-empty, one line, at most
/// [`MAX_QUICK_REPLY_CHARS`] characters and free of characters that would break a link.
pub fn check_quick_replies(replies: &[String]) -> Result<(), String> {
    if replies.len() > MAX_QUICK_REPLIES {
        return Err(format!(
            "{} quick replies (at most {MAX_QUICK_REPLIES})",
            replies.len()
        ));
    }
    for reply in replies {
        if reply.trim().is_empty() {
            return Err("empty quick reply".into());
        }
        if reply.chars().count() > MAX_QUICK_REPLY_CHARS {
            return Err(format!(
                "quick reply {reply:?} is longer than {MAX_QUICK_REPLY_CHARS} characters"
            ));
        }
        if reply.contains(['\n', '\r', '"', '<', '>', '&']) {
            return Err(format!(
                "quick reply {reply:?} has a line break or one of \" < > &"
            ));
        }
    }
    Ok(())
}

/// Fills the variables of `template` (see the module docs). A template that does not parse
/// is returned as it is: published FAQs are checked, so this only guards old ones.
pub fn fill(template: &str, variables: &Variables<'_>) -> String {
    let Ok(pieces) = parse(template) else {
        return template.to_owned();
    };
    let mut out = String::with_capacity(template.len());
    for piece in pieces {
        match piece {
            Piece::Text(text) => out.push_str(text),
            Piece::Variable { name, fallback } => {
                out.push_str(variables.get(name).unwrap_or(fallback));
            }
            Piece::Link { label, url } => {
                out.push('[');
                out.push_str(label);
                out.push_str("](");
                out.push_str(url);
                out.push(')');
            }
        }
    }
    out
}

/// The text to send on `channel` for a filled answer and its quick replies.
pub fn for_channel(channel: Channel, text: &str, quick_replies: &[String]) -> String {
    let pieces = parse(text).unwrap_or_else(|_| vec![Piece::Text(text)]);
    let mut out = String::with_capacity(text.len() + 32 * quick_replies.len());
    for piece in pieces {
        match (piece, channel) {
            (Piece::Text(text), _) => out.push_str(text),
            // Already filled; a literal placeholder left in a message stays as written.
            (Piece::Variable { name, fallback: "" }, _) => {
                out.push_str(&format!("{{{{{name}}}}}"));
            }
            (Piece::Variable { name, fallback }, _) => {
                out.push_str(&format!("{{{{{name}|{fallback}}}}}"));
            }
            (Piece::Link { label, url }, Channel::Web) => {
                out.push_str(&format!("[{label}]({url})"));
            }
            (Piece::Link { label, url }, Channel::Wechat) => {
                out.push_str(&format!("<a href=\"{url}\">{label}</a>"));
            }
            (Piece::Link { label, url }, _) if label == url => out.push_str(url),
            (Piece::Link { label, url }, Channel::Sms) => {
                out.push_str(&format!("{label}: {url}"));
            }
            (Piece::Link { label, url }, Channel::Email) => {
                out.push_str(&format!("{label} <{url}>"));
            }
        }
    }
    if quick_replies.is_empty() || channel == Channel::Web {
        return out;
    }
    out.push('\n');
    for (n, reply) in quick_replies.iter().enumerate() {
        out.push('\n');
        match channel {
            // Tapping sends the text as the customer's message; a clarify option is a
            // question, not a checked quick reply, so drop what would break the link.
            Channel::Wechat => {
                let reply = reply.replace(['"', '<', '>', '&'], "");
                out.push_str(&format!(
                    "<a href=\"weixin://bizmsgmenu?msgmenucontent={reply}&msgmenuid={}\">{reply}</a>",
                    n + 1
                ));
            }
            // "-", not "•": one character outside GSM-7 would make every segment UCS-2.
            _ => out.push_str(&format!("- {reply}")),
        }
    }
    out
}

/// `text` safe as HTML or XML text and attribute values (`&#39;` is understood by both).
pub fn escape_markup(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replies(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn given_name_known_or_unknown_when_filled_then_value_or_fallback() {
        let known = Variables {
            customer_name: Some("李雷"),
            shop_name: Some("小米有品"),
        };
        let template = "{{customer_name|亲}}您好，欢迎光临{{ shop_name }}！";
        assert_eq!(fill(template, &known), "李雷您好，欢迎光临小米有品！");
        let unknown = Variables {
            customer_name: Some("  "),
            shop_name: None,
        };
        assert_eq!(fill(template, &unknown), "亲您好，欢迎光临！");
    }

    #[test]
    fn given_bad_templates_when_checked_then_each_problem_is_named() {
        assert!(check_template("退货请看[退货政策](https://shop.example/returns)").is_ok());
        let unknown = check_template("Hi {{order_total}}").expect_err("unknown variable");
        assert!(unknown.contains("order_total") && unknown.contains("customer_name"));
        assert!(check_template("Hi {{customer_name").is_err());
        assert!(check_template("Hi customer_name}}").is_err());
        assert!(check_template("a [b] (c) [d](ftp://x) stays text").is_ok());
    }

    #[test]
    fn given_quick_replies_when_checked_then_limits_hold() {
        assert!(check_quick_replies(&replies(&["运费怎么算", "How do I return?"])).is_ok());
        assert!(check_quick_replies(&replies(&[""])).is_err());
        assert!(check_quick_replies(&replies(&["a\"b"])).is_err());
        assert!(check_quick_replies(&replies(&[&"长".repeat(41)])).is_err());
        assert!(check_quick_replies(&vec!["q".to_owned(); 11]).is_err());
    }

    #[test]
    fn given_link_and_quick_replies_when_rendered_then_each_channel_gets_its_form() {
        let text = "见[退货政策](https://shop.example/returns)。";
        let quick = replies(&["运费怎么算", "多久到账"]);
        assert_eq!(for_channel(Channel::Web, text, &quick), text);
        assert_eq!(
            for_channel(Channel::Wechat, text, &quick),
            "见<a href=\"https://shop.example/returns\">退货政策</a>。\n\n\
             <a href=\"weixin://bizmsgmenu?msgmenucontent=运费怎么算&msgmenuid=1\">运费怎么算</a>\n\
             <a href=\"weixin://bizmsgmenu?msgmenucontent=多久到账&msgmenuid=2\">多久到账</a>"
        );
        assert_eq!(
            for_channel(Channel::Sms, text, &quick),
            "见退货政策: https://shop.example/returns。\n\n- 运费怎么算\n- 多久到账"
        );
        assert_eq!(
            for_channel(
                Channel::Email,
                "Read [our policy](https://s.example/r).",
                &[]
            ),
            "Read our policy <https://s.example/r>."
        );
    }

    #[test]
    fn given_bare_url_link_when_rendered_as_text_then_url_once() {
        let text = "[https://s.example/r](https://s.example/r)";
        assert_eq!(for_channel(Channel::Sms, text, &[]), "https://s.example/r");
    }

    #[test]
    fn given_plain_text_when_rendered_then_unchanged_everywhere() {
        let text = "Orders ship in 24 hours (weekdays) [sic].";
        for channel in [Channel::Web, Channel::Wechat, Channel::Sms, Channel::Email] {
            assert_eq!(for_channel(channel, text, &[]), text);
        }
    }

    #[test]
    fn given_markup_characters_when_escaped_then_safe_in_html_and_xml() {
        assert_eq!(
            escape_markup(r#"<a href="x">Tom & Jerry's</a>"#),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#39;s&lt;/a&gt;"
        );
        assert_eq!(escape_markup("运费"), "运费");
    }
}
