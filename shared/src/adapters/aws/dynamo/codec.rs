//! Domain values to DynamoDB attributes and back.

use super::Item;
use super::keys;
use crate::domain::{
    Author, BotContext, Channel, Conversation, ConversationId, ConversationState, Customer,
    DeliveryState, Escalation, Message, MessageId,
};
use crate::{Error, Result};
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;
use std::fmt::Display;
use std::str::FromStr;

// ---- attribute values -------------------------------------------------------------------

pub(super) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(super) fn n(value: impl Display) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn missing(name: &str) -> Error {
    Error::Corrupt(format!("stored item lacks a valid `{name}` attribute"))
}

pub(super) fn opt_string(item: &Item, name: &str) -> Result<Option<String>> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::S(value)) => Ok(Some(value.clone())),
        Some(_) => Err(missing(name)),
    }
}

pub(super) fn string(item: &Item, name: &str) -> Result<String> {
    opt_string(item, name)?.ok_or_else(|| missing(name))
}

pub(super) fn opt_number<T: FromStr>(item: &Item, name: &str) -> Result<Option<T>> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::N(value)) => value.parse().map(Some).map_err(|_| missing(name)),
        Some(_) => Err(missing(name)),
    }
}

pub(super) fn number<T: FromStr>(item: &Item, name: &str) -> Result<T> {
    opt_number(item, name)?.ok_or_else(|| missing(name))
}

/// A list of strings; absent means empty.
fn string_list(item: &Item, name: &str) -> Result<Vec<String>> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(Vec::new()),
        Some(AttributeValue::L(values)) => values
            .iter()
            .map(|v| v.as_s().cloned().map_err(|_| missing(name)))
            .collect(),
        Some(_) => Err(missing(name)),
    }
}

fn opt_map<'a>(item: &'a Item, name: &str) -> Result<Option<&'a Item>> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::M(map)) => Ok(Some(map)),
        Some(_) => Err(missing(name)),
    }
}

fn channel(item: &Item) -> Result<Channel> {
    let name = string(item, "channel")?;
    serde_json::from_value(serde_json::Value::String(name))
        .map_err(|_| Error::Corrupt("stored item has an unknown channel".into()))
}

// ---- conversations ----------------------------------------------------------------------

/// The attributes [`ConversationStore::save`](crate::ports::ConversationStore::save)
/// writes: everything but the keys, identity, `created_at`, `version` and `last_seq`.
/// `None` means "absent" (removed on save), which keeps `gsi1` sparse.
pub(super) fn conversation_state(
    conversation: &Conversation,
) -> Result<Vec<(&'static str, Option<AttributeValue>)>> {
    let escalation = conversation.escalation.as_ref();
    let queue_keys = match (conversation.state, escalation, conversation.waiting_since) {
        (ConversationState::Waiting, Some(escalation), Some(since)) => Some((
            s(keys::queue_pk(&escalation.queue)),
            s(keys::queue_sk(escalation.priority, since, &conversation.id)),
        )),
        _ => None,
    };
    let (gsi1pk, gsi1sk) = queue_keys.unzip();
    let bot_context = conversation
        .bot_context
        .as_ref()
        .map(bot_context_value)
        .transpose()?;
    Ok(vec![
        ("customer", Some(customer(&conversation.customer))),
        ("state", Some(s(conversation.state.as_str()))),
        ("escalation", escalation.map(escalation_value)),
        ("waiting_since", conversation.waiting_since.map(n)),
        ("assignee", conversation.assignee.clone().map(s)),
        ("bot_misses", Some(n(conversation.bot_misses))),
        ("bot_seq", Some(n(conversation.bot_seq))),
        ("bot_context", bot_context),
        ("updated_at", Some(n(conversation.updated_at))),
        (keys::GSI1PK, gsi1pk),
        (keys::GSI1SK, gsi1sk),
    ])
}

/// The whole item of a new conversation.
pub(super) fn conversation_item(conversation: &Conversation) -> Result<Item> {
    let mut item: Item = conversation_state(conversation)?
        .into_iter()
        .filter_map(|(name, value)| Some((name.to_owned(), value?)))
        .collect();
    item.extend([
        (
            keys::PK.to_owned(),
            s(keys::conversation_pk(&conversation.id)),
        ),
        (keys::SK.to_owned(), s(keys::META)),
        ("id".to_owned(), s(conversation.id.as_str())),
        ("channel".to_owned(), s(conversation.channel.as_str())),
        ("last_seq".to_owned(), n(conversation.last_seq)),
        ("version".to_owned(), n(conversation.version)),
        ("created_at".to_owned(), n(conversation.created_at)),
    ]);
    Ok(item)
}

pub(super) fn conversation(item: &Item) -> Result<Conversation> {
    let customer_item = opt_map(item, "customer")?.ok_or_else(|| missing("customer"))?;
    let escalation = match opt_map(item, "escalation")? {
        Some(map) => Some(Escalation {
            queue: string(map, "queue")?,
            priority: number(map, "priority")?,
            reason: string(map, "reason")?,
        }),
        None => None,
    };
    Ok(Conversation {
        id: ConversationId::parse(&string(item, "id")?)
            .map_err(|_| Error::Corrupt("stored conversation has a malformed id".into()))?,
        channel: channel(item)?,
        customer: Customer {
            address: string(customer_item, "address")?,
            name: opt_string(customer_item, "name")?,
            verified_id: opt_string(customer_item, "verified_id")?,
        },
        state: ConversationState::parse(&string(item, "state")?)?,
        escalation,
        waiting_since: opt_number(item, "waiting_since")?,
        assignee: opt_string(item, "assignee")?,
        bot_misses: number(item, "bot_misses")?,
        bot_seq: number(item, "bot_seq")?,
        bot_context: opt_string(item, "bot_context")?
            .map(|json| {
                serde_json::from_str::<BotContext>(&json)
                    .map_err(|e| Error::Corrupt(format!("stored bot context: {e}")))
            })
            .transpose()?,
        last_seq: number(item, "last_seq")?,
        version: number(item, "version")?,
        created_at: number(item, "created_at")?,
        updated_at: number(item, "updated_at")?,
    })
}

fn customer(customer: &Customer) -> AttributeValue {
    let mut map = HashMap::from([("address".to_owned(), s(&customer.address))]);
    if let Some(name) = &customer.name {
        map.insert("name".to_owned(), s(name));
    }
    if let Some(verified_id) = &customer.verified_id {
        map.insert("verified_id".to_owned(), s(verified_id));
    }
    AttributeValue::M(map)
}

/// The bot's context as a JSON string: new variants need no attribute changes.
fn bot_context_value(context: &BotContext) -> Result<AttributeValue> {
    serde_json::to_string(context)
        .map(s)
        .map_err(|e| Error::backend("encoding a bot context", e))
}

fn escalation_value(escalation: &Escalation) -> AttributeValue {
    AttributeValue::M(HashMap::from([
        ("queue".to_owned(), s(&escalation.queue)),
        ("priority".to_owned(), n(escalation.priority)),
        ("reason".to_owned(), s(&escalation.reason)),
    ]))
}

// ---- messages ---------------------------------------------------------------------------

/// The `delivery` / `delivery_reason` attributes of a delivery state.
pub(super) fn delivery(state: &DeliveryState) -> (AttributeValue, Option<AttributeValue>) {
    match state {
        DeliveryState::Pending => (s("pending"), None),
        DeliveryState::Delivered => (s("delivered"), None),
        DeliveryState::Failed(reason) => (s("failed"), Some(s(reason))),
    }
}

fn delivery_state(item: &Item) -> Result<DeliveryState> {
    match string(item, "delivery")?.as_str() {
        "pending" => Ok(DeliveryState::Pending),
        "delivered" => Ok(DeliveryState::Delivered),
        "failed" => Ok(DeliveryState::Failed(
            opt_string(item, "delivery_reason")?.unwrap_or_default(),
        )),
        other => Err(Error::Corrupt(format!("unknown delivery state {other}"))),
    }
}

pub(super) fn message_item(message: &Message) -> Item {
    let (delivery, delivery_reason) = delivery(&message.delivery);
    let mut item = HashMap::from([
        (
            keys::PK.to_owned(),
            s(keys::conversation_pk(&message.conversation_id)),
        ),
        (keys::SK.to_owned(), s(keys::message_sk(message.seq))),
        (
            "conversation_id".to_owned(),
            s(message.conversation_id.as_str()),
        ),
        ("message_id".to_owned(), s(message.message_id.as_str())),
        ("seq".to_owned(), n(message.seq)),
        ("author".to_owned(), s(message.author.as_str())),
        ("text".to_owned(), s(&message.text)),
        ("created_at".to_owned(), n(message.created_at)),
        ("channel".to_owned(), s(message.channel.as_str())),
        ("delivery".to_owned(), delivery),
    ]);
    if let Some(agent_id) = &message.agent_id {
        item.insert("agent_id".to_owned(), s(agent_id));
    }
    if let Some(reason) = delivery_reason {
        item.insert("delivery_reason".to_owned(), reason);
    }
    if let Some(sentiment) = message.sentiment {
        item.insert("sentiment".to_owned(), n(sentiment));
    }
    if !message.quick_replies.is_empty() {
        let list = message.quick_replies.iter().map(s).collect();
        item.insert("quick_replies".to_owned(), AttributeValue::L(list));
    }
    item
}

pub(super) fn message(item: &Item) -> Result<Message> {
    let corrupt_id = |_| Error::Corrupt("stored message has a malformed id".into());
    Ok(Message {
        conversation_id: ConversationId::parse(&string(item, "conversation_id")?)
            .map_err(corrupt_id)?,
        message_id: MessageId::parse(&string(item, "message_id")?).map_err(corrupt_id)?,
        seq: number(item, "seq")?,
        author: Author::parse(&string(item, "author")?)?,
        agent_id: opt_string(item, "agent_id")?,
        text: string(item, "text")?,
        created_at: number(item, "created_at")?,
        channel: channel(item)?,
        delivery: delivery_state(item)?,
        sentiment: opt_number(item, "sentiment")?,
        quick_replies: string_list(item, "quick_replies")?,
    })
}

/// The marker that maps a message id to its seq.
pub(super) fn marker_item(message: &Message) -> Item {
    HashMap::from([
        (
            keys::PK.to_owned(),
            s(keys::conversation_pk(&message.conversation_id)),
        ),
        (keys::SK.to_owned(), s(keys::marker_sk(&message.message_id))),
        ("seq".to_owned(), n(message.seq)),
    ])
}

/// The channel stored on a conversation item (needed to build its messages).
pub(super) fn conversation_channel(item: &Item) -> Result<Channel> {
    channel(item)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ConversationKey;

    fn waiting_conversation() -> Conversation {
        let key = ConversationKey::new(Channel::Sms, "+8613800000000");
        let mut conversation = Conversation::new(
            &key,
            Customer {
                address: "+8613800000000".into(),
                name: Some("Li".into()),
                verified_id: None,
            },
            1_000,
        );
        conversation
            .escalate(
                Escalation {
                    queue: "returns".into(),
                    priority: 7,
                    reason: "customer_request".into(),
                },
                2_000,
            )
            .expect("a bot conversation escalates");
        conversation.last_seq = 3;
        conversation.version = 4;
        conversation
    }

    #[test]
    fn given_a_waiting_conversation_when_encoded_and_decoded_then_it_round_trips_with_queue_keys() {
        let original = waiting_conversation();
        let item = conversation_item(&original).expect("encodes");
        assert_eq!(conversation(&item).expect("decodes"), original);
        assert_eq!(item.get(keys::GSI1PK), Some(&s("QUEUE#returns")));
        assert!(item.contains_key(keys::GSI1SK));
    }

    #[test]
    fn given_a_claimed_conversation_when_encoded_then_queue_keys_are_removed() {
        let mut claimed = waiting_conversation();
        claimed
            .claim("alice", 3_000)
            .expect("a waiting conversation is claimable");
        let state = conversation_state(&claimed).expect("encodes");
        let gsi: Vec<_> = state
            .iter()
            .filter(|(name, _)| name.starts_with("gsi1"))
            .collect();
        assert_eq!(gsi.len(), 2);
        assert!(gsi.iter().all(|(_, value)| value.is_none()));
        assert!(
            !conversation_item(&claimed)
                .expect("encodes")
                .contains_key(keys::GSI1PK)
        );
    }

    #[test]
    fn given_a_failed_message_when_encoded_and_decoded_then_it_round_trips() {
        let conversation = waiting_conversation();
        let original = Message {
            conversation_id: conversation.id.clone(),
            message_id: MessageId::random(),
            seq: 12,
            author: Author::Agent,
            agent_id: Some("alice".into()),
            text: "您好".into(),
            created_at: 5_000,
            channel: Channel::Sms,
            delivery: DeliveryState::Failed("carrier rejected".into()),
            sentiment: Some(-0.25),
            quick_replies: vec!["退货运费谁出？".into(), "多久到账".into()],
        };
        assert_eq!(
            message(&message_item(&original)).expect("decodes"),
            original
        );
    }

    #[test]
    fn given_a_bot_context_when_encoded_and_decoded_then_it_round_trips_as_a_string() {
        let mut original = waiting_conversation();
        original.bot_context = Some(BotContext::Clarify {
            options: vec!["faq-1".into(), "faq-2".into()],
        });
        let item = conversation_item(&original).expect("encodes");
        assert!(matches!(
            item.get("bot_context"),
            Some(AttributeValue::S(_))
        ));
        assert_eq!(conversation(&item).expect("decodes"), original);
    }

    #[test]
    fn given_no_bot_context_when_encoded_then_save_removes_the_attribute() {
        let state = conversation_state(&waiting_conversation()).expect("encodes");
        let bot_context = state.iter().find(|(name, _)| *name == "bot_context");
        assert_eq!(bot_context, Some(&("bot_context", None)));
    }

    #[test]
    fn given_an_item_with_a_wrong_type_when_decoded_then_it_is_corrupt() {
        let mut item = conversation_item(&waiting_conversation()).expect("encodes");
        item.insert("version".into(), s("four"));
        assert!(matches!(conversation(&item), Err(Error::Corrupt(_))));
    }
}
