//! One pooled connection held for a transaction across several calls: the snapshot of a
//! load or a catch-up (`REPEATABLE READ READ ONLY`), or the write of one index (which holds
//! the index's row lock until it commits).
//!
//! Every statement is one bounded call on the store's runtime. A statement that fails, times
//! out or is cancelled leaves the transaction in an unknown state (a `BEGIN` or `COMMIT` may
//! still be on its way), so the connection is closed, not returned to the pool ([`InFlight`]);
//! a session dropped before it finished rolls back (in the background) and returns its
//! connection only if that works.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use deadpool_postgres::{Object, Pool};
use tokio::sync::Mutex;

use crate::error::{Error, Result};
use crate::store::postgres::errors::{from_pg, from_pool};
use crate::store::postgres::Inner;

/// A statement's future, borrowing the connection.
pub(crate) type Query<'c, T> = Pin<Box<dyn Future<Output = std::result::Result<T, tokio_postgres::Error>> + Send + 'c>>;

/// A pooled connection: a `tokio_postgres::Client` with the pool's per-connection cache of
/// prepared statements ([`Conn::prepare_cached`]). A statement given as text is prepared anew,
/// one more round trip, so the statements of every write and catch-up are cached.
pub(crate) type Conn = deadpool_postgres::ClientWrapper;

/// See the module docs.
pub(crate) struct Session {
    pub(crate) inner: Arc<Inner>,
    /// `None` once the connection was closed after a failure.
    conn: Arc<Mutex<Option<Object>>>,
    finished: bool,
}

/// Takes a connection from `pool` (on the runtime).
pub(crate) async fn checkout(pool: &Pool, what: &str) -> Result<Object> {
    pool.get().await.map_err(|e| from_pool(what, e))
}

/// A pooled connection with a statement under way. Dropped before [`InFlight::release`] (the
/// statement failed, or its future was dropped at a timeout), it closes the connection instead
/// of handing it back to the pool, where the next caller would find it inside a transaction
/// it knows nothing about.
pub(crate) struct InFlight(Option<Object>);

impl InFlight {
    pub(crate) fn new(object: Object) -> InFlight {
        InFlight(Some(object))
    }

    pub(crate) fn client(&self) -> &Conn {
        self.0.as_ref().expect("an InFlight holds its connection until released")
    }

    /// The statement finished cleanly: the connection can be used again.
    pub(crate) fn release(mut self) -> Object {
        self.0.take().expect("an InFlight holds its connection until released")
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(object) = self.0.take() {
            drop(Object::take(object));
        }
    }
}

/// Runs `query` on `conn`; a failure or a cancellation closes the connection (see the module
/// docs).
pub(crate) async fn on_conn<T>(
    conn: &Mutex<Option<Object>>,
    what: &str,
    query: impl for<'c> FnOnce(&'c Conn) -> Query<'c, T>,
) -> Result<T> {
    let mut guard = conn.lock().await;
    let Some(object) = guard.take() else {
        return Err(Error::Unavailable(format!("{what}: the connection was lost earlier in this transaction")));
    };
    let in_flight = InFlight::new(object);
    let out = query(in_flight.client()).await.map_err(|e| from_pg(what, e))?;
    *guard = Some(in_flight.release());
    Ok(out)
}

impl Session {
    /// A session on a fresh connection that has run `begin` (e.g. `BEGIN`).
    pub(crate) fn begin(inner: &Arc<Inner>, what: &str, begin: String) -> Result<Session> {
        let pool = inner.pool.clone();
        let label = what.to_string();
        let object = inner.run(inner.limits.query, what, async move {
            let object = InFlight::new(checkout(&pool, &label).await?);
            object.client().batch_execute(&begin).await.map_err(|e| from_pg(&label, e))?;
            Ok(object.release())
        })?;
        Ok(Session { inner: Arc::clone(inner), conn: Arc::new(Mutex::new(Some(object))), finished: false })
    }

    /// Runs one statement of the transaction, bounded by the query timeout.
    pub(crate) fn run<T: Send + 'static>(
        &self,
        what: &str,
        query: impl for<'c> FnOnce(&'c Conn) -> Query<'c, T> + Send + 'static,
    ) -> Result<T> {
        self.run_within(self.inner.limits.query, what, query)
    }

    /// [`Session::run`] bounded by `limit`.
    pub(crate) fn run_within<T: Send + 'static>(
        &self,
        limit: std::time::Duration,
        what: &str,
        query: impl for<'c> FnOnce(&'c Conn) -> Query<'c, T> + Send + 'static,
    ) -> Result<T> {
        let conn = Arc::clone(&self.conn);
        let label = what.to_string();
        self.inner.run(limit, what, async move { on_conn(&conn, &label, query).await })
    }

    /// The connection, for streaming scans (see `Inner::scan`).
    pub(crate) fn conn(&self) -> Arc<Mutex<Option<Object>>> {
        Arc::clone(&self.conn)
    }

    /// Ends the transaction with `statement` (`COMMIT`); the connection goes back to the pool.
    pub(crate) fn finish(mut self, statement: &'static str) -> Result<()> {
        self.finished = true;
        // A failed COMMIT's outcome is unknown; the connection is closed then (see `on_conn`).
        self.run(statement, move |c| Box::pin(c.batch_execute(statement)))
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let conn = Arc::clone(&self.conn);
        let limit = self.inner.limits.query;
        self.inner.spawn(async move {
            // A rollback that fails or times out closes the connection (`on_conn`).
            let rollback =
                tokio::time::timeout(limit, on_conn(&conn, "rolling back", |c| Box::pin(c.batch_execute("ROLLBACK"))));
            let _ = rollback.await;
        });
    }
}
