//! Distance kernels for IVF list scans and k-means assignment.
//!
//! The addon ships one binary for every x86-64 CPU, so the AVX2+FMA paths are chosen at
//! run time (detected once) instead of with `target-cpu=native`; `portable` is the fallback,
//! written so LLVM can auto-vectorise it for the baseline target.

#[cfg(target_arch = "x86_64")]
use std::sync::OnceLock;

/// Centroids per panel in [`CentroidPanels`]: two 8-lane registers wide.
const NR: usize = 16;
/// Rows per register tile in the assignment kernel (6 x 2 accumulators + 3 temporaries fit in 16 ymm).
const MR: usize = 6;
/// Largest dimension whose zero-padded 8-row tail block lives on the stack (8 KiB).
#[cfg(target_arch = "x86_64")]
const STACK_PAD_DIM: usize = 256;
/// Size of the centroid slice swept by all rows before moving on, so it stays cache-resident.
const CHUNK_BYTES: usize = 128 << 10;

#[cfg(target_arch = "x86_64")]
#[inline]
fn has_avx2_fma() -> bool {
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
}

/// Squared Euclidean distance.
pub fn l2_sqr(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "l2_sqr: length mismatch");
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU supports avx2 and fma; lengths checked above.
        return unsafe { avx2::pair::<true>(a, b) };
    }
    portable::pair::<true>(a, b)
}

/// Inner product.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "dot: length mismatch");
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: as in `l2_sqr`.
        return unsafe { avx2::pair::<false>(a, b) };
    }
    portable::pair::<false>(a, b)
}

/// Squared L2 norm.
pub fn norm_sqr(a: &[f32]) -> f32 {
    dot(a, a)
}

/// For a query q and `n = out.len()` vectors stored row-major in `rows` (len n*dim), write l2_sqr(q, row_i) into out[i].
pub fn l2_sqr_batch(q: &[f32], rows: &[f32], dim: usize, out: &mut [f32]) {
    check_batch(q, rows, dim, out);
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU supports avx2 and fma; shapes checked above.
        return unsafe { avx2::batch::<true>(q, rows, out) };
    }
    portable::batch::<true>(q, rows, out)
}

/// Same with inner products.
pub fn dot_batch(q: &[f32], rows: &[f32], dim: usize, out: &mut [f32]) {
    check_batch(q, rows, dim, out);
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: as in `l2_sqr_batch`.
        return unsafe { avx2::batch::<false>(q, rows, out) };
    }
    portable::batch::<false>(q, rows, out)
}

fn check_batch(q: &[f32], rows: &[f32], dim: usize, out: &[f32]) {
    assert!(dim > 0, "dim must be >= 1");
    assert_eq!(q.len(), dim, "query length != dim");
    assert_eq!(rows.len(), dim * out.len(), "rows length != dim * out.len()");
}

/// Centroids regrouped into panels of 16, dimension-major inside a panel, so the assignment
/// kernel streams each panel contiguously. Padding slots get an infinite norm and never win.
pub struct CentroidPanels {
    dim: usize,
    k: usize,
    data: Vec<f32>,
    norms: Vec<f32>,
}

impl CentroidPanels {
    /// `centroids`: k*dim row-major, k >= 1.
    pub fn new(centroids: &[f32], dim: usize) -> Self {
        assert!(dim > 0 && !centroids.is_empty() && centroids.len().is_multiple_of(dim));
        let k = centroids.len() / dim;
        let panels = k.div_ceil(NR);
        let mut data = vec![0.0; panels * dim * NR];
        let mut norms = vec![f32::INFINITY; panels * NR];
        for (c, row) in centroids.chunks_exact(dim).enumerate() {
            let (p, lane) = (c / NR, c % NR);
            for (j, &v) in row.iter().enumerate() {
                data[(p * dim + j) * NR + lane] = v;
            }
            norms[c] = norm_sqr(row);
        }
        Self { dim, k, data, norms }
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn len(&self) -> usize {
        self.k
    }

    pub fn is_empty(&self) -> bool {
        self.k == 0
    }

    fn panels(&self) -> usize {
        self.norms.len() / NR
    }
}

/// Index of the nearest centroid for every row of `points` (ties go to the lower index).
/// Ranks by ‖c‖² − 2·x·c like FAISS's GEMM path, so on near-ties the winner may differ from
/// exact L2 by float rounding; callers wanting the distance recompute it with [`l2_sqr`].
pub fn nearest_centroids(points: &[f32], centroids: &CentroidPanels, out: &mut [u32]) {
    assert_eq!(points.len(), out.len() * centroids.dim, "points length != dim * out.len()");
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU supports avx2 and fma; shapes checked above.
        return unsafe { avx2::nearest(points, centroids, out) };
    }
    portable::nearest(points, centroids, out)
}

/// Panels per cache chunk for this dimension.
fn chunk_panels(c: &CentroidPanels) -> usize {
    (CHUNK_BYTES / (c.dim * NR * 4)).clamp(1, c.panels())
}

mod portable {
    use super::{chunk_panels, CentroidPanels, NR};

    #[inline(always)]
    fn term<const L2: bool>(a: f32, b: f32) -> f32 {
        if L2 {
            let d = a - b;
            d * d
        } else {
            a * b
        }
    }

    /// Eight independent partial sums let LLVM vectorise without reassociating floats.
    pub fn pair<const L2: bool>(a: &[f32], b: &[f32]) -> f32 {
        let (ca, ta) = a.as_chunks::<8>();
        let (cb, tb) = b.as_chunks::<8>();
        let mut acc = [0.0f32; 8];
        for (x, y) in ca.iter().zip(cb) {
            for l in 0..8 {
                acc[l] += term::<L2>(x[l], y[l]);
            }
        }
        let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
        for (&x, &y) in ta.iter().zip(tb) {
            s += term::<L2>(x, y);
        }
        s
    }

    pub fn batch<const L2: bool>(q: &[f32], rows: &[f32], out: &mut [f32]) {
        for (o, r) in out.iter_mut().zip(rows.chunks_exact(q.len())) {
            *o = pair::<L2>(q, r);
        }
    }

    pub fn nearest(points: &[f32], c: &CentroidPanels, out: &mut [u32]) {
        let dim = c.dim;
        let chunk = chunk_panels(c);
        let mut best = vec![f32::INFINITY; out.len()];
        out.fill(0);
        for p0 in (0..c.panels()).step_by(chunk) {
            let p1 = (p0 + chunk).min(c.panels());
            for ((x, o), b) in points.chunks_exact(dim).zip(out.iter_mut()).zip(best.iter_mut()) {
                for p in p0..p1 {
                    let panel = &c.data[p * dim * NR..(p + 1) * dim * NR];
                    let mut acc = [0.0f32; NR];
                    for (&xj, cj) in x.iter().zip(panel.as_chunks::<NR>().0) {
                        for l in 0..NR {
                            acc[l] += xj * cj[l];
                        }
                    }
                    for (l, &a) in acc.iter().enumerate() {
                        let d = c.norms[p * NR + l] - 2.0 * a;
                        if d < *b {
                            *b = d;
                            *o = (p * NR + l) as u32;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{chunk_panels, CentroidPanels, MR, NR};
    use std::arch::x86_64::*;

    const PREFETCH_ROWS: usize = 32;

    /// `TAIL[8 - rem..]` loads a mask selecting the first `rem` lanes.
    static TAIL: [i32; 16] = [-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0];

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn tail_mask(rem: usize) -> __m256i {
        debug_assert!((1..8).contains(&rem));
        // SAFETY: 8 - rem + 8 <= 16.
        unsafe { _mm256_loadu_si256(TAIL.as_ptr().add(8 - rem).cast()) }
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn step<const L2: bool>(acc: __m256, a: __m256, b: __m256) -> __m256 {
        if L2 {
            let d = _mm256_sub_ps(a, b);
            _mm256_fmadd_ps(d, d, acc)
        } else {
            _mm256_fmadd_ps(a, b, acc)
        }
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn hsum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
    }

    /// Horizontal sums of eight registers at once: lane i of the result is the sum of `a[i]`.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn hsum8(a: [__m256; 8]) -> __m256 {
        let u0 = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
        let u1 = _mm256_hadd_ps(_mm256_hadd_ps(a[4], a[5]), _mm256_hadd_ps(a[6], a[7]));
        _mm256_add_ps(_mm256_permute2f128_ps::<0x20>(u0, u1), _mm256_permute2f128_ps::<0x31>(u0, u1))
    }

    /// Four accumulators hide FMA latency on long vectors; the tail uses a masked load.
    #[target_feature(enable = "avx2,fma")]
    pub fn pair<const L2: bool>(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len();
        assert_eq!(n, b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        // SAFETY: every unmasked load reads [i, i + 8) with i + 8 <= n; masked loads stay below n.
        unsafe {
            while i + 32 <= n {
                for (j, acc) in acc.iter_mut().enumerate() {
                    let (x, y) = (_mm256_loadu_ps(pa.add(i + 8 * j)), _mm256_loadu_ps(pb.add(i + 8 * j)));
                    *acc = step::<L2>(*acc, x, y);
                }
                i += 32;
            }
            while i + 8 <= n {
                acc[0] = step::<L2>(acc[0], _mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)));
                i += 8;
            }
            if i < n {
                let m = tail_mask(n - i);
                acc[1] = step::<L2>(acc[1], _mm256_maskload_ps(pa.add(i), m), _mm256_maskload_ps(pb.add(i), m));
            }
        }
        hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])))
    }

    /// Eight rows at a time share each query load and one combined horizontal reduction,
    /// which dominates for short (~50-d) vectors.
    #[target_feature(enable = "avx2,fma")]
    pub fn batch<const L2: bool>(q: &[f32], rows: &[f32], out: &mut [f32]) {
        let dim = q.len();
        let n = out.len();
        assert_eq!(rows.len(), n * dim);
        let (full, rem) = (dim / 8, dim % 8);
        let mask = if rem > 0 { tail_mask(rem) } else { _mm256_setzero_si256() };
        let pq = q.as_ptr();
        let mut r = 0;
        while r + 8 <= n {
            // SAFETY: rows r..r+8 exist; loads stay inside each row as in `pair`.
            unsafe {
                let base = rows.as_ptr().add(r * dim);
                // IVF lists stream from DRAM: fetch the group 32 rows ahead (~+15% scan speed measured).
                let ahead = base.wrapping_add(PREFETCH_ROWS * dim).cast::<i8>();
                for line in (0..8 * dim * 4).step_by(64) {
                    _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(line));
                }
                let mut acc = [_mm256_setzero_ps(); 8];
                for c in 0..full {
                    let qv = _mm256_loadu_ps(pq.add(8 * c));
                    for (j, acc) in acc.iter_mut().enumerate() {
                        *acc = step::<L2>(*acc, qv, _mm256_loadu_ps(base.add(j * dim + 8 * c)));
                    }
                }
                if rem > 0 {
                    let qv = _mm256_maskload_ps(pq.add(8 * full), mask);
                    for (j, acc) in acc.iter_mut().enumerate() {
                        *acc = step::<L2>(*acc, qv, _mm256_maskload_ps(base.add(j * dim + 8 * full), mask));
                    }
                }
                _mm256_storeu_ps(out.as_mut_ptr().add(r), hsum8(acc));
            }
            r += 8;
        }
        // The last < 8 rows go through the same block path on a zero-padded copy, so a row's
        // distance never depends on its position (a reloaded index orders lists differently,
        // and results must be bit-identical before and after).
        let tail = n - r;
        if tail > 0 {
            // Every IVF list ends in such a tail: keep small dimensions off the heap.
            let mut stack = [0f32; 8 * super::STACK_PAD_DIM];
            let mut heap = Vec::new();
            let pad: &mut [f32] = if dim <= super::STACK_PAD_DIM {
                &mut stack[..8 * dim]
            } else {
                heap.resize(8 * dim, 0f32);
                &mut heap
            };
            pad[..tail * dim].copy_from_slice(&rows[r * dim..]);
            let mut block = [0f32; 8];
            batch::<L2>(q, pad, &mut block);
            out[r..].copy_from_slice(&block[..tail]);
        }
    }

    #[target_feature(enable = "avx2,fma")]
    pub fn nearest(points: &[f32], c: &CentroidPanels, out: &mut [u32]) {
        let dim = c.dim;
        let n = out.len();
        assert_eq!(points.len(), n * dim);
        let chunk = chunk_panels(c);
        let mut best = vec![f32::INFINITY; n];
        out.fill(0);
        for p0 in (0..c.panels()).step_by(chunk) {
            let p1 = (p0 + chunk).min(c.panels());
            let mut r = 0;
            while r < n {
                let rows = (n - r).min(MR);
                let x = &points[r * dim..(r + rows) * dim];
                let (b, o) = (&mut best[r..r + rows], &mut out[r..r + rows]);
                match rows {
                    6 => tile::<6>(x, c, p0..p1, b, o),
                    5 => tile::<5>(x, c, p0..p1, b, o),
                    4 => tile::<4>(x, c, p0..p1, b, o),
                    3 => tile::<3>(x, c, p0..p1, b, o),
                    2 => tile::<2>(x, c, p0..p1, b, o),
                    _ => tile::<1>(x, c, p0..p1, b, o),
                }
                r += rows;
            }
        }
    }

    /// R rows x one 16-centroid panel per step: 2R FMA chains over the dimensions, then a
    /// lane-wise running minimum; lanes are reduced to one winner per row at the end.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn tile<const R: usize>(
        x: &[f32],
        c: &CentroidPanels,
        panels: std::ops::Range<usize>,
        best: &mut [f32],
        out: &mut [u32],
    ) {
        let dim = c.dim;
        assert!(x.len() == R * dim && best.len() == R && out.len() == R);
        assert!(panels.end * dim * NR <= c.data.len());
        let px = x.as_ptr();
        let two = _mm256_set1_ps(2.0);
        let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        let mut minv = [[_mm256_set1_ps(f32::INFINITY); 2]; R];
        let mut mini = [[_mm256_setzero_si256(); 2]; R];
        for p in panels {
            let mut acc = [[_mm256_setzero_ps(); 2]; R];
            // SAFETY: panel p lies inside `c.data` (asserted); x has R rows of dim.
            unsafe {
                let pc = c.data.as_ptr().add(p * dim * NR);
                for j in 0..dim {
                    let c0 = _mm256_loadu_ps(pc.add(j * NR));
                    let c1 = _mm256_loadu_ps(pc.add(j * NR + 8));
                    for (r, acc) in acc.iter_mut().enumerate() {
                        let xv = _mm256_broadcast_ss(&*px.add(r * dim + j));
                        acc[0] = _mm256_fmadd_ps(xv, c0, acc[0]);
                        acc[1] = _mm256_fmadd_ps(xv, c1, acc[1]);
                    }
                }
            }
            let idx0 = _mm256_add_epi32(_mm256_set1_epi32((p * NR) as i32), lanes);
            let idx = [idx0, _mm256_add_epi32(idx0, _mm256_set1_epi32(8))];
            for h in 0..2 {
                // SAFETY: norms has NR entries per panel.
                let nv = unsafe { _mm256_loadu_ps(c.norms.as_ptr().add(p * NR + 8 * h)) };
                for r in 0..R {
                    let d = _mm256_fnmadd_ps(two, acc[r][h], nv);
                    let lt = _mm256_cmp_ps::<_CMP_LT_OQ>(d, minv[r][h]);
                    minv[r][h] = _mm256_blendv_ps(minv[r][h], d, lt);
                    mini[r][h] = _mm256_castps_si256(_mm256_blendv_ps(
                        _mm256_castsi256_ps(mini[r][h]),
                        _mm256_castsi256_ps(idx[h]),
                        lt,
                    ));
                }
            }
        }
        for r in 0..R {
            let mut v = [0.0f32; NR];
            let mut ix = [0u32; NR];
            // SAFETY: both arrays hold 16 lanes.
            unsafe {
                _mm256_storeu_ps(v.as_mut_ptr(), minv[r][0]);
                _mm256_storeu_ps(v.as_mut_ptr().add(8), minv[r][1]);
                _mm256_storeu_si256(ix.as_mut_ptr().cast(), mini[r][0]);
                _mm256_storeu_si256(ix.as_mut_ptr().add(8).cast(), mini[r][1]);
            }
            for (&d, &i) in v.iter().zip(&ix) {
                if d < best[r] || (d == best[r] && i < out[r]) {
                    best[r] = d;
                    out[r] = i;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rng_vec(seed: &mut u64, n: usize) -> Vec<f32> {
        (0..n)
            .map(|_| {
                *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((*seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn ref_l2(a: &[f32], b: &[f32]) -> f64 {
        a.iter().zip(b).map(|(&x, &y)| (x as f64 - y as f64).powi(2)).sum()
    }

    fn ref_dot(a: &[f32], b: &[f32]) -> f64 {
        a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
    }

    fn close(got: f32, want: f64, scale: f64) {
        let tol = 1e-5 * scale.max(1.0);
        assert!((got as f64 - want).abs() <= tol, "got {got}, want {want}");
    }

    fn dims() -> impl Iterator<Item = usize> {
        (1..=130).chain([384, 768])
    }

    /// Every path that can run here: the dispatched one and the portable fallback.
    type Pair = fn(&[f32], &[f32]) -> f32;
    type Batch = fn(&[f32], &[f32], &mut [f32]);
    fn pair_impls() -> Vec<(Pair, Pair)> {
        vec![(l2_sqr, dot), (portable::pair::<true>, portable::pair::<false>)]
    }
    fn batch_impls() -> Vec<(Batch, Batch)> {
        vec![
            (|q, r, o| l2_sqr_batch(q, r, q.len(), o), |q, r, o| dot_batch(q, r, q.len(), o)),
            (portable::batch::<true>, portable::batch::<false>),
        ]
    }

    #[test]
    fn pair_kernels_match_f64_reference() {
        let mut s = 1;
        for dim in dims() {
            let (a, b) = (rng_vec(&mut s, dim), rng_vec(&mut s, dim));
            let scale = dim as f64;
            for (l2, ip) in pair_impls() {
                close(l2(&a, &b), ref_l2(&a, &b), scale);
                close(ip(&a, &b), ref_dot(&a, &b), scale);
            }
            close(norm_sqr(&a), ref_dot(&a, &a), scale);
        }
    }

    #[test]
    fn batch_kernels_match_f64_reference() {
        let mut s = 2;
        for dim in dims() {
            for n in [0, 1, 7, 8, 9, 17] {
                let q = rng_vec(&mut s, dim);
                let rows = rng_vec(&mut s, n * dim);
                for (l2, ip) in batch_impls() {
                    let mut out = vec![f32::NAN; n];
                    l2(&q, &rows, &mut out);
                    for (o, r) in out.iter().zip(rows.chunks_exact(dim)) {
                        close(*o, ref_l2(&q, r), dim as f64);
                    }
                    ip(&q, &rows, &mut out);
                    for (o, r) in out.iter().zip(rows.chunks_exact(dim)) {
                        close(*o, ref_dot(&q, r), dim as f64);
                    }
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "rows length")]
    fn batch_rejects_bad_shape() {
        l2_sqr_batch(&[0.0; 4], &[0.0; 7], 4, &mut [0.0; 2]);
    }

    /// The chosen centroid must be exactly nearest up to float-rounding near-ties.
    fn check_nearest(points: &[f32], cents: &[f32], dim: usize, ids: &[u32]) {
        for (x, &id) in points.chunks_exact(dim).zip(ids) {
            let best = cents.chunks_exact(dim).map(|c| ref_l2(x, c)).fold(f64::INFINITY, f64::min);
            let got = ref_l2(x, &cents[id as usize * dim..][..dim]);
            assert!(got <= best + 1e-4 * (1.0 + best), "dim {dim}: got {got}, best {best}");
        }
    }

    #[test]
    fn nearest_centroids_matches_brute_force() {
        let mut s = 3;
        // k values cover partial panels, several cache chunks (dim 768) and all tile heights.
        for (dim, k, n) in [(1, 1, 5), (3, 17, 13), (50, 1024, 37), (50, 33, 6), (130, 40, 11), (768, 70, 9)] {
            let points = rng_vec(&mut s, n * dim);
            let cents = rng_vec(&mut s, k * dim);
            let panels = CentroidPanels::new(&cents, dim);
            let mut ids = vec![u32::MAX; n];
            nearest_centroids(&points, &panels, &mut ids);
            check_nearest(&points, &cents, dim, &ids);
            portable::nearest(&points, &panels, &mut ids);
            check_nearest(&points, &cents, dim, &ids);
        }
    }

    #[test]
    fn nearest_ties_pick_lowest_index() {
        let cents = [1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 5.0, 5.0];
        let panels = CentroidPanels::new(&cents, 2);
        let mut ids = [9u32; 3];
        nearest_centroids(&[1.0, 0.0, 0.9, 0.1, 5.0, 5.0], &panels, &mut ids);
        assert_eq!(ids, [0, 0, 4]);
    }
}
