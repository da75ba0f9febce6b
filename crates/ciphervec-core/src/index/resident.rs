//! Full vectors of a codes-only index, read back from the store when something needs them.
//!
//! A trained index created with `Resident::Codes` keeps only its lists' codes in memory; the
//! sealed records keep the full vectors. Two kinds of callers need those:
//!
//! - **Results that include vectors** (`get`, a query's or a metadata page's `include:
//!   ['vector']`): each item's stored version is read alone, a loose record by its key or the one
//!   packed segment holding it (its number is kept per item: `index::stored`), opened and checked
//!   against what the working set says it stored: the loose record's seal token; for a packed copy,
//!   the id's presence in that segment, and that its vector encodes to the item's code and its
//!   metadata and contents are the item's (another process's compaction may have packed a newer
//!   version into a segment of the same number). The store can be a step ahead of the working set:
//!   a write is stored before it is applied, and in a shared store other processes write. A
//!   mismatch is therefore first taken as that: the read is retried on a fresh view (after catching
//!   up with other processes' commits), and the last try holds the writer lock, so no write can be
//!   stored meanwhile and the store and the working set agree. A mismatch then is damage, and
//!   reported as such.
//! - **Rewrites** (compaction, key rotation, training): they re-seal every record, so they
//!   read every entry back as a load does, under the writer lock, into a temporary column.

use std::collections::HashMap;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::format::keys::segment_key;
use crate::format::record::RecordView;
use crate::format::segment;
use crate::index::load::{self, Source};
use crate::index::read::{Include, ItemView};
use crate::index::state::{FullVectors, State};
use crate::index::stored::Stored;
use crate::index::Index;
use crate::vector::Slot;

/// Reads of the stored vectors tried before a mismatch with the working set is reported; the
/// last one under the writer lock.
const ATTEMPTS: usize = 3;

/// Vectors found for the views at these positions.
type Found = Vec<(usize, Vec<f32>)>;

/// Results whose items may carry vectors.
pub(crate) trait Views {
    fn views_mut(&mut self) -> Vec<&mut ItemView>;
}

impl Views for Vec<ItemView> {
    fn views_mut(&mut self) -> Vec<&mut ItemView> {
        self.iter_mut().collect()
    }
}

impl Views for Vec<Vec<ItemView>> {
    fn views_mut(&mut self) -> Vec<&mut ItemView> {
        self.iter_mut().flatten().collect()
    }
}

impl Views for Vec<(ItemView, f64)> {
    fn views_mut(&mut self) -> Vec<&mut ItemView> {
        self.iter_mut().map(|(v, _)| v).collect()
    }
}

impl Views for Vec<Vec<(ItemView, f64)>> {
    fn views_mut(&mut self) -> Vec<&mut ItemView> {
        self.iter_mut().flatten().map(|(v, _)| v).collect()
    }
}

impl Index {
    /// Runs `read` on a view of the state; if the results should include vectors that only
    /// the store holds (a trained codes-only index), reads them from there into the results
    /// while that view is held (see the module docs for the retries).
    pub(crate) fn reading<T: Views>(&self, include: Include, read: impl Fn(&State) -> Result<T>) -> Result<T> {
        let mut attempt = 1;
        loop {
            let _writer = if attempt == ATTEMPTS { Some(self.lock_writer()?) } else { None };
            let state = self.read_state()?;
            let mut out = read(&state)?;
            if !include.vector || state.holds_vectors() {
                return Ok(out);
            }
            let mut views = out.views_mut();
            match self.read_stored_vectors(&state, &mut views) {
                Ok(()) => return Ok(out),
                Err(e) if attempt >= ATTEMPTS => return Err(e),
                Err(_) => {
                    drop(views);
                    drop(state);
                    attempt += 1;
                    self.sync()?;
                }
            }
        }
    }

    /// Fills each view's vector from its item's stored version.
    fn read_stored_vectors(&self, state: &State, views: &mut [&mut ItemView]) -> Result<()> {
        let vault = self.vault();
        let mismatch = |id: &str| {
            Error::Integrity(format!(
                "index '{}': the stored version of item '{id}' is missing or is not the one written",
                self.name()
            ))
        };
        // Where each wanted item is stored: loose records by key, packed ones by segment.
        let mut loose: Vec<(usize, Vec<u8>, crate::crypto::SealToken)> = Vec::new();
        let mut packed: HashMap<u32, Vec<usize>> = HashMap::new();
        let mut slots = Vec::with_capacity(views.len());
        for (i, view) in views.iter().enumerate() {
            let slot = state.items.slot(&view.id).ok_or_else(|| mismatch(&view.id))?;
            slots.push(slot);
            match (state.items.stored(slot), state.items.packed_segment(slot)) {
                (Stored::Loose { token, .. }, _) => loose.push((i, vault.record_key(&view.id), token)),
                (Stored::Packed, Some(segment)) => packed.entry(segment).or_default().push(i),
                (Stored::Packed, None) => return Err(mismatch(&view.id)),
            }
        }
        let store = &self.shared.store;
        // Blobs are read on this thread (a store read may wait; pool jobs never do) and
        // opened in parallel.
        let keys: Vec<Vec<u8>> = loose.iter().map(|(_, key, _)| key.clone()).collect();
        let loose_blobs = if keys.is_empty() { Vec::new() } else { store.get_many(self.storage_name(), &keys)? };
        let segments: Vec<(u32, Vec<usize>)> = packed.into_iter().collect();
        let mut segment_blobs = Vec::with_capacity(segments.len());
        for (number, _) in &segments {
            segment_blobs.push(store.get(self.storage_name(), &segment_key(*number))?);
        }
        let dim = state.items.dim();
        let ids: Vec<&str> = views.iter().map(|v| v.id.as_str()).collect();
        let ivf = state.ivf.as_ref().expect("only a trained index reads its vectors back");
        // Whether a packed record is the version the working set holds for `slot`.
        let same_version = |slot: Slot, rec: &RecordView<'_>, vector: &[f32]| -> Result<bool> {
            Ok(ivf.lists.encodes_to_its_code(slot, vector)
                && rec.metadata()?.as_ref() == state.items.metadata(slot)
                && rec.contents()?.as_ref() == state.items.contents(slot).map(|c| &**c))
        };
        let from_loose: Vec<Result<(usize, Vec<f32>)>> = self.pool().install(|| {
            loose
                .par_iter()
                .zip(loose_blobs)
                .map(|((i, key, token), blob)| {
                    let mut blob = blob.ok_or_else(|| mismatch(ids[*i]))?;
                    let mut aad = Vec::new();
                    let (plain, found) =
                        vault.open_in_place(&mut aad, key, &mut blob).map_err(|_| mismatch(ids[*i]))?;
                    let rec = RecordView::decode(plain)?;
                    if found != *token || rec.id != ids[*i] || rec.dim() != dim {
                        return Err(mismatch(ids[*i]));
                    }
                    Ok((*i, rec.vector().collect()))
                })
                .collect()
        });
        let from_packed: Vec<Result<Found>> = self.pool().install(|| {
            segments
                .par_iter()
                .zip(segment_blobs)
                .map(|((number, wanted), blob)| {
                    let first = || mismatch(ids[wanted[0]]);
                    let mut blob = blob.ok_or_else(first)?;
                    let mut aad = Vec::new();
                    let key = segment_key(*number);
                    let (plain, _) = vault.open_in_place(&mut aad, &key, &mut blob).map_err(|_| first())?;
                    // Views of one id asked twice (a `get` may repeat ids) share its vector.
                    let mut want: HashMap<&str, Vec<usize>> = HashMap::new();
                    for &i in wanted {
                        want.entry(ids[i]).or_default().push(i);
                    }
                    let mut out = Vec::with_capacity(wanted.len());
                    for rec in segment::records(plain)? {
                        let rec = rec?;
                        if let Some(views) = want.remove(rec.id) {
                            if rec.dim() != dim {
                                return Err(mismatch(rec.id));
                            }
                            let vector: Vec<f32> = rec.vector().collect();
                            if !same_version(slots[views[0]], &rec, &vector)? {
                                return Err(mismatch(rec.id));
                            }
                            out.extend(views.into_iter().map(|i| (i, vector.clone())));
                        }
                    }
                    match want.into_keys().next() {
                        Some(id) => Err(mismatch(id)),
                        None => Ok(out),
                    }
                })
                .collect()
        });
        for found in from_loose {
            let (i, vector) = found?;
            views[i].vector = Some(vector);
        }
        for found in from_packed {
            for (i, vector) in found? {
                views[i].vector = Some(vector);
            }
        }
        Ok(())
    }

    /// Every item's full vector for a rewrite of `state` (callers hold the writer lock, so
    /// the store holds exactly the state's items): the state's own, or in a trained
    /// codes-only index every entry read back as a load reads it (checked against the
    /// sealed summary), in slot order.
    pub(crate) fn full_vectors<'s>(&self, state: &'s State) -> Result<FullVectors<'s>> {
        if state.holds_vectors() {
            return Ok(FullVectors::Held(state));
        }
        let vault = self.vault();
        let summary = self.lock_ledger()?.summary;
        let dim = state.items.dim();
        let source = Source {
            store: &*self.shared.store,
            vault: &vault,
            index_name: self.name(),
            dim,
            summary: &summary,
            encoder: None,
        };
        let loaded = load::load_records(&self.shared, &source)?.items;
        let n = state.items.len();
        if loaded.len() != n {
            return Err(Error::Integrity(format!(
                "index '{}': the store holds {} items, the index {n}",
                self.name(),
                loaded.len()
            )));
        }
        let mut rows = vec![0f32; n * dim];
        for i in 0..n {
            let from = Slot::at(i);
            let id = loaded.id(from);
            let slot = state.items.slot(id).ok_or_else(|| {
                Error::Integrity(format!("index '{}': the store holds item '{id}', the index does not", self.name()))
            })?;
            rows[slot.index() * dim..(slot.index() + 1) * dim].copy_from_slice(loaded.vector(from));
        }
        Ok(FullVectors::Read { dim, rows })
    }
}
