//! Mini-batch k-means (Sculley 2010, "Web-scale k-means clustering"): each step assigns
//! `batch_size` training points to the current centroids and moves every centroid that got
//! points towards their mean, with a per-centroid learning rate 1 / (points it has seen).
//! A pass (epoch) walks the whole sample once in a fresh random order, so a pass costs as many
//! distance evaluations as one Lloyd iteration but moves the centroids ⌈m / batch_size⌉ times.
//! Counts decay between passes ([`PASS_DECAY`]).
//!
//! Determinism: the batch order comes from the seeded generator, every point of a batch is
//! assigned independently, and the update runs sequentially in batch order (it is a tiny
//! share of a step: batch_size * dim additions against batch_size * k * dim for the
//! assignment), so the centroids do not depend on the thread count.

use super::{assign_into, check, KMeansError, KMeansParams, Progress, SplitMix64, Stop};
use crate::vector::kernels::CentroidPanels;

/// Each pass after the first starts with every centroid's count scaled by this: the pass then
/// mostly averages the points assigned during it (so assignments made against early, poor
/// centroids stop weighing on the result, which plain Sculley counts never forget), while the
/// kept 5 % acts as a prior that stops a pass's first batch from throwing a centroid onto its
/// one or two points. Measured on glove50 against 1.0 (Sculley), 0.5, 0.25, 0.1 and 0 (reset):
/// BENCHMARKS.md.
const PASS_DECAY: f64 = 0.05;

/// Rows per parallel assignment block inside one mini-batch: small enough that a 2048-point
/// batch spreads over the pool, large enough to amortise the centroid panels.
const STEP_BLOCK: usize = 128;

/// What the passes did.
pub(super) struct Passes {
    pub(super) passes: usize,
    /// Points assigned against all k centroids.
    pub(super) assigned: usize,
}

/// Runs up to `passes` mini-batch passes over `x`, moving `centroids` in place. Stops early
/// when a pass's inertia changes by less than `params.tolerance` (relative) from the previous
/// pass. `on_progress` runs after each pass; `cancel` is polled before every step and inside
/// the assignment.
#[allow(clippy::too_many_arguments)]
pub(super) fn run(
    x: &[f32],
    dim: usize,
    centroids: &mut [f32],
    params: &KMeansParams,
    passes: usize,
    total_iters: usize,
    rng: &mut SplitMix64,
    cancel: Stop,
    on_progress: &(dyn Fn(&Progress) + Sync),
) -> Result<Passes, KMeansError> {
    let k = centroids.len() / dim;
    let m = x.len() / dim;
    let b = params.batch_size.min(m);
    let mut order: Vec<u32> = (0..m as u32).collect();
    let mut batch = vec![0f32; b * dim];
    let (mut ids, mut dists) = (vec![0u32; b], vec![0f32; b]);
    // Points each centroid has absorbed so far (its learning rate is 1 / seen).
    let mut seen = vec![0u64; k];
    // Per-step accumulators, cleared for the centroids a step touched.
    let mut sums = vec![0f64; k * dim];
    let mut members = vec![0u32; k];
    let mut touched: Vec<usize> = Vec::with_capacity(b.min(k));
    let (mut prev, mut done, mut assigned) = (f64::INFINITY, 0, 0);
    for pass in 0..passes {
        if pass > 0 {
            for s in seen.iter_mut() {
                *s = (*s as f64 * PASS_DECAY).ceil() as u64;
            }
        }
        shuffle(&mut order, rng);
        let mut inertia = 0.0;
        for step in order.chunks(b) {
            check(cancel)?;
            let rows = step.len();
            for (out, &p) in batch.chunks_exact_mut(dim).zip(step) {
                out.copy_from_slice(&x[p as usize * dim..][..dim]);
            }
            let xb = &batch[..rows * dim];
            let panels = CentroidPanels::new(centroids, dim);
            assign_into(xb, &panels, centroids, STEP_BLOCK, Some(cancel), &mut ids[..rows], &mut dists[..rows])?;
            assigned += rows;
            inertia += dists[..rows].iter().map(|&d| d as f64).sum::<f64>();
            for (row, &c) in xb.chunks_exact(dim).zip(&ids[..rows]) {
                let c = c as usize;
                if members[c] == 0 {
                    touched.push(c);
                }
                members[c] += 1;
                for (s, &v) in sums[c * dim..][..dim].iter_mut().zip(row) {
                    *s += v as f64;
                }
            }
            // Sculley's per-point update c += (x - c) / seen, applied for a whole batch at once:
            // c' = (seen * c + Σx) / (seen + members).
            for &c in &touched {
                let (old, new) = (seen[c] as f64, (seen[c] + members[c] as u64) as f64);
                let sum = &mut sums[c * dim..][..dim];
                for (v, s) in centroids[c * dim..][..dim].iter_mut().zip(sum.iter_mut()) {
                    *v = ((*v as f64 * old + *s) / new) as f32;
                    *s = 0.0;
                }
                seen[c] += members[c] as u64;
                members[c] = 0;
            }
            touched.clear();
        }
        done = pass + 1;
        on_progress(&Progress { iteration: done, max_iters: total_iters, inertia });
        if prev == 0.0 || (prev - inertia).abs() < params.tolerance * prev {
            break;
        }
        prev = inertia;
    }
    Ok(Passes { passes: done, assigned })
}

/// Fisher–Yates with the seeded generator.
fn shuffle(v: &mut [u32], rng: &mut SplitMix64) {
    for i in (1..v.len()).rev() {
        v.swap(i, rng.below(i + 1));
    }
}
