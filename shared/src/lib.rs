//! kefu (客服) core library: the domain, the ports it talks through, the adapters behind
//! them (AWS and embedded), the channels, dispatch, and the HTTP handlers shared by the
//! Lambda functions and the local runner. The bot and its FAQ engine are `kefu-bot` and
//! `kefu-faq`, above this crate: nothing here may depend on them, so the webhooks and the
//! HTTP APIs do not carry the engine.
//!
//! Which adapter to choose: the `aws` feature builds the SQS / DynamoDB / S3 adapters used
//! in Lambda; the `embedded` feature builds the SQLite-backed adapters used by the local
//! runner and by fast tests. Both pass the same contract tests (see `tests/`).
#![warn(missing_docs)]

pub mod adapters;
pub mod agent;
pub mod auth;
pub mod channels;
pub mod config;
pub mod consumer;
pub mod dispatch;
pub mod domain;
mod error;
pub mod http;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod ports;
pub mod render;
pub mod sentiment;
pub mod telemetry;
pub mod web;

pub use error::{BoxError, Error, Result, cause_chain};
