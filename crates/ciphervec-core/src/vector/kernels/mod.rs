//! Distance kernels for IVF list scans and k-means assignment.
//!
//! The addon ships one binary for every x86-64 CPU, so the SIMD paths are chosen at run time
//! (detected once, [`Level`]) instead of with `target-cpu=native`: AVX-512 where the CPU has
//! it (the k-means assignment, the coarse quantizer and the 8-bit integer scan; the same bits
//! as AVX2), else AVX2 + FMA, else `portable`, written so LLVM can auto-vectorise it for the
//! baseline target.

#[cfg(target_arch = "x86_64")]
use std::sync::OnceLock;

/// Centroids per panel in [`CentroidPanels`]: two 8-lane registers wide, one 16-lane one.
const NR: usize = 16;
/// Rows per register tile in the AVX2 assignment kernel (6 x 2 accumulators + 3 temporaries fit in 16 ymm).
const MR: usize = 6;
/// Size of the centroid slice swept by all rows before moving on, so it stays cache-resident.
const CHUNK_BYTES: usize = 128 << 10;

/// The widest kernels this process uses: the CPU's best, unless the environment variable
/// `CIPHERVEC_SIMD` (`avx2` or `portable`) caps it, to compare speeds or to rule a kernel out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Level {
    /// Portable Rust, vectorised by the compiler for the baseline target.
    Portable,
    /// AVX2 and FMA.
    Avx2,
    /// AVX-512 (F, BW, VL and VNNI) besides AVX2 and FMA.
    Avx512,
}

impl Level {
    /// The level in use, detected once.
    pub(crate) fn current() -> Level {
        #[cfg(target_arch = "x86_64")]
        {
            static LEVEL: OnceLock<Level> = OnceLock::new();
            *LEVEL.get_or_init(|| Level::detected().min(Level::cap(std::env::var("CIPHERVEC_SIMD").ok().as_deref())))
        }
        #[cfg(not(target_arch = "x86_64"))]
        Level::Portable
    }

    /// The highest level `CIPHERVEC_SIMD` allows: `portable` or `avx2` (in any case), else
    /// no cap.
    fn cap(setting: Option<&str>) -> Level {
        match setting.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            Some("portable") => Level::Portable,
            Some("avx2") => Level::Avx2,
            _ => Level::Avx512,
        }
    }

    /// The CPU's best level.
    #[cfg(target_arch = "x86_64")]
    fn detected() -> Level {
        if !(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")) {
            Level::Portable
        } else if is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vl")
            && is_x86_feature_detected!("avx512vnni")
        {
            Level::Avx512
        } else {
            Level::Avx2
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[inline]
fn has_avx2_fma() -> bool {
    Level::current() >= Level::Avx2
}

#[cfg(target_arch = "x86_64")]
#[inline]
fn has_avx512() -> bool {
    Level::current() >= Level::Avx512
}

/// Asks the CPU to start loading `row` into cache: a gather of rows scattered over memory
/// issues this a few rows ahead, so their cache misses overlap instead of queueing.
#[inline]
pub(crate) fn prefetch(row: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    for line in row.chunks(16) {
        // SAFETY: a prefetch is a hint; it cannot fault, and the address lies in `row`.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(line.as_ptr().cast());
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = row;
}

/// Squared Euclidean distance.
pub(crate) fn l2_sqr(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "l2_sqr: length mismatch");
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU supports avx2 and fma; lengths checked above.
        return unsafe { avx2::pair::<true>(a, b) };
    }
    portable::pair::<true>(a, b)
}

/// Inner product.
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "dot: length mismatch");
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: as in `l2_sqr`.
        return unsafe { avx2::pair::<false>(a, b) };
    }
    portable::pair::<false>(a, b)
}

/// Squared L2 norm.
pub(crate) fn norm_sqr(a: &[f32]) -> f32 {
    dot(a, a)
}

/// For a query q and `n = out.len()` vectors stored row-major in `rows` (len n*dim), write l2_sqr(q, row_i) into out[i].
pub(crate) fn l2_sqr_batch(q: &[f32], rows: &[f32], dim: usize, out: &mut [f32]) {
    check_batch(q, rows, dim, out);
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU supports avx2 and fma; shapes checked above.
        return unsafe { avx2::batch::<true>(q, rows, out) };
    }
    portable::batch::<true>(q, rows, out)
}

/// Same with inner products.
pub(crate) fn dot_batch(q: &[f32], rows: &[f32], dim: usize, out: &mut [f32]) {
    check_batch(q, rows, dim, out);
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: as in `l2_sqr_batch`.
        return unsafe { avx2::batch::<false>(q, rows, out) };
    }
    portable::batch::<false>(q, rows, out)
}

/// How compressed rows store a dimension (see `vector::codes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CodeWidth {
    /// One unsigned byte.
    U8,
    /// A little-endian IEEE float16.
    F16,
}

impl CodeWidth {
    /// Bytes per dimension.
    pub(crate) fn bytes(self) -> usize {
        match self {
            CodeWidth::U8 => 1,
            CodeWidth::F16 => 2,
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[inline]
fn has_avx2_fma_f16c() -> bool {
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| has_avx2_fma() && is_x86_feature_detected!("f16c"))
}

/// For weights `w` (one per dimension) and `n = out.len()` rows of codes, row-major in `codes`
/// (`n · dim · width.bytes()` bytes), writes `Σ_j w[j] · code(row i, j)` into `out[i]`.
pub(crate) fn codes_dot_batch(width: CodeWidth, w: &[f32], codes: &[u8], out: &mut [f32]) {
    assert!(!w.is_empty(), "dim must be >= 1");
    assert_eq!(codes.len(), w.len() * width.bytes() * out.len(), "codes length != dim * width * out.len()");
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma_f16c() {
        // SAFETY: the CPU supports avx2, fma and f16c; shapes checked above.
        return unsafe {
            match width {
                CodeWidth::U8 => avx2::codes_dot_batch::<false>(w, codes, out),
                CodeWidth::F16 => avx2::codes_dot_batch::<true>(w, codes, out),
            }
        };
    }
    match width {
        CodeWidth::U8 => portable::codes_dot_batch::<false>(w, codes, out),
        CodeWidth::F16 => portable::codes_dot_batch::<true>(w, codes, out),
    }
}

/// A query's weights over 8-bit codes as 16-bit integers and one scale: a row's dot product
/// is then an exact integer sum, which AVX2 takes 16 dimensions per multiply-add instruction
/// (`vpmaddwd`) where the float path converts and multiplies 8; and, being exact, it is the
/// same on every CPU and in every order of summation. The rounding of the weights is far
/// below the codes' own step (the largest weight keeps 12+ bits; BENCHMARKS.md, "Integer
/// scan of 8-bit codes").
pub(crate) struct IntWeights {
    w: Vec<i16>,
    /// The weights of a row's last 16 codes, zero where the full 16-lane chunks already
    /// count them (the AVX2 tail reads the row's last 16 codes; `dim % 16 != 0`, dim ≥ 16).
    tail: [i16; 16],
    /// `1 / scale`: the integer sum times this is the dot product.
    unscale: f32,
}

impl IntWeights {
    /// Below this many steps of the largest weight the float kernel is kept (only very long
    /// vectors, over ~2,000 dimensions, can get there).
    const MIN_STEPS: f32 = 4096.0;

    /// `w` as integers, scaled so no weight leaves `i16` and no row's sum (codes ≤ 255, any
    /// order of partial sums) leaves `i32`; `None` if that scale would keep less than 12
    /// bits of the largest weight.
    pub(crate) fn new(w: &[f32]) -> Option<IntWeights> {
        if !w.iter().all(|x| x.is_finite()) {
            return None;
        }
        let largest = w.iter().fold(0f32, |m, x| m.max(x.abs()));
        let total: f64 = w.iter().map(|x| x.abs() as f64).sum();
        // Each weight rounds by at most 0.5, so `255 · (scale · total + dim / 2)` bounds
        // every partial sum.
        let room = (i32::MAX as f64 / 255.0 - w.len() as f64 / 2.0 - 1.0).max(0.0);
        let scale =
            if largest == 0.0 { 1.0 } else { (32767.0 / largest as f64).min(room / total.max(f64::MIN_POSITIVE)) };
        if largest > 0.0 && ((scale * largest as f64) as f32) < Self::MIN_STEPS {
            return None;
        }
        let q: Vec<i16> = w.iter().map(|&x| (x as f64 * scale).round() as i16).collect();
        let mut tail = [0i16; 16];
        let rem = q.len() % 16;
        if rem > 0 && q.len() >= 16 {
            tail[16 - rem..].copy_from_slice(&q[q.len() - rem..]);
        }
        Some(IntWeights { w: q, tail, unscale: (1.0 / scale) as f32 })
    }

    pub(crate) fn dim(&self) -> usize {
        self.w.len()
    }
}

/// [`codes_dot_batch`] for 8-bit codes with integer weights: `out[i] = (Σ_j w[j] ·
/// code(row i, j)) · unscale`, the sum exact in `i32`, so every path gives the same bits.
pub(crate) fn int_codes_dot_batch(w: &IntWeights, codes: &[u8], out: &mut [f32]) {
    assert!(w.dim() > 0, "dim must be >= 1");
    assert_eq!(codes.len(), w.dim() * out.len(), "codes length != dim * out.len()");
    #[cfg(target_arch = "x86_64")]
    if has_avx512() {
        // SAFETY: the CPU supports avx512f, bw, vl and vnni; shapes checked above.
        return unsafe { avx512::int_codes_dot_batch(&w.w, w.unscale, codes, out) };
    }
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU supports avx2; shapes checked above.
        return unsafe { avx2::int_codes_dot_batch(&w.w, &w.tail, w.unscale, codes, out) };
    }
    portable::int_codes_dot_batch(&w.w, w.unscale, codes, out)
}

/// Product-quantized rows: for a look-up table of `m × 256` values (`table[s·256 + k]`) and
/// `n = out.len()` codes of `m` bytes, row-major in `codes`, writes `Σ_s table[s·256 +
/// code(row i, s)]` into `out[i]`. Portable code only: FAISS too scans 8-bit PQ codes with
/// scalar look-ups (AVX2 gathers are not faster than loads on the CPUs we measure on).
pub(crate) fn pq_dot_batch(table: &[f32], codes: &[u8], out: &mut [f32]) {
    let (tables, rest) = table.as_chunks::<256>();
    assert!(rest.is_empty() && !tables.is_empty(), "the table must be m x 256 values, m >= 1");
    assert_eq!(codes.len(), tables.len() * out.len(), "codes length != m * out.len()");
    portable::pq_dot_batch(tables, codes, out)
}

fn check_batch(q: &[f32], rows: &[f32], dim: usize, out: &[f32]) {
    assert!(dim > 0, "dim must be >= 1");
    assert_eq!(q.len(), dim, "query length != dim");
    assert_eq!(rows.len(), dim * out.len(), "rows length != dim * out.len()");
}

/// Centroids regrouped into panels of 16, dimension-major inside a panel, so the assignment
/// kernel streams each panel contiguously. Padding slots get an infinite norm and never win.
pub(crate) struct CentroidPanels {
    dim: usize,
    k: usize,
    data: Vec<f32>,
    norms: Vec<f32>,
}

impl CentroidPanels {
    /// `centroids`: k*dim row-major, k >= 1.
    pub(crate) fn new(centroids: &[f32], dim: usize) -> Self {
        assert!(dim > 0 && !centroids.is_empty() && centroids.len().is_multiple_of(dim));
        Self::from_rows(centroids.chunks_exact(dim), dim, false)
    }

    /// The panels of `rows` (each `dim` long, at least one), scaled to unit length when
    /// `unit` (cosine ranks by direction), written straight into place.
    pub(crate) fn from_rows<'a>(rows: impl ExactSizeIterator<Item = &'a [f32]>, dim: usize, unit: bool) -> Self {
        let k = rows.len();
        assert!(dim > 0 && k > 0);
        let panels = k.div_ceil(NR);
        let mut data = vec![0.0; panels * dim * NR];
        let mut norms = vec![f32::INFINITY; panels * NR];
        for (c, row) in rows.enumerate() {
            assert_eq!(row.len(), dim, "row length != dim");
            let (p, lane) = (c / NR, c % NR);
            let panel = &mut data[p * dim * NR..(p + 1) * dim * NR];
            if unit {
                let scale = 1.0 / norm_sqr(row).sqrt();
                for (j, &v) in row.iter().enumerate() {
                    panel[j * NR + lane] = v * scale;
                }
                norms[c] = (0..dim).map(|j| panel[j * NR + lane] * panel[j * NR + lane]).sum();
            } else {
                for (j, &v) in row.iter().enumerate() {
                    panel[j * NR + lane] = v;
                }
                norms[c] = norm_sqr(row);
            }
        }
        Self { dim, k, data, norms }
    }

    pub(crate) fn dim(&self) -> usize {
        self.dim
    }

    pub(crate) fn len(&self) -> usize {
        self.k
    }

    fn panels(&self) -> usize {
        self.norms.len() / NR
    }

    /// Centroids rounded up to whole panels: the row length of [`centroid_scores`]'s output,
    /// whose padding entries are +∞.
    pub(crate) fn padded_len(&self) -> usize {
        self.norms.len()
    }

    /// Heap bytes of the panels.
    pub(crate) fn heap_bytes(&self) -> usize {
        (self.data.capacity() + self.norms.capacity()) * size_of::<f32>()
    }
}

/// For every row of `points`, `‖c‖² − 2·x·c` against every centroid (the nearest has the
/// lowest; it is the squared distance less `‖x‖²`) into `out`, one row of
/// `centroids.padded_len()` scores per point. A point's scores are the same whatever the other
/// rows (so a query probes the same lists alone or in a batch); float rounding may order
/// near-ties differently from exact L2 distances.
pub(crate) fn centroid_scores(points: &[f32], centroids: &CentroidPanels, out: &mut [f32]) {
    let n = points.len() / centroids.dim;
    assert_eq!(points.len(), n * centroids.dim, "points length is not a multiple of dim");
    assert_eq!(out.len(), n * centroids.padded_len(), "out length != rows * padded_len");
    #[cfg(target_arch = "x86_64")]
    if has_avx512() {
        // SAFETY: the CPU supports avx512f; shapes checked above.
        return unsafe { avx512::scores(points, centroids, out) };
    }
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU supports avx2 and fma; shapes checked above.
        return unsafe { avx2::scores(points, centroids, out) };
    }
    portable::scores(points, centroids, out)
}

/// Index of the nearest centroid for every row of `points` (ties go to the lower index).
/// Ranks by ‖c‖² − 2·x·c like FAISS's GEMM path, so on near-ties the winner may differ from
/// exact L2 by float rounding; callers wanting the distance recompute it with [`l2_sqr`].
pub(crate) fn nearest_centroids(points: &[f32], centroids: &CentroidPanels, out: &mut [u32]) {
    assert_eq!(points.len(), out.len() * centroids.dim, "points length != dim * out.len()");
    #[cfg(target_arch = "x86_64")]
    if has_avx512() {
        // SAFETY: the CPU supports avx512f; shapes checked above.
        return unsafe { avx512::nearest(points, centroids, out) };
    }
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

mod portable;

#[cfg(target_arch = "x86_64")]
mod avx2;

#[cfg(target_arch = "x86_64")]
mod avx512;

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
                    // A row scores the same alone as inside an 8-row block.
                    for (i, r) in rows.chunks_exact(dim).enumerate() {
                        let mut one = [0f32];
                        ip(&q, r, &mut one);
                        assert_eq!(one[0].to_bits(), out[i].to_bits(), "dim {dim} row {i} of {n}");
                    }
                }
            }
        }
    }

    /// A row of codes and its values, for the code kernels' reference.
    fn code_rows(seed: &mut u64, width: CodeWidth, n: usize, dim: usize) -> (Vec<u8>, Vec<f64>) {
        let vals = rng_vec(seed, n * dim);
        let mut codes = Vec::new();
        let mut exact = Vec::new();
        for v in vals {
            match width {
                CodeWidth::U8 => {
                    let c = ((v + 1.0) * 127.5) as u8;
                    codes.push(c);
                    exact.push(c as f64);
                }
                CodeWidth::F16 => {
                    let h = half::f16::from_f32(v * 100.0);
                    codes.extend_from_slice(&h.to_bits().to_le_bytes());
                    exact.push(h.to_f32() as f64);
                }
            }
        }
        (codes, exact)
    }

    #[test]
    fn pq_kernel_sums_the_looked_up_entries_at_every_position() {
        let mut s = 11;
        for m in [1, 2, 3, 4, 5, 8, 25, 48, 97] {
            let table = rng_vec(&mut s, m * 256);
            for n in [0, 1, 3, 9] {
                let codes: Vec<u8> = rng_vec(&mut s, n * m).iter().map(|x| ((x + 1.0) * 127.9) as u8).collect();
                let mut got = vec![f32::NAN; n];
                pq_dot_batch(&table, &codes, &mut got);
                for i in 0..n {
                    let want: f64 = (0..m).map(|j| table[j * 256 + codes[i * m + j] as usize] as f64).sum();
                    close(got[i], want, m as f64);
                    let mut one = [0f32];
                    pq_dot_batch(&table, &codes[i * m..(i + 1) * m], &mut one);
                    assert_eq!(one[0].to_bits(), got[i].to_bits(), "m {m} row {i} of {n}");
                }
            }
        }
    }

    #[test]
    fn code_kernels_match_f64_reference_at_every_position() {
        let mut s = 3;
        for width in [CodeWidth::U8, CodeWidth::F16] {
            for dim in dims() {
                for n in [0, 1, 7, 8, 9, 17] {
                    let w = rng_vec(&mut s, dim);
                    let (codes, exact) = code_rows(&mut s, width, n, dim);
                    let mut fast = vec![f32::NAN; n];
                    codes_dot_batch(width, &w, &codes, &mut fast);
                    let mut slow = vec![f32::NAN; n];
                    match width {
                        CodeWidth::U8 => portable::codes_dot_batch::<false>(&w, &codes, &mut slow),
                        CodeWidth::F16 => portable::codes_dot_batch::<true>(&w, &codes, &mut slow),
                    }
                    for i in 0..n {
                        let want: f64 = (0..dim).map(|j| w[j] as f64 * exact[i * dim + j]).sum();
                        let scale = dim as f64 * if width == CodeWidth::U8 { 255.0 } else { 100.0 };
                        close(fast[i], want, scale);
                        close(slow[i], want, scale);
                    }
                    // A row scores the same alone as inside a block (tail rows are padded).
                    let row = dim * width.bytes();
                    for i in 0..n {
                        let mut one = [0f32];
                        codes_dot_batch(width, &w, &codes[i * row..(i + 1) * row], &mut one);
                        assert_eq!(one[0].to_bits(), fast[i].to_bits(), "{width:?} dim {dim} row {i} of {n}");
                    }
                }
            }
        }
    }

    /// Each weight is off by at most half a step, times a code of at most 255; then the
    /// sum's rounding to f32.
    fn int_error_bound(ints: &IntWeights, value: f64) -> f64 {
        0.5 * ints.unscale as f64 * 255.0 * ints.dim() as f64 + 1e-6 * value.abs()
    }

    #[test]
    fn int_code_kernel_is_exact_and_the_same_on_every_path() {
        let mut s = 5;
        for dim in dims() {
            for n in [0, 1, 7, 8, 9, 17] {
                let w = rng_vec(&mut s, dim);
                let (codes, _) = code_rows(&mut s, CodeWidth::U8, n, dim);
                let ints = IntWeights::new(&w).expect("short vectors keep integer weights");
                let mut fast = vec![f32::NAN; n];
                int_codes_dot_batch(&ints, &codes, &mut fast);
                let mut slow = vec![f32::NAN; n];
                portable::int_codes_dot_batch(&ints.w, ints.unscale, &codes, &mut slow);
                let mut float = vec![f32::NAN; n];
                codes_dot_batch(CodeWidth::U8, &w, &codes, &mut float);
                for i in 0..n {
                    let row = &codes[i * dim..(i + 1) * dim];
                    let exact: i64 = row.iter().zip(&ints.w).map(|(&c, &x)| c as i64 * x as i64).sum();
                    let want = exact as i32 as f32 * ints.unscale;
                    assert_eq!(fast[i].to_bits(), want.to_bits(), "dim {dim} row {i} of {n}");
                    assert_eq!(slow[i].to_bits(), want.to_bits(), "dim {dim} row {i} of {n}");
                    // The integers stand for the float weights within their rounding.
                    let reference: f64 = row.iter().zip(&w).map(|(&c, &x)| c as f64 * x as f64).sum();
                    assert!(
                        (fast[i] as f64 - reference).abs() <= int_error_bound(&ints, reference),
                        "dim {dim} row {i}"
                    );
                    close(float[i], reference, 255.0 * dim as f64);
                    let mut one = [0f32];
                    int_codes_dot_batch(&ints, row, &mut one);
                    assert_eq!(one[0].to_bits(), want.to_bits(), "dim {dim} row {i} alone");
                }
            }
        }
    }

    #[test]
    fn int_weights_never_overflow_and_give_up_when_too_coarse() {
        // The worst case for the sums: every weight at its largest, every code 255.
        for dim in [16, 384, 2048] {
            let w = vec![-0.75f32; dim];
            let ints = IntWeights::new(&w).expect("up to 2,048 dimensions always fit");
            let codes = vec![255u8; 9 * dim];
            let mut out = vec![0f32; 9];
            int_codes_dot_batch(&ints, &codes, &mut out);
            let want = -0.75 * 255.0 * dim as f64;
            for o in out {
                assert!((o as f64 - want).abs() <= int_error_bound(&ints, want), "dim {dim}: {o} vs {want}");
            }
        }
        // 65,536 equal weights would keep only 128 steps: the float kernel is used instead.
        assert!(IntWeights::new(&vec![1.0f32; 65_536]).is_none());
        // One large weight among small ones keeps its 15 bits.
        let mut w = vec![1e-3f32; 65_536];
        w[7] = 1.0;
        assert!(IntWeights::new(&w).is_some());
        assert!(IntWeights::new(&[0.0; 5]).is_some_and(|i| i.w.iter().all(|&x| x == 0)));
        assert!(IntWeights::new(&[1.0, f32::NAN]).is_none());
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
    fn centroid_scores_match_the_reference_and_do_not_depend_on_the_batch() {
        let mut s = 11;
        for dim in [1, 7, 50, 64, 384] {
            let k = 37;
            let cents = rng_vec(&mut s, k * dim);
            let panels = CentroidPanels::new(&cents, dim);
            let n = 13;
            let points = rng_vec(&mut s, n * dim);
            let stride = panels.padded_len();
            let mut all = vec![f32::NAN; n * stride];
            centroid_scores(&points, &panels, &mut all);
            let mut slow = vec![f32::NAN; n * stride];
            portable::scores(&points, &panels, &mut slow);
            for r in 0..n {
                let x = &points[r * dim..(r + 1) * dim];
                let mut one = vec![f32::NAN; stride];
                centroid_scores(x, &panels, &mut one);
                for l in 0..stride {
                    let got = all[r * stride + l];
                    assert_eq!(got.to_bits(), one[l].to_bits(), "dim {dim} row {r} centroid {l}: alone vs batch");
                    if l >= k {
                        assert_eq!(got, f32::INFINITY, "padding");
                        continue;
                    }
                    let c = &cents[l * dim..(l + 1) * dim];
                    let want = ref_dot(c, c) - 2.0 * ref_dot(x, c);
                    close(got, want, dim as f64);
                    close(slow[r * stride + l], want, dim as f64);
                }
            }
        }
    }

    /// Whether this CPU runs both x86 paths, so they can be compared (`false` prints why).
    #[cfg(target_arch = "x86_64")]
    fn both_x86_paths() -> bool {
        let both = Level::detected() == Level::Avx512;
        if !both {
            eprintln!("this CPU has no AVX-512 (F, BW, VL, VNNI): only the AVX2 kernels run here");
        }
        both
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn avx512_assignment_and_scores_give_the_avx2_bits() {
        if !both_x86_paths() {
            return;
        }
        let mut s = 17;
        // Partial panels, odd panel counts (remainders of every step width), several cache
        // chunks (768-d), and every tile height with its remainders.
        for (dim, k) in
            [(1, 1), (3, 17), (7, 33), (16, 48), (50, 1024), (50, 130), (64, 70), (130, 40), (384, 100), (768, 70)]
        {
            let cents = rng_vec(&mut s, k * dim);
            let panels = CentroidPanels::new(&cents, dim);
            let stride = panels.padded_len();
            for n in [1, 2, 3, 5, 8, 11, 12, 13, 25, 37] {
                let points = rng_vec(&mut s, n * dim);
                let (mut wide, mut narrow) = (vec![u32::MAX; n], vec![u32::MAX - 1; n]);
                // SAFETY: the CPU has both (checked above); shapes as the dispatchers check.
                unsafe {
                    avx512::nearest(&points, &panels, &mut wide);
                    avx2::nearest(&points, &panels, &mut narrow);
                }
                assert_eq!(wide, narrow, "dim {dim} k {k} rows {n}: nearest");
                check_nearest(&points, &cents, dim, &wide);
                let (mut wide, mut narrow) = (vec![f32::NAN; n * stride], vec![0.5; n * stride]);
                // SAFETY: as above.
                unsafe {
                    avx512::scores(&points, &panels, &mut wide);
                    avx2::scores(&points, &panels, &mut narrow);
                }
                for (l, (a, b)) in wide.iter().zip(&narrow).enumerate() {
                    assert_eq!(a.to_bits(), b.to_bits(), "dim {dim} k {k} rows {n}: score {l}");
                }
            }
        }
        // Ties between lanes, panels and steps go to the lowest index on both paths: 40 equal
        // centroids (3 panels) and one far away.
        let mut cents = [1.0f32, 0.0].repeat(40);
        cents.extend([5.0, 5.0]);
        let panels = CentroidPanels::new(&cents, 2);
        let points = [1.0, 0.0].repeat(13);
        let mut ids = vec![9u32; 13];
        // SAFETY: as above.
        unsafe { avx512::nearest(&points, &panels, &mut ids) };
        assert_eq!(ids, vec![0; 13]);
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn avx512_integer_scan_is_exact_at_every_dimension_and_position() {
        if !both_x86_paths() {
            return;
        }
        let mut s = 23;
        for dim in (1..=70).chain([96, 100, 384, 1000]) {
            for n in [0, 1, 7, 8, 9, 17] {
                let w = rng_vec(&mut s, dim);
                let (codes, _) = code_rows(&mut s, CodeWidth::U8, n, dim);
                let ints = IntWeights::new(&w).expect("short vectors keep integer weights");
                let mut wide = vec![f32::NAN; n];
                // SAFETY: the CPU has AVX-512 F, BW, VL and VNNI (checked above).
                unsafe { avx512::int_codes_dot_batch(&ints.w, ints.unscale, &codes, &mut wide) };
                for (i, row) in codes.chunks_exact(dim).enumerate() {
                    let exact: i64 = row.iter().zip(&ints.w).map(|(&c, &x)| c as i64 * x as i64).sum();
                    let want = exact as i32 as f32 * ints.unscale;
                    assert_eq!(wide[i].to_bits(), want.to_bits(), "dim {dim} row {i} of {n}");
                }
            }
        }
        // The largest sums the weights allow: every code 255.
        for dim in [33, 2048] {
            let ints = IntWeights::new(&vec![-0.75f32; dim]).unwrap();
            let codes = vec![255u8; 9 * dim];
            let mut out = vec![0f32; 9];
            // SAFETY: as above.
            unsafe { avx512::int_codes_dot_batch(&ints.w, ints.unscale, &codes, &mut out) };
            let exact = (255 * ints.w[0] as i64 * dim as i64) as f32 * ints.unscale;
            assert!(out.iter().all(|o| o.to_bits() == exact.to_bits()), "dim {dim}");
        }
    }

    #[test]
    fn the_environment_caps_the_level_and_nothing_else_does() {
        assert_eq!(Level::cap(Some("portable")), Level::Portable);
        assert_eq!(Level::cap(Some(" AVX2 ")), Level::Avx2);
        for other in [None, Some(""), Some("avx512"), Some("sse4")] {
            assert_eq!(Level::cap(other), Level::Avx512, "{other:?}");
        }
        assert!(Level::current() <= Level::cap(std::env::var("CIPHERVEC_SIMD").ok().as_deref()));
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
