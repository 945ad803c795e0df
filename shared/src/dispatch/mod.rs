//! Dispatcher.
