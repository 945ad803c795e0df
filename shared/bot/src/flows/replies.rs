//! What the flows say, in the customer's language. Order details appear only in replies
//! built from an order the customer owns (see `engine`).

use kefu::domain::{Order, OrderStatus, ReturnKind};

/// The customer's language: Chinese when they write any Han character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lang {
    Zh,
    En,
}

impl Lang {
    /// The language of `text`; a message with no letters at all ("123456") keeps `previous`.
    pub(crate) fn of(text: &str, previous: Option<Lang>) -> Lang {
        if text.chars().any(crate::text::is_cjk) {
            Lang::Zh
        } else if text.chars().any(|c| c.is_ascii_alphabetic()) {
            Lang::En
        } else {
            previous.unwrap_or(Lang::En)
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Lang> {
        match s {
            "zh" => Some(Lang::Zh),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    fn pick(self, zh: &str, en: &str) -> String {
        match self {
            Lang::Zh => zh.to_owned(),
            Lang::En => en.to_owned(),
        }
    }
}

pub(crate) fn ask_order_id(lang: Lang) -> String {
    lang.pick(
        "请告诉我您的订单号（6–20 位数字）。",
        "Could you tell me your order number (6–20 digits)?",
    )
}

pub(crate) fn ask_order_id_again(lang: Lang) -> String {
    lang.pick(
        "没有识别到订单号，请直接发送订单号的数字，例如 123456。有其他问题也可以直接问我。",
        "I couldn't find an order number there. Please send its digits, e.g. 123456 — or just ask me something else.",
    )
}

/// The one reply for "no such order" and "not this customer's order": it must not tell
/// the two apart.
pub(crate) fn not_found(lang: Lang, id: &str) -> String {
    match lang {
        Lang::Zh => format!(
            "抱歉，没有在您的账号下找到订单 {id}。请登录后再问我，或用下单时的手机号联系我们；也可以回复“人工”转人工客服。"
        ),
        Lang::En => format!(
            "Sorry, I can't find order {id} for your account. Please sign in, or write to us from the phone number on the order; you can also type \"agent\" to reach a person."
        ),
    }
}

pub(crate) fn gave_up(lang: Lang) -> String {
    lang.pick(
        "没能确认您的订单，正在为您转接人工客服，请稍候…",
        "I couldn't confirm your order, so I'm connecting you to a human agent. Please hold on…",
    )
}

pub(crate) fn api_error(lang: Lang) -> String {
    lang.pick(
        "抱歉，订单系统暂时无法访问，正在为您转接人工客服，请稍候…",
        "Sorry, our order system isn't responding right now. I'm connecting you to a human agent, please hold on…",
    )
}

fn status_text(lang: Lang, status: OrderStatus) -> &'static str {
    match (lang, status) {
        (Lang::Zh, OrderStatus::PendingPayment) => "待付款",
        (Lang::Zh, OrderStatus::Paid) => "已付款，等待发货",
        (Lang::Zh, OrderStatus::Shipped) => "已发货",
        (Lang::Zh, OrderStatus::Delivered) => "已签收",
        (Lang::Zh, OrderStatus::Cancelled) => "已取消",
        (Lang::Zh, OrderStatus::Returned) => "已退货",
        (Lang::En, OrderStatus::PendingPayment) => "awaiting payment",
        (Lang::En, OrderStatus::Paid) => "paid, waiting to ship",
        (Lang::En, OrderStatus::Shipped) => "shipped",
        (Lang::En, OrderStatus::Delivered) => "delivered",
        (Lang::En, OrderStatus::Cancelled) => "cancelled",
        (Lang::En, OrderStatus::Returned) => "returned",
    }
}

/// Status, items, total, carrier and the latest tracking event of an order the customer owns.
pub(crate) fn order_status(lang: Lang, order: &Order) -> String {
    let items = order
        .items
        .iter()
        .map(|item| format!("{} ×{}", item.name, item.quantity))
        .collect::<Vec<_>>();
    let status = status_text(lang, order.status);
    let mut lines = match lang {
        Lang::Zh => vec![
            format!("订单 {}：{status}。", order.id),
            format!("商品：{}；金额：{}", items.join("、"), order.total),
        ],
        Lang::En => vec![
            format!("Order {}: {status}.", order.id),
            format!("Items: {}; total: {}", items.join(", "), order.total),
        ],
    };
    if let (Some(carrier), Some(number)) = (&order.carrier, &order.tracking_number) {
        lines.push(match lang {
            Lang::Zh => format!("承运商：{carrier}，运单号：{number}"),
            Lang::En => format!("Carrier: {carrier}, tracking number: {number}"),
        });
    }
    if let Some(event) = order.tracking_events.last() {
        lines.push(match lang {
            Lang::Zh => format!("最新物流：{} {}", event.at, event.description),
            Lang::En => format!("Latest update: {} {}", event.at, event.description),
        });
    }
    lines.join("\n")
}

pub(crate) fn confirm_cancel(lang: Lang, id: &str) -> String {
    match lang {
        Lang::Zh => format!("确认取消订单 {id} 吗？回复“确认”取消，回复“不用”保留订单。"),
        Lang::En => {
            format!("Cancel order {id}? Reply \"yes\" to cancel it, or \"no\" to keep it.")
        }
    }
}

pub(crate) fn cancelled(lang: Lang, id: &str) -> String {
    match lang {
        Lang::Zh => format!("订单 {id} 已取消，已付款项将原路退回。"),
        Lang::En => format!(
            "Order {id} is cancelled. Any payment will be refunded to the original payment method."
        ),
    }
}

pub(crate) fn kept(lang: Lang, id: &str) -> String {
    match lang {
        Lang::Zh => format!("好的，订单 {id} 没有取消。"),
        Lang::En => format!("OK, order {id} stays as it is."),
    }
}

pub(crate) fn cannot_cancel(lang: Lang, id: &str, status: OrderStatus) -> String {
    let state = status_text(lang, status);
    match (lang, status.returnable()) {
        (Lang::Zh, true) => {
            format!("订单 {id} {state}，无法取消。收到商品后可以申请退货，回复“我要退货”即可。")
        }
        (Lang::Zh, false) => format!("订单 {id} {state}，无法取消。"),
        (Lang::En, true) => format!(
            "Order {id} is {state}, so it can't be cancelled any more. Once it arrives you can return it: just say \"I want to return it\"."
        ),
        (Lang::En, false) => format!("Order {id} is {state}, so it can't be cancelled."),
    }
}

fn kind_text(lang: Lang, kind: ReturnKind) -> &'static str {
    match (lang, kind) {
        (Lang::Zh, ReturnKind::Return) => "退货",
        (Lang::Zh, ReturnKind::Exchange) => "换货",
        (Lang::En, ReturnKind::Return) => "return",
        (Lang::En, ReturnKind::Exchange) => "exchange",
    }
}

pub(crate) fn ask_reason(lang: Lang, kind: ReturnKind) -> String {
    let kind = kind_text(lang, kind);
    match lang {
        Lang::Zh => format!("请简单说明{kind}的原因（例如尺码不合适、质量问题）。"),
        Lang::En => format!("What's the reason for the {kind} (e.g. wrong size, damaged)?"),
    }
}

pub(crate) fn cannot_return(lang: Lang, id: &str, status: OrderStatus) -> String {
    let state = status_text(lang, status);
    match (lang, status.cancellable()) {
        (Lang::Zh, true) => {
            format!("订单 {id} {state}，还没有发出，可以直接取消：回复“取消订单{id}”即可。")
        }
        (Lang::Zh, false) => format!("订单 {id} {state}，无需再申请退换货。"),
        (Lang::En, true) => format!(
            "Order {id} is {state} and hasn't shipped yet, so you can simply cancel it: reply \"cancel order {id}\"."
        ),
        (Lang::En, false) => format!("Order {id} is {state}; there is nothing to send back."),
    }
}

pub(crate) fn return_requested(lang: Lang, kind: ReturnKind, ticket: &str) -> String {
    let kind = kind_text(lang, kind);
    match lang {
        Lang::Zh => {
            format!("已为您提交{kind}申请，工单号 {ticket}。客服会尽快联系您安排后续事宜。")
        }
        Lang::En => format!(
            "Your {kind} request is in, ticket {ticket}. An agent will contact you shortly about the next steps."
        ),
    }
}

/// The one-line record agents see beside the conversation.
pub(crate) fn return_note(kind: ReturnKind, ticket: &str, id: &str, reason: &str) -> String {
    format!(
        "{} request {ticket} for order {id}; reason: {reason}",
        match kind {
            ReturnKind::Return => "Return",
            ReturnKind::Exchange => "Exchange",
        }
    )
}
