//! AWS adapters: SQS FIFO queues, one DynamoDB table, one S3 bucket, over the official SDK.
//!
//! This module is the only place in kefu that imports `aws-sdk-*`. Lambda mains build the
//! SDK clients once at cold start, usually through [`Aws::from_env`] (or [`sdk_config`] and
//! [`s3_client`] by hand), and get the adapters from there.
//!
//! | Port | Adapter |
//! |---|---|
//! | [`MessageQueue`](crate::ports::MessageQueue) | [`SqsMessageQueue`] |
//! | [`ConversationStore`](crate::ports::ConversationStore), [`WorkQueue`](crate::ports::WorkQueue), [`IdempotencyGuard`](crate::ports::IdempotencyGuard), [`AgentDirectory`](crate::ports::AgentDirectory) | [`DynamoStore`] |
//! | [`BlobStore`](crate::ports::BlobStore) | [`S3BlobStore`] |
//!
//! [`provision`] creates the table, queues and bucket for tests and local tools; in AWS,
//! `template.yaml` does.

mod clients;
mod config;
mod dynamo;
pub mod provision;
mod s3;
mod sqs;

pub use clients::Aws;
pub use config::{FORCE_PATH_STYLE_ENV, s3_client, sdk_config};
pub use dynamo::DynamoStore;
pub use s3::S3BlobStore;
pub use sqs::SqsMessageQueue;
