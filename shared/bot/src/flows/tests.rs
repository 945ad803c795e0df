//! The flows over the demo orders: multi-turn conversations, ownership, errors.

use super::*;
use async_trait::async_trait;
use kefu::adapters::demo_orders::{DEMO_OPENID, DEMO_PHONE, DemoOrderSource};
use kefu::domain::{BotContext, Customer};
use kefu::ports::OrderSource;
use std::sync::Arc;

/// An order API that is down.
struct Down;

#[async_trait]
impl OrderSource for Down {
    async fn order(&self, _: &str) -> Result<Option<Order>, OrderError> {
        Err(OrderError::Status(503))
    }
    async fn cancel(&self, _: &str, _: &str) -> Result<CancelOutcome, OrderError> {
        Err(OrderError::Status(503))
    }
    async fn request_return(
        &self,
        _: &str,
        _: ReturnKind,
        _: &str,
        _: &str,
    ) -> Result<ReturnTicket, OrderError> {
        Err(OrderError::Status(503))
    }
}

/// A conversation with the flows, carrying the context from turn to turn like the handler.
struct Chat {
    flows: Flows,
    customer: Customer,
    context: Option<BotContext>,
    /// Messages said so far: each turn is a new message id.
    turns: u32,
}

impl Chat {
    fn new(customer: Customer) -> Self {
        Self::over(Arc::new(DemoOrderSource::new()), customer)
    }

    fn over(orders: Arc<dyn OrderSource>, customer: Customer) -> Self {
        Self {
            flows: Flows::new(orders, FlowConfig::default()),
            customer,
            context: None,
            turns: 0,
        }
    }

    async fn say(&mut self, text: &str) -> Option<FlowStep> {
        self.turns += 1;
        let step = self.redeliver(text).await;
        self.context = step.as_ref().and_then(|s| s.next.clone());
        step
    }

    /// The last message again, as a queue redelivers it after a crash: same id, same
    /// context.
    async fn redeliver(&self, text: &str) -> Option<FlowStep> {
        let request_id = format!("m-{}", self.turns);
        let input = FlowInput {
            text,
            customer: &self.customer,
            request_id: &request_id,
        };
        self.flows.handle(self.context.as_ref(), input).await
    }

    /// A turn that must belong to a flow.
    async fn step(&mut self, text: &str) -> FlowStep {
        match self.say(text).await {
            Some(step) => step,
            None => panic!("{text:?} was not taken by a flow"),
        }
    }

    fn waiting_for(&self) -> Option<(&str, &str, u32)> {
        match &self.context {
            Some(BotContext::Flow {
                flow, slot, tries, ..
            }) => Some((flow.as_str(), slot.as_str(), *tries)),
            _ => None,
        }
    }
}

fn signed_in(id: &str) -> Customer {
    Customer {
        address: "web-session-1".into(),
        name: Some("Li Lei".into()),
        verified_id: Some(id.into()),
    }
}

fn anonymous() -> Customer {
    Customer {
        address: "web-session-2".into(),
        name: None,
        verified_id: None,
    }
}

fn at(address: &str) -> Customer {
    Customer {
        address: address.into(),
        name: None,
        verified_id: None,
    }
}

#[tokio::test]
async fn given_owner_when_asking_with_order_number_then_status_and_tracking_are_shown() {
    let mut chat = Chat::new(signed_in("42"));
    let step = chat.step("我的订单123456到哪了").await;
    assert!(step.reply.contains("已发货"), "{}", step.reply);
    assert!(step.reply.contains("SF1234567890123"), "{}", step.reply);
    assert!(step.reply.contains("派送中"), "{}", step.reply);
    assert_eq!((step.next, step.handoff, step.note), (None, None, None));
}

#[tokio::test]
async fn given_sms_from_order_phone_when_asking_in_english_then_english_status() {
    let mut chat = Chat::new(at(DEMO_PHONE));
    let step = chat.step("where is my order #123456?").await;
    assert!(
        step.reply.starts_with("Order 123456: shipped."),
        "{}",
        step.reply
    );
}

#[tokio::test]
async fn given_no_order_number_when_given_in_a_later_message_then_status_is_answered() {
    let mut chat = Chat::new(signed_in("42"));
    let ask = chat.step("查一下订单").await;
    assert!(ask.reply.contains("订单号"), "{}", ask.reply);
    assert_eq!(chat.waiting_for(), Some(("order_status", "order_id", 0)));

    let answer = chat.step("是123456").await;
    assert!(
        answer.reply.contains("订单 123456：已发货"),
        "{}",
        answer.reply
    );
    assert_eq!(chat.waiting_for(), None);
}

#[tokio::test]
async fn given_english_flow_when_bare_number_follows_then_reply_stays_english() {
    let mut chat = Chat::new(signed_in("42"));
    chat.step("track my parcel").await;
    let answer = chat.step("123456").await;
    assert!(
        answer.reply.starts_with("Order 123456: shipped."),
        "{}",
        answer.reply
    );
}

#[tokio::test]
async fn given_two_failed_tries_when_waiting_for_order_number_then_handoff() {
    let mut chat = Chat::new(signed_in("42"));
    chat.step("物流到哪了").await;
    let again = chat.step("我不记得订单号了").await;
    assert_eq!(again.handoff, None);
    assert_eq!(chat.waiting_for(), Some(("order_status", "order_id", 1)));

    let gave_up = chat.step("订单号找不到").await;
    assert_eq!(gave_up.handoff, Some(handoff::FLOW_FAILED));
    assert!(gave_up.reply.contains("人工"), "{}", gave_up.reply);
    assert_eq!(gave_up.next, None);
}

#[tokio::test]
async fn given_flow_waiting_when_customer_moves_on_after_a_reask_then_flow_lets_go() {
    let mut chat = Chat::new(signed_in("42"));
    chat.step("查一下订单").await;
    let reask = chat.step("运费多少").await;
    assert!(reask.next.is_some());
    assert!(chat.say("你们几点上班").await.is_none());
}

#[tokio::test]
async fn given_flow_waiting_when_another_request_arrives_then_it_takes_over() {
    let mut chat = Chat::new(signed_in("42"));
    chat.step("查一下订单").await;
    let step = chat.step("取消订单123457").await;
    assert!(step.reply.contains("确认取消订单 123457"), "{}", step.reply);
    assert_eq!(chat.waiting_for(), Some(("order_cancel", "confirm", 0)));
}

#[tokio::test]
async fn given_someone_elses_order_when_asked_then_reply_equals_not_found() {
    // Order 123456 exists and belongs to customer 42; 654321 does not exist.
    let mut stranger = Chat::new(anonymous());
    let theirs = stranger.step("我的订单123456到哪了").await;
    let mut other = Chat::new(anonymous());
    let missing = other.step("我的订单654321到哪了").await;
    assert_eq!(theirs.reply, missing.reply.replace("654321", "123456"));
    for leak in ["已发货", "顺丰", "SF1234567890123", "T恤", "198"] {
        assert!(
            !theirs.reply.contains(leak),
            "leaked {leak}: {}",
            theirs.reply
        );
    }
    assert!(
        theirs.reply.contains("登录"),
        "asks to verify: {}",
        theirs.reply
    );

    // A signed-in customer is no owner of another customer's order either.
    let mut customer_42 = Chat::new(signed_in("42"));
    let not_theirs = customer_42.step("where is my order 990001").await;
    assert!(
        !not_theirs.reply.contains("shipped"),
        "{}",
        not_theirs.reply
    );
    assert!(not_theirs.reply.contains("can't find order 990001"));
}

#[tokio::test]
async fn given_someone_elses_orders_when_tried_twice_then_handoff_without_leak() {
    let mut chat = Chat::new(anonymous());
    chat.step("我的订单123456到哪了").await;
    let second = chat.step("123457").await;
    assert_eq!(second.handoff, Some(handoff::FLOW_FAILED));
    assert!(!second.reply.contains("123457"), "{}", second.reply);
}

#[tokio::test]
async fn given_someone_elses_paid_order_when_cancelling_then_nothing_is_cancelled() {
    let orders = Arc::new(DemoOrderSource::new());
    let mut chat = Chat::over(orders.clone(), anonymous());
    chat.step("取消订单123457").await;
    let after = orders.order("123457").await.expect("demo never fails");
    assert_eq!(after.map(|o| o.status), Some(OrderStatus::Paid));
}

#[tokio::test]
async fn given_paid_order_when_cancel_confirmed_then_order_is_cancelled() {
    let orders = Arc::new(DemoOrderSource::new());
    let mut chat = Chat::over(orders.clone(), signed_in("42"));
    let ask = chat.step("取消订单123457").await;
    assert!(ask.reply.contains("回复“确认”"), "{}", ask.reply);
    let before = orders.order("123457").await.expect("demo never fails");
    assert_eq!(before.map(|o| o.status), Some(OrderStatus::Paid));

    let done = chat.step("确认").await;
    assert!(done.reply.contains("已取消"), "{}", done.reply);
    assert_eq!(done.next, None);
    let after = orders.order("123457").await.expect("demo never fails");
    assert_eq!(after.map(|o| o.status), Some(OrderStatus::Cancelled));
}

#[tokio::test]
async fn given_confirmation_redelivered_after_a_crash_then_same_reply_and_one_cancellation() {
    let orders = Arc::new(DemoOrderSource::new());
    let mut chat = Chat::over(orders.clone(), signed_in("42"));
    chat.step("取消订单123457").await;
    let before_crash = chat.context.clone();
    let done = chat.step("确认").await;
    // The bot crashed before saving the context: the queue redelivers the same message.
    chat.context = before_crash;
    let again = chat.redeliver("确认").await.expect("still a flow turn");
    assert_eq!(
        again.reply, done.reply,
        "not \"too late\": the shop saw one request"
    );
    assert!(again.reply.contains("已取消"), "{}", again.reply);
}

#[tokio::test]
async fn given_cancel_prompt_when_declined_then_order_is_kept() {
    let orders = Arc::new(DemoOrderSource::new());
    let mut chat = Chat::over(orders.clone(), signed_in("42"));
    chat.step("cancel my order 123457").await;
    let kept = chat.step("no, keep it").await;
    assert_eq!(kept.reply, "OK, order 123457 stays as it is.");
    let after = orders.order("123457").await.expect("demo never fails");
    assert_eq!(after.map(|o| o.status), Some(OrderStatus::Paid));
}

#[tokio::test]
async fn given_shipped_order_when_cancel_asked_then_refused_without_prompt() {
    let mut chat = Chat::new(signed_in("42"));
    let step = chat.step("我要取消订单").await;
    assert_eq!(chat.waiting_for(), Some(("order_cancel", "order_id", 0)));
    assert!(step.reply.contains("订单号"));
    let refused = chat.step("123456").await;
    assert!(refused.reply.contains("无法取消"), "{}", refused.reply);
    assert_eq!(refused.next, None);
}

#[tokio::test]
async fn given_return_request_when_number_and_reason_follow_then_ticket_note_and_handoff() {
    let mut chat = Chat::new(signed_in("42"));
    chat.step("我要退货").await;
    assert_eq!(chat.waiting_for(), Some(("order_return", "order_id", 0)));
    let reason = chat.step("123458").await;
    assert!(reason.reply.contains("退货的原因"), "{}", reason.reply);
    assert_eq!(chat.waiting_for(), Some(("order_return", "reason", 0)));

    let done = chat.step("尺码不合适，偏小").await;
    assert!(done.reply.contains("RT-1001"), "{}", done.reply);
    assert_eq!(done.handoff, Some(handoff::RETURN_REQUEST));
    assert_eq!(
        done.note.as_deref(),
        Some("Return request RT-1001 for order 123458; reason: 尺码不合适，偏小")
    );
    assert_eq!(done.next, None);
}

#[tokio::test]
async fn given_english_return_with_reason_when_sent_then_ticket_in_one_turn() {
    let mut chat = Chat::new(signed_in("42"));
    let done = chat
        .step("I want to return order 123458 because the zip is broken")
        .await;
    assert!(
        done.reply.contains("return request is in, ticket RT-1001"),
        "{}",
        done.reply
    );
    assert!(
        done.note
            .is_some_and(|n| n.ends_with("reason: the zip is broken"))
    );
}

#[tokio::test]
async fn given_wechat_owner_when_asking_exchange_then_reason_is_asked_for_exchange() {
    let mut chat = Chat::new(at(DEMO_OPENID));
    let step = chat.step("订单880001要换货").await;
    assert!(step.reply.contains("换货的原因"), "{}", step.reply);
    let done = chat.step("左耳没有声音").await;
    assert!(done.note.is_some_and(|n| n.starts_with("Exchange request")));
}

#[tokio::test]
async fn given_unshipped_order_when_return_asked_then_cancel_is_suggested() {
    let mut chat = Chat::new(signed_in("42"));
    let step = chat.step("订单123457要退货").await;
    assert!(step.reply.contains("取消订单123457"), "{}", step.reply);
    assert_eq!((step.handoff, step.next), (None, None));
}

#[tokio::test]
async fn given_policy_questions_when_handled_then_left_to_the_faq() {
    let mut chat = Chat::new(signed_in("42"));
    for text in [
        "退货政策是什么",
        "how do returns work",
        "可以开发票吗",
        "运费怎么算",
    ] {
        assert!(chat.say(text).await.is_none(), "{text}");
    }
}

#[tokio::test]
async fn given_clarify_context_when_customer_picks_an_option_then_flows_stay_out() {
    let flows = Flows::new(Arc::new(DemoOrderSource::new()), FlowConfig::default());
    let clarify = BotContext::Clarify {
        options: vec!["a".into(), "b".into()],
    };
    let input = FlowInput {
        text: "1",
        customer: &anonymous(),
        request_id: "m-1",
    };
    assert!(flows.handle(Some(&clarify), input).await.is_none());
}

#[tokio::test]
async fn given_order_api_down_when_asked_then_polite_handoff_in_customer_language() {
    let mut zh = Chat::over(Arc::new(Down), signed_in("42"));
    let step = zh.step("我的订单123456到哪了").await;
    assert_eq!(step.handoff, Some(handoff::ORDER_API_ERROR));
    assert!(step.reply.contains("人工客服"), "{}", step.reply);

    let mut en = Chat::over(Arc::new(Down), signed_in("42"));
    let step = en.step("cancel order 123457").await;
    assert_eq!(step.handoff, Some(handoff::ORDER_API_ERROR));
    assert!(step.reply.contains("human agent"), "{}", step.reply);
    assert_eq!(step.next, None);
}

#[tokio::test]
async fn given_flow_waiting_for_a_number_when_a_message_has_none_then_asking_again_is_only_a_fallback()
 {
    for (start, other) in [
        ("查一下订单", "下单后还能改收货地址吗？"),
        (
            "track my parcel",
            "can I change my delivery address after ordering?",
        ),
    ] {
        let mut chat = Chat::new(signed_in("42"));
        assert!(!chat.step(start).await.fallback);
        let step = chat.step(other).await;
        assert!(step.fallback, "{other:?} taken for sure: {}", step.reply);
    }
    // An order number is the flow's for sure.
    let mut chat = Chat::new(signed_in("42"));
    chat.step("查一下订单").await;
    assert!(!chat.step("123456").await.fallback);
}
