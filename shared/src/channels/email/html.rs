//! HTML bodies reduced to plain text, for mail that has no `text/plain` alternative.
//!
//! Not a browser: it keeps the words and the line structure a reader sees (block elements
//! and `<br>` become line breaks), drops what is never shown (scripts, styles, the head,
//! comments) and decodes character references. `mail-parser` has a reducer of its own, but
//! it joins `<div>` and `<li>` lines, and web-mail clients wrap every line in a `<div>`.

/// Elements whose content is not text a reader sees.
const HIDDEN: &[&str] = &["script", "style", "head", "title", "template"];

/// Elements that start and end a line.
const BLOCKS: &[&str] = &[
    "p",
    "div",
    "li",
    "ul",
    "ol",
    "tr",
    "table",
    "blockquote",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "pre",
    "hr",
];

/// The text of an HTML document: one line per block or `<br>`, runs of blank lines
/// collapsed to one.
pub(super) fn to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        push_text(&mut out, &rest[..open]);
        rest = &rest[open..];
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.find("-->").map_or("", |end| &after[end + 3..]);
            continue;
        }
        let Some(close) = rest.find('>') else {
            // A lone '<' is text, not a tag.
            push_text(&mut out, rest);
            rest = "";
            break;
        };
        let tag = Tag::read(&rest[1..close]);
        rest = &rest[close + 1..];
        if tag.name == "br" {
            out.push('\n');
        } else if BLOCKS.contains(&tag.name.as_str()) {
            // A block edge ends the line, but nested edges (`</li></ul></div>`) do not
            // stack up into blank lines; only `<br>` makes those.
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
        } else if !tag.closing && HIDDEN.contains(&tag.name.as_str()) {
            rest = skip_past_end_tag(rest, &tag.name);
        }
    }
    push_text(&mut out, rest);
    tidy_lines(&out)
}

/// The name of a tag (`<DIV class=x>` → `div`) and whether it closes an element.
struct Tag {
    name: String,
    closing: bool,
}

impl Tag {
    fn read(inside: &str) -> Self {
        let inside = inside.trim_start();
        let (closing, inside) = match inside.strip_prefix('/') {
            Some(rest) => (true, rest),
            None => (false, inside),
        };
        let name = inside
            .split(|c: char| c.is_whitespace() || c == '/')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        Self { name, closing }
    }
}

/// What follows `</name>` (case-insensitive), or nothing when the element never ends.
/// Compares only the bytes after each `</`, so the whole document is read once however
/// many hidden elements it holds.
fn skip_past_end_tag<'a>(rest: &'a str, name: &str) -> &'a str {
    let mut from = 0;
    while let Some(at) = rest[from..].find("</") {
        // `</` is ASCII: `name_at` is a character boundary.
        let name_at = from + at + 2;
        let candidate = rest.as_bytes().get(name_at..name_at + name.len());
        if candidate.is_some_and(|bytes| bytes.eq_ignore_ascii_case(name.as_bytes())) {
            return rest[name_at..]
                .find('>')
                .map_or("", |end| &rest[name_at + end + 1..]);
        }
        from = name_at;
    }
    ""
}

/// Appends text between tags: whitespace runs collapse to one space (as a browser renders
/// them), character references are decoded.
fn push_text(out: &mut String, text: &str) {
    let decoded = decode_entities(text);
    for ch in decoded.chars() {
        if ch.is_whitespace() && ch != '\u{a0}' {
            if !out.ends_with([' ', '\n']) && !out.is_empty() {
                out.push(' ');
            }
        } else {
            out.push(if ch == '\u{a0}' { ' ' } else { ch });
        }
    }
}

/// The longest character reference decoded, `&` to `;` exclusive (`&#x10FFFF`).
const MAX_REFERENCE: usize = 10;

/// Decodes `&amp;`-style named references (the common ones) and numeric references;
/// anything else is left as written.
fn decode_entities(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains('&') {
        return text.into();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        // A reference is short: look for its `;` only nearby, not through the rest of
        // the text (which made text full of bare `&` quadratic).
        let decoded = rest
            .bytes()
            .take(MAX_REFERENCE + 1)
            .position(|b| b == b';')
            .and_then(|end| Some((entity(&rest[1..end])?, end)));
        match decoded {
            Some((ch, end)) => {
                out.push(ch);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out.into()
}

/// The character a reference names (`amp`, `#39`, `#x4e2d`).
fn entity(name: &str) -> Option<char> {
    if let Some(number) = name.strip_prefix('#') {
        let code = match number.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => number.parse().ok()?,
        };
        return char::from_u32(code);
    }
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => '\u{a0}',
        "copy" => '©',
        "reg" => '®',
        "yen" => '¥',
        "euro" => '€',
        "middot" => '·',
        "hellip" => '…',
        "mdash" => '—',
        "ndash" => '–',
        "lsquo" => '‘',
        "rsquo" => '’',
        "ldquo" => '“',
        "rdquo" => '”',
        _ => return None,
    })
}

/// Trims each line and keeps at most one blank line in a row.
fn tidy_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank_run = 0;
    for line in text.lines().map(str::trim) {
        if line.is_empty() {
            blank_run += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank_run > 0 { "\n\n" } else { "\n" });
        }
        blank_run = 0;
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_blocks_and_breaks_when_reduced_then_each_becomes_its_own_line() {
        let html = "<div>第一行</div><div>second<br>third</div><ul><li>a</li><li>b</li></ul>";
        assert_eq!(to_text(html), "第一行\nsecond\nthird\na\nb");
    }

    #[test]
    fn given_scripts_styles_and_comments_when_reduced_then_their_content_is_dropped() {
        let html = "<html><head><title>T</title><style>p{color:red}</style></head>\
                    <body><SCRIPT type=x>alert(1)</SCRIPT><!-- hidden --><p>shown</p></body></html>";
        assert_eq!(to_text(html), "shown");
    }

    #[test]
    fn given_mixed_case_and_lookalike_end_tags_when_reduced_then_hidden_content_ends_at_its_own_end_tag()
     {
        let html =
            "<STYLE>a</st b</b></StYlE >one <script>x</scrip</SCRIPT> two<style>never closed";
        assert_eq!(to_text(html), "one two");
    }

    #[test]
    fn given_ampersands_without_semicolons_when_reduced_then_they_are_kept_as_written() {
        let html = format!("<p>{}&amp;</p>", "R&D ".repeat(1000));
        assert_eq!(to_text(&html), format!("{}&", "R&D ".repeat(1000)));
    }

    #[test]
    fn given_entities_when_reduced_then_they_are_decoded_and_unknown_ones_kept() {
        let html = "<p>Tom &amp; Jerry&nbsp;&lt;3 &#20013;&#x6587; &bogus; AT&T</p>";
        assert_eq!(to_text(html), "Tom & Jerry <3 中文 &bogus; AT&T");
    }

    #[test]
    fn given_source_line_breaks_inside_a_paragraph_when_reduced_then_they_are_spaces() {
        let html = "<p>one\n   two</p>\n\n\n<p>three</p>";
        assert_eq!(to_text(html), "one two\nthree");
    }

    #[test]
    fn given_gmail_blank_line_divs_when_reduced_then_one_blank_line_remains() {
        let html = "<div>Hi,</div><div><br></div><div><br></div><div>Thanks</div>";
        assert_eq!(to_text(html), "Hi,\n\nThanks");
    }
}
