//! Customer text as it may enter the domain: no control characters, one kind of line end.

/// Longest message text kept from a customer or an agent, in characters.
pub const MAX_TEXT_CHARS: usize = 2000;

/// `raw` without control characters and terminal escape sequences: newlines and tabs are
/// kept, CRLF and a bare CR become LF, and `ESC [ … final`, `ESC ] … BEL/ST` and the other
/// escape sequences go whole, so no stored text can rewrite a terminal, a log line or a
/// console view. Surrounding whitespace is trimmed.
pub fn clean_text(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' | '\t' => out.push(c),
            '\r' => {
                let _crlf = chars.next_if_eq(&'\n');
                out.push('\n');
            }
            '\u{1b}' => skip_escape(&mut chars),
            // C1 CSI: the one-character form of `ESC [`.
            '\u{9b}' => skip_csi(&mut chars),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.trim().to_owned()
}

/// [`clean_text`] cut at [`MAX_TEXT_CHARS`] characters (a customer cannot fix what a
/// platform delivered, so nothing is refused for length).
pub fn clean_text_truncated(raw: &str) -> String {
    let text = clean_text(raw);
    match text.char_indices().nth(MAX_TEXT_CHARS) {
        Some((end, _)) => text[..end].trim_end().to_owned(),
        None => text,
    }
}

type Chars<'a> = std::iter::Peekable<std::str::Chars<'a>>;

/// After `ESC`: the rest of the sequence.
fn skip_escape(chars: &mut Chars<'_>) {
    match chars.next() {
        Some('[') => skip_csi(chars),
        // OSC, DCS, SOS, PM, APC: up to BEL or ST (`ESC \`).
        Some(']' | 'P' | 'X' | '^' | '_') => {
            while let Some(c) = chars.next() {
                if c == '\u{7}' || (c == '\u{1b}' && chars.next_if_eq(&'\\').is_some()) {
                    break;
                }
            }
        }
        // Two-character sequences (`ESC c`, `ESC 7`, …); a charset designation takes one
        // more (`ESC ( B`).
        Some('(' | ')' | '*' | '+' | '-' | '.' | '/' | '#' | '%' | ' ') => {
            chars.next();
        }
        _ => {}
    }
}

/// A CSI sequence's parameters and intermediates (` `–`?`) and its final byte (`@`–`~`).
/// Anything else ends a cut sequence and is kept.
fn skip_csi(chars: &mut Chars<'_>) {
    while let Some(&c) = chars.peek() {
        if ('\u{20}'..='\u{3f}').contains(&c) {
            chars.next();
            continue;
        }
        if ('\u{40}'..='\u{7e}').contains(&c) {
            chars.next();
        }
        break;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_texts_with_controls_when_cleaned_then_only_printable_text_newlines_and_tabs_remain() {
        let cases = [
            ("plain 你好", "plain 你好"),
            ("a\u{0}b", "ab"),
            ("\u{1b}[31mred\u{1b}[0m", "red"),
            ("\u{1b}]0;title\u{7}after", "after"),
            ("\u{1b}]8;;http://x\u{1b}\\link", "link"),
            ("one\r\ntwo\rthree\nfour", "one\ntwo\nthree\nfour"),
            ("tab\there", "tab\there"),
            ("\u{9b}2Jcleared", "cleared"),
            ("del\u{7f}ete\u{85}", "delete"),
            ("\u{1b}(Bcharset", "charset"),
            ("  \r\n padded \t ", "padded"),
        ];
        for (raw, clean) in cases {
            assert_eq!(clean_text(raw), clean, "{raw:?}");
        }
    }

    #[test]
    fn given_a_long_text_when_truncated_then_at_most_the_limit() {
        let long = "长".repeat(MAX_TEXT_CHARS + 5);
        assert_eq!(clean_text_truncated(&long).chars().count(), MAX_TEXT_CHARS);
        assert_eq!(clean_text_truncated("短"), "短");
    }
}
