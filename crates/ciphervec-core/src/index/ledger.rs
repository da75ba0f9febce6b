//! What an open index knows about its stored entries beyond the items themselves: the
//! record summary (see `record_set`), the ids whose packed copy a tombstone marks deleted,
//! and how many segments the last compaction wrote (see `segment`). Changed only under the
//! index's writer lock, after the batch that persists the change has been written.

use std::collections::HashMap;

use crate::format::summary::RecordSet;

#[derive(Debug, Default)]
pub(crate) struct Ledger {
    pub summary: RecordSet,
    /// Id → seal token of its tombstone.
    pub tombstones: HashMap<String, u128>,
    /// Segments `0..segments` exist.
    pub segments: u32,
}

impl Ledger {
    /// Stored entries other than segments: loose records and tombstones.
    pub fn loose_entries(&self) -> usize {
        (self.summary.count as usize).saturating_sub(self.segments as usize)
    }
}
