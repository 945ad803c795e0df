//! Tokens and passwords.
