//! Kernels with AVX-512 intrinsics, chosen at run time when the CPU has them (see
//! [`super::Level`]). Each gives the same bits as its AVX2 twin: a centroid's score is the
//! same chain of fused multiply-adds over the dimensions in the same order, one lane per
//! centroid, and integer code sums are exact. So an index answers the same on either CPU,
//! and the AVX2 kernels are the reference these are tested against. What changes is the
//! width (16 lanes a register, twice AVX2's) and the tile shapes (BENCHMARKS.md, "AVX-512
//! kernels"). One query against the coarse quantizer takes 4 panels a step: 4 chains kept
//! it from waiting on each multiply-add's latency, and 8 (8 panels streamed at once) ran
//! slower at 384-d.

use super::{chunk_panels, CentroidPanels, NR};
use std::arch::x86_64::*;
use std::ops::Range;

const PREFETCH_ROWS: usize = 32;
/// The most panels one step of a tile spans (the running minimum keeps a register per row
/// and panel slot).
const MAX_P: usize = 8;

/// Rows in the next tile: the callers pair each with the panels per step that keep 16–24
/// accumulators, or at least 4 independent chains when few rows are left.
fn shape(rows_left: usize) -> usize {
    match rows_left {
        12.. => 12,
        8..=11 => 8,
        4..=7 => 4,
        2 | 3 => 2,
        _ => 1,
    }
}

/// Index of the nearest centroid for every row of `points`, as [`super::avx2::nearest`].
#[target_feature(enable = "avx512f")]
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
            let rows = shape(n - r);
            let x = &points[r * dim..(r + rows) * dim];
            let (b, o) = (&mut best[r..r + rows], &mut out[r..r + rows]);
            match rows {
                12 => nearest_rows::<12, 2>(x, c, p0..p1, b, o),
                8 => nearest_rows::<8, 3>(x, c, p0..p1, b, o),
                4 => nearest_rows::<4, 6>(x, c, p0..p1, b, o),
                2 => nearest_rows::<2, 8>(x, c, p0..p1, b, o),
                _ => nearest_rows::<1, 8>(x, c, p0..p1, b, o),
            }
            r += rows;
        }
    }
}

/// `‖c‖² − 2·x·c` of every row against every centroid, as [`super::avx2::scores`].
#[target_feature(enable = "avx512f")]
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
            let rows = shape(n - r);
            let x = &points[r * dim..(r + rows) * dim];
            let o = &mut out[r * stride..(r + rows) * stride];
            match rows {
                12 => score_rows::<12, 2>(x, c, p0..p1, o),
                8 => score_rows::<8, 3>(x, c, p0..p1, o),
                4 => score_rows::<4, 6>(x, c, p0..p1, o),
                2 => score_rows::<2, 8>(x, c, p0..p1, o),
                _ => score_rows::<1, 4>(x, c, p0..p1, o),
            }
            r += rows;
        }
    }
}

/// The dot products of R rows with P consecutive panels (P × 16 centroids): one chain of
/// fused multiply-adds per row and panel over the dimensions, in order.
#[inline]
#[target_feature(enable = "avx512f")]
fn sums<const R: usize, const P: usize>(x: &[f32], c: &CentroidPanels, p: usize) -> [[__m512; P]; R] {
    let dim = c.dim;
    assert!(x.len() == R * dim && (p + P) * dim * NR <= c.data.len());
    let px = x.as_ptr();
    let mut acc = [[_mm512_setzero_ps(); P]; R];
    // SAFETY: panels p..p + P lie inside `c.data` (asserted); x has R rows of dim.
    unsafe {
        let pc = c.data.as_ptr().add(p * dim * NR);
        for j in 0..dim {
            let mut cv = [_mm512_setzero_ps(); P];
            for (q, cv) in cv.iter_mut().enumerate() {
                *cv = _mm512_loadu_ps(pc.add(q * dim * NR + j * NR));
            }
            for (r, acc) in acc.iter_mut().enumerate() {
                let xv = _mm512_set1_ps(*px.add(r * dim + j));
                for (acc, &cv) in acc.iter_mut().zip(&cv) {
                    *acc = _mm512_fmadd_ps(xv, cv, *acc);
                }
            }
        }
    }
    acc
}

/// The running minimum of each row over panel slots: per slot, a lane's lowest score so far
/// and its centroid. Slots are visited in increasing centroid order, and a lane keeps its
/// first minimum (strict `<`), so the final reduction's lowest score, lowest index among ties,
/// is the same winner as the AVX2 tile's.
struct Minima<const R: usize> {
    value: [[__m512; MAX_P]; R],
    index: [[__m512i; MAX_P]; R],
}

/// [`nearest`] for R rows over `panels`, P panels a step, the last < P one at a time.
#[inline]
#[target_feature(enable = "avx512f")]
fn nearest_rows<const R: usize, const P: usize>(
    x: &[f32],
    c: &CentroidPanels,
    panels: Range<usize>,
    best: &mut [f32],
    out: &mut [u32],
) {
    assert!(P <= MAX_P && best.len() == R && out.len() == R);
    let mut m =
        Minima::<R> { value: [[_mm512_set1_ps(f32::INFINITY); MAX_P]; R], index: [[_mm512_setzero_si512(); MAX_P]; R] };
    let mut p = panels.start;
    while p + P <= panels.end {
        keep_minima::<R, P>(&sums::<R, P>(x, c, p), c, p, &mut m);
        p += P;
    }
    while p < panels.end {
        keep_minima::<R, 1>(&sums::<R, 1>(x, c, p), c, p, &mut m);
        p += 1;
    }
    for r in 0..R {
        // The slots' lowest scores, lowest index among ties, lane by lane; then the row's.
        // No slot holds a NaN (a lane takes a score only if it compares lower), so the
        // reductions see ordered values.
        let (mut v, mut ix) = (m.value[r][0], m.index[r][0]);
        for s in 1..P {
            let (w, iw) = (m.value[r][s], m.index[r][s]);
            let take = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(w, v)
                | (_mm512_cmp_ps_mask::<_CMP_EQ_OQ>(w, v) & _mm512_cmplt_epu32_mask(iw, ix));
            v = _mm512_mask_mov_ps(v, take, w);
            ix = _mm512_mask_mov_epi32(ix, take, iw);
        }
        let low = _mm512_reduce_min_ps(v);
        if low <= best[r] {
            let at = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(v, _mm512_set1_ps(low));
            let i = _mm512_mask_reduce_min_epu32(at, ix);
            if low < best[r] || i < out[r] {
                best[r] = low;
                out[r] = i;
            }
        }
    }
}

/// Folds the scores of panels p..p + P into the running minima (slot q for panel p + q).
#[inline]
#[target_feature(enable = "avx512f")]
fn keep_minima<const R: usize, const P: usize>(
    acc: &[[__m512; P]; R],
    c: &CentroidPanels,
    p: usize,
    m: &mut Minima<R>,
) {
    let two = _mm512_set1_ps(2.0);
    let lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for q in 0..P {
        let idx = _mm512_add_epi32(_mm512_set1_epi32(((p + q) * NR) as i32), lanes);
        // SAFETY: norms has NR entries per panel, and panel p + q exists.
        let nv = unsafe { _mm512_loadu_ps(c.norms.as_ptr().add((p + q) * NR)) };
        for ((row, value), index) in acc.iter().zip(m.value.iter_mut()).zip(m.index.iter_mut()) {
            let d = _mm512_fnmadd_ps(two, row[q], nv);
            let lt = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(d, value[q]);
            value[q] = _mm512_mask_mov_ps(value[q], lt, d);
            index[q] = _mm512_mask_mov_epi32(index[q], lt, idx);
        }
    }
}

/// [`scores`] for R rows over `panels`, P panels a step, the last < P one at a time.
#[inline]
#[target_feature(enable = "avx512f")]
fn score_rows<const R: usize, const P: usize>(x: &[f32], c: &CentroidPanels, panels: Range<usize>, out: &mut [f32]) {
    let mut p = panels.start;
    while p + P <= panels.end {
        store_scores::<R, P>(&sums::<R, P>(x, c, p), c, p, out);
        p += P;
    }
    while p < panels.end {
        store_scores::<R, 1>(&sums::<R, 1>(x, c, p), c, p, out);
        p += 1;
    }
}

#[inline]
#[target_feature(enable = "avx512f")]
fn store_scores<const R: usize, const P: usize>(acc: &[[__m512; P]; R], c: &CentroidPanels, p: usize, out: &mut [f32]) {
    let stride = c.panels() * NR;
    assert!(out.len() == R * stride && (p + P) * NR <= stride);
    let two = _mm512_set1_ps(2.0);
    for q in 0..P {
        // SAFETY: norms has NR entries per panel; row r's scores of panel p + q lie inside
        // `out` (asserted above).
        unsafe {
            let nv = _mm512_loadu_ps(c.norms.as_ptr().add((p + q) * NR));
            for (r, acc) in acc.iter().enumerate() {
                _mm512_storeu_ps(out.as_mut_ptr().add(r * stride + (p + q) * NR), _mm512_fnmadd_ps(two, acc[q], nv));
            }
        }
    }
}

/// Integer weights over 8-bit codes, as [`super::avx2::int_codes_dot_batch`]: 32 dimensions
/// a step (codes widened to 16-bit lanes, multiplied, pair-summed and accumulated into 32-bit
/// lanes by one `vpdpwssd`), eight rows at a time sharing each load of weights. A row's last
/// `dim % 32` dimensions are loaded under a mask, so no load leaves the row and any dimension
/// works. The sums are exact, so the order of summation does not matter.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2")]
pub(super) fn int_codes_dot_batch(w: &[i16], unscale: f32, codes: &[u8], out: &mut [f32]) {
    let dim = w.len();
    let n = out.len();
    assert_eq!(codes.len(), n * dim);
    let (full, rem) = (dim / 32, dim % 32);
    let mask: __mmask32 = if rem == 0 { 0 } else { (1u32 << rem) - 1 };
    let pw = w.as_ptr();
    // SAFETY: weight loads read [32c, 32c + 32) with 32c + 32 <= dim, or the last `rem` under
    // the mask.
    let tail = (rem > 0).then(|| unsafe { _mm512_maskz_loadu_epi16(mask, pw.add(32 * full)) });
    let scale = _mm256_set1_ps(unscale);
    let mut r = 0;
    // SAFETY: rows r..r + 8 (then row r) lie inside `codes`; code loads read [32c, 32c + 32)
    // of a row, or its last `rem` codes under the mask.
    unsafe {
        while r + 8 <= n {
            let base = codes.as_ptr().add(r * dim);
            let ahead = base.wrapping_add(PREFETCH_ROWS * dim).cast::<i8>();
            for line in (0..8 * dim).step_by(64) {
                _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(line));
            }
            let mut acc = [_mm512_setzero_si512(); 8];
            for c in 0..full {
                let wv = _mm512_loadu_si512(pw.add(32 * c).cast());
                for (j, acc) in acc.iter_mut().enumerate() {
                    let x = _mm512_cvtepu8_epi16(_mm256_loadu_si256(base.add(j * dim + 32 * c).cast()));
                    *acc = _mm512_dpwssd_epi32(*acc, x, wv);
                }
            }
            if let Some(wt) = tail {
                for (j, acc) in acc.iter_mut().enumerate() {
                    let x = _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(mask, base.add(j * dim + 32 * full).cast()));
                    *acc = _mm512_dpwssd_epi32(*acc, x, wt);
                }
            }
            let sums = super::avx2::hsum8_epi32(acc.map(|a| halves(a)));
            _mm256_storeu_ps(out.as_mut_ptr().add(r), _mm256_mul_ps(_mm256_cvtepi32_ps(sums), scale));
            r += 8;
        }
        while r < n {
            let base = codes.as_ptr().add(r * dim);
            let mut acc = _mm512_setzero_si512();
            for c in 0..full {
                let x = _mm512_cvtepu8_epi16(_mm256_loadu_si256(base.add(32 * c).cast()));
                acc = _mm512_dpwssd_epi32(acc, x, _mm512_loadu_si512(pw.add(32 * c).cast()));
            }
            if let Some(wt) = tail {
                let x = _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(mask, base.add(32 * full).cast()));
                acc = _mm512_dpwssd_epi32(acc, x, wt);
            }
            out[r] = _mm512_reduce_add_epi32(acc) as f32 * unscale;
            r += 1;
        }
    }
}

/// The 16 lanes of `a` summed pairwise into 8 (lane i + lane i + 8).
#[inline]
#[target_feature(enable = "avx512f,avx2")]
fn halves(a: __m512i) -> __m256i {
    _mm256_add_epi32(_mm512_castsi512_si256(a), _mm512_extracti64x4_epi64::<1>(a))
}
