//! When the bot hands a conversation to a person, why, and how urgently.
//!
//! The policy is plain configuration ([`EscalationPolicy`]; `main.rs` fills it from the
//! environment) and one pure decision, [`EscalationPolicy::decide`], so every threshold can
//! be tested and changed without touching the handler.
//!
//! # Precedence
//!
//! The first rule that fires gives the reason ([`reason`]); the reason picks the priority:
//!
//! 1. `customer_request`: the customer asked for a person ([`crate::wants_human`]) →
//!    `default_priority`.
//! 2. `complaint`: complaint intent ([`kefu::sentiment::is_complaint`]), when
//!    `escalate_complaints` → `complaint_priority`.
//! 3. `negative_sentiment`: the message's score is at or below `negative_threshold` →
//!    `negative_priority`.
//! 4. `no_answer`: the bot has now failed `no_answer_limit` messages in a row →
//!    `default_priority`.
//! 5. `vip`: none of the above, the customer is a VIP and `vip_direct` is set →
//!    `vip_priority`.
//!
//! A VIP's escalation for any reason gets at least `vip_priority`; the reason stays the one
//! that fired, so reports still say why.

use kefu::domain::{Customer, Escalation};
use kefu::sentiment::is_complaint;
use kefu::{Error, Result};

/// The reasons an escalation records (stored in [`Escalation::reason`]).
pub mod reason {
    /// The customer asked for a person.
    pub const CUSTOMER_REQUEST: &str = "customer_request";
    /// The customer complains or threatens to (投诉, 差评, chargeback, …).
    pub const COMPLAINT: &str = "complaint";
    /// The message is strongly negative.
    pub const NEGATIVE_SENTIMENT: &str = "negative_sentiment";
    /// The bot could not answer several messages in a row.
    pub const NO_ANSWER: &str = "no_answer";
    /// A VIP customer, escalated directly (`vip_direct`).
    pub const VIP: &str = "vip";
}

/// Highest priority an [`Escalation`] can carry.
pub const MAX_PRIORITY: u8 = 9;

/// The escalation rules and their thresholds. [`Default`] is the recommended setting;
/// adjust fields (they are public) and call [`EscalationPolicy::validate`] once at start-up.
#[derive(Debug, Clone, PartialEq)]
pub struct EscalationPolicy {
    /// Escalate when a message's sentiment is at or below this (−1.0 … 0.0; default −0.6,
    /// which one clearly angry word such as "垃圾" or "terrible" reaches). −1.0 disables.
    pub negative_threshold: f32,
    /// Escalate once the bot has failed this many consecutive messages (default 2; 0
    /// disables).
    pub no_answer_limit: u32,
    /// Escalate complaint intent (default true).
    pub escalate_complaints: bool,
    /// Customers treated as VIP: channel addresses (OpenID, E.164 phone, email, web session)
    /// or the shop's verified customer ids. Emails compare case-insensitively. Default empty.
    pub vip_customers: Vec<String>,
    /// Hand VIPs to a person at their first message, whatever they write (default false).
    pub vip_direct: bool,
    /// Minimum priority of any VIP escalation (default 8).
    pub vip_priority: u8,
    /// Priority of a complaint (default 7).
    pub complaint_priority: u8,
    /// Priority of a strongly negative message (default 6).
    pub negative_priority: u8,
    /// Priority of the other reasons (default 5).
    pub default_priority: u8,
}

impl Default for EscalationPolicy {
    fn default() -> Self {
        Self {
            negative_threshold: -0.6,
            no_answer_limit: 2,
            escalate_complaints: true,
            vip_customers: Vec::new(),
            vip_direct: false,
            vip_priority: 8,
            complaint_priority: 7,
            negative_priority: 6,
            default_priority: 5,
        }
    }
}

/// What [`EscalationPolicy::decide`] looks at for one customer message.
#[derive(Debug, Clone, Copy)]
pub struct PolicyInput<'a> {
    /// The message text (checked for complaint intent).
    pub text: &'a str,
    /// Its score from [`kefu::sentiment::score`].
    pub sentiment: f32,
    /// Whether it asks for a person ([`crate::wants_human`]).
    pub wants_human: bool,
    /// Consecutive messages the bot could not answer, counting this one (0 if it answered).
    pub consecutive_misses: u32,
    /// Who wrote it.
    pub customer: &'a Customer,
}

/// A decision to hand the conversation to a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EscalationDecision {
    /// One of the [`reason`] constants.
    pub reason: &'static str,
    /// 0 (lowest) … 9 (highest).
    pub priority: u8,
}

impl EscalationDecision {
    /// The [`Escalation`] to record on the conversation, in `queue`.
    pub fn into_escalation(self, queue: impl Into<String>) -> Escalation {
        Escalation {
            queue: queue.into(),
            priority: self.priority,
            reason: self.reason.to_owned(),
        }
    }
}

impl EscalationPolicy {
    /// Checks the thresholds are in range (a typo in the configuration must stop the
    /// start-up, not silently escalate everyone or no one).
    pub fn validate(&self) -> Result<()> {
        if !(-1.0..=0.0).contains(&self.negative_threshold) {
            return Err(Error::Invalid(format!(
                "negative sentiment threshold {} must be within -1.0 and 0.0",
                self.negative_threshold
            )));
        }
        let priorities = [
            ("VIP", self.vip_priority),
            ("complaint", self.complaint_priority),
            ("negative sentiment", self.negative_priority),
            ("default", self.default_priority),
        ];
        for (name, priority) in priorities {
            if priority > MAX_PRIORITY {
                return Err(Error::Invalid(format!(
                    "{name} priority {priority} must be at most {MAX_PRIORITY}"
                )));
            }
        }
        Ok(())
    }

    /// Whether `customer` is on the VIP list, by channel address or verified id.
    pub fn is_vip(&self, customer: &Customer) -> bool {
        let ids = std::iter::once(customer.address.as_str()).chain(customer.verified_id.as_deref());
        ids.filter(|id| !id.trim().is_empty())
            .any(|id| self.vip_customers.iter().any(|vip| same_customer(vip, id)))
    }

    /// Whether (and why, and how urgently) this message hands the conversation to a person.
    /// `None` lets the bot carry on. See the module docs for the precedence.
    pub fn decide(&self, input: PolicyInput<'_>) -> Option<EscalationDecision> {
        let vip = self.is_vip(input.customer);
        let (reason, priority) = if input.wants_human {
            (reason::CUSTOMER_REQUEST, self.default_priority)
        } else if self.escalate_complaints && is_complaint(input.text) {
            (reason::COMPLAINT, self.complaint_priority)
        } else if self.strongly_negative(input.sentiment) {
            (reason::NEGATIVE_SENTIMENT, self.negative_priority)
        } else if self.no_answer_limit > 0 && input.consecutive_misses >= self.no_answer_limit {
            (reason::NO_ANSWER, self.default_priority)
        } else if vip && self.vip_direct {
            (reason::VIP, self.vip_priority)
        } else {
            return None;
        };
        let priority = if vip {
            priority.max(self.vip_priority)
        } else {
            priority
        };
        Some(EscalationDecision {
            reason,
            priority: priority.min(MAX_PRIORITY),
        })
    }

    /// At or below the threshold; a threshold of −1.0 (or less) never fires, and neither
    /// does a score that is not a number.
    fn strongly_negative(&self, sentiment: f32) -> bool {
        self.negative_threshold > -1.0 && sentiment <= self.negative_threshold
    }
}

/// Addresses compare exactly (OpenIDs are case-sensitive), emails without regard to case.
fn same_customer(vip: &str, id: &str) -> bool {
    let (vip, id) = (vip.trim(), id.trim());
    if vip.contains('@') {
        vip.eq_ignore_ascii_case(id)
    } else {
        vip == id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wants_human;
    use kefu::sentiment;

    fn customer(address: &str) -> Customer {
        Customer {
            address: address.into(),
            ..Customer::default()
        }
    }

    /// The decision for `text` as the handler would compute it.
    fn decide_text(
        policy: &EscalationPolicy,
        text: &str,
        misses: u32,
        who: &Customer,
    ) -> Option<EscalationDecision> {
        policy.decide(PolicyInput {
            text,
            sentiment: sentiment::score(text),
            wants_human: wants_human(text),
            consecutive_misses: misses,
            customer: who,
        })
    }

    fn decision(reason: &'static str, priority: u8) -> Option<EscalationDecision> {
        Some(EscalationDecision { reason, priority })
    }

    #[test]
    fn given_default_policy_when_messages_arrive_then_reasons_follow_the_precedence() {
        let policy = EscalationPolicy::default();
        let anyone = customer("o-anyone");
        let cases: &[(&str, u32, Option<EscalationDecision>)] = &[
            ("转人工", 0, decision(reason::CUSTOMER_REQUEST, 5)),
            // An explicit request wins over a complaint and over anger.
            (
                "垃圾店！我要投诉，转人工",
                0,
                decision(reason::CUSTOMER_REQUEST, 5),
            ),
            (
                "I want a human, this is a scam",
                1,
                decision(reason::CUSTOMER_REQUEST, 5),
            ),
            // A complaint wins over anger and misses.
            ("你们太垃圾了，我要投诉", 3, decision(reason::COMPLAINT, 7)),
            ("投诉电话是多少", 0, decision(reason::COMPLAINT, 7)),
            ("I'll file a chargeback", 0, decision(reason::COMPLAINT, 7)),
            // Anger wins over misses.
            ("骗子！气死了", 5, decision(reason::NEGATIVE_SENTIMENT, 6)),
            (
                "this is the worst shop ever",
                0,
                decision(reason::NEGATIVE_SENTIMENT, 6),
            ),
            // Misses, at the limit.
            ("什么时候发货", 2, decision(reason::NO_ANSWER, 5)),
            ("where is my order", 3, decision(reason::NO_ANSWER, 5)),
            // Nothing fires.
            ("什么时候发货", 1, None),
            ("有点失望", 0, None),
            ("not good", 1, None),
            ("谢谢，非常满意", 0, None),
            ("我不想投诉，只想换个颜色", 0, None),
        ];
        for &(text, misses, expected) in cases {
            assert_eq!(
                decide_text(&policy, text, misses, &anyone),
                expected,
                "{text:?} after {misses} misses"
            );
        }
    }

    #[test]
    fn given_thresholds_when_sentiment_is_around_them_then_the_border_is_inclusive() {
        let policy = EscalationPolicy {
            negative_threshold: -0.5,
            ..EscalationPolicy::default()
        };
        let who = customer("o-1");
        let at = |sentiment| {
            policy.decide(PolicyInput {
                text: "",
                sentiment,
                wants_human: false,
                consecutive_misses: 0,
                customer: &who,
            })
        };
        assert_eq!(at(-0.5), decision(reason::NEGATIVE_SENTIMENT, 6));
        assert_eq!(at(-0.49), None);
        assert_eq!(at(f32::NAN), None);
        let off = EscalationPolicy {
            negative_threshold: -1.0,
            ..EscalationPolicy::default()
        };
        let input = PolicyInput {
            text: "",
            sentiment: -1.0,
            wants_human: false,
            consecutive_misses: 0,
            customer: &who,
        };
        assert_eq!(off.decide(input), None);
    }

    #[test]
    fn given_disabled_rules_when_they_would_fire_then_nothing_or_the_next_rule_fires() {
        let policy = EscalationPolicy {
            escalate_complaints: false,
            no_answer_limit: 0,
            ..EscalationPolicy::default()
        };
        let who = customer("o-1");
        assert_eq!(decide_text(&policy, "投诉电话是多少", 9, &who), None);
        // Without the complaint rule, an angry complaint still escalates on its anger.
        assert_eq!(
            decide_text(&policy, "垃圾！我要投诉", 0, &who),
            decision(reason::NEGATIVE_SENTIMENT, 6)
        );
        let patient = EscalationPolicy {
            no_answer_limit: 4,
            ..EscalationPolicy::default()
        };
        assert_eq!(decide_text(&patient, "发货", 3, &who), None);
        assert_eq!(
            decide_text(&patient, "发货", 4, &who),
            decision(reason::NO_ANSWER, 5)
        );
    }

    #[test]
    fn given_vip_customers_when_escalated_then_priority_is_raised_and_reason_kept() {
        let policy = EscalationPolicy {
            vip_customers: vec![
                "o-vip".into(),
                " Boss@Example.com ".into(),
                "shop-42".into(),
            ],
            ..EscalationPolicy::default()
        };
        let vip = customer("o-vip");
        let by_email = customer("boss@example.COM");
        let verified = Customer {
            address: "session-9".into(),
            verified_id: Some("shop-42".into()),
            ..Customer::default()
        };
        let other = customer("O-VIP");
        assert!(policy.is_vip(&vip) && policy.is_vip(&by_email) && policy.is_vip(&verified));
        assert!(!policy.is_vip(&other), "OpenIDs are case-sensitive");
        assert!(!policy.is_vip(&customer("")));

        assert_eq!(
            decide_text(&policy, "转人工", 0, &vip),
            decision(reason::CUSTOMER_REQUEST, 8)
        );
        assert_eq!(
            decide_text(&policy, "发货", 2, &verified),
            decision(reason::NO_ANSWER, 8)
        );
        // A reason already above the VIP priority keeps its own.
        let urgent = EscalationPolicy {
            complaint_priority: 9,
            ..policy.clone()
        };
        assert_eq!(
            decide_text(&urgent, "我要投诉", 0, &by_email),
            decision(reason::COMPLAINT, 9)
        );
        // Without vip_direct, a calm VIP stays with the bot.
        assert_eq!(decide_text(&policy, "你好", 0, &vip), None);
        assert_eq!(
            decide_text(&policy, "转人工", 0, &other),
            decision(reason::CUSTOMER_REQUEST, 5)
        );
    }

    #[test]
    fn given_vip_direct_when_a_vip_writes_anything_then_it_escalates_as_vip() {
        let policy = EscalationPolicy {
            vip_customers: vec!["+8613800000000".into()],
            vip_direct: true,
            ..EscalationPolicy::default()
        };
        let vip = customer("+8613800000000");
        assert_eq!(
            decide_text(&policy, "你好", 0, &vip),
            decision(reason::VIP, 8)
        );
        assert_eq!(
            decide_text(&policy, "我要投诉", 0, &vip),
            decision(reason::COMPLAINT, 8)
        );
        assert_eq!(
            decide_text(&policy, "你好", 0, &customer("+8613900000000")),
            None
        );
    }

    #[test]
    fn given_out_of_range_settings_when_validated_then_they_are_rejected() {
        assert!(EscalationPolicy::default().validate().is_ok());
        for bad in [
            EscalationPolicy {
                negative_threshold: 0.3,
                ..EscalationPolicy::default()
            },
            EscalationPolicy {
                negative_threshold: f32::NAN,
                ..EscalationPolicy::default()
            },
            EscalationPolicy {
                vip_priority: 10,
                ..EscalationPolicy::default()
            },
        ] {
            assert!(
                matches!(bad.validate(), Err(Error::Invalid(_))),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn given_a_decision_when_recorded_then_the_escalation_keeps_reason_and_priority() {
        let escalation = EscalationDecision {
            reason: reason::COMPLAINT,
            priority: 7,
        }
        .into_escalation("general");
        assert_eq!(
            escalation,
            Escalation {
                queue: "general".into(),
                priority: 7,
                reason: "complaint".into(),
            }
        );
    }
}
