//! Adapters: `aws` (SDK) and `embedded` (SQLite) implementations of the ports.
#[cfg(feature = "aws")]
pub mod aws;
pub mod demo_orders;
#[cfg(feature = "embedded")]
pub mod embedded;
#[cfg(feature = "order-api")]
pub mod http_orders;
mod prefixed;

pub use prefixed::PrefixedBlobs;
