//! The sms-webhook Lambda.
