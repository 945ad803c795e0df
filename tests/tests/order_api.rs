//! The order API contract (`docs/order-api.md`), end to end: a mock shop on 127.0.0.1 that
//! implements the documented contract over the demo orders and checks every signature, the
//! same contract test over [`DemoOrderSource`] and over [`HttpOrderSource`] talking to that
//! shop, and the order flows running over HTTP.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use kefu::adapters::demo_orders::DemoOrderSource;
use kefu::adapters::http_orders::{
    HttpOrderConfig, HttpOrderSource, SIGNATURE_HEADER, TIMESTAMP_HEADER, signature,
};
use kefu::domain::Customer;
use kefu::ports::OrderSource;
use kefu_bot::flows::{
    CancelOutcome, FlowConfig, FlowInput, Flows, OrderError, OrderStatus, ReturnKind, handoff,
};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

const SECRET: &str = "order-api-test-secret";

/// The shop's side of the contract, over the demo orders.
#[derive(Clone)]
struct Shop {
    orders: Arc<DemoOrderSource>,
    rejected: Arc<AtomicUsize>,
}

impl Shop {
    /// Checks the signature as a shop would (over the full path as received: `OriginalUri`,
    /// since a nested router strips its prefix); counts and refuses forgeries.
    fn verify(&self, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> bool {
        let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
        let (Some(timestamp), Some(given)) = (header(TIMESTAMP_HEADER), header(SIGNATURE_HEADER))
        else {
            return false;
        };
        let fresh = timestamp
            .parse::<i64>()
            .is_ok_and(|t| (chrono::Utc::now().timestamp() - t).abs() <= 300);
        let body = std::str::from_utf8(body).unwrap_or("\u{fffd}");
        let expected = signature(
            SECRET.as_bytes(),
            method.as_str(),
            uri.path(),
            timestamp,
            body,
        );
        let ok = fresh && expected == given;
        if !ok {
            self.rejected.fetch_add(1, Ordering::SeqCst);
        }
        ok
    }
}

async fn get_order(
    State(shop): State<Shop>,
    Path(id): Path<String>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    if !shop.verify(&method, &uri, &headers, b"") {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    match shop.orders.order(&id).await {
        Ok(Some(order)) => Json(order).into_response(),
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn cancel_order(
    State(shop): State<Shop>,
    Path(id): Path<String>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !shop.verify(&method, &uri, &headers, &body) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let request: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let Some(request_id) = request["request_id"].as_str() else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    match shop.orders.cancel(&id, request_id).await {
        Ok(outcome @ CancelOutcome::Cancelled) => Json(outcome).into_response(),
        Ok(outcome @ CancelOutcome::TooLate { .. }) => {
            (StatusCode::CONFLICT, Json(outcome)).into_response()
        }
        Ok(CancelOutcome::NotFound) => StatusCode::NOT_FOUND.into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn request_return(
    State(shop): State<Shop>,
    Path(id): Path<String>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !shop.verify(&method, &uri, &headers, &body) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let request: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let (Ok(kind), Some(reason), Some(request_id)) = (
        serde_json::from_value::<ReturnKind>(request["kind"].clone()),
        request["reason"].as_str(),
        request["request_id"].as_str(),
    ) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    if shop.orders.order(&id).await.ok().flatten().is_none() {
        return StatusCode::NOT_FOUND.into_response();
    }
    match shop
        .orders
        .request_return(&id, kind, reason, request_id)
        .await
    {
        Ok(ticket) => (StatusCode::CREATED, Json(ticket)).into_response(),
        Err(OrderError::Refused(why)) => {
            (StatusCode::CONFLICT, Json(json!({ "error": why }))).into_response()
        }
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// Starts the mock shop under `/api/kefu`; returns its base URL and the forgery count.
async fn start_shop() -> (String, Arc<AtomicUsize>) {
    let shop = Shop {
        orders: Arc::new(DemoOrderSource::new()),
        rejected: Arc::new(AtomicUsize::new(0)),
    };
    let rejected = shop.rejected.clone();
    let api = Router::new()
        .route("/orders/{id}", get(get_order))
        .route("/orders/{id}/cancel", post(cancel_order))
        .route("/orders/{id}/returns", post(request_return))
        .with_state(shop);
    let app = Router::new().nest("/api/kefu", api);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("bound");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/api/kefu"), rejected)
}

fn client(base: &str, secret: &str) -> HttpOrderSource {
    HttpOrderSource::new(HttpOrderConfig::new(base, secret)).expect("valid config")
}

/// What every `OrderSource` must do, on the demo orders.
async fn contract(source: &dyn OrderSource) {
    let shipped = source.order("123456").await.expect("lookup works");
    let shipped = shipped.expect("123456 exists");
    assert_eq!(shipped.status, OrderStatus::Shipped);
    assert_eq!(shipped.owner.customer_id.as_deref(), Some("42"));
    assert_eq!(shipped.tracking_number.as_deref(), Some("SF1234567890123"));
    assert!(
        source
            .order("000001")
            .await
            .expect("lookup works")
            .is_none()
    );

    for _retry in 0..2 {
        assert_eq!(
            source.cancel("123457", "m-1").await.expect("cancel works"),
            CancelOutcome::Cancelled,
            "a retried request gets the first answer"
        );
    }
    let cancelled = source.order("123457").await.expect("lookup works");
    assert_eq!(cancelled.map(|o| o.status), Some(OrderStatus::Cancelled));
    assert_eq!(
        source.cancel("123456", "m-2").await.expect("cancel works"),
        CancelOutcome::TooLate {
            status: OrderStatus::Shipped
        }
    );
    assert_eq!(
        source.cancel("000001", "m-3").await.expect("cancel works"),
        CancelOutcome::NotFound
    );

    let ticket = source
        .request_return("123458", ReturnKind::Exchange, "尺码偏小", "m-4")
        .await
        .expect("delivered orders can be exchanged");
    assert!(!ticket.ticket_id.is_empty());
    let retried = source
        .request_return("123458", ReturnKind::Exchange, "尺码偏小", "m-4")
        .await
        .expect("a retry gets the first ticket");
    assert_eq!(retried, ticket);
    assert!(matches!(
        source
            .request_return("000001", ReturnKind::Return, "x", "m-5")
            .await,
        Err(OrderError::Refused(_))
    ));
}

#[tokio::test]
async fn given_demo_orders_when_contract_runs_then_it_holds() {
    contract(&DemoOrderSource::new()).await;
}

#[tokio::test]
async fn given_http_adapter_against_contract_shop_when_contract_runs_then_it_holds_signed() {
    let (base, rejected) = start_shop().await;
    contract(&client(&base, SECRET)).await;
    assert_eq!(
        rejected.load(Ordering::SeqCst),
        0,
        "a request was not signed right"
    );
}

#[tokio::test]
async fn given_wrong_secret_when_calling_shop_then_error_not_answer() {
    let (base, rejected) = start_shop().await;
    let forged = client(&base, "not-the-secret");
    assert!(matches!(
        forged.order("123456").await,
        Err(OrderError::Status(401))
    ));
    assert_eq!(rejected.load(Ordering::SeqCst), 1);
}

fn customer(address: &str, verified_id: Option<&str>) -> Customer {
    Customer {
        address: address.into(),
        name: None,
        verified_id: verified_id.map(str::to_owned),
    }
}

/// A customer message for the flows; each test message's text is distinct, so it doubles
/// as the message id.
fn said<'a>(text: &'a str, customer: &'a Customer) -> FlowInput<'a> {
    FlowInput {
        text,
        customer,
        request_id: text,
    }
}

#[tokio::test]
async fn given_flows_over_http_when_owner_asks_then_own_order_is_answered() {
    let (base, _) = start_shop().await;
    let flows = Flows::new(Arc::new(client(&base, SECRET)), FlowConfig::default());
    let step = flows
        .handle(
            None,
            said("我的订单123456到哪了", &customer("web-1", Some("42"))),
        )
        .await
        .expect("an order question");
    assert!(step.reply.contains("订单 123456：已发货"), "{}", step.reply);
    assert!(step.reply.contains("SF1234567890123"), "{}", step.reply);
}

#[tokio::test]
async fn given_flows_over_http_when_stranger_asks_then_asked_to_verify_and_nothing_leaks() {
    let (base, _) = start_shop().await;
    let flows = Flows::new(Arc::new(client(&base, SECRET)), FlowConfig::default());
    let step = flows
        .handle(None, said("我的订单123456到哪了", &customer("web-2", None)))
        .await
        .expect("an order question");
    assert!(step.reply.contains("登录"), "{}", step.reply);
    for leak in ["已发货", "顺丰", "SF1234567890123"] {
        assert!(!step.reply.contains(leak), "leaked {leak}: {}", step.reply);
    }
}

#[tokio::test]
async fn given_flows_over_http_when_return_completes_then_ticket_note_and_handoff() {
    let (base, _) = start_shop().await;
    let flows = Flows::new(Arc::new(client(&base, SECRET)), FlowConfig::default());
    let owner = customer("+8613800138000", None);
    let ask = flows
        .handle(None, said("I want to return order 123458", &owner))
        .await
        .expect("a return request");
    let done = flows
        .handle(ask.next.as_ref(), said("it is too small", &owner))
        .await
        .expect("the reason");
    assert_eq!(done.handoff, Some(handoff::RETURN_REQUEST));
    assert!(
        done.note
            .is_some_and(|n| n.contains("order 123458") && n.contains("too small"))
    );
}

#[tokio::test]
async fn given_shop_down_when_flow_runs_then_handoff_with_order_api_error() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("bound");
    drop(listener);
    let flows = Flows::new(
        Arc::new(client(&format!("http://{addr}"), SECRET)),
        FlowConfig::default(),
    );
    let step = flows
        .handle(
            None,
            said("where is my order 123456", &customer("web-1", Some("42"))),
        )
        .await
        .expect("an order question");
    assert_eq!(step.handoff, Some(handoff::ORDER_API_ERROR));
}
