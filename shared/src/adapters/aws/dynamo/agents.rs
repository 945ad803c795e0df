//! [`AgentDirectory`] on the table.

use super::codec::{self, n, s};
use super::{DynamoStore, Item, keys};
use crate::domain::Millis;
use crate::ports::{AgentAccount, AgentDirectory, LoginFailures};
use crate::{Error, Result};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use std::collections::HashMap;
use std::time::Duration;

/// A restarted counter can lose to another restart; retry that few times.
const COUNT_ATTEMPTS: u32 = 3;

fn agent_item(account: &AgentAccount) -> Item {
    let queues = account.queues.iter().map(s).collect();
    HashMap::from([
        (keys::PK.to_owned(), s(keys::agent_pk(&account.username))),
        (keys::SK.to_owned(), s(keys::META)),
        ("username".to_owned(), s(&account.username)),
        ("display_name".to_owned(), s(&account.display_name)),
        ("password_hash".to_owned(), s(&account.password_hash)),
        // A list, not a string set: sets cannot be empty.
        ("queues".to_owned(), AttributeValue::L(queues)),
        (
            "disabled".to_owned(),
            AttributeValue::Bool(account.disabled),
        ),
        ("created_at".to_owned(), n(account.created_at)),
    ])
}

fn agent_account(item: &Item) -> Result<AgentAccount> {
    let queues = match item.get("queues") {
        Some(AttributeValue::L(values)) => values
            .iter()
            .map(|value| match value {
                AttributeValue::S(queue) => Ok(queue.clone()),
                _ => Err(Error::Corrupt("stored agent has a non-text queue".into())),
            })
            .collect::<Result<_>>()?,
        None => Vec::new(),
        Some(_) => return Err(Error::Corrupt("stored agent has malformed queues".into())),
    };
    let disabled = match item.get("disabled") {
        None => false,
        Some(AttributeValue::Bool(disabled)) => *disabled,
        Some(_) => {
            return Err(Error::Corrupt(
                "stored agent has a malformed `disabled`".into(),
            ));
        }
    };
    Ok(AgentAccount {
        username: codec::string(item, "username")?,
        display_name: codec::string(item, "display_name")?,
        password_hash: codec::string(item, "password_hash")?,
        queues,
        disabled,
        created_at: codec::number(item, "created_at")?,
    })
}

/// The oldest `last_at` that still counts at `now`.
fn cutoff(now: Millis, forget_after: Duration) -> Millis {
    now.saturating_sub(i64::try_from(forget_after.as_millis()).unwrap_or(i64::MAX))
}

/// When DynamoDB's TTL may delete a counter last bumped at `now`, epoch seconds (rounded
/// up, so it never goes before it is forgotten).
fn expires_at_secs(now: Millis, forget_after: Duration) -> i64 {
    let forget_ms = i64::try_from(forget_after.as_millis()).unwrap_or(i64::MAX);
    now.saturating_add(forget_ms).saturating_add(999) / 1000
}

fn login_failures(item: &Item) -> Result<LoginFailures> {
    Ok(LoginFailures {
        count: codec::number(item, "failures")?,
        last_at: codec::number(item, "last_at")?,
    })
}

fn is_condition_failure<E>(error: &aws_sdk_dynamodb::error::SdkError<E>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    error
        .as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "ConditionalCheckFailedException")
}

#[async_trait]
impl AgentDirectory for DynamoStore {
    async fn agent(&self, username: &str) -> Result<Option<AgentAccount>> {
        self.get_item(keys::agent_pk(username), keys::META, "an agent")
            .await?
            .map(|item| agent_account(&item))
            .transpose()
    }

    async fn create_agent(&self, account: &AgentAccount) -> Result<bool> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(agent_item(account)))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(Error::backend("creating an agent", e)),
        }
    }

    async fn update_agent(&self, account: &AgentAccount) -> Result<bool> {
        let item = agent_item(account);
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(keys::PK, s(keys::agent_pk(&account.username)))
            .key(keys::SK, s(keys::META))
            .update_expression(
                "SET display_name = :name, password_hash = :hash, queues = :queues, \
                 disabled = :disabled",
            )
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":name", item["display_name"].clone())
            .expression_attribute_values(":hash", item["password_hash"].clone())
            .expression_attribute_values(":queues", item["queues"].clone())
            .expression_attribute_values(":disabled", item["disabled"].clone())
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(Error::backend("updating an agent", e)),
        }
    }

    async fn delete_agent(&self, username: &str) -> Result<bool> {
        let output = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(keys::PK, s(keys::agent_pk(username)))
            .key(keys::SK, s(keys::META))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| Error::backend("deleting an agent", e))?;
        Ok(output.attributes.is_some_and(|old| !old.is_empty()))
    }

    async fn note_login_failure(
        &self,
        key: &str,
        now: Millis,
        forget_after: Duration,
    ) -> Result<LoginFailures> {
        let pk = keys::login_failures_pk(key);
        let cutoff = cutoff(now, forget_after);
        let expires_at = expires_at_secs(now, forget_after);
        for _ in 0..COUNT_ATTEMPTS {
            // A live counter is bumped in place (atomic, so concurrent failures all count)…
            let bumped = self
                .client
                .update_item()
                .table_name(&self.table)
                .key(keys::PK, s(&pk))
                .key(keys::SK, s(keys::FAILURES))
                .update_expression(
                    "SET failures = failures + :one, last_at = :now, expires_at = :expires",
                )
                .condition_expression("last_at > :cutoff")
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":now", n(now))
                .expression_attribute_values(":expires", n(expires_at))
                .expression_attribute_values(":cutoff", n(cutoff))
                .return_values(ReturnValue::AllNew)
                .send()
                .await;
            match bumped {
                Ok(output) => {
                    let item = output.attributes.unwrap_or_default();
                    return login_failures(&item);
                }
                Err(e) if is_condition_failure(&e) => {}
                Err(e) => return Err(Error::backend("counting a failed login", e)),
            }
            // …an absent or forgotten one starts again at 1.
            let started = self
                .client
                .put_item()
                .table_name(&self.table)
                .item(keys::PK, s(&pk))
                .item(keys::SK, s(keys::FAILURES))
                .item("failures", n(1))
                .item("last_at", n(now))
                .item("expires_at", n(expires_at))
                .condition_expression("attribute_not_exists(pk) OR last_at <= :cutoff")
                .expression_attribute_values(":cutoff", n(cutoff))
                .send()
                .await;
            match started {
                Ok(_) => {
                    return Ok(LoginFailures {
                        count: 1,
                        last_at: now,
                    });
                }
                // Another failure started it in between: bump that one.
                Err(e) if is_condition_failure(&e) => {}
                Err(e) => return Err(Error::backend("counting a failed login", e)),
            }
        }
        Err(Error::Conflict(format!(
            "failed-login counter kept changing over {COUNT_ATTEMPTS} attempts"
        )))
    }

    async fn login_failures(
        &self,
        key: &str,
        now: Millis,
        forget_after: Duration,
    ) -> Result<Option<LoginFailures>> {
        let item = self
            .get_item(
                keys::login_failures_pk(key),
                keys::FAILURES,
                "a failed-login counter",
            )
            .await?;
        let Some(item) = item else {
            return Ok(None);
        };
        let failures = login_failures(&item)?;
        Ok((failures.last_at > cutoff(now, forget_after)).then_some(failures))
    }

    async fn clear_login_failures(&self, key: &str) -> Result<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key(keys::PK, s(keys::login_failures_pk(key)))
            .key(keys::SK, s(keys::FAILURES))
            .send()
            .await
            .map_err(|e| Error::backend("clearing failed logins", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_an_agent_without_queues_when_encoded_and_decoded_then_it_round_trips() {
        let account = AgentAccount {
            username: "alice".into(),
            display_name: "Alice".into(),
            password_hash: "$argon2id$v=19$...".into(),
            queues: Vec::new(),
            disabled: true,
            created_at: 7,
        };
        assert_eq!(
            agent_account(&agent_item(&account)).expect("decodes"),
            account
        );
    }

    #[test]
    fn given_an_agent_stored_before_disabling_existed_when_decoded_then_enabled() {
        let account = AgentAccount {
            username: "alice".into(),
            display_name: "Alice".into(),
            password_hash: "$argon2id$v=19$...".into(),
            queues: vec!["general".into()],
            disabled: false,
            created_at: 7,
        };
        let mut item = agent_item(&account);
        item.remove("disabled");
        assert_eq!(agent_account(&item).expect("decodes"), account);
    }
}
