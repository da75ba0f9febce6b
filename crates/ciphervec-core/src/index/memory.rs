//! What the working set of an open index holds in memory, structure by structure: the
//! accounting behind the resident-memory bound (BENCHMARKS.md, "Resident memory of a loaded
//! index") and the figures a stats call can report. Bytes are counted from capacities, so
//! slack a structure keeps counts; the allocator's own rounding and the store's caches do not.

use crate::error::Result;
use crate::index::Index;

/// Heap bytes of an index's working set, by structure.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MemoryUsage {
    /// The `f32` vectors (the working set's column until trained, the IVF lists after).
    pub vectors: usize,
    /// One `f32` L2 norm per vector.
    pub norms: usize,
    /// The lists' compressed codes (index types other than IVF-Flat), the norms of the
    /// vectors they decode to and the code book.
    pub codes: usize,
    /// The IVF lists' slot numbers and the slot → list position map.
    pub list_slots: usize,
    /// The trained centroids.
    pub centroids: usize,
    /// Id bytes, their spans and the id → slot hash tables.
    pub ids: usize,
    /// Metadata (binary encoded) and its column.
    pub metadata: usize,
    /// The metadata index (which items hold which values), estimated.
    pub metadata_index: usize,
    /// The full-text index (terms, their postings, each item's term frequencies), estimated.
    pub text_index: usize,
    /// Contents and their column.
    pub contents: usize,
    /// Per-item bookkeeping: each item's list id and where its stored version lives.
    pub columns: usize,
    /// Ids of tombstones in the store (deleted items with a packed copy), with their tokens.
    pub tombstones: usize,
}

impl MemoryUsage {
    /// All of it.
    pub fn total(&self) -> usize {
        self.parts().iter().map(|(_, b)| b).sum()
    }

    /// Each structure's name and bytes.
    pub fn parts(&self) -> [(&'static str, usize); 12] {
        [
            ("vectors", self.vectors),
            ("norms", self.norms),
            ("codes", self.codes),
            ("list slots", self.list_slots),
            ("centroids", self.centroids),
            ("ids", self.ids),
            ("metadata", self.metadata),
            ("metadata index", self.metadata_index),
            ("text index", self.text_index),
            ("contents", self.contents),
            ("columns", self.columns),
            ("tombstones", self.tombstones),
        ]
    }
}

impl Index {
    /// The heap bytes the index's working set holds now, by structure (see [`MemoryUsage`]).
    pub fn memory(&self) -> Result<MemoryUsage> {
        let mut usage = MemoryUsage::default();
        {
            let state = self.read_state()?;
            state.items.heap_bytes(&mut usage);
            usage.metadata_index = state.postings.heap_bytes();
            usage.text_index = state.text.as_ref().map_or(0, |t| t.heap_bytes());
            if let Some(ivf) = &state.ivf {
                let lists = ivf.lists.heap_bytes();
                usage.vectors += lists.vectors;
                usage.norms += lists.norms;
                usage.codes += lists.codes;
                usage.list_slots += lists.slots;
                usage.centroids += ivf.quantizer.heap_bytes();
            }
        }
        usage.tombstones = self.lock_ledger()?.heap_bytes();
        Ok(usage)
    }
}
