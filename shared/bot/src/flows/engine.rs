//! The flow engine: one customer message (and the flow state saved after the last one) in,
//! one [`FlowStep`] out. Pure apart from the [`OrderSource`] calls.

use super::intent::{self, Intent};
use super::replies::{self, Lang};
use kefu::domain::{BotContext, Customer};
use kefu::domain::{CancelOutcome, Order, ReturnKind};
use kefu::ports::OrderSource;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Flow names stored in [`BotContext::Flow`].
const STATUS: &str = "order_status";
const CANCEL: &str = "order_cancel";
const RETURN: &str = "order_return";

/// Slots a flow waits for.
const SLOT_ORDER_ID: &str = "order_id";
const SLOT_CONFIRM: &str = "confirm";
const SLOT_REASON: &str = "reason";

/// Keys in [`BotContext::Flow::filled`] besides the slots.
const KEY_LANG: &str = "lang";
const KEY_KIND: &str = "kind";

/// Handoff reasons a [`FlowStep`] can carry.
pub mod handoff {
    /// The customer could not give a usable order number (or one they own) in time.
    pub const FLOW_FAILED: &str = "flow_failed";
    /// The order API failed; a person takes over.
    pub const ORDER_API_ERROR: &str = "order_api_error";
    /// A return or exchange was requested; agents arrange it.
    pub const RETURN_REQUEST: &str = "return_request";
}

/// Tuning for the flows.
#[derive(Debug, Clone)]
pub struct FlowConfig {
    /// Failed attempts at giving an order number before handing off.
    pub max_tries: u32,
}

impl Default for FlowConfig {
    fn default() -> Self {
        Self { max_tries: 2 }
    }
}

/// What the bot does with one message that belongs to a flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowStep {
    /// The reply to send, in the customer's language.
    pub reply: String,
    /// The conversation's next `bot_context`: `Some` while the flow waits for an answer,
    /// `None` when it is over.
    pub next: Option<BotContext>,
    /// Hand the conversation to a person, with this reason (see [`handoff`]).
    pub handoff: Option<&'static str>,
    /// A one-line record for agents (e.g. the return request), to store beside the reply.
    pub note: Option<String>,
    /// The flow did not understand the message (no order number in it): use this step only
    /// if nothing else does. The message may be another question ("can I change my
    /// address?") that the FAQ or small talk answers, and then the flow keeps waiting.
    pub fallback: bool,
}

/// The order flows: status and tracking, cancelling, returns and exchanges.
pub struct Flows {
    orders: Arc<dyn OrderSource>,
    config: FlowConfig,
}

/// One customer message, as the flows see it.
#[derive(Debug, Clone, Copy)]
pub struct FlowInput<'a> {
    /// What the customer wrote.
    pub text: &'a str,
    /// Who wrote it (orders are shown to their owner only).
    pub customer: &'a Customer,
    /// The message's id: the idempotency key of any change it makes in the shop, so a
    /// redelivered message cannot cancel or return twice.
    pub request_id: &'a str,
}

/// A flow in progress, decoded from [`BotContext::Flow`].
#[derive(Debug, Clone)]
struct State {
    intent: Intent,
    tries: u32,
    lang: Lang,
    filled: BTreeMap<String, String>,
}

impl Flows {
    /// Flows over the shop's order system.
    pub fn new(orders: Arc<dyn OrderSource>, config: FlowConfig) -> Self {
        Self { orders, config }
    }

    /// Handles one customer message. `context` is the conversation's current `bot_context`.
    ///
    /// `None` means the message is not for a flow: let the FAQ answer it, and clear a
    /// [`BotContext::Flow`] if one was passed in (the flow was abandoned). `Some` carries the
    /// reply; store `next` as the new `bot_context`, the `note` as a record for agents, and
    /// hand off when `handoff` says so. A `fallback` step is the flow asking again: answer
    /// the message another way if possible (keeping the flow's context), else use it. Check
    /// for an explicit request for a person first.
    pub async fn handle(
        &self,
        context: Option<&BotContext>,
        input: FlowInput<'_>,
    ) -> Option<FlowStep> {
        match context.and_then(State::decode) {
            Some((state, slot)) => self.resume(state, &slot, input).await,
            None => {
                let intent = intent::detect(input.text)?;
                Some(self.start(intent, input).await)
            }
        }
    }

    async fn start(&self, intent: Intent, input: FlowInput<'_>) -> FlowStep {
        let text = input.text;
        let mut state = State {
            intent,
            tries: 0,
            lang: Lang::of(text, None),
            filled: BTreeMap::new(),
        };
        if let Some(reason) = intent::reason_in(text) {
            state.filled.insert(SLOT_REASON.into(), reason);
        }
        match intent::order_id(text) {
            Some(id) => self.with_order(state, id, input).await,
            None => {
                let ask = replies::ask_order_id(state.lang);
                state.wait(SLOT_ORDER_ID, ask)
            }
        }
    }

    async fn resume(&self, mut state: State, slot: &str, input: FlowInput<'_>) -> Option<FlowStep> {
        let text = input.text;
        state.lang = Lang::of(text, Some(state.lang));
        let new_intent = intent::detect(text);
        let id = intent::order_id(text);
        match slot {
            SLOT_ORDER_ID => {
                if let Some(other) = new_intent.filter(|i| *i != state.intent) {
                    return Some(self.start(other, input).await);
                }
                if let Some(id) = id {
                    return Some(self.with_order(state, id, input).await);
                }
                if !intent::on_topic(text) && state.tries > 0 {
                    // Asked twice and the customer moved on: let the FAQ take this one.
                    return None;
                }
                let again = replies::ask_order_id_again(state.lang);
                Some(FlowStep {
                    fallback: true,
                    ..self.failed_try(state, SLOT_ORDER_ID, again)
                })
            }
            SLOT_CONFIRM => match intent::confirmation(text) {
                Some(true) => Some(self.cancel(&state, input.request_id).await),
                Some(false) => Some(done(replies::kept(state.lang, state.order_id()))),
                None => match new_intent {
                    Some(other) => Some(self.start(other, input).await),
                    None => None,
                },
            },
            SLOT_REASON => {
                // A different order number with a request starts over; anything else is the
                // reason, even if it mentions the parcel ("快递到了就坏了").
                if let (Some(other), Some(id)) = (new_intent, &id)
                    && id != state.order_id()
                {
                    return Some(self.start(other, input).await);
                }
                match intent::clean_reason(text) {
                    Some(reason) => {
                        state.filled.insert(SLOT_REASON.into(), reason);
                        Some(self.submit_return(&state, input.request_id).await)
                    }
                    None => {
                        let kind = state.kind();
                        let again = replies::ask_reason(state.lang, kind);
                        Some(self.failed_try(state, SLOT_REASON, again))
                    }
                }
            }
            _ => None,
        }
    }

    /// Looks the order up and, if the customer owns it, acts on it. An unknown order and
    /// someone else's order get the same answer.
    async fn with_order(&self, mut state: State, id: String, input: FlowInput<'_>) -> FlowStep {
        let order = match self.orders.order(&id).await {
            Ok(order) => order.filter(|o| o.owner.is(input.customer)),
            Err(error) => return api_error(state.lang, &error),
        };
        let Some(order) = order else {
            let reply = replies::not_found(state.lang, &id);
            return self.failed_try(state, SLOT_ORDER_ID, reply);
        };
        state.tries = 0;
        state.filled.insert(SLOT_ORDER_ID.into(), order.id.clone());
        self.act(state, &order, input.request_id).await
    }

    async fn act(&self, state: State, order: &Order, request_id: &str) -> FlowStep {
        let lang = state.lang;
        match state.intent {
            Intent::Status => done(replies::order_status(lang, order)),
            Intent::Cancel if order.status.cancellable() => {
                state.wait(SLOT_CONFIRM, replies::confirm_cancel(lang, &order.id))
            }
            Intent::Cancel => done(replies::cannot_cancel(lang, &order.id, order.status)),
            Intent::Return(_) if !order.status.returnable() => {
                done(replies::cannot_return(lang, &order.id, order.status))
            }
            Intent::Return(_) if state.filled.contains_key(SLOT_REASON) => {
                self.submit_return(&state, request_id).await
            }
            Intent::Return(kind) => state.wait(SLOT_REASON, replies::ask_reason(lang, kind)),
        }
    }

    async fn cancel(&self, state: &State, request_id: &str) -> FlowStep {
        let (lang, id) = (state.lang, state.order_id());
        match self.orders.cancel(id, request_id).await {
            Ok(CancelOutcome::Cancelled) => done(replies::cancelled(lang, id)),
            Ok(CancelOutcome::TooLate { status }) => done(replies::cannot_cancel(lang, id, status)),
            Ok(CancelOutcome::NotFound) => done(replies::not_found(lang, id)),
            Err(error) => api_error(lang, &error),
        }
    }

    async fn submit_return(&self, state: &State, request_id: &str) -> FlowStep {
        let (lang, id, kind) = (state.lang, state.order_id(), state.kind());
        let reason = state.filled.get(SLOT_REASON).map_or("", String::as_str);
        match self
            .orders
            .request_return(id, kind, reason, request_id)
            .await
        {
            Ok(ticket) => FlowStep {
                reply: replies::return_requested(lang, kind, &ticket.ticket_id),
                next: None,
                handoff: Some(handoff::RETURN_REQUEST),
                note: Some(replies::return_note(kind, &ticket.ticket_id, id, reason)),
                fallback: false,
            },
            Err(error) => api_error(lang, &error),
        }
    }

    /// Counts a failed attempt at filling `slot`: ask again with `reply`, or hand off once
    /// the attempts are used up.
    fn failed_try(&self, mut state: State, slot: &str, reply: String) -> FlowStep {
        state.tries += 1;
        if state.tries >= self.config.max_tries {
            return FlowStep {
                reply: replies::gave_up(state.lang),
                next: None,
                handoff: Some(handoff::FLOW_FAILED),
                note: None,
                fallback: false,
            };
        }
        state.wait(slot, reply)
    }
}

impl State {
    /// The flow waiting in `context`, with the slot it waits for; `None` for other contexts
    /// and for flows this version does not know.
    fn decode(context: &BotContext) -> Option<(State, String)> {
        let BotContext::Flow {
            flow,
            slot,
            tries,
            filled,
        } = context
        else {
            return None;
        };
        let intent = match flow.as_str() {
            STATUS => Intent::Status,
            CANCEL => Intent::Cancel,
            RETURN => Intent::Return(ReturnKind::parse(filled.get(KEY_KIND)?)?),
            _ => return None,
        };
        let lang = filled
            .get(KEY_LANG)
            .and_then(|l| Lang::parse(l))
            .unwrap_or(Lang::En);
        let state = State {
            intent,
            tries: *tries,
            lang,
            filled: filled.clone(),
        };
        Some((state, slot.clone()))
    }

    /// Replies with `reply` and waits for `slot` in the next message.
    fn wait(mut self, slot: &str, reply: String) -> FlowStep {
        let flow = match self.intent {
            Intent::Status => STATUS,
            Intent::Cancel => CANCEL,
            Intent::Return(kind) => {
                self.filled.insert(KEY_KIND.into(), kind.as_str().into());
                RETURN
            }
        };
        self.filled
            .insert(KEY_LANG.into(), self.lang.as_str().into());
        FlowStep {
            reply,
            next: Some(BotContext::Flow {
                flow: flow.into(),
                slot: slot.into(),
                tries: self.tries,
                filled: self.filled,
            }),
            handoff: None,
            note: None,
            fallback: false,
        }
    }

    fn order_id(&self) -> &str {
        self.filled.get(SLOT_ORDER_ID).map_or("", String::as_str)
    }

    fn kind(&self) -> ReturnKind {
        match self.intent {
            Intent::Return(kind) => kind,
            _ => ReturnKind::Return,
        }
    }
}

fn done(reply: String) -> FlowStep {
    FlowStep {
        reply,
        next: None,
        handoff: None,
        note: None,
        fallback: false,
    }
}

fn api_error(lang: Lang, error: &kefu::domain::OrderError) -> FlowStep {
    tracing::warn!(error = %kefu::cause_chain(error), "order API failed; handing off");
    FlowStep {
        reply: replies::api_error(lang),
        next: None,
        handoff: Some(handoff::ORDER_API_ERROR),
        note: None,
        fallback: false,
    }
}
