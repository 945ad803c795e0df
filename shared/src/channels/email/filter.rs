//! Mail that must not reach the bot or an agent, and why.
//!
//! Answering a machine starts a loop (our reply triggers its auto-reply, which triggers our
//! reply …), and a bounce is about our mail, not from a customer; spam and viruses are
//! what SES's receipt verdicts flag. A mail whose sender fails authentication may come
//! from anyone ([`unauthenticated`]).

use super::ParsedMail;

/// Subject openings of auto-replies whose senders set no header (lowercased).
const AUTO_REPLY_SUBJECTS: &[&str] = &[
    "auto:",
    "automatic reply:",
    "auto-reply:",
    "autoreply:",
    "auto reply:",
    "out of office:",
    "out of office reply",
    "out of office autoreply",
    "自动回复:",
    "自动回复：",
    "自动答复:",
    "自动答复：",
    "自動回覆:",
    "自動回覆：",
];

/// Local parts of senders that only ever send delivery reports.
const BOUNCE_SENDERS: &[&str] = &["mailer-daemon", "postmaster"];

/// Why `mail` should be dropped (counted, not answered), or `None` to keep it.
///
/// `spam` and `virus` are SES's receipt verdicts (`PASS`, `FAIL`, `GRAY`,
/// `PROCESSING_FAILED`); only `FAIL` drops. Reasons: `"virus"`, `"spam"`, `"bounce"`
/// (mailer-daemon/postmaster sender, null `Return-Path`, delivery-status report),
/// `"auto_reply"` (`Auto-Submitted` other than `no`, `Precedence` bulk/junk/list,
/// `X-Autoreply`/`X-Autorespond`, or an auto-reply subject).
pub fn drop_reason(
    mail: &ParsedMail,
    spam: Option<&str>,
    virus: Option<&str>,
) -> Option<&'static str> {
    let failed = |verdict: Option<&str>| verdict.is_some_and(|v| v.eq_ignore_ascii_case("FAIL"));
    if failed(virus) {
        Some("virus")
    } else if failed(spam) {
        Some("spam")
    } else if is_bounce(mail) {
        Some("bounce")
    } else if is_auto_reply(mail) {
        Some("auto_reply")
    } else {
        None
    }
}

/// Whether SES's sender-authentication verdicts (`PASS`, `FAIL`, `GRAY`,
/// `PROCESSING_FAILED`) say the `From` address may be forged: the DMARC verdict is `FAIL`,
/// or there is no DMARC verdict (`GRAY`: the domain publishes no DMARC policy; absent;
/// `PROCESSING_FAILED`) and SPF and DKIM both `FAIL`. Such a mail must not be threaded
/// into that address's conversation nor answered.
pub fn unauthenticated(spf: Option<&str>, dkim: Option<&str>, dmarc: Option<&str>) -> bool {
    let is = |verdict: Option<&str>, status: &str| {
        verdict.is_some_and(|v| v.trim().eq_ignore_ascii_case(status))
    };
    is(dmarc, "FAIL") || (!is(dmarc, "PASS") && is(spf, "FAIL") && is(dkim, "FAIL"))
}

fn is_bounce(mail: &ParsedMail) -> bool {
    let local = mail
        .from
        .address
        .rsplit_once('@')
        .map_or(mail.from.address.as_str(), |(local, _)| local);
    BOUNCE_SENDERS.contains(&local)
        || mail.return_path.as_deref() == Some("")
        || mail.delivery_report
}

fn is_auto_reply(mail: &ParsedMail) -> bool {
    let auto_submitted = mail
        .auto_submitted
        .as_deref()
        // `Auto-Submitted: no; comment` is still "no" (RFC 3834 allows parameters).
        .is_some_and(|value| value.split(';').next().map(str::trim) != Some("no"));
    let bulk = mail
        .precedence
        .as_deref()
        .is_some_and(|value| matches!(value.trim(), "bulk" | "junk" | "list"));
    let subject = mail.subject.as_deref().is_some_and(|subject| {
        let subject = subject.trim_start().to_lowercase();
        AUTO_REPLY_SUBJECTS
            .iter()
            .any(|opening| subject.starts_with(opening))
    });
    auto_submitted || bulk || mail.autoreply_header || subject
}

#[cfg(test)]
mod tests {
    use super::super::Mailbox;
    use super::*;

    fn customer_mail() -> ParsedMail {
        ParsedMail {
            from: Mailbox {
                address: "li.wei@example.com".into(),
                name: None,
            },
            recipients: vec!["support@shop.example".into()],
            subject: Some("Where is my order?".into()),
            message_id: Some("a@example.com".into()),
            in_reply_to: None,
            references: Vec::new(),
            auto_submitted: None,
            precedence: None,
            autoreply_header: false,
            return_path: Some("li.wei@example.com".into()),
            delivery_report: false,
            text: "Hello".into(),
            attachments: Vec::new(),
        }
    }

    #[test]
    fn given_a_customer_mail_with_passing_verdicts_when_filtered_then_it_is_kept() {
        let mail = customer_mail();
        assert_eq!(drop_reason(&mail, Some("PASS"), Some("PASS")), None);
        assert_eq!(drop_reason(&mail, Some("GRAY"), None), None);
    }

    #[test]
    fn given_failed_verdicts_when_filtered_then_virus_wins_over_spam() {
        let mail = customer_mail();
        assert_eq!(drop_reason(&mail, Some("FAIL"), Some("PASS")), Some("spam"));
        assert_eq!(
            drop_reason(&mail, Some("FAIL"), Some("FAIL")),
            Some("virus")
        );
    }

    #[test]
    fn given_authentication_verdicts_when_judged_then_dmarc_decides_else_spf_and_dkim_both_failing()
    {
        let (pass, fail, gray, broken) = (
            Some("PASS"),
            Some("FAIL"),
            Some("GRAY"),
            Some("PROCESSING_FAILED"),
        );
        // (spf, dkim, dmarc, unauthenticated)
        for (spf, dkim, dmarc, expected) in [
            (pass, pass, pass, false),
            (fail, fail, pass, false),
            (pass, pass, fail, true),
            (None, None, Some("fail"), true),
            (fail, fail, gray, true),
            (fail, fail, None, true),
            (fail, fail, broken, true),
            (fail, gray, gray, false),
            (gray, fail, None, false),
            (pass, fail, gray, false),
            (broken, broken, broken, false),
            (None, None, None, false),
        ] {
            assert_eq!(
                unauthenticated(spf, dkim, dmarc),
                expected,
                "SPF {spf:?}, DKIM {dkim:?}, DMARC {dmarc:?}"
            );
        }
    }

    #[test]
    fn given_auto_submitted_values_when_filtered_then_only_no_is_kept() {
        for (value, expected) in [
            ("auto-replied", Some("auto_reply")),
            ("auto-generated", Some("auto_reply")),
            ("no", None),
            ("no; comment", None),
        ] {
            let mut mail = customer_mail();
            mail.auto_submitted = Some(value.into());
            assert_eq!(drop_reason(&mail, None, None), expected, "{value}");
        }
    }

    #[test]
    fn given_bulk_precedence_or_autoreply_headers_when_filtered_then_auto_reply() {
        let mut bulk = customer_mail();
        bulk.precedence = Some("bulk".into());
        let mut legacy = customer_mail();
        legacy.autoreply_header = true;
        let mut first_class = customer_mail();
        first_class.precedence = Some("first-class".into());
        assert_eq!(drop_reason(&bulk, None, None), Some("auto_reply"));
        assert_eq!(drop_reason(&legacy, None, None), Some("auto_reply"));
        assert_eq!(drop_reason(&first_class, None, None), None);
    }

    #[test]
    fn given_auto_reply_subjects_when_filtered_then_dropped_but_lookalikes_kept() {
        for (subject, expected) in [
            ("Automatic reply: Order 12", Some("auto_reply")),
            ("Out of Office: Order 12", Some("auto_reply")),
            ("自动回复：您的订单已发货", Some("auto_reply")),
            ("Auto: shipped", Some("auto_reply")),
            ("Out of office hours delivery?", None),
            ("自动续费怎么取消", None),
        ] {
            let mut mail = customer_mail();
            mail.subject = Some(subject.into());
            assert_eq!(drop_reason(&mail, None, None), expected, "{subject}");
        }
    }

    #[test]
    fn given_bounce_markers_when_filtered_then_bounce() {
        let mut daemon = customer_mail();
        daemon.from.address = "mailer-daemon@mx.example.com".into();
        let mut postmaster = customer_mail();
        postmaster.from.address = "postmaster@example.com".into();
        let mut null_sender = customer_mail();
        null_sender.return_path = Some(String::new());
        let mut report = customer_mail();
        report.delivery_report = true;
        for mail in [daemon, postmaster, null_sender, report] {
            assert_eq!(drop_reason(&mail, None, None), Some("bounce"));
        }
    }
}
