//! The bot's settings, read from the environment once at start (see the README's
//! configuration table).

use crate::handler::BotConfig;
use crate::hours::ServiceHours;
use crate::policy::EscalationPolicy;
use kefu::config::{flag, list, number, optional, or, seconds};
use kefu::{Error, Result};
use std::time::Duration;

/// The escalation policy from `KEFU_ESCALATE_*`, `KEFU_VIP_*` and `KEFU_PRIORITY_*`.
pub fn escalation_policy() -> Result<EscalationPolicy> {
    let d = EscalationPolicy::default();
    let policy = EscalationPolicy {
        negative_threshold: number("KEFU_ESCALATE_SENTIMENT", d.negative_threshold)?,
        no_answer_limit: number("KEFU_ESCALATE_AFTER_MISSES", d.no_answer_limit)?,
        escalate_complaints: flag("KEFU_ESCALATE_COMPLAINTS", d.escalate_complaints)?,
        vip_customers: list("KEFU_VIP_CUSTOMERS", &[]),
        vip_direct: flag("KEFU_VIP_DIRECT", d.vip_direct)?,
        vip_priority: number("KEFU_PRIORITY_VIP", d.vip_priority)?,
        complaint_priority: number("KEFU_PRIORITY_COMPLAINT", d.complaint_priority)?,
        negative_priority: number("KEFU_PRIORITY_NEGATIVE", d.negative_priority)?,
        default_priority: number("KEFU_PRIORITY_DEFAULT", d.default_priority)?,
    };
    policy.validate()?;
    Ok(policy)
}

/// `KEFU_SERVICE_HOURS` (see [`ServiceHours`] for the format; unset: around the clock). A
/// typo stops the start-up rather than telling customers no one is there.
pub fn service_hours() -> Result<ServiceHours> {
    let spec = optional("KEFU_SERVICE_HOURS").unwrap_or_default();
    ServiceHours::parse(&spec).map_err(|e| Error::Config(format!("KEFU_SERVICE_HOURS: {e}")))
}

/// `KEFU_FAQ_RELOAD_SECS`: how often the bot checks `faq/index/CURRENT` for a new version.
pub fn faq_reload_interval() -> Result<Duration> {
    seconds("KEFU_FAQ_RELOAD_SECS", 30)
}

/// What the bot says and where it hands off: `KEFU_DEFAULT_QUEUE` (default: the first of
/// `KEFU_QUEUES`, else `general`), `KEFU_SHOP_NAME`, `KEFU_SERVICE_HOURS`.
pub fn bot_config() -> Result<BotConfig> {
    let queues = list("KEFU_QUEUES", &["general"]);
    Ok(BotConfig {
        default_queue: or("KEFU_DEFAULT_QUEUE", &queues[0]),
        shop_name: optional("KEFU_SHOP_NAME"),
        service_hours: service_hours()?,
    })
}
