//! Exhaustive (exact) k-nearest-neighbour search over the working set.

use rayon::prelude::*;

use crate::items::Items;
use crate::kernels;
use crate::metric::Metric;
use crate::topk::{Hit, TopK};

/// Slots per parallel task: big enough to amortise task overhead, small enough to balance.
const CHUNK: usize = 8192;

/// A prepared query: the vector and its norm (cosine needs it).
pub struct Query<'a> {
    pub vector: &'a [f32],
    pub norm: f32,
}

impl<'a> Query<'a> {
    pub fn new(vector: &'a [f32]) -> Self {
        Query { vector, norm: kernels::norm_sqr(vector).sqrt() }
    }
}

fn scan_range(items: &Items, metric: Metric, q: &Query, start: usize, end: usize, top: &mut TopK) {
    let norms = items.norms();
    for slot in start..end {
        let s = metric.score(q.vector, q.norm, items.vector(slot as u32), norms[slot]);
        if s < top.threshold() {
            top.push(Hit { score: s, slot: slot as u32 });
        }
    }
}

/// The k closest slots, best first, scanning chunks in parallel (one query, many cores).
pub fn exhaustive_parallel(items: &Items, metric: Metric, q: &Query, k: usize) -> Vec<Hit> {
    let n = items.len();
    (0..n.div_ceil(CHUNK))
        .into_par_iter()
        .map(|c| {
            let mut top = TopK::new(k);
            scan_range(items, metric, q, c * CHUNK, ((c + 1) * CHUNK).min(n), &mut top);
            top
        })
        .reduce(|| TopK::new(k), TopK::merge)
        .into_sorted()
}

/// The k closest slots, best first, on the calling thread (batches parallelise over queries).
pub fn exhaustive(items: &Items, metric: Metric, q: &Query, k: usize) -> Vec<Hit> {
    let mut top = TopK::new(k);
    scan_range(items, metric, q, 0, items.len(), &mut top);
    top.into_sorted()
}
