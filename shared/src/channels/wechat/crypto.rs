//! The cryptography of WeChat message pushes: the request signatures, and the AES-256-CBC
//! sealing of safe mode (消息加解密).
//!
//! - `signature` = hex SHA-1 over the byte-sorted concatenation of token, timestamp and
//!   nonce; `msg_signature` adds the `Encrypt` field to the sorted parts.
//! - The AES key is `base64(EncodingAESKey + "=")` (43 characters → 32 bytes); the IV is
//!   its first 16 bytes. Padding is PKCS#7 with a block size of **32**, applied by hand
//!   (the cipher itself runs without padding).
//! - The sealed plaintext is `random(16) ‖ len(msg) as u32 BE ‖ msg ‖ appid`; opening it
//!   checks the padding, the length and that the trailing appid is ours.

use crate::{Error, Result};
use aes::Aes256;
use base64::Engine;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use cbc::cipher::block_padding::NoPadding;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use rand::RngCore;
use sha1::{Digest, Sha1};

/// WeChat pads to 32-byte blocks, not to AES's 16.
const PAD_BLOCK: usize = 32;
/// Random bytes in front of every sealed message.
const RANDOM_LEN: usize = 16;
/// Random prefix plus the length field.
const HEADER_LEN: usize = RANDOM_LEN + 4;
/// AES block size: every ciphertext is a whole number of these.
const AES_BLOCK: usize = 16;

/// EncodingAESKeys are generated on the WeChat side with arbitrary bits after the 256th,
/// so the decoder must not insist on canonical trailing bits.
const KEY_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);

/// `signature` of a push or URL verification request.
pub fn signature(token: &str, timestamp: &str, nonce: &str) -> String {
    sorted_sha1(&mut [token, timestamp, nonce])
}

/// `msg_signature` of a safe-mode push or reply: also covers the `Encrypt` field.
pub fn msg_signature(token: &str, timestamp: &str, nonce: &str, encrypt: &str) -> String {
    sorted_sha1(&mut [token, timestamp, nonce, encrypt])
}

/// Compares a computed signature with a received one in constant time (for equal lengths),
/// so response timing does not reveal how much of a forged signature was right.
pub fn signatures_match(expected: &str, received: &str) -> bool {
    let (a, b) = (expected.as_bytes(), received.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Hex SHA-1 of the parts sorted bytewise (`str` ordering is bytewise) and concatenated.
fn sorted_sha1(parts: &mut [&str]) -> String {
    parts.sort_unstable();
    let mut hasher = Sha1::new();
    for part in parts.iter() {
        hasher.update(part.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// The 32-byte AES key decoded from an account's EncodingAESKey.
#[derive(Clone, PartialEq, Eq)]
pub struct AesKey([u8; 32]);

impl AesKey {
    /// Parses the 43-character EncodingAESKey shown in the WeChat admin console.
    pub fn parse(encoding_aes_key: &str) -> Result<Self> {
        let invalid =
            || Error::Invalid("the EncodingAESKey must be the 43 characters WeChat shows".into());
        let trimmed = encoding_aes_key.trim();
        if trimmed.len() != 43 {
            return Err(invalid());
        }
        let bytes = KEY_BASE64
            .decode(format!("{trimmed}="))
            .map_err(|_| invalid())?;
        <[u8; 32]>::try_from(bytes.as_slice())
            .map(Self)
            .map_err(|_| invalid())
    }

    fn iv(&self) -> [u8; 16] {
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&self.0[..16]);
        iv
    }
}

impl std::fmt::Debug for AesKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AesKey(<redacted>)")
    }
}

/// Seals and opens safe-mode messages for one account (key and appid).
#[derive(Debug, Clone)]
pub struct MessageCrypt {
    key: AesKey,
    appid: String,
}

impl MessageCrypt {
    /// The sealer of the account `appid`.
    pub fn new(key: AesKey, appid: impl Into<String>) -> Self {
        Self {
            key,
            appid: appid.into(),
        }
    }

    /// Seals `message` with a fresh random prefix; returns the base64 `Encrypt` value.
    pub fn encrypt(&self, message: &str) -> String {
        let mut random = [0u8; RANDOM_LEN];
        rand::thread_rng().fill_bytes(&mut random);
        self.encrypt_with_random(message, random)
    }

    /// Seals `message` with the given random prefix (deterministic: for test vectors).
    pub fn encrypt_with_random(&self, message: &str, random: [u8; RANDOM_LEN]) -> String {
        // A push or reply is a few kilobytes; the length field cannot overflow.
        let length = u32::try_from(message.len()).unwrap_or(u32::MAX);
        let mut plain = Vec::with_capacity(HEADER_LEN + message.len() + self.appid.len() + 32);
        plain.extend_from_slice(&random);
        plain.extend_from_slice(&length.to_be_bytes());
        plain.extend_from_slice(message.as_bytes());
        plain.extend_from_slice(self.appid.as_bytes());
        let pad = PAD_BLOCK - plain.len() % PAD_BLOCK;
        plain.resize(plain.len() + pad, pad as u8);

        let len = plain.len();
        let cipher = cbc::Encryptor::<Aes256>::new(&self.key.0.into(), &self.key.iv().into());
        // Cannot fail: the buffer was just padded to whole 32-byte blocks.
        let sealed = cipher
            .encrypt_padded_mut::<NoPadding>(&mut plain, len)
            .map(<[u8]>::to_vec)
            .unwrap_or_default();
        STANDARD.encode(sealed)
    }

    /// Opens a base64 `Encrypt` value: `Error::Unauthorized` unless it decrypts with our
    /// key, is well padded and framed, and names our appid.
    pub fn decrypt(&self, encrypt: &str) -> Result<String> {
        let refuse = |why: &str| Error::Unauthorized(format!("encrypted message refused: {why}"));
        let mut data = STANDARD
            .decode(encrypt.trim())
            .map_err(|_| refuse("not base64"))?;
        if data.is_empty() || data.len() % AES_BLOCK != 0 {
            return Err(refuse("not a whole number of AES blocks"));
        }
        let cipher = cbc::Decryptor::<Aes256>::new(&self.key.0.into(), &self.key.iv().into());
        let plain = cipher
            .decrypt_padded_mut::<NoPadding>(&mut data)
            .map_err(|_| refuse("does not decrypt"))?;
        let unpadded = strip_padding(plain).ok_or_else(|| refuse("bad padding"))?;
        if unpadded.len() < HEADER_LEN {
            return Err(refuse("too short"));
        }
        let mut length = [0u8; 4];
        length.copy_from_slice(&unpadded[RANDOM_LEN..HEADER_LEN]);
        let length = u32::from_be_bytes(length) as usize;
        let body = &unpadded[HEADER_LEN..];
        if length > body.len() {
            return Err(refuse("length field exceeds the message"));
        }
        let (message, appid) = body.split_at(length);
        if appid != self.appid.as_bytes() {
            return Err(refuse("sealed for another appid"));
        }
        String::from_utf8(message.to_vec()).map_err(|_| refuse("message is not UTF-8"))
    }
}

/// Removes WeChat's 32-byte-block PKCS#7 padding; `None` when it is malformed.
fn strip_padding(plain: &[u8]) -> Option<&[u8]> {
    let pad = usize::from(*plain.last()?);
    if pad == 0 || pad > PAD_BLOCK || pad > plain.len() {
        return None;
    }
    let (body, padding) = plain.split_at(plain.len() - pad);
    padding
        .iter()
        .all(|&b| usize::from(b) == pad)
        .then_some(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Vectors from wechatpy's tests (tests/test_utils.py, tests/test_crypto.py), as
    // collected in the team's channel reference.
    const TOKEN: &str = "123456";
    const ENCODING_AES_KEY: &str = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR";
    const APPID: &str = "wx49f0ab532d5d035a";
    const NONCE: &str = "461056294";
    const TIMESTAMP: &str = "1411525903";
    const PLAINTEXT: &str = "<xml>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[test]]></Content>\n<FromUserName><![CDATA[wx49f0ab532d5d035a]]></FromUserName>\n<ToUserName><![CDATA[messense]]></ToUserName>\n<AgentID>1</AgentID>\n<CreateTime>1411525903</CreateTime>\n</xml>";
    const ENCRYPT: &str = "9s4gMv99m88kKTh/H8IdkOiMg6bisoy3ypwy9H4hvSPe9nsGaqyw5hhSjdYbcrKk+j3nba4HMOTzHrluLBYqxgNcBqGsL8GqxlhZgURnAtObvesEl5nZ+uBE8bviY0LWke8Zy9V/QYKxNV2FqllNXcfmstttyIkMKCCmVbCFM2JTF5wY0nFhHZSjPUL2Q1qvSUCUld+/WIXrx0oyKQmpB6o8NRrrNrsDf03oxI1p9FxUgMnwKKZeOA/uu+2IEvEBtb7muXsVbwbgX05UPPJvFurDXafG0RQyPR+mf1nDnAtQmmNOuiR5MIkdQ39xn1vWwi1O5oazPoQJz0nTYjxxEE8kv3kFxtAGVRe3ypD3WeK2XeFYFMNMpatF9XiKzHo3";
    const MSG_SIGNATURE: &str = "407518b7649e86ef23978113f92d27afa9296533";

    fn crypt() -> MessageCrypt {
        MessageCrypt::new(AesKey::parse(ENCODING_AES_KEY).unwrap(), APPID)
    }

    #[test]
    fn given_the_published_vector_when_signing_then_the_signature_matches() {
        assert_eq!(
            signature("test", "1410685589", "test"),
            "f21891de399b4e33a1a93c9a7b8a8fffb5a443ff"
        );
    }

    #[test]
    fn given_parts_in_any_order_when_signing_then_the_signature_is_the_same() {
        assert_eq!(signature("a", "b", "c"), signature("c", "a", "b"));
        assert_ne!(signature("a", "b", "c"), signature("a", "b", "d"));
    }

    #[test]
    fn given_the_fixed_random_vector_when_encrypting_then_encrypt_and_msg_signature_match() {
        let encrypt = crypt().encrypt_with_random(PLAINTEXT, *b"1234567890123456");
        assert_eq!(encrypt, ENCRYPT);
        assert_eq!(
            msg_signature(TOKEN, TIMESTAMP, NONCE, &encrypt),
            MSG_SIGNATURE
        );
    }

    #[test]
    fn given_the_vector_ciphertext_when_decrypting_then_the_plaintext_comes_back() {
        assert_eq!(crypt().decrypt(ENCRYPT).unwrap(), PLAINTEXT);
    }

    #[test]
    fn given_messages_of_every_padding_length_when_round_tripped_then_they_come_back() {
        let crypt = crypt();
        for len in 0..70 {
            let message = "字".repeat(len / 3) + &"x".repeat(len % 3);
            let sealed = crypt.encrypt(&message);
            assert_eq!(crypt.decrypt(&sealed).unwrap(), message);
        }
    }

    #[test]
    fn given_two_encryptions_of_one_message_when_compared_then_the_random_prefix_differs() {
        let crypt = crypt();
        assert_ne!(crypt.encrypt("你好"), crypt.encrypt("你好"));
    }

    #[test]
    fn given_a_tampered_ciphertext_when_decrypting_then_it_is_refused() {
        let mut bytes = STANDARD.decode(ENCRYPT).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        let tampered = STANDARD.encode(&bytes);
        assert!(matches!(
            crypt().decrypt(&tampered),
            Err(Error::Unauthorized(_))
        ));
        assert!(matches!(
            crypt().decrypt(&ENCRYPT[..ENCRYPT.len() - 4]),
            Err(Error::Unauthorized(_))
        ));
        assert!(matches!(
            crypt().decrypt("not base64!"),
            Err(Error::Unauthorized(_))
        ));
    }

    #[test]
    fn given_another_appid_when_decrypting_then_it_is_refused() {
        let other = MessageCrypt::new(
            AesKey::parse(ENCODING_AES_KEY).unwrap(),
            "wx0000000000000000",
        );
        let error = other.decrypt(ENCRYPT).unwrap_err();
        assert!(error.to_string().contains("another appid"), "{error}");
    }

    #[test]
    fn given_malformed_keys_when_parsed_then_they_are_refused() {
        assert!(AesKey::parse(&ENCODING_AES_KEY[..42]).is_err());
        assert!(AesKey::parse(&format!("{}!", &ENCODING_AES_KEY[..42])).is_err());
        assert!(AesKey::parse("").is_err());
    }

    #[test]
    fn given_signatures_when_compared_then_only_identical_ones_match() {
        assert!(signatures_match(MSG_SIGNATURE, MSG_SIGNATURE));
        assert!(!signatures_match(MSG_SIGNATURE, &MSG_SIGNATURE[..39]));
        assert!(!signatures_match(
            MSG_SIGNATURE,
            "407518b7649e86ef23978113f92d27afa9296534"
        ));
    }

    #[test]
    fn given_bad_paddings_when_stripped_then_they_are_refused() {
        assert_eq!(strip_padding(&[7, 2, 2]), Some(&[7][..]));
        assert_eq!(strip_padding(&[7, 0]), None);
        assert_eq!(strip_padding(&[7, 1, 2]), None);
        assert_eq!(strip_padding(&[33; 40]), None);
        assert_eq!(strip_padding(&[]), None);
    }
}
