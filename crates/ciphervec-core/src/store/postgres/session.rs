//! One pooled connection held for a transaction across several calls: the snapshot of a
//! load or a catch-up (`REPEATABLE READ READ ONLY`), or the write of one index (which holds
//! the index's row lock until it commits).
//!
//! Every statement is one bounded call on the store's runtime. A statement that fails or
//! times out leaves the transaction in an unknown state, so the connection is closed, not
//! returned to the pool; a session dropped before it finished rolls back (in the background)
//! and returns its connection only if that works.

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

/// Runs `query` on `conn`; a failure closes the connection (see the module docs).
pub(crate) async fn on_conn<T>(
    conn: &Mutex<Option<Object>>,
    what: &str,
    query: impl for<'c> FnOnce(&'c tokio_postgres::Client) -> Query<'c, T>,
) -> Result<T> {
    let mut guard = conn.lock().await;
    let Some(client) = guard.as_ref() else {
        return Err(Error::Unavailable(format!("{what}: the connection was lost earlier in this transaction")));
    };
    match query(client).await {
        Ok(out) => Ok(out),
        Err(e) => {
            if let Some(object) = guard.take() {
                drop(Object::take(object));
            }
            Err(from_pg(what, e))
        }
    }
}

impl Session {
    /// A session on a fresh connection that has run `begin` (e.g. `BEGIN`).
    pub(crate) fn begin(inner: &Arc<Inner>, what: &str, begin: String) -> Result<Session> {
        let pool = inner.pool.clone();
        let label = what.to_string();
        let object = inner.run(inner.limits.query, what, async move {
            let object = checkout(&pool, &label).await?;
            object.batch_execute(&begin).await.map_err(|e| from_pg(&label, e))?;
            Ok(object)
        })?;
        Ok(Session { inner: Arc::clone(inner), conn: Arc::new(Mutex::new(Some(object))), finished: false })
    }

    /// Runs one statement of the transaction, bounded by the query timeout.
    pub(crate) fn run<T: Send + 'static>(
        &self,
        what: &str,
        query: impl for<'c> FnOnce(&'c tokio_postgres::Client) -> Query<'c, T> + Send + 'static,
    ) -> Result<T> {
        self.run_within(self.inner.limits.query, what, query)
    }

    /// [`Session::run`] bounded by `limit`.
    pub(crate) fn run_within<T: Send + 'static>(
        &self,
        limit: std::time::Duration,
        what: &str,
        query: impl for<'c> FnOnce(&'c tokio_postgres::Client) -> Query<'c, T> + Send + 'static,
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
            let rollback =
                tokio::time::timeout(limit, on_conn(&conn, "rolling back", |c| Box::pin(c.batch_execute("ROLLBACK"))));
            if rollback.await.is_err() {
                // Timed out: whatever the connection is doing, it is not coming back.
                if let Some(object) = conn.lock().await.take() {
                    drop(Object::take(object));
                }
            }
        });
    }
}
