//! The FAQ engine's error type.

/// What can go wrong building, loading or asking an FAQ index.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The FAQ source or a labelled set was rejected; the message names the problem.
    #[error("invalid input: {0}")]
    Invalid(String),
    /// A bundle or model could not be decoded.
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// The index library or the file system failed.
    #[error("{context}")]
    Index {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Error {
    /// An [`Error::Index`] with what was being done.
    pub fn backend(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Error::Index {
            context: context.into(),
            source: source.into(),
        }
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
