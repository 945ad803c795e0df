//! argon2id password hashes (PHC strings) for local agent accounts.
//!
//! Hashing costs tens of milliseconds of CPU by design; call these from
//! `tokio::task::spawn_blocking` in async code.

use crate::{Error, Result};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::RngCore;
use std::sync::OnceLock;

/// Longest password accepted, in bytes (bounds the hashing work per request).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Hashes `password` with argon2id (default OWASP parameters) and a random salt.
pub fn hash_password(password: &str) -> Result<String> {
    if password.is_empty() || password.len() > MAX_PASSWORD_BYTES {
        return Err(Error::Invalid(format!(
            "password must be 1–{MAX_PASSWORD_BYTES} bytes long"
        )));
    }
    let mut salt = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| Error::backend("encoding salt", e))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| Error::backend("hashing password", e))
}

/// Whether `password` matches the PHC string `hash`. A hash that cannot be parsed is
/// [`Error::Corrupt`]; a wrong password is `Ok(false)`.
pub fn verify_password(password: &str, hash: &str) -> Result<bool> {
    let parsed =
        PasswordHash::new(hash).map_err(|e| Error::Corrupt(format!("password hash: {e}")))?;
    if password.len() > MAX_PASSWORD_BYTES {
        return Ok(false);
    }
    match Argon2::default().verify_password(password.as_bytes(), &parsed) {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::Password) => Ok(false),
        Err(e) => Err(Error::Corrupt(format!("password hash: {e}"))),
    }
}

/// Verifies against `hash`, or, when there is no account, against a throwaway hash so
/// that "no such user" takes as long as "wrong password" and cannot be told apart.
pub fn verify_password_or_dummy(password: &str, hash: Option<&str>) -> Result<bool> {
    match hash {
        Some(hash) => verify_password(password, hash),
        None => {
            static DUMMY: OnceLock<String> = OnceLock::new();
            let dummy = match DUMMY.get() {
                Some(dummy) => dummy,
                None => {
                    let hash = hash_password("kefu-no-such-agent")?;
                    DUMMY.get_or_init(|| hash)
                }
            };
            verify_password(password, dummy).map(|_| false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_hash_when_verifying_then_only_the_right_password_matches() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &hash).unwrap());
        assert!(!verify_password("correct horsf", &hash).unwrap());
        assert_ne!(
            hash,
            hash_password("correct horse").unwrap(),
            "salts differ"
        );
    }

    #[test]
    fn given_a_garbage_hash_when_verifying_then_corrupt() {
        assert!(matches!(
            verify_password("x", "not-a-phc"),
            Err(Error::Corrupt(_))
        ));
    }

    #[test]
    fn given_no_account_when_verifying_then_never_matches() {
        assert!(!verify_password_or_dummy("kefu-no-such-agent", None).unwrap());
    }

    #[test]
    fn given_empty_or_huge_passwords_when_hashing_then_invalid() {
        assert!(matches!(hash_password(""), Err(Error::Invalid(_))));
        let huge = "x".repeat(MAX_PASSWORD_BYTES + 1);
        assert!(matches!(hash_password(&huge), Err(Error::Invalid(_))));
    }
}
