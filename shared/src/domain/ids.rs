//! The per-deployment key every derived id is computed under (`KEFU_ID_SECRET`).
//!
//! Conversation and message ids are `HMAC-SHA256(key, input)`, so an id cannot be traced
//! back to the phone number or address it was derived from without the key (an unkeyed
//! digest of a phone number is reversed by trying every number). The key is installed once
//! per process, at start, by every binary that derives ids ([`install_id_secret`], called
//! through `kefu::config::install_id_secret`); the call sites of
//! [`super::ConversationKey::conversation_id`] and the [`super::MessageId`] constructors stay
//! plain functions.
//!
//! Without an installed key, debug builds (tests) use a fixed development key; release
//! builds panic at the first id, so a binary that forgot to install it cannot quietly
//! derive reversible ids in production.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::sync::OnceLock;

/// Shortest accepted secret, in bytes.
pub const MIN_ID_SECRET_BYTES: usize = 16;

/// The key used by debug builds when none was installed (tests only; never a deployment).
#[cfg(debug_assertions)]
const DEVELOPMENT_KEY: &[u8] = b"kefu-development-id-secret";

struct IdKey {
    secret: Vec<u8>,
    mac: Hmac<Sha256>,
}

static KEY: OnceLock<IdKey> = OnceLock::new();

/// Installs `secret` as this process's id key. Installing the same secret again is a no-op;
/// a different one is refused, since ids derived under two keys would never match.
pub fn install_id_secret(secret: &str) -> crate::Result<()> {
    let secret = secret.as_bytes();
    if secret.len() < MIN_ID_SECRET_BYTES {
        return Err(crate::Error::Invalid(format!(
            "KEFU_ID_SECRET must be at least {MIN_ID_SECRET_BYTES} bytes long"
        )));
    }
    let installed = KEY.get_or_init(|| IdKey {
        secret: secret.to_vec(),
        mac: Hmac::new_from_slice(secret).expect("HMAC takes any key size"),
    });
    if installed.secret != secret {
        return Err(crate::Error::Invalid(
            "a different KEFU_ID_SECRET is already installed in this process".into(),
        ));
    }
    Ok(())
}

/// Whether a key was installed (the start-up log says which).
pub fn id_secret_installed() -> bool {
    KEY.get().is_some()
}

/// `<kind>` followed by the first 31 hex digits of `HMAC-SHA256(key, input)`.
pub(super) fn derive(kind: char, input: &str) -> String {
    let mut mac = mac();
    mac.update(input.as_bytes());
    format!("{kind}{}", &hex::encode(mac.finalize().into_bytes())[..31])
}

fn mac() -> Hmac<Sha256> {
    match KEY.get() {
        Some(key) => key.mac.clone(),
        None => uninstalled(),
    }
}

#[cfg(debug_assertions)]
fn uninstalled() -> Hmac<Sha256> {
    Hmac::new_from_slice(DEVELOPMENT_KEY).expect("HMAC takes any key size")
}

#[cfg(not(debug_assertions))]
fn uninstalled() -> Hmac<Sha256> {
    panic!(
        "KEFU_ID_SECRET was not installed before an id was derived (call kefu::config::install_id_secret at start)"
    )
}

/// [`derive`] under an explicit key: what an id would be in another deployment.
#[cfg(test)]
pub(super) fn derive_with(secret: &[u8], kind: char, input: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key size");
    mac.update(input.as_bytes());
    format!("{kind}{}", &hex::encode(mac.finalize().into_bytes())[..31])
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    #[test]
    fn given_a_short_secret_when_installed_then_it_is_refused() {
        assert!(matches!(
            install_id_secret("short"),
            Err(crate::Error::Invalid(_))
        ));
    }

    #[test]
    fn given_a_phone_number_when_its_id_is_derived_then_an_unkeyed_digest_or_another_key_does_not_recompute_it()
     {
        let input = "c:sms:+8613800138000";
        let id = derive('c', input);
        let unkeyed = format!("c{}", &hex::encode(Sha256::digest(input.as_bytes()))[..31]);
        assert_ne!(id, unkeyed, "the id is not a plain digest of the number");
        assert_ne!(
            derive_with(b"another-deployment-secret", 'c', input),
            id,
            "another key gives another id"
        );
        assert_eq!(derive('c', input), id, "stable under one key");
    }

    /// Functions that derive no id: they neither install the key nor get the secret.
    const WITHOUT_IDS: [&str; 2] = ["agent-api", "faq-indexer"];

    #[test]
    fn given_every_function_when_its_main_and_template_entry_are_read_then_each_installs_kefu_id_secret_and_gets_it()
     {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let template = std::fs::read_to_string(root.join("template.yaml")).unwrap();
        let functions = std::fs::read_dir(root.join("functions")).unwrap();
        let mut checked = 0;
        for entry in functions {
            let dir = entry.unwrap().path();
            let name = dir.file_name().unwrap().to_str().unwrap().to_owned();
            if WITHOUT_IDS.contains(&name.as_str()) {
                continue;
            }
            let main = std::fs::read_to_string(dir.join("src/main.rs")).unwrap();
            assert!(
                main.contains("install_id_secret()"),
                "{name}/src/main.rs must call kefu::config::install_id_secret() at start"
            );
            let start = template
                .find(&format!("Binary: {name}\n"))
                .unwrap_or_else(|| panic!("{name} is not in template.yaml"));
            let end = template[start..]
                .find("Type: AWS::Serverless::Function")
                .map_or(template.len(), |n| start + n);
            assert!(
                template[start..end].contains("KEFU_ID_SECRET"),
                "template.yaml must give {name} KEFU_ID_SECRET"
            );
            checked += 1;
        }
        assert!(checked >= 6, "only {checked} functions found");
    }
}
