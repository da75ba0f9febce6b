//! Vectors and their search: metrics ([`Metric`], and which vectors float32 can score),
//! distance kernels (AVX2/FMA with a portable fallback), top-k selection, k-means, the list
//! scanner that scores stored vectors against a query (`scan`), exhaustive search over the
//! working set, and IVF: the coarse quantizer and the inverted lists.
//!
//! A code format (`codes`: 8-bit, float16) is a `scan::Scanner` over its codes, held by the
//! inverted lists; the quantizer, probing, filtering and top-k stay as they are.

pub(crate) mod candidates;
pub(crate) mod codes;
pub(crate) mod exhaustive;
pub(crate) mod ivf;
pub(crate) mod kernels;
pub(crate) mod kmeans;
mod metric;
pub(crate) mod scan;
pub(crate) mod topk;

pub use codes::{IndexType, PqShape, Resident};
pub(crate) use ivf::ListId;
pub use metric::Metric;
pub use metric::{MAX_NORM_SQR, MIN_COSINE_NORM_SQR};

/// A position in an index's working set. Slots are dense (`0..len`): a delete moves the last
/// item into the freed slot, so an item's slot is not stable across deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Slot(pub(crate) u32);

impl Slot {
    /// The slot at position `i`.
    pub(crate) fn at(i: usize) -> Slot {
        Slot(u32::try_from(i).expect("an index holds fewer than 2^32 items"))
    }

    /// The slot's position.
    pub(crate) fn index(self) -> usize {
        self.0 as usize
    }
}
