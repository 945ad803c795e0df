//! What the customer wrote in a reply, without what their mail client appended.

/// How many following lines an attribution ("On … wrote:") or a forwarded-header block
/// ("From: … Sent: …") may span: clients wrap long attributions over two or three lines.
const ATTRIBUTION_LINES: usize = 3;

/// The new text of a reply: the body up to the quoted history or signature.
///
/// Cut at the first of: an attribution line (`On … wrote:`, `在 … 写道：`), a separator
/// (`-----Original Message-----`, `-------- 原始邮件 --------`), an Outlook header block
/// (`From:`/`发件人:` followed by `Sent:`/`发送时间:` or `Date:`), or the `-- ` signature
/// delimiter. Lines quoted with `>` are dropped wherever they are (inline replies keep the
/// customer's lines between quotes). Trailing blank lines are trimmed; what remains is the
/// customer's text unchanged. Empty when the mail holds nothing but quotes.
pub fn new_text(body: &str) -> String {
    let lines: Vec<&str> = body.lines().collect();
    let end = (0..lines.len())
        .find(|&at| starts_history(&lines[at..]))
        .unwrap_or(lines.len());
    let kept: Vec<&str> = lines[..end]
        .iter()
        .copied()
        .filter(|line| !line.trim_start().starts_with('>'))
        .collect();
    let first = kept.iter().position(|line| !is_blank(line));
    let last = kept.iter().rposition(|line| !is_blank(line));
    match (first, last) {
        (Some(first), Some(last)) => kept[first..=last].join("\n"),
        _ => String::new(),
    }
}

/// Whether the quoted history or the signature starts at the first of `lines`.
fn starts_history(lines: &[&str]) -> bool {
    let line = lines[0].trim_end();
    is_signature_delimiter(line)
        || is_separator(line.trim())
        || is_attribution(lines)
        || is_header_block(lines)
}

/// `-- ` (RFC 3676), also without its trailing space, which many clients strip.
fn is_signature_delimiter(line: &str) -> bool {
    line == "--"
}

/// `-----Original Message-----`, `-------- 原始邮件 --------`, Outlook's `____…` rule.
fn is_separator(line: &str) -> bool {
    let inner = line.trim_matches(['-', ' ']);
    let dashed = line.starts_with("---") && line.ends_with("---");
    (dashed && (inner.eq_ignore_ascii_case("original message") || inner.contains("原始邮件")))
        || (line.len() >= 20 && line.chars().all(|c| c == '_'))
}

/// `On <date>, <name> wrote:` or `在 <date>，<name> 写道：`, possibly wrapped.
fn is_attribution(lines: &[&str]) -> bool {
    let first = lines[0].trim_start();
    let opens = first.starts_with("On ") || first.starts_with('在');
    if !opens {
        return false;
    }
    let mut joined = String::new();
    for line in lines.iter().take(ATTRIBUTION_LINES) {
        if !joined.is_empty() && line.trim().is_empty() {
            break;
        }
        joined.push_str(line.trim());
        joined.push(' ');
        let text = joined.trim_end();
        if text.ends_with("wrote:") || text.ends_with("写道：") || text.ends_with("写道:") {
            return true;
        }
    }
    false
}

/// A forwarded-header block: `From:` then, within a few lines, `Sent:` or `Date:`.
fn is_header_block(lines: &[&str]) -> bool {
    const FROM: &[&str] = &["From:", "发件人:", "发件人："];
    const SENT: &[&str] = &[
        "Sent:",
        "Date:",
        "发送时间:",
        "发送时间：",
        "日期:",
        "日期：",
    ];
    let starts = |line: &str, names: &[&str]| {
        let line = line.trim_start().trim_start_matches('*');
        names.iter().any(|name| line.starts_with(name))
    };
    starts(lines[0], FROM)
        && lines
            .iter()
            .skip(1)
            .take(ATTRIBUTION_LINES)
            .any(|line| starts(line, SENT))
}

fn is_blank(line: &str) -> bool {
    line.trim().is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_gmail_reply_with_wrapped_attribution_when_cut_then_only_new_text_is_left() {
        let body = "Where is my parcel?\n\nOn Mon, Jan 6, 2025 at 6:02 PM Shop <support@\n\
                    shop.example> wrote:\n> It has shipped.\n";
        assert_eq!(new_text(body), "Where is my parcel?");
    }

    #[test]
    fn given_a_chinese_attribution_when_cut_then_the_history_is_gone() {
        let body = "好的，谢谢\r\n\r\n在 2025年1月6日周一 18:02，客服 <support@shop.example> 写道：\r\n\
                    > 已发货\r\n";
        assert_eq!(new_text(body), "好的，谢谢");
    }

    #[test]
    fn given_original_message_separators_when_cut_then_what_follows_is_gone() {
        let english = "Yes please.\n-----Original Message-----\nFrom: Shop\nWe can refund.";
        let chinese = "可以\n\n------------------ 原始邮件 ------------------\n发件人: 客服";
        assert_eq!(new_text(english), "Yes please.");
        assert_eq!(new_text(chinese), "可以");
    }

    #[test]
    fn given_an_outlook_header_block_when_cut_then_the_rule_and_block_are_gone() {
        let body = "Thanks!\n\n________________________________\nFrom: Shop Support \
                    <support@shop.example>\nSent: Tuesday, January 7, 2025 4:10 PM\n\
                    To: Mei\nSubject: Quote\n\nOld text";
        assert_eq!(new_text(body), "Thanks!");
        let bare = "Thanks!\nFrom: Shop\nSent: Tuesday\nOld text";
        assert_eq!(new_text(bare), "Thanks!");
    }

    #[test]
    fn given_a_from_line_that_starts_no_header_block_when_cut_then_it_is_kept() {
        let body = "From: my office I can't reach the site.\nIt times out.";
        assert_eq!(new_text(body), body);
    }

    #[test]
    fn given_a_signature_delimiter_when_cut_then_the_signature_is_gone() {
        assert_eq!(new_text("Hi\n-- \nLi Wei\n+86 138"), "Hi");
        assert_eq!(new_text("Hi\n--\nLi Wei"), "Hi");
    }

    #[test]
    fn given_an_inline_reply_when_cut_then_the_customers_lines_between_quotes_stay() {
        let body = "> Which colour?\nBlue.\n> Which size?\nM, please.\n\n\n";
        assert_eq!(new_text(body), "Blue.\nM, please.");
    }

    #[test]
    fn given_text_without_history_when_cut_then_it_is_unchanged() {
        let body = "First line\n\n  indented second --not a signature\nOn sale?";
        assert_eq!(new_text(body), body);
    }

    #[test]
    fn given_nothing_but_quotes_when_cut_then_the_result_is_empty() {
        assert_eq!(new_text("> old\n>\n> older\n"), "");
    }
}
