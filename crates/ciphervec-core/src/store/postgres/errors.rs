//! PostgreSQL failures as the core's typed errors: the database unreachable or not
//! answering is `ERR_UNAVAILABLE` (calls fail until it is back, and the pool reconnects by
//! itself); a write lock held elsewhere past `lockTimeoutMs` is `ERR_LOCKED`; anything else
//! the server refuses is `ERR_IO`, with its SQLSTATE. Messages never hold the connection
//! string.

use deadpool_postgres::PoolError;
use tokio_postgres::error::SqlState;

use crate::error::Error;

/// `e`, which happened while doing `what`.
pub(crate) fn from_pg(what: &str, e: tokio_postgres::Error) -> Error {
    let Some(db) = e.as_db_error() else {
        // No answer from the server: the connection failed, closed or timed out. The causes
        // say which (a refused certificate, a refused connection, ...).
        let mut message = format!("{what}: {e}");
        let mut cause = std::error::Error::source(&e);
        while let Some(c) = cause {
            message.push_str(&format!(": {c}"));
            cause = c.source();
        }
        return Error::Unavailable(message);
    };
    let code = db.code();
    if *code == SqlState::LOCK_NOT_AVAILABLE {
        return Error::Locked(format!(
            "{what}: another process held the index's write lock for longer than lockTimeoutMs; \
             retry, or raise storage.lockTimeoutMs"
        ));
    }
    if *code == SqlState::QUERY_CANCELED {
        return Error::Unavailable(format!("{what}: the database cancelled the statement (statement timeout)"));
    }
    // Class 08 (connection exception), 57P (operator intervention: shutdown, restart), 53300
    // (too many connections): the database is there but not serving.
    let class = &code.code()[..2];
    if class == "08" || code.code().starts_with("57P") || *code == SqlState::TOO_MANY_CONNECTIONS {
        return Error::Unavailable(format!("{what}: {} ({})", db.message(), code.code()));
    }
    Error::Io(format!("{what}: the database refused it: {} (SQLSTATE {})", db.message(), code.code()))
}

/// A pool failure while doing `what`.
pub(crate) fn from_pool(what: &str, e: PoolError) -> Error {
    match e {
        PoolError::Backend(e) => from_pg(what, e),
        PoolError::Timeout(kind) => Error::Unavailable(format!("{what}: no database connection in time ({kind:?})")),
        PoolError::Closed => Error::Closed("the PostgreSQL store".into()),
        PoolError::NoRuntimeSpecified | PoolError::PostCreateHook(_) => {
            Error::Internal(format!("{what}: the connection pool is misconfigured"))
        }
    }
}
