//! A client: one storage backend, one worker pool, and the indexes opened through it.
//!
//! Threading rule (it prevents deadlocks): callers run each operation on their own thread
//! (the addon uses tokio's blocking pool), locks are taken there, and only lock-free parallel
//! sections run on the rayon pool via `install`. A rayon worker waiting inside `join` may steal
//! any queued job; if jobs took locks, it could steal one that blocks on a lock its own stack
//! already holds.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use crate::crypto::{storage_name, IndexKey};
use crate::error::{Error, Result};
use crate::index::Index;
use crate::manifest::HEADER_KEY;
use crate::metric::Metric;
use crate::storage::Storage;

/// Largest accepted index name, in UTF-8 bytes.
pub const MAX_NAME_BYTES: usize = 256;

/// What a client shares with its indexes.
pub(crate) struct Shared {
    pub store: Arc<dyn Storage>,
    pub pool: rayon::ThreadPool,
    pub closed: AtomicBool,
}

/// Owns a storage backend. An index opened twice through one client is the same handle, so
/// two working sets never diverge over one store.
pub struct Client {
    shared: Arc<Shared>,
    /// Serialises create/load/list so "exists?" checks and header writes cannot interleave.
    catalog: Mutex<Catalog>,
}

#[derive(Default)]
struct Catalog {
    open: HashMap<String, Weak<Index>>,
    /// Names seen by this client. Names are stored only as hashes, so a store cannot list them.
    names: BTreeSet<String>,
}

impl Client {
    /// A client over `store` with a worker pool of `threads` threads (0 = one per core).
    pub fn new(store: Arc<dyn Storage>, threads: usize) -> Result<Client> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("ciphervec-{i}"))
            .build()
            .map_err(|e| Error::Internal(format!("could not start worker threads: {e}")))?;
        let shared = Arc::new(Shared { store, pool, closed: AtomicBool::new(false) });
        Ok(Client { shared, catalog: Mutex::new(Catalog::default()) })
    }

    fn check_open(&self) -> Result<()> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(Error::Closed("the client".into()));
        }
        Ok(())
    }

    /// Creates an index; `ERR_INDEX_EXISTS` if the name is taken.
    pub fn create_index(&self, name: &str, key: &[u8], dimension: Option<usize>, metric: Metric) -> Result<Arc<Index>> {
        self.check_open()?;
        check_name(name)?;
        let kek = IndexKey::from_slice(key)?;
        let sname = storage_name(name);
        let mut cat = self.catalog.lock().unwrap();
        if self.shared.store.get(&sname, HEADER_KEY)?.is_some() {
            return Err(Error::IndexExists(name.into()));
        }
        self.shared.store.check_intact()?; // never create over an index that damage hides
        let index = Arc::new(Index::create(self.shared.clone(), name, sname.clone(), &kek, dimension, metric)?);
        cat.open.insert(sname, Arc::downgrade(&index));
        cat.names.insert(name.to_string());
        Ok(index)
    }

    /// Opens an existing index with its key; `ERR_WRONG_KEY` before any record is decrypted.
    pub fn load_index(&self, name: &str, key: &[u8]) -> Result<Arc<Index>> {
        self.check_open()?;
        check_name(name)?;
        let kek = IndexKey::from_slice(key)?;
        let sname = storage_name(name);
        let mut cat = self.catalog.lock().unwrap();
        if let Some(index) = cat.open.get(&sname).and_then(Weak::upgrade).filter(|i| i.is_open()) {
            // Already open: still prove the caller holds the key.
            index.verify_key(&kek)?;
            return Ok(index);
        }
        let index = Arc::new(Index::load(self.shared.clone(), name, sname.clone(), &kek)?);
        cat.open.insert(sname, Arc::downgrade(&index));
        cat.names.insert(name.to_string());
        Ok(index)
    }

    /// Names of the indexes this client created or loaded that still exist, sorted.
    pub fn list_indexes(&self) -> Result<Vec<String>> {
        self.check_open()?;
        let cat = self.catalog.lock().unwrap();
        let mut out = Vec::new();
        for name in &cat.names {
            if self.shared.store.get(&storage_name(name), HEADER_KEY)?.is_some() {
                out.push(name.clone());
            }
        }
        Ok(out)
    }

    /// Closes the client: every later call on it or its indexes fails with `ERR_CLOSED`, and
    /// the storage is released (a disk store's lock with it). Waits for running writes.
    pub fn close(&self) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.store.close();
    }
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Err(Error::invalid(format!(
            "indexName must be a non-empty string of at most {MAX_NAME_BYTES} bytes, got {} bytes",
            name.len()
        )));
    }
    Ok(())
}
