//! The `Client` class.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use std::time::Duration;

use ciphervec_core::{DiskStorage, MemoryStorage, Metric, PostgresOptions, PostgresStorage, Storage};
use napi::bindgen_prelude::{Either, PromiseRaw, Uint8Array, Unknown};
use napi::{Env, ValueType};
use napi_derive::napi;

use crate::abort::Abort;
use crate::index::EncryptedIndex;
use crate::options;
use crate::task;
use crate::types::{
    AutoTrainOptions, BackupOptions, BackupResult, ClientOptions, Consistency, CreateIndexOptions, DistanceMetric,
    LoadIndexOptions, StorageKind, StorageOptions,
};

/// A connection to one storage backend; creates and opens encrypted indexes.
#[napi]
pub struct Client {
    inner: Arc<ciphervec_core::Client>,
    /// Reads catch up with other processes first unless they say otherwise.
    strong: bool,
}

#[napi]
impl Client {
    /// Opens a client on `storage` (required): `{ kind: 'disk', path }` keeps indexes in a
    /// crash-safe file under `path` (`ERR_LOCKED` if another process has it open, `ERR_IO`
    /// with the OS reason if it cannot be created or read); `{ kind: 'postgres', url }` keeps
    /// them in a PostgreSQL database that many processes share (`ERR_UNAVAILABLE` if it cannot
    /// be reached within `connectTimeoutMs`); `{ kind: 'memory' }` keeps them until the process
    /// exits. With `clientKey`, `listIndexes()` lists the store's indexes after a restart.
    #[napi(ts_args_type = "options: ClientOptions")]
    pub fn open<'env>(env: &'env Env, options: Option<Unknown<'env>>) -> napi::Result<PromiseRaw<'env, Client>> {
        let given = options.as_ref().filter(|o| !matches!(o.get_type(), Ok(ValueType::Undefined | ValueType::Null)));
        let Some(given) = given else { return task::reject(env, needs_storage()) };
        let options: ClientOptions = match options::required(env, given, "Client.open") {
            Ok(o) => o,
            Err(e) if e.to_string().ends_with("option storage is required") => {
                return task::reject(env, needs_storage())
            }
            Err(e) => return task::reject(env, e),
        };
        let strong = matches!(options.consistency, Some(Consistency::Strong));
        let client_key = options.client_key.map(|k| k.to_vec());
        // -1 must not wrap to 4,294,967,295 threads.
        let prepared = crate::convert::count(options.threads, "threads")
            .and_then(|threads| Ok((threads, storage_choice(options.storage)?)));
        let (threads, storage) = match prepared {
            Ok(p) => p,
            Err(e) => return task::reject(env, e),
        };
        let work = move || {
            let store: Arc<dyn Storage> = match storage {
                StorageChoice::Memory => Arc::new(MemoryStorage::new()),
                StorageChoice::Disk(path) => Arc::new(DiskStorage::open(path)?),
                StorageChoice::Postgres(options) => Arc::new(PostgresStorage::open(*options)?),
            };
            match client_key {
                Some(key) => ciphervec_core::Client::open_with_key(store, threads, &key),
                None => ciphervec_core::Client::open(store, threads),
            }
        };
        task::spawn(env, work, move |_, inner| Ok(Client { inner: Arc::new(inner), strong }))
    }

    /// 32 random bytes from the operating system's CSPRNG, for use as an index key.
    #[napi]
    pub fn generate_key() -> Uint8Array {
        Uint8Array::new(ciphervec_core::random_key().to_vec())
    }

    /// Creates an index. Rejects with `ERR_INDEX_EXISTS` if an index of this name opens with
    /// this key (the same name under another key is another index) and `ERR_INVALID_KEY` if
    /// the key is not 32 bytes.
    #[napi(ts_args_type = "options: CreateIndexOptions")]
    pub fn create_index<'env>(
        &self,
        env: &'env Env,
        options: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, EncryptedIndex>> {
        let options: CreateIndexOptions = match options::required(env, &options, "createIndex") {
            Ok(o) => o,
            Err(e) => return task::reject(env, e),
        };
        let dimension = match crate::convert::count(options.dimension, "dimension") {
            Ok(d) => d,
            Err(e) => return task::reject(env, e),
        };
        let index_type =
            match crate::convert::index_type(options.index_type.as_deref(), options.pq_dim, options.pq_bits) {
                Ok(t) => t,
                Err(e) => return task::reject(env, e),
            };
        let resident = match crate::convert::resident(options.resident.as_deref()) {
            Ok(r) => r,
            Err(e) => return task::reject(env, e),
        };
        let text = options.text_fields.map(|fields| {
            let mut spec = ciphervec_core::TextSpec::new(fields);
            if let Some(bm25) = &options.bm25 {
                spec.k1 = bm25.k1.map_or(spec.k1, |x| x as f32);
                spec.b = bm25.b.map_or(spec.b, |x| x as f32);
            }
            spec
        });
        let spec = ciphervec_core::IndexSpec {
            dimension,
            metric: Metric::from(options.metric.unwrap_or(DistanceMetric::Euclidean)),
            index_type,
            resident,
            text,
            unindexed: options.unindexed_fields.unwrap_or_default(),
        };
        let key = options.index_key.to_vec();
        let name = match options.index_name.get("indexName") {
            Ok(name) => name,
            Err(e) => return task::reject(env, e),
        };
        open_with(env, options.auto_train.as_ref(), Abort::none(), self.inner.clone(), self.strong, move |client, _| {
            client.create_index_with(&name, &key, &spec)
        })
    }

    /// Opens an existing index. An index is identified by its name and its key (names are
    /// stored keyed by the index key), so a wrong key rejects with `ERR_INDEX_NOT_FOUND`, before
    /// any record is decrypted; only indexes created before names were keyed reject a wrong
    /// key with `ERR_WRONG_KEY`.
    #[napi(ts_args_type = "options: LoadIndexOptions")]
    pub fn load_index<'env>(
        &self,
        env: &'env Env,
        options: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, EncryptedIndex>> {
        let options: LoadIndexOptions = match options::required(env, &options, "loadIndex") {
            Ok(o) => o,
            Err(e) => return task::reject(env, e),
        };
        let key = options.index_key.to_vec();
        let name = match options.index_name.get("indexName") {
            Ok(name) => name,
            Err(e) => return task::reject(env, e),
        };
        let abort = match Abort::on(env, options.signal.as_ref(), "loadIndex") {
            Ok(a) => a,
            Err(e) => return task::reject(env, e),
        };
        open_with(env, options.auto_train.as_ref(), abort, self.inner.clone(), self.strong, move |client, abort| {
            client.load_index_unless(&name, &key, abort)
        })
    }

    /// Names of the indexes that still exist among those created or loaded through this
    /// client and, if it was opened with a `clientKey`, every index in the store's catalog
    /// (created or loaded through any client with that key). Names are otherwise stored only
    /// keyed by their index keys, so a client without the key lists only what it opened.
    /// Rejects with `ERR_INTEGRITY` if a catalog entry was altered.
    #[napi]
    pub fn list_indexes<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, Vec<String>>> {
        let client = self.inner.clone();
        task::spawn(env, move || client.list_indexes(), |_, names| Ok(names))
    }

    /// Writes a consistent snapshot of the whole store this client is open on (every index in
    /// it, as stored: ciphertext, so no key is needed) into a new disk store in directory
    /// `path`, which opens with `Client.open({ storage: { kind: 'disk', path } })` and loads
    /// each index with its key as it was at one moment: each write is wholly in the backup or
    /// not at all. Writes and queries go on meanwhile. Rejects with `ERR_INVALID_ARGUMENT` if
    /// `path` holds a store, is a non-empty directory or is no directory (nothing is written);
    /// a backup that fails leaves no store at `path`.
    #[napi(ts_args_type = "options: BackupOptions")]
    pub fn backup<'env>(&self, env: &'env Env, options: Unknown<'env>) -> napi::Result<PromiseRaw<'env, BackupResult>> {
        let options: BackupOptions = match options::required(env, &options, "backup") {
            Ok(o) => o,
            Err(e) => return task::reject(env, e),
        };
        let client = self.inner.clone();
        task::spawn(
            env,
            move || client.backup(std::path::Path::new(&options.path)),
            |_, stats| {
                Ok(BackupResult {
                    spaces: u32::try_from(stats.spaces).unwrap_or(u32::MAX),
                    entries: stats.entries as f64,
                    bytes: stats.bytes as f64,
                })
            },
        )
    }

    /// Closes the client; later calls on it and its indexes reject with `ERR_CLOSED`. A disk
    /// store's file and lock are released.
    #[napi]
    pub fn close<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, ()>> {
        let client = self.inner.clone();
        task::spawn(
            env,
            move || {
                client.close();
                crate::memory::give_back();
                Ok(())
            },
            |_, ()| Ok(()),
        )
    }

    /// Closes the client, as `close()`: `await using client = await Client.open()` closes it
    /// at the end of the scope.
    #[napi(well_known_symbol = "asyncDispose", ts_return_type = "Promise<void>")]
    pub fn async_dispose<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, ()>> {
        self.close(env)
    }
}

/// `Client.open` without `storage`: there is no default, so nobody loses data by leaving it out.
fn needs_storage() -> ciphervec_core::Error {
    ciphervec_core::Error::InvalidArgument(
        "Client.open needs a storage option: { kind: 'disk', path } keeps indexes in a directory, \
         { kind: 'postgres', url } in a database many processes share, and { kind: 'memory' } only \
         until the process exits"
            .into(),
    )
}

/// A storage backend, as the options chose it.
enum StorageChoice {
    Memory,
    Disk(String),
    Postgres(Box<PostgresOptions>),
}

/// The backend `options` describe; `ERR_INVALID_ARGUMENT` for a missing or misplaced field.
fn storage_choice(options: StorageOptions) -> ciphervec_core::Result<StorageChoice> {
    let StorageOptions {
        kind,
        path,
        url,
        table,
        pool_size,
        connect_timeout_ms,
        query_timeout_ms,
        lock_timeout_ms,
        poll_interval_ms,
    } = options;
    let postgres_only = [
        ("url", url.is_some()),
        ("table", table.is_some()),
        ("poolSize", pool_size.is_some()),
        ("connectTimeoutMs", connect_timeout_ms.is_some()),
        ("queryTimeoutMs", query_timeout_ms.is_some()),
        ("lockTimeoutMs", lock_timeout_ms.is_some()),
        ("pollIntervalMs", poll_interval_ms.is_some()),
    ];
    let misplaced = |kind: &str, given: &[(&str, bool)]| -> ciphervec_core::Result<()> {
        match given.iter().find(|(_, set)| *set) {
            Some((name, _)) => {
                Err(ciphervec_core::Error::InvalidArgument(format!("storage.{name} does not apply to kind '{kind}'")))
            }
            None => Ok(()),
        }
    };
    match kind {
        StorageKind::Memory => {
            misplaced("memory", &[("path", path.is_some())])?;
            misplaced("memory", &postgres_only)?;
            Ok(StorageChoice::Memory)
        }
        StorageKind::Disk => {
            misplaced("disk", &postgres_only)?;
            let path = path.ok_or_else(|| {
                ciphervec_core::Error::InvalidArgument("storage kind 'disk' needs a `path` (a directory)".into())
            })?;
            Ok(StorageChoice::Disk(path))
        }
        StorageKind::Postgres => {
            misplaced("postgres", &[("path", path.is_some())])?;
            let url = url.ok_or_else(|| {
                ciphervec_core::Error::InvalidArgument(
                    "storage kind 'postgres' needs a `url` (a PostgreSQL connection string)".into(),
                )
            })?;
            let mut o = PostgresOptions::new(url);
            if let Some(table) = table {
                o.table = table;
            }
            if let Some(n) = crate::convert::count(pool_size, "storage.poolSize")? {
                o.pool_size = n;
            }
            let ms = |x: Option<f64>, name: &str| -> ciphervec_core::Result<Option<Duration>> {
                Ok(crate::convert::count(x, name)?.map(|ms| Duration::from_millis(ms as u64)))
            };
            if let Some(d) = ms(connect_timeout_ms, "storage.connectTimeoutMs")? {
                o.connect_timeout = d;
            }
            if let Some(d) = ms(query_timeout_ms, "storage.queryTimeoutMs")? {
                o.query_timeout = d;
            }
            if let Some(d) = ms(lock_timeout_ms, "storage.lockTimeoutMs")? {
                o.lock_timeout = d;
            }
            if let Some(d) = ms(poll_interval_ms, "storage.pollIntervalMs")? {
                o.poll_interval = d;
            }
            Ok(StorageChoice::Postgres(Box::new(o)))
        }
    }
}

/// Runs `open` (create or load) off the JS thread, then applies the `autoTrain` option.
fn open_with<'env>(
    env: &'env Env,
    auto_train: Option<&Either<bool, AutoTrainOptions>>,
    abort: Abort,
    client: Arc<ciphervec_core::Client>,
    strong: bool,
    open: impl FnOnce(&ciphervec_core::Client, &AtomicBool) -> ciphervec_core::Result<Arc<ciphervec_core::Index>>
        + Send
        + 'static,
) -> napi::Result<PromiseRaw<'env, EncryptedIndex>> {
    let auto_train = match crate::convert::auto_train(auto_train) {
        Ok(a) => a,
        Err(e) => {
            abort.finish(env);
            return task::reject(env, e);
        }
    };
    let work = move |abort: &AtomicBool| {
        let index = open(&client, abort)?;
        index.set_auto_train(auto_train)?;
        // A load frees its buffers (and, for a trained index, the vectors' first copy) at once.
        crate::memory::give_back();
        Ok(index)
    };
    task::spawn_abortable(env, abort, work, move |_, inner| Ok(EncryptedIndex::new(inner, strong)))
}
