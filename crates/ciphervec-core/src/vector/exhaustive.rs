//! Exhaustive (exact) k-nearest-neighbour search over the working set.

use rayon::prelude::*;

use crate::index::items::Items;
use crate::vector::kernels;
use crate::vector::metric::Metric;
use crate::vector::topk::{Hit, TopK};

/// Slots per parallel task: big enough to amortise task overhead, small enough to balance.
const CHUNK: usize = 8192;

/// Decides whether a slot may be returned (a compiled metadata filter). Only called for
/// candidates close enough to enter the top-k, so a costly filter runs on few items.
pub type Accept<'a> = Option<&'a (dyn Fn(u32) -> bool + Sync)>;

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

/// Scores slots `start..end` with one batch-kernel call (the same kernel IVF lists use, so a
/// pair's distance is identical whichever way it is searched).
fn scan_range(items: &Items, metric: Metric, q: &Query, accept: Accept, start: usize, end: usize, top: &mut TopK) {
    let dim = items.dim();
    let rows = &items.vectors()[start * dim..end * dim];
    let mut scores = vec![0f32; end - start];
    match metric {
        Metric::Cosine => {
            kernels::dot_batch(q.vector, rows, dim, &mut scores);
            for (s, n) in scores.iter_mut().zip(&items.norms()[start..end]) {
                *s = 1.0 - *s / (q.norm * n);
            }
        }
        _ => kernels::l2_sqr_batch(q.vector, rows, dim, &mut scores),
    }
    for (i, &s) in scores.iter().enumerate() {
        let slot = (start + i) as u32;
        if s < top.threshold() && accept.is_none_or(|ok| ok(slot)) {
            top.push(Hit { score: s, slot });
        }
    }
}

/// The k closest slots, best first, scanning chunks in parallel (one query, many cores).
pub fn exhaustive_parallel(items: &Items, metric: Metric, q: &Query, accept: Accept, k: usize) -> Vec<Hit> {
    let n = items.len();
    (0..n.div_ceil(CHUNK))
        .into_par_iter()
        .map(|c| {
            let mut top = TopK::new(k);
            scan_range(items, metric, q, accept, c * CHUNK, ((c + 1) * CHUNK).min(n), &mut top);
            top
        })
        .reduce(|| TopK::new(k), TopK::merge)
        .into_sorted()
}

/// The k closest slots, best first, on the calling thread (batches parallelise over queries).
pub fn exhaustive(items: &Items, metric: Metric, q: &Query, accept: Accept, k: usize) -> Vec<Hit> {
    let mut top = TopK::new(k);
    let n = items.len();
    for c in 0..n.div_ceil(CHUNK) {
        scan_range(items, metric, q, accept, c * CHUNK, ((c + 1) * CHUNK).min(n), &mut top);
    }
    top.into_sorted()
}
