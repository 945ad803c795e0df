//! Orders as the shop's order system describes them, and what can go wrong asking for them.
//! The JSON shapes here are the wire contract of `docs/order-api.md`.

use super::Customer;
use serde::{Deserialize, Serialize};

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Placed, not paid yet.
    PendingPayment,
    /// Paid, not shipped yet.
    Paid,
    /// Handed to the carrier.
    Shipped,
    /// Received by the customer.
    Delivered,
    /// Cancelled before shipping.
    Cancelled,
    /// Sent back and refunded.
    Returned,
}

impl OrderStatus {
    /// Whether the order has not left the warehouse, so cancelling is still possible.
    pub fn cancellable(self) -> bool {
        matches!(self, OrderStatus::PendingPayment | OrderStatus::Paid)
    }

    /// Whether a return or exchange can be requested (the parcel is on its way or arrived).
    pub fn returnable(self) -> bool {
        matches!(self, OrderStatus::Shipped | OrderStatus::Delivered)
    }
}

/// Who placed the order: any one matching identity proves the customer owns it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OrderOwner {
    /// Phone number in E.164 (`+8613800138000`), as SMS conversations are addressed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_e164: Option<String>,
    /// WeChat OpenID of the customer for the shop's official account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wechat_openid: Option<String>,
    /// The shop's customer id, as vouched for by the signed web identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
}

impl OrderOwner {
    /// Whether `customer` is this owner: the same verified shop id, or writing from the
    /// order's phone number or WeChat account. Unverified web visitors never match.
    pub fn is(&self, customer: &Customer) -> bool {
        let same = |ours: &Option<String>, theirs: &str| {
            ours.as_deref()
                .is_some_and(|o| !o.is_empty() && o == theirs)
        };
        customer
            .verified_id
            .as_deref()
            .is_some_and(|id| same(&self.customer_id, id))
            || same(&self.phone_e164, &customer.address)
            || same(&self.wechat_openid, &customer.address)
    }
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderItem {
    /// Product name as shown to the customer.
    pub name: String,
    /// How many.
    pub quantity: u32,
}

/// One step of the parcel's journey, as the carrier reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackingEvent {
    /// When, as the shop formats it (RFC 3339 recommended).
    pub at: String,
    /// What happened ("已签收", "Out for delivery").
    pub description: String,
}

/// An order as the shop's order API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// The order number customers quote.
    pub id: String,
    /// Where it is in its life.
    pub status: OrderStatus,
    /// Who placed it.
    pub owner: OrderOwner,
    /// What was ordered.
    pub items: Vec<OrderItem>,
    /// The amount paid, formatted by the shop with its currency ("¥299.00").
    pub total: String,
    /// Carrier name, once shipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carrier: Option<String>,
    /// Carrier's tracking number, once shipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_number: Option<String>,
    /// The parcel's journey, oldest first.
    #[serde(default)]
    pub tracking_events: Vec<TrackingEvent>,
}

/// What a cancel request did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum CancelOutcome {
    /// The order is cancelled now.
    Cancelled,
    /// Too late: the order already moved on (shipped, delivered, cancelled …).
    TooLate {
        /// Its status now.
        status: OrderStatus,
    },
    /// The shop knows no such order.
    NotFound,
}

/// Whether the customer wants their money back or another item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReturnKind {
    /// Send back for a refund.
    Return,
    /// Send back for another size, colour or a working unit.
    Exchange,
}

impl ReturnKind {
    /// The lowercase name used in flow state and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ReturnKind::Return => "return",
            ReturnKind::Exchange => "exchange",
        }
    }

    /// Parses [`ReturnKind::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "return" => Some(ReturnKind::Return),
            "exchange" => Some(ReturnKind::Exchange),
            _ => None,
        }
    }
}

/// The shop's record of a return or exchange request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnTicket {
    /// The shop's ticket id, quoted to the customer.
    pub ticket_id: String,
}

/// Why an [`crate::ports::OrderSource`] call failed. Every variant means the same to the
/// bot: it cannot help with this order right now and hands off to a person.
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    /// The order API could not be reached or did not answer in time.
    #[error("order API unavailable: {context}")]
    Unavailable {
        /// What was being done.
        context: String,
        /// The transport's own error.
        #[source]
        source: crate::BoxError,
    },
    /// The order API answered with a status the contract does not allow.
    #[error("order API answered HTTP {0}")]
    Status(u16),
    /// The answer was not the JSON the contract describes.
    #[error("order API answered malformed JSON")]
    Malformed(#[source] serde_json::Error),
    /// The shop refused the request (unknown order, not eligible for a return …).
    #[error("order API refused: {0}")]
    Refused(String),
}

impl From<OrderError> for crate::Error {
    fn from(error: OrderError) -> Self {
        crate::Error::backend("order API", error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn customer(address: &str, verified: Option<&str>) -> Customer {
        Customer {
            address: address.into(),
            name: None,
            verified_id: verified.map(str::to_owned),
        }
    }

    #[test]
    fn given_owner_when_customer_matches_any_identity_then_is_owner() {
        let owner = OrderOwner {
            phone_e164: Some("+8613800138000".into()),
            wechat_openid: Some("oAbc".into()),
            customer_id: Some("42".into()),
        };
        assert!(owner.is(&customer("web-session-1", Some("42"))));
        assert!(owner.is(&customer("+8613800138000", None)));
        assert!(owner.is(&customer("oAbc", None)));
        assert!(!owner.is(&customer("web-session-1", Some("43"))));
        // An unverified web visitor whose session id happens to be "42" is nobody.
        assert!(!owner.is(&customer("42", None)));
    }

    #[test]
    fn given_owner_without_identities_when_checked_then_empty_addresses_never_match() {
        let owner = OrderOwner {
            phone_e164: Some(String::new()),
            ..OrderOwner::default()
        };
        assert!(!owner.is(&customer("", Some(""))));
    }

    #[test]
    fn given_contract_json_when_parsed_then_fields_and_defaults_are_read() {
        let order: Order = serde_json::from_str(
            r#"{"id":"1","status":"pending_payment","owner":{"customer_id":"42"},
                "items":[{"name":"T恤","quantity":2}],"total":"¥99.00"}"#,
        )
        .expect("contract example parses");
        assert_eq!(order.status, OrderStatus::PendingPayment);
        assert!(order.tracking_events.is_empty());
        let outcome: CancelOutcome =
            serde_json::from_str(r#"{"outcome":"too_late","status":"shipped"}"#).expect("parses");
        assert_eq!(
            outcome,
            CancelOutcome::TooLate {
                status: OrderStatus::Shipped
            }
        );
    }
}
