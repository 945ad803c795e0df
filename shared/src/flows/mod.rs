//! Task flows for what a static FAQ cannot answer: order status and tracking, cancelling an
//! order that has not shipped, and starting a return or exchange.
//!
//! - [`order`]: orders as the shop's order API describes them (the wire contract of
//!   `docs/order-api.md`) and [`OrderError`].
//! - `intent`: which task a message asks for, and the order number in it.
//! - `engine`: [`Flows`], multi-turn slot filling over [`crate::domain::BotContext::Flow`],
//!   with the ownership rule: an order is shown only to the customer who placed it.
//! - `replies`: what the flows say, in Chinese or English.
//!
//! The orders come through the [`crate::ports::OrderSource`] port:
//! `HttpOrderSource` (feature `order-api`) calls the shop's API,
//! [`crate::adapters::demo_orders::DemoOrderSource`] serves sample orders to the local runner.

mod engine;
mod intent;
pub mod order;
mod replies;
#[cfg(test)]
mod tests;

pub use engine::{FlowConfig, FlowInput, FlowStep, Flows, handoff};
pub use order::{
    CancelOutcome, Order, OrderError, OrderItem, OrderOwner, OrderStatus, ReturnKind, ReturnTicket,
    TrackingEvent,
};
