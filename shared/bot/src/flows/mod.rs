//! Task flows for what a static FAQ cannot answer: order status and tracking, cancelling an
//! order that has not shipped, and starting a return or exchange.
//!
//! - The orders are `kefu::domain`'s ([`Order`], [`OrderError`]): the wire contract of
//!   `docs/order-api.md`.
//! - `intent`: which task a message asks for, and the order number in it.
//! - `engine`: [`Flows`], multi-turn slot filling over [`kefu::domain::BotContext::Flow`],
//!   with the ownership rule: an order is shown only to the customer who placed it.
//! - `replies`: what the flows say, in Chinese or English.
//!
//! The orders come through the [`kefu::ports::OrderSource`] port:
//! `HttpOrderSource` (feature `order-api`) calls the shop's API,
//! [`kefu::adapters::demo_orders::DemoOrderSource`] serves sample orders to the local runner.

mod engine;
mod intent;
mod replies;
#[cfg(test)]
mod tests;

pub use engine::{FlowConfig, FlowInput, FlowStep, Flows, handoff};
pub use kefu::domain::{
    CancelOutcome, Order, OrderError, OrderItem, OrderOwner, OrderStatus, ReturnKind, ReturnTicket,
    TrackingEvent,
};
