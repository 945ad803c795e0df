//! Phone numbers in E.164 (`+8613800138000`): the one form used as the customer's SMS
//! address, so `13800138000`, `+86 138-0013-8000` and `008613800138000` are one customer.

use crate::{Error, Result};
use std::fmt;

/// Most digits an E.164 number has (country code included).
const MAX_DIGITS: usize = 15;
/// Fewest digits accepted: shorter strings are short codes or typos, not customers.
const MIN_DIGITS: usize = 8;

/// A phone number in E.164 form. Parse one with [`PhoneNumber::parse`].
///
/// `Debug` and `Display` show the masked number ([`mask`]), so a number that reaches a log
/// by accident is still not disclosed; [`PhoneNumber::as_str`] gives the full number.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Normalises `raw` to E.164. Accepted: `+<digits>`, `00<digits>` (international
    /// prefix) and national numbers, which get `default_country` (digits, e.g. `86`) in
    /// front after dropping one trunk `0`. Spaces, dashes, dots and parentheses are ignored.
    pub fn parse(raw: &str, default_country: &str) -> Result<Self> {
        let compact: String = raw
            .trim()
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')' | '\u{a0}'))
            .collect();
        if compact.is_empty() {
            return Err(Error::Invalid("phone number is empty".into()));
        }
        let digits = if let Some(rest) = compact.strip_prefix('+') {
            rest.to_owned()
        } else if let Some(rest) = compact.strip_prefix("00") {
            rest.to_owned()
        } else {
            check_country(default_country)?;
            let national = compact.strip_prefix('0').unwrap_or(&compact);
            format!("{default_country}{national}")
        };
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::Invalid(
                "phone number may contain only digits after an optional + or 00".into(),
            ));
        }
        if digits.starts_with('0') {
            return Err(Error::Invalid(
                "phone number has no country code (a country code never starts with 0)".into(),
            ));
        }
        if !(MIN_DIGITS..=MAX_DIGITS).contains(&digits.len()) {
            return Err(Error::Invalid(format!(
                "phone number has {} digits; E.164 numbers have {MIN_DIGITS} to {MAX_DIGITS}",
                digits.len()
            )));
        }
        Ok(Self(format!("+{digits}")))
    }

    /// The number in E.164, e.g. `+8613800138000`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number for logs, e.g. `+86138****8000`.
    pub fn masked(&self) -> String {
        mask(&self.0)
    }
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneNumber({})", self.masked())
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

/// A country calling code: one to three digits, not starting with 0.
fn check_country(code: &str) -> Result<()> {
    let valid = (1..=3).contains(&code.len())
        && code.bytes().all(|b| b.is_ascii_digit())
        && !code.starts_with('0');
    if valid {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "default country code {code:?} must be 1 to 3 digits (e.g. 86)"
        )))
    }
}

/// Masks a phone number for logs: the last four digits stay, four or more before them
/// become `*`, and at most `digits - 8` leading digits (country and network) stay:
/// `+8613800138000` → `+86138****8000`, `+14158675309` → `+141****5309`.
pub fn mask(number: &str) -> String {
    let (plus, digits) = match number.strip_prefix('+') {
        Some(rest) => ("+", rest),
        None => ("", number),
    };
    let chars: Vec<char> = digits.chars().collect();
    let len = chars.len();
    let tail = if len >= 8 { 4 } else { len / 2 };
    let head = len.saturating_sub(8);
    let hidden = len - head - tail;
    let mut out = String::with_capacity(number.len());
    out.push_str(plus);
    out.extend(&chars[..head]);
    out.extend(std::iter::repeat_n('*', hidden));
    out.extend(&chars[len - tail..]);
    out
}

/// Masks every run of seven or more digits (with an optional `+`) in `text`: platform
/// error messages sometimes quote the recipient, and they end up in logs and delivery
/// states.
pub fn scrub(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        let digits = run.trim_start_matches('+').len();
        if digits >= 7 {
            out.push_str(&mask(run));
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_digit() || (c == '+' && run.is_empty()) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e164(raw: &str) -> String {
        PhoneNumber::parse(raw, "86").unwrap().as_str().to_owned()
    }

    #[test]
    fn given_the_same_number_in_many_forms_when_parsed_then_one_e164() {
        for raw in [
            "+8613800138000",
            "008613800138000",
            "13800138000",
            "138 0013 8000",
            "+86 138-0013-8000",
            "(+86) 138.0013.8000",
            " 013800138000 ",
        ] {
            assert_eq!(e164(raw), "+8613800138000", "{raw}");
        }
        assert_eq!(
            PhoneNumber::parse("415 867 5309", "1").unwrap().as_str(),
            "+14158675309"
        );
    }

    #[test]
    fn given_malformed_numbers_when_parsed_then_clear_errors() {
        let reason = |raw: &str, country: &str| match PhoneNumber::parse(raw, country) {
            Err(Error::Invalid(reason)) => reason,
            other => panic!("{raw}: expected Invalid, got {other:?}"),
        };
        assert!(reason("", "86").contains("empty"));
        assert!(reason("+86 138x0013", "86").contains("only digits"));
        assert!(reason("+0123456789", "86").contains("country code"));
        assert!(reason("+861234", "86").contains("8 to 15"));
        assert!(reason("+8613800138000123", "86").contains("8 to 15"));
        assert!(reason("13800138000", "0086").contains("default country code"));
        assert!(reason("TWILIO", "86").contains("only digits"));
    }

    #[test]
    fn given_numbers_when_masked_then_only_the_ends_show() {
        assert_eq!(mask("+8613800138000"), "+86138****8000");
        assert_eq!(mask("+14158675309"), "+141****5309");
        assert_eq!(mask("+12345678"), "+****5678");
        assert_eq!(mask("12345"), "***45");
        let number = PhoneNumber::parse("13800138000", "86").unwrap();
        assert_eq!(format!("{number}"), "+86138****8000");
        assert!(!format!("{number:?}").contains("0013"));
    }

    #[test]
    fn given_text_quoting_a_number_when_scrubbed_then_the_number_is_masked() {
        assert_eq!(
            scrub("The 'To' number +8613800138000 is not valid (code 21211)"),
            "The 'To' number +86138****8000 is not valid (code 21211)"
        );
        assert_eq!(scrub("no digits here"), "no digits here");
    }
}
