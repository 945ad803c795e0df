//! Aliyun SMS upstream push (短信上行): `POST /sms/aliyun/{token}` with a JSON array of
//! received SMS. Aliyun documents no request signature, so the URL carries a secret token
//! (`KEFU_ALIYUN_SMS_TOKEN`): a wrong one gets the 404 of an unknown path. Keywords are
//! recorded here; their replies come from the carrier (退订 / TD are handled by Chinese
//! carriers), since this push has no reply channel.

use super::SmsState;
use super::ingress::{Outcome, Provider, Received, accept};
use super::phone::PhoneNumber;
use crate::domain::Millis;
use crate::http::ApiError;
use axum::body::Bytes;
use axum::extract::{Path, State};
use chrono::{FixedOffset, NaiveDateTime, TimeZone};
use serde::Deserialize;

/// The route of the push, with the token as its last segment.
pub const PATH: &str = "/sms/aliyun/{token}";

/// One pushed SMS.
#[derive(Debug, Deserialize)]
struct Upstream {
    phone_number: String,
    content: String,
    /// `YYYY-MM-DD HH:MM:SS`, Beijing time.
    send_time: String,
    #[allow(dead_code)] // part of the documented shape; the sign's extension code
    #[serde(default)]
    dest_code: Option<String>,
    /// A number in Aliyun's examples; accepted as a string too.
    sequence_id: serde_json::Value,
}

/// Most SMS accepted in one push.
const MAX_BATCH: usize = 100;

/// `POST /sms/aliyun/{token}`.
pub(super) async fn webhook(
    State(state): State<SmsState>,
    Path(token): Path<String>,
    body: Bytes,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let authorised =
        state.config.aliyun.as_ref().is_some_and(|aliyun| {
            super::constant_time_eq(token.as_bytes(), aliyun.token.as_bytes())
        });
    if !authorised {
        return Err(ApiError::not_found("no such route"));
    }
    let batch: Vec<Upstream> = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("expected a JSON array of SMS: {e}")))?;
    if batch.len() > MAX_BATCH {
        return Err(ApiError::bad_request(format!(
            "{} SMS in one push; at most {MAX_BATCH} are accepted",
            batch.len()
        )));
    }
    // Check every item before queueing any: a bad push changes nothing.
    let received = batch
        .into_iter()
        .enumerate()
        .map(|(n, item)| {
            normalise(item, &state.config.default_country)
                .map_err(|reason| ApiError::bad_request(format!("item {n}: {reason}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    for sms in received {
        if let Outcome::Reply(_) = accept(&state, sms).await? {
            tracing::info!("SMS keyword recorded; the carrier answers it");
        }
    }
    Ok(axum::Json(
        serde_json::json!({"code": 0, "msg": "接收成功"}),
    ))
}

fn normalise(item: Upstream, default_country: &str) -> Result<Received, String> {
    let sequence_id = match &item.sequence_id {
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::String(s) if !s.trim().is_empty() => s.trim().to_owned(),
        _ => return Err("sequence_id must be a number or a non-empty string".into()),
    };
    if sequence_id.len() > 64
        || !sequence_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err("sequence_id is malformed".into());
    }
    let from = PhoneNumber::parse(&item.phone_number, default_country)
        .map_err(|e| format!("phone_number: {e}"))?;
    Ok(Received {
        provider: Provider::Aliyun,
        from,
        platform_id: sequence_id,
        text: item.content.trim().to_owned(),
        received_at: beijing_time(&item.send_time)?,
    })
}

/// Parses `YYYY-MM-DD HH:MM:SS` in Beijing time (UTC+8).
fn beijing_time(text: &str) -> Result<Millis, String> {
    let local = NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%d %H:%M:%S")
        .map_err(|_| format!("send_time {text:?} is not YYYY-MM-DD HH:MM:SS"))?;
    let beijing = FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset");
    beijing
        .from_local_datetime(&local)
        .single()
        .map(|t| t.timestamp_millis())
        .ok_or_else(|| format!("send_time {text:?} does not exist"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(json: serde_json::Value) -> Upstream {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn given_a_pushed_sms_when_normalised_then_e164_sequence_id_and_utc_time() {
        let sms = normalise(
            item(serde_json::json!({
                "phone_number": "13800138000",
                "content": " 在吗 ",
                "send_time": "2024-05-01 08:00:00",
                "dest_code": "1234",
                "sequence_id": 1234567
            })),
            "86",
        )
        .unwrap();
        assert_eq!(sms.from.as_str(), "+8613800138000");
        assert_eq!(sms.platform_id, "1234567");
        assert_eq!(sms.text, "在吗");
        // 08:00 in Beijing is midnight UTC.
        assert_eq!(sms.received_at, 1_714_521_600_000);
    }

    #[test]
    fn given_bad_items_when_normalised_then_the_reason_is_named() {
        let base = serde_json::json!({
            "phone_number": "13800138000", "content": "x",
            "send_time": "2024-05-01 08:00:00", "sequence_id": "abc-1"
        });
        assert!(normalise(item(base.clone()), "86").is_ok());
        let mut bad_time = base.clone();
        bad_time["send_time"] = "yesterday".into();
        assert!(
            normalise(item(bad_time), "86")
                .unwrap_err()
                .contains("send_time")
        );
        let mut bad_id = base.clone();
        bad_id["sequence_id"] = serde_json::Value::Null;
        assert!(
            normalise(item(bad_id), "86")
                .unwrap_err()
                .contains("sequence_id")
        );
        let mut bad_phone = base;
        bad_phone["phone_number"] = "12".into();
        assert!(
            normalise(item(bad_phone), "86")
                .unwrap_err()
                .contains("phone_number")
        );
    }
}
