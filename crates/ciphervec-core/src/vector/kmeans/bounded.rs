//! Lloyd iterations that skip the distances which cannot change a point's assignment
//! (Yinyang k-means: Ding et al., "Yinyang K-Means: A Drop-In Replacement of the Classic
//! K-Means with Consistent Speedup", ICML 2015). The result is Lloyd's: every point still goes
//! to its nearest centroid in every iteration; only the proof that most centroids are farther
//! is cheaper than measuring them.
//!
//! The centroids are split once into groups of nearby ones. Each point keeps the exact distance
//! to its centroid and, per group, a lower bound on its distance to every other centroid of the
//! group, stamped with the iteration that set it. A group's bound drops by the farthest any of
//! its centroids moved since then (Newling and Fleuret's "net shift", "Fast k-means with
//! accurate bounds", ICML 2016, rather than Yinyang's sum of every iteration's move); a group
//! whose bound is still above the point's distance cannot hold a nearer centroid and is
//! skipped. Late iterations move centroids little, so on glove50 and the 384-d
//! set a point measures one group or two instead of all k (BENCHMARKS.md, "Bounded Lloyd").
//!
//! The first iteration measures everything (the GEMM-style scores the plain assignment uses)
//! and derives the bounds from them, less the rounding those scores can carry. Later
//! distances are exact squared L2 of a point and a centroid, so a skipped group can hide at
//! most a float-rounding tie.

use super::{check, KMeansError, Stop};
use crate::vector::kernels::{self, CentroidPanels};
use rayon::prelude::*;

/// Fewest dimensions at which Lloyd keeps bounds. A distance costs about `dim` multiply-adds in
/// the matrix product, the bounds a few operations per point and centroid whatever the
/// dimension, so at low dimension the bookkeeping costs more than the distances it saves:
/// k-means on glove50 (50-d) took 1.13× as long with bounds, on generated 96- to 384-d sets
/// 0.67× to 0.59× (medians of three; BENCHMARKS.md, "Bounded Lloyd").
pub(super) const MIN_DIM: usize = 96;
/// Most groups a point keeps bounds for. A bound is 6 bytes per training point and group (an
/// f32 and its u16 stamp), so 32 groups add 192 bytes a point (50 MB for FAISS's 256 points ×
/// 1024 lists). On glove50
/// and the 384-d set at 1024 lists, 32 groups left a point 3–10 % of the pairs to measure in
/// late iterations, 16 groups 6 % at 384-d (BENCHMARKS.md).
pub(super) const MAX_GROUPS: usize = 32;
/// Centroids per group at most [`MAX_GROUPS`]: fewer lists, fewer groups.
const CENTROIDS_PER_GROUP: usize = 32;
/// Iterations of the small k-means that groups the centroids.
const GROUPING_ITERS: usize = 5;
/// Rows scored against all centroids at once (the score matrix is rows × k floats).
const SCORE_ROWS: usize = 128;
/// Points reassigned together inside a block: enough to share each group's product among a
/// dozen points or so, few enough that the working memory stays in cache.
const PART_ROWS: usize = 256;
/// A point whose bounds leave more than a quarter of the groups to measure is scored against
/// all centroids in one product instead, group by group being the slower kernel per distance
/// (small products, the point copied once per group): on the 384-d set a quarter beat a half
/// and an eighth (BENCHMARKS.md, "Bounded Lloyd").
const FULL_SHARE: (usize, usize) = (1, 4);

/// Most past centroid sets an assigner keeps (each the size of the centroids: 1/256 of a full
/// FAISS-size sample). A bound drops by how far its group's centroids moved since it was set:
/// measured against the centroids of then while they are kept, beyond that by the sum of each
/// later iteration's farthest move (the triangle inequality either way). Summing every
/// iteration's farthest move from the start made the bounds set in iteration 2 expire together
/// in iterations 6–7 (a third of all pairs measured each); a replay of clustered384 measured
/// 2.5 full assignments over 10 iterations with net moves, 3.6 with sums. A window of 8 brought
/// that wave back at the 10th iteration, when iteration 2's centroids left it, so the window
/// covers a default run (10 iterations and the final assignment).
pub(super) const MAX_SHIFT_WINDOW: usize = 16;

/// Past centroid sets kept for `iters` iterations and the final assignment.
pub(super) fn shift_window(iters: usize) -> usize {
    (iters + 1).clamp(1, MAX_SHIFT_WINDOW)
}

/// Groups that `k` centroids are split into.
pub(super) fn group_count(k: usize) -> usize {
    (k / CENTROIDS_PER_GROUP).clamp(1, MAX_GROUPS)
}

/// Working memory of one worker's blocks of `block` points (for the memory cap): its points'
/// group flags and nearest per group, their gathered rows and scores, and a full score matrix.
pub(super) fn scratch_bytes(k: usize, dim: usize, block: usize) -> usize {
    let (g, block) = (group_count(k), block.min(PART_ROWS));
    // A group's score row is its size rounded up to panels; allow groups twice the mean size.
    let group_row = (2 * k).div_ceil(g).div_ceil(16) * 16;
    block * (2 * 4 + g * (1 + size_of::<Nearest>()) + dim * 4 + group_row * 4) + SCORE_ROWS * k.div_ceil(16) * 16 * 4
}

/// The centroids' partition into groups: `members[start[g]..start[g + 1]]` are group g's.
struct Groups {
    of: Vec<u32>,
    members: Vec<u32>,
    start: Vec<usize>,
}

impl Groups {
    fn len(&self) -> usize {
        self.start.len() - 1
    }

    /// A small k-means over the centroids themselves, from evenly spaced ones, as the paper
    /// does: nearby centroids share a group, so one far-moving centroid loosens only its own
    /// group's bounds.
    fn of_centroids(centroids: &[f32], dim: usize, g: usize) -> Groups {
        let k = centroids.len() / dim;
        let row = |c: usize| &centroids[c * dim..(c + 1) * dim];
        let mut centers: Vec<f32> = (0..g).flat_map(|i| row(i * k / g).iter().copied()).collect();
        let mut of = vec![0u32; k];
        for it in 0..GROUPING_ITERS {
            of.par_iter_mut().enumerate().for_each(|(c, o)| {
                let dist = |j: usize| kernels::l2_sqr(row(c), &centers[j * dim..(j + 1) * dim]);
                *o = (0..g).min_by(|&a, &b| dist(a).total_cmp(&dist(b))).expect("g >= 1") as u32;
            });
            if it + 1 == GROUPING_ITERS {
                break;
            }
            let mut sums = vec![0f64; g * dim];
            let mut counts = vec![0usize; g];
            for (c, &o) in of.iter().enumerate() {
                counts[o as usize] += 1;
                for (s, &v) in sums[o as usize * dim..][..dim].iter_mut().zip(row(c)) {
                    *s += v as f64;
                }
            }
            for j in (0..g).filter(|&j| counts[j] > 0) {
                for (c, &s) in centers[j * dim..][..dim].iter_mut().zip(&sums[j * dim..][..dim]) {
                    *c = (s / counts[j] as f64) as f32;
                }
            }
        }
        let mut start = vec![0usize; g + 1];
        for &o in &of {
            start[o as usize + 1] += 1;
        }
        for j in 0..g {
            start[j + 1] += start[j];
        }
        let mut fill = start.clone();
        let mut members = vec![0u32; k];
        for (c, &o) in of.iter().enumerate() {
            members[fill[o as usize]] = c as u32;
            fill[o as usize] += 1;
        }
        Groups { of, members, start }
    }
}

/// Each point's centroid, kept from one assignment to the next with the bounds that let the
/// next one skip most centroids.
pub(super) struct Assigner {
    dim: usize,
    groups: Groups,
    /// Per point: its centroid and the exact squared distance to it.
    pub(super) ids: Vec<u32>,
    pub(super) dists: Vec<f32>,
    /// Per point and group: a lower bound on the distance to the group's centroids other than
    /// the point's own, as of the assignment in `stamps`.
    bounds: Vec<f32>,
    stamps: Vec<u16>,
    /// The centroids at the last `window` assignments (assignment `a` at `a % window`).
    history: Vec<f32>,
    window: usize,
    /// Per finished step `a → a + 1` and group: the farthest any of its centroids moved.
    steps: Vec<f32>,
    /// Assignments made so far (the stamp of the next).
    calls: usize,
}

impl Assigner {
    /// For `m` points and `centroids` as they start (which fix the groups), for `iters`
    /// iterations (more work, but the same assignments, if more are run).
    pub(super) fn new(m: usize, centroids: &[f32], dim: usize, iters: usize) -> Self {
        let groups = Groups::of_centroids(centroids, dim, group_count(centroids.len() / dim));
        // No bounds yet: the first assignment measures every point against every centroid.
        let g = groups.len();
        Assigner {
            dim,
            groups,
            ids: vec![0; m],
            dists: vec![0.0; m],
            bounds: vec![f32::NEG_INFINITY; m * g],
            stamps: vec![0; m * g],
            history: Vec::with_capacity(shift_window(iters) * centroids.len()),
            window: shift_window(iters),
            steps: Vec::new(),
            calls: 0,
        }
    }

    /// Assigns every point of `x` to its nearest of `centroids` (the same number as at
    /// [`Assigner::new`], moved since the last call), `block` points per parallel task.
    /// Returns the point–centroid distances computed.
    pub(super) fn assign(
        &mut self,
        x: &[f32],
        centroids: &[f32],
        block: usize,
        cancel: Stop,
    ) -> Result<u64, KMeansError> {
        let now = u16::try_from(self.calls).expect("fewer assignments than u16::MAX (see bounds_pay)");
        let shift = self.shifts(centroids);
        let measured = Block::new(self.dim, centroids, &self.groups, &shift, now).reassign(
            block,
            cancel,
            Points {
                x,
                ids: &mut self.ids,
                dists: &mut self.dists,
                bounds: &mut self.bounds,
                stamps: &mut self.stamps,
            },
        )?;
        let k = centroids.len();
        let slot = self.calls % self.window;
        if self.history.len() < (slot + 1) * k {
            self.history.extend_from_slice(centroids);
        } else {
            self.history[slot * k..(slot + 1) * k].copy_from_slice(centroids);
        }
        self.calls += 1;
        Ok(measured)
    }

    /// Per earlier assignment `a` (row `a`, one value per group; the last row, this
    /// assignment's own, is 0): how far at most each group's centroids moved from then to
    /// `centroids`. Records the step from the last assignment on the way.
    fn shifts(&mut self, centroids: &[f32]) -> Vec<f32> {
        let (g, now, k) = (self.groups.len(), self.calls, centroids.len());
        let mut shift = vec![0f32; (now + 1) * g];
        let oldest = now.saturating_sub(self.window);
        for a in oldest..now {
            let then = &self.history[(a % self.window) * k..][..k];
            shift[a * g..(a + 1) * g].copy_from_slice(&group_drift(then, centroids, self.dim, &self.groups));
        }
        if now > 0 {
            self.steps.extend_from_slice(&shift[(now - 1) * g..now * g]);
        }
        for a in (0..oldest).rev() {
            for j in 0..g {
                shift[a * g + j] = shift[(a + 1) * g + j] + self.steps[a * g + j];
            }
        }
        shift
    }
}

/// Per group, the farthest any of its centroids moved from `before` to `after`.
fn group_drift(before: &[f32], after: &[f32], dim: usize, groups: &Groups) -> Vec<f32> {
    let moved: Vec<f32> =
        before.par_chunks(dim).zip(after.par_chunks(dim)).map(|(b, a)| kernels::l2_sqr(b, a).sqrt()).collect();
    let mut drift = vec![0f32; groups.len()];
    for (c, &d) in moved.iter().enumerate() {
        let g = &mut drift[groups.of[c] as usize];
        *g = g.max(d);
    }
    drift
}

/// What a bounded iteration reads: the centroids (by id, and each group's as
/// panels for the scoring kernel) and how far each group's centroids moved since each earlier
/// assignment (`shift`, see [`Assigner::shifts`]); `now` stamps the bounds it sets.
struct Block<'a> {
    dim: usize,
    centroids: &'a [f32],
    all: CentroidPanels,
    panels: Vec<CentroidPanels>,
    largest_norm: f32,
    rounding: f32,
    groups: &'a Groups,
    shift: &'a [f32],
    now: u16,
}

/// One group's scores for a point: its nearest centroid (id, score) and the second nearest's
/// score, a score being the squared distance less the point's squared norm.
#[derive(Clone, Copy)]
struct Nearest {
    id: u32,
    first: f32,
    second: f32,
}

/// A block's working memory, kept across blocks by each worker.
#[derive(Default)]
struct Scratch {
    norms: Vec<f32>,
    /// Per point and group: does the group need measuring?
    need: Vec<bool>,
    near: Vec<Nearest>,
    rows: Vec<u32>,
    /// Points scored against all centroids.
    full: Vec<u32>,
    gathered: Vec<f32>,
    scores: Vec<f32>,
}

/// Consecutive points (all of them, a block's or a part's) and what is kept for them: their
/// centroids, exact distances, and bounds with their stamps (a row of one per group each).
struct Points<'p> {
    x: &'p [f32],
    ids: &'p mut [u32],
    dists: &'p mut [f32],
    bounds: &'p mut [f32],
    stamps: &'p mut [u16],
}

impl Points<'_> {
    /// The same points, borrowed again.
    fn reborrow(&mut self) -> Points<'_> {
        Points { x: self.x, ids: self.ids, dists: self.dists, bounds: self.bounds, stamps: self.stamps }
    }
}

/// Scores of the points `rows` of `xb` against `panels` into `scores` (one row of
/// `panels.padded_len()` per point), the points gathered first into one matrix for the product.
fn score_rows(
    xb: &[f32],
    dim: usize,
    rows: &[u32],
    panels: &CentroidPanels,
    gathered: &mut Vec<f32>,
    scores: &mut Vec<f32>,
) {
    gathered.clear();
    gathered.extend(rows.iter().flat_map(|&r| xb[r as usize * dim..][..dim].iter().copied()));
    scores.resize(rows.len() * panels.padded_len(), 0.0);
    kernels::centroid_scores(gathered, panels, &mut scores[..rows.len() * panels.padded_len()]);
}

impl<'a> Block<'a> {
    fn new(dim: usize, centroids: &'a [f32], groups: &'a Groups, shift: &'a [f32], now: u16) -> Self {
        let panels = (0..groups.len())
            .map(|j| {
                let members = &groups.members[groups.start[j]..groups.start[j + 1]];
                // An empty group (the grouping k-means left it so) is never measured: its
                // bounds stay infinite.
                let rows = members.iter().map(|&c| &centroids[c as usize * dim..][..dim]);
                if members.is_empty() {
                    CentroidPanels::new(&centroids[..dim], dim)
                } else {
                    CentroidPanels::from_rows(rows, dim, false)
                }
            })
            .collect();
        let largest_norm = centroids.chunks_exact(dim).map(kernels::norm_sqr).fold(0f32, f32::max);
        // In group order, so a point's scores against a group are contiguous.
        let all = CentroidPanels::from_rows(
            groups.members.iter().map(|&c| &centroids[c as usize * dim..][..dim]),
            dim,
            false,
        );
        // A score `‖c‖² − 2·x·c` plus `‖x‖²` is the squared distance up to a rounding of at
        // most about (dim + 2)·ε·(‖x‖² + ‖c‖²) (the dot product's error bound); bounds made
        // from scores subtract that, so they stay below the true distances.
        let rounding = (dim + 2) as f32 * f32::EPSILON;
        Block { dim, centroids, all, panels, largest_norm, rounding, groups, shift, now }
    }

    /// An iteration after the first: each point's bounds drop by how far their groups moved
    /// since they were set, and only the groups whose bound falls below the point's distance
    /// are measured, all of a block's points that need a group at once. Returns the distances
    /// computed.
    fn reassign(&self, block: usize, cancel: Stop, p: Points) -> Result<u64, KMeansError> {
        let (dim, g) = (self.dim, self.groups.len());
        let Points { x, ids, dists, bounds, stamps } = p;
        x.par_chunks(block * dim)
            .zip(ids.par_chunks_mut(block))
            .zip(dists.par_chunks_mut(block))
            .zip(bounds.par_chunks_mut(block * g))
            .zip(stamps.par_chunks_mut(block * g))
            .map_init(Scratch::default, |scratch, ((((xb, ib), db), bb), sb)| {
                let mut measured = 0;
                for ((((xs, is), ds), bs), ss) in xb
                    .chunks(PART_ROWS * dim)
                    .zip(ib.chunks_mut(PART_ROWS))
                    .zip(db.chunks_mut(PART_ROWS))
                    .zip(bb.chunks_mut(PART_ROWS * g))
                    .zip(sb.chunks_mut(PART_ROWS * g))
                {
                    let part = Points { x: xs, ids: is, dists: ds, bounds: bs, stamps: ss };
                    measured += self.part(part, scratch, cancel)?;
                }
                Ok(measured)
            })
            .try_reduce(|| 0, |a, b| Ok(a + b))
    }

    /// A point's bound on group `j` now: as set (`bound`, at assignment `stamp`), less how far
    /// the group's centroids moved since.
    fn bound_now(&self, bound: f32, stamp: u16, j: usize) -> f32 {
        bound - self.shift[stamp as usize * self.groups.len() + j]
    }

    /// [`Block::reassign`] of up to [`PART_ROWS`] points.
    fn part(&self, mut p: Points, s: &mut Scratch, cancel: Stop) -> Result<u64, KMeansError> {
        let (now, xb) = (self.now, p.x);
        let (dim, g, n) = (self.dim, self.groups.len(), p.ids.len());
        let row = |r: usize| &xb[r * dim..(r + 1) * dim];
        let centroid = |c: usize| &self.centroids[c * dim..(c + 1) * dim];
        s.need.clear();
        s.need.resize(n * g, false);
        s.norms.clear();
        s.norms.resize(n, 0.0);
        s.full.clear();
        let mut measured = n as u64;
        // Each point's exact distance to its centroid, and the groups its bounds no longer rule out.
        for r in 0..n {
            p.dists[r] = kernels::l2_sqr(row(r), centroid(p.ids[r] as usize));
            let radius = p.dists[r].sqrt();
            let (lb, st) = (&p.bounds[r * g..(r + 1) * g], &p.stamps[r * g..(r + 1) * g]);
            let need = &mut s.need[r * g..(r + 1) * g];
            let mut count = 0;
            for (j, need) in need.iter_mut().enumerate() {
                *need = self.bound_now(lb[j], st[j], j) < radius;
                count += *need as usize;
            }
            if count > 0 {
                s.norms[r] = kernels::norm_sqr(row(r));
            }
            if count * FULL_SHARE.1 > g * FULL_SHARE.0 {
                need.fill(false);
                s.full.push(r as u32);
            }
        }
        measured += self.score_fully(p.reborrow(), s, cancel)?;
        let Points { ids, dists, bounds, stamps, .. } = p;
        // Each group against the points that need it, as one small matrix product.
        s.near.clear();
        s.near.resize(n * g, Nearest { id: u32::MAX, first: f32::INFINITY, second: f32::INFINITY });
        for j in 0..g {
            s.rows.clear();
            s.rows.extend((0..n as u32).filter(|&r| s.need[r as usize * g + j]));
            if s.rows.is_empty() {
                continue;
            }
            check(cancel)?;
            let panels = &self.panels[j];
            let members = &self.groups.members[self.groups.start[j]..self.groups.start[j + 1]];
            let stride = panels.padded_len();
            score_rows(xb, dim, &s.rows, panels, &mut s.gathered, &mut s.scores);
            measured += (s.rows.len() * members.len()) as u64;
            for (t, &r) in s.rows.iter().enumerate() {
                let near = &mut s.near[r as usize * g + j];
                for (&c, &score) in members.iter().zip(&s.scores[t * stride..]) {
                    if score < near.first {
                        *near = Nearest { id: c, first: score, second: near.first };
                    } else if score < near.second {
                        near.second = score;
                    }
                }
            }
        }
        // The nearest of the measured groups' nearest and the point's own; fresh bounds for
        // the measured groups.
        let rounding = self.rounding;
        for r in 0..n {
            let (need, near) = (&s.need[r * g..(r + 1) * g], &s.near[r * g..(r + 1) * g]);
            if !need.iter().any(|&x| x) {
                continue;
            }
            let (own, norm) = (ids[r] as usize, s.norms[r]);
            let mut best = (own, dists[r]);
            for (nr, _) in near.iter().zip(need).filter(|(_, &x)| x) {
                if nr.first + norm < best.1 {
                    best = (nr.id as usize, nr.first + norm);
                }
            }
            let radius = dists[r].sqrt();
            let (lb, st) = (&mut bounds[r * g..(r + 1) * g], &mut stamps[r * g..(r + 1) * g]);
            let slack = rounding * (norm + self.largest_norm);
            for (((l, t), nr), _) in lb.iter_mut().zip(st.iter_mut()).zip(near).zip(need).filter(|(_, &x)| x) {
                // Every centroid of a measured group except the point's new one.
                let score = if nr.id as usize == best.0 { nr.second } else { nr.first };
                *l = if score.is_finite() { (score + norm - slack).max(0.0).sqrt() } else { f32::INFINITY };
                *t = now;
            }
            if best.0 != own {
                let moved_from = self.groups.of[own] as usize;
                if !need[moved_from] {
                    // The old centroid joins the ones its group's bound must stay below.
                    lb[moved_from] = self.bound_now(lb[moved_from], st[moved_from], moved_from).min(radius);
                    st[moved_from] = now;
                }
                ids[r] = best.0 as u32;
                dists[r] = kernels::l2_sqr(row(r), centroid(best.0));
                measured += 1;
            }
        }
        Ok(measured)
    }

    /// The points in `s.full`, scored against every centroid: the nearest is taken and every
    /// bound set afresh. Returns the distances computed.
    fn score_fully(&self, p: Points, s: &mut Scratch, cancel: Stop) -> Result<u64, KMeansError> {
        let Points { x: xb, ids, dists, bounds, stamps } = p;
        let (dim, g) = (self.dim, self.groups.len());
        let (k, stride) = (self.all.len(), self.all.padded_len());
        let mut measured = 0u64;
        for rows in s.full.chunks(SCORE_ROWS) {
            check(cancel)?;
            score_rows(xb, dim, rows, &self.all, &mut s.gathered, &mut s.scores);
            let scores = &s.scores[..rows.len() * stride];
            measured += (rows.len() * k) as u64;
            for (t, &r) in rows.iter().enumerate() {
                let r = r as usize;
                // Scores are in group order (see `Block::new`): each group's are contiguous.
                let sc = &scores[t * stride..t * stride + k];
                stamps[r * g..(r + 1) * g].fill(self.now);
                let lb = &mut bounds[r * g..(r + 1) * g];
                for (j, l) in lb.iter_mut().enumerate() {
                    *l = min(&sc[self.groups.start[j]..self.groups.start[j + 1]]);
                }
                let group = (0..g).fold(0, |b, j| if lb[j] < lb[b] { j } else { b });
                let range = self.groups.start[group]..self.groups.start[group + 1];
                let at = range.start + sc[range.clone()].iter().position(|&v| v == lb[group]).unwrap_or(0);
                let best = self.groups.members[at] as usize;
                lb[group] = min(&sc[range.start..at]).min(min(&sc[at + 1..range.end]));
                let norm = s.norms[r];
                let slack = self.rounding * (norm + self.largest_norm);
                for l in lb.iter_mut().filter(|l| l.is_finite()) {
                    *l = (*l + norm - slack).max(0.0).sqrt();
                }
                if best != ids[r] as usize {
                    ids[r] = best as u32;
                    dists[r] = kernels::l2_sqr(&xb[r * dim..][..dim], &self.centroids[best * dim..][..dim]);
                    measured += 1;
                }
            }
        }
        Ok(measured)
    }
}

/// The smallest of `values` (+∞ if none), eight lanes at a time so it compiles to vector
/// minimums.
fn min(values: &[f32]) -> f32 {
    let mut lanes = [f32::INFINITY; 8];
    let mut chunks = values.chunks_exact(8);
    for chunk in &mut chunks {
        for (l, &v) in lanes.iter_mut().zip(chunk) {
            *l = if v < *l { v } else { *l };
        }
    }
    let tail = chunks.remainder().iter().fold(f32::INFINITY, |a, &v| if v < a { v } else { a });
    lanes.iter().fold(tail, |a, &v| if v < a { v } else { a })
}
