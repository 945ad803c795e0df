//! AWS adapters: SQS FIFO queues, one DynamoDB table, one S3 bucket, over the official SDK.
//!
//! This module is the only place in kefu that imports `aws-sdk-*`. Lambda mains build the
//! SDK clients once at cold start, usually through [`Aws::from_env`] (or [`sdk_config`] and
//! [`s3_client`] by hand), and get the adapters from there.
//!
//! | Port | Adapter |
//! |---|---|
//! | [`MessageQueue`](crate::ports::MessageQueue) | [`SqsMessageQueue`] |
//! | [`ConversationStore`](crate::ports::ConversationStore), [`WorkQueue`](crate::ports::WorkQueue), [`IdempotencyGuard`](crate::ports::IdempotencyGuard), [`AgentDirectory`](crate::ports::AgentDirectory), [`Leases`](crate::ports::Leases) | [`DynamoStore`] |
//! | [`BlobStore`](crate::ports::BlobStore) | [`S3BlobStore`] |
//! | secret settings ([`crate::config`]) | [`Secrets`] (Secrets Manager), with [`Rebuilt`] and [`RetryOnAuthFailure`] for rotation |
//! | [`AccountCheck`](crate::ports::AccountCheck) (feature `cognito`) | `CognitoAccounts` (`GetUser`) |
//! | [`MailTransport`](crate::ports::MailTransport) (feature `aws-senders`) | `SesTransport` (SESv2) |
//! | [`ChannelSender`](crate::ports::ChannelSender) for SMS (feature `aws-senders`) | `SnsSmsSender` (SNS `Publish`) |
//!
//! [`provision`] creates the table, queues and bucket for tests and local tools; in AWS,
//! `template.yaml` does.

mod clients;
#[cfg(feature = "cognito")]
mod cognito;
mod config;
mod dynamo;
pub mod provision;
mod s3;
mod secrets;
#[cfg(feature = "aws-senders")]
mod ses;
#[cfg(feature = "aws-senders")]
mod sns_sms;
mod sqs;

pub use clients::Aws;
#[cfg(feature = "cognito")]
pub use cognito::CognitoAccounts;
pub use config::{FORCE_PATH_STYLE_ENV, s3_client, sdk_config};
pub use dynamo::{DynamoStore, PARTITION_PREFIXES};
pub use s3::S3BlobStore;
pub use secrets::{MIN_REFRESH_INTERVAL, Rebuilt, RetryOnAuthFailure, SECRET_ID_SUFFIX, Secrets};
#[cfg(feature = "aws-senders")]
pub use ses::SesTransport;
#[cfg(feature = "aws-senders")]
pub use sns_sms::{MAX_PUBLISH_CHARS, SnsSmsSender};
pub use sqs::SqsMessageQueue;
