//! Creates the table, queues and bucket the adapters expect, for tests and local tools.
//! In AWS, `template.yaml` provisions the same resources; keep the two in step.
//!
//! Every function here is idempotent: calling it for a resource that exists (with the same
//! settings) succeeds and changes nothing.

use super::dynamo::GSI1;
use crate::{Error, Result};
use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
use aws_sdk_sqs::types::QueueAttributeName;
use std::time::Duration;

/// The attribute DynamoDB's TTL deletes expired items by (epoch seconds).
pub const TTL_ATTRIBUTE: &str = "expires_at";

/// How long to wait for a new table to become active.
const TABLE_READY_TIMEOUT: Duration = Duration::from_secs(120);

/// Creates the [`DynamoStore`](super::DynamoStore) table `name`: keys `pk`/`sk` (strings),
/// the `gsi1` index on `gsi1pk`/`gsi1sk` (all attributes projected), on-demand billing,
/// TTL on [`TTL_ATTRIBUTE`]. Waits until the table is active.
pub async fn create_table(client: &aws_sdk_dynamodb::Client, name: &str) -> Result<()> {
    let string_attribute = |attribute: &str| {
        AttributeDefinition::builder()
            .attribute_name(attribute)
            .attribute_type(ScalarAttributeType::S)
            .build()
    };
    let key = |attribute: &str, key_type: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(attribute)
            .key_type(key_type)
            .build()
    };
    let building = |e| Error::backend("building a table definition", e);
    let index = GlobalSecondaryIndex::builder()
        .index_name(GSI1)
        .key_schema(key("gsi1pk", KeyType::Hash).map_err(building)?)
        .key_schema(key("gsi1sk", KeyType::Range).map_err(building)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()
        .map_err(building)?;
    let created = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(string_attribute("pk").map_err(building)?)
        .attribute_definitions(string_attribute("sk").map_err(building)?)
        .attribute_definitions(string_attribute("gsi1pk").map_err(building)?)
        .attribute_definitions(string_attribute("gsi1sk").map_err(building)?)
        .key_schema(key("pk", KeyType::Hash).map_err(building)?)
        .key_schema(key("sk", KeyType::Range).map_err(building)?)
        .global_secondary_indexes(index)
        .send()
        .await;
    match created {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) =>
        {
            tracing::debug!(table = name, "table exists already");
            return Ok(());
        }
        Err(e) => return Err(Error::backend(format!("creating table {name}"), e)),
    }
    client
        .wait_until_table_exists()
        .table_name(name)
        .wait(TABLE_READY_TIMEOUT)
        .await
        .map_err(|e| Error::backend(format!("waiting for table {name}"), e))?;
    let ttl = TimeToLiveSpecification::builder()
        .attribute_name(TTL_ATTRIBUTE)
        .enabled(true)
        .build()
        .map_err(building)?;
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(ttl)
        .send()
        .await
        .map_err(|e| Error::backend(format!("enabling TTL on table {name}"), e))?;
    tracing::info!(table = name, "table created");
    Ok(())
}

/// Creates the FIFO queue `name` (which must end in `.fifo`) with content-based
/// deduplication off (kefu always sends explicit deduplication ids); returns its URL.
pub async fn create_fifo_queue(client: &aws_sdk_sqs::Client, name: &str) -> Result<String> {
    if !name.ends_with(".fifo") {
        return Err(Error::Invalid(format!(
            "FIFO queue names end in .fifo, got {name}"
        )));
    }
    let output = client
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::FifoQueue, "true")
        .attributes(QueueAttributeName::ContentBasedDeduplication, "false")
        .send()
        .await
        .map_err(|e| Error::backend(format!("creating queue {name}"), e))?;
    output
        .queue_url
        .ok_or_else(|| Error::Corrupt(format!("SQS returned no URL for queue {name}")))
}

/// Creates the FIFO dead-letter queue `dead_letter_name` and the FIFO queue `name` that
/// moves a message there when it is received more than `max_receives` times (SQS's redrive
/// policy); returns both URLs, the queue's first.
pub async fn create_fifo_queue_with_dead_letters(
    client: &aws_sdk_sqs::Client,
    name: &str,
    dead_letter_name: &str,
    max_receives: u32,
) -> Result<(String, String)> {
    let dead_letter_url = create_fifo_queue(client, dead_letter_name).await?;
    let attributes = client
        .get_queue_attributes()
        .queue_url(&dead_letter_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| Error::backend(format!("reading the ARN of {dead_letter_name}"), e))?;
    let dead_letter_arn = attributes
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .ok_or_else(|| Error::Corrupt(format!("SQS returned no ARN for {dead_letter_name}")))?;
    let redrive = serde_json::json!({
        "deadLetterTargetArn": dead_letter_arn,
        "maxReceiveCount": max_receives,
    });
    let url = create_fifo_queue(client, name).await?;
    client
        .set_queue_attributes()
        .queue_url(&url)
        .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
        .send()
        .await
        .map_err(|e| Error::backend(format!("setting the redrive policy of {name}"), e))?;
    Ok((url, dead_letter_url))
}

/// Creates the bucket `name` in the client's region.
pub async fn create_bucket(client: &aws_sdk_s3::Client, name: &str) -> Result<()> {
    let mut request = client.create_bucket().bucket(name);
    // us-east-1 is the default location and must not be named explicitly.
    if let Some(region) = client
        .config()
        .region()
        .filter(|r| r.as_ref() != "us-east-1")
    {
        let location = CreateBucketConfiguration::builder()
            .location_constraint(BucketLocationConstraint::from(region.as_ref()))
            .build();
        request = request.create_bucket_configuration(location);
    }
    match request.send().await {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_bucket_already_owned_by_you()) =>
        {
            Ok(())
        }
        Err(e) => Err(Error::backend(format!("creating bucket {name}"), e)),
    }
}
