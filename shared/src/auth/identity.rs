//! The shop-signed customer identity (scheme documented in [`crate::auth`]).

use crate::{Error, Result};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::sync::Arc;

/// How long a signed identity is accepted after its timestamp, in seconds.
pub const IDENTITY_MAX_AGE_SECS: i64 = 600;

/// How far in the future a timestamp may be (clock skew), in seconds.
pub const IDENTITY_MAX_SKEW_SECS: i64 = 60;

const MAX_CUSTOMER_ID_CHARS: usize = 128;
const MAX_NAME_CHARS: usize = 100;

/// An identity as sent by the widget, signed by the shop's server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedIdentity {
    /// The shop's id for the customer.
    pub customer_id: String,
    /// Display name, if the shop shares it.
    #[serde(default)]
    pub name: Option<String>,
    /// When the shop signed it, Unix seconds.
    pub timestamp: i64,
    /// Lowercase hex HMAC-SHA256 of [`canonical_identity`].
    pub signature: String,
}

/// A customer the shop vouched for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCustomer {
    /// The shop's id for the customer.
    pub customer_id: String,
    /// Display name, if given (empty names are `None`).
    pub name: Option<String>,
}

/// The string the shop signs: `kefu-identity-v1\n<customer_id>\n<name or "">\n<timestamp>`.
pub fn canonical_identity(customer_id: &str, name: Option<&str>, timestamp: i64) -> String {
    format!(
        "kefu-identity-v1\n{customer_id}\n{}\n{timestamp}",
        name.unwrap_or_default()
    )
}

/// `KEFU_SHOP_IDENTITY_SECRET`: verifies (and, for tests and simulators, creates) signed
/// identities.
#[derive(Clone)]
pub struct ShopIdentitySecret {
    key: Arc<[u8]>,
}

impl std::fmt::Debug for ShopIdentitySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ShopIdentitySecret { key: <redacted> }")
    }
}

impl ShopIdentitySecret {
    /// The shop's secret, at least [`super::MIN_SECRET_BYTES`] bytes.
    pub fn new(secret: impl AsRef<[u8]>) -> Result<Self> {
        let secret = secret.as_ref();
        super::check_secret("KEFU_SHOP_IDENTITY_SECRET", secret)?;
        Ok(Self { key: secret.into() })
    }

    /// What the shop's server computes: the hex signature of an identity.
    pub fn sign(&self, customer_id: &str, name: Option<&str>, timestamp: i64) -> String {
        hex::encode(
            self.mac(customer_id, name, timestamp)
                .finalize()
                .into_bytes(),
        )
    }

    /// Checks an identity at `now_secs` (Unix seconds): malformed fields are
    /// [`Error::Invalid`]; a wrong signature or a timestamp outside
    /// `now - IDENTITY_MAX_AGE_SECS ..= now + IDENTITY_MAX_SKEW_SECS` is
    /// [`Error::Unauthorized`].
    pub fn verify(&self, identity: &SignedIdentity, now_secs: i64) -> Result<VerifiedCustomer> {
        let customer_id = identity.customer_id.as_str();
        check_field(
            "identity.customer_id",
            customer_id,
            1,
            MAX_CUSTOMER_ID_CHARS,
        )?;
        let name = identity.name.as_deref().filter(|n| !n.is_empty());
        if let Some(name) = name {
            check_field("identity.name", name, 1, MAX_NAME_CHARS)?;
        }
        let signature = hex::decode(&identity.signature)
            .ok()
            .filter(|bytes| bytes.len() == 32)
            .ok_or_else(|| Error::Invalid("identity.signature must be 64 hex characters".into()))?;
        self.mac(customer_id, name, identity.timestamp)
            .verify_slice(&signature)
            .map_err(|_| Error::Unauthorized("identity signature does not match".into()))?;
        let age = now_secs.saturating_sub(identity.timestamp);
        if age > IDENTITY_MAX_AGE_SECS {
            return Err(Error::Unauthorized("identity timestamp has expired".into()));
        }
        if age < -IDENTITY_MAX_SKEW_SECS {
            return Err(Error::Unauthorized(
                "identity timestamp is in the future".into(),
            ));
        }
        Ok(VerifiedCustomer {
            customer_id: customer_id.to_owned(),
            name: name.map(str::to_owned),
        })
    }

    fn mac(&self, customer_id: &str, name: Option<&str>, timestamp: i64) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key size");
        mac.update(canonical_identity(customer_id, name, timestamp).as_bytes());
        mac
    }
}

/// Length in characters within bounds and no control characters (they would make the
/// newline-separated canonical string ambiguous).
fn check_field(field: &str, value: &str, min: usize, max: usize) -> Result<()> {
    let chars = value.chars().count();
    if chars < min || chars > max {
        return Err(Error::Invalid(format!(
            "{field} must be {min}–{max} characters long"
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::Invalid(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example published in the module docs (and the README).
    const SECRET: &str = "shop-secret-0123456789";
    const EXAMPLE_SIGNATURE: &str =
        "89e0ae44fc5658e6a755615de453e6a083638f45be1079e92d766eb04d6620fd";
    const TS: i64 = 1_700_000_000;

    fn secret() -> ShopIdentitySecret {
        ShopIdentitySecret::new(SECRET).unwrap()
    }

    fn example() -> SignedIdentity {
        SignedIdentity {
            customer_id: "42".into(),
            name: Some("Li Lei".into()),
            timestamp: TS,
            signature: EXAMPLE_SIGNATURE.into(),
        }
    }

    #[test]
    fn given_the_documented_example_when_signed_then_signature_matches_openssl() {
        assert_eq!(
            canonical_identity("42", Some("Li Lei"), TS),
            "kefu-identity-v1\n42\nLi Lei\n1700000000"
        );
        assert_eq!(secret().sign("42", Some("Li Lei"), TS), EXAMPLE_SIGNATURE);
    }

    #[test]
    fn given_a_fresh_valid_identity_when_verified_then_the_customer_is_returned() {
        let customer = secret().verify(&example(), TS + 30).unwrap();
        assert_eq!(customer.customer_id, "42");
        assert_eq!(customer.name.as_deref(), Some("Li Lei"));
        // Uppercase hex is the same signature.
        let mut upper = example();
        upper.signature = EXAMPLE_SIGNATURE.to_uppercase();
        assert!(secret().verify(&upper, TS).is_ok());
    }

    #[test]
    fn given_an_absent_or_empty_name_when_verified_then_both_sign_as_empty() {
        let signature = secret().sign("42", None, TS);
        for name in [None, Some(String::new())] {
            let identity = SignedIdentity {
                name,
                signature: signature.clone(),
                ..example()
            };
            assert_eq!(secret().verify(&identity, TS).unwrap().name, None);
        }
    }

    #[test]
    fn given_a_changed_field_when_verified_then_unauthorized() {
        let mut other_customer = example();
        other_customer.customer_id = "43".into();
        let mut other_name = example();
        other_name.name = Some("Han Meimei".into());
        let mut other_time = example();
        other_time.timestamp += 1;
        for identity in [other_customer, other_name, other_time] {
            assert!(matches!(
                secret().verify(&identity, TS),
                Err(Error::Unauthorized(_))
            ));
        }
        let wrong_key = ShopIdentitySecret::new("another-shop-secret!").unwrap();
        assert!(matches!(
            wrong_key.verify(&example(), TS),
            Err(Error::Unauthorized(_))
        ));
    }

    #[test]
    fn given_timestamps_outside_the_window_when_verified_then_unauthorized() {
        assert!(
            secret()
                .verify(&example(), TS + IDENTITY_MAX_AGE_SECS)
                .is_ok()
        );
        assert!(matches!(
            secret().verify(&example(), TS + IDENTITY_MAX_AGE_SECS + 1),
            Err(Error::Unauthorized(_))
        ));
        assert!(
            secret()
                .verify(&example(), TS - IDENTITY_MAX_SKEW_SECS)
                .is_ok()
        );
        assert!(matches!(
            secret().verify(&example(), TS - IDENTITY_MAX_SKEW_SECS - 1),
            Err(Error::Unauthorized(_))
        ));
    }

    #[test]
    fn given_malformed_fields_when_verified_then_invalid() {
        let cases = [
            SignedIdentity {
                customer_id: String::new(),
                ..example()
            },
            SignedIdentity {
                customer_id: "4\n2".into(),
                ..example()
            },
            SignedIdentity {
                customer_id: "x".repeat(129),
                ..example()
            },
            SignedIdentity {
                name: Some("a\nb".into()),
                ..example()
            },
            SignedIdentity {
                signature: "zz".into(),
                ..example()
            },
            SignedIdentity {
                signature: "abcd".into(),
                ..example()
            },
        ];
        for identity in cases {
            assert!(
                matches!(secret().verify(&identity, TS), Err(Error::Invalid(_))),
                "{identity:?}"
            );
        }
    }
}
