//! An open encrypted index: its lifecycle (create, load, close), the public operations and
//! everything implemented on it.
//!
//! - `write` (upsert, delete) and `read` (query, get, ...), checked by `validate`;
//! - the working set (`items`, with its `ids`) and, once trained, the inverted lists, held
//!   together by `state`; the bookkeeping of the stored entries in `ledger`;
//! - `load` (reading the stored entries back), `compaction` (rewriting them packed),
//!   `training` (k-means and the lists) and `background` (what the index starts by itself).
//!
//! Locking: `writer` serialises writes so the store and the working set change in the same
//! order; `state` is a read-write lock that writers hold only to apply an already-persisted
//! change, so queries never wait for sealing or storage I/O. Locks are taken on the caller's
//! thread; parallel sections run on the pool and take none (see `client` for why). A lock
//! poisoned by a panic (a bug) is not taken again: the index answers `ERR_INTERNAL` until it
//! is loaded anew, since the change the panic interrupted may be half applied.

mod abort;
mod background;
mod compaction;
mod follow;
mod ids;
mod items;
mod ledger;
mod load;
mod memory;
mod optional;
mod read;
mod resident;
mod state;
mod stats;
mod stored;
mod text;
mod training;
mod validate;
mod write;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

pub use background::{AutoTrain, BackgroundFailure, BackgroundTask, AUTO_COMPACT_MIN, DEFAULT_THRESHOLD};
pub use memory::MemoryUsage;
pub use read::{Include, ItemView, MetadataPage, Search};
pub use stats::{IndexStats, ListSizes};
pub use text::{Fusion, TextHit, TextQuery, HYBRID_CANDIDATES};
pub use training::{TrainAlgorithm, TrainParams, TrainReport, TrainingProgress, MAX_ITERS, MAX_N_LISTS};
pub use validate::{DEFAULT_TOP_K, MAX_DIMENSION, MAX_ID_BYTES, MAX_METADATA_DEPTH, MAX_RERANK, MAX_TOP_K};
pub use write::{NewItem, UpsertReport};

use crate::crypto::IndexKey;
use crate::error::{Error, Result};
use crate::format::catalog::{Catalog, CATALOG_SPACE};
use crate::format::keys::{CONFIG_KEY, HEADER_KEY, SUMMARY_KEY};
use crate::format::manifest::{open_centroids, Config, Header};
use crate::format::summary::Summary;
use crate::format::vault::Vault;
use crate::index::abort::Aborting;
use crate::index::background::Background;
use crate::index::items::Items;
use crate::index::ledger::Ledger;
use crate::index::state::State;
use crate::meta::text::TextSpec;
use crate::store::{Change, LogKind, Storage, WriteTxn};
use crate::vector::ivf::Ivf;
use crate::vector::{IndexType, Metric, Resident};

/// What `createIndex` fixes about a new index.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IndexSpec {
    /// The dimension, or `None` to take it from the first upsert.
    pub dimension: Option<usize>,
    /// The distance metric.
    pub metric: Metric,
    /// How the lists store the vectors they scan, once trained.
    pub index_type: IndexType,
    /// What the lists keep in memory once trained: the vectors, or only their codes (an
    /// index type with codes only).
    pub resident: Resident,
    /// Fields for full-text (BM25) search, if any.
    pub text: Option<TextSpec>,
    /// Metadata paths left out of the metadata index (with everything below them), e.g. big
    /// blobs nobody filters on: filters on them still work, checked item by item.
    pub unindexed: Vec<String>,
}

/// What a client shares with its indexes.
pub(crate) struct Shared {
    pub(crate) store: Arc<dyn Storage>,
    pub(crate) pool: rayon::ThreadPool,
    pub(crate) closed: AtomicBool,
    /// The store's catalog of index names, when the client was opened with a client key.
    pub(crate) catalog: Option<Catalog>,
}

/// An open index. Cheap to share (`Arc<Index>`); every method is safe to call concurrently.
pub struct Index {
    name: String,
    storage_name: String,
    metric: Metric,
    index_type: IndexType,
    /// What the lists keep in memory (fixed at creation).
    resident: Resident,
    /// What full-text search indexes (fixed at creation).
    text: Option<TextSpec>,
    /// Paths the metadata index leaves out (fixed at creation).
    unindexed: Vec<String>,
    /// The caller's key, kept to wrap a fresh data key when the old one's nonce budget is
    /// spent (see `format::vault`).
    kek: IndexKey,
    /// Replaced only under `writer`, by a compaction that rotates the data key.
    vault: RwLock<Arc<Vault>>,
    shared: Arc<Shared>,
    state: RwLock<State>,
    writer: Mutex<()>,
    closed: AtomicBool,
    /// Copies of a few state facts, refreshed by every writer, so the sync getters the JS
    /// thread calls never wait for the state lock (training's swap can hold it briefly).
    stats: Stats,
    /// The record summary, tombstones and segment count; changed only under `writer`.
    ledger: Mutex<Ledger>,
    /// Loose entries (records and tombstones) in the store, from the ledger, lock-free.
    loose_entries: AtomicUsize,
    background: Background,
    /// In a shared store: the last commit of the index this handle has applied (see
    /// `follow`); changed only under `writer`.
    seq: AtomicU64,
}

#[derive(Default)]
struct Stats {
    len: AtomicUsize,
    dim: AtomicUsize,
    n_lists: AtomicUsize,
}

impl Stats {
    fn refresh(&self, state: &State) {
        self.len.store(state.items.len(), Ordering::Release);
        self.dim.store(state.items.dim(), Ordering::Release);
        self.n_lists.store(state.ivf.as_ref().map_or(0, Ivf::n_lists), Ordering::Release);
    }
}

/// What reading an index's stored entries yields (see [`Index::read_stored`]).
pub(crate) struct Opened {
    config: Config,
    vault: Vault,
    state: State,
    ledger: Ledger,
}

impl Index {
    /// Creates the header, config and summary of a new index. The caller checked the name
    /// is free (in a shared store, another process may take it meanwhile: the write of a
    /// space that exists fails with `ERR_INDEX_EXISTS`).
    pub(crate) fn create(
        shared: Arc<Shared>,
        name: &str,
        storage_name: String,
        kek: &IndexKey,
        spec: &IndexSpec,
    ) -> Result<Index> {
        let IndexSpec { dimension, metric, index_type, resident, ref text, ref unindexed } = *spec;
        if let Some(d) = dimension {
            validate::check_dimension(d)?;
        }
        if resident == Resident::Codes && !index_type.has_codes() {
            return Err(Error::invalid(
                "resident 'codes' needs an index type with codes ('ivfsq8', 'ivffp16' or 'ivfpq'); 'ivfflat' keeps the \
                 vectors themselves",
            ));
        }
        if let Some(problem) = validate::index_type_problem(index_type, dimension.unwrap_or(0)) {
            return Err(Error::invalid(problem));
        }
        if let Some(problem) = text.as_ref().and_then(TextSpec::problem) {
            return Err(Error::invalid(problem));
        }
        validate::check_unindexed(unindexed)?;
        let (header, keys) = Header::create(kek, &storage_name);
        let vault = Vault::new(keys, storage_name.clone(), 0);
        let config = Config {
            name: name.to_string(),
            dimension,
            metric,
            index_type,
            resident,
            text: text.clone(),
            unindexed: unindexed.clone(),
        };
        let sealed_config = config.seal(&vault);
        let summary = Summary::default().seal(&vault);
        let changes = vec![
            (HEADER_KEY.to_vec(), Some(header.encode())),
            (CONFIG_KEY.to_vec(), Some(sealed_config.blob)),
            (SUMMARY_KEY.to_vec(), Some(summary.blob)),
        ];
        let seq = match shared.store.sharing() {
            None => {
                shared.store.write(&storage_name, changes)?;
                0
            }
            Some(sharing) => {
                let txn = sharing.begin_write(&storage_name)?;
                if txn.head().is_some() {
                    return Err(Error::IndexExists(name.into()));
                }
                txn.commit(&[], changes, LogKind::Rewrite, Vec::new())?
            }
        };
        let state = State::new(Items::new(dimension.unwrap_or(0)), text.as_ref(), unindexed, None);
        let opened = Opened { config, vault, state, ledger: Ledger::default() };
        Ok(Index::assemble(shared, kek, opened, seq))
    }

    /// Opens an existing index: checks the key first, then authenticates and decrypts every
    /// segment, record and tombstone in parallel (see `load`). Any altered, missing, extra or
    /// rolled-back entry fails the whole load with `ERR_INTEGRITY`. A shared store is read
    /// from one snapshot, however much other processes write meanwhile.
    /// Loads index `name`; stops with `ERR_ABORTED` within a read batch of `abort` being set.
    pub(crate) fn load(
        shared: Arc<Shared>,
        name: &str,
        storage_name: String,
        kek: &IndexKey,
        abort: &AtomicBool,
    ) -> Result<Index> {
        let (opened, seq) = match shared.store.sharing() {
            None => {
                let store = Aborting { inner: &*shared.store, abort, name };
                (Index::read_stored(&shared, &store, name, storage_name, kek)?, 0)
            }
            Some(sharing) => {
                let snapshot = sharing.snapshot(&storage_name)?;
                let store = Aborting { inner: snapshot.reader(), abort, name };
                let opened = Index::read_stored(&shared, &store, name, storage_name, kek)?;
                (opened, snapshot.head().unwrap_or(0))
            }
        };
        Ok(Index::assemble(shared, kek, opened, seq))
    }

    /// Reads and checks every stored entry of index `name` from `store` (the client's store
    /// or a snapshot of it).
    pub(crate) fn read_stored(
        shared: &Shared,
        store: &dyn Storage,
        name: &str,
        storage_name: String,
        kek: &IndexKey,
    ) -> Result<Opened> {
        let Some(header_blob) = store.get(&storage_name, HEADER_KEY)? else {
            // Other entries without a header: the header was lost (damage), not never written.
            if store.get(&storage_name, CONFIG_KEY)?.is_some() || store.spaces()?.contains(&storage_name) {
                return Err(Error::Corrupt(format!("index '{name}' is damaged: its header entry is missing")));
            }
            store.check_intact()?; // nothing there, or damage hides it
            return Err(Error::IndexNotFound(name.into()));
        };
        let keys = Header::decode(&header_blob)?.open(kek, &storage_name, name)?;
        let vault = Vault::new(keys, storage_name.clone(), 0);
        let config_blob = store
            .get(&storage_name, CONFIG_KEY)?
            .ok_or_else(|| Error::Corrupt(format!("index '{name}' has no config entry")))?;
        let config = Config::open(&config_blob, &vault, name)?;
        if config.name != name {
            return Err(Error::Integrity(format!("index '{name}' (its sealed name differs)")));
        }
        let summary_blob = store
            .get(&storage_name, SUMMARY_KEY)?
            .ok_or_else(|| Error::Integrity(format!("index '{name}' (its record summary is missing)")))?;
        let (summary, seals) = Summary::open(&summary_blob, &vault, name)?;
        match seals {
            Some(seals) => vault.resume_count(seals),
            None => vault.resume_unknown_count(),
        }
        let dim = config.dimension.unwrap_or(0);
        // The lists first: a codes-only index encodes its records as they are read.
        let mut ivf = None;
        if let Some(blob) = store.get(&storage_name, crate::format::keys::CENTROIDS_KEY)? {
            let (centroids, codec) = open_centroids(&blob, &vault, name, dim)?;
            let coded = codec.as_ref().map_or(IndexType::IvfFlat, |c| c.index_type());
            let fits = match (coded, config.index_type) {
                (IndexType::IvfPq(book), IndexType::IvfPq(want)) => {
                    want.sub_vectors.is_none_or(|m| book.sub_vectors == Some(m))
                }
                (book, want) => book == want,
            };
            if !fits {
                return Err(Error::Corrupt(format!(
                    "index '{name}' is damaged: its code book is for {coded:?}, its config says {:?}",
                    config.index_type
                )));
            }
            if config.resident == Resident::Codes && codec.is_none() {
                return Err(Error::Corrupt(format!(
                    "index '{name}' is damaged: it keeps codes only but has no code book"
                )));
            }
            ivf = Some(Ivf::new(dim, centroids, codec, config.resident));
        }
        let encoder = ivf
            .as_ref()
            .filter(|ivf| !ivf.lists.holds_vectors())
            .map(|ivf| load::Encoder { ivf, metric: config.metric });
        let source = load::Source { store, vault: &vault, index_name: name, dim, summary: &summary, encoder };
        let load::Loaded { items, tombstones, segments } = load::load_records(shared, &source)?;
        let mut state = State::new(items, config.text.as_ref(), &config.unindexed, Some(&shared.pool));
        if let Some(ivf) = ivf {
            state.rebuild_ivf(config.metric, ivf, &shared.pool);
        }
        let ledger = Ledger { summary, tombstones, segments };
        Ok(Opened { config, vault, state, ledger })
    }

    /// The handle of an index read as of commit `seq` (0: a store that is not shared).
    fn assemble(shared: Arc<Shared>, kek: &IndexKey, opened: Opened, seq: u64) -> Index {
        let Opened { config, vault, state, ledger } = opened;
        let stats = Stats::default();
        stats.refresh(&state);
        Index {
            name: config.name,
            storage_name: vault.storage_name().to_string(),
            metric: config.metric,
            index_type: config.index_type,
            resident: config.resident,
            text: config.text,
            unindexed: config.unindexed,
            kek: kek.clone(),
            vault: RwLock::new(Arc::new(vault)),
            shared,
            state: RwLock::new(state),
            writer: Mutex::new(()),
            closed: AtomicBool::new(false),
            stats,
            loose_entries: AtomicUsize::new(ledger.loose_entries()),
            ledger: Mutex::new(ledger),
            background: Background::default(),
            seq: AtomicU64::new(seq),
        }
    }

    /// The index's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The space the index is stored under (see `IndexKey::storage_name`).
    pub(crate) fn storage_name(&self) -> &str {
        &self.storage_name
    }

    /// The distance metric.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// How the lists store the vectors they scan.
    pub fn index_type(&self) -> IndexType {
        self.index_type
    }

    /// The dimension, once fixed by `createIndex` or the first upsert.
    pub fn dimension(&self) -> Option<usize> {
        let dim = self.stats.dim.load(Ordering::Acquire);
        (dim > 0).then_some(dim)
    }

    /// Whether IVF lists exist (queries probe lists instead of scanning everything).
    pub fn is_trained(&self) -> bool {
        self.stats.n_lists.load(Ordering::Acquire) > 0
    }

    /// The item count as of the last completed write (lock-free).
    pub fn len_hint(&self) -> usize {
        self.stats.len.load(Ordering::Acquire)
    }

    /// The number of IVF lists: 1 until trained.
    pub fn n_lists(&self) -> usize {
        self.stats.n_lists.load(Ordering::Acquire).max(1)
    }

    /// Loose records and tombstones in the store (lock-free; as of the last write).
    pub fn loose_entries(&self) -> usize {
        self.loose_entries.load(Ordering::Acquire)
    }

    pub(crate) fn is_open(&self) -> bool {
        !self.closed.load(Ordering::Acquire) && !self.shared.closed.load(Ordering::Acquire)
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(Error::Closed("the client".into()));
        }
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed(format!("index '{}' (it was deleted)", self.name)));
        }
        Ok(())
    }

    /// `ERR_INTERNAL` for a lock poisoned by a panic in an earlier call (see the module docs).
    fn poisoned<T>(&self, _: T) -> Error {
        Error::Internal(format!(
            "index '{}' stopped after a panic in an earlier call left its state uncertain; load it again",
            self.name
        ))
    }

    fn read_state(&self) -> Result<RwLockReadGuard<'_, State>> {
        self.check_open()?;
        self.state.read().map_err(|e| self.poisoned(e))
    }

    /// The state for writing, once the index is (still) open; stats are refreshed when the
    /// returned guard is dropped. Checked after the lock is taken: closing marks the index
    /// closed first and then empties the state under this lock, so work that ran while the
    /// client was being closed (a background compaction, a training) fails with
    /// `ERR_CLOSED` instead of installing itself into the emptied state (which had panicked).
    fn write_state(&self) -> Result<StateWriter<'_>> {
        let guard = self.state.write().map_err(|e| self.poisoned(e))?;
        self.check_open()?;
        Ok(StateWriter { guard, stats: &self.stats })
    }

    /// The writer lock, once the index is (still) open. In a shared store it also holds the
    /// index's write lock across processes, and the handle has applied every commit made
    /// before it (see `follow`), so a write builds on the latest state.
    fn lock_writer(&self) -> Result<WriteLock<'_>> {
        let local = self.lock_local_writer()?;
        let txn = match self.shared.store.sharing() {
            None => None,
            Some(sharing) => {
                let txn = sharing.begin_write(&self.storage_name)?;
                self.catch_up(txn.as_snapshot())?;
                Some(txn)
            }
        };
        Ok(WriteLock { _local: local, txn })
    }

    /// The writer lock of this handle only (for following other processes' commits).
    fn lock_local_writer(&self) -> Result<MutexGuard<'_, ()>> {
        self.check_open()?;
        let guard = self.writer.lock().map_err(|e| self.poisoned(e))?;
        self.check_open()?;
        Ok(guard)
    }

    /// Stores a write's batch (after clearing the key ranges `cleared`): in a shared store,
    /// committed with its change-log entry, which names `touched` (the ids whose entries it
    /// changed) or, for a rewrite of the whole index (`None`), tells other processes to read
    /// it again.
    fn commit(
        &self,
        lock: &mut WriteLock<'_>,
        cleared: &[&[u8]],
        changes: Vec<Change>,
        touched: Option<&[&str]>,
    ) -> Result<()> {
        let Some(txn) = lock.txn.take() else {
            return if cleared.is_empty() {
                self.shared.store.write(&self.storage_name, changes)
            } else {
                self.shared.store.write_clearing(&self.storage_name, cleared, changes)
            };
        };
        let next = txn.head().unwrap_or(0) + 1;
        let (kind, body) = match touched {
            Some(ids) => (LogKind::Write, crate::format::log::seal_ids(&self.vault(), next, ids.iter().copied())),
            None => (LogKind::Rewrite, Vec::new()),
        };
        let seq = txn.commit(cleared, changes, kind, body)?;
        self.seq.store(seq, Ordering::Release);
        Ok(())
    }

    fn lock_ledger(&self) -> Result<MutexGuard<'_, Ledger>> {
        self.ledger.lock().map_err(|e| self.poisoned(e))
    }

    /// Installs a ledger (callers hold `writer`).
    fn replace_ledger(&self, ledger: Ledger) -> Result<()> {
        self.loose_entries.store(ledger.loose_entries(), Ordering::Release);
        *self.lock_ledger()? = ledger;
        Ok(())
    }

    /// The vault that seals the index's entries now.
    pub(crate) fn vault(&self) -> Arc<Vault> {
        Arc::clone(&self.vault.read().unwrap_or_else(|p| p.into_inner()))
    }

    fn pool(&self) -> &rayon::ThreadPool {
        &self.shared.pool
    }

    /// Removes every stored entry of the index; the handle is closed afterwards.
    pub fn destroy(&self) -> Result<()> {
        let mut lock = self.lock_writer()?;
        match lock.txn.take() {
            Some(txn) => txn.drop_space()?,
            None => self.shared.store.drop_space(&self.storage_name)?,
        }
        self.close();
        *self.state.write().unwrap_or_else(|p| p.into_inner()) = State::new(Items::new(0), None, &[], None);
        // The index is gone: an entry left behind (this write failed) names no index and is
        // never listed, since listing checks each entry's header.
        if let Some(catalog) = &self.shared.catalog {
            let _ = self.shared.store.write(CATALOG_SPACE, vec![(catalog.entry_key(&self.storage_name), None)]);
        }
        // The deletion is committed, so a failure to give its space back must not reject this
        // call, and no handle is left to warn: the space stays in the file for the next
        // explicit compaction, training run or deletion to give back. What made it fail (an
        // I/O error, damage) resurfaces on the store's next call, which reopens or refuses it.
        let _ = self.shared.store.reclaim_space();
        Ok(())
    }

    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    /// Frees the working set once the client is closed (waits for running reads). The sync
    /// getters keep their last values.
    pub(crate) fn release_working_set(&self) {
        *self.state.write().unwrap_or_else(|p| p.into_inner()) = State::new(Items::new(0), None, &[], None);
    }

    /// The config of this index, with dimension `dim` (0: not fixed yet).
    pub(crate) fn config(&self, dim: usize) -> Config {
        Config {
            name: self.name.clone(),
            dimension: (dim > 0).then_some(dim),
            metric: self.metric,
            index_type: self.index_type,
            resident: self.resident,
            text: self.text.clone(),
            unindexed: self.unindexed.clone(),
        }
    }

    /// What the lists keep in memory once trained.
    pub fn resident(&self) -> Resident {
        self.resident
    }

    /// Whether the trained lists' codes are of residuals (`None`: untrained, or no codes).
    #[cfg(any(test, feature = "test-util"))]
    pub(crate) fn codes_of_residuals(&self) -> Option<bool> {
        let state = self.read_state().ok()?;
        state.ivf.as_ref()?.lists.codec().map(|c| c.is_residual())
    }

    /// Checks a key against the stored header (for handles that are already open).
    pub(crate) fn verify_key(&self, kek: &IndexKey) -> Result<()> {
        let blob = self
            .shared
            .store
            .get(&self.storage_name, HEADER_KEY)?
            .ok_or_else(|| Error::IndexNotFound(self.name.clone()))?;
        Header::decode(&blob)?.open(kek, &self.storage_name, &self.name).map(|_| ())
    }
}

/// The writer lock (see [`Index::lock_writer`]): this handle's, and in a shared store the
/// write transaction that holds the index's lock across processes until
/// [`Index::commit`] commits it (dropped uncommitted, it rolls back).
pub(crate) struct WriteLock<'a> {
    _local: MutexGuard<'a, ()>,
    txn: Option<Box<dyn WriteTxn>>,
}

/// A write guard on the state that refreshes the lock-free stats on release.
pub(crate) struct StateWriter<'a> {
    guard: RwLockWriteGuard<'a, State>,
    stats: &'a Stats,
}

impl std::ops::Deref for StateWriter<'_> {
    type Target = State;
    fn deref(&self) -> &State {
        &self.guard
    }
}

impl std::ops::DerefMut for StateWriter<'_> {
    fn deref_mut(&mut self) -> &mut State {
        &mut self.guard
    }
}

impl Drop for StateWriter<'_> {
    fn drop(&mut self) {
        self.stats.refresh(&self.guard);
    }
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index").field("name", &self.name).field("metric", &self.metric).finish_non_exhaustive()
    }
}
