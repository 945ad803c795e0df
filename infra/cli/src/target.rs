//! `--target-wrong-rate`, shared by the commands that calibrate an index.

use anyhow::Context;
use kefu_bot::calibrate::{DEFAULT_TARGET_WRONG_RATE, TargetWrongRate};

/// The environment variable the flag defaults to, as the faq-indexer and the local runner
/// read it.
pub const TARGET_WRONG_RATE_ENV: &str = "KEFU_FAQ_TARGET_WRONG_RATE";

/// `--target-wrong-rate`.
#[derive(clap::Args, Debug)]
pub struct TargetArgs {
    /// Share of all questions the bot may answer wrongly (a wrong entry, or an answer to a
    /// question no entry answers); the "don't know" threshold is the lowest confidence
    /// expected to stay within it. Between 0 and 1 (default: KEFU_FAQ_TARGET_WRONG_RATE,
    /// else 0.05).
    #[arg(long, value_name = "SHARE")]
    pub target_wrong_rate: Option<TargetWrongRate>,
}

impl TargetArgs {
    /// The flag, else `KEFU_FAQ_TARGET_WRONG_RATE`, else the default.
    pub fn resolve(&self) -> anyhow::Result<TargetWrongRate> {
        Self::pick(
            self.target_wrong_rate,
            kefu::config::optional(TARGET_WRONG_RATE_ENV),
        )
    }

    fn pick(flag: Option<TargetWrongRate>, env: Option<String>) -> anyhow::Result<TargetWrongRate> {
        match (flag, env) {
            (Some(rate), _) => Ok(rate),
            (None, Some(text)) => text
                .parse()
                .with_context(|| format!("environment variable {TARGET_WRONG_RATE_ENV}")),
            (None, None) => Ok(TargetWrongRate::new(DEFAULT_TARGET_WRONG_RATE)?),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_flag_and_environment_when_resolved_then_flag_wins_then_environment_then_default() {
        let rate = |share| TargetWrongRate::new(share).expect("valid");
        let env = || Some("0.1".to_owned());
        assert_eq!(
            TargetArgs::pick(Some(rate(0.02)), env()).ok(),
            Some(rate(0.02))
        );
        assert_eq!(TargetArgs::pick(None, env()).ok(), Some(rate(0.1)));
        assert_eq!(
            TargetArgs::pick(None, None).ok(),
            Some(TargetWrongRate::default())
        );
        for bad in ["5%", "0", "1", "-0.1", "NaN", ""] {
            let error = TargetArgs::pick(None, Some(bad.to_owned())).expect_err(bad);
            assert!(
                format!("{error:#}").contains(TARGET_WRONG_RATE_ENV),
                "{bad}: {error:#}"
            );
        }
    }
}
