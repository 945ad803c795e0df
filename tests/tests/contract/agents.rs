//! [`AgentDirectory`] contract: accounts are created once.

use crate::support::unique;
use kefu::domain::now_millis;
use kefu::ports::{AgentAccount, AgentDirectory};
use std::sync::Arc;

fn account(username: &str, display_name: &str) -> AgentAccount {
    AgentAccount {
        username: username.into(),
        display_name: display_name.into(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        queues: vec!["general".into(), "vip".into()],
        created_at: now_millis(),
    }
}

/// GIVEN an account WHEN it is created twice THEN the first creation wins, the second
/// reports `false`, and lookups return the first; unknown names find nothing.
pub async fn create_agent_once(agents: Arc<dyn AgentDirectory>) -> anyhow::Result<()> {
    let username = unique("agent-");
    let first = account(&username, "小王");

    let created = agents.create_agent(&first).await?;
    let again = agents.create_agent(&account(&username, "impostor")).await?;

    assert!(created);
    assert!(!again);
    assert_eq!(agents.agent(&username).await?, Some(first));
    assert_eq!(agents.agent(&unique("nobody-")).await?, None);
    Ok(())
}
