//! The `Client` class.

use std::sync::Arc;

use ciphervec_core::{DiskStorage, MemoryStorage, Metric, Storage};
use napi::bindgen_prelude::{Either, PromiseRaw, Uint8Array};
use napi::Env;
use napi_derive::napi;

use crate::index::EncryptedIndex;
use crate::task;
use crate::types::{
    AutoTrainOptions, ClientOptions, CreateIndexOptions, DistanceMetric, LoadIndexOptions, StorageKind, StorageOptions,
};

/// A connection to one storage backend; creates and opens encrypted indexes.
#[napi]
pub struct Client {
    inner: Arc<ciphervec_core::Client>,
}

#[napi]
impl Client {
    /// Opens a client. Default storage: `{ kind: 'memory' }`; `{ kind: 'disk', path }` keeps
    /// indexes in a crash-safe file under `path` (`ERR_LOCKED` if another process has it open,
    /// `ERR_IO` with the OS reason if it cannot be created or read).
    #[napi]
    pub fn open(env: &Env, options: Option<ClientOptions>) -> napi::Result<PromiseRaw<'_, Client>> {
        let options = options.unwrap_or(ClientOptions { storage: None, threads: None });
        // -1 must not wrap to 4,294,967,295 threads.
        let threads = match crate::convert::count(options.threads, "threads") {
            Ok(t) => t,
            Err(e) => return task::reject(env, e),
        };
        let storage = options.storage;
        let work = move || {
            let store: Arc<dyn Storage> = match storage {
                None | Some(StorageOptions { kind: StorageKind::Memory, .. }) => Arc::new(MemoryStorage::new()),
                Some(StorageOptions { kind: StorageKind::Disk, path: Some(path) }) => {
                    Arc::new(DiskStorage::open(path)?)
                }
                Some(StorageOptions { kind: StorageKind::Disk, path: None }) => {
                    return Err(ciphervec_core::Error::InvalidArgument(
                        "storage kind 'disk' needs a `path` (a directory)".into(),
                    ))
                }
            };
            ciphervec_core::Client::open(store, threads)
        };
        task::spawn(env, work, |_, inner| Ok(Client { inner: Arc::new(inner) }))
    }

    /// 32 random bytes from the operating system's CSPRNG, for use as an index key.
    #[napi]
    pub fn generate_key() -> Uint8Array {
        Uint8Array::new(ciphervec_core::random_key().to_vec())
    }

    /// Creates an index. Rejects with `ERR_INDEX_EXISTS` if an index of this name opens with
    /// this key (the same name under another key is another index) and `ERR_INVALID_KEY` if
    /// the key is not 32 bytes.
    #[napi]
    pub fn create_index<'env>(
        &self,
        env: &'env Env,
        options: CreateIndexOptions,
    ) -> napi::Result<PromiseRaw<'env, EncryptedIndex>> {
        let dimension = match crate::convert::count(options.dimension, "dimension") {
            Ok(d) => d,
            Err(e) => return task::reject(env, e),
        };
        let metric = Metric::from(options.metric.unwrap_or(DistanceMetric::Euclidean));
        let key = options.index_key.to_vec();
        let name = match options.index_name.get("indexName") {
            Ok(name) => name,
            Err(e) => return task::reject(env, e),
        };
        open_with(env, options.auto_train.as_ref(), self.inner.clone(), move |client| {
            client.create_index(&name, &key, dimension, metric)
        })
    }

    /// Opens an existing index. An index is identified by its name and its key (names are
    /// stored keyed by the index key), so a wrong key rejects with `ERR_INDEX_NOT_FOUND`, before
    /// any record is decrypted; only indexes created before names were keyed reject a wrong
    /// key with `ERR_WRONG_KEY`.
    #[napi]
    pub fn load_index<'env>(
        &self,
        env: &'env Env,
        options: LoadIndexOptions,
    ) -> napi::Result<PromiseRaw<'env, EncryptedIndex>> {
        let key = options.index_key.to_vec();
        let name = match options.index_name.get("indexName") {
            Ok(name) => name,
            Err(e) => return task::reject(env, e),
        };
        open_with(env, options.auto_train.as_ref(), self.inner.clone(), move |client| client.load_index(&name, &key))
    }

    /// Names of the indexes created or loaded through this client that still exist. Names
    /// are stored only keyed by their index keys, so a client cannot list indexes it has never opened.
    #[napi]
    pub fn list_indexes<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, Vec<String>>> {
        let client = self.inner.clone();
        task::spawn(env, move || client.list_indexes(), |_, names| Ok(names))
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
}

/// Runs `open` (create or load) off the JS thread, then applies the `autoTrain` option.
fn open_with<'env>(
    env: &'env Env,
    auto_train: Option<&Either<bool, AutoTrainOptions>>,
    client: Arc<ciphervec_core::Client>,
    open: impl FnOnce(&ciphervec_core::Client) -> ciphervec_core::Result<Arc<ciphervec_core::Index>> + Send + 'static,
) -> napi::Result<PromiseRaw<'env, EncryptedIndex>> {
    let auto_train = match crate::convert::auto_train(auto_train) {
        Ok(a) => a,
        Err(e) => return task::reject(env, e),
    };
    let work = move || {
        let index = open(&client)?;
        index.set_auto_train(auto_train)?;
        // A load frees its buffers (and, for a trained index, the vectors' first copy) at once.
        crate::memory::give_back();
        Ok(index)
    };
    task::spawn(env, work, |_, inner| Ok(EncryptedIndex::new(inner)))
}
