//! What agents do to conversations, independent of HTTP. Every action first checks that
//! the agent may see the conversation ([`AgentIdentity::may_see`]), on the version it is
//! about to change; one it may not see is [`Error::NotFound`], like one that does not exist.

use super::AgentIdentity;
use crate::domain::{
    Author, Conversation, ConversationId, ConversationState, Message, MessageId, Millis,
    NewMessage, OutboundMessage, SCHEMA_VERSION, now_millis,
};
use crate::ports::{ConversationStore, MessageQueue, send_outbound};
use crate::{Error, Result};

/// How often a change is retried when another writer bumped the version in between.
const MAX_ATTEMPTS: usize = 5;

/// The conversation, if `agent` may see it; else [`Error::NotFound`].
pub async fn show(
    store: &dyn ConversationStore,
    id: &ConversationId,
    agent: &AgentIdentity,
) -> Result<Conversation> {
    get(store, id, agent).await
}

/// `agent` takes the conversation. Conditional on the stored version, so of two agents
/// claiming at once exactly one wins; the other gets [`Error::Conflict`]. Claiming a
/// conversation one already owns returns it unchanged.
pub async fn claim(
    store: &dyn ConversationStore,
    id: &ConversationId,
    agent: &AgentIdentity,
) -> Result<Conversation> {
    let me = agent.agent_id.as_str();
    change(store, id, agent, |conversation, now| {
        let already_mine = conversation.state == ConversationState::Assigned
            && conversation.assignee.as_deref() == Some(me);
        conversation.claim(me, now)?;
        Ok(!already_mine)
    })
    .await
}

/// The owner closes the conversation; anyone else gets [`Error::Conflict`].
pub async fn resolve(
    store: &dyn ConversationStore,
    id: &ConversationId,
    agent: &AgentIdentity,
) -> Result<Conversation> {
    let me = agent.agent_id.as_str();
    change(store, id, agent, |conversation, now| {
        conversation.resolve(me, now).map(|()| true)
    })
    .await
}

/// The owner writes to the customer: the message is stored, then queued for delivery on
/// the conversation's channel. Anyone but the owner gets [`Error::Conflict`].
pub async fn reply(
    store: &dyn ConversationStore,
    outbound: &dyn MessageQueue,
    id: &ConversationId,
    agent: &AgentIdentity,
    text: String,
) -> Result<Message> {
    let conversation = get(store, id, agent).await?;
    let agent = agent.agent_id.as_str();
    match (conversation.state, conversation.assignee.as_deref()) {
        (ConversationState::Assigned, Some(owner)) if owner == agent => {}
        (ConversationState::Assigned, _) => {
            return Err(Error::Conflict(
                "conversation is assigned to another agent".into(),
            ));
        }
        _ => {
            return Err(Error::Conflict(
                "claim the conversation before replying".into(),
            ));
        }
    }
    let (message, _) = store
        .append(
            id,
            NewMessage {
                message_id: MessageId::random(),
                author: Author::Agent,
                agent_id: Some(agent.to_owned()),
                text,
                created_at: now_millis(),
                sentiment: None,
                quick_replies: Vec::new(),
            },
        )
        .await?;
    let envelope = OutboundMessage {
        schema: SCHEMA_VERSION,
        message_id: message.message_id.clone(),
        conversation_id: id.clone(),
        channel: conversation.channel,
        recipient: conversation.customer.address,
        author: Author::Agent,
        agent_id: Some(agent.to_owned()),
        text: message.text.clone(),
        quick_replies: Vec::new(),
        in_reply_to: None,
        created_at: message.created_at,
    };
    send_outbound(outbound, &envelope).await?;
    Ok(message)
}

async fn get(
    store: &dyn ConversationStore,
    id: &ConversationId,
    agent: &AgentIdentity,
) -> Result<Conversation> {
    store
        .get(id)
        .await?
        .filter(|conversation| agent.may_see(conversation))
        .ok_or_else(|| Error::NotFound("conversation not found".into()))
}

/// Read, apply `apply` (which says whether there is anything to write), write
/// conditionally; on a lost race, read again and retry a bounded number of times.
async fn change(
    store: &dyn ConversationStore,
    id: &ConversationId,
    agent: &AgentIdentity,
    apply: impl Fn(&mut Conversation, Millis) -> Result<bool>,
) -> Result<Conversation> {
    for _ in 0..MAX_ATTEMPTS {
        let mut conversation = get(store, id, agent).await?;
        if !apply(&mut conversation, now_millis())? {
            return Ok(conversation);
        }
        match store.save(&mut conversation).await {
            Ok(()) => return Ok(conversation),
            Err(Error::Conflict(_)) => {
                tracing::debug!(conversation = %id, "version conflict; retrying");
            }
            Err(e) => return Err(e),
        }
    }
    Err(Error::Conflict(
        "conversation is being changed by someone else; try again".into(),
    ))
}
