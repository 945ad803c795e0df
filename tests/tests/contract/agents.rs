//! [`AgentDirectory`] contract: accounts are created once, updated, disabled and deleted;
//! failed-login counters count atomically, are forgotten after their window and cleared.

use crate::support::unique;
use kefu::domain::now_millis;
use kefu::ports::{AgentAccount, AgentDirectory, LoginFailures};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

fn account(username: &str, display_name: &str) -> AgentAccount {
    AgentAccount {
        username: username.into(),
        display_name: display_name.into(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        queues: vec!["general".into(), "vip".into()],
        disabled: false,
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

/// GIVEN an account WHEN it is updated (disabled, other queues and hash), then deleted
/// THEN reads show each change, `created_at` is kept, and unknown accounts report `false`.
pub async fn update_disable_and_delete_agent(
    agents: Arc<dyn AgentDirectory>,
) -> anyhow::Result<()> {
    let username = unique("agent-");
    let first = account(&username, "小王");
    assert!(agents.create_agent(&first).await?);

    let changed = AgentAccount {
        display_name: "Wang".into(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$b3RoZXI$aGFzaDI".into(),
        queues: vec!["billing".into()],
        disabled: true,
        created_at: first.created_at + 1_000,
        ..first.clone()
    };
    assert!(agents.update_agent(&changed).await?);
    let stored = agents.agent(&username).await?.expect("still there");
    assert_eq!(
        stored,
        AgentAccount {
            created_at: first.created_at,
            ..changed.clone()
        }
    );

    let nobody = account(&unique("nobody-"), "nobody");
    assert!(!agents.update_agent(&nobody).await?);
    assert_eq!(
        agents.agent(&nobody.username).await?,
        None,
        "update never creates"
    );

    assert!(agents.delete_agent(&username).await?);
    assert_eq!(agents.agent(&username).await?, None);
    assert!(!agents.delete_agent(&username).await?);
    Ok(())
}

/// GIVEN a failed-login key WHEN failures are counted, read after their window, cleared,
/// and counted from many tasks at once THEN counts go up by one each, a forgotten counter
/// restarts at 1, a cleared one is gone, and concurrent counts are all distinct.
pub async fn login_failures_count_forget_and_clear(
    agents: Arc<dyn AgentDirectory>,
) -> anyhow::Result<()> {
    let key = format!("user:{}", unique("agent-"));
    let window = Duration::from_secs(60);
    let t0 = now_millis();
    assert_eq!(agents.login_failures(&key, t0, window).await?, None);
    for (n, at) in [(1, t0), (2, t0 + 10), (3, t0 + 20)] {
        let failures = agents.note_login_failure(&key, at, window).await?;
        assert_eq!(
            failures,
            LoginFailures {
                count: n,
                last_at: at
            }
        );
    }
    assert_eq!(
        agents.login_failures(&key, t0 + 30, window).await?,
        Some(LoginFailures {
            count: 3,
            last_at: t0 + 20
        })
    );
    let later = t0 + 20 + 60_000;
    assert_eq!(agents.login_failures(&key, later, window).await?, None);
    assert_eq!(
        agents.note_login_failure(&key, later, window).await?.count,
        1,
        "a forgotten counter starts again"
    );

    agents.clear_login_failures(&key).await?;
    assert_eq!(agents.login_failures(&key, later, window).await?, None);
    agents.clear_login_failures(&key).await?;

    let other = format!("addr:{}", unique("192.0.2."));
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (agents, other) = (agents.clone(), other.clone());
            tokio::spawn(async move { agents.note_login_failure(&other, t0, window).await })
        })
        .collect();
    let mut counts = BTreeSet::new();
    for task in tasks {
        counts.insert(task.await??.count);
    }
    assert_eq!(counts, (1..=10).collect::<BTreeSet<u32>>());
    assert_eq!(
        agents.login_failures(&key, later, window).await?,
        None,
        "keys are separate"
    );
    Ok(())
}
