//! Writes: upsert and delete. Each is one atomic store batch (its records or tombstones and
//! the new record summary); the working set changes only after the batch is stored, under a
//! brief write lock, so a failed write changes nothing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::format::keys::{CONFIG_KEY, SUMMARY_KEY};
use crate::format::record::{Contents, Record};
use crate::format::segment;
use crate::index::ledger::Ledger;
use crate::index::state::placement;
use crate::index::validate::{self, check_batch, check_ids};
use crate::index::Index;
use crate::meta::Meta;
use crate::store::Change;

/// An item to write.
#[derive(Debug, Clone)]
pub struct NewItem {
    /// Unique, non-empty id, at most [`MAX_ID_BYTES`](crate::MAX_ID_BYTES) of UTF-8.
    pub id: String,
    /// The embedding.
    pub vector: Vec<f32>,
    /// A JSON object stored with the item.
    pub metadata: Option<Meta>,
    /// Text or bytes stored with the item.
    pub contents: Option<Contents>,
}

/// What an upsert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpsertReport {
    /// Distinct ids written.
    pub upserted: usize,
    /// Whether the write started a background training run (see [`AutoTrain`](crate::AutoTrain)).
    pub training_started: bool,
}

impl Index {
    /// Writes items (all or none). A repeated id in one batch: the last occurrence wins.
    /// Then starts background training or compaction if either is due.
    pub fn upsert(self: &Arc<Self>, batch: Vec<NewItem>) -> Result<UpsertReport> {
        self.upsert_unless(batch, &AtomicBool::new(false))
    }

    /// [`Index::upsert`] that its caller can abort: once `abort` is set, the call fails with
    /// `ERR_ABORTED` and nothing is written, at its next check (after the writer lock is
    /// taken, and after sealing, before the store write). Set after the store write, it is
    /// too late: the upsert completes.
    pub fn upsert_unless(self: &Arc<Self>, batch: Vec<NewItem>, abort: &AtomicBool) -> Result<UpsertReport> {
        let upserted = self.write_items(batch, abort)?;
        Ok(UpsertReport { upserted, training_started: upserted > 0 && self.after_write() })
    }

    fn write_items(&self, batch: Vec<NewItem>, abort: &AtomicBool) -> Result<usize> {
        self.check_open()?;
        let batch = check_batch(batch, self.metric)?;
        if batch.is_empty() {
            return Ok(0);
        }
        let mut lock = self.lock_writer()?;
        self.check_abort(abort, "upsert")?;
        let vault = self.vault();
        vault.check_budget(&self.name)?;
        let dim = batch[0].vector.len();
        let state = self.read_state()?;
        let current = state.items.dim();
        let mut changes: Vec<Change> = Vec::with_capacity(batch.len() + 2);
        if current == 0 {
            if let Some(problem) = validate::index_type_problem(self.index_type, dim) {
                return Err(Error::DimensionMismatch(format!(
                    "index '{}' cannot take vectors of dimension {dim}: {problem}",
                    self.name
                )));
            }
            changes.push((CONFIG_KEY.to_vec(), Some(self.config(dim).seal(&vault).blob)));
        } else if dim != current {
            return Err(Error::DimensionMismatch(format!(
                "the upserted vectors have dimension {dim}, but index '{}' has dimension {current}",
                self.name
            )));
        }
        let metric = self.metric;
        let quantizer = state.ivf.as_ref().map(|ivf| &ivf.quantizer);
        // The list is chosen before sealing so it travels inside the ciphertext.
        let records: Vec<Record> = self.pool().install(|| {
            batch
                .into_par_iter()
                .map(|it| Record {
                    list: quantizer.map(|q| q.nearest(&placement(metric, &it.vector))),
                    id: it.id,
                    vector: it.vector,
                    metadata: it.metadata,
                    contents: it.contents.map(Arc::new),
                })
                .collect()
        });
        // Padded: a loose record's size would tell the store the size of what it holds.
        let sealed: Vec<_> = self.pool().install(|| {
            records
                .par_iter()
                .map(|rec| {
                    let key = vault.record_key(&rec.id);
                    let sealed = vault.seal_padded(&key, &rec.encode());
                    (key, sealed)
                })
                .collect()
        });
        let mut ledger = self.lock_ledger()?;
        let mut update = ledger.begin();
        let mut stored = Vec::with_capacity(sealed.len());
        for (rec, (key, sealed)) in records.iter().zip(sealed) {
            let prior = state.items.slot(&rec.id).map(|slot| state.items.stored(slot));
            stored.push(ledger.loose_written(&mut update, &rec.id, prior, sealed.token));
            changes.push((key, Some(sealed.blob)));
        }
        changes.push((SUMMARY_KEY.to_vec(), Some(update.summary.seal(&vault).blob)));
        drop(state);
        self.check_abort(abort, "upsert")?;
        let touched: Vec<&str> = records.iter().map(|r| r.id.as_str()).collect();
        self.commit(&mut lock, &[], changes, Some(&touched))?;
        drop(touched);
        ledger.apply(update);
        self.loose_entries.store(ledger.loose_entries(), Ordering::Release);
        drop(ledger);
        let n = records.len();
        let mut state = self.write_state()?;
        if current == 0 {
            state.items.set_dim(dim);
        }
        for (rec, stored) in records.into_iter().zip(stored) {
            state.upsert(rec, stored);
        }
        Ok(n)
    }

    /// Deletes ids (all or none); ids not in the index are ignored. Returns how many existed.
    /// Then starts a background compaction if one is due.
    pub fn delete(self: &Arc<Self>, ids: &[String]) -> Result<usize> {
        let n = self.delete_items(ids)?;
        if n > 0 {
            self.after_write();
        }
        Ok(n)
    }

    fn delete_items(&self, ids: &[String]) -> Result<usize> {
        self.check_open()?;
        check_ids(ids.iter().map(String::as_str))?;
        let mut lock = self.lock_writer()?;
        let vault = self.vault();
        let present: Vec<(&String, _)> = {
            let state = self.read_state()?;
            let mut seen = std::collections::HashSet::new();
            ids.iter()
                .filter_map(|id| Some((id, state.items.stored(state.items.slot(id)?))))
                .filter(|(id, _)| seen.insert(id.as_str()))
                .collect()
        };
        if present.is_empty() {
            return Ok(0);
        }
        vault.check_budget(&self.name)?;
        let mut ledger = self.lock_ledger()?;
        let mut update = ledger.begin();
        let mut changes: Vec<Change> = Vec::with_capacity(present.len() + 1);
        for &(id, stored) in &present {
            let deletion = ledger.deleted(&mut update, id, stored);
            if deletion.loose_record {
                changes.push((vault.record_key(id), None));
            }
            // A packed copy stays until the next compaction; a tombstone marks it deleted.
            if deletion.tombstone {
                let key = vault.tombstone_key(id);
                let sealed = vault.seal_padded(&key, &segment::encode_tombstone(id));
                Ledger::tombstone_written(&mut update, id, sealed.token);
                changes.push((key, Some(sealed.blob)));
            }
        }
        changes.push((SUMMARY_KEY.to_vec(), Some(update.summary.seal(&vault).blob)));
        let touched: Vec<&str> = present.iter().map(|(id, _)| id.as_str()).collect();
        self.commit(&mut lock, &[], changes, Some(&touched))?;
        ledger.apply(update);
        self.loose_entries.store(ledger.loose_entries(), Ordering::Release);
        drop(ledger);
        let mut state = self.write_state()?;
        for (id, _) in &present {
            state.remove(id);
        }
        Ok(present.len())
    }
}
