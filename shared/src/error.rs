//! The crate's one error type.

/// Everything that can go wrong in kefu's core, by what the caller should do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input was rejected; the message is safe to show to the client.
    #[error("invalid input: {0}")]
    Invalid(String),
    /// The caller is not authenticated (missing, expired or forged credentials).
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// The thing asked for does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// A conditional write lost: someone else changed or holds the item.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A storage, queue or blob backend failed; the source keeps the details.
    #[error("{context}")]
    Backend {
        /// What was being done.
        context: String,
        /// The backend's own error.
        #[source]
        source: BoxError,
    },
    /// A setting is missing or malformed: the process must not start with it.
    #[error("configuration: {0}")]
    Config(String),
    /// Stored or queued data could not be decoded.
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// Not attempted: what the work needs is paused (a channel's open circuit). Try again
    /// after the duration; queue consumers give the message back without spending an
    /// attempt.
    #[error("paused; try again in {0:?}")]
    Paused(std::time::Duration),
}

impl Error {
    /// Wraps a backend failure with what was being done.
    pub fn backend(context: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Error::Backend {
            context: context.into(),
            source: source.into(),
        }
    }
}

/// Any error, kept as the source of a [`Error::Backend`] (or another crate's error).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `error: cause: cause …`, so one log line shows why a backend call failed.
pub fn cause_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
