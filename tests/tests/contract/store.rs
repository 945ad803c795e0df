//! [`ConversationStore`] and [`WorkQueue`] contract: create-once, optimistic versioning,
//! gapless idempotent message sequences, the waiting order.

use crate::support::{customer_message, escalation, new_conversation, unique};
use kefu::Error;
use kefu::domain::{
    Author, BotContext, Channel, ConversationId, ConversationKey, ConversationState, DeliveryState,
    MessageId, NewMessage, now_millis,
};
use kefu::ports::{ConversationStore, EMPTY_CONVERSATION_TTL, WorkQueue};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// GIVEN a conversation with every field set WHEN created and read back THEN it is equal;
/// an unknown id reads as `None`.
pub async fn create_then_get_round_trips(store: Arc<dyn ConversationStore>) -> anyhow::Result<()> {
    let mut conversation = new_conversation(Channel::Wechat);
    conversation.customer.verified_id = Some(unique("shop-"));
    conversation.escalate(escalation("vip", 7), 1_700_000_000_000)?;
    conversation.claim("alice", 1_700_000_000_500)?;
    conversation.bot_misses = 2;
    conversation.bot_seq = 4;

    let created = store.create(&conversation).await?;
    let read = store.get(&conversation.id).await?;

    assert_eq!(created, conversation);
    assert_eq!(read, Some(conversation));
    let unknown = ConversationKey::new(Channel::Web, unique("nobody-")).conversation_id();
    assert_eq!(store.get(&unknown).await?, None);
    Ok(())
}

/// GIVEN a stored conversation WHEN another with the same id is created THEN the first one
/// is kept and returned.
pub async fn create_keeps_the_first(store: Arc<dyn ConversationStore>) -> anyhow::Result<()> {
    let first = new_conversation(Channel::Sms);
    store.create(&first).await?;
    let mut second = first.clone();
    second.customer.name = Some("someone else".into());

    let returned = store.create(&second).await?;

    assert_eq!(returned, first);
    assert_eq!(store.get(&first.id).await?, Some(first));
    Ok(())
}

/// GIVEN a conversation WHEN messages are appended, one of them twice THEN seqs run 1, 2, 3
/// without gaps, the repeat returns the stored message and `false`, and pages follow seq.
pub async fn append_assigns_gapless_seq_and_is_idempotent(
    store: Arc<dyn ConversationStore>,
) -> anyhow::Result<()> {
    let conversation = store.create(&new_conversation(Channel::Email)).await?;
    let messages = [
        customer_message("one"),
        customer_message("two"),
        customer_message("three"),
    ];

    let mut seqs = Vec::new();
    for message in &messages {
        let (stored, fresh) = store.append(&conversation.id, message.clone()).await?;
        assert!(fresh);
        assert_eq!(stored.message_id, message.message_id);
        assert_eq!(stored.channel, Channel::Email, "the conversation's channel");
        assert_eq!(stored.delivery, DeliveryState::Pending);
        seqs.push(stored.seq);
    }
    let mut retry = messages[1].clone();
    retry.text = "two, retried".into();
    let (again, fresh) = store.append(&conversation.id, retry).await?;

    assert_eq!(seqs, [1, 2, 3]);
    assert!(!fresh);
    assert_eq!((again.seq, again.text.as_str()), (2, "two"));
    let all = store.messages(&conversation.id, 0, 10).await?;
    let texts: Vec<_> = all.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["one", "two", "three"]);
    let page = store.messages(&conversation.id, 1, 1).await?;
    assert_eq!(page.iter().map(|m| m.seq).collect::<Vec<_>>(), [2]);
    assert!(store.messages(&conversation.id, 3, 10).await?.is_empty());
    let stored = store.get(&conversation.id).await?.expect("conversation");
    assert_eq!(stored.last_seq, 3);
    Ok(())
}

/// GIVEN no conversation WHEN a message is appended THEN `NotFound`.
pub async fn append_without_conversation_is_not_found(
    store: Arc<dyn ConversationStore>,
) -> anyhow::Result<()> {
    let missing = ConversationKey::new(Channel::Web, unique("ghost-")).conversation_id();

    let result = store.append(&missing, customer_message("hello?")).await;

    assert!(matches!(result, Err(Error::NotFound(_))), "{result:?}");
    assert!(store.messages(&missing, 0, 10).await?.is_empty());
    Ok(())
}

/// GIVEN 20 tasks appending distinct messages at once, then all of them again WHEN done THEN
/// seqs are exactly 1..=20, and every repeat returned the stored seq and `false`.
pub async fn concurrent_appends_get_unique_seqs(
    store: Arc<dyn ConversationStore>,
) -> anyhow::Result<()> {
    const TASKS: usize = 20;
    let conversation = store.create(&new_conversation(Channel::Web)).await?;
    let messages: Vec<NewMessage> = (0..TASKS)
        .map(|i| customer_message(&format!("m{i}")))
        .collect();

    let first = append_all(&store, &conversation.id, &messages).await?;
    let repeat = append_all(&store, &conversation.id, &messages).await?;

    let seqs: BTreeSet<u64> = first.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(seqs, (1..=TASKS as u64).collect::<BTreeSet<_>>());
    assert!(first.iter().all(|(_, fresh)| *fresh));
    assert!(repeat.iter().all(|(_, fresh)| !*fresh));
    assert_eq!(
        first.iter().map(|(seq, _)| seq).collect::<Vec<_>>(),
        repeat.iter().map(|(seq, _)| seq).collect::<Vec<_>>()
    );
    let stored = store.get(&conversation.id).await?.expect("conversation");
    assert_eq!(stored.last_seq, TASKS as u64);
    assert_eq!(store.messages(&conversation.id, 0, 100).await?.len(), TASKS);
    Ok(())
}

/// Appends every message from its own task; returns (seq, fresh) in `messages` order.
async fn append_all(
    store: &Arc<dyn ConversationStore>,
    id: &ConversationId,
    messages: &[NewMessage],
) -> anyhow::Result<Vec<(u64, bool)>> {
    let tasks: Vec<_> = messages
        .iter()
        .map(|message| {
            let (store, id, message) = (store.clone(), id.clone(), message.clone());
            tokio::spawn(async move { store.append(&id, message).await })
        })
        .collect();
    let mut out = Vec::new();
    for task in tasks {
        let (stored, fresh) = task.await??;
        out.push((stored.seq, fresh));
    }
    Ok(out)
}

/// GIVEN two copies of one version WHEN both are saved THEN the first wins and bumps the
/// version, and the second gets `Conflict` and changes nothing.
pub async fn save_is_conditional_on_version(
    store: Arc<dyn ConversationStore>,
) -> anyhow::Result<()> {
    let conversation = store.create(&new_conversation(Channel::Web)).await?;
    let mut first = conversation.clone();
    let mut second = conversation.clone();
    first.escalate(escalation("general", 3), now_millis())?;
    second.bot_misses = 1;

    store.save(&mut first).await?;
    let lost = store.save(&mut second).await;

    assert_eq!(first.version, conversation.version + 1);
    assert!(matches!(lost, Err(Error::Conflict(_))), "{lost:?}");
    assert_eq!(
        second.version, conversation.version,
        "a lost save leaves the version"
    );
    let stored = store.get(&conversation.id).await?.expect("conversation");
    assert_eq!(stored, first);
    Ok(())
}

/// GIVEN a copy read before a message was appended WHEN it is saved THEN the store's
/// `last_seq` stays where `append` put it.
pub async fn save_does_not_touch_last_seq(store: Arc<dyn ConversationStore>) -> anyhow::Result<()> {
    let conversation = store.create(&new_conversation(Channel::Web)).await?;
    let mut stale = store.get(&conversation.id).await?.expect("conversation");
    store
        .append(&conversation.id, customer_message("hi"))
        .await?;
    stale.bot_seq = 1;

    store.save(&mut stale).await?;

    let stored = store.get(&conversation.id).await?.expect("conversation");
    assert_eq!((stored.last_seq, stored.bot_seq), (1, 1));
    Ok(())
}

/// GIVEN a conversation saved with a task flow's context WHEN read back THEN the context is
/// equal; WHEN saved again without one THEN it reads back as `None`.
pub async fn save_round_trips_and_clears_bot_context(
    store: Arc<dyn ConversationStore>,
) -> anyhow::Result<()> {
    let mut conversation = store.create(&new_conversation(Channel::Web)).await?;
    let context = BotContext::Flow {
        flow: "order_status".into(),
        slot: "order_id".into(),
        tries: 2,
        filled: BTreeMap::from([("phone_tail".into(), "1234".into())]),
    };
    conversation.bot_context = Some(context.clone());

    store.save(&mut conversation).await?;
    let with_context = store.get(&conversation.id).await?.expect("conversation");
    conversation.bot_context = None;
    store.save(&mut conversation).await?;
    let cleared = store.get(&conversation.id).await?.expect("conversation");

    assert_eq!(with_context.bot_context, Some(context));
    assert_eq!(cleared.bot_context, None);
    assert_eq!(cleared, conversation);
    Ok(())
}

/// GIVEN a bot answer offering two quick replies and a message offering none WHEN appended
/// and read back by page and by id THEN each keeps its list, in order.
pub async fn append_round_trips_quick_replies(
    store: Arc<dyn ConversationStore>,
) -> anyhow::Result<()> {
    let conversation = store.create(&new_conversation(Channel::Web)).await?;
    let mut answer = customer_message("满99元包邮");
    answer.author = Author::Bot;
    answer.quick_replies = vec![
        "退货运费谁出？".into(),
        "How long does a refund take?".into(),
    ];
    let plain = customer_message("谢谢");

    let (stored, _) = store.append(&conversation.id, answer.clone()).await?;
    store.append(&conversation.id, plain).await?;
    let listed = store.messages(&conversation.id, 0, 10).await?;
    let found = store
        .find_message(&conversation.id, &answer.message_id)
        .await?
        .expect("message");

    assert_eq!(stored.quick_replies, answer.quick_replies);
    let lists: Vec<_> = listed.iter().map(|m| m.quick_replies.len()).collect();
    assert_eq!(lists, [2, 0]);
    assert_eq!(found, stored);
    Ok(())
}

/// GIVEN a customer message scored -0.5 and one not scored WHEN appended and read back by
/// page and by id THEN each keeps its sentiment.
pub async fn append_round_trips_sentiment(store: Arc<dyn ConversationStore>) -> anyhow::Result<()> {
    let conversation = store.create(&new_conversation(Channel::Sms)).await?;
    let mut angry = customer_message("还没发货？");
    angry.sentiment = Some(-0.5);
    let unscored = customer_message("好的");

    let (stored, _) = store.append(&conversation.id, angry.clone()).await?;
    store.append(&conversation.id, unscored).await?;
    let listed = store.messages(&conversation.id, 0, 10).await?;
    let found = store
        .find_message(&conversation.id, &angry.message_id)
        .await?
        .expect("message");

    assert_eq!(stored.sentiment, Some(-0.5));
    let sentiments: Vec<_> = listed.iter().map(|m| m.sentiment).collect();
    assert_eq!(sentiments, [Some(-0.5), None]);
    assert_eq!(found, stored);
    Ok(())
}

/// GIVEN a waiting conversation WHEN 50 agents claim it at once (read, claim, save; a lost
/// save re-reads and tries again) THEN exactly one succeeds and 49 end in `Conflict`.
pub async fn fifty_concurrent_claims_one_wins(
    store: Arc<dyn ConversationStore>,
) -> anyhow::Result<()> {
    const AGENTS: usize = 50;
    let mut conversation = store.create(&new_conversation(Channel::Web)).await?;
    conversation.escalate(escalation("general", 5), now_millis())?;
    store.save(&mut conversation).await?;

    let tasks: Vec<_> = (0..AGENTS)
        .map(|i| {
            let (store, id) = (store.clone(), conversation.id.clone());
            tokio::spawn(async move { claim(store.as_ref(), &id, &format!("agent{i}")).await })
        })
        .collect();
    let mut winners = Vec::new();
    let mut conflicts = 0;
    for (i, task) in tasks.into_iter().enumerate() {
        match task.await? {
            Ok(()) => winners.push(format!("agent{i}")),
            Err(Error::Conflict(_)) => conflicts += 1,
            Err(other) => anyhow::bail!("agent{i} failed with {other}"),
        }
    }

    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    assert_eq!(conflicts, AGENTS - 1);
    let stored = store.get(&conversation.id).await?.expect("conversation");
    assert_eq!(stored.state, ConversationState::Assigned);
    assert_eq!(stored.assignee.as_ref(), winners.first());
    assert_eq!(stored.version, conversation.version + 1, "one write won");
    Ok(())
}

/// What the claim endpoint does: read, claim, save; retry a lost save from a fresh read.
async fn claim(
    store: &dyn ConversationStore,
    id: &ConversationId,
    agent: &str,
) -> kefu::Result<()> {
    // Only one write can ever win, so every agent loses at most one race.
    for _ in 0..3 {
        let mut conversation = store
            .get(id)
            .await?
            .ok_or_else(|| Error::NotFound(id.to_string()))?;
        conversation.claim(agent, now_millis())?;
        match store.save(&mut conversation).await {
            Err(Error::Conflict(_)) => continue,
            other => return other,
        }
    }
    Err(Error::Conflict("claim kept losing".into()))
}

/// GIVEN conversations waiting in a queue with mixed priorities and ages, plus others in
/// another queue or no longer waiting WHEN the queue is listed THEN only its waiting ones
/// come, highest priority first, then oldest first, cut at the limit.
pub async fn waiting_orders_by_priority_then_age(
    store: Arc<dyn ConversationStore>,
    work: Arc<dyn WorkQueue>,
) -> anyhow::Result<()> {
    let queue = unique("q");
    let other_queue = unique("q");
    let base = now_millis() - 60_000;
    let mut ids = Vec::new();
    // (queue, priority, waiting since) — expected order: p9, p5 older, p5 newer, p1.
    for (queue, priority, since) in [
        (&queue, 1, base),
        (&queue, 5, base + 300),
        (&queue, 9, base + 400),
        (&queue, 5, base + 200),
        (&other_queue, 9, base),
    ] {
        let mut conversation = store.create(&new_conversation(Channel::Web)).await?;
        conversation.escalate(escalation(queue, priority), since)?;
        store.save(&mut conversation).await?;
        ids.push(conversation.id);
    }
    let mut claimed = store.create(&new_conversation(Channel::Web)).await?;
    claimed.escalate(escalation(&queue, 9), base)?;
    claimed.claim("alice", base + 1)?;
    store.save(&mut claimed).await?;

    let listed = work.waiting(&queue, 10).await?;
    let first_two = work.waiting(&queue, 2).await?;

    let order: Vec<_> = listed.iter().map(|c| c.id.clone()).collect();
    assert_eq!(
        order,
        [
            ids[2].clone(),
            ids[3].clone(),
            ids[1].clone(),
            ids[0].clone()
        ]
    );
    assert!(listed.iter().all(|c| c.state == ConversationState::Waiting));
    assert_eq!(first_two, listed[..2]);
    assert!(work.waiting(&unique("empty"), 10).await?.is_empty());
    Ok(())
}

/// GIVEN a stored reply WHEN it is found and its delivery recorded THEN lookups return it
/// with the new state; unknown ids find nothing.
pub async fn find_message_and_record_delivery(
    store: Arc<dyn ConversationStore>,
) -> anyhow::Result<()> {
    let conversation = store.create(&new_conversation(Channel::Sms)).await?;
    let reply = NewMessage {
        message_id: MessageId::random(),
        author: Author::Agent,
        agent_id: Some("alice".into()),
        text: "您好".into(),
        created_at: now_millis(),
        sentiment: None,
        quick_replies: Vec::new(),
    };
    let (stored, _) = store.append(&conversation.id, reply.clone()).await?;

    let found = store
        .find_message(&conversation.id, &reply.message_id)
        .await?;
    store
        .set_delivery(
            &conversation.id,
            &reply.message_id,
            DeliveryState::Failed("number unreachable".into()),
        )
        .await?;
    let after = store
        .find_message(&conversation.id, &reply.message_id)
        .await?;

    assert_eq!(found, Some(stored));
    let after = after.expect("message");
    assert_eq!(
        after.delivery,
        DeliveryState::Failed("number unreachable".into())
    );
    assert_eq!(after.agent_id.as_deref(), Some("alice"));
    assert_eq!(after.author, Author::Agent);
    let unknown = MessageId::random();
    assert_eq!(store.find_message(&conversation.id, &unknown).await?, None);
    Ok(())
}

/// GIVEN a conversation that never got a message WHEN its lapse time has passed THEN it
/// reads as absent, an append finds no conversation, and a new create replaces it.
pub async fn empty_conversation_lapses(store: Arc<dyn ConversationStore>) -> anyhow::Result<()> {
    let ttl = i64::try_from(EMPTY_CONVERSATION_TTL.as_millis())?;
    let mut old = new_conversation(Channel::Web);
    old.created_at = now_millis() - ttl - 1_000;
    old.updated_at = old.created_at;
    store.create(&old).await?;

    assert_eq!(store.get(&old.id).await?, None);
    let appended = store.append(&old.id, customer_message("hello?")).await;
    assert!(matches!(appended, Err(Error::NotFound(_))), "{appended:?}");

    let mut fresh = old.clone();
    fresh.created_at = now_millis();
    fresh.updated_at = fresh.created_at;
    assert_eq!(store.create(&fresh).await?, fresh);
    assert_eq!(store.get(&fresh.id).await?, Some(fresh));
    Ok(())
}

/// GIVEN a conversation close to its lapse time WHEN its first message is appended THEN it
/// no longer lapses.
pub async fn first_message_keeps_a_conversation(
    store: Arc<dyn ConversationStore>,
) -> anyhow::Result<()> {
    let ttl = i64::try_from(EMPTY_CONVERSATION_TTL.as_millis())?;
    let mut conversation = new_conversation(Channel::Web);
    conversation.created_at = now_millis() - ttl + 1_000;
    store.create(&conversation).await?;
    store
        .append(&conversation.id, customer_message("我要退货"))
        .await?;

    tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;

    let kept = store.get(&conversation.id).await?.expect("kept");
    assert_eq!(kept.last_seq, 1);
    assert_eq!(store.messages(&conversation.id, 0, 10).await?.len(), 1);
    Ok(())
}
