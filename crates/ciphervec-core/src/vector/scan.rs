//! Scoring stored vectors against one query: the one place where a code format meets a
//! metric.
//!
//! A *list* of stored vectors (an IVF list, or a range of the working set before training)
//! is scored by a [`Scanner`] a block at a time, and the candidates that beat the top-k's
//! threshold and pass the filter enter it. Today's one code format is `f32` rows with their
//! norms ([`FlatScanner`]); a compressed format (8-bit, PQ) is another [`Scanner`] over its
//! codes, used by the same exhaustive search and IVF probing.

use crate::vector::kernels;
use crate::vector::topk::{Hit, TopK};
use crate::vector::{Metric, Slot};

/// Decides whether a slot may be returned (a compiled metadata filter). Only called for
/// candidates close enough to enter the top-k, so a costly filter runs on few items.
pub(crate) type Accept<'a> = Option<&'a (dyn Fn(Slot) -> bool + Sync)>;

/// A prepared query: the vector and its norm (cosine needs it).
pub(crate) struct Query<'a> {
    pub(crate) vector: &'a [f32],
    pub(crate) norm: f32,
}

impl<'a> Query<'a> {
    pub(crate) fn new(vector: &'a [f32]) -> Self {
        Query { vector, norm: kernels::norm_sqr(vector).sqrt() }
    }
}

/// Scores the rows of one list against one query.
pub(crate) trait Scanner {
    /// Rows in the list.
    fn len(&self) -> usize;

    /// The scores of rows `start..start + out.len()`: lower is closer, in the units
    /// `Metric::finish` turns into distances.
    fn score(&self, start: usize, out: &mut [f32]);
}

/// `f32` rows stored contiguously, with their L2 norms.
pub(crate) struct FlatScanner<'a> {
    metric: Metric,
    query: &'a Query<'a>,
    vectors: &'a [f32],
    norms: &'a [f32],
}

impl<'a> FlatScanner<'a> {
    /// The scanner of `norms.len()` rows of `query.vector.len()` values each.
    pub(crate) fn new(metric: Metric, query: &'a Query<'a>, vectors: &'a [f32], norms: &'a [f32]) -> Self {
        debug_assert_eq!(vectors.len(), norms.len() * query.vector.len());
        FlatScanner { metric, query, vectors, norms }
    }
}

impl Scanner for FlatScanner<'_> {
    fn len(&self) -> usize {
        self.norms.len()
    }

    /// One batch-kernel call for all rows, the same kernel wherever a row is stored, so a
    /// pair's distance is identical whichever way it is searched.
    fn score(&self, start: usize, out: &mut [f32]) {
        let dim = self.query.vector.len();
        let rows = &self.vectors[start * dim..(start + out.len()) * dim];
        match self.metric {
            Metric::Cosine => {
                kernels::dot_batch(self.query.vector, rows, dim, out);
                for (d, n) in out.iter_mut().zip(&self.norms[start..]) {
                    *d = 1.0 - *d / (self.query.norm * n);
                }
            }
            _ => kernels::l2_sqr_batch(self.query.vector, rows, dim, out),
        }
    }
}

/// Scores every row of `scanner` and offers the accepted ones to `top`; `slot_of` maps a row
/// to its slot, `scratch` is reused between calls.
pub(crate) fn scan_into(
    scanner: &impl Scanner,
    slot_of: impl Fn(usize) -> Slot,
    accept: Accept,
    top: &mut TopK,
    scratch: &mut Vec<f32>,
) {
    let len = scanner.len();
    scratch.resize(len, 0.0);
    let scores = &mut scratch[..len];
    scanner.score(0, scores);
    // The threshold only moves when a hit enters, so most rows compare against a register.
    // A score equal to a finite threshold is offered too: `push` then keeps the lower slot,
    // so the top-k is the k least (score, slot) whatever order the rows come in (a batch
    // scans lists in another order than a query alone).
    let mut threshold = top.threshold();
    for (i, &s) in scores.iter().enumerate() {
        if s < threshold || (s == threshold && threshold < f32::INFINITY) {
            let slot = slot_of(i);
            if accept.is_none_or(|ok| ok(slot)) {
                top.push(Hit { score: s, slot });
                threshold = top.threshold();
            }
        }
    }
}
