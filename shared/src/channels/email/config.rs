//! Email configuration: the shop's support mailbox. [`EmailConfig::from_env`] is for
//! binaries only.

use crate::config;

/// The support mailbox mail comes in to and replies go out from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailConfig {
    /// The local part, lowercased (`support` of `support@shop.example`); replies carry
    /// `Reply-To: <local>+<conversation>@<domain>`.
    pub local: String,
    /// The domain, lowercased.
    pub domain: String,
    /// The display name replies are sent under (`KEFU_EMAIL_NAME`, else the shop name).
    pub display_name: Option<String>,
}

impl EmailConfig {
    /// The mailbox `address` (`support@shop.example`); a plus tag in it is ignored.
    ///
    /// Errors when `address` is not `local@domain`.
    pub fn new(address: &str, display_name: Option<String>) -> crate::Result<Self> {
        let (local, domain) = address
            .trim()
            .rsplit_once('@')
            .filter(|(local, domain)| !local.is_empty() && domain.contains('.'))
            .ok_or_else(|| crate::Error::Invalid(format!("{address:?} is not an email address")))?;
        let local = local.split('+').next().unwrap_or(local);
        Ok(Self {
            local: local.to_ascii_lowercase(),
            domain: domain.to_ascii_lowercase(),
            display_name: display_name.filter(|name| !name.trim().is_empty()),
        })
    }

    /// `KEFU_EMAIL_ADDRESS` (the channel is off when unset) and `KEFU_EMAIL_NAME`
    /// (default `KEFU_SHOP_NAME`).
    pub fn from_env() -> crate::Result<Option<Self>> {
        if config::optional("KEFU_EMAIL_ADDRESS").is_none() {
            return Ok(None);
        }
        Self::from_env_or("").map(Some)
    }

    /// As [`EmailConfig::from_env`], with `default_address` when `KEFU_EMAIL_ADDRESS` is
    /// unset (the local runner's mailbox is always on).
    pub fn from_env_or(default_address: &str) -> crate::Result<Self> {
        let address = config::or("KEFU_EMAIL_ADDRESS", default_address);
        let name =
            config::optional("KEFU_EMAIL_NAME").or_else(|| config::optional("KEFU_SHOP_NAME"));
        Self::new(&address, name)
            .map_err(|e| crate::Error::Config(format!("KEFU_EMAIL_ADDRESS: {e}")))
    }

    /// The bare support address, `local@domain`.
    pub fn address(&self) -> String {
        format!("{}@{}", self.local, self.domain)
    }

    /// Whether `address` is the support mailbox, with or without a `+tag`. SES's receipt
    /// rule covers the whole domain (so that plus addresses arrive); this keeps the rest
    /// of the domain's mail out.
    pub fn is_mailbox(&self, address: &str) -> bool {
        let address = address.trim().trim_start_matches('<').trim_end_matches('>');
        let Some((local, domain)) = address.rsplit_once('@') else {
            return false;
        };
        let local = local.split('+').next().unwrap_or(local);
        local.eq_ignore_ascii_case(&self.local) && domain.eq_ignore_ascii_case(&self.domain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_an_address_when_parsed_then_local_and_domain_are_lowercased() {
        let config = EmailConfig::new("Support+x@Shop.Example", Some("小店".into())).unwrap();
        assert_eq!(config.local, "support");
        assert_eq!(config.domain, "shop.example");
        assert_eq!(config.address(), "support@shop.example");
        assert_eq!(config.display_name.as_deref(), Some("小店"));
    }

    #[test]
    fn given_recipients_when_checked_then_only_the_mailbox_and_its_plus_addresses_match() {
        let config = EmailConfig::new("support@shop.example", None).unwrap();
        for yes in [
            "support@shop.example",
            "Support+c0ffee@SHOP.example",
            "<support@shop.example>",
        ] {
            assert!(config.is_mailbox(yes), "{yes}");
        }
        for no in [
            "sales@shop.example",
            "support@other.example",
            "supporter@shop.example",
            "support",
        ] {
            assert!(!config.is_mailbox(no), "{no}");
        }
    }

    #[test]
    fn given_no_address_when_parsed_then_it_is_refused() {
        for bad in ["", "support", "@shop.example", "support@localhost"] {
            assert!(EmailConfig::new(bad, None).is_err(), "{bad:?}");
        }
    }
}
