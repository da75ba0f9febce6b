//! k-means for training the IVF coarse quantiser. Both algorithms share FAISS's `Clustering`
//! setup (sampled training set, k-means++ seeds, GEMM-style assignment, empty clusters fixed by
//! splitting) so quality and speed compare directly with IndexIVFFlat:
//!
//! - [`Algorithm::Lloyd`] (the default): exact Lloyd iterations, FAISS's `niter`; 10 by
//!   default, which from k-means++ seeds lands within about 1 % of FAISS's 20 from random
//!   seeds (BENCHMARKS.md, "Training on defaults"). From 96 dimensions up, iterations after the
//!   first keep bounds that skip the centroids which cannot be nearer ([`bounded`]): the same
//!   assignments for a fraction of the distances.
//! - [`Algorithm::MiniBatch`]: a few passes of mini-batch k-means ([`minibatch`]), then one
//!   exact Lloyd iteration over the whole sample, which replaces each centroid by the mean of
//!   the points it now owns and measures the inertia exactly.
//!
//! Determinism: every per-point result is computed independently and every reduction runs in a
//! fixed order, so the output depends only on the inputs and seed, not on the thread count.

use crate::vector::kernels::{self, CentroidPanels};
use rayon::prelude::*;
use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

mod bounded;
mod minibatch;
#[cfg(test)]
mod tests;

/// Which k-means [`train`] runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Algorithm {
    /// Mini-batch passes over the sample, then one exact Lloyd iteration.
    MiniBatch,
    /// Exact Lloyd iterations until `max_iters` or `tolerance`.
    #[default]
    Lloyd,
}

impl Algorithm {
    /// `max_iters` by default: Lloyd iterations, or mini-batch passes over the sample.
    pub(crate) fn default_max_iters(self) -> usize {
        match self {
            Algorithm::MiniBatch => DEFAULT_PASSES,
            Algorithm::Lloyd => DEFAULT_MAX_ITERS,
        }
    }
}

/// Lloyd iteration cap by default. Each iteration costs one assignment of the whole sample;
/// past 10 the inertia improves by under 1 % (measured in BENCHMARKS.md).
pub(crate) const DEFAULT_MAX_ITERS: usize = 10;
/// Mini-batch passes over the training sample by default (measured in BENCHMARKS.md).
pub(crate) const DEFAULT_PASSES: usize = 4;
/// Exact Lloyd iterations after the mini-batch passes.
const FINISHING_LLOYD: usize = 1;
/// Relative inertia change below which training stops, by default.
pub(crate) const DEFAULT_TOLERANCE: f64 = 1e-6;
/// Points per mini-batch step (Lloyd: per assignment block) by default.
pub(crate) const DEFAULT_BATCH_SIZE: usize = 2048;
/// Training points per centroid: k-means runs on a random sample of at most this many points
/// per list (FAISS's `max_points_per_centroid`).
pub(crate) const POINTS_PER_CENTROID: usize = 256;
/// Seed for sampling and initialisation by default.
pub(crate) const DEFAULT_SEED: u64 = 0x5eed;

/// Polled between blocks of work; `true` stops the run with [`KMeansError::Aborted`].
pub(crate) type Stop<'a> = &'a (dyn Fn() -> bool + Sync);

#[derive(Clone, Debug)]
pub(crate) struct KMeansParams {
    pub(crate) n_lists: usize,
    pub(crate) algorithm: Algorithm,
    /// Lloyd iterations, or mini-batch passes over the sample (the finishing Lloyd iteration
    /// of mini-batch training comes on top).
    pub(crate) max_iters: usize,
    /// Stop when |prev_inertia - inertia| / prev_inertia < tolerance (0 = fixed iteration count).
    pub(crate) tolerance: f64,
    /// Mini-batch: points per step. Lloyd: points per assignment block (the unit of parallel
    /// work and of cancel polling).
    pub(crate) batch_size: usize,
    /// Training sample = min(n, n_lists * cap) random points, like FAISS (0 = no cap).
    pub(crate) max_points_per_centroid: usize,
    /// 0 = no limit; otherwise the training sample shrinks to keep working memory under it.
    pub(crate) max_memory_bytes: usize,
    pub(crate) seed: u64,
}

impl KMeansParams {
    /// The defaults, with `n_lists` centroids.
    pub(crate) fn new(n_lists: usize) -> Self {
        Self::with(n_lists, Algorithm::default())
    }

    /// The defaults of `algorithm`, with `n_lists` centroids.
    pub(crate) fn with(n_lists: usize, algorithm: Algorithm) -> Self {
        Self {
            n_lists,
            algorithm,
            max_iters: algorithm.default_max_iters(),
            tolerance: DEFAULT_TOLERANCE,
            batch_size: DEFAULT_BATCH_SIZE,
            max_points_per_centroid: POINTS_PER_CENTROID,
            max_memory_bytes: 0,
            seed: DEFAULT_SEED,
        }
    }
}

/// Progress of a training run, reported once per Lloyd iteration or mini-batch pass.
#[derive(Clone, Debug)]
pub struct Progress {
    /// 1-based number of completed iterations (mini-batch passes, then the finishing Lloyd
    /// iteration).
    pub iteration: usize,
    /// The most iterations this run can report: `max_iters` (+ 1 for the finishing Lloyd
    /// iteration of mini-batch training).
    pub max_iters: usize,
    /// Sum of squared distances of the training sample to the centroids it was assigned to
    /// (in a mini-batch pass: each point's distance when its batch was assigned).
    pub inertia: f64,
}

#[derive(Clone, Debug)]
pub(crate) struct KMeansResult {
    /// n_lists * dim, row-major.
    pub centroids: Vec<f32>,
    pub iterations: usize,
    /// Sum of squared distances of the training sample to the centroids it was assigned to in
    /// the last iteration (FAISS's `obj`); the returned centroids are one update past that.
    pub inertia: f64,
    /// Training sample size.
    pub trained_on: usize,
    /// Points assigned against all centroids during training, seeding aside.
    pub assigned: usize,
    /// Point–centroid distances computed to make those assignments (the work done: Lloyd's
    /// bounds skip most of `assigned × k`).
    pub distances: u64,
    /// Each row's nearest of the returned centroids, when training used every row given and
    /// kept bounds: one more bounded assignment after the last update, a fraction of a full
    /// one, so the caller need not assign those rows again. Not counted in `assigned` or
    /// `distances` (the caller's assignment never was). `None` otherwise.
    pub assignment: Option<Vec<u32>>,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum KMeansError {
    Aborted,
    InsufficientPoints { needed: usize, have: usize },
    InvalidArgument(String),
}

impl fmt::Display for KMeansError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Aborted => write!(f, "k-means training aborted"),
            Self::InsufficientPoints { needed, have } => {
                write!(f, "k-means needs at least {needed} points, got {have}")
            }
            Self::InvalidArgument(m) => write!(f, "invalid k-means argument: {m}"),
        }
    }
}

impl std::error::Error for KMeansError {}

/// Points per centroid in the k-means++ seeding subsample: enough to place seeds well while
/// keeping the sequential O(subsample * k * dim) seeding a small share of training time.
/// Each of the k steps streams the whole subsample, which from 96 dimensions up no longer
/// fits in cache (25 MB at 384-d and 1024 lists), so there it is halved: on a 384-d set that
/// took 10–16 % off `train()` with the inertia within ±0.04 %; on glove50 (50-d), where
/// seeding is cheap, 8 points cost +0.03–0.07 % of inertia and no time (BENCHMARKS.md,
/// "AVX-512 kernels").
fn seed_points_per_centroid(dim: usize) -> usize {
    if dim >= 96 {
        8
    } else {
        16
    }
}
/// Multiply-adds per cancel poll inside an assignment block (about a millisecond of one core).
const POLL_FLOPS: usize = 1 << 25;

/// data: n*dim row-major f32. `cancel` is polled in every assignment block (and sub-block for
/// large dim * k) and every seeding step. `on_progress` runs once per iteration.
pub(crate) fn train(
    data: &[f32],
    dim: usize,
    params: &KMeansParams,
    cancel: Stop,
    on_progress: &(dyn Fn(&Progress) + Sync),
) -> Result<KMeansResult, KMeansError> {
    validate(data, dim, params)?;
    let k = params.n_lists;
    let n = data.len() / dim;
    if n < 2 * k {
        return Err(KMeansError::InsufficientPoints { needed: 2 * k, have: n });
    }
    let m = sample_size(n, dim, params)?;
    let mut rng = SplitMix64(params.seed);
    let sample: Cow<[f32]> =
        if m == n { Cow::Borrowed(data) } else { Cow::Owned(gather(data, dim, &pick_distinct(n, m, &mut rng))) };
    let x = &*sample;

    let mut centroids = seed_kmeanspp(x, dim, k, &mut rng, cancel)?;
    let (iterations, inertia, assigned, distances, assignment) = match params.algorithm {
        Algorithm::Lloyd => {
            let run = lloyd(x, dim, &mut centroids, params, params.max_iters, 0, m == n, cancel, on_progress)?;
            (run.iterations, run.inertia, run.iterations * m, run.distances, run.assignment)
        }
        Algorithm::MiniBatch => {
            let total = params.max_iters + FINISHING_LLOYD;
            let p =
                minibatch::run(x, dim, &mut centroids, params, params.max_iters, total, &mut rng, cancel, on_progress)?;
            let finish = KMeansParams { max_iters: total, tolerance: 0.0, ..params.clone() };
            let run = lloyd(x, dim, &mut centroids, &finish, FINISHING_LLOYD, p.passes, false, cancel, on_progress)?;
            let distances = (p.assigned * k) as u64 + run.distances;
            (p.passes + run.iterations, run.inertia, p.assigned + run.iterations * m, distances, None)
        }
    };
    Ok(KMeansResult { centroids, iterations, inertia, trained_on: m, assigned, distances, assignment })
}

/// What [`lloyd`] did.
struct LloydRun {
    iterations: usize,
    /// Of the last iteration's assignment.
    inertia: f64,
    /// Point–centroid distances computed by the iterations.
    distances: u64,
    /// Each point's nearest of the final centroids, if asked for and the iterations kept
    /// bounds (see [`KMeansResult::assignment`]).
    assignment: Option<Vec<u32>>,
}

/// Up to `iters` exact Lloyd iterations on `x`, numbered after `done` in the progress reports
/// (whose cap is `params.max_iters`). With [`bounds_pay`] the iterations keep bounds; one
/// iteration (mini-batch's finish) or few dimensions run plain. `final_assignment`: also
/// assign every point to the final centroids if the bounds make that cheap.
#[allow(clippy::too_many_arguments)]
fn lloyd(
    x: &[f32],
    dim: usize,
    centroids: &mut [f32],
    params: &KMeansParams,
    iters: usize,
    done: usize,
    final_assignment: bool,
    cancel: Stop,
    on_progress: &(dyn Fn(&Progress) + Sync),
) -> Result<LloydRun, KMeansError> {
    let m = x.len() / dim;
    let mut assignment = if bounds_pay(dim, iters) {
        Assignment::Bounded(bounded::Assigner::new(m, centroids, dim, iters))
    } else {
        Assignment::Plain { ids: vec![0; m], dists: vec![0.0; m] }
    };
    let (mut inertia, mut iterations, mut measured) = (f64::INFINITY, 0, 0u64);
    for it in 0..iters {
        let prev = inertia;
        measured += assignment.assign(x, dim, centroids, params.batch_size, cancel)?;
        let (ids, dists) = assignment.assigned();
        inertia = dists.iter().map(|&d| d as f64).sum();
        iterations = it + 1;
        on_progress(&Progress { iteration: done + iterations, max_iters: params.max_iters, inertia });
        let mut counts = update_centroids(x, dim, ids, centroids);
        split_empty_clusters(centroids, dim, &mut counts);
        if prev == 0.0 || (prev - inertia).abs() < params.tolerance * prev {
            break;
        }
    }
    let assignment = match assignment {
        Assignment::Bounded(mut assigner) if final_assignment => {
            assigner.assign(x, centroids, params.batch_size, cancel)?;
            Some(assigner.ids)
        }
        _ => None,
    };
    Ok(LloydRun { iterations, inertia, distances: measured, assignment })
}

/// How Lloyd's iterations find each point's nearest centroid: every centroid measured, or
/// bounds that skip most of them (the same assignment).
enum Assignment {
    Plain { ids: Vec<u32>, dists: Vec<f32> },
    Bounded(bounded::Assigner),
}

impl Assignment {
    /// Assigns every point of `x` to its nearest of `centroids`; returns the distances computed.
    fn assign(
        &mut self,
        x: &[f32],
        dim: usize,
        centroids: &[f32],
        block: usize,
        cancel: Stop,
    ) -> Result<u64, KMeansError> {
        match self {
            Assignment::Plain { ids, dists } => {
                let panels = CentroidPanels::new(centroids, dim);
                assign_into(x, &panels, centroids, block, Some(cancel), ids, dists)?;
                Ok((ids.len() * (centroids.len() / dim)) as u64)
            }
            Assignment::Bounded(assigner) => assigner.assign(x, centroids, block, cancel),
        }
    }

    /// Each point's centroid and squared distance to it, from the last [`Assignment::assign`].
    fn assigned(&self) -> (&[u32], &[f32]) {
        match self {
            Assignment::Plain { ids, dists } => (ids, dists),
            Assignment::Bounded(assigner) => (&assigner.ids, &assigner.dists),
        }
    }
}

/// Whether `iters` Lloyd iterations at `dim` dimensions keep bounds ([`bounded`]): from the
/// second iteration on, and where a distance costs more than its bookkeeping.
fn bounds_pay(dim: usize, iters: usize) -> bool {
    // Bounds carry the iteration they were set in as a u16.
    iters > 1 && iters < u16::MAX as usize && dim >= bounded::MIN_DIM
}

/// Nearest centroid (squared L2) for every row of data, parallel; returns (list id, squared distance) per row.
pub(crate) fn assign(data: &[f32], dim: usize, centroids: &[f32]) -> Vec<(u32, f32)> {
    assert!(dim > 0 && data.len().is_multiple_of(dim), "data length must be a multiple of dim");
    assert!(!centroids.is_empty() && centroids.len().is_multiple_of(dim), "centroids must be k*dim, k >= 1");
    let n = data.len() / dim;
    let panels = CentroidPanels::new(centroids, dim);
    let (mut ids, mut dists) = (vec![0u32; n], vec![0f32; n]);
    let block = KMeansParams::new(1).batch_size;
    assign_into(data, &panels, centroids, block, None, &mut ids, &mut dists)
        .expect("assignment without a cancel flag cannot abort");
    ids.into_iter().zip(dists).collect()
}

fn validate(data: &[f32], dim: usize, p: &KMeansParams) -> Result<(), KMeansError> {
    let bad = |m: &str| Err(KMeansError::InvalidArgument(m.to_string()));
    if dim == 0 {
        return bad("dim must be >= 1");
    }
    if !data.len().is_multiple_of(dim) {
        return bad("data length must be a multiple of dim");
    }
    if p.n_lists == 0 || p.n_lists > u32::MAX as usize {
        return bad("n_lists must be in 1..=u32::MAX");
    }
    if p.max_iters == 0 {
        return bad("max_iters must be >= 1");
    }
    if p.batch_size == 0 {
        return bad("batch_size must be >= 1");
    }
    if !(p.tolerance >= 0.0 && p.tolerance.is_finite()) {
        return bad("tolerance must be finite and >= 0");
    }
    Ok(())
}

/// Training sample size: FAISS's cap, then shrunk to fit `max_memory_bytes`.
pub(crate) fn sample_size(n: usize, dim: usize, p: &KMeansParams) -> Result<usize, KMeansError> {
    let k = p.n_lists;
    let capped = match p.max_points_per_centroid {
        0 => n,
        cap => k.saturating_mul(cap).min(n),
    };
    if p.max_memory_bytes == 0 {
        return Ok(capped);
    }
    let f = 4; // bytes per f32 / u32
    let minibatch = p.algorithm == Algorithm::MiniBatch;
    // Per sample point: id, distance, bucket order (Lloyd), pass order (mini-batch), Lloyd's
    // bounds (an f32 and a u16 stamp per centroid group), plus its copied row when sampling.
    let bounds = !minibatch && bounds_pay(dim, p.max_iters);
    let groups = if bounds { bounded::group_count(k) } else { 0 };
    let per_point = if minibatch { 4 * f } else { 3 * f + groups * (f + 2) };
    let row = dim * f;
    // Centroids, panels and per-centroid sums; seeding subsample with its distances; block
    // buffers; mini-batch: the batch, its ids and distances, f64 sums and counts per centroid.
    let panels_len = k.div_ceil(16) * 16 * (dim + 1);
    let seed_pts = (seed_points_per_centroid(dim) * k).min(capped);
    let batch = if minibatch { p.batch_size.min(capped) * (row + 2 * f) + k * (2 * dim + 3) * f } else { 0 };
    // Bounded Lloyd keeps past centroids and each group's panels besides, and per iteration
    // and group how far the group moved.
    let kept = if bounds { 3 + bounded::shift_window(p.max_iters) } else { 2 };
    let fixed = (kept * k * dim + panels_len + 2 * k) * f
        + 2 * p.max_iters * groups * f
        + rayon::current_num_threads()
            * if bounds { bounded::scratch_bytes(k, dim, p.batch_size) } else { dim * 8 + p.batch_size * f }
        + seed_pts * (row + 2 * f)
        + batch;
    let bytes = |m: usize| fixed + m * (per_point + if m < n { row } else { 0 });
    if bytes(capped) <= p.max_memory_bytes {
        return Ok(capped);
    }
    let fit = p.max_memory_bytes.saturating_sub(fixed) / (per_point + row);
    if fit < 2 * k {
        return Err(KMeansError::InvalidArgument(format!(
            "max_memory_bytes = {} cannot hold the minimum training sample of {} points \
             (needs about {} bytes for dim {dim}, {k} lists)",
            p.max_memory_bytes,
            2 * k,
            fixed + 2 * k * (per_point + row),
        )));
    }
    Ok(fit.min(capped))
}

/// splitmix64: tiny and seedable; sampling needs no more (and avoids a dependency).
pub(crate) struct SplitMix64(pub(crate) u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in 0..n (multiply-shift; bias is negligible for n << 2^64).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    fn unit_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// m distinct indices of 0..n in ascending order (Floyd's algorithm: O(m) memory even for huge n).
pub(crate) fn pick_distinct(n: usize, m: usize, rng: &mut SplitMix64) -> Vec<usize> {
    let mut set = HashSet::with_capacity(m);
    for j in n - m..n {
        let t = rng.below(j + 1);
        if !set.insert(t) {
            set.insert(j);
        }
    }
    let mut v: Vec<usize> = set.into_iter().collect();
    v.sort_unstable();
    v
}

fn gather(data: &[f32], dim: usize, idx: &[usize]) -> Vec<f32> {
    let mut out = vec![0f32; idx.len() * dim];
    out.par_chunks_mut(dim).zip(idx).for_each(|(o, &i)| o.copy_from_slice(&data[i * dim..(i + 1) * dim]));
    out
}

fn check(cancel: Stop) -> Result<(), KMeansError> {
    if cancel() {
        Err(KMeansError::Aborted)
    } else {
        Ok(())
    }
}

/// k-means++ on a random subsample: nearly the seeding quality of full k-means++ at a small
/// fraction of its sequential cost.
fn seed_kmeanspp(x: &[f32], dim: usize, k: usize, rng: &mut SplitMix64, cancel: Stop) -> Result<Vec<f32>, KMeansError> {
    let m = x.len() / dim;
    let s = m.min(seed_points_per_centroid(dim) * k);
    let sub = gather(x, dim, &pick_distinct(m, s, rng));
    let row = |i: usize| &sub[i * dim..(i + 1) * dim];
    let mut centroids = Vec::with_capacity(k * dim);
    centroids.extend_from_slice(row(rng.below(s)));
    let mut mind = vec![0f32; s];
    let mut seeding = Seeding::new(&sub, dim);
    seeding.distances(&centroids, &mut mind);
    for _ in 1..k {
        check(cancel)?;
        let total: f64 = mind.iter().map(|&d| d as f64).sum();
        let mut pick = rng.below(s);
        if total > 0.0 {
            let mut r = rng.unit_f64() * total;
            for (i, &d) in mind.iter().enumerate() {
                r -= d as f64;
                if r < 0.0 && d > 0.0 {
                    pick = i;
                    break;
                }
            }
        }
        let c = row(pick);
        centroids.extend_from_slice(c);
        seeding.lower(c, &mut mind);
    }
    Ok(centroids)
}

/// A seeding step's distance update: every subsample point's distance to the newest seed.
/// One step is small (16 points per centroid: ~0.8 M multiply-adds at 50 dimensions) and
/// 1,024 seeds take 1,024 sequential steps, so below [`Seeding::PARALLEL_FLOPS`] a step runs on
/// the calling thread: handing it to the pool cost a wake-up of its threads per step, which
/// made seeding most of the first iteration's time (BENCHMARKS.md, "AVX-512 kernels"). Either
/// way a point's distance is the same (the batch kernel does not depend on a row's position).
struct Seeding<'a> {
    sub: &'a [f32],
    dim: usize,
    parallel: bool,
    /// The sequential path's distances to the newest seed.
    scratch: Vec<f32>,
}

impl<'a> Seeding<'a> {
    /// Multiply-adds per step from which the pool shares it.
    const PARALLEL_FLOPS: usize = 1 << 22;
    /// Points per parallel piece.
    const ROWS: usize = 4096;

    fn new(sub: &'a [f32], dim: usize) -> Self {
        let parallel = sub.len() >= Self::PARALLEL_FLOPS;
        let scratch = if parallel { Vec::new() } else { vec![0f32; sub.len() / dim] };
        Seeding { sub, dim, parallel, scratch }
    }

    /// `out[i]` = the distance of point i to `c`.
    fn distances(&mut self, c: &[f32], out: &mut [f32]) {
        let dim = self.dim;
        if self.parallel {
            self.sub
                .par_chunks(Self::ROWS * dim)
                .zip(out.par_chunks_mut(Self::ROWS))
                .for_each(|(xs, ds)| kernels::l2_sqr_batch(c, xs, dim, ds));
        } else {
            kernels::l2_sqr_batch(c, self.sub, dim, out);
        }
    }

    /// `mind[i]` = the lower of itself and point i's distance to `c`.
    fn lower(&mut self, c: &[f32], mind: &mut [f32]) {
        let dim = self.dim;
        if self.parallel {
            self.sub.par_chunks(Self::ROWS * dim).zip(mind.par_chunks_mut(Self::ROWS)).for_each_init(
                || vec![0f32; Self::ROWS],
                |tmp, (xs, ds)| {
                    let tmp = &mut tmp[..ds.len()];
                    kernels::l2_sqr_batch(c, xs, dim, tmp);
                    for (d, &t) in ds.iter_mut().zip(tmp.iter()) {
                        *d = d.min(t);
                    }
                },
            );
        } else {
            kernels::l2_sqr_batch(c, self.sub, dim, &mut self.scratch);
            for (d, &t) in mind.iter_mut().zip(&self.scratch) {
                *d = d.min(t);
            }
        }
    }
}

/// Nearest centroid and exact squared distance for every row of `x`, in parallel blocks.
fn assign_into(
    x: &[f32],
    panels: &CentroidPanels,
    centroids: &[f32],
    block: usize,
    cancel: Option<Stop>,
    ids: &mut [u32],
    dists: &mut [f32],
) -> Result<(), KMeansError> {
    let dim = panels.dim();
    // At least 8 rows per kernel call, unless the block itself is smaller (batchSize 1..8).
    let poll_rows = (POLL_FLOPS / (panels.len() * dim)).clamp(block.min(8), block);
    x.par_chunks(block * dim).zip(ids.par_chunks_mut(block)).zip(dists.par_chunks_mut(block)).try_for_each(
        |((xb, ib), db)| {
            for ((xs, is), ds) in xb.chunks(poll_rows * dim).zip(ib.chunks_mut(poll_rows)).zip(db.chunks_mut(poll_rows))
            {
                if let Some(c) = cancel {
                    check(c)?;
                }
                kernels::nearest_centroids(xs, panels, is);
                for ((row, &i), d) in xs.chunks_exact(dim).zip(is.iter()).zip(ds.iter_mut()) {
                    *d = kernels::l2_sqr(row, &centroids[i as usize * dim..][..dim]);
                }
            }
            Ok(())
        },
    )
}

/// Recompute each non-empty centroid as the mean of its points; returns cluster sizes.
/// Points are bucketed by cluster (stable) and each centroid sums its own bucket in f64, so
/// the result is independent of how rayon splits the work.
fn update_centroids(x: &[f32], dim: usize, ids: &[u32], centroids: &mut [f32]) -> Vec<usize> {
    let k = centroids.len() / dim;
    let mut start = vec![0usize; k + 1];
    for &i in ids {
        start[i as usize + 1] += 1;
    }
    for c in 0..k {
        start[c + 1] += start[c];
    }
    let mut fill = start.clone();
    let mut order = vec![0u32; ids.len()];
    for (p, &i) in ids.iter().enumerate() {
        order[fill[i as usize]] = p as u32;
        fill[i as usize] += 1;
    }
    centroids.par_chunks_mut(dim).enumerate().for_each_init(
        || vec![0f64; dim],
        |sum, (c, out)| {
            let members = &order[start[c]..start[c + 1]];
            if members.is_empty() {
                return;
            }
            sum.fill(0.0);
            for &p in members {
                for (s, &v) in sum.iter_mut().zip(&x[p as usize * dim..][..dim]) {
                    *s += v as f64;
                }
            }
            let inv = 1.0 / members.len() as f64;
            for (o, &s) in out.iter_mut().zip(sum.iter()) {
                *o = (s * inv) as f32;
            }
        },
    );
    (0..k).map(|c| start[c + 1] - start[c]).collect()
}

/// FAISS's empty-cluster fix: copy the largest cluster's centroid and nudge the pair apart by a
/// symmetric relative epsilon, so the next assignment splits that cluster's points between them.
fn split_empty_clusters(centroids: &mut [f32], dim: usize, counts: &mut [usize]) {
    const EPS: f32 = 1.0 / 1024.0;
    for empty in 0..counts.len() {
        if counts[empty] > 0 {
            continue;
        }
        let big = (0..counts.len()).rev().max_by_key(|&c| counts[c]).expect("k >= 1");
        centroids.copy_within(big * dim..(big + 1) * dim, empty * dim);
        for j in 0..dim {
            let s = if j % 2 == 0 { EPS } else { -EPS };
            centroids[empty * dim + j] *= 1.0 + s;
            centroids[big * dim + j] *= 1.0 - s;
        }
        counts[empty] = counts[big] / 2;
        counts[big] -= counts[empty];
    }
}
