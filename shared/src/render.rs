//! Answer rendering: an answer is written once — with variables, links and quick replies —
//! and each channel gets what it can show.
//!
//! The template syntax (variables, links, quick replies) is the FAQ's, checked when an FAQ
//! is published ([`kefu_template`]). The bot fills in the variables when it answers
//! ([`fill`]), so the stored message reads as the customer saw it.
//!
//! [`for_channel`] turns text and quick replies into one channel's text: the web widget
//! draws links and buttons itself; WeChat gets `<a>` links and `weixin://bizmsgmenu` menu
//! links, which send their text when tapped; SMS and email get plain text with the URLs
//! written out and the quick replies as a list.

use crate::domain::Channel;
use kefu_template::{Piece, parse};

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
