//! Tracing setup and masking helpers for logs.
//!
//! Logs never carry message texts or tokens, and personal data only masked: log
//! `mask_phone(number)`, not the number.

use tracing_subscriber::EnvFilter;

/// Installs the global tracing subscriber. `filter` is an `EnvFilter` directive string
/// (`KEFU_LOG`, e.g. `info` or `kefu=debug,info`); an invalid one falls back to `info`.
/// `json` selects one JSON object per line without colours (Lambda / CloudWatch);
/// otherwise a human-readable format. Calling it again is a no-op.
pub fn init(filter: &str, json: bool) {
    let (env_filter, bad_filter) = parse_filter(filter);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_target(true);
    let installed = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_ansi(false)
            .try_init()
    } else {
        builder.compact().try_init()
    };
    if installed.is_ok()
        && let Some(reason) = bad_filter
    {
        tracing::warn!(%reason, "invalid log filter; using `info`");
    }
}

/// The filter for `directives`, or `info` and the reason it was refused.
fn parse_filter(directives: &str) -> (EnvFilter, Option<String>) {
    match EnvFilter::try_new(directives) {
        Ok(filter) => (filter, None),
        Err(e) => (EnvFilter::new("info"), Some(e.to_string())),
    }
}

/// `+8613812345678` → `+86*******5678`: keeps the first three and the last four
/// characters. Shorter values are masked entirely.
pub fn mask_phone(phone: &str) -> String {
    let chars: Vec<char> = phone.chars().collect();
    if chars.len() < 8 {
        return "*".repeat(chars.len());
    }
    let hidden = chars.len() - 7;
    let mut out: String = chars[..3].iter().collect();
    out.push_str(&"*".repeat(hidden));
    out.extend(&chars[chars.len() - 4..]);
    out
}

/// `lilei@example.com` → `l***@example.com`: the first character of the local part and
/// the domain. Without an `@`, everything is masked.
pub fn mask_email(email: &str) -> String {
    match email.rsplit_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

/// A token reduced to its first six characters and its length, enough to tell two
/// tokens apart in a log without being usable.
pub fn mask_token(token: &str) -> String {
    let head: String = token.chars().take(6).collect();
    format!("{head}…({} chars)", token.chars().count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_phone_numbers_when_masked_then_only_prefix_and_last_four_remain() {
        assert_eq!(mask_phone("+8613812345678"), "+86*******5678");
        assert_eq!(mask_phone("+14155550123"), "+14*****0123");
        assert_eq!(mask_phone("12345"), "*****");
        assert_eq!(mask_phone("+8613812345678").len(), "+8613812345678".len());
    }

    #[test]
    fn given_emails_when_masked_then_local_part_is_hidden() {
        assert_eq!(mask_email("lilei@example.com"), "l***@example.com");
        assert_eq!(mask_email("@example.com"), "***@example.com");
        assert_eq!(mask_email("not-an-email"), "***");
    }

    #[test]
    fn given_a_token_when_masked_then_it_cannot_be_reused() {
        let token = "eyJraW5kIjoiYWdlbnQifQ.c2lnbmF0dXJl";
        let masked = mask_token(token);
        assert_eq!(masked, "eyJraW…(35 chars)");
        assert!(!masked.contains("c2lnbmF0dXJl"));
    }

    #[test]
    fn given_filters_when_parsed_then_invalid_ones_fall_back_to_info() {
        let (filter, reason) = parse_filter("kefu=debug,info");
        assert_eq!(reason, None);
        assert_eq!(filter.to_string(), "kefu=debug,info");
        let (filter, reason) = parse_filter("kefu=[[[");
        assert!(reason.is_some());
        assert_eq!(filter.to_string(), "info");
    }
}
