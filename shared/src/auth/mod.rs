//! Tokens and passwords: kefu-signed bearer tokens for visitors and agents, argon2
//! password hashes for local agent accounts, and the shop-signed customer identity that lets
//! a signed-in shop customer resume their conversation in the web widget.
//!
//! # Bearer tokens
//!
//! `base64url(json claims) "." base64url(HMAC-SHA256(KEFU_TOKEN_SECRET, base64url(json claims)))`,
//! unpadded. Claims: `kind` (`visitor` | `agent`), `sub`, `conv` (visitors only) and `exp`
//! (Unix seconds). See [`TokenSigner`].
//!
//! # Signed customer identity (web widget)
//!
//! When a customer is signed in to the shop, the shop's server can vouch for them so that
//! kefu links the chat to the shop's customer id (and the customer finds the same
//! conversation on every device). The shop's server computes, with the shared secret
//! `KEFU_SHOP_IDENTITY_SECRET`:
//!
//! ```text
//! canonical = "kefu-identity-v1" LF customer_id LF name LF timestamp
//! signature = lowercase hex( HMAC-SHA256(KEFU_SHOP_IDENTITY_SECRET, UTF-8 bytes of canonical) )
//! ```
//!
//! - `LF` is a single `\n` (0x0A); there is no trailing newline.
//! - `customer_id`: the shop's id for the customer, 1–128 characters, no control characters.
//! - `name`: the display name, at most 100 characters, no control characters; an absent
//!   name is signed as the empty string.
//! - `timestamp`: when the shop signed it, Unix seconds in decimal. kefu accepts it for
//!   10 minutes (and up to 1 minute in the future, for clock skew), so sign it when
//!   rendering the page, not once per customer.
//!
//! The widget then sends it when it opens a session:
//!
//! ```json
//! POST /v1/web/sessions
//! {"identity": {"customer_id": "42", "name": "Li Lei", "timestamp": 1700000000,
//!               "signature": "89e0ae44fc5658e6a755615de453e6a083638f45be1079e92d766eb04d6620fd"}}
//! ```
//!
//! Example: with the secret `shop-secret-0123456789`, customer `42`, name `Li Lei` and
//! timestamp `1700000000`, the canonical string is `"kefu-identity-v1\n42\nLi Lei\n1700000000"`
//! and the signature is `89e0ae44fc5658e6a755615de453e6a083638f45be1079e92d766eb04d6620fd`.
//! In a shell:
//!
//! ```text
//! printf 'kefu-identity-v1\n42\nLi Lei\n1700000000' | openssl dgst -sha256 -hmac 'shop-secret-0123456789'
//! ```
//!
//! A wrong signature or a stale timestamp is refused with 401; a malformed identity with 400.

mod identity;
mod password;
mod token;

pub use identity::{
    IDENTITY_MAX_AGE_SECS, IDENTITY_MAX_SKEW_SECS, ShopIdentitySecret, SignedIdentity,
    VerifiedCustomer, canonical_identity,
};
pub use password::{hash_password, verify_password, verify_password_or_dummy};
pub use token::{AGENT_TOKEN_TTL_SECS, Claims, TokenKind, TokenSigner, VISITOR_TOKEN_TTL_SECS};

/// Shortest secret accepted for HMAC keys, in bytes.
pub const MIN_SECRET_BYTES: usize = 16;

fn check_secret(what: &str, secret: &[u8]) -> crate::Result<()> {
    if secret.len() < MIN_SECRET_BYTES {
        return Err(crate::Error::Invalid(format!(
            "{what} must be at least {MIN_SECRET_BYTES} bytes long"
        )));
    }
    Ok(())
}
