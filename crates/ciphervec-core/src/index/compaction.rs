//! `Index::compact`: rewrites every live item into packed segments (see `segment`) and
//! removes every loose record, tombstone and old segment, in one atomic batch (the loose
//! records and tombstones as two key ranges, which a store drops in one pass each). Training
//! writes the same batch (it re-seals every record anyway, with its new list), and writes
//! start one in the background once enough loose entries piled up.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use rayon::prelude::*;

use crate::error::Result;
use crate::format::manifest::RECORD_PREFIX;
use crate::format::segment::{self, SegmentWriter, DIRECTORY_KEY, SEGMENT_BYTES, TOMBSTONE_PREFIX};
use crate::format::summary::{RecordSet, RECORD_SET_KEY};
use crate::index::background::BackgroundTask;
use crate::index::items::Stored;
use crate::index::ledger::Ledger;
use crate::index::state::State;
use crate::index::Index;
use crate::store::Change;

/// Loose entries after which writes start a background compaction (see
/// [`Index::compaction_due`]).
pub const AUTO_COMPACT_MIN: usize = 65_536;

/// Key ranges a compaction's batch clears: once every live item is in the new segments, no
/// loose record or tombstone is needed.
const CLEARED: [&[u8]; 2] = [RECORD_PREFIX, TOMBSTONE_PREFIX];

/// A compaction's batch (written with [`Index::write_packed`]) and what the index knows once
/// it is written.
pub(crate) struct Packed {
    pub changes: Vec<Change>,
    pub ledger: Ledger,
}

impl Index {
    /// Packs the index's items into segments, so that the next `loadIndex` reads a few large
    /// blobs instead of one per item, and drops dead copies and tombstones; then gives the
    /// store's unused space back (see [`Index::reclaim_space`]). Writes wait; queries go on.
    pub fn compact(&self) -> Result<()> {
        self.compact_packing_only()?;
        self.reclaim_space();
        Ok(())
    }

    /// [`Index::compact`] without giving space back: what a background compaction does. The
    /// next round of writes would only grow the file again, and shrinking it after every
    /// background compaction made a 390k ingest 20% slower and its file larger (440 MB vs
    /// 285 MB, since what a shrink gives back the next compaction takes again at the end).
    fn compact_packing_only(&self) -> Result<()> {
        let _w = self.lock_writer();
        let state = self.read_state()?;
        let lists: Vec<u32> = (0..state.items.len() as u32).map(|s| state.items.list(s)).collect();
        let Packed { changes, ledger } = self.pack(&state, &lists);
        drop(state);
        self.write_packed(changes)?;
        self.install_packed(ledger, &mut self.write_state());
        Ok(())
    }

    /// After a rewrite of the whole index (compaction, training), asks the store to give back
    /// the space the rewrite freed if that is much (see [`Storage::reclaim_space`]). The
    /// rewrite is durable by then, so a failure here fails nothing: it is kept as a background
    /// failure (a warning on the next call), and the next explicit compaction, training run or
    /// deletion tries again.
    ///
    /// [`Storage::reclaim_space`]: crate::store::Storage::reclaim_space
    pub(crate) fn reclaim_space(&self) {
        if let Err(e) = self.store_reclaim_space() {
            self.record_background_failure(BackgroundTask::Reclaim, e);
        }
    }

    /// Writes a [`Packed`] batch (and anything added to it), clearing [`CLEARED`].
    pub(crate) fn write_packed(&self, changes: Vec<Change>) -> Result<()> {
        self.store_write_clearing(&CLEARED, changes)
    }

    /// Whether enough loose entries piled up since the last compaction: at least
    /// [`AUTO_COMPACT_MIN`] and at least half as many as there are items. Then a reload reads
    /// mostly segments, and a growing index rewrites each item about twice per doubling.
    pub fn compaction_due(&self) -> bool {
        let loose = self.loose_entries();
        loose >= AUTO_COMPACT_MIN && loose >= self.len_hint() / 2
    }

    /// Whether a background compaction runs.
    pub fn is_compacting(&self) -> bool {
        self.compacting_flag().load(Ordering::Acquire)
    }

    /// Starts a compaction on a background thread if one is due and neither a compaction nor
    /// a training run (which compacts too) is running; returns whether it started. Writes
    /// wait for it like for any write; queries go on. A failed run leaves the index as it was
    /// and is kept for [`Index::take_background_failure`]; the next due write retries.
    pub fn maybe_auto_compact(self: &Arc<Self>) -> bool {
        if !self.compaction_due() || self.is_training() || self.compacting_flag().swap(true, Ordering::AcqRel) {
            return false;
        }
        let index = Arc::clone(self);
        let spawned = std::thread::Builder::new().name("ciphervec-compact".into()).spawn(move || {
            crate::priority::lower_current_thread();
            if index.compaction_due() {
                if let Err(e) = index.compact_packing_only() {
                    index.record_background_failure(BackgroundTask::Compaction, e);
                }
            }
            index.compacting_flag().store(false, Ordering::Release);
        });
        if spawned.is_err() {
            self.compacting_flag().store(false, Ordering::Release);
            return false;
        }
        true
    }

    /// The batch that stores every item of `state` (with list `lists[slot]`) in segments, in
    /// slot order, and deletes the old segments beyond the new ones (the loose records and
    /// tombstones go with [`CLEARED`]). Callers hold `writer`.
    pub(crate) fn pack(&self, state: &State, lists: &[u32]) -> Packed {
        let items = &state.items;
        let n = items.len();
        // Pool tasks encode coarse slot ranges, each cut into segments by their exact size;
        // numbered in slot order, the segments are then sealed in parallel (the number is
        // part of the associated data).
        let per_task = (SEGMENT_BYTES * 32 / (4 * items.dim() + 64)).max(1);
        let plains: Vec<(u32, Vec<u8>)> = self.pool().install(|| {
            (0..n.div_ceil(per_task))
                .into_par_iter()
                .flat_map_iter(|t| {
                    let mut segments = Vec::new();
                    let mut writer = SegmentWriter::default();
                    let range = t * per_task..n.min((t + 1) * per_task);
                    for (s, &list) in range.clone().zip(&lists[range]) {
                        writer.push_encoded(|out| state.encode_into(s as u32, list, out));
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
        let sealed: Vec<(Change, u128)> = self.pool().install(|| {
            plains
                .par_iter()
                .enumerate()
                .map(|(i, (_, plain))| self.sealed_entry(segment::segment_key(i as u32), plain))
                .collect()
        });
        drop(plains);
        let old = self.ledger();
        let segments = sealed.len() as u32;
        let summary = RecordSet::of(sealed.iter().map(|(_, t)| *t));
        let mut changes: Vec<Change> = sealed.into_iter().map(|(c, _)| c).collect();
        changes.extend((segments..old.segments).map(|i| (segment::segment_key(i), None)));
        // The directory is a layout checked against the segments, not part of the summary.
        let (directory, _) = self.sealed_entry(DIRECTORY_KEY.to_vec(), &segment::encode_directory(&counts));
        changes.push(directory);
        changes.push((RECORD_SET_KEY.to_vec(), Some(self.seal_record_set(&summary))));
        Packed { changes, ledger: Ledger { summary, tombstones: Default::default(), segments } }
    }

    /// After a written [`Index::pack`]: every item now lives in a segment.
    pub(crate) fn install_packed(&self, ledger: Ledger, state: &mut State) {
        self.replace_ledger(ledger);
        for s in 0..state.items.len() as u32 {
            state.items.set_stored(s, Stored::Packed);
        }
    }
}
