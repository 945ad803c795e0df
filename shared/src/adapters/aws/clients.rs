//! One place that turns the environment's SDK configuration into adapters, so Lambda mains
//! build every client once at cold start and never import an SDK crate themselves.

use super::{DynamoStore, S3BlobStore, Secrets, SqsMessageQueue, s3_client, sdk_config};
use aws_config::SdkConfig;

/// The SDK configuration of this process and the clients built from it.
#[derive(Clone, Debug)]
pub struct Aws {
    config: SdkConfig,
    dynamodb: aws_sdk_dynamodb::Client,
    sqs: aws_sdk_sqs::Client,
    s3: aws_sdk_s3::Client,
    secrets: aws_sdk_secretsmanager::Client,
}

impl Aws {
    /// Reads region, credentials and endpoint overrides from the environment (see
    /// [`sdk_config`]) and builds the clients.
    pub async fn from_env() -> Self {
        Self::from_config(&sdk_config().await)
    }

    /// Builds the clients for `config`.
    pub fn from_config(config: &SdkConfig) -> Self {
        Self {
            config: config.clone(),
            dynamodb: aws_sdk_dynamodb::Client::new(config),
            sqs: aws_sdk_sqs::Client::new(config),
            s3: s3_client(config),
            secrets: aws_sdk_secretsmanager::Client::new(config),
        }
    }

    /// Reads the secrets the environment names (`KEFU_<SETTING>_SECRET_ID`, see [`Secrets`])
    /// and publishes them as settings. Call it first at cold start, before reading any
    /// other setting; a secret that cannot be read stops the function.
    pub async fn load_secrets(&self) -> crate::Result<Secrets> {
        let vars = std::env::vars_os().filter_map(|(name, value)| {
            Some((name.into_string().ok()?, value.into_string().ok()?))
        });
        let secrets = Secrets::from_vars(self.secrets.clone(), vars)?;
        secrets.load().await?;
        Ok(secrets)
    }

    /// The secrets named by `vars`, not read yet (tests build them by hand).
    pub fn secrets(
        &self,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> crate::Result<Secrets> {
        Secrets::from_vars(self.secrets.clone(), vars)
    }

    /// The store over DynamoDB table `table`.
    pub fn store(&self, table: &str) -> DynamoStore {
        DynamoStore::new(self.dynamodb.clone(), table)
    }

    /// The FIFO queue at `queue_url`.
    pub fn queue(&self, queue_url: &str) -> SqsMessageQueue {
        SqsMessageQueue::new(self.sqs.clone(), queue_url)
    }

    /// The blob store over bucket `bucket` (keys as given, no prefix).
    pub fn blobs(&self, bucket: &str) -> S3BlobStore {
        S3BlobStore::new(self.s3.clone(), bucket, "")
    }

    /// Checks agents' Cognito access tokens with `GetUser` (see [`super::CognitoAccounts`]).
    #[cfg(feature = "cognito")]
    pub fn cognito_accounts(&self) -> super::CognitoAccounts {
        super::CognitoAccounts::new(aws_sdk_cognitoidentityprovider::Client::new(&self.config))
    }

    /// Sends email through SESv2, in `configuration_set` when given.
    #[cfg(feature = "aws-senders")]
    pub fn ses_transport(&self, configuration_set: Option<String>) -> super::SesTransport {
        super::SesTransport::new(&self.config, configuration_set)
    }

    /// The SDK configuration the clients were built from.
    pub fn sdk_config(&self) -> &SdkConfig {
        &self.config
    }
}
