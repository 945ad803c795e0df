//! Web widget API.
