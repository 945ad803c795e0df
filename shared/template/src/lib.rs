//! kefu's answer templates: an answer is written once, with variables, links and quick
//! replies; the FAQ engine checks it when an FAQ is parsed, and `kefu::render` fills it in
//! and writes it for each channel. No dependencies.
//!
//! - Variables: `{{customer_name}}`, or with a fallback for when the value is unknown,
//!   `{{customer_name|亲}}`. The names are [`VARIABLES`].
//! - Links: `[label](https://…)` (http and https only).
//! - Quick replies: short follow-up questions the customer can send with one tap; they
//!   travel beside the text (`quick_replies` on the message).
#![warn(missing_docs)]

/// The variables an answer may use.
pub const VARIABLES: [&str; 2] = ["customer_name", "shop_name"];

/// Most quick replies one answer may offer (WeChat shows at most ten menu items).
pub const MAX_QUICK_REPLIES: usize = 10;

/// Longest quick reply, in characters: a button label, not a paragraph.
pub const MAX_QUICK_REPLY_CHARS: usize = 40;

/// One piece of an answer template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Text as written.
    Text(&'a str),
    /// `{{name|fallback}}` (the fallback is empty when none is given).
    Variable {
        /// One of [`VARIABLES`].
        name: &'a str,
        /// Shown when the value is unknown.
        fallback: &'a str,
    },
    /// `[label](url)`.
    Link {
        /// What the customer reads.
        label: &'a str,
        /// An http(s) URL.
        url: &'a str,
    },
}

/// Splits a template into pieces; `Err` names the first problem, in words an FAQ author
/// understands.
pub fn parse(template: &str) -> Result<Vec<Piece<'_>>, String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn replies(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
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
}
