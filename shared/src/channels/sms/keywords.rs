//! SMS keywords (STOP, START, HELP) and the central opt-out register they change.
//!
//! The register lives on the [`IdempotencyGuard`] port (DynamoDB in AWS, SQLite locally),
//! which only adds keys: so each change of a number's state is one more key,
//! `sms-optout:<conversation id>:<n>` holding `out` or `in`, and the current state is the
//! value of the highest `n`. Keys are derived from the conversation id, a digest of the
//! number, so no phone number is stored in a key. A number changes state rarely; after
//! [`MAX_CHANGES`] changes it stays opted out (a flood of STOP/START must not make every
//! send read more keys, and a STOP is always honoured).

use super::phone::PhoneNumber;
use crate::Result;
use crate::domain::{Channel, ConversationKey};
use crate::ports::IdempotencyGuard;
use std::sync::Arc;
use std::time::Duration;

/// A message that is a keyword rather than a question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyword {
    /// Stop sending to this number (STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, 退订, TD).
    Stop,
    /// Send to this number again (START, UNSTOP).
    Start,
    /// Send the help text (HELP, 帮助).
    Help,
}

impl Keyword {
    /// The keyword `text` is, if the whole message (trimmed, any case, trailing
    /// punctuation ignored) is one.
    pub fn parse(text: &str) -> Option<Self> {
        let word = text
            .trim()
            .trim_end_matches(|c: char| c.is_ascii_punctuation() || "。！？".contains(c))
            .trim()
            .to_uppercase();
        match word.as_str() {
            "STOP" | "STOPALL" | "UNSUBSCRIBE" | "CANCEL" | "END" | "QUIT" | "退订" | "TD" => {
                Some(Keyword::Stop)
            }
            "START" | "UNSTOP" => Some(Keyword::Start),
            "HELP" | "帮助" => Some(Keyword::Help),
            _ => None,
        }
    }
}

/// Sent once when a number opts out.
pub const STOP_CONFIRMATION: &str = "您已退订，将不再收到本号码的短信。回复 START 可重新订阅。You have been unsubscribed; reply START to resubscribe.";

/// Sent once when a number opts back in.
pub const START_CONFIRMATION: &str = "您已重新订阅本号码的短信，回复 STOP 可退订。You have been resubscribed; reply STOP to unsubscribe.";

/// Most state changes kept per number; see the module docs.
pub const MAX_CHANGES: usize = 32;

/// How long an opt-out is remembered: consent outlives any conversation.
const RETENTION: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

const OUT: &str = "out";
const IN: &str = "in";

/// The central register of numbers that opted out of SMS. Cheap to clone.
#[derive(Clone)]
pub struct OptOuts {
    guard: Arc<dyn IdempotencyGuard>,
}

impl std::fmt::Debug for OptOuts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OptOuts").finish_non_exhaustive()
    }
}

impl OptOuts {
    /// A register on `guard`.
    pub fn new(guard: Arc<dyn IdempotencyGuard>) -> Self {
        Self { guard }
    }

    /// Whether `number` opted out (and did not opt back in).
    pub async fn is_opted_out(&self, number: &PhoneNumber) -> Result<bool> {
        let (_, state) = self.latest(number).await?;
        Ok(state.as_deref() == Some(OUT))
    }

    /// Records that `number` opted out; `false` when it already had.
    pub async fn opt_out(&self, number: &PhoneNumber) -> Result<bool> {
        self.change(number, OUT).await
    }

    /// Records that `number` opted back in; `false` when it was not opted out.
    pub async fn opt_in(&self, number: &PhoneNumber) -> Result<bool> {
        self.change(number, IN).await
    }

    fn key(number: &PhoneNumber, n: usize) -> String {
        let conversation = ConversationKey::new(Channel::Sms, number.as_str()).conversation_id();
        format!("sms-optout:{conversation}:{n}")
    }

    /// The index of the next change and the current state (`None`: never changed).
    async fn latest(&self, number: &PhoneNumber) -> Result<(usize, Option<String>)> {
        let mut state = None;
        for n in 0..MAX_CHANGES {
            match self.guard.get(&Self::key(number, n)).await? {
                Some(value) => state = Some(value),
                None => return Ok((n, state)),
            }
        }
        Ok((MAX_CHANGES, state))
    }

    async fn change(&self, number: &PhoneNumber, to: &str) -> Result<bool> {
        let (mut next, mut state) = self.latest(number).await?;
        loop {
            let current = state.as_deref().unwrap_or(IN);
            if current == to {
                return Ok(false);
            }
            // The last index is kept for an opt-out, so a STOP is always honoured.
            if next >= MAX_CHANGES || (to == IN && next + 1 >= MAX_CHANGES) {
                tracing::warn!(number = %number, "opt-out state changed too often; kept as is");
                return Ok(false);
            }
            // Another request may take index `next` first: then its value is the state.
            match self
                .guard
                .put_if_absent(&Self::key(number, next), to, RETENTION)
                .await?
            {
                None => return Ok(true),
                Some(theirs) => {
                    state = Some(theirs);
                    next += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use std::collections::HashMap;
    use std::sync::Mutex;

    /// An in-memory guard (TTLs ignored): the contract tests cover the real adapters.
    #[derive(Default)]
    struct MemoryGuard(Mutex<HashMap<String, String>>);

    #[async_trait]
    impl IdempotencyGuard for MemoryGuard {
        async fn put_if_absent(
            &self,
            key: &str,
            value: &str,
            _: Duration,
        ) -> Result<Option<String>> {
            let mut map = self.0.lock().unwrap();
            if let Some(v) = map.get(key) {
                return Ok(Some(v.clone()));
            }
            map.insert(key.to_owned(), value.to_owned());
            Ok(None)
        }
        async fn get(&self, key: &str) -> Result<Option<String>> {
            Ok(self.0.lock().unwrap().get(key).cloned())
        }
    }

    fn number() -> PhoneNumber {
        PhoneNumber::parse("+8613800138000", "86").unwrap()
    }

    #[test]
    fn given_keyword_messages_when_parsed_then_whole_words_in_any_case() {
        for text in [
            "STOP",
            "stop",
            " Stop. ",
            "STOPALL",
            "unsubscribe",
            "cancel",
            "END",
            "quit",
            "退订",
            "td",
            "退订。",
        ] {
            assert_eq!(Keyword::parse(text), Some(Keyword::Stop), "{text}");
        }
        for text in ["START", "unstop"] {
            assert_eq!(Keyword::parse(text), Some(Keyword::Start), "{text}");
        }
        for text in ["help", "HELP?", "帮助"] {
            assert_eq!(Keyword::parse(text), Some(Keyword::Help), "{text}");
        }
        for text in [
            "please stop",
            "stop sending",
            "我要退订会员",
            "",
            "STOPP",
            "帮助我",
        ] {
            assert_eq!(Keyword::parse(text), None, "{text}");
        }
    }

    #[tokio::test]
    async fn given_stop_then_start_when_recorded_then_the_state_follows_and_repeats_change_nothing()
    {
        let guard = Arc::new(MemoryGuard::default());
        let opt_outs = OptOuts::new(guard.clone());
        let number = number();
        assert!(!opt_outs.is_opted_out(&number).await.unwrap());
        assert!(!opt_outs.opt_in(&number).await.unwrap());

        assert!(opt_outs.opt_out(&number).await.unwrap());
        assert!(!opt_outs.opt_out(&number).await.unwrap());
        assert!(opt_outs.is_opted_out(&number).await.unwrap());

        assert!(opt_outs.opt_in(&number).await.unwrap());
        assert!(!opt_outs.is_opted_out(&number).await.unwrap());
        assert!(opt_outs.opt_out(&number).await.unwrap());
        assert!(opt_outs.is_opted_out(&number).await.unwrap());

        let keys = guard.0.lock().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys.len(), 3);
        assert!(keys.iter().all(|k| !k.contains("13800138000")));
    }

    #[tokio::test]
    async fn given_a_racing_writer_took_the_next_index_when_changing_then_its_value_counts() {
        let guard = Arc::new(MemoryGuard::default());
        let opt_outs = OptOuts::new(guard.clone());
        let number = number();
        // Someone else recorded the opt-out between our read and our write.
        guard
            .put_if_absent(&OptOuts::key(&number, 0), OUT, RETENTION)
            .await
            .unwrap();
        assert!(!opt_outs.change(&number, OUT).await.unwrap());
        assert!(opt_outs.is_opted_out(&number).await.unwrap());
    }

    #[tokio::test]
    async fn given_too_many_changes_when_changing_again_then_stop_still_counts_and_start_not() {
        let opt_outs = OptOuts::new(Arc::new(MemoryGuard::default()));
        let number = number();
        for _ in 0..MAX_CHANGES / 2 - 1 {
            assert!(opt_outs.opt_out(&number).await.unwrap());
            assert!(opt_outs.opt_in(&number).await.unwrap());
        }
        assert!(opt_outs.opt_out(&number).await.unwrap());
        assert!(!opt_outs.opt_in(&number).await.unwrap());
        assert!(opt_outs.is_opted_out(&number).await.unwrap());
    }
}
