//! Tracing setup.
