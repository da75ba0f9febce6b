//! What an open index is made of, for operators: its items, its lists and how balanced they
//! are, how much of its store is loose (and so due for compaction), and the memory its working
//! set holds. Read from the working set in memory; nothing is read from the store.

use crate::error::Result;
use crate::index::memory::MemoryUsage;
use crate::index::Index;
use crate::vector::{IndexType, Metric, Resident};

/// See the module docs.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexStats {
    /// Items held.
    pub items: usize,
    /// The dimension, once fixed.
    pub dimension: Option<usize>,
    /// The distance metric.
    pub metric: Metric,
    /// How the lists store the vectors they scan.
    pub index_type: IndexType,
    /// What the lists keep in memory once trained.
    pub resident: Resident,
    /// IVF lists: 1 until trained.
    pub n_lists: usize,
    /// How the items spread over the lists; `None` until trained.
    pub lists: Option<ListSizes>,
    /// Loose records and tombstones in the store (a compaction packs them into segments).
    pub loose_entries: usize,
    /// Packed segments in the store.
    pub segments: usize,
    /// Heap bytes of the working set, by structure.
    pub memory: MemoryUsage,
}

/// Items per IVF list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListSizes {
    /// The smallest list.
    pub min: usize,
    /// The median list (the lower middle of an even count).
    pub median: usize,
    /// The largest list.
    pub max: usize,
    /// Lists holding no item.
    pub empty: usize,
}

impl ListSizes {
    fn of(mut sizes: Vec<usize>) -> Option<ListSizes> {
        sizes.sort_unstable();
        let (&min, &max) = (sizes.first()?, sizes.last()?);
        let median = sizes[(sizes.len() - 1) / 2];
        Some(ListSizes { min, median, max, empty: sizes.iter().take_while(|&&n| n == 0).count() })
    }
}

impl Index {
    /// See [`IndexStats`].
    pub fn stats(&self) -> Result<IndexStats> {
        let (items, lists) = {
            let state = self.read_state()?;
            (state.items.len(), state.ivf.as_ref().and_then(|ivf| ListSizes::of(ivf.lists.sizes())))
        };
        let segments = self.lock_ledger()?.segments as usize;
        Ok(IndexStats {
            items,
            dimension: self.dimension(),
            metric: self.metric(),
            index_type: self.index_type(),
            resident: self.resident(),
            n_lists: self.n_lists(),
            lists,
            loose_entries: self.loose_entries(),
            segments,
            memory: self.memory()?,
        })
    }
}
