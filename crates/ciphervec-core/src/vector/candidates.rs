//! Exact search of a batch of queries over one set of candidate slots (the matches of a
//! selective filter, shared by every query of a `queryBatch`).
//!
//! Scoring each candidate where it is stored costs a random read of its whole vector per
//! query. Here the candidates are gathered once per batch, a piece at a time, into the panel
//! layout of the coarse quantizer ([`CentroidPanels`]), and every query of the batch is scored
//! against a piece by the same register-tiled kernel that assigns points to centroids. That
//! kernel ranks by `‖c‖² − 2·x·c`, whose float rounding may reorder near-ties, so each query
//! keeps a margin of its best and re-scores them with the exact scorer every other search path
//! uses: the results and distances are those of scoring every candidate exactly.

use rayon::prelude::*;

use crate::vector::kernels::{centroid_scores, norm_sqr, prefetch, CentroidPanels};
use crate::vector::topk::{Hit, TopK};
use crate::vector::{Metric, Slot};

/// Candidates gathered per piece are at most this many bytes of vectors, so a piece's panels
/// and the scores of a block of queries against it stay within the last-level cache.
const PIECE_BYTES: usize = 2 << 20;
/// Rows gathered ahead of the one being copied.
const PREFETCH_AHEAD: usize = 8;
/// Queries scored against a piece by one kernel call (a multiple of the kernel's 6-row tile).
const QUERY_BLOCK: usize = 24;

/// Candidates each query keeps from the panel scores for its exact re-scoring. Rounding of
/// the panel form only swaps near-ties, so any margin beyond `k` suffices; 4·k (at least 32)
/// costs a few dozen exact scores per query.
fn margin(k: usize) -> usize {
    k.saturating_mul(4).max(32)
}

/// The `k` nearest candidates of each query, best first: `vector_of` gives a candidate's
/// stored vector, `exact` a query's exact score of a slot (as a list scan scores it). Pieces
/// of candidates and blocks of queries run in parallel on the current pool; once `aborted`
/// returns true the remaining pieces are skipped (the caller reports the abort).
pub(crate) fn search<'a>(
    metric: Metric,
    queries: &[&[f32]],
    candidates: &[Slot],
    k: usize,
    vector_of: &(dyn Fn(Slot) -> &'a [f32] + Sync),
    exact: &(dyn Fn(usize, Slot) -> f32 + Sync),
    aborted: &(dyn Fn() -> bool + Sync),
) -> Vec<Vec<Hit>> {
    let Some(dim) = queries.first().map(|q| q.len()) else { return Vec::new() };
    if candidates.is_empty() || k == 0 {
        return vec![Vec::new(); queries.len()];
    }
    let keep = margin(k).min(candidates.len());
    let placed: Vec<f32> = queries.iter().flat_map(|q| placement(metric, q)).collect();
    let piece_len = (PIECE_BYTES / (dim * size_of::<f32>())).max(64);
    let kept = candidates
        .par_chunks(piece_len)
        .map(|piece| {
            if aborted() {
                return Vec::new();
            }
            score_piece(metric, dim, &placed, piece, keep, vector_of)
        })
        .reduce(Vec::new, merge_all);
    if kept.is_empty() {
        return vec![Vec::new(); queries.len()];
    }
    kept.into_par_iter()
        .enumerate()
        .map(|(qi, top)| {
            let mut best = TopK::new(k);
            for h in top.into_sorted() {
                let score = exact(qi, h.slot);
                if score < best.threshold() {
                    best.push(Hit { score, slot: h.slot });
                }
            }
            best.into_sorted()
        })
        .collect()
}

/// Each query's `keep` best of one piece by panel score.
fn score_piece<'a>(
    metric: Metric,
    dim: usize,
    placed: &[f32],
    piece: &[Slot],
    keep: usize,
    vector_of: &(dyn Fn(Slot) -> &'a [f32] + Sync),
) -> Vec<TopK> {
    // Looking the rows up first and prefetching a few ahead overlaps their cache misses
    // (the rows are scattered over the lists; the gather was a third of a batch's time).
    let rows: Vec<&[f32]> = piece.iter().map(|&s| vector_of(s)).collect();
    let ahead = rows.iter().enumerate().map(|(i, row)| {
        if let Some(next) = rows.get(i + PREFETCH_AHEAD) {
            prefetch(next);
        }
        *row
    });
    let panels = CentroidPanels::from_rows(ahead, dim, metric == Metric::Cosine);
    let stride = panels.padded_len();
    placed
        .par_chunks(QUERY_BLOCK * dim)
        .flat_map_iter(|block| {
            let n = block.len() / dim;
            let mut scores = vec![0f32; n * stride];
            centroid_scores(block, &panels, &mut scores);
            scores
                .chunks_exact(stride)
                .map(|row| {
                    let mut top = TopK::new(keep);
                    for (i, &s) in row[..piece.len()].iter().enumerate() {
                        if s < top.threshold() {
                            top.push(Hit { score: s, slot: piece[i] });
                        }
                    }
                    top
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Query-wise union of two pieces' kept candidates (an empty side is a skipped piece).
fn merge_all(a: Vec<TopK>, b: Vec<TopK>) -> Vec<TopK> {
    if a.is_empty() {
        return b;
    }
    if b.is_empty() {
        return a;
    }
    a.into_iter().zip(b).map(|(x, y)| x.merge(y)).collect()
}

/// The vector as the panels rank it: unit length for cosine, as stored otherwise.
fn placement(metric: Metric, v: &[f32]) -> Vec<f32> {
    if metric != Metric::Cosine {
        return v.to_vec();
    }
    let norm = norm_sqr(v).sqrt();
    v.iter().map(|x| x / norm).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vector::kernels;

    fn data(n: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n * dim)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn exact_score(metric: Metric, q: &[f32], v: &[f32]) -> f32 {
        match metric {
            Metric::Cosine => 1.0 - kernels::dot(q, v) / (norm_sqr(q).sqrt() * norm_sqr(v).sqrt()),
            _ => kernels::l2_sqr(q, v),
        }
    }

    /// Panel ranking plus exact re-scoring returns what scoring every candidate exactly does,
    /// for both metric families, pieces of any length (several pieces here) and query counts
    /// that are not multiples of the block.
    #[test]
    fn equals_exact_scoring_of_every_candidate() {
        for (metric, dim) in [(Metric::Euclidean, 50), (Metric::Cosine, 7), (Metric::SquaredEuclidean, 300)] {
            let n = 6_000;
            let base = data(n, dim, 1);
            let qs = data(31, dim, 2);
            let queries: Vec<&[f32]> = qs.chunks_exact(dim).collect();
            let candidates: Vec<Slot> = (0..n).filter(|i| i % 3 != 1).map(Slot::at).collect();
            let vector_of = |s: Slot| &base[s.index() * dim..(s.index() + 1) * dim];
            let exact = |qi: usize, s: Slot| exact_score(metric, queries[qi], vector_of(s));
            for k in [1, 10, 100] {
                let got = search(metric, &queries, &candidates, k, &vector_of, &exact, &|| false);
                for (qi, hits) in got.iter().enumerate() {
                    let mut want = TopK::new(k);
                    for &s in &candidates {
                        want.push(Hit { score: exact(qi, s), slot: s });
                    }
                    assert_eq!(hits, &want.into_sorted(), "{metric:?} dim {dim} k {k} query {qi}");
                }
            }
        }
    }

    #[test]
    fn fewer_candidates_than_k_returns_them_all() {
        let dim = 4;
        let base = data(5, dim, 3);
        let q = data(1, dim, 4);
        let vector_of = |s: Slot| &base[s.index() * dim..(s.index() + 1) * dim];
        let exact = |_: usize, s: Slot| kernels::l2_sqr(&q, vector_of(s));
        let got = search(Metric::Euclidean, &[&q], &[Slot(0), Slot(3)], 10, &vector_of, &exact, &|| false);
        assert_eq!(got[0].len(), 2);
        assert!(search(Metric::Euclidean, &[&q], &[], 10, &vector_of, &exact, &|| false)[0].is_empty());
    }
}
