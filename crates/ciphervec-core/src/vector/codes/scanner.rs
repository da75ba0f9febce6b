//! Scoring a list's codes against a prepared query.

use crate::vector::codes::{Codec, Prepared};
use crate::vector::scan::{Query, Scanner};
use crate::vector::Metric;

/// Rows of codes (with the norms of the vectors they decode to) scored against one query,
/// in the units of [`FlatScanner`](crate::vector::scan::FlatScanner): squared L2, or
/// `1 − cos` under cosine. Approximate: the IVF search re-ranks its best candidates exactly.
pub(crate) struct CodeScanner<'a> {
    metric: Metric,
    codec: &'a Codec,
    code_size: usize,
    query: &'a Query<'a>,
    prepared: &'a Prepared,
    /// `prepared.bias`, plus `q · centroid` of the list for a residual codec.
    bias: f32,
    codes: &'a [u8],
    norms: &'a [f32],
}

impl<'a> CodeScanner<'a> {
    /// The scanner of `norms.len()` codes of `codec`, `prepared` from `query` by it;
    /// `base_dot` is `q · centroid` of their list for a residual codec (else 0).
    pub(crate) fn new(
        metric: Metric,
        codec: &'a Codec,
        query: &'a Query<'a>,
        prepared: &'a Prepared,
        base_dot: f32,
        codes: &'a [u8],
        norms: &'a [f32],
    ) -> Self {
        let code_size = codec.code_size(query.vector.len());
        debug_assert_eq!(codes.len(), norms.len() * code_size);
        CodeScanner { metric, codec, code_size, query, prepared, bias: prepared.bias + base_dot, codes, norms }
    }
}

impl Scanner for CodeScanner<'_> {
    fn len(&self) -> usize {
        self.norms.len()
    }

    /// `‖q − x̂‖² = ‖q‖² − 2·q·x̂ + ‖x̂‖²` (never below 0) or `1 − q·x̂ / (‖q‖·‖x̂‖)`, with
    /// `q·x̂` from one kernel call over the codes.
    fn score(&self, start: usize, out: &mut [f32]) {
        let row = self.code_size;
        let codes = &self.codes[start * row..(start + out.len()) * row];
        self.codec.dot_batch(self.prepared, codes, out);
        let bias = self.bias;
        let qn = self.query.norm;
        let norms = &self.norms[start..start + out.len()];
        match self.metric {
            Metric::Cosine => {
                for (d, &n) in out.iter_mut().zip(norms) {
                    let denom = qn * n;
                    *d = if denom > 0.0 { 1.0 - (bias + *d) / denom } else { 1.0 };
                }
            }
            _ => {
                let qq = qn * qn;
                for (d, &n) in out.iter_mut().zip(norms) {
                    *d = (qq - 2.0 * (bias + *d) + n * n).max(0.0);
                }
            }
        }
    }
}
