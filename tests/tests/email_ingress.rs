//! Email ingress over the AWS adapters against moto: the raw mail where SES's S3 action
//! puts it (`email/inbound/<messageId>` in the bucket), the SES receipt event from
//! `infra/events/ses-receipt.json` handled with the S3 blob store rooted at `email/`, the
//! SQS FIFO inbound queue and the DynamoDB idempotency guard. Asserts what SQS, S3 and
//! DynamoDB hold afterwards. A mail whose sender fails authentication leaves all three
//! untouched.

mod support;

use aws_sdk_sqs::types::MessageSystemAttributeName;
use kefu::Error;
use kefu::adapters::aws::{DynamoStore, S3BlobStore, SqsMessageQueue};
use kefu::channels::email::{
    EmailConfig, EmailIngress, MailThread, Received, SesEvent, handle_ses_event,
};
use kefu::domain::{Channel, ConversationKey, InboundMessage};
use kefu::ports::{BlobStore, IdempotencyGuard};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use support::moto;

const PREFIX: &str = "email/";
const SES_ID: &str = "o3vrnil0e2ic28trm7dfhrc2v0cnbeccl4nbp0g1";

fn workspace_file(path: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)).unwrap()
}

fn raw_mail() -> Vec<u8> {
    workspace_file("shared/src/channels/email/testdata/pdf_attachment.eml")
}

fn event_json() -> Value {
    serde_json::from_slice(&workspace_file("infra/events/ses-receipt.json")).unwrap()
}

fn event_with_id(id: &str) -> SesEvent {
    let mut event = event_json();
    event["Records"][0]["ses"]["mail"]["messageId"] = Value::from(id);
    serde_json::from_value(event).unwrap()
}

struct Aws {
    s3: aws_sdk_s3::Client,
    bucket: String,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    guard: DynamoStore,
    mail: S3BlobStore,
    ingress: EmailIngress,
}

async fn aws() -> Aws {
    let (s3, bucket) = moto::fresh_bucket().await;
    let (sqs, queue_url) = moto::fresh_fifo_queue().await;
    let (dynamodb, table) = moto::fresh_table().await;
    let guard = DynamoStore::new(dynamodb, table);
    let mail = S3BlobStore::new(s3.clone(), bucket.clone(), PREFIX);
    let ingress = EmailIngress::new(
        Arc::new(SqsMessageQueue::new(sqs.clone(), queue_url.clone())),
        Arc::new(mail.clone()),
        Arc::new(guard.clone()),
        EmailConfig::new("support@shop.example", None).unwrap(),
    );
    Aws {
        s3,
        bucket,
        sqs,
        queue_url,
        guard,
        mail,
        ingress,
    }
}

impl Aws {
    /// What SES's S3 action does: the raw mail at `<prefix>inbound/<messageId>`.
    async fn store_raw_mail(&self, id: &str) {
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(format!("{PREFIX}inbound/{id}"))
            .body(raw_mail().into())
            .send()
            .await
            .unwrap();
    }

    async fn object(&self, key: &str) -> Vec<u8> {
        self.s3
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{key}: {e:?}"))
            .body
            .collect()
            .await
            .unwrap()
            .into_bytes()
            .to_vec()
    }

    async fn queued(&self) -> Vec<aws_sdk_sqs::types::Message> {
        self.sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default()
    }
}

fn attribute(message: &aws_sdk_sqs::types::Message, name: MessageSystemAttributeName) -> &str {
    message
        .attributes()
        .and_then(|attributes| attributes.get(&name))
        .map(String::as_str)
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn given_a_mail_stored_by_ses_when_its_event_is_handled_then_sqs_has_the_envelope_and_s3_the_attachment()
 {
    let aws = aws().await;
    aws.store_raw_mail(SES_ID).await;

    let results = handle_ses_event(&aws.ingress, &aws.mail, &event_with_id(SES_ID))
        .await
        .unwrap();
    let [Received::Queued(envelope)] = results.as_slice() else {
        panic!("expected one queued mail, got {results:?}");
    };

    let queued = aws.queued().await;
    let [message] = queued.as_slice() else {
        panic!("expected one SQS message, got {}", queued.len());
    };
    let body = InboundMessage::from_json(message.body().unwrap()).unwrap();
    assert_eq!(&body, envelope);
    let conversation =
        ConversationKey::new(Channel::Email, "orders@acme-retail.example").conversation_id();
    assert_eq!(body.conversation_id, conversation);
    assert_eq!(body.channel, Channel::Email);
    assert_eq!(body.customer.name.as_deref(), Some("Acme Retail Accounts"));
    assert_eq!(body.received_at, 1_736_514_237_412);
    assert_eq!(
        attribute(message, MessageSystemAttributeName::MessageGroupId),
        conversation.as_str()
    );
    assert_eq!(
        attribute(message, MessageSystemAttributeName::MessageDeduplicationId),
        body.message_id.as_str()
    );

    let key = format!("{PREFIX}attachments/{}/1-invoice-8902.pdf", body.message_id);
    let pdf = aws.object(&key).await;
    assert!(pdf.starts_with(b"%PDF-1.4\n") && pdf.ends_with(b"%%EOF\n"));
    assert!(
        body.text.ends_with(&format!(
            "[附件 attachment: invoice-8902.pdf, application/pdf, {} B]",
            pdf.len()
        )),
        "{}",
        body.text
    );

    let thread = aws
        .guard
        .get(&MailThread::key_for_message(&body.message_id))
        .await
        .unwrap()
        .expect("the thread record for the reply");
    let thread: MailThread = serde_json::from_str(&thread).unwrap();
    assert_eq!(
        thread.message_id.as_deref(),
        Some("20250110130355.4f1c2a@acme-retail.example")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn given_a_replayed_event_and_a_second_ses_delivery_of_the_mail_when_handled_then_sqs_has_one_message()
 {
    let aws = aws().await;
    aws.store_raw_mail(SES_ID).await;
    aws.store_raw_mail("second0ses0delivery0id").await;

    let mut ids = Vec::new();
    for event in [
        event_with_id(SES_ID),
        event_with_id(SES_ID),
        event_with_id("second0ses0delivery0id"),
    ] {
        match handle_ses_event(&aws.ingress, &aws.mail, &event)
            .await
            .unwrap()
            .as_slice()
        {
            [Received::Queued(envelope)] => ids.push(envelope.message_id.clone()),
            other => panic!("expected one queued mail, got {other:?}"),
        }
    }
    assert!(ids.iter().all(|id| id == &ids[0]), "{ids:?}");
    assert_eq!(aws.queued().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn given_an_event_whose_raw_mail_is_not_in_s3_when_handled_then_not_found_and_nothing_queued()
{
    let aws = aws().await;
    let result = handle_ses_event(&aws.ingress, &aws.mail, &event_with_id(SES_ID)).await;
    assert!(matches!(result, Err(Error::NotFound(_))), "{result:?}");
    assert!(aws.queued().await.is_empty());
    assert!(aws.mail.list("attachments/").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn given_a_mail_whose_sender_fails_authentication_when_its_event_is_handled_then_dropped_and_sqs_s3_dynamodb_untouched()
 {
    let aws = aws().await;
    aws.store_raw_mail(SES_ID).await;
    let conversation =
        ConversationKey::new(Channel::Email, "orders@acme-retail.example").conversation_id();
    // A forged From: DMARC fails; or the domain publishes no DMARC record (GRAY) and
    // both SPF and DKIM fail.
    for (dmarc, spf, dkim) in [("FAIL", "PASS", "PASS"), ("GRAY", "FAIL", "FAIL")] {
        let mut event = event_json();
        let receipt = &mut event["Records"][0]["ses"]["receipt"];
        receipt["dmarcVerdict"]["status"] = Value::from(dmarc);
        receipt["spfVerdict"]["status"] = Value::from(spf);
        receipt["dkimVerdict"]["status"] = Value::from(dkim);
        let event: SesEvent = serde_json::from_value(event).unwrap();
        let results = handle_ses_event(&aws.ingress, &aws.mail, &event)
            .await
            .unwrap();
        assert_eq!(
            results,
            [Received::Dropped("unauthenticated")],
            "DMARC {dmarc}, SPF {spf}, DKIM {dkim}"
        );
    }
    assert!(aws.queued().await.is_empty());
    assert!(aws.mail.list("attachments/").await.unwrap().is_empty());
    let thread = aws
        .guard
        .get(&MailThread::key_for_conversation(&conversation))
        .await
        .unwrap();
    assert_eq!(thread, None);
}
