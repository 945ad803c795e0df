//! The settings of one WeChat Official Account.

use super::crypto::AesKey;
use crate::{Error, Result};
use std::collections::HashMap;

/// The API host WeChat documents for the Chinese mainland.
pub const DEFAULT_API_BASE: &str = "https://api.weixin.qq.com";

/// The variables that must all be set to enable the channel.
pub const REQUIRED_SETTINGS: &str =
    "KEFU_WECHAT_TOKEN, KEFU_WECHAT_APPID and KEFU_WECHAT_APPSECRET";

/// One Official Account: its push credentials, its API credentials and how its pushes are
/// answered.
#[derive(Clone, PartialEq, Eq)]
pub struct WechatConfig {
    /// The push token (服务器配置 → Token), `KEFU_WECHAT_TOKEN`: signs every push.
    pub token: String,
    /// The AppID, `KEFU_WECHAT_APPID`.
    pub appid: String,
    /// The AppSecret, `KEFU_WECHAT_APPSECRET`: fetches access tokens.
    pub appsecret: String,
    /// The EncodingAESKey, `KEFU_WECHAT_AES_KEY`. When set, pushes must be encrypted (safe
    /// or compatible mode) and passive replies are encrypted too.
    pub aes_key: Option<AesKey>,
    /// The API base URL without a trailing `/`, `KEFU_WECHAT_API_BASE`.
    pub api_base: String,
    /// Sent as a passive reply to a new follower, `KEFU_WECHAT_WELCOME`; `None`: nothing.
    pub welcome: Option<String>,
    /// Menu button keys → the text treated as the customer's message when the button is
    /// tapped, `KEFU_WECHAT_MENU` (`KEY1=运费怎么算;KEY2=转人工`).
    pub menu: HashMap<String, String>,
}

impl WechatConfig {
    /// An account in plaintext mode with the default API base, no welcome and no menu.
    pub fn new(
        token: impl Into<String>,
        appid: impl Into<String>,
        appsecret: impl Into<String>,
    ) -> Self {
        Self {
            token: token.into(),
            appid: appid.into(),
            appsecret: appsecret.into(),
            aes_key: None,
            api_base: DEFAULT_API_BASE.to_owned(),
            welcome: None,
            menu: HashMap::new(),
        }
    }

    /// Reads the `KEFU_WECHAT_*` variables. `Ok(None)` when none of token, appid and
    /// appsecret is set (the channel is disabled); `Error::Invalid` when only some are, or
    /// when the AES key or the menu is malformed.
    pub fn from_env() -> Result<Option<Self>> {
        Self::from_vars(crate::config::optional)
    }

    /// [`WechatConfig::from_env`] over any lookup (unset or blank → `None`).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>> {
        let var = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let credentials = (
            var("KEFU_WECHAT_TOKEN"),
            var("KEFU_WECHAT_APPID"),
            var("KEFU_WECHAT_APPSECRET"),
        );
        let (token, appid, appsecret) = match credentials {
            (None, None, None) => return Ok(None),
            (Some(token), Some(appid), Some(appsecret)) => (token, appid, appsecret),
            _ => {
                return Err(Error::Invalid(format!(
                    "{REQUIRED_SETTINGS} must be set together"
                )));
            }
        };
        let mut config = Self::new(token.trim(), appid.trim(), appsecret.trim());
        config.aes_key = var("KEFU_WECHAT_AES_KEY")
            .map(|key| AesKey::parse(&key))
            .transpose()
            .map_err(|_| {
                Error::Invalid("KEFU_WECHAT_AES_KEY must be the 43-character EncodingAESKey".into())
            })?;
        // The template says `safe` unless the operator chose `plaintext`: a deployment
        // without the AES key then fails at start instead of taking unencrypted pushes.
        match (
            var("KEFU_WECHAT_MODE").as_deref().map(str::trim),
            &config.aes_key,
        ) {
            (None, _) | (Some("safe"), Some(_)) | (Some("plaintext"), None) => {}
            (Some("safe"), None) => {
                return Err(Error::Invalid(
                    "KEFU_WECHAT_MODE=safe needs KEFU_WECHAT_AES_KEY (or choose plaintext)".into(),
                ));
            }
            (Some("plaintext"), Some(_)) => {
                return Err(Error::Invalid(
                    "KEFU_WECHAT_MODE=plaintext contradicts the KEFU_WECHAT_AES_KEY that is set"
                        .into(),
                ));
            }
            (Some(_), _) => {
                return Err(Error::Invalid(
                    "KEFU_WECHAT_MODE must be safe or plaintext".into(),
                ));
            }
        }
        if let Some(base) = var("KEFU_WECHAT_API_BASE") {
            config.api_base = parse_api_base(&base)?;
        }
        config.welcome = var("KEFU_WECHAT_WELCOME").map(|w| w.trim().to_owned());
        if let Some(menu) = var("KEFU_WECHAT_MENU") {
            config.menu = parse_menu(&menu)?;
        }
        Ok(Some(config))
    }
}

impl std::fmt::Debug for WechatConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WechatConfig")
            .field("token", &"<redacted>")
            .field("appid", &self.appid)
            .field("appsecret", &"<redacted>")
            .field("aes_key", &self.aes_key)
            .field("api_base", &self.api_base)
            .field("welcome", &self.welcome.is_some())
            .field("menu_keys", &self.menu.len())
            .finish()
    }
}

/// An absolute http(s) URL, without a trailing `/`.
fn parse_api_base(raw: &str) -> Result<String> {
    let base = raw.trim().trim_end_matches('/');
    let ok = (base.starts_with("https://") || base.starts_with("http://"))
        && !base.contains(['?', '#', ' ']);
    if ok {
        Ok(base.to_owned())
    } else {
        Err(Error::Invalid(
            "KEFU_WECHAT_API_BASE must be an http(s) URL such as https://api.weixin.qq.com".into(),
        ))
    }
}

/// `KEY1=text one;KEY2=text two` → a map; blank entries are skipped.
fn parse_menu(raw: &str) -> Result<HashMap<String, String>> {
    let mut menu = HashMap::new();
    for entry in raw.split(';').map(str::trim).filter(|e| !e.is_empty()) {
        let parsed = entry
            .split_once('=')
            .map(|(key, text)| (key.trim(), text.trim()))
            .filter(|(key, text)| !key.is_empty() && !text.is_empty());
        let Some((key, text)) = parsed else {
            return Err(Error::Invalid(format!(
                "KEFU_WECHAT_MENU: `{entry}` is not KEY=text"
            )));
        };
        if menu.insert(key.to_owned(), text.to_owned()).is_some() {
            return Err(Error::Invalid(format!(
                "KEFU_WECHAT_MENU: the key `{key}` occurs twice"
            )));
        }
    }
    Ok(menu)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    const CREDENTIALS: [(&str, &str); 3] = [
        ("KEFU_WECHAT_TOKEN", "tok"),
        ("KEFU_WECHAT_APPID", "wx1"),
        ("KEFU_WECHAT_APPSECRET", "sec"),
    ];

    #[test]
    fn given_no_credentials_when_read_then_the_channel_is_disabled() {
        assert_eq!(WechatConfig::from_vars(vars(&[])).unwrap(), None);
        assert_eq!(
            WechatConfig::from_vars(vars(&[("KEFU_WECHAT_TOKEN", " ")])).unwrap(),
            None
        );
    }

    #[test]
    fn given_only_some_credentials_when_read_then_an_error_names_all_three() {
        let error = WechatConfig::from_vars(vars(&CREDENTIALS[..2])).unwrap_err();
        assert!(error.to_string().contains(REQUIRED_SETTINGS), "{error}");
    }

    #[test]
    fn given_every_setting_when_read_then_each_is_parsed() {
        let mut pairs = CREDENTIALS.to_vec();
        pairs.extend([
            (
                "KEFU_WECHAT_AES_KEY",
                "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR",
            ),
            ("KEFU_WECHAT_API_BASE", "http://127.0.0.1:9/"),
            ("KEFU_WECHAT_WELCOME", "欢迎光临"),
            ("KEFU_WECHAT_MENU", "SHIP = 运费怎么算 ; HUMAN=转人工;"),
        ]);
        let config = WechatConfig::from_vars(vars(&pairs)).unwrap().unwrap();
        assert_eq!(config.token, "tok");
        assert_eq!(config.appid, "wx1");
        assert_eq!(config.appsecret, "sec");
        assert!(config.aes_key.is_some());
        assert_eq!(config.api_base, "http://127.0.0.1:9");
        assert_eq!(config.welcome.as_deref(), Some("欢迎光临"));
        assert_eq!(config.menu.len(), 2);
        assert_eq!(config.menu["SHIP"], "运费怎么算");
        assert_eq!(config.menu["HUMAN"], "转人工");
    }

    #[test]
    fn given_defaults_when_read_then_plaintext_mode_on_the_public_api() {
        let config = WechatConfig::from_vars(vars(&CREDENTIALS))
            .unwrap()
            .unwrap();
        assert_eq!(config.aes_key, None);
        assert_eq!(config.api_base, DEFAULT_API_BASE);
        assert_eq!(config.welcome, None);
        assert!(config.menu.is_empty());
    }

    #[test]
    fn given_malformed_settings_when_read_then_the_variable_is_named() {
        for (name, value) in [
            ("KEFU_WECHAT_AES_KEY", "short"),
            ("KEFU_WECHAT_API_BASE", "api.weixin.qq.com"),
            ("KEFU_WECHAT_MENU", "SHIP"),
            ("KEFU_WECHAT_MENU", "A=x;A=y"),
            ("KEFU_WECHAT_MENU", "=x"),
        ] {
            let mut pairs = CREDENTIALS.to_vec();
            pairs.push((name, value));
            let error = WechatConfig::from_vars(vars(&pairs)).unwrap_err();
            assert!(error.to_string().contains(name), "{name}={value}: {error}");
        }
    }

    #[test]
    fn given_a_config_when_debug_printed_then_secrets_are_redacted() {
        let mut config = WechatConfig::new("the-token", "wx1", "the-secret");
        config.aes_key =
            Some(AesKey::parse("kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR").unwrap());
        let printed = format!("{config:?}");
        assert!(!printed.contains("the-token") && !printed.contains("the-secret"));
        assert!(printed.contains("wx1"));
    }

    #[test]
    fn given_a_mode_when_read_then_safe_needs_the_aes_key_and_plaintext_refuses_one() {
        let key = (
            "KEFU_WECHAT_AES_KEY",
            "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR",
        );
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut pairs = CREDENTIALS.to_vec();
            pairs.extend_from_slice(extra);
            WechatConfig::from_vars(vars(&pairs))
        };
        assert!(with(&[("KEFU_WECHAT_MODE", "safe"), key]).is_ok());
        assert!(with(&[("KEFU_WECHAT_MODE", "plaintext")]).is_ok());
        assert!(with(&[]).is_ok(), "unset: the key decides");
        for bad in [
            with(&[("KEFU_WECHAT_MODE", "safe")]),
            with(&[("KEFU_WECHAT_MODE", "plaintext"), key]),
            with(&[("KEFU_WECHAT_MODE", "compatible"), key]),
        ] {
            assert!(matches!(bad, Err(Error::Invalid(_))));
        }
    }
}
