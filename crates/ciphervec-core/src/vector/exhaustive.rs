//! Exhaustive (exact) k-nearest-neighbour search over all stored vectors, before an index is
//! trained.

use rayon::prelude::*;

use crate::vector::scan::{scan_into, Accept, FlatScanner, Query};
use crate::vector::topk::{Hit, TopK};
use crate::vector::{Metric, Slot};

/// Rows per parallel task: big enough to amortise task overhead, small enough to balance.
const CHUNK: usize = 8192;

/// Vectors in slot order (row-major) with their L2 norms: what an untrained index searches.
#[derive(Clone, Copy)]
pub(crate) struct Rows<'a> {
    pub(crate) vectors: &'a [f32],
    pub(crate) norms: &'a [f32],
}

impl Rows<'_> {
    fn scan_chunk(&self, metric: Metric, q: &Query, accept: Accept, c: usize, top: &mut TopK, scratch: &mut Vec<f32>) {
        let dim = q.vector.len();
        let (start, end) = (c * CHUNK, ((c + 1) * CHUNK).min(self.norms.len()));
        let scanner = FlatScanner::new(metric, q, &self.vectors[start * dim..end * dim], &self.norms[start..end]);
        scan_into(&scanner, |i| Slot::at(start + i), accept, top, scratch);
    }

    fn chunks(&self) -> usize {
        self.norms.len().div_ceil(CHUNK)
    }
}

/// The k closest slots, best first, scanning chunks in parallel (one query, many cores).
pub(crate) fn exhaustive_parallel(rows: Rows, metric: Metric, q: &Query, accept: Accept, k: usize) -> Vec<Hit> {
    (0..rows.chunks())
        .into_par_iter()
        .map(|c| {
            let mut top = TopK::new(k);
            rows.scan_chunk(metric, q, accept, c, &mut top, &mut Vec::new());
            top
        })
        .reduce(|| TopK::new(k), TopK::merge)
        .into_sorted()
}

/// The k closest slots, best first, on the calling thread (batches parallelise over queries).
pub(crate) fn exhaustive(rows: Rows, metric: Metric, q: &Query, accept: Accept, k: usize) -> Vec<Hit> {
    let mut top = TopK::new(k);
    let mut scratch = Vec::new();
    for c in 0..rows.chunks() {
        rows.scan_chunk(metric, q, accept, c, &mut top, &mut scratch);
    }
    top.into_sorted()
}
