//! One error type for the whole core. Every variant has a stable code that the
//! Node addon exposes as `error.code`; tests assert codes, never messages.

/// Result alias used across the core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A failure, with a message that says what was wrong and what to do.
/// Messages never contain key bytes.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// An option or argument value is out of range or malformed.
    #[error("{0}")]
    InvalidArgument(String),
    /// An index key is not 32 bytes.
    #[error("{0}")]
    InvalidKey(String),
    /// A key does not open what it was given for: an index created before names were keyed,
    /// or the store's catalog (the client key).
    #[error("{0}")]
    WrongKey(String),
    /// An index of that name already opens with that key.
    #[error("an index named '{0}' already exists: open it with loadIndex or choose another name")]
    IndexExists(String),
    /// No index of that name opens with that key.
    #[error(
        "no index named '{0}' opens with this key: it does not exist, or it was created with another key \
         (names are stored keyed by the index key, so the store cannot tell which); check the name and the key, \
         or create it with createIndex"
    )]
    IndexNotFound(String),
    /// A vector has another dimension than the index or its batch.
    #[error("{0}")]
    DimensionMismatch(String),
    /// A vector float32 distances cannot be computed for (NaN, too long, ...).
    #[error("{0}")]
    InvalidVector(String),
    /// Authentication failed: stored bytes were altered, moved, lost or rolled back.
    #[error("integrity check failed for {0}: the stored bytes were modified or belong elsewhere")]
    Integrity(String),
    /// Stored data is structurally damaged.
    #[error("{0}")]
    Corrupt(String),
    /// The client was closed or the index deleted.
    #[error("{0} is closed: open a new client or load the index again")]
    Closed(String),
    /// The storage failed with an OS error (disk full, permission denied, ...).
    #[error("storage I/O failed: {0}")]
    Io(String),
    /// Another process or client holds the store (or, in a shared store, the index's write
    /// lock for longer than the configured wait).
    #[error("{0}")]
    Locked(String),
    /// A shared store's database cannot be reached, or did not answer in time.
    #[error("the database is unavailable: {0}; calls fail until it answers again (the client reconnects by itself)")]
    Unavailable(String),
    /// Stored data is in a format version this build does not read.
    #[error("{0}")]
    UnsupportedFormat(String),
    /// A metadata filter is malformed.
    #[error("{0}")]
    InvalidFilter(String),
    /// Training needs more vectors than the index holds.
    #[error("{0}")]
    InsufficientVectors(String),
    /// A training run is already in progress (the message says where).
    #[error("{0}")]
    TrainingInProgress(String),
    /// A call was aborted by its caller's `AbortSignal` (the message says which and what it
    /// left).
    #[error("{0}")]
    Aborted(String),
    /// The data key has sealed nearly all that random nonces allow; a compaction rotates it.
    #[error("{0}")]
    NonceBudget(String),
    /// A bug.
    #[error("internal error: {0} (this is a bug in ciphervec)")]
    Internal(String),
}

impl Error {
    /// The stable machine-readable code, e.g. `ERR_WRONG_KEY`.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidArgument(_) => "ERR_INVALID_ARGUMENT",
            Error::InvalidKey(_) => "ERR_INVALID_KEY",
            Error::WrongKey(_) => "ERR_WRONG_KEY",
            Error::IndexExists(_) => "ERR_INDEX_EXISTS",
            Error::IndexNotFound(_) => "ERR_INDEX_NOT_FOUND",
            Error::DimensionMismatch(_) => "ERR_DIMENSION_MISMATCH",
            Error::InvalidVector(_) => "ERR_INVALID_VECTOR",
            Error::Integrity(_) => "ERR_INTEGRITY",
            Error::Corrupt(_) => "ERR_CORRUPT",
            Error::Closed(_) => "ERR_CLOSED",
            Error::Io(_) => "ERR_IO",
            Error::Locked(_) => "ERR_LOCKED",
            Error::Unavailable(_) => "ERR_UNAVAILABLE",
            Error::UnsupportedFormat(_) => "ERR_UNSUPPORTED_FORMAT",
            Error::InvalidFilter(_) => "ERR_INVALID_FILTER",
            Error::InsufficientVectors(_) => "ERR_INSUFFICIENT_VECTORS",
            Error::TrainingInProgress(_) => "ERR_TRAINING_IN_PROGRESS",
            Error::Aborted(_) => "ERR_ABORTED",
            Error::NonceBudget(_) => "ERR_NONCE_BUDGET",
            Error::Internal(_) => "ERR_INTERNAL",
        }
    }

    /// Every code [`Error::code`] returns, in declaration order: the addon's `ErrorCode`
    /// union and `isCiphervecError` are checked against this list.
    pub const CODES: [&'static str; 20] = [
        "ERR_INVALID_ARGUMENT",
        "ERR_INVALID_KEY",
        "ERR_WRONG_KEY",
        "ERR_INDEX_EXISTS",
        "ERR_INDEX_NOT_FOUND",
        "ERR_DIMENSION_MISMATCH",
        "ERR_INVALID_VECTOR",
        "ERR_INTEGRITY",
        "ERR_CORRUPT",
        "ERR_CLOSED",
        "ERR_IO",
        "ERR_LOCKED",
        "ERR_UNAVAILABLE",
        "ERR_UNSUPPORTED_FORMAT",
        "ERR_INVALID_FILTER",
        "ERR_INSUFFICIENT_VECTORS",
        "ERR_TRAINING_IN_PROGRESS",
        "ERR_ABORTED",
        "ERR_NONCE_BUDGET",
        "ERR_INTERNAL",
    ];

    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidArgument(msg.into())
    }
}

#[cfg(test)]
mod tests {
    use super::Error;

    /// One error of every variant. The match has no wildcard, so a new variant does not
    /// compile until it is added here, and then the test asks for its code in `CODES`.
    fn one_of_each() -> Vec<Error> {
        let s = String::new;
        let all = vec![
            Error::InvalidArgument(s()),
            Error::InvalidKey(s()),
            Error::WrongKey(s()),
            Error::IndexExists(s()),
            Error::IndexNotFound(s()),
            Error::DimensionMismatch(s()),
            Error::InvalidVector(s()),
            Error::Integrity(s()),
            Error::Corrupt(s()),
            Error::Closed(s()),
            Error::Io(s()),
            Error::Locked(s()),
            Error::Unavailable(s()),
            Error::UnsupportedFormat(s()),
            Error::InvalidFilter(s()),
            Error::InsufficientVectors(s()),
            Error::TrainingInProgress(s()),
            Error::Aborted(s()),
            Error::NonceBudget(s()),
            Error::Internal(s()),
        ];
        for e in &all {
            match e {
                Error::InvalidArgument(_)
                | Error::InvalidKey(_)
                | Error::WrongKey(_)
                | Error::IndexExists(_)
                | Error::IndexNotFound(_)
                | Error::DimensionMismatch(_)
                | Error::InvalidVector(_)
                | Error::Integrity(_)
                | Error::Corrupt(_)
                | Error::Closed(_)
                | Error::Io(_)
                | Error::Locked(_)
                | Error::Unavailable(_)
                | Error::UnsupportedFormat(_)
                | Error::InvalidFilter(_)
                | Error::InsufficientVectors(_)
                | Error::TrainingInProgress(_)
                | Error::Aborted(_)
                | Error::NonceBudget(_)
                | Error::Internal(_) => {}
            }
        }
        all
    }

    #[test]
    fn codes_lists_every_variant_code_once() {
        let codes: Vec<&str> = one_of_each().iter().map(Error::code).collect();
        assert_eq!(codes, Error::CODES, "CODES must list every variant's code, in declaration order");
    }
}
