//! A [`Storage`] on PostgreSQL that many processes share ([`Sharing`]): what every process
//! writes, the others follow (see `index::follow`).
//!
//! Tables (prefix `table`, default `ciphervec`), created on first use:
//! - `{t}_schema (version)`: the layout's version; a newer one is `ERR_UNSUPPORTED_FORMAT`;
//! - `{t}_spaces (space, head, floor)`: one row per index storage name; `head` is its last
//!   commit, `floor` the first change-log entry kept. A write takes this row's lock
//!   (`SELECT ... FOR UPDATE`), which serialises the index's writers across processes and
//!   numbers their commits without gaps;
//! - `{t}_entries (space, key, value)`: what [`Storage`] stores (derived keys, sealed blobs);
//! - `{t}_log (space, seq, kind, body)`: the change log, written in the same transaction as
//!   the change; a rewrite drops the entries before it.
//!
//! A commit notifies channel `{t}_changes` with `space:seq`; one connection per store listens
//! (and reconnects) and wakes the followers. Training claims are session advisory locks,
//! released when their connection closes, so a process that dies releases its claims.
//! Everything runs on a runtime of the store's own (see `runtime`), every call bounded in
//! time (see [`PostgresOptions`]).

mod conninfo;
mod errors;
mod listen;
mod runtime;
mod session;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use futures_util::{pin_mut, TryStreamExt};

use crate::error::{Error, Result};
use crate::store::postgres::conninfo::{ConnInfo, SslMode};
use crate::store::postgres::errors::{from_pg, from_pool};
use crate::store::postgres::runtime::Runtime;
use crate::store::postgres::session::{checkout, on_conn, Conn, Session};
use crate::store::sharing::{Claim, LogEntry, LogKind, Sharing, Snapshot, Wake, WriteTxn};
use crate::store::{prefix_end, Change, EntryBatch, Storage};

/// A statement parameter (a named array of them outlives the statements sent together).
type Param<'a> = &'a (dyn tokio_postgres::types::ToSql + Sync);

/// The layout version this build writes and reads.
const SCHEMA_VERSION: i32 = 1;
/// Bytes of values per `INSERT` statement, and keys per `ANY($)` list: well below
/// PostgreSQL's 1 GiB message limit, large enough that a batch is a few statements.
const STATEMENT_BYTES: usize = 16 << 20;
const STATEMENT_KEYS: usize = 10_000;

/// How to reach the database, and how long to wait for it.
#[derive(Clone)]
pub struct PostgresOptions {
    /// A libpq connection string: `postgres://user:password@host:port/db?sslmode=verify-full`
    /// or `host=... dbname=...` (see `conninfo` for `sslmode`).
    pub url: String,
    /// Prefix of the tables' names: a lowercase SQL identifier of at most 40 characters.
    pub table: String,
    /// Connections in the pool (besides the listener and held training claims).
    pub pool_size: usize,
    /// How long to wait for a connection to open.
    pub connect_timeout: Duration,
    /// How long any one statement (or batch of a scan) may take before the call fails with
    /// `ERR_UNAVAILABLE`.
    pub query_timeout: Duration,
    /// How long a write waits for another process's write of the same index
    /// (`ERR_LOCKED` after it).
    pub lock_timeout: Duration,
    /// How often followers poll for commits they missed a notification of.
    pub poll_interval: Duration,
}

impl std::fmt::Debug for PostgresOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the URL: it may hold a password.
        f.debug_struct("PostgresOptions").field("table", &self.table).field("pool_size", &self.pool_size).finish()
    }
}

impl PostgresOptions {
    /// The defaults for `url`: table prefix `ciphervec`, 8 connections, 10 s to connect,
    /// 30 s per statement, 60 s for a write lock, polling every second.
    pub fn new(url: impl Into<String>) -> PostgresOptions {
        PostgresOptions {
            url: url.into(),
            table: "ciphervec".into(),
            pool_size: 8,
            connect_timeout: Duration::from_secs(10),
            query_timeout: Duration::from_secs(30),
            lock_timeout: Duration::from_secs(60),
            poll_interval: Duration::from_secs(1),
        }
    }
}

/// The time limits, as the store applies them.
#[derive(Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) query: Duration,
    pub(crate) connect: Duration,
    pub(crate) lock: Duration,
    pub(crate) poll: Duration,
}

/// The names of the store's tables and channel.
pub(crate) struct Tables {
    schema: String,
    spaces: String,
    entries: String,
    log: String,
    pub(crate) channel: String,
}

impl Tables {
    fn new(prefix: &str) -> Result<Tables> {
        let ok = !prefix.is_empty()
            && prefix.len() <= 40
            && prefix.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && prefix.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !ok {
            return Err(Error::invalid(format!(
                "storage.table must be a lowercase SQL name (a-z, 0-9, _; at most 40 characters), got '{prefix}'"
            )));
        }
        Ok(Tables {
            schema: format!("{prefix}_schema"),
            spaces: format!("{prefix}_spaces"),
            entries: format!("{prefix}_entries"),
            log: format!("{prefix}_log"),
            channel: format!("{prefix}_changes"),
        })
    }
}

/// What the store's handles, sessions and tasks share.
pub(crate) struct Inner {
    runtime: RwLock<Option<Runtime>>,
    pub(crate) pool: Pool,
    pub(crate) tables: Tables,
    pub(crate) limits: Limits,
    pub(crate) conninfo: ConnInfo,
    subscribers: Mutex<Vec<Sender<Wake>>>,
    listening: AtomicBool,
    /// Set once the listening connection's first `LISTEN` has run: `subscribe` waits for it,
    /// so a commit right after subscribing is not notified before anyone listens.
    listen_ready: (Mutex<bool>, std::sync::Condvar),
    closed: AtomicBool,
}

impl Inner {
    /// Runs `work` on the runtime (see [`Runtime::run`]).
    pub(crate) fn run<T: Send + 'static>(
        &self,
        limit: Duration,
        what: &str,
        work: impl Future<Output = Result<T>> + Send + 'static,
    ) -> Result<T> {
        let runtime = self.runtime.read().unwrap_or_else(|p| p.into_inner());
        match runtime.as_ref() {
            Some(runtime) if !self.closed.load(Ordering::Acquire) => runtime.run(limit, what, work),
            _ => Err(Error::Closed("the PostgreSQL store".into())),
        }
    }

    /// Starts `work` on the runtime without waiting (nothing if the store is closed).
    pub(crate) fn spawn(&self, work: impl Future<Output = ()> + Send + 'static) {
        if let Some(runtime) = self.runtime.read().unwrap_or_else(|p| p.into_inner()).as_ref() {
            runtime.spawn(work);
        }
    }

    /// One statement on a pooled connection, outside any transaction.
    fn pooled<T: Send + 'static>(
        &self,
        what: &str,
        query: impl for<'c> FnOnce(&'c Conn) -> session::Query<'c, T> + Send + 'static,
    ) -> Result<T> {
        let pool = self.pool.clone();
        let label = what.to_string();
        self.run(self.limits.query, what, async move {
            let conn = tokio::sync::Mutex::new(Some(checkout(&pool, &label).await?));
            on_conn(&conn, &label, query).await
        })
    }

    pub(crate) fn wake(&self, wake: Wake) {
        self.subscribers.lock().unwrap_or_else(|p| p.into_inner()).retain(|s| s.send(wake.clone()).is_ok());
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The listening connection runs `LISTEN` (called after each successful one).
    pub(crate) fn listen_started(&self) {
        let (ready, changed) = &self.listen_ready;
        *ready.lock().unwrap_or_else(|p| p.into_inner()) = true;
        changed.notify_all();
    }
}

/// See the module docs.
#[derive(Clone)]
pub struct PostgresStorage {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PostgresStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStorage").field("table", &self.inner.tables.spaces).finish_non_exhaustive()
    }
}

impl PostgresStorage {
    /// Connects, creates the tables if needed and checks their version. `ERR_UNAVAILABLE`
    /// if the database cannot be reached within the connect and query timeouts,
    /// `ERR_INVALID_ARGUMENT` for a connection string it cannot honour.
    pub fn open(options: PostgresOptions) -> Result<PostgresStorage> {
        let tables = Tables::new(&options.table)?;
        if options.pool_size == 0 || options.pool_size > 1024 {
            return Err(Error::invalid(format!("storage.poolSize must be 1 to 1024, got {}", options.pool_size)));
        }
        let limits = Limits {
            query: options.query_timeout,
            connect: options.connect_timeout,
            lock: options.lock_timeout,
            poll: options.poll_interval,
        };
        for (name, d) in
            [("connectTimeoutMs", limits.connect), ("queryTimeoutMs", limits.query), ("lockTimeoutMs", limits.lock)]
        {
            if d.is_zero() {
                return Err(Error::invalid(format!("storage.{name} must be at least 1")));
            }
        }
        if limits.poll.is_zero() {
            return Err(Error::invalid("storage.pollIntervalMs must be at least 1"));
        }
        let mut conninfo = ConnInfo::parse(&options.url)?;
        conninfo
            .config
            .connect_timeout(limits.connect)
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(30))
            .tcp_user_timeout(limits.query)
            .options(format!("-c statement_timeout={}", limits.query.as_millis()));
        if conninfo.config.get_application_name().is_none() {
            conninfo.config.application_name("ciphervec");
        }
        let manager_config = ManagerConfig { recycling_method: RecyclingMethod::Fast };
        let manager = if conninfo.ssl == SslMode::Disable {
            Manager::from_config(conninfo.config.clone(), tokio_postgres::NoTls, manager_config)
        } else {
            Manager::from_config(conninfo.config.clone(), conninfo.tls()?, manager_config)
        };
        let runtime = Runtime::start()?;
        let pool = Pool::builder(manager)
            .max_size(options.pool_size)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(limits.lock + limits.query))
            .create_timeout(Some(limits.connect))
            .recycle_timeout(Some(limits.query))
            .build()
            .map_err(|e| Error::Internal(format!("connection pool: {e}")))?;
        let inner = Arc::new(Inner {
            runtime: RwLock::new(Some(runtime)),
            pool,
            tables,
            limits,
            conninfo,
            subscribers: Mutex::new(Vec::new()),
            listening: AtomicBool::new(false),
            listen_ready: (Mutex::new(false), std::sync::Condvar::new()),
            closed: AtomicBool::new(false),
        });
        let store = PostgresStorage { inner };
        store.create_tables()?;
        Ok(store)
    }

    fn create_tables(&self) -> Result<()> {
        let t = &self.inner.tables;
        let ddl = format!(
            "BEGIN;
             SELECT pg_advisory_xact_lock(hashtextextended('{schema}', 0));
             CREATE TABLE IF NOT EXISTS {schema} (version integer NOT NULL);
             CREATE TABLE IF NOT EXISTS {spaces} (space text PRIMARY KEY, head bigint NOT NULL, floor bigint NOT NULL);
             CREATE TABLE IF NOT EXISTS {entries} (space text NOT NULL, key bytea NOT NULL, value bytea NOT NULL,
                 PRIMARY KEY (space, key));
             ALTER TABLE {entries} ALTER COLUMN value SET STORAGE EXTERNAL;
             CREATE TABLE IF NOT EXISTS {log} (space text NOT NULL, seq bigint NOT NULL, kind smallint NOT NULL,
                 body bytea NOT NULL, PRIMARY KEY (space, seq));
             INSERT INTO {schema} (version) SELECT {SCHEMA_VERSION} WHERE NOT EXISTS (SELECT 1 FROM {schema});
             COMMIT;",
            schema = t.schema,
            spaces = t.spaces,
            entries = t.entries,
            log = t.log,
        );
        let pool = self.inner.pool.clone();
        let check = format!("SELECT max(version) FROM {}", t.schema);
        let limit = self.inner.limits.connect + self.inner.limits.query;
        let version: Option<i32> = self.inner.run(limit, "creating the tables", async move {
            let conn = tokio::sync::Mutex::new(Some(checkout(&pool, "connecting").await?));
            on_conn(&conn, "creating the tables", move |c| {
                Box::pin(async move {
                    c.batch_execute(&ddl).await?;
                    c.query_one(&check, &[]).await?.try_get(0)
                })
            })
            .await
        })?;
        match version {
            Some(SCHEMA_VERSION) => Ok(()),
            v => Err(Error::UnsupportedFormat(format!(
                "the tables '{}_*' hold layout version {}, and this ciphervec reads version {SCHEMA_VERSION}: \
                 upgrade ciphervec, or use another storage.table",
                self.inner.tables.spaces.trim_end_matches("_spaces"),
                v.map_or("none".to_string(), |v| v.to_string())
            ))),
        }
    }

    /// Rows of every table the store created, as (table, row as text): for tests that look
    /// for plaintext in what the database holds.
    #[cfg(any(test, feature = "test-util"))]
    #[doc(hidden)]
    pub fn dump(&self) -> Result<Vec<(String, String)>> {
        let t = &self.inner.tables;
        let tables = vec![t.schema.clone(), t.spaces.clone(), t.entries.clone(), t.log.clone()];
        self.inner.pooled("dumping the tables", move |c| {
            Box::pin(async move {
                let mut out = Vec::new();
                for table in tables {
                    let rows = c.query(&format!("SELECT t::text FROM {table} t"), &[]).await?;
                    out.extend(rows.into_iter().map(|r| (table.clone(), r.get::<_, String>(0))));
                }
                Ok(out)
            })
        })
    }

    /// The first column of every row `sql` returns, as text, for tests that look at the
    /// session (e.g. whether it is encrypted).
    #[cfg(any(test, feature = "test-util"))]
    #[doc(hidden)]
    pub fn query_text(&self, sql: &str) -> Result<Vec<String>> {
        let sql = sql.to_string();
        self.inner.pooled("running SQL", move |c| {
            Box::pin(async move { Ok(c.query(&sql, &[]).await?.into_iter().map(|r| r.get::<_, String>(0)).collect()) })
        })
    }

    /// Runs `sql` (statements separated by `;`), for tests that change the tables behind
    /// the store's back.
    #[cfg(any(test, feature = "test-util"))]
    #[doc(hidden)]
    pub fn execute(&self, sql: &str) -> Result<()> {
        let sql = sql.to_string();
        self.inner.pooled("running SQL", move |c| Box::pin(async move { c.batch_execute(&sql).await }))
    }

    fn space_exists_sql(&self) -> String {
        format!(
            "INSERT INTO {} (space, head, floor) VALUES ($1, 0, 1) ON CONFLICT (space) DO NOTHING",
            self.inner.tables.spaces
        )
    }
}

/// The statements that apply a batch (after clearing `cleared`), for a session to run one by
/// one: of two changes to one key the last wins.
fn batch_statements(cleared: &[&[u8]], changes: Vec<Change>) -> Vec<Statement> {
    let mut out = Vec::new();
    for prefix in cleared {
        let start = prefix.to_vec();
        match prefix_end(prefix) {
            Some(end) => out.push(Statement::DeleteRange(start, Some(end))),
            None => out.push(Statement::DeleteRange(start, None)),
        }
    }
    let mut last: HashMap<Vec<u8>, Option<Vec<u8>>> = HashMap::with_capacity(changes.len());
    for (k, v) in changes {
        last.insert(k, v);
    }
    let (mut puts, mut dels) = (Vec::new(), Vec::new());
    for (k, v) in last {
        match v {
            Some(v) => puts.push((k, v)),
            None => dels.push(k),
        }
    }
    for chunk in dels.chunks(STATEMENT_KEYS) {
        out.push(Statement::Delete(chunk.to_vec()));
    }
    let (mut keys, mut values, mut bytes) = (Vec::new(), Vec::new(), 0);
    for (k, v) in puts {
        bytes += k.len() + v.len();
        keys.push(k);
        values.push(v);
        if bytes >= STATEMENT_BYTES || keys.len() >= STATEMENT_KEYS {
            out.push(Statement::Put(std::mem::take(&mut keys), std::mem::take(&mut values)));
            bytes = 0;
        }
    }
    if !keys.is_empty() {
        out.push(Statement::Put(keys, values));
    }
    out
}

/// One statement of a batch.
enum Statement {
    DeleteRange(Vec<u8>, Option<Vec<u8>>),
    Delete(Vec<Vec<u8>>),
    Put(Vec<Vec<u8>>, Vec<Vec<u8>>),
}

impl Statement {
    fn run(self, session: &Session, entries: &str, space: &str) -> Result<()> {
        let space = space.to_string();
        match self {
            Statement::DeleteRange(start, end) => {
                let sql = match end {
                    Some(_) => format!("DELETE FROM {entries} WHERE space = $1 AND key >= $2 AND key < $3"),
                    None => format!("DELETE FROM {entries} WHERE space = $1 AND key >= $2"),
                };
                session.run("clearing a key range", move |c| {
                    Box::pin(async move {
                        match &end {
                            Some(end) => c.execute(&c.prepare_cached(&sql).await?, &[&space, &start, end]).await,
                            None => c.execute(&c.prepare_cached(&sql).await?, &[&space, &start]).await,
                        }
                    })
                })?;
            }
            Statement::Delete(keys) => {
                let sql = format!("DELETE FROM {entries} WHERE space = $1 AND key = ANY($2)");
                session.run("deleting entries", move |c| {
                    Box::pin(async move { c.execute(&c.prepare_cached(&sql).await?, &[&space, &keys]).await })
                })?;
            }
            Statement::Put(keys, values) => {
                let sql = format!(
                    "INSERT INTO {entries} (space, key, value) SELECT $1, k, v FROM unnest($2::bytea[], $3::bytea[]) AS t(k, v) \
                     ON CONFLICT (space, key) DO UPDATE SET value = EXCLUDED.value"
                );
                session.run("writing entries", move |c| {
                    Box::pin(async move { c.execute(&c.prepare_cached(&sql).await?, &[&space, &keys, &values]).await })
                })?;
            }
        }
        Ok(())
    }
}

impl PostgresStorage {
    /// Applies a batch in `session` (which is in a transaction).
    fn apply(&self, session: &Session, space: &str, cleared: &[&[u8]], changes: Vec<Change>) -> Result<()> {
        let exists = self.space_exists_sql();
        let name = space.to_string();
        session.run("creating the space", move |c| {
            Box::pin(async move { c.execute(&c.prepare_cached(&exists).await?, &[&name]).await })
        })?;
        for statement in batch_statements(cleared, changes) {
            statement.run(session, &self.inner.tables.entries, space)?;
        }
        Ok(())
    }
}

/// Reads of one space through a connection: a snapshot's, a write's, or a pooled one.
#[derive(Clone)]
struct Reads {
    inner: Arc<Inner>,
    /// `None`: each read takes a pooled connection.
    conn: Option<Arc<tokio::sync::Mutex<Option<deadpool_postgres::Object>>>>,
    /// The only space this reader may read (`None`: any).
    space: Option<String>,
}

impl Reads {
    fn one<T: Send + 'static>(
        &self,
        what: &str,
        query: impl for<'c> FnOnce(&'c Conn) -> session::Query<'c, T> + Send + 'static,
    ) -> Result<T> {
        match &self.conn {
            None => self.inner.pooled(what, query),
            Some(conn) => {
                let conn = Arc::clone(conn);
                let label = what.to_string();
                self.inner.run(self.inner.limits.query, what, async move { on_conn(&conn, &label, query).await })
            }
        }
    }

    fn check_space(&self, space: &str) -> Result<()> {
        match &self.space {
            Some(own) if own != space => {
                Err(Error::Internal(format!("a snapshot of one space read another ({space})")))
            }
            _ => Ok(()),
        }
    }

    fn get(&self, space: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.check_space(space)?;
        let sql = format!("SELECT value FROM {} WHERE space = $1 AND key = $2", self.inner.tables.entries);
        let (space, key) = (space.to_string(), key.to_vec());
        self.one("reading an entry", move |c| {
            Box::pin(async move {
                Ok(c.query_opt(&c.prepare_cached(&sql).await?, &[&space, &key]).await?.map(|r| r.get::<_, Vec<u8>>(0)))
            })
        })
    }

    fn get_many(&self, space: &str, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        self.check_space(space)?;
        let mut found: HashMap<Vec<u8>, Vec<u8>> = HashMap::with_capacity(keys.len());
        for chunk in keys.chunks(STATEMENT_KEYS) {
            let sql =
                format!("SELECT key, value FROM {} WHERE space = $1 AND key = ANY($2)", self.inner.tables.entries);
            let (space, chunk) = (space.to_string(), chunk.to_vec());
            let rows = self.one("reading entries", move |c| {
                Box::pin(async move {
                    let rows = c.query(&c.prepare_cached(&sql).await?, &[&space, &chunk]).await?;
                    Ok(rows.into_iter().map(|r| (r.get::<_, Vec<u8>>(0), r.get::<_, Vec<u8>>(1))).collect::<Vec<_>>())
                })
            })?;
            found.extend(rows);
        }
        Ok(keys.iter().map(|k| found.get(k).cloned()).collect())
    }

    /// Streams the rows of a range to `sink` in batches of about `batch_bytes`, read on the
    /// runtime while the caller's thread runs `sink` on the batch before.
    fn scan(
        &self,
        space: &str,
        start: &[u8],
        end: Option<&[u8]>,
        batch_bytes: usize,
        sink: &mut dyn FnMut(EntryBatch) -> Result<()>,
    ) -> Result<()> {
        self.check_space(space)?;
        let entries = &self.inner.tables.entries;
        let sql = match end {
            Some(_) => {
                format!("SELECT key, value FROM {entries} WHERE space = $1 AND key >= $2 AND key < $3 ORDER BY key")
            }
            None => format!("SELECT key, value FROM {entries} WHERE space = $1 AND key >= $2 ORDER BY key"),
        };
        let (space, start, end) = (space.to_string(), start.to_vec(), end.map(<[u8]>::to_vec));
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<EntryBatch>>(2);
        let limit = self.inner.limits.query;
        let inner = Arc::clone(&self.inner);
        let conn = self.conn.clone();
        let pool = self.inner.pool.clone();
        self.inner.spawn(async move {
            let conn = match conn {
                Some(conn) => conn,
                None => match checkout(&pool, "scanning").await {
                    Ok(object) => Arc::new(tokio::sync::Mutex::new(Some(object))),
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                },
            };
            let mut guard = conn.lock().await;
            let Some(object) = guard.take() else {
                let _ = tx.send(Err(Error::Unavailable("scanning: the connection was lost earlier".into()))).await;
                return;
            };
            // Closed unless the scan ends cleanly (see `InFlight`).
            let in_flight = session::InFlight::new(object);
            let client = in_flight.client();
            let result: std::result::Result<bool, tokio_postgres::Error> = async {
                let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = match &end {
                    Some(end) => vec![&space, &start, end],
                    None => vec![&space, &start],
                };
                let statement = match tokio::time::timeout(limit, client.prepare_cached(&sql)).await {
                    Ok(statement) => statement?,
                    Err(_) => return Ok(false),
                };
                let rows = match tokio::time::timeout(limit, client.query_raw(&statement, params)).await {
                    Ok(rows) => rows?,
                    Err(_) => return Ok(false),
                };
                pin_mut!(rows);
                let mut batch = EntryBatch::with_capacity(batch_bytes.min(16 << 20));
                loop {
                    let row = match tokio::time::timeout(limit, rows.try_next()).await {
                        Ok(row) => row?,
                        Err(_) => return Ok(false),
                    };
                    let Some(row) = row else { break };
                    let (key, value): (&[u8], &[u8]) = (row.get(0), row.get(1));
                    batch.push(key, value);
                    if batch.bytes() >= batch_bytes {
                        let full = std::mem::replace(&mut batch, EntryBatch::with_capacity(batch_bytes.min(16 << 20)));
                        if tx.send(Ok(full)).await.is_err() {
                            return Ok(true); // the caller stopped
                        }
                    }
                }
                if !batch.is_empty() {
                    let _ = tx.send(Ok(batch)).await;
                }
                Ok(true)
            }
            .await;
            match result {
                Ok(true) => *guard = Some(in_flight.release()),
                Ok(false) => {
                    let _ = tx
                        .send(Err(Error::Unavailable(format!(
                            "scanning got no answer within {} ms",
                            limit.as_millis()
                        ))))
                        .await;
                }
                Err(e) => {
                    let _ = tx.send(Err(from_pg("scanning", e))).await;
                }
            }
            drop(guard);
            drop(inner);
        });
        while let Some(batch) = rx.blocking_recv() {
            sink(batch?)?;
        }
        Ok(())
    }
}

impl Reads {
    /// [`Storage::export`] of the spaces this reader may read, each statement on its
    /// connection: consistent when that connection is in a snapshot transaction.
    fn export(&self, batch_bytes: usize, sink: &mut dyn FnMut(&str, EntryBatch) -> Result<()>) -> Result<()> {
        for name in Storage::spaces(self)? {
            let mut sent = false;
            self.scan(&name, b"", None, batch_bytes, &mut |batch| {
                sent = true;
                sink(&name, batch)
            })?;
            if !sent {
                sink(&name, EntryBatch::default())?;
            }
        }
        Ok(())
    }
}

impl Storage for Reads {
    fn get(&self, space: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Reads::get(self, space, key)
    }

    fn get_many(&self, space: &str, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        Reads::get_many(self, space, keys)
    }

    fn write(&self, _: &str, _: Vec<Change>) -> Result<()> {
        Err(Error::Internal("a snapshot is read-only".into()))
    }

    fn scan_range_batches(
        &self,
        space: &str,
        start: &[u8],
        end: Option<&[u8]>,
        batch_bytes: usize,
        sink: &mut dyn FnMut(EntryBatch) -> Result<()>,
    ) -> Result<()> {
        self.scan(space, start, end, batch_bytes, sink)
    }

    fn spaces(&self) -> Result<Vec<String>> {
        let sql = format!("SELECT space FROM {} ORDER BY space", self.inner.tables.spaces);
        let only = self.space.clone();
        let all: Vec<String> = self.one("listing spaces", move |c| {
            Box::pin(async move { Ok(c.query(&sql, &[]).await?.into_iter().map(|r| r.get(0)).collect()) })
        })?;
        Ok(all.into_iter().filter(|s| only.as_ref().is_none_or(|o| o == s)).collect())
    }

    fn drop_space(&self, _: &str) -> Result<()> {
        Err(Error::Internal("a snapshot is read-only".into()))
    }

    fn export(&self, batch_bytes: usize, sink: &mut dyn FnMut(&str, EntryBatch) -> Result<()>) -> Result<()> {
        match self.conn {
            Some(_) => Reads::export(self, batch_bytes, sink),
            None => Err(Error::Internal("an export needs a snapshot transaction".into())),
        }
    }
}

impl Storage for PostgresStorage {
    fn get(&self, space: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.reads().get(space, key)
    }

    fn get_many(&self, space: &str, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        self.reads().get_many(space, keys)
    }

    fn write(&self, space: &str, changes: Vec<Change>) -> Result<()> {
        self.write_clearing(space, &[], changes)
    }

    fn write_clearing(&self, space: &str, cleared: &[&[u8]], changes: Vec<Change>) -> Result<()> {
        let session = Session::begin(&self.inner, "writing a batch", "BEGIN".into())?;
        self.apply(&session, space, cleared, changes)?;
        session.finish("COMMIT")
    }

    fn scan_range_batches(
        &self,
        space: &str,
        start: &[u8],
        end: Option<&[u8]>,
        batch_bytes: usize,
        sink: &mut dyn FnMut(EntryBatch) -> Result<()>,
    ) -> Result<()> {
        self.reads().scan(space, start, end, batch_bytes, sink)
    }

    fn spaces(&self) -> Result<Vec<String>> {
        self.reads().spaces()
    }

    fn drop_space(&self, space: &str) -> Result<()> {
        let session = Session::begin(&self.inner, "deleting an index", "BEGIN".into())?;
        self.drop_in(&session, space)?;
        session.finish("COMMIT")
    }

    /// One `REPEATABLE READ READ ONLY` transaction on one connection: its snapshot is taken
    /// at its first statement (the list of spaces), and every scan after reads that snapshot,
    /// while other connections go on committing. Only the entries are exported: not the
    /// change log, the heads or the claims, which only a shared store has. A space's scan is
    /// one statement that lasts as long as the sink takes for all of it, so the server's
    /// statement timeout is lifted for this transaction; each batch still has to arrive
    /// within the query timeout.
    fn export(&self, batch_bytes: usize, sink: &mut dyn FnMut(&str, EntryBatch) -> Result<()>) -> Result<()> {
        let session = Session::begin(
            &self.inner,
            "starting a backup's snapshot",
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL statement_timeout = 0".into(),
        )?;
        let reads = Reads { inner: Arc::clone(&self.inner), conn: Some(session.conn()), space: None };
        reads.export(batch_bytes, sink)?;
        // Read-only: a rollback ends it as well as a commit would.
        session.finish("ROLLBACK")
    }

    fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        self.inner.subscribers.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.inner.pool.close();
        let runtime = self.inner.runtime.write().unwrap_or_else(|p| p.into_inner()).take();
        drop(runtime);
    }

    fn sharing(&self) -> Option<&dyn Sharing> {
        Some(self)
    }
}

impl PostgresStorage {
    fn reads(&self) -> Reads {
        Reads { inner: Arc::clone(&self.inner), conn: None, space: None }
    }

    /// Deletes a space's rows and notifies its followers, in `session`'s transaction.
    fn drop_in(&self, session: &Session, space: &str) -> Result<()> {
        let t = &self.inner.tables;
        let sql = format!(
            "DELETE FROM {entries} WHERE space = $1; DELETE FROM {log} WHERE space = $1; DELETE FROM {spaces} WHERE space = $1",
            entries = t.entries,
            log = t.log,
            spaces = t.spaces
        );
        let (channel, name) = (t.channel.clone(), space.to_string());
        session.run("deleting an index", move |c| {
            Box::pin(async move {
                for statement in sql.split("; ") {
                    c.execute(statement, &[&name]).await?;
                }
                c.execute("SELECT pg_notify($1, $2)", &[&channel, &format!("{name}:0")]).await?;
                Ok(())
            })
        })
    }
}

/// The read side of a transaction on one space, as of its start.
struct Snap {
    session: Option<Session>,
    reads: Reads,
    head: Option<u64>,
    floor: u64,
}

impl Snap {
    fn log_after(&self, seq: u64) -> Result<Option<Vec<LogEntry>>> {
        let Some(head) = self.head else { return Ok(None) };
        if self.floor > seq + 1 {
            return Ok(None);
        }
        if seq >= head {
            return Ok(Some(Vec::new()));
        }
        let sql = format!(
            "SELECT seq, kind, body FROM {} WHERE space = $1 AND seq > $2 AND seq <= $3 ORDER BY seq",
            self.reads.inner.tables.log
        );
        let space = self.reads.space.clone().unwrap_or_default();
        let (after, upto) = (seq as i64, head as i64);
        let rows = self.reads.one("reading the change log", move |c| {
            Box::pin(async move {
                let rows = c.query(&c.prepare_cached(&sql).await?, &[&space, &after, &upto]).await?;
                Ok(rows
                    .into_iter()
                    .map(|r| (r.get::<_, i64>(0), r.get::<_, i16>(1), r.get::<_, Vec<u8>>(2)))
                    .collect::<Vec<_>>())
            })
        })?;
        let mut out = Vec::with_capacity(rows.len());
        for (seq, kind, body) in rows {
            let kind = match kind {
                0 => LogKind::Write,
                1 => LogKind::Rewrite,
                other => return Err(Error::Corrupt(format!("a change-log entry of unknown kind {other}"))),
            };
            out.push(LogEntry { seq: seq as u64, kind, body });
        }
        if out.len() as u64 != head - seq || out.iter().zip(seq + 1..).any(|(e, s)| e.seq != s) {
            return Ok(None); // not all there: read everything again
        }
        Ok(Some(out))
    }
}

impl Snapshot for Snap {
    fn head(&self) -> Option<u64> {
        self.head
    }

    fn log_after(&self, seq: u64) -> Result<Option<Vec<LogEntry>>> {
        Snap::log_after(self, seq)
    }

    fn reader(&self) -> &dyn Storage {
        &self.reads
    }
}

impl Drop for Snap {
    fn drop(&mut self) {
        // Read-only: ending it is all a rollback does, and it keeps no lock.
        if let Some(session) = self.session.take() {
            let _ = session.finish("ROLLBACK");
        }
    }
}

/// A write of one space (see [`WriteTxn`]).
struct Txn {
    store: PostgresStorage,
    snap: Snap,
}

impl Snapshot for Txn {
    fn head(&self) -> Option<u64> {
        self.snap.head
    }

    fn log_after(&self, seq: u64) -> Result<Option<Vec<LogEntry>>> {
        self.snap.log_after(seq)
    }

    fn reader(&self) -> &dyn Storage {
        &self.snap.reads
    }
}

impl WriteTxn for Txn {
    fn as_snapshot(&self) -> &dyn Snapshot {
        self
    }

    fn commit(
        mut self: Box<Self>,
        cleared: &[&[u8]],
        changes: Vec<Change>,
        kind: LogKind,
        body: Vec<u8>,
    ) -> Result<u64> {
        let session = self.snap.session.take().expect("an open transaction");
        let space = self.snap.reads.space.clone().expect("a write of one space");
        self.store.apply(&session, &space, cleared, changes)?;
        let seq = self.snap.head.unwrap_or(0) + 1;
        let t = &self.store.inner.tables;
        let rewrite = kind == LogKind::Rewrite;
        let sql = [
            format!("INSERT INTO {} (space, seq, kind, body) VALUES ($1, $2, $3, $4)", t.log),
            format!("UPDATE {} SET head = $2, floor = CASE WHEN $3 THEN $2 ELSE floor END WHERE space = $1", t.spaces),
            format!("DELETE FROM {} WHERE space = $1 AND seq < $2", t.log),
        ];
        let channel = t.channel.clone();
        let payload = format!("{space}:{seq}");
        session.run("writing the change log", move |c| {
            Box::pin(async move {
                let seq = seq as i64;
                let (log, head, trim, notify) = futures_util::try_join!(
                    c.prepare_cached(&sql[0]),
                    c.prepare_cached(&sql[1]),
                    c.prepare_cached(&sql[2]),
                    c.prepare_cached("SELECT pg_notify($1, $2)"),
                )?;
                // Sent together (the connection runs them in this order): one round trip.
                let kind = rewrite as i16;
                let trimmed = async {
                    if rewrite {
                        c.execute(&trim, &[&space, &seq]).await?;
                    }
                    Ok::<_, tokio_postgres::Error>(())
                };
                let log_params: [Param; 4] = [&space, &seq, &kind, &body];
                let head_params: [Param; 3] = [&space, &seq, &rewrite];
                let notify_params: [Param; 2] = [&channel, &payload];
                futures_util::try_join!(
                    c.execute(&log, &log_params),
                    c.execute(&head, &head_params),
                    trimmed,
                    c.execute(&notify, &notify_params),
                )?;
                Ok(())
            })
        })?;
        session.finish("COMMIT")?;
        Ok(seq)
    }

    fn drop_space(mut self: Box<Self>) -> Result<()> {
        let session = self.snap.session.take().expect("an open transaction");
        let space = self.snap.reads.space.clone().expect("a write of one space");
        self.store.drop_in(&session, &space)?;
        session.finish("COMMIT")
    }
}

impl Drop for Txn {
    fn drop(&mut self) {
        // Uncommitted: the session rolls back as it drops (in the background).
        drop(self.snap.session.take());
    }
}

/// A training claim: a connection that holds a session advisory lock; closing it (dropping
/// the claim, or the process dying) releases the lock.
struct PgClaim {
    _client: deadpool_postgres::ClientWrapper,
}

impl Claim for PgClaim {}

impl Sharing for PostgresStorage {
    fn begin_write(&self, space: &str) -> Result<Box<dyn WriteTxn>> {
        let limits = self.inner.limits;
        let begin = format!(
            "BEGIN; SET LOCAL lock_timeout = {}; SET LOCAL statement_timeout = {}",
            limits.lock.as_millis(),
            (limits.lock + limits.query).as_millis()
        );
        let session = Session::begin(&self.inner, "starting a write", begin)?;
        let t = &self.inner.tables;
        let insert = format!(
            "INSERT INTO {} (space, head, floor) VALUES ($1, 0, 1) ON CONFLICT (space) DO NOTHING RETURNING head",
            t.spaces
        );
        let lock = format!("SELECT head, floor FROM {} WHERE space = $1 FOR UPDATE", t.spaces);
        let reset = format!("SET LOCAL statement_timeout = {}", limits.query.as_millis());
        let name = space.to_string();
        let (created, head, floor) =
            session.run_within(limits.lock + limits.query, "waiting for the index's write lock", move |c| {
                Box::pin(async move {
                    let (insert, lock) = futures_util::try_join!(c.prepare_cached(&insert), c.prepare_cached(&lock))?;
                    // Sent together, run in this order: the row exists before it is locked.
                    let params: [Param; 1] = [&name];
                    let (created, row, ()) = futures_util::try_join!(
                        c.query_opt(&insert, &params),
                        c.query_one(&lock, &params),
                        c.batch_execute(&reset),
                    )?;
                    Ok((created.is_some(), row.get::<_, i64>(0), row.get::<_, i64>(1)))
                })
            })?;
        let reads =
            Reads { inner: Arc::clone(&self.inner), conn: Some(session.conn()), space: Some(space.to_string()) };
        let head = (!created).then_some(head as u64);
        let snap = Snap { session: Some(session), reads, head, floor: floor as u64 };
        Ok(Box::new(Txn { store: self.clone(), snap }))
    }

    fn snapshot(&self, space: &str) -> Result<Box<dyn Snapshot>> {
        let session = Session::begin(
            &self.inner,
            "starting a snapshot",
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY".into(),
        )?;
        let sql = format!("SELECT head, floor FROM {} WHERE space = $1", self.inner.tables.spaces);
        let name = space.to_string();
        let row = session.run("reading the index's head", move |c| {
            Box::pin(async move {
                Ok(c.query_opt(&c.prepare_cached(&sql).await?, &[&name])
                    .await?
                    .map(|r| (r.get::<_, i64>(0), r.get::<_, i64>(1))))
            })
        })?;
        let reads =
            Reads { inner: Arc::clone(&self.inner), conn: Some(session.conn()), space: Some(space.to_string()) };
        let (head, floor) = match row {
            Some((head, floor)) => (Some(head as u64), floor as u64),
            None => (None, 1),
        };
        Ok(Box::new(Snap { session: Some(session), reads, head, floor }))
    }

    fn heads(&self, spaces: &[&str]) -> Result<Vec<Option<u64>>> {
        let sql = format!("SELECT space, head FROM {} WHERE space = ANY($1)", self.inner.tables.spaces);
        let names: Vec<String> = spaces.iter().map(|s| s.to_string()).collect();
        let rows: HashMap<String, i64> = self.inner.pooled("reading heads", move |c| {
            Box::pin(async move {
                Ok(c.query(&c.prepare_cached(&sql).await?, &[&names])
                    .await?
                    .into_iter()
                    .map(|r| (r.get(0), r.get(1)))
                    .collect())
            })
        })?;
        Ok(spaces.iter().map(|s| rows.get(*s).map(|&h| h as u64)).collect())
    }

    fn try_claim(&self, space: &str, what: &str) -> Result<Option<Box<dyn Claim>>> {
        let pool = self.inner.pool.clone();
        let key = format!("{}:{space}:{what}", self.inner.tables.spaces);
        let client = self.inner.run(self.inner.limits.query, "claiming", async move {
            let object = pool.get().await.map_err(|e| from_pool("claiming", e))?;
            let client = deadpool_postgres::Object::take(object);
            let row = client
                .query_one("SELECT pg_try_advisory_lock(hashtextextended($1, 0))", &[&key])
                .await
                .map_err(|e| from_pg("claiming", e))?;
            Ok(row.get::<_, bool>(0).then_some(client))
        })?;
        Ok(client.map(|c| Box::new(PgClaim { _client: c }) as Box<dyn Claim>))
    }

    fn subscribe(&self) -> Result<Receiver<Wake>> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.inner.subscribers.lock().unwrap_or_else(|p| p.into_inner()).push(tx);
        if !self.inner.listening.swap(true, Ordering::AcqRel) {
            let inner = Arc::downgrade(&self.inner);
            self.inner.spawn(listen::listen(inner));
        }
        // Wait (at most the connect timeout) for the first LISTEN: without it, a commit made
        // right after subscribing could notify before anyone listens and its wake-up be lost
        // (the conformance test saw it once). If the database does not answer in time, go on:
        // lost wake-ups are caught by polling.
        let (ready, changed) = &self.inner.listen_ready;
        let guard = ready.lock().unwrap_or_else(|p| p.into_inner());
        let _ = changed.wait_timeout_while(guard, self.inner.limits.connect, |ready| !*ready);
        Ok(rx)
    }

    fn poll_interval(&self) -> Duration {
        self.inner.limits.poll
    }
}
