//! Kernels in portable Rust, written so LLVM can auto-vectorise them for the baseline target:
//! the fallback where AVX2 and FMA are missing, and the reference the AVX2 paths are tested against.

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
pub(super) fn pair<const L2: bool>(a: &[f32], b: &[f32]) -> f32 {
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

pub(super) fn batch<const L2: bool>(q: &[f32], rows: &[f32], out: &mut [f32]) {
    for (o, r) in out.iter_mut().zip(rows.chunks_exact(q.len())) {
        *o = pair::<L2>(q, r);
    }
}

pub(super) fn nearest(points: &[f32], c: &CentroidPanels, out: &mut [u32]) {
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

/// The value of code `j` of a row: an 8-bit code or a little-endian float16.
#[inline(always)]
fn code<const F16: bool>(row: &[u8], j: usize) -> f32 {
    if F16 {
        half::f16::from_bits(u16::from_le_bytes([row[2 * j], row[2 * j + 1]])).to_f32()
    } else {
        row[j] as f32
    }
}

/// `out[i] = Σ_j w[j] · code(row i, j)`, eight partial sums per row.
pub(super) fn codes_dot_batch<const F16: bool>(w: &[f32], codes: &[u8], out: &mut [f32]) {
    let dim = w.len();
    let row_bytes = if F16 { 2 * dim } else { dim };
    for (o, row) in out.iter_mut().zip(codes.chunks_exact(row_bytes)) {
        let mut acc = [0.0f32; 8];
        let full = dim / 8 * 8;
        for c in (0..full).step_by(8) {
            for l in 0..8 {
                acc[l] += w[c + l] * code::<F16>(row, c + l);
            }
        }
        let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
        for (j, &wj) in w.iter().enumerate().skip(full) {
            s += wj * code::<F16>(row, j);
        }
        *o = s;
    }
}

/// `out[i] = (Σ_j w[j] · row_i[j]) · unscale` with the sum in `i32` (exact).
pub(super) fn int_codes_dot_batch(w: &[i16], unscale: f32, codes: &[u8], out: &mut [f32]) {
    for (o, row) in out.iter_mut().zip(codes.chunks_exact(w.len())) {
        let s: i32 = row.iter().zip(w).map(|(&c, &x)| c as i32 * x as i32).sum();
        *o = s as f32 * unscale;
    }
}

/// [`nearest`]'s sums for every row and centroid, stored: `out[r · stride + l] = ‖c_l‖² − 2·x_r·c_l`.
pub(super) fn scores(points: &[f32], c: &CentroidPanels, out: &mut [f32]) {
    let dim = c.dim;
    let stride = c.panels() * NR;
    for (x, o) in points.chunks_exact(dim).zip(out.chunks_exact_mut(stride)) {
        for p in 0..c.panels() {
            let panel = &c.data[p * dim * NR..(p + 1) * dim * NR];
            let mut acc = [0.0f32; NR];
            for (&xj, cj) in x.iter().zip(panel.as_chunks::<NR>().0) {
                for l in 0..NR {
                    acc[l] += xj * cj[l];
                }
            }
            for (l, &a) in acc.iter().enumerate() {
                o[p * NR + l] = c.norms[p * NR + l] - 2.0 * a;
            }
        }
    }
}

/// See [`super::pq_dot_batch`]. Four partial sums break the chain of dependent additions
/// (the look-ups are independent); each row sums in the same order wherever it sits.
pub(super) fn pq_dot_batch(tables: &[[f32; 256]], codes: &[u8], out: &mut [f32]) {
    let m = tables.len();
    for (o, row) in out.iter_mut().zip(codes.chunks_exact(m)) {
        let mut acc = [0f32; 4];
        let (quads, tail) = row.as_chunks::<4>();
        for (q, t) in quads.iter().zip(tables.chunks_exact(4)) {
            for l in 0..4 {
                acc[l] += t[l][q[l] as usize];
            }
        }
        let mut s = (acc[0] + acc[2]) + (acc[1] + acc[3]);
        for (&c, t) in tail.iter().zip(&tables[quads.len() * 4..]) {
            s += t[c as usize];
        }
        *o = s;
    }
}
