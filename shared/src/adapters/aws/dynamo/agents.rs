//! [`AgentDirectory`] on the table.

use super::codec::{self, n, s};
use super::{DynamoStore, Item, keys};
use crate::ports::{AgentAccount, AgentDirectory};
use crate::{Error, Result};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;

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
    Ok(AgentAccount {
        username: codec::string(item, "username")?,
        display_name: codec::string(item, "display_name")?,
        password_hash: codec::string(item, "password_hash")?,
        queues,
        created_at: codec::number(item, "created_at")?,
    })
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
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(Error::backend("creating an agent", e)),
        }
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
            created_at: 7,
        };
        assert_eq!(
            agent_account(&agent_item(&account)).expect("decodes"),
            account
        );
    }
}
