//! The FAQ indexer Lambda: an S3 `ObjectCreated` trigger on `faq/source/`. Each new source
//! is parsed strictly, trained into an index bundle (the matcher's model and a tantivy index
//! of the paraphrases) and published as a new immutable version
//! with a `CURRENT` pointer (see [`kefu_bot::library::publish`]), calibrated on the
//! source's labelled validation file (`faq/validation/<name>.jsonl`) when there is one, for
//! the wrong-answer rate `KEFU_FAQ_TARGET_WRONG_RATE`. A malformed source or validation file
//! fails the invocation with its line-numbered report, and the current version stays.

use aws_lambda_events::event::s3::S3Event;
use kefu::ports::BlobStore;
use kefu_bot::calibrate::TargetWrongRate;
use kefu_bot::library::publish_with;
use lambda_runtime::LambdaEvent;

/// Where FAQ sources live in the bucket.
pub const SOURCE_PREFIX: &str = "faq/source/";

/// Publishes every FAQ source named in the event, calibrated for `target` wrong answers;
/// returns the published versions.
pub async fn handle(
    blobs: &dyn BlobStore,
    target: TargetWrongRate,
    event: LambdaEvent<S3Event>,
) -> Result<serde_json::Value, lambda_runtime::Error> {
    let mut versions = Vec::new();
    for record in &event.payload.records {
        let Some(raw_key) = record.s3.object.key.as_deref() else {
            continue;
        };
        let key = decode_key(raw_key);
        if !key.starts_with(SOURCE_PREFIX) {
            tracing::info!(%key, "not a FAQ source; ignored");
            continue;
        }
        let published = publish_with(blobs, &key, target).await?;
        tracing::info!(%key, version = %published.version, entries = published.entries, "published");
        versions.push(published.version);
    }
    Ok(serde_json::json!({ "published": versions }))
}

/// S3 event keys are URL-encoded with `+` for spaces.
fn decode_key(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push((hi * 16 + lo) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::decode_key;

    #[test]
    fn decodes_s3_event_keys() {
        assert_eq!(
            decode_key("faq/source/my+faq%20v2.jsonl"),
            "faq/source/my faq v2.jsonl"
        );
        assert_eq!(
            decode_key("faq/source/%E5%B8%B8%E8%A7%81.csv"),
            "faq/source/常见.csv"
        );
        assert_eq!(decode_key("faq/source/100%"), "faq/source/100%");
    }
}
