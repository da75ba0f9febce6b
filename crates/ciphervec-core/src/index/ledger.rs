//! What an open index knows about its stored entries beyond the items themselves: the
//! record summary, the ids whose packed copy a tombstone marks deleted, and how many
//! segments the last compaction wrote; and the rules of the loose/packed layout (see
//! `format::segment`) that every write and the load follow:
//!
//! - a write stores an item as a loose record; its previous loose version (if any) leaves
//!   the summary, and a packed copy of its id (live, or dead under a tombstone) stays until
//!   the next compaction, *shadowed*: the item is `over_packed`;
//! - a delete removes the loose record, and an item with a packed copy gets a tombstone
//!   (once: a tombstone stays until the next compaction);
//! - a compaction packs every live item and clears the rest (see `compaction`).
//!
//! Changed only under the index's writer lock, after the batch that persists the change has
//! been written: a write records its changes in a [`LedgerUpdate`] first.

use std::collections::HashMap;

use crate::crypto::SealToken;
use crate::format::summary::Summary;
use crate::index::stored::Stored;

#[derive(Debug, Default)]
pub(crate) struct Ledger {
    pub(crate) summary: Summary,
    /// Id → seal token of its tombstone.
    pub(crate) tombstones: HashMap<String, SealToken>,
    /// Segments `0..segments` exist.
    pub(crate) segments: u32,
}

/// The ledger changes of one write, applied with [`Ledger::apply`] once it is stored.
pub(crate) struct LedgerUpdate {
    /// The summary with the write's entries.
    pub(crate) summary: Summary,
    tombstones: Vec<(String, SealToken)>,
}

/// What deleting an item takes in the store.
pub(crate) struct Deletion {
    /// Its loose record is deleted.
    pub(crate) loose_record: bool,
    /// A tombstone must be written for its packed copy.
    pub(crate) tombstone: bool,
}

impl Ledger {
    /// Heap bytes of the tombstones: the table (an id and a token per bucket, one control
    /// byte each) and the ids' bytes.
    pub(crate) fn heap_bytes(&self) -> usize {
        let bucket = size_of::<(String, SealToken)>() + 1;
        self.tombstones.capacity() * bucket + self.tombstones.keys().map(String::capacity).sum::<usize>()
    }

    /// Stored entries other than segments: loose records and tombstones.
    pub(crate) fn loose_entries(&self) -> usize {
        (self.summary.count as usize).saturating_sub(self.segments as usize)
    }

    pub(crate) fn begin(&self) -> LedgerUpdate {
        LedgerUpdate { summary: self.summary, tombstones: Vec::new() }
    }

    /// Records a new loose record of `id`, sealed with `token`, whose item was stored as
    /// `prior` (`None`: a new id). Returns where the item is stored now.
    pub(crate) fn loose_written(
        &self,
        u: &mut LedgerUpdate,
        id: &str,
        prior: Option<Stored>,
        token: SealToken,
    ) -> Stored {
        let over_packed = match prior {
            Some(Stored::Loose { token: old, over_packed }) => {
                u.summary.replace(old, token);
                over_packed
            }
            Some(Stored::Packed) => {
                u.summary.insert(token);
                true
            }
            None => {
                u.summary.insert(token);
                self.has_dead_packed_copy(id)
            }
        };
        Stored::Loose { token, over_packed }
    }

    /// Records the deletion of an item stored as `stored`; says what the store must do.
    pub(crate) fn deleted(&self, u: &mut LedgerUpdate, id: &str, stored: Stored) -> Deletion {
        if let Stored::Loose { token, .. } = stored {
            u.summary.remove(token);
        }
        let tombstone = stored.has_packed_copy() && !self.has_dead_packed_copy(id);
        Deletion { loose_record: matches!(stored, Stored::Loose { .. }), tombstone }
    }

    /// Records a tombstone of `id` sealed with `token` (after [`Ledger::deleted`] asked for it).
    pub(crate) fn tombstone_written(u: &mut LedgerUpdate, id: &str, token: SealToken) {
        u.summary.insert(token);
        u.tombstones.push((id.to_string(), token));
    }

    /// Whether a tombstone marks a packed copy of `id` deleted.
    pub(crate) fn has_dead_packed_copy(&self, id: &str) -> bool {
        self.tombstones.contains_key(id)
    }

    /// Takes a write's changes once the store holds it.
    pub(crate) fn apply(&mut self, u: LedgerUpdate) {
        self.summary = u.summary;
        self.tombstones.extend(u.tombstones);
    }
}

/// Whether a loose record of an id shadows a packed copy: the load's form of the rule in
/// [`Ledger::loose_written`] (a live packed copy, or a dead one under a tombstone).
pub(crate) fn shadows_packed(live_packed_copy: bool, tombstoned: bool) -> bool {
    live_packed_copy || tombstoned
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_deletes_keep_the_summary_and_tombstones_right() {
        let mut ledger = Ledger::default();
        let mut u = ledger.begin();
        // A new id, then its overwrite: one loose record in the summary.
        let first = ledger.loose_written(&mut u, "a", None, SealToken(1));
        assert_eq!(first, Stored::Loose { token: SealToken(1), over_packed: false });
        let second = ledger.loose_written(&mut u, "a", Some(first), SealToken(2));
        assert_eq!(u.summary, Summary::of([SealToken(2)]));
        // An id whose item is packed: shadowed.
        let over = ledger.loose_written(&mut u, "p", Some(Stored::Packed), SealToken(3));
        assert_eq!(over, Stored::Loose { token: SealToken(3), over_packed: true });
        ledger.apply(u);
        let mut u = ledger.begin();
        let d = ledger.deleted(&mut u, "a", second);
        assert!(d.loose_record && !d.tombstone, "no packed copy: no tombstone");
        let d = ledger.deleted(&mut u, "p", over);
        assert!(d.loose_record && d.tombstone);
        Ledger::tombstone_written(&mut u, "p", SealToken(4));
        ledger.apply(u);
        assert!(ledger.has_dead_packed_copy("p"));
        assert_eq!(ledger.summary, Summary::of([SealToken(4)]));
        // Re-adding a tombstoned id shadows its dead copy; deleting it again needs no second
        // tombstone.
        let mut u = ledger.begin();
        let back = ledger.loose_written(&mut u, "p", None, SealToken(5));
        assert_eq!(back, Stored::Loose { token: SealToken(5), over_packed: true });
        assert!(!ledger.deleted(&mut u, "p", back).tombstone);
        assert!(shadows_packed(false, true) && shadows_packed(true, false) && !shadows_packed(false, false));
    }
}
