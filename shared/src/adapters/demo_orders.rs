//! [`DemoOrderSource`]: a handful of sample orders in memory, for the local runner and demos.
//!
//! Not a store: cancellations and return tickets live in a `Mutex` and are forgotten when
//! the process stops, which is what a demo wants (every start shows the same orders). A real
//! deployment talks to the shop with `HttpOrderSource` (feature `order-api`).

use crate::domain::{
    CancelOutcome, Order, OrderError, OrderItem, OrderOwner, OrderStatus, ReturnKind, ReturnTicket,
    TrackingEvent,
};
use crate::ports::OrderSource;
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

/// The signed-in example customer of the README (`customer_id` 42).
pub const DEMO_CUSTOMER_ID: &str = "42";
/// The phone number on the demo customer's orders (SMS conversations use it as address).
pub const DEMO_PHONE: &str = "+8613800138000";
/// The WeChat OpenID that owns order 880001.
pub const DEMO_OPENID: &str = "o6_bmjrPTlm6_2sgVt7hMZOPfL2M";

/// Sample orders in memory (see the module docs).
pub struct DemoOrderSource {
    state: Mutex<State>,
}

struct State {
    orders: BTreeMap<String, Order>,
    next_ticket: u32,
    /// Answers already given, by request id: a repeated request gets the first answer.
    cancels: BTreeMap<String, CancelOutcome>,
    returns: BTreeMap<String, ReturnTicket>,
}

impl DemoOrderSource {
    /// The sample orders of [`sample_orders`].
    pub fn new() -> Self {
        Self::with_orders(sample_orders())
    }

    /// Exactly these orders.
    pub fn with_orders(orders: Vec<Order>) -> Self {
        let orders = orders.into_iter().map(|o| (o.id.clone(), o)).collect();
        Self {
            state: Mutex::new(State {
                orders,
                next_ticket: 1001,
                cancels: BTreeMap::new(),
                returns: BTreeMap::new(),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Demo data stays usable even if a holder panicked.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Default for DemoOrderSource {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl OrderSource for DemoOrderSource {
    async fn order(&self, order_id: &str) -> Result<Option<Order>, OrderError> {
        Ok(self.state().orders.get(order_id).cloned())
    }

    async fn cancel(&self, order_id: &str, request_id: &str) -> Result<CancelOutcome, OrderError> {
        let mut state = self.state();
        if let Some(first) = state.cancels.get(request_id) {
            return Ok(first.clone());
        }
        let outcome = match state.orders.get_mut(order_id) {
            None => CancelOutcome::NotFound,
            Some(order) if !order.status.cancellable() => CancelOutcome::TooLate {
                status: order.status,
            },
            Some(order) => {
                order.status = OrderStatus::Cancelled;
                CancelOutcome::Cancelled
            }
        };
        state.cancels.insert(request_id.to_owned(), outcome.clone());
        Ok(outcome)
    }

    async fn request_return(
        &self,
        order_id: &str,
        _kind: ReturnKind,
        _reason: &str,
        request_id: &str,
    ) -> Result<ReturnTicket, OrderError> {
        let mut state = self.state();
        if let Some(first) = state.returns.get(request_id) {
            return Ok(first.clone());
        }
        match state.orders.get(order_id) {
            None => return Err(OrderError::Refused("unknown order".into())),
            Some(order) if !order.status.returnable() => {
                return Err(OrderError::Refused("order is not eligible".into()));
            }
            Some(_) => {}
        }
        let ticket = ReturnTicket {
            ticket_id: format!("RT-{}", state.next_ticket),
        };
        state.next_ticket += 1;
        state.returns.insert(request_id.to_owned(), ticket.clone());
        Ok(ticket)
    }
}

/// The demo orders: 123456 (shipped), 123457 (paid) and 123458 (delivered) belong to
/// customer 42 / +8613800138000; 880001 (delivered) to the WeChat user [`DEMO_OPENID`];
/// 880002 and 990001 to other customers, to show that they stay hidden.
pub fn sample_orders() -> Vec<Order> {
    let demo_customer = OrderOwner {
        phone_e164: Some(DEMO_PHONE.into()),
        wechat_openid: None,
        customer_id: Some(DEMO_CUSTOMER_ID.into()),
    };
    let event = |at: &str, description: &str| TrackingEvent {
        at: at.into(),
        description: description.into(),
    };
    let item = |name: &str, quantity: u32| OrderItem {
        name: name.into(),
        quantity,
    };
    vec![
        Order {
            id: "123456".into(),
            status: OrderStatus::Shipped,
            owner: demo_customer.clone(),
            items: vec![item("纯棉圆领T恤 白色 L", 2)],
            total: "¥198.00".into(),
            carrier: Some("顺丰速运".into()),
            tracking_number: Some("SF1234567890123".into()),
            tracking_events: vec![
                event("2025-06-01T10:12:00+08:00", "【深圳】已揽收"),
                event("2025-06-02T08:30:00+08:00", "【上海】到达转运中心"),
                event(
                    "2025-06-02T14:05:00+08:00",
                    "【上海】派送中，快递员 王师傅 13900000000",
                ),
            ],
        },
        Order {
            id: "123457".into(),
            status: OrderStatus::Paid,
            owner: demo_customer.clone(),
            items: vec![item("帆布鞋 黑色 42码", 1)],
            total: "¥299.00".into(),
            carrier: None,
            tracking_number: None,
            tracking_events: vec![],
        },
        Order {
            id: "123458".into(),
            status: OrderStatus::Delivered,
            owner: demo_customer,
            items: vec![item("轻薄羽绒服 藏青 M", 1), item("羊毛围巾", 1)],
            total: "¥1,058.00".into(),
            carrier: Some("中通快递".into()),
            tracking_number: Some("ZT7788990011".into()),
            tracking_events: vec![
                event("2025-05-20T09:00:00+08:00", "【杭州】已揽收"),
                event("2025-05-22T16:40:00+08:00", "已签收，签收人：本人"),
            ],
        },
        Order {
            id: "880001".into(),
            status: OrderStatus::Delivered,
            owner: OrderOwner {
                wechat_openid: Some(DEMO_OPENID.into()),
                ..OrderOwner::default()
            },
            items: vec![item("Wireless earbuds", 1)],
            total: "¥399.00".into(),
            carrier: Some("EMS".into()),
            tracking_number: Some("EE123456789CN".into()),
            tracking_events: vec![event("2025-06-03T11:20:00+08:00", "Delivered")],
        },
        Order {
            id: "880002".into(),
            status: OrderStatus::PendingPayment,
            owner: OrderOwner {
                phone_e164: Some("+8613900139000".into()),
                ..OrderOwner::default()
            },
            items: vec![item("Ceramic mug", 2)],
            total: "¥76.00".into(),
            carrier: None,
            tracking_number: None,
            tracking_events: vec![],
        },
        Order {
            id: "990001".into(),
            status: OrderStatus::Shipped,
            owner: OrderOwner {
                customer_id: Some("7".into()),
                ..OrderOwner::default()
            },
            items: vec![item("机械键盘", 1)],
            total: "¥459.00".into(),
            carrier: Some("京东物流".into()),
            tracking_number: Some("JD0099887766".into()),
            tracking_events: vec![event("2025-06-02T20:00:00+08:00", "【北京】已发出")],
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn given_paid_order_when_cancelled_twice_then_second_is_too_late() {
        let demo = DemoOrderSource::new();
        assert_eq!(
            demo.cancel("123457", "m-1")
                .await
                .expect("demo never fails"),
            CancelOutcome::Cancelled
        );
        assert_eq!(
            demo.cancel("123457", "m-2")
                .await
                .expect("demo never fails"),
            CancelOutcome::TooLate {
                status: OrderStatus::Cancelled
            }
        );
        let order = demo.order("123457").await.expect("demo never fails");
        assert_eq!(order.map(|o| o.status), Some(OrderStatus::Cancelled));
    }

    #[tokio::test]
    async fn given_shipped_order_when_cancelled_then_too_late_and_unchanged() {
        let demo = DemoOrderSource::new();
        assert_eq!(
            demo.cancel("123456", "m-1")
                .await
                .expect("demo never fails"),
            CancelOutcome::TooLate {
                status: OrderStatus::Shipped
            }
        );
        assert_eq!(
            demo.cancel("000000", "m-2")
                .await
                .expect("demo never fails"),
            CancelOutcome::NotFound
        );
    }

    #[tokio::test]
    async fn given_repeated_request_id_when_sent_again_then_first_answer_and_no_second_effect() {
        let demo = DemoOrderSource::new();
        for _ in 0..2 {
            assert_eq!(
                demo.cancel("123457", "m-9")
                    .await
                    .expect("demo never fails"),
                CancelOutcome::Cancelled
            );
        }
        let first = demo
            .request_return("123458", ReturnKind::Return, "坏了", "m-10")
            .await
            .expect("returnable");
        let again = demo
            .request_return("123458", ReturnKind::Return, "坏了", "m-10")
            .await
            .expect("returnable");
        assert_eq!(first, again);
        let next = demo
            .request_return("123458", ReturnKind::Return, "坏了", "m-11")
            .await
            .expect("returnable");
        assert_eq!(next.ticket_id, "RT-1002", "the retry used no ticket number");
    }

    #[tokio::test]
    async fn given_delivered_order_when_returns_requested_then_tickets_are_distinct() {
        let demo = DemoOrderSource::new();
        let first = demo
            .request_return("123458", ReturnKind::Return, "尺码不合适", "m-1")
            .await
            .expect("delivered orders can be returned");
        let second = demo
            .request_return("880001", ReturnKind::Exchange, "left earbud silent", "m-2")
            .await
            .expect("delivered orders can be exchanged");
        assert_eq!(first.ticket_id, "RT-1001");
        assert_ne!(first, second);
        assert!(matches!(
            demo.request_return("123457", ReturnKind::Return, "x", "m-3")
                .await,
            Err(OrderError::Refused(_))
        ));
    }
}
