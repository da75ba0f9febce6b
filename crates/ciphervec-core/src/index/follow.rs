//! Following other processes' commits to an index in a shared store (see `store::sharing`).
//!
//! Each process keeps its own decrypted working set. The handle remembers the last commit
//! it applied (`seq`); to catch up with a [`Snapshot`] it reads the log entries after it:
//! - only writes since: it reads again the loose record and the tombstone of every id they
//!   name (as the snapshot has them, so several writes of one id apply as their net result),
//!   works out the new ledger, and checks it against the stored record summary before
//!   changing anything; then it applies them all under one short write lock;
//! - a rewrite since (compaction, training, key rotation), entries it can no longer read (a
//!   rewrite let the store drop them), or a summary that does not match: it reads the whole
//!   index from the snapshot, off to the side, and swaps it in. Queries go on meanwhile,
//!   served by the previous state.
//!
//! Every write catches up first, under the index's write lock across processes (see
//! `Index::lock_writer`), so it builds on the latest state; between writes, the client's
//! follower catches up when woken by another process's commit, or when it polls, and
//! [`Index::sync`] catches up at once (strong consistency).

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use crate::crypto::SealToken;
use crate::error::{Error, Result};
use crate::format::keys::SUMMARY_KEY;
use crate::format::record::{Record, RecordView};
use crate::format::segment;
use crate::format::summary::Summary;
use crate::index::ledger::Ledger;
use crate::index::state::placement;
use crate::index::stored::Stored;
use crate::index::{Index, Opened};
use crate::store::{LogEntry, LogKind, Snapshot};

/// The stored state of one id that a write touched, read back.
struct Refreshed {
    id: String,
    /// Its loose record and that record's seal token.
    record: Option<(Record, SealToken)>,
    /// Its tombstone's seal token.
    tombstone: Option<SealToken>,
}

impl Index {
    /// The last commit this handle has applied (0 for a store that is not shared).
    pub fn applied_seq(&self) -> u64 {
        self.seq.load(Ordering::Acquire)
    }

    /// Catches up with every commit other processes made to this index, so that what the
    /// next read returns includes them (strong consistency). A no-op for a store that is
    /// not shared, or when nothing was committed since.
    pub fn sync(&self) -> Result<()> {
        let Some(sharing) = self.shared.store.sharing() else { return Ok(()) };
        self.check_open()?;
        let head = sharing.heads(&[&self.storage_name])?[0];
        self.follow_to(head)
    }

    /// Catches up if `head` (the index's last commit, as the caller learnt it; `None`: the
    /// index is gone) is not what this handle has applied.
    pub(crate) fn follow_to(&self, head: Option<u64>) -> Result<()> {
        let Some(sharing) = self.shared.store.sharing() else { return Ok(()) };
        if head == Some(self.applied_seq()) {
            return Ok(());
        }
        let _local = self.lock_local_writer()?;
        let snapshot = sharing.snapshot(&self.storage_name)?;
        self.catch_up(&*snapshot)
    }

    /// Catches up after a wake-up for commit `seq` (0: the index was deleted), unless this
    /// handle made or applied it already.
    pub(crate) fn follow_wake(&self, seq: u64) -> Result<()> {
        if seq > 0 && seq <= self.applied_seq() {
            return Ok(());
        }
        self.follow_to(None)
    }

    /// Applies every commit up to `snapshot`'s head (see the module docs). Callers hold the
    /// local writer lock.
    pub(crate) fn catch_up(&self, snapshot: &dyn Snapshot) -> Result<()> {
        let Some(head) = snapshot.head() else {
            self.close();
            return Err(Error::Closed(format!("index '{}' (another process deleted it)", self.name)));
        };
        let seq = self.applied_seq();
        if head == seq {
            return Ok(());
        }
        if head > seq {
            if let Some(entries) = snapshot.log_after(seq)? {
                let only_writes =
                    entries.len() as u64 == head - seq && entries.iter().all(|e| e.kind == LogKind::Write);
                if only_writes {
                    match self.apply_writes(snapshot, &entries) {
                        Ok(()) => {
                            self.seq.store(head, Ordering::Release);
                            return Ok(());
                        }
                        // Not what this handle expected: read everything again, which checks it all.
                        Err(Error::Integrity(_) | Error::Corrupt(_)) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        self.reload(snapshot, head)
    }

    /// Reads the whole index again from `snapshot` and swaps it in.
    fn reload(&self, snapshot: &dyn Snapshot, head: u64) -> Result<()> {
        let opened =
            match Index::read_stored(&self.shared, snapshot.reader(), &self.name, self.storage_name.clone(), &self.kek)
            {
                Ok(opened) => opened,
                Err(Error::IndexNotFound(_)) => {
                    self.close();
                    return Err(Error::Closed(format!("index '{}' (another process deleted it)", self.name)));
                }
                Err(e) => return Err(e),
            };
        let Opened { config: _, vault, state, ledger } = opened;
        *self.vault.write().unwrap_or_else(|p| p.into_inner()) = std::sync::Arc::new(vault);
        self.replace_ledger(ledger)?;
        let old = std::mem::replace(&mut *self.write_state()?, state);
        self.seq.store(head, Ordering::Release);
        drop(old); // freed after the lock is released
        Ok(())
    }

    /// Applies the write entries `entries` (see the module docs); changes nothing unless the
    /// result matches the stored record summary.
    fn apply_writes(&self, snapshot: &dyn Snapshot, entries: &[LogEntry]) -> Result<()> {
        let vault = self.vault();
        let mut seen = HashSet::new();
        let mut ids = Vec::new();
        for entry in entries {
            for id in crate::format::log::open_ids(&vault, entry.seq, &entry.body, &self.name)? {
                if seen.insert(id.clone()) {
                    ids.push(id);
                }
            }
        }
        drop(seen);
        let keys: Vec<Vec<u8>> = ids.iter().flat_map(|id| [vault.record_key(id), vault.tombstone_key(id)]).collect();
        let blobs = snapshot.reader().get_many(&self.storage_name, &keys)?;
        let integrity = |what: &str| Error::Integrity(format!("{what} of index '{}'", self.name));
        let mut aad = Vec::new();
        let mut refreshed = Vec::with_capacity(ids.len());
        for ((id, pair), keys) in ids.into_iter().zip(blobs.chunks_exact(2)).zip(keys.chunks_exact(2)) {
            let record = match &pair[0] {
                None => None,
                Some(blob) => {
                    let mut blob = blob.clone();
                    let (plain, token) =
                        vault.open_in_place(&mut aad, &keys[0], &mut blob).map_err(|_| integrity("a record"))?;
                    let record = RecordView::decode(plain)?.to_record()?;
                    if record.id != id {
                        return Err(integrity("a record"));
                    }
                    Some((record, token))
                }
            };
            let tombstone = match &pair[1] {
                None => None,
                Some(blob) => {
                    let mut blob = blob.clone();
                    let (plain, token) =
                        vault.open_in_place(&mut aad, &keys[1], &mut blob).map_err(|_| integrity("a tombstone"))?;
                    if segment::decode_tombstone(plain)? != id {
                        return Err(integrity("a tombstone"));
                    }
                    Some(token)
                }
            };
            refreshed.push(Refreshed { id, record, tombstone });
        }
        let summary_blob =
            snapshot.reader().get(&self.storage_name, SUMMARY_KEY)?.ok_or_else(|| integrity("the record summary"))?;
        let (stored_summary, seals) = Summary::open(&summary_blob, &vault, &self.name)?;

        // The new ledger and where each item is stored, worked out before anything changes.
        let mut ledger = self.lock_ledger()?;
        let mut update = ledger.begin();
        let mut placed = Vec::with_capacity(refreshed.len());
        {
            let state = self.read_state()?;
            let mut dim = state.items.dim();
            for r in &refreshed {
                if let Some((record, _)) = &r.record {
                    if dim == 0 {
                        dim = record.vector.len();
                    } else if record.vector.len() != dim {
                        return Err(Error::Corrupt(format!(
                            "a record of index '{}' has the wrong dimension",
                            self.name
                        )));
                    }
                }
                let prior = state.items.slot(&r.id).map(|slot| state.items.stored(slot));
                if let Some(Stored::Loose { token, .. }) = prior {
                    update.summary.remove(token);
                }
                let had_tombstone = ledger.has_dead_packed_copy(&r.id);
                match (r.tombstone, had_tombstone) {
                    (Some(token), false) => Ledger::tombstone_written(&mut update, &r.id, token),
                    (Some(_), true) => {}
                    // Tombstones go only with a rewrite.
                    (None, true) => return Err(integrity("a tombstone")),
                    (None, false) => {}
                }
                let stored = r.record.as_ref().map(|(_, token)| {
                    update.summary.insert(*token);
                    let packed_copy = prior.is_some_and(Stored::has_packed_copy) || r.tombstone.is_some();
                    Stored::Loose { token: *token, over_packed: packed_copy }
                });
                placed.push(stored);
            }
        }
        if update.summary != stored_summary {
            return Err(integrity("the record summary"));
        }
        let mut state = self.write_state()?;
        let metric = self.metric;
        for (r, stored) in refreshed.into_iter().zip(placed) {
            match (r.record, stored) {
                (Some((mut record, _)), Some(stored)) => {
                    if state.items.dim() == 0 {
                        state.items.set_dim(record.vector.len());
                    }
                    if let Some(ivf) = &state.ivf {
                        if record.list.is_none_or(|l| l.index() >= ivf.n_lists()) {
                            record.list = Some(ivf.quantizer.nearest(&placement(metric, &record.vector)));
                        }
                    }
                    state.upsert(record, stored);
                }
                _ => {
                    state.remove(&r.id);
                }
            }
        }
        drop(state);
        ledger.apply(update);
        self.loose_entries.store(ledger.loose_entries(), Ordering::Release);
        vault.resume_count(seals.unwrap_or(0));
        Ok(())
    }
}
