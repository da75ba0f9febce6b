//! Product quantization (FAISS's IndexIVFPQ with 8-bit codes): a vector's dimensions are cut
//! into `m` sub-vectors, each sub-space has its own code book of up to 256 centroids trained
//! by k-means, and a code is the byte of the nearest centroid in each sub-space, so a code is
//! `m` bytes whatever the dimension. Codes encode the *residual* of a vector from its list's
//! centroid (the lists pass it), which is what makes a few bytes enough: residuals are small
//! and alike across lists.
//!
//! Any dimension splits: when `m` does not divide it, the first `dim % m` sub-vectors take one
//! dimension more than the others (FAISS refuses such an `m`; d = 50 then allows only 1, 2, 5,
//! 10, 25 or 50 sub-vectors).
//!
//! Scoring: `q · decode(c) = Σ_s T_s[c_s]`, with `T_s[k]` the dot product of the query's
//! sub-vector `s` and centroid `k` of sub-space `s`: one table of `m × 256` values per query,
//! then `m` look-ups per code (`kernels::pq_dot_batch`).

use rayon::prelude::*;

use crate::vector::codes::Prepared;
use crate::vector::kmeans::{self, Algorithm, KMeansParams};

/// Code-book entries per sub-space: one byte per sub-vector.
pub(crate) const KSUB: usize = 256;
/// Training points per code-book entry: k-means in each sub-space runs on at most
/// `KSUB × this` residuals (16,384), a tenth of FAISS's default sample; enough for sub-spaces
/// of a few dimensions, and the training of a 384-d code book stays a few seconds.
const POINTS_PER_ENTRY: usize = 64;
/// Lloyd iterations per sub-space (FAISS's PQ trains 25 from random seeds; ours start from
/// k-means++ seeds, like the coarse quantizer).
const ITERATIONS: usize = 15;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pq {
    dim: usize,
    /// Centroids per sub-space (≤ [`KSUB`]; fewer when trained on fewer vectors).
    ksub: usize,
    /// Start of each sub-vector, and `dim` at the end (`m + 1` values).
    bounds: Vec<usize>,
    /// Sub-space `s`'s `ksub` centroids, row-major, one sub-space after another.
    centroids: Vec<f32>,
    /// The same, each sub-space transposed (a row per dimension, `ksub` values): encoding
    /// and query tables then loop over the 256 entries innermost, which vectorises.
    columns: Vec<f32>,
}

/// Where the `m` sub-vectors of a `dim`-dimensional vector start (and `dim` at the end): the
/// first `dim % m` take `⌈dim / m⌉` dimensions, the others `⌊dim / m⌋`.
pub(crate) fn split(dim: usize, m: usize) -> Vec<usize> {
    assert!(m >= 1 && m <= dim, "1 <= m <= dim");
    let (base, longer) = (dim / m, dim % m);
    let mut bounds = Vec::with_capacity(m + 1);
    let mut at = 0;
    for s in 0..m {
        bounds.push(at);
        at += base + usize::from(s < longer);
    }
    bounds.push(at);
    bounds
}

impl Pq {
    /// Sub-vectors of a `dim`-dimensional code when the index does not say: one per two
    /// dimensions up to 64 dimensions, one per four above (rounded up). Measured with the
    /// default re-rank (BENCHMARKS.md, "Product quantization"): glove50 (d = 50) reaches
    /// recall@10 0.963 at 25 sub-vectors and never 0.95 at 13; a 384-d set 0.985 at 96
    /// (0.951 at 48, 0.989 at 192 for half the speed).
    pub(crate) fn default_sub_vectors(dim: usize) -> usize {
        if dim <= 64 {
            dim.div_ceil(2)
        } else {
            dim.div_ceil(4)
        }
    }

    /// The code book of `m` sub-vectors trained on `n` residuals of `dim` values
    /// (`residual(i, out)` writes the i-th into `out`), on the current pool.
    pub(crate) fn train(
        dim: usize,
        m: usize,
        n: usize,
        residual: &(dyn Fn(usize, &mut [f32]) + Sync),
        seed: u64,
    ) -> Pq {
        let bounds = split(dim, m);
        let ksub = KSUB.min(n / 2).max(1);
        let take = n.min(KSUB * POINTS_PER_ENTRY);
        let picked = kmeans::pick_distinct(n, take, &mut kmeans::SplitMix64(seed ^ 0x7071_0000));
        let mut sample = vec![0f32; take * dim];
        sample.par_chunks_mut(dim).zip(&picked).for_each(|(out, &i)| residual(i, out));
        let mut centroids = Vec::with_capacity(ksub * dim);
        for s in 0..m {
            let (lo, hi) = (bounds[s], bounds[s + 1]);
            let sub: Vec<f32> = sample.chunks_exact(dim).flat_map(|r| r[lo..hi].iter().copied()).collect();
            centroids.extend(train_sub_space(&sub, hi - lo, ksub, seed.wrapping_add(s as u64)));
        }
        Pq::new(dim, ksub, bounds, centroids)
    }

    fn new(dim: usize, ksub: usize, bounds: Vec<usize>, centroids: Vec<f32>) -> Pq {
        let mut columns = vec![0f32; centroids.len()];
        for s in 0..bounds.len() - 1 {
            let (lo, w) = (bounds[s], bounds[s + 1] - bounds[s]);
            let at = ksub * lo;
            for k in 0..ksub {
                for j in 0..w {
                    columns[at + j * ksub + k] = centroids[at + k * w + j];
                }
            }
        }
        Pq { dim, ksub, bounds, centroids, columns }
    }

    pub(crate) fn sub_vectors(&self) -> usize {
        self.bounds.len() - 1
    }

    /// Sub-space `s`'s centroids and the width of its sub-vectors.
    fn book(&self, s: usize) -> (&[f32], usize) {
        let (lo, hi) = (self.bounds[s], self.bounds[s + 1]);
        let at = self.ksub * lo;
        (&self.centroids[at..at + self.ksub * (hi - lo)], hi - lo)
    }

    /// Sub-space `s`'s centroids transposed: row `j` holds dimension `j` of every entry.
    fn columns(&self, s: usize) -> impl Iterator<Item = &[f32]> {
        let (lo, hi) = (self.bounds[s], self.bounds[s + 1]);
        self.columns[self.ksub * lo..self.ksub * hi].chunks_exact(self.ksub)
    }

    /// Appends the code of `r` (a residual): the nearest centroid of each sub-space (the
    /// first of equals).
    pub(crate) fn encode(&self, r: &[f32], out: &mut Vec<u8>) {
        let mut dist = [0f32; KSUB];
        let dist = &mut dist[..self.ksub];
        for s in 0..self.sub_vectors() {
            dist.fill(0.0);
            for (&x, column) in r[self.bounds[s]..self.bounds[s + 1]].iter().zip(self.columns(s)) {
                for (d, &c) in dist.iter_mut().zip(column) {
                    *d += (x - c) * (x - c);
                }
            }
            let mut best = (f32::INFINITY, 0usize);
            for (k, &d) in dist.iter().enumerate() {
                if d < best.0 {
                    best = (d, k);
                }
            }
            out.push(best.1 as u8);
        }
    }

    /// The residual a code stands for.
    pub(crate) fn decode(&self, code: &[u8]) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.dim);
        for (s, &c) in code.iter().enumerate() {
            let (book, w) = self.book(s);
            out.extend_from_slice(&book[c as usize * w..(c as usize + 1) * w]);
        }
        out
    }

    /// The look-up table of `q`: `weights[s·256 + k] = q_s · centroid k of sub-space s`
    /// (entries past `ksub` are 0 and never read).
    pub(crate) fn prepare(&self, q: &[f32]) -> Prepared {
        let mut table = vec![0f32; self.sub_vectors() * KSUB];
        for (s, row) in table.chunks_exact_mut(KSUB).enumerate() {
            for (&x, column) in q[self.bounds[s]..self.bounds[s + 1]].iter().zip(self.columns(s)) {
                for (t, &c) in row.iter_mut().zip(column) {
                    *t += x * c;
                }
            }
        }
        Prepared { weights: table, bias: 0.0, ints: None }
    }

    /// `m ‖ ksub ‖ centroids` (the counts as `f32`, exact below 2^24).
    pub(crate) fn to_parts(&self) -> Vec<f32> {
        let mut parts = vec![self.sub_vectors() as f32, self.ksub as f32];
        parts.extend_from_slice(&self.centroids);
        parts
    }

    pub(crate) fn from_parts(dim: usize, values: &[f32]) -> Option<Pq> {
        let (&m, rest) = values.split_first()?;
        let (&ksub, centroids) = rest.split_first()?;
        let whole = |x: f32| (x.fract() == 0.0 && x >= 1.0).then_some(x as usize);
        let (m, ksub) = (whole(m)?, whole(ksub)?);
        if m > dim || ksub > KSUB || centroids.len() != ksub * dim || centroids.iter().any(|x| !x.is_finite()) {
            return None;
        }
        Some(Pq::new(dim, ksub, split(dim, m), centroids.to_vec()))
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        (self.centroids.capacity() + self.columns.capacity()) * size_of::<f32>()
            + self.bounds.capacity() * size_of::<usize>()
    }
}

/// `k` centroids of the `w`-dimensional rows of `sub` (k-means++ seeds, then Lloyd).
fn train_sub_space(sub: &[f32], w: usize, k: usize, seed: u64) -> Vec<f32> {
    let params = KMeansParams {
        max_iters: ITERATIONS,
        max_points_per_centroid: 0,
        seed,
        ..KMeansParams::with(k, Algorithm::Lloyd)
    };
    match kmeans::train(sub, w, &params, &|| false, &|_| {}) {
        Ok(result) => result.centroids,
        // Fewer than 2·k rows: every row is a centroid, the rest repeat the first.
        Err(_) if sub.is_empty() => vec![0.0; k * w],
        Err(_) => {
            let n = sub.len() / w;
            (0..k).flat_map(|i| sub[(i % n) * w..(i % n + 1) * w].iter().copied()).collect()
        }
    }
}
