//! Kernels with AVX2 and FMA intrinsics, chosen at run time when the CPU has both.

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
pub(super) fn pair<const L2: bool>(a: &[f32], b: &[f32]) -> f32 {
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
pub(super) fn batch<const L2: bool>(q: &[f32], rows: &[f32], out: &mut [f32]) {
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
            // IVF lists stream from DRAM: fetch the group 32 rows ahead, so it is in cache when
            // scored (BENCHMARKS.md, "Measurements behind design choices").
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
    // The last < 8 rows go one at a time through the block's operations and its order of
    // sums, so a row's distance never depends on its position (a reloaded index orders lists
    // differently, and results must be bit-identical before and after).
    while r < n {
        // SAFETY: row r exists.
        out[r] = unsafe { row::<L2>(q, rows.as_ptr().add(r * dim), mask) };
        r += 1;
    }
}

/// One row of [`batch`]'s block, with the same operations and [`hsum8`]'s order of sums.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn row<const L2: bool>(q: &[f32], base: *const f32, mask: __m256i) -> f32 {
    let dim = q.len();
    let (full, rem) = (dim / 8, dim % 8);
    let pq = q.as_ptr();
    // SAFETY (caller): `base` is readable for `dim` values; loads stay inside as in `batch`.
    let acc = unsafe {
        let mut acc = _mm256_setzero_ps();
        for c in 0..full {
            acc = step::<L2>(acc, _mm256_loadu_ps(pq.add(8 * c)), _mm256_loadu_ps(base.add(8 * c)));
        }
        if rem > 0 {
            let qv = _mm256_maskload_ps(pq.add(8 * full), mask);
            acc = step::<L2>(acc, qv, _mm256_maskload_ps(base.add(8 * full), mask));
        }
        acc
    };
    let mut x = [0f32; 8];
    // SAFETY: `x` holds 8 lanes.
    unsafe { _mm256_storeu_ps(x.as_mut_ptr(), acc) };
    ((x[0] + x[1]) + (x[2] + x[3])) + ((x[4] + x[5]) + (x[6] + x[7]))
}

#[target_feature(enable = "avx2,fma")]
pub(super) fn nearest(points: &[f32], c: &CentroidPanels, out: &mut [u32]) {
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

/// `‖c‖² − 2·x·c` of every row against every centroid into `out` (rows of
/// `c.padded_len()` scores), `MR` rows at a time over one cache chunk of panels, so a batch of
/// queries reads the centroids once per chunk instead of once per query.
#[target_feature(enable = "avx2,fma")]
pub(super) fn scores(points: &[f32], c: &CentroidPanels, out: &mut [f32]) {
    let dim = c.dim;
    let stride = c.panels() * NR;
    let n = points.len() / dim;
    assert!(points.len() == n * dim && out.len() == n * stride);
    let chunk = chunk_panels(c);
    for p0 in (0..c.panels()).step_by(chunk) {
        let p1 = (p0 + chunk).min(c.panels());
        let mut r = 0;
        while r < n {
            let rows = (n - r).min(MR);
            let x = &points[r * dim..(r + rows) * dim];
            let o = &mut out[r * stride..(r + rows) * stride];
            match rows {
                6 => score_tile::<6, 1>(x, c, p0..p1, o),
                5 => score_tile::<5, 1>(x, c, p0..p1, o),
                4 => score_tile::<4, 1>(x, c, p0..p1, o),
                3 => score_tile::<3, 1>(x, c, p0..p1, o),
                2 => score_tile::<2, 2>(x, c, p0..p1, o),
                _ => score_tile::<1, 4>(x, c, p0..p1, o),
            }
            r += rows;
        }
    }
}

/// [`tile`]'s sums for R rows, stored instead of reduced to a minimum. A row's scores do not
/// depend on R (each row's sums run in the same order), so a query scores the centroids the
/// same alone or in a batch.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn score_tile<const R: usize, const P: usize>(
    x: &[f32],
    c: &CentroidPanels,
    panels: std::ops::Range<usize>,
    out: &mut [f32],
) {
    let mut p = panels.start;
    while p + P <= panels.end {
        score_step::<R, P>(x, c, p, out);
        p += P;
    }
    while p < panels.end {
        score_step::<R, 1>(x, c, p, out);
        p += 1;
    }
}

/// [`score_tile`]'s step over panels p..p + P: 2·R·P chains, so few rows still keep 8 chains
/// in flight (one row against one panel had 2, and waited on each multiply-add's latency).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn score_step<const R: usize, const P: usize>(x: &[f32], c: &CentroidPanels, p: usize, out: &mut [f32]) {
    let dim = c.dim;
    let stride = c.panels() * NR;
    assert!(x.len() == R * dim && out.len() == R * stride);
    assert!((p + P) * dim * NR <= c.data.len());
    let px = x.as_ptr();
    let two = _mm256_set1_ps(2.0);
    let mut acc = [[[_mm256_setzero_ps(); 2]; P]; R];
    // SAFETY: panels p..p + P lie inside `c.data` (asserted); x has R rows of dim.
    unsafe {
        let pc = c.data.as_ptr().add(p * dim * NR);
        for j in 0..dim {
            let mut cv = [[_mm256_setzero_ps(); 2]; P];
            for (q, cv) in cv.iter_mut().enumerate() {
                cv[0] = _mm256_loadu_ps(pc.add(q * dim * NR + j * NR));
                cv[1] = _mm256_loadu_ps(pc.add(q * dim * NR + j * NR + 8));
            }
            for (r, acc) in acc.iter_mut().enumerate() {
                let xv = _mm256_broadcast_ss(&*px.add(r * dim + j));
                for (acc, cv) in acc.iter_mut().zip(&cv) {
                    acc[0] = _mm256_fmadd_ps(xv, cv[0], acc[0]);
                    acc[1] = _mm256_fmadd_ps(xv, cv[1], acc[1]);
                }
            }
        }
        for q in 0..P {
            for h in 0..2 {
                let nv = _mm256_loadu_ps(c.norms.as_ptr().add((p + q) * NR + 8 * h));
                for (r, acc) in acc.iter().enumerate() {
                    // SAFETY: row r's scores of panel p + q lie inside `out` (asserted above).
                    _mm256_storeu_ps(
                        out.as_mut_ptr().add(r * stride + (p + q) * NR + 8 * h),
                        _mm256_fnmadd_ps(two, acc[q][h], nv),
                    );
                }
            }
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

/// Bytes of one code row per dimension: 1 for 8-bit codes, 2 for float16.
const fn code_bytes<const F16: bool>() -> usize {
    if F16 {
        2
    } else {
        1
    }
}

/// Eight code values from `p` (8 bytes of u8 codes or 16 bytes of float16) as f32 lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn load_codes<const F16: bool>(p: *const u8) -> __m256 {
    // SAFETY (caller): `p` is readable for 8 code values.
    unsafe {
        if F16 {
            _mm256_cvtph_ps(_mm_loadu_si128(p.cast()))
        } else {
            _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(p.cast())))
        }
    }
}

/// `out[i] = Σ_j w[j] · code(row i, j)` for 8-bit (`F16 = false`) or float16 codes, eight
/// rows at a time sharing each weight load. A row's last `dim % 8` dimensions are read as
/// the row's last eight codes, against weights that are zero for the dimensions already
/// counted, so no load leaves the row; the last < 8 rows go one at a time through the same
/// operations and the same order of sums as [`hsum8`], so a row scores the same wherever it
/// sits in a list. Rows shorter than 8 dimensions go through a zero-padded copy.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn codes_dot_batch<const F16: bool>(w: &[f32], codes: &[u8], out: &mut [f32]) {
    let dim = w.len();
    let row = dim * code_bytes::<F16>();
    let n = out.len();
    assert_eq!(codes.len(), n * row);
    if dim < 8 {
        let mut wp = [0f32; 8];
        wp[..dim].copy_from_slice(w);
        for (o, r) in out.iter_mut().zip(codes.chunks_exact(row)) {
            let mut padded = [0u8; 16];
            padded[..row].copy_from_slice(r);
            let mut one = [0f32];
            codes_dot_batch::<F16>(&wp, &padded[..8 * code_bytes::<F16>()], &mut one);
            *o = one[0];
        }
        return;
    }
    let weights = Weights::new(w);
    let mut r = 0;
    while r + 8 <= n {
        let block: &mut [f32; 8] = (&mut out[r..r + 8]).try_into().expect("8 rows");
        // SAFETY: rows r..r + 8 lie inside `codes`.
        unsafe { codes_block::<F16>(&weights, codes.as_ptr().add(r * row), block) };
        r += 8;
    }
    while r < n {
        // SAFETY: row r lies inside `codes`.
        out[r] = unsafe { codes_row::<F16>(&weights, codes.as_ptr().add(r * row)) };
        r += 1;
    }
}

/// The weights of a query over codes: `dim / 8` full registers, and the weights of the last
/// eight dimensions with those the full registers already cover set to zero.
struct Weights<'a> {
    w: &'a [f32],
    full: usize,
    tail: Option<__m256>,
}

impl<'a> Weights<'a> {
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn new(w: &'a [f32]) -> Self {
        let (full, rem) = (w.len() / 8, w.len() % 8);
        let tail = (rem > 0).then(|| {
            let mut last = [0f32; 8];
            last[8 - rem..].copy_from_slice(&w[w.len() - rem..]);
            // SAFETY: `last` holds 8 lanes.
            unsafe { _mm256_loadu_ps(last.as_ptr()) }
        });
        Weights { w, full, tail }
    }
}

/// Eight rows of codes starting at `base` (readable for 8 rows).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn codes_block<const F16: bool>(weights: &Weights, base: *const u8, out: &mut [f32; 8]) {
    let dim = weights.w.len();
    let cb = code_bytes::<F16>();
    let row = dim * cb;
    let pw = weights.w.as_ptr();
    // SAFETY (caller): 8 rows of `row` bytes from `base`; weight loads stay below `dim`, the
    // tail load reads a row's last 8 codes (dim >= 8).
    unsafe {
        let ahead = base.wrapping_add(PREFETCH_ROWS * row).cast::<i8>();
        for line in (0..8 * row).step_by(64) {
            _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(line));
        }
        let mut acc = [_mm256_setzero_ps(); 8];
        for c in 0..weights.full {
            let wv = _mm256_loadu_ps(pw.add(8 * c));
            for (j, acc) in acc.iter_mut().enumerate() {
                *acc = _mm256_fmadd_ps(wv, load_codes::<F16>(base.add(j * row + 8 * c * cb)), *acc);
            }
        }
        if let Some(wt) = weights.tail {
            for (j, acc) in acc.iter_mut().enumerate() {
                *acc = _mm256_fmadd_ps(wt, load_codes::<F16>(base.add(j * row + (dim - 8) * cb)), *acc);
            }
        }
        _mm256_storeu_ps(out.as_mut_ptr(), hsum8(acc));
    }
}

/// One row of [`codes_block`], with its operations and its sum in the same order.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn codes_row<const F16: bool>(weights: &Weights, base: *const u8) -> f32 {
    let dim = weights.w.len();
    let cb = code_bytes::<F16>();
    let pw = weights.w.as_ptr();
    // SAFETY (caller): one row of `dim · cb` bytes from `base`.
    let acc = unsafe {
        let mut acc = _mm256_setzero_ps();
        for c in 0..weights.full {
            acc = _mm256_fmadd_ps(_mm256_loadu_ps(pw.add(8 * c)), load_codes::<F16>(base.add(8 * c * cb)), acc);
        }
        if let Some(wt) = weights.tail {
            acc = _mm256_fmadd_ps(wt, load_codes::<F16>(base.add((dim - 8) * cb)), acc);
        }
        acc
    };
    let mut x = [0f32; 8];
    // SAFETY: `x` holds 8 lanes.
    unsafe { _mm256_storeu_ps(x.as_mut_ptr(), acc) };
    // hsum8's order for one lane.
    ((x[0] + x[1]) + (x[2] + x[3])) + ((x[4] + x[5]) + (x[6] + x[7]))
}

/// Integer weights over 8-bit codes ([`super::IntWeights`]): `out[i] = (Σ_j w[j] · code(row i,
/// j)) · unscale`, eight rows at a time sharing each load of 16 weights; a row's 16 codes are
/// widened to 16-bit lanes and multiplied and pair-summed into 32-bit lanes by one
/// `vpmaddwd`. The last `dim % 16` dimensions are read as the row's last 16 codes against
/// `tail` (zero where already counted), so no load leaves the row. The sums are exact, so
/// the tail rows and rows shorter than 16 dimensions (a zero-padded copy) need no care for
/// order.
#[target_feature(enable = "avx2")]
pub(super) fn int_codes_dot_batch(w: &[i16], tail: &[i16; 16], unscale: f32, codes: &[u8], out: &mut [f32]) {
    let dim = w.len();
    let n = out.len();
    assert_eq!(codes.len(), n * dim);
    if dim < 16 {
        let mut wp = [0i16; 16];
        wp[..dim].copy_from_slice(w);
        for (o, r) in out.iter_mut().zip(codes.chunks_exact(dim)) {
            let mut padded = [0u8; 16];
            padded[..dim].copy_from_slice(r);
            let mut one = [0f32];
            int_codes_dot_batch(&wp, &[0; 16], unscale, &padded, &mut one);
            *o = one[0];
        }
        return;
    }
    let full = dim / 16;
    // SAFETY: `tail` holds 16 lanes.
    let tail = (!dim.is_multiple_of(16)).then(|| unsafe { _mm256_loadu_si256(tail.as_ptr().cast()) });
    let pw = w.as_ptr();
    let scale = _mm256_set1_ps(unscale);
    let mut r = 0;
    // SAFETY: rows r..r + 8 (then row r) lie inside `codes`; weight loads read [16c, 16c + 16)
    // with 16c + 16 <= dim; the tail reads a row's last 16 codes (dim >= 16).
    unsafe {
        while r + 8 <= n {
            let base = codes.as_ptr().add(r * dim);
            let ahead = base.wrapping_add(PREFETCH_ROWS * dim).cast::<i8>();
            for line in (0..8 * dim).step_by(64) {
                _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(line));
            }
            let mut acc = [_mm256_setzero_si256(); 8];
            for c in 0..full {
                let wv = _mm256_loadu_si256(pw.add(16 * c).cast());
                for (j, acc) in acc.iter_mut().enumerate() {
                    let x = _mm256_cvtepu8_epi16(_mm_loadu_si128(base.add(j * dim + 16 * c).cast()));
                    *acc = _mm256_add_epi32(*acc, _mm256_madd_epi16(x, wv));
                }
            }
            if let Some(wt) = tail {
                for (j, acc) in acc.iter_mut().enumerate() {
                    let x = _mm256_cvtepu8_epi16(_mm_loadu_si128(base.add(j * dim + dim - 16).cast()));
                    *acc = _mm256_add_epi32(*acc, _mm256_madd_epi16(x, wt));
                }
            }
            let sums = hsum8_epi32(acc);
            _mm256_storeu_ps(out.as_mut_ptr().add(r), _mm256_mul_ps(_mm256_cvtepi32_ps(sums), scale));
            r += 8;
        }
        while r < n {
            let base = codes.as_ptr().add(r * dim);
            let mut acc = _mm256_setzero_si256();
            for c in 0..full {
                let x = _mm256_cvtepu8_epi16(_mm_loadu_si128(base.add(16 * c).cast()));
                acc = _mm256_add_epi32(acc, _mm256_madd_epi16(x, _mm256_loadu_si256(pw.add(16 * c).cast())));
            }
            if let Some(wt) = tail {
                let x = _mm256_cvtepu8_epi16(_mm_loadu_si128(base.add(dim - 16).cast()));
                acc = _mm256_add_epi32(acc, _mm256_madd_epi16(x, wt));
            }
            let mut lanes = [0i32; 8];
            _mm256_storeu_si256(lanes.as_mut_ptr().cast(), acc);
            out[r] = lanes.iter().fold(0i32, |s, &x| s.wrapping_add(x)) as f32 * unscale;
            r += 1;
        }
    }
}

/// [`hsum8`] for 32-bit integer lanes: lane i of the result is the sum of `a[i]`.
#[inline]
#[target_feature(enable = "avx2")]
pub(super) fn hsum8_epi32(a: [__m256i; 8]) -> __m256i {
    let u0 = _mm256_hadd_epi32(_mm256_hadd_epi32(a[0], a[1]), _mm256_hadd_epi32(a[2], a[3]));
    let u1 = _mm256_hadd_epi32(_mm256_hadd_epi32(a[4], a[5]), _mm256_hadd_epi32(a[6], a[7]));
    _mm256_add_epi32(_mm256_permute2x128_si256::<0x20>(u0, u1), _mm256_permute2x128_si256::<0x31>(u0, u1))
}
