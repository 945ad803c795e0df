//! Wiring for the sms-webhook Lambda.

fn main() {}
