//! A client: one storage backend, one worker pool, and the indexes opened through it.
//!
//! Threading rule (it prevents deadlocks): callers run each operation on their own thread
//! (the addon uses tokio's blocking pool), locks are taken there, and only lock-free parallel
//! sections run on the rayon pool via `install`. A rayon worker waiting inside `join` may steal
//! any queued job; if jobs took locks, it could steal one that blocks on a lock its own stack
//! already holds.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

mod backup;

pub use backup::BackupStats;

use crate::crypto::{legacy_storage_name, ClientKey, IndexKey};
use crate::error::{Error, Result};
use crate::format::catalog::{Catalog as StoredCatalog, CATALOG_HEADER_KEY, CATALOG_SPACE, ENTRY_PREFIX};
use crate::format::keys::HEADER_KEY;
use crate::index::{Index, IndexSpec, Shared};
use crate::store::{Storage, Wake};
use crate::vector::Metric;

/// Largest accepted index name, in UTF-8 bytes.
pub const MAX_NAME_BYTES: usize = 256;
/// Largest accepted worker pool.
pub const MAX_THREADS: usize = 1024;

/// Owns a storage backend. An index opened twice through one client is the same handle, so
/// two working sets never diverge over one store.
pub struct Client {
    shared: Arc<Shared>,
    /// Serialises create/load/list so "exists?" checks and header writes cannot interleave.
    catalog: Arc<Mutex<Catalog>>,
}

/// The indexes this client has seen, by storage name (see [`IndexKey::storage_name`]).
#[derive(Default)]
struct Catalog {
    open: HashMap<String, Weak<Index>>,
    /// Storage name → index name, for every index created or loaded through this client. The
    /// store holds names only keyed, so it cannot list them.
    seen: BTreeMap<String, String>,
}

impl Client {
    /// A client over `store` with a worker pool of `threads` threads (`None`: one per core;
    /// else 1 to [`MAX_THREADS`]). Worker threads run below normal priority (see
    /// [`priority`]).
    ///
    /// [`priority`]: crate::priority
    pub fn open(store: Arc<dyn Storage>, threads: Option<usize>) -> Result<Client> {
        if threads.is_some_and(|t| t == 0 || t > MAX_THREADS) {
            let t = threads.unwrap_or(0);
            return Err(Error::invalid(format!("threads must be between 1 and {MAX_THREADS}, got {t}")));
        }
        Client::new(store, threads.unwrap_or(0))
    }

    /// [`Client::open`] with a client key: 32 bytes that seal the store's catalog of index
    /// names, so [`Client::list_indexes`] lists every index created or loaded through a
    /// client with this key, also after a restart (see `format::catalog`). A store has one
    /// catalog: the first client key it is opened with makes it, and another key fails here
    /// with `ERR_WRONG_KEY`.
    pub fn open_with_key(store: Arc<dyn Storage>, threads: Option<usize>, client_key: &[u8]) -> Result<Client> {
        let key = ClientKey::from_slice(client_key)?;
        if threads.is_some_and(|t| t == 0 || t > MAX_THREADS) {
            let t = threads.unwrap_or(0);
            return Err(Error::invalid(format!("threads must be between 1 and {MAX_THREADS}, got {t}")));
        }
        let catalog = StoredCatalog::new(key);
        open_catalog(&*store, &catalog)?;
        Client::start(store, threads.unwrap_or(0), Some(catalog))
    }

    /// [`Client::open`] with `threads` 0 meaning one per core.
    pub fn new(store: Arc<dyn Storage>, threads: usize) -> Result<Client> {
        Client::start(store, threads, None)
    }

    fn start(store: Arc<dyn Storage>, threads: usize, catalog: Option<StoredCatalog>) -> Result<Client> {
        if threads > MAX_THREADS {
            return Err(Error::invalid(format!("threads must be between 1 and {MAX_THREADS}, got {threads}")));
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("ciphervec-{i}"))
            .start_handler(|_| crate::priority::lower_current_thread())
            .build()
            .map_err(|e| Error::Internal(format!("could not start worker threads: {e}")))?;
        let shared = Arc::new(Shared { store, pool, closed: AtomicBool::new(false), catalog });
        let catalog = Arc::new(Mutex::new(Catalog::default()));
        if let Some(sharing) = shared.store.sharing() {
            let wakes = sharing.subscribe()?;
            let every = sharing.poll_interval();
            let (shared, catalog) = (Arc::downgrade(&shared), Arc::downgrade(&catalog));
            std::thread::Builder::new()
                .name("ciphervec-follow".into())
                .spawn(move || {
                    crate::priority::lower_current_thread();
                    follow(&shared, &catalog, &wakes, every)
                })
                .map_err(|e| Error::Internal(format!("could not start the follower thread: {e}")))?;
        }
        Ok(Client { shared, catalog })
    }

    /// The catalog; poisoned only by a panic (a bug) in an earlier call holding it.
    fn lock_catalog(&self) -> Result<std::sync::MutexGuard<'_, Catalog>> {
        self.catalog.lock().map_err(|_| Error::Internal("the client stopped after a panic in an earlier call".into()))
    }

    fn check_open(&self) -> Result<()> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(Error::Closed("the client".into()));
        }
        Ok(())
    }

    /// Creates an index; `ERR_INDEX_EXISTS` if an index with this name opens with this key (or
    /// was created under the name alone, before names were keyed). An index is identified by
    /// its name and its key: the same name under another key is another index.
    pub fn create_index(&self, name: &str, key: &[u8], dimension: Option<usize>, metric: Metric) -> Result<Arc<Index>> {
        self.create_index_with(name, key, &IndexSpec { dimension, metric, ..IndexSpec::default() })
    }

    /// [`Client::create_index`] with every setting of the new index, its type included.
    pub fn create_index_with(&self, name: &str, key: &[u8], spec: &IndexSpec) -> Result<Arc<Index>> {
        self.check_open()?;
        check_name(name)?;
        let kek = IndexKey::from_slice(key)?;
        let sname = kek.storage_name(name);
        let mut cat = self.lock_catalog()?;
        if self.has_header(&sname)? || self.has_header(&legacy_storage_name(name))? {
            return Err(Error::IndexExists(name.into()));
        }
        self.shared.store.check_intact()?; // never create over an index that damage hides
                                           // The entry goes first: then no index this client made is ever missing from the
                                           // catalog, and an entry whose index was not made after all is never listed.
        if let Some(catalog) = &self.shared.catalog {
            let (key, value) = catalog.entry(&sname, name);
            self.shared.store.write(CATALOG_SPACE, vec![(key, Some(value))])?;
        }
        let index = Arc::new(Index::create(self.shared.clone(), name, sname.clone(), &kek, spec)?);
        cat.open.insert(sname.clone(), Arc::downgrade(&index));
        cat.seen.insert(sname, name.to_string());
        Ok(index)
    }

    /// Opens an existing index with its key. `ERR_INDEX_NOT_FOUND` if no index of that name
    /// opens with the key (the store cannot tell a wrong key from a missing index, see
    /// [`IndexKey::storage_name`]); an index created before names were keyed still fails a
    /// wrong key with `ERR_WRONG_KEY`, before any record is decrypted.
    pub fn load_index(&self, name: &str, key: &[u8]) -> Result<Arc<Index>> {
        self.load_index_unless(name, key, &AtomicBool::new(false))
    }

    /// [`Client::load_index`] that its caller can abort: once `abort` is set, the load stops
    /// with `ERR_ABORTED` within one read batch, and nothing is opened.
    pub fn load_index_unless(&self, name: &str, key: &[u8], abort: &AtomicBool) -> Result<Arc<Index>> {
        self.check_open()?;
        check_name(name)?;
        let kek = IndexKey::from_slice(key)?;
        let mut cat = self.lock_catalog()?;
        let mut found = Err(Error::IndexNotFound(name.into()));
        for sname in [kek.storage_name(name), legacy_storage_name(name)] {
            if let Some(index) = cat.open.get(&sname).and_then(Weak::upgrade).filter(|i| i.is_open()) {
                // Already open: still prove the caller holds the key.
                index.verify_key(&kek)?;
                return Ok(index);
            }
            found = Index::load(self.shared.clone(), name, sname, &kek, abort);
            if !matches!(found, Err(Error::IndexNotFound(_))) {
                break;
            }
        }
        let index = Arc::new(found?);
        if let Some(catalog) = &self.shared.catalog {
            // An index made without the client key joins the catalog when first loaded with it.
            let key = catalog.entry_key(index.storage_name());
            if self.shared.store.get(CATALOG_SPACE, &key)?.is_none() {
                let (key, value) = catalog.entry(index.storage_name(), name);
                self.shared.store.write(CATALOG_SPACE, vec![(key, Some(value))])?;
            }
        }
        cat.open.insert(index.storage_name().to_string(), Arc::downgrade(&index));
        cat.seen.insert(index.storage_name().to_string(), name.to_string());
        Ok(index)
    }

    /// Names of the indexes that still exist among those this client created or loaded and,
    /// with a client key, those in the store's catalog; sorted (a name used with two keys is
    /// listed once). `ERR_INTEGRITY` if a catalog entry was altered.
    pub fn list_indexes(&self) -> Result<Vec<String>> {
        self.check_open()?;
        let cat = self.lock_catalog()?;
        let mut known = cat.seen.clone();
        if let Some(catalog) = &self.shared.catalog {
            for (key, value) in self.shared.store.scan_prefix(CATALOG_SPACE, ENTRY_PREFIX)? {
                let (sname, name) = catalog.open_entry(&key, &value)?;
                known.insert(sname, name);
            }
        }
        let mut out = BTreeSet::new();
        for (sname, name) in &known {
            if self.has_header(sname)? {
                out.insert(name.clone());
            }
        }
        Ok(out.into_iter().collect())
    }

    fn has_header(&self, sname: &str) -> Result<bool> {
        Ok(self.shared.store.get(sname, HEADER_KEY)?.is_some())
    }

    /// Closes the client: every later call on it or its indexes fails with `ERR_CLOSED`, and
    /// the storage is released (a disk store's lock with it). Waits for running writes.
    pub fn close(&self) {
        self.shared.closed.store(true, Ordering::Release);
        // Handles may outlive the client (a JS object is freed only when collected): their
        // working sets, often most of the process's memory, go now.
        let catalog = self.catalog.lock().unwrap_or_else(|p| p.into_inner());
        let open: Vec<Arc<Index>> = catalog.open.values().filter_map(Weak::upgrade).collect();
        drop(catalog);
        for index in open {
            index.release_working_set();
        }
        self.shared.store.close();
    }
}

/// The follower of a client over a shared store: applies other processes' commits to the
/// client's open indexes when woken for them, and every `every` polls the heads of all of
/// them, for commits it was not woken for (see `index::follow`). The poll keeps its schedule
/// however many wake-ups arrive: wake-ups for one index must not put off finding another's
/// lost ones, nor the retry of a catch-up that failed. Ends with the client. Failures (the
/// database is down, say) are left to the next round: reads keep being served from memory
/// meanwhile.
fn follow(shared: &Weak<Shared>, catalog: &Weak<Mutex<Catalog>>, wakes: &Receiver<Wake>, every: Duration) {
    let mut next_poll = Instant::now() + every;
    loop {
        let first = match wakes.recv_timeout(next_poll.saturating_duration_since(Instant::now())) {
            Ok(wake) => Some(wake),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let (Some(shared), Some(catalog)) = (shared.upgrade(), catalog.upgrade()) else { return };
        if shared.closed.load(Ordering::Acquire) {
            return;
        }
        let open: Vec<Arc<Index>> = {
            let cat = catalog.lock().unwrap_or_else(|p| p.into_inner());
            cat.open.values().filter_map(Weak::upgrade).filter(|i| i.is_open()).collect()
        };
        drop(catalog);
        if let Some(first) = first {
            // Every wake-up waiting now, the latest per index.
            let mut latest: HashMap<String, u64> = HashMap::new();
            for wake in std::iter::once(first).chain(wakes.try_iter()) {
                let seq = latest.entry(wake.space).or_insert(wake.seq);
                *seq = if wake.seq == 0 { 0 } else { (*seq).max(wake.seq) };
            }
            for index in &open {
                if let Some(&seq) = latest.get(index.storage_name()) {
                    let _ = index.follow_wake(seq);
                }
            }
        }
        if Instant::now() >= next_poll {
            let Some(sharing) = shared.store.sharing() else { return };
            let spaces: Vec<&str> = open.iter().map(|i| i.storage_name()).collect();
            if let Ok(heads) = sharing.heads(&spaces) {
                for (index, head) in open.iter().zip(heads) {
                    let _ = index.follow_to(head);
                }
            }
            next_poll = Instant::now() + every;
        }
    }
}

/// Checks that the store's catalog is sealed under `catalog`'s key, making the catalog if the
/// store has none. Two clients making one at once with different keys: the header read back
/// says which won, and the other fails.
fn open_catalog(store: &dyn Storage, catalog: &StoredCatalog) -> Result<()> {
    if let Some(header) = store.get(CATALOG_SPACE, CATALOG_HEADER_KEY)? {
        return catalog.check_header(&header);
    }
    store.write(CATALOG_SPACE, vec![(CATALOG_HEADER_KEY.to_vec(), Some(catalog.header()))])?;
    let header = store
        .get(CATALOG_SPACE, CATALOG_HEADER_KEY)?
        .ok_or_else(|| Error::Corrupt("the store lost the index catalog's header it just wrote".into()))?;
    catalog.check_header(&header)
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
