//! `Index::compact`: rewrites every live item into packed segments (see `format::segment`)
//! and removes every loose record, tombstone and old segment, in one atomic batch (the loose
//! records and tombstones as two key ranges, which a store drops in one pass each). Training
//! writes the same batch (it re-seals every record anyway, with its new list), and writes
//! start one in the background once enough loose entries piled up (see `background`).
//!
//! A compaction is also where the data key is rotated once its nonce budget is half spent
//! (see `format::vault`): everything it writes is sealed anew anyway, so under a fresh data
//! key it writes a new header and config (and centroids, if trained) too, and the batch
//! replaces every entry sealed under the old key.

use std::sync::Arc;

use rayon::prelude::*;

use crate::error::Result;
use crate::format::keys::{
    segment_key, CENTROIDS_KEY, CONFIG_KEY, DIRECTORY_KEY, HEADER_KEY, RECORD_PREFIX, SUMMARY_KEY, TOMBSTONE_PREFIX,
};
use crate::format::manifest::{seal_centroids, Header};
use crate::format::segment::{self, SegmentWriter, SEGMENT_BYTES};
use crate::format::summary::Summary;
use crate::format::vault::Vault;
use crate::index::background::BackgroundTask;
use crate::index::ledger::Ledger;
use crate::index::state::{FullVectors, State};
use crate::index::{Index, WriteLock};
use crate::store::Change;
use crate::vector::codes::Codec;
use crate::vector::{ListId, Slot};

/// Key ranges a compaction's batch clears: once every live item is in the new segments, no
/// loose record or tombstone is needed.
const CLEARED: [&[u8]; 2] = [RECORD_PREFIX, TOMBSTONE_PREFIX];

/// A compaction's batch (written with [`Index::write_packed`]), and what the index knows
/// once it is written: its ledger, and the vault that sealed it (a fresh one if the data
/// key was rotated).
pub(crate) struct Packed {
    pub(crate) changes: Vec<Change>,
    pub(crate) ledger: Ledger,
    pub(crate) vault: Arc<Vault>,
    /// Records per new segment, in slot order.
    pub(crate) counts: Vec<u32>,
}

impl Index {
    /// Packs the index's items into segments, so that the next `loadIndex` reads a few large
    /// blobs instead of one per item, and drops dead copies and tombstones (rotating the data
    /// key if it is due); then gives the store's unused space back (see
    /// [`Index::reclaim_space`]). Writes wait; queries go on.
    pub fn compact(&self) -> Result<()> {
        self.compact_packing_only(false)?;
        self.reclaim_space();
        Ok(())
    }

    /// [`Index::compact`] without giving space back: what a background compaction does. The
    /// next round of writes would only grow the file again (see BENCHMARKS.md, "Disk space").
    /// `only_if_due`: unless still due once the writer lock is held (in a shared store,
    /// another process may have compacted meanwhile).
    pub(crate) fn compact_packing_only(&self, only_if_due: bool) -> Result<()> {
        let mut lock = self.lock_writer()?;
        if only_if_due && !self.compaction_due() {
            return Ok(());
        }
        let state = self.read_state()?;
        let vectors = self.full_vectors(&state)?;
        let Packed { changes, ledger, vault, counts } =
            self.pack(&state, &vectors, |slot| state.items.list(slot), None)?;
        drop(vectors);
        drop(state);
        self.write_packed(&mut lock, changes)?;
        self.install_packed(ledger, vault, &counts, &mut self.write_state()?)
    }

    /// After a rewrite of the whole index (compaction, training), asks the store to give back
    /// the space the rewrite freed if that is much (see `Storage::reclaim_space`). The
    /// rewrite is durable by then, so a failure here fails nothing: it is kept as a background
    /// failure (a warning on the next call), and the next explicit compaction, training run or
    /// deletion tries again.
    pub(crate) fn reclaim_space(&self) {
        if let Err(e) = self.shared.store.reclaim_space() {
            self.record_background_failure(BackgroundTask::Reclaim, e);
        }
    }

    /// Writes a [`Packed`] batch (and anything added to it), clearing [`CLEARED`]: a rewrite
    /// of the whole index.
    pub(crate) fn write_packed(&self, lock: &mut WriteLock<'_>, changes: Vec<Change>) -> Result<()> {
        self.commit(lock, &CLEARED, changes, None)
    }

    /// The batch that stores every item of `state` (its vector from `vectors`, in list
    /// `list_of(slot)`) in segments, in slot order, and deletes the old segments beyond the
    /// new ones (the loose records and tombstones go with [`CLEARED`]). `centroids`: new
    /// centroids to store with it (training). Callers hold `writer`.
    pub(crate) fn pack(
        &self,
        state: &State,
        vectors: &FullVectors<'_>,
        list_of: impl Fn(Slot) -> Option<ListId> + Sync,
        trained: Option<(&[f32], Option<&Codec>)>,
    ) -> Result<Packed> {
        let mut vault = self.vault();
        let mut changes: Vec<Change> = Vec::new();
        let dim = state.items.dim();
        let trained = if vault.rotation_due() {
            let (header, keys) = Header::create(&self.kek, &self.storage_name);
            vault = Arc::new(Vault::new(keys, self.storage_name.clone(), 0));
            changes.push((HEADER_KEY.to_vec(), Some(header.encode())));
            changes.push((CONFIG_KEY.to_vec(), Some(self.config(dim).seal(&vault).blob)));
            trained.or_else(|| state.ivf.as_ref().map(|ivf| (ivf.quantizer.centroids(), ivf.lists.codec())))
        } else {
            trained
        };
        if let Some((centroids, codec)) = trained {
            changes.push((CENTROIDS_KEY.to_vec(), Some(seal_centroids(&vault, dim, centroids, codec).blob)));
        }
        let items = &state.items;
        let n = items.len();
        // Pool tasks encode coarse slot ranges, each cut into segments by their exact size;
        // numbered in slot order, the segments are then sealed in parallel (the number is
        // part of the associated data).
        let per_task = (SEGMENT_BYTES * 32 / (4 * dim + 64)).max(1);
        let plains: Vec<(u32, Vec<u8>)> = self.pool().install(|| {
            (0..n.div_ceil(per_task))
                .into_par_iter()
                .flat_map_iter(|t| {
                    let mut segments = Vec::new();
                    let mut writer = SegmentWriter::default();
                    for s in t * per_task..n.min((t + 1) * per_task) {
                        let slot = Slot::at(s);
                        writer.push_encoded(|out| items.encode_into(slot, vectors.get(slot), list_of(slot), out));
                        if writer.len() >= SEGMENT_BYTES {
                            let full = std::mem::take(&mut writer);
                            segments.push((full.count(), full.finish()));
                        }
                    }
                    if !writer.is_empty() {
                        segments.push((writer.count(), writer.finish()));
                    }
                    segments
                })
                .collect()
        });
        let counts: Vec<u32> = plains.iter().map(|(count, _)| *count).collect();
        // Each plaintext is freed as soon as it is sealed, so the batch is held about once,
        // not as plaintext and ciphertext together.
        let sealed: Vec<_> = self.pool().install(|| {
            plains
                .into_par_iter()
                .enumerate()
                .map(|(i, (_, plain))| (i, vault.seal(&segment_key(i as u32), &plain)))
                .collect()
        });
        let old_segments = self.lock_ledger()?.segments;
        let segments = sealed.len() as u32;
        let summary = Summary::of(sealed.iter().map(|(_, s)| s.token));
        changes.extend(sealed.into_iter().map(|(i, s)| (segment_key(i as u32), Some(s.blob))));
        changes.extend((segments..old_segments).map(|i| (segment_key(i), None)));
        // The directory is a layout checked against the segments, not part of the summary.
        changes
            .push((DIRECTORY_KEY.to_vec(), Some(vault.seal(DIRECTORY_KEY, &segment::encode_directory(&counts)).blob)));
        changes.push((SUMMARY_KEY.to_vec(), Some(summary.seal(&vault).blob)));
        Ok(Packed { changes, ledger: Ledger { summary, tombstones: Default::default(), segments }, vault, counts })
    }

    /// After a written [`Index::pack`]: every item now lives in a segment (`counts[n]` of
    /// them in segment `n`, in slot order), sealed by `vault`.
    pub(crate) fn install_packed(
        &self,
        ledger: Ledger,
        vault: Arc<Vault>,
        counts: &[u32],
        state: &mut crate::index::StateWriter,
    ) -> Result<()> {
        self.replace_ledger(ledger)?;
        *self.vault.write().unwrap_or_else(|p| p.into_inner()) = vault;
        state.items.set_packed(counts);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use crate::format::keys::HEADER_KEY;
    use crate::store::{Change, EntryBatch, MemoryStorage, Storage};
    use crate::{Client, Include, Metric, NewItem};

    fn items(from: usize, n: usize) -> Vec<NewItem> {
        (from..from + n)
            .map(|i| NewItem { id: format!("id-{i}"), vector: vec![i as f32, 1.0], metadata: None, contents: None })
            .collect()
    }

    fn wait_compacted(index: &crate::Index) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while index.is_compacting() {
            assert!(std::time::Instant::now() < deadline, "the compaction did not finish");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// Every seal counts against the data key's budget; once half of it is spent, writes start
    /// a compaction that seals the index anew under a fresh data key, and the index reads back
    /// whole with the same index key.
    #[test]
    fn a_spent_nonce_budget_rotates_the_data_key_at_the_next_compaction() {
        let store = Arc::new(MemoryStorage::new());
        let client = Client::new(store.clone(), 2).unwrap();
        let index = client.create_index("n", &[5; 32], None, Metric::Euclidean).unwrap();
        index.upsert(items(0, 40)).unwrap();
        // Trained, so the centroids move to the new key too.
        let params = crate::TrainParams { n_lists: Some(2), ..Default::default() };
        index.train(&params, &AtomicBool::new(false), &|_| {}).unwrap();
        index.vault().set_budget(index.vault().seals() + 15, 1_000);
        let header = || store.get(index.storage_name(), HEADER_KEY).unwrap().unwrap();
        let before = header();
        index.upsert(items(40, 10)).unwrap();
        assert!(!index.vault().rotation_due(), "{} seals", index.vault().seals());
        index.upsert(items(50, 10)).unwrap();
        wait_compacted(&index);
        assert_ne!(header(), before, "a new data key is wrapped in the header");
        let vault = index.vault();
        assert!(vault.seals() < 10, "the new key has sealed only the compaction: {}", vault.seals());
        assert_eq!(index.loose_entries(), 0);
        index.upsert(items(60, 5)).unwrap();
        drop(index);
        let reopened = Client::new(store, 2).unwrap().load_index("n", &[5; 32]).unwrap();
        assert_eq!(reopened.count().unwrap(), 65);
        assert!(reopened.is_trained());
        // Items 40.. lie outside the 8-bit code book's trained ranges (clamped): re-ranking
        // every candidate finds the nearest exactly, with the code book under the new key.
        let search =
            crate::Search { k: 1, n_probes: Some(2), rerank: Some(100), filter: None, include: Include::default() };
        assert_eq!(reopened.query(&[62.0, 1.0], &search).unwrap()[0].id, "id-62");
        let got = reopened.get(&["id-3".to_string(), "id-62".to_string()], Include::GET_DEFAULT).unwrap();
        assert_eq!(got[0].vector.as_deref(), Some(&[3.0, 1.0][..]));
        assert_eq!(got[1].vector.as_deref(), Some(&[62.0, 1.0][..]));
    }

    /// A memory store that runs `hook` before every whole-index write (`write_clearing`: a
    /// compaction's, a training run's), which can fail the write or hold it.
    struct Hooked {
        inner: MemoryStorage,
        hook: Box<dyn Fn() -> crate::Result<()> + Send + Sync>,
    }

    impl Hooked {
        fn new(hook: impl Fn() -> crate::Result<()> + Send + Sync + 'static) -> Arc<Hooked> {
            Arc::new(Hooked { inner: MemoryStorage::new(), hook: Box::new(hook) })
        }
    }

    impl Storage for Hooked {
        fn get(&self, space: &str, key: &[u8]) -> crate::Result<Option<Vec<u8>>> {
            self.inner.get(space, key)
        }
        fn write(&self, space: &str, changes: Vec<Change>) -> crate::Result<()> {
            self.inner.write(space, changes)
        }
        fn write_clearing(&self, space: &str, cleared: &[&[u8]], changes: Vec<Change>) -> crate::Result<()> {
            (self.hook)()?;
            self.inner.write_clearing(space, cleared, changes)
        }
        fn scan_range_batches(
            &self,
            space: &str,
            start: &[u8],
            end: Option<&[u8]>,
            batch_bytes: usize,
            sink: &mut dyn FnMut(EntryBatch) -> crate::Result<()>,
        ) -> crate::Result<()> {
            self.inner.scan_range_batches(space, start, end, batch_bytes, sink)
        }
        fn spaces(&self) -> crate::Result<Vec<String>> {
            self.inner.spaces()
        }
        fn drop_space(&self, space: &str) -> crate::Result<()> {
            self.inner.drop_space(space)
        }
        fn export(
            &self,
            batch_bytes: usize,
            sink: &mut dyn FnMut(&str, EntryBatch) -> crate::Result<()>,
        ) -> crate::Result<()> {
            self.inner.export(batch_bytes, sink)
        }
    }

    /// When compactions cannot rotate the key (here: the store refuses their batches), writes
    /// are refused with ERR_NONCE_BUDGET before the budget runs out, changing nothing; a
    /// compaction that succeeds rotates the key and writes go on.
    #[test]
    fn writes_are_refused_before_the_budget_runs_out_until_a_compaction_rotates_the_key() {
        // The store refuses compactions' batches while `full` is set.
        let full = Arc::new(AtomicBool::new(true));
        let store = Hooked::new({
            let full = full.clone();
            move || match full.load(Ordering::SeqCst) {
                true => Err(crate::Error::Io("No space left on device (os error 28)".into())),
                false => Ok(()),
            }
        });
        let client = Client::new(store.clone(), 2).unwrap();
        let index = client.create_index("r", &[6; 32], None, Metric::Euclidean).unwrap();
        index.vault().set_budget(20, 30);
        index.upsert(items(0, 40)).unwrap();
        wait_compacted(&index);
        let failure = index.take_background_failure().expect("the rotating compaction failed");
        assert_eq!(failure.error.code(), "ERR_IO");
        let err = index.upsert(items(40, 1)).unwrap_err();
        assert_eq!(err.code(), "ERR_NONCE_BUDGET");
        assert!(err.to_string().contains("compact()"), "{err}");
        assert_eq!(index.delete(&["id-1".to_string()]).unwrap_err().code(), "ERR_NONCE_BUDGET");
        assert_eq!(index.count().unwrap(), 40, "nothing changed");
        full.store(false, Ordering::SeqCst);
        index.compact().unwrap();
        assert_eq!(index.upsert(items(40, 1)).unwrap().upserted, 1);
        drop(index);
        let reopened = Client::new(store, 2).unwrap().load_index("r", &[6; 32]).unwrap();
        assert_eq!(reopened.count().unwrap(), 41);
    }

    /// Closing the client while a compaction is writing empties the working set; the
    /// compaction then fails with ERR_CLOSED instead of installing itself into the emptied
    /// state (it panicked on the segment column: index out of bounds), and what it wrote
    /// reads back.
    #[test]
    fn a_compaction_that_outlives_its_client_fails_closed_and_its_write_stands() {
        let (reached_tx, reached) = std::sync::mpsc::channel();
        let (release, release_rx) = std::sync::mpsc::channel::<()>();
        // Once armed, the next whole-index write (the compaction's) says it is reached, then
        // waits for `release`.
        let armed = Arc::new(AtomicBool::new(false));
        let store = Hooked::new({
            let armed = armed.clone();
            let pause = std::sync::Mutex::new(Some((reached_tx, release_rx)));
            move || {
                if armed.swap(false, Ordering::SeqCst) {
                    let (reached, release) = pause.lock().unwrap().take().unwrap();
                    reached.send(()).unwrap();
                    release.recv().unwrap();
                }
                Ok(())
            }
        });
        let client = Client::new(store.clone(), 2).unwrap();
        let index = client.create_index("c", &[8; 32], None, Metric::Euclidean).unwrap();
        index.upsert(items(0, 300)).unwrap();
        armed.store(true, Ordering::SeqCst);
        let compacting = {
            let index = index.clone();
            std::thread::spawn(move || index.compact())
        };
        reached.recv().unwrap();
        client.close();
        release.send(()).unwrap();
        let err = compacting.join().expect("no panic").unwrap_err();
        assert_eq!(err.code(), "ERR_CLOSED");
        let reopened = Client::new(store, 2).unwrap().load_index("c", &[8; 32]).unwrap();
        assert_eq!(reopened.count().unwrap(), 300);
        let got = reopened.get(&["id-299".to_string()], Include::GET_DEFAULT).unwrap();
        assert_eq!(got[0].vector.as_deref(), Some(&[299.0, 1.0][..]));
    }
}
