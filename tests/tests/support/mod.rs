//! Helpers shared by test binaries (`mod support;`).
pub mod moto;
