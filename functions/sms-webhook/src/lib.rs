//! The sms-webhook Lambda: one function for every inbound SMS provider. It is invoked two
//! ways, told apart by the event's shape:
//!
//! - by API Gateway (HTTP API, payload 2.0) for the webhooks `POST /sms/twilio`,
//!   `POST /sms/sns` and `POST /sms/aliyun/{token}`, served by [`kefu::channels::sms::router`];
//! - by SNS directly (a subscription of the End User Messaging topic to the function), for
//!   two-way SMS without an HTTPS subscription: [`kefu::channels::sms::handle_sns_event`].

use axum::Router;
use http_body_util::BodyExt;
use kefu::channels::sms::{SmsConfig, SmsState, SnsLambdaEvent, handle_sns_event};
use kefu::ports::{IdempotencyGuard, MessageQueue};
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use lambda_http::aws_lambda_events::encodings::Body as LambdaBody;
use serde_json::Value;
use std::sync::Arc;
use tower::ServiceExt;

/// What one invocation needs, built once at cold start.
#[derive(Clone)]
pub struct Handler {
    state: SmsState,
    router: Router,
}

impl Handler {
    /// A handler over `state`.
    pub fn new(state: SmsState) -> Self {
        Self {
            router: kefu::channels::sms::router(state.clone()),
            state,
        }
    }

    /// Handles one invocation: an SNS event (answered with `null`) or an API Gateway
    /// request (answered with its HTTP response).
    pub async fn handle(&self, payload: Value) -> Result<Value, lambda_runtime::Error> {
        if is_sns_event(&payload) {
            let event: SnsLambdaEvent = serde_json::from_value(payload)?;
            if let Err(e) = handle_sns_event(&self.state, &event).await {
                // Lambda retries the event; the ingress is idempotent.
                tracing::error!(error = %kefu::cause_chain(&e), "SNS event failed");
                return Err(e.into());
            }
            return Ok(Value::Null);
        }
        let request = lambda_http::request::from_str(&payload.to_string())?;
        let request = request.map(|body| axum::body::Body::from(body.to_vec()));
        let response = self.router.clone().oneshot(request).await?;
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await?.to_bytes();
        let mut out = ApiGatewayV2httpResponse::default();
        out.status_code = i64::from(parts.status.as_u16());
        out.headers = parts.headers;
        // Every SMS response is text: TwiML, JSON or empty.
        out.body = Some(LambdaBody::Text(
            String::from_utf8_lossy(&bytes).into_owned(),
        ));
        out.is_base64_encoded = false;
        Ok(serde_json::to_value(out)?)
    }
}

/// SNS events carry `Records[].EventSource == "aws:sns"`.
fn is_sns_event(payload: &Value) -> bool {
    payload
        .get("Records")
        .and_then(Value::as_array)
        .and_then(|records| records.first())
        .and_then(|record| record.get("EventSource"))
        .and_then(Value::as_str)
        == Some("aws:sns")
}

/// The state from the environment (see [`SmsConfig::from_env`]) and the adapters.
pub fn state_from_env(
    inbound: Arc<dyn MessageQueue>,
    guard: Arc<dyn IdempotencyGuard>,
) -> kefu::Result<SmsState> {
    SmsState::new(inbound, guard, SmsConfig::from_env()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kefu::adapters::embedded::{EmbeddedStore, INBOUND};
    use kefu::channels::sms::AliyunConfig;
    use serde_json::json;
    use std::time::Duration;

    fn handler(store: &EmbeddedStore) -> Handler {
        let mut config = SmsConfig::new("https://sms.example.com");
        config.aliyun = Some(AliyunConfig {
            token: "path-secret".into(),
        });
        let state = SmsState::new(
            Arc::new(store.queue(INBOUND)),
            Arc::new(store.idempotency()),
            config,
        )
        .unwrap();
        Handler::new(state)
    }

    async fn queued(store: &EmbeddedStore) -> usize {
        store
            .queue(INBOUND)
            .receive(10, Duration::from_secs(30), Duration::ZERO)
            .await
            .unwrap()
            .len()
    }

    fn sns_event(id: &str) -> Value {
        let sms = json!({
            "originationNumber": "+14255550182",
            "destinationNumber": "+12125550101",
            "messageKeyword": "KEYWORD_123456789012",
            "messageBody": "Where is my order?",
            "inboundMessageId": id,
            "previousPublishedMessageId": "p1"
        });
        json!({"Records": [{
            "EventSource": "aws:sns",
            "EventVersion": "1.0",
            "EventSubscriptionArn": "arn:aws:sns:us-east-1:123456789012:sms:1",
            "Sns": {
                "Type": "Notification",
                "MessageId": "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
                "TopicArn": "arn:aws:sns:us-east-1:123456789012:sms",
                "Subject": null,
                "Message": sms.to_string(),
                "Timestamp": "2024-05-01T00:00:00.000Z",
                "SignatureVersion": "1",
                "Signature": "EXAMPLE",
                "SigningCertUrl": "https://sns.us-east-1.amazonaws.com/x.pem",
                "UnsubscribeUrl": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
                "MessageAttributes": {}
            }
        }]})
    }

    fn http_event(path: &str, body: &str) -> Value {
        json!({
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": path,
            "rawQueryString": "",
            "headers": {"content-type": "application/json"},
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "api",
                "domainName": "sms.example.com",
                "domainPrefix": "sms",
                "http": {"method": "POST", "path": path, "protocol": "HTTP/1.1",
                         "sourceIp": "192.0.2.1", "userAgent": "test"},
                "requestId": "r1",
                "routeKey": "$default",
                "stage": "$default",
                "time": "01/May/2024:00:00:00 +0000",
                "timeEpoch": 1714521600000u64
            },
            "body": body,
            "isBase64Encoded": false
        })
    }

    #[tokio::test]
    async fn given_an_sns_event_delivered_twice_when_handled_then_one_message_is_queued() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let handler = handler(&store);
        assert_eq!(
            handler.handle(sns_event("in-1")).await.unwrap(),
            Value::Null
        );
        assert_eq!(
            handler.handle(sns_event("in-1")).await.unwrap(),
            Value::Null
        );
        assert_eq!(queued(&store).await, 1);
    }

    #[tokio::test]
    async fn given_an_api_gateway_request_when_handled_then_the_router_answers_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let handler = handler(&store);
        let push = json!([{
            "phone_number": "13800138000", "content": "在吗",
            "send_time": "2024-05-01 08:00:00", "dest_code": "1", "sequence_id": 42
        }])
        .to_string();

        let wrong = handler
            .handle(http_event("/sms/aliyun/guess", &push))
            .await
            .unwrap();
        assert_eq!(wrong["statusCode"], 404);
        assert_eq!(queued(&store).await, 0);

        let right = handler
            .handle(http_event("/sms/aliyun/path-secret", &push))
            .await
            .unwrap();
        assert_eq!(right["statusCode"], 200);
        let body: Value = serde_json::from_str(right["body"].as_str().unwrap()).unwrap();
        assert_eq!(body, json!({"code": 0, "msg": "接收成功"}));
        assert_eq!(queued(&store).await, 1);
    }
}
