//! HTTP helpers.
