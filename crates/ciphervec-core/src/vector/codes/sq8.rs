//! 8-bit scalar quantization: each dimension's trained range `[min, max]` is cut into 255
//! equal steps and a value is stored as the nearest step (values outside are clamped).
//! The values are either the vector's own or, for codes *of residuals*, its difference from
//! its list's centroid, which spans a narrower range, so the same 255 steps are finer. The
//! ranges of residuals leave out the most extreme 1 in ~33,000 values per side
//! ([`ranges::CLAMPED_SHARE`](super::ranges::CLAMPED_SHARE)).

use crate::vector::codes::Prepared;
use crate::vector::kernels::IntWeights;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sq8 {
    min: Vec<f32>,
    /// `(max − min) / 255` per dimension; 0 for a dimension with one value.
    step: Vec<f32>,
    /// Codes are of `v − base` (the list's centroid) rather than of `v`.
    of_residuals: bool,
}

impl Sq8 {
    pub(crate) fn new(min: Vec<f32>, max: Vec<f32>, of_residuals: bool) -> Sq8 {
        let step = min.iter().zip(&max).map(|(&lo, &hi)| ((hi - lo) / 255.0).max(0.0)).collect();
        Sq8 { min, step, of_residuals }
    }

    pub(crate) fn of_residuals(&self) -> bool {
        self.of_residuals
    }

    /// Appends the code of `v` (less `base` when of residuals: then `base` is required).
    pub(crate) fn encode(&self, v: &[f32], base: Option<&[f32]>, out: &mut Vec<u8>) {
        let quantize = |x: f32, lo: f32, step: f32| {
            if step > 0.0 {
                ((x - lo) / step).round().clamp(0.0, 255.0) as u8
            } else {
                0
            }
        };
        let ranges = self.min.iter().zip(&self.step);
        match self.base(base) {
            Some(b) => out.extend(v.iter().zip(b).zip(ranges).map(|((&x, &c), (&lo, &s))| quantize(x - c, lo, s))),
            None => out.extend(v.iter().zip(ranges).map(|(&x, (&lo, &s))| quantize(x, lo, s))),
        }
    }

    /// The vector `code` stands for (`base` as in [`Sq8::encode`]).
    pub(crate) fn decode(&self, code: &[u8], base: Option<&[f32]>) -> Vec<f32> {
        let mut v: Vec<f32> =
            code.iter().zip(&self.min).zip(&self.step).map(|((&c, &lo), &step)| lo + step * c as f32).collect();
        if let Some(b) = self.base(base) {
            for (x, c) in v.iter_mut().zip(b) {
                *x += c;
            }
        }
        v
    }

    fn base<'b>(&self, base: Option<&'b [f32]>) -> Option<&'b [f32]> {
        self.of_residuals.then(|| base.expect("a residual code needs its list's centroid"))
    }

    /// `q · decode(c) = Σ q_j·min_j + Σ (q_j·step_j)·c_j` (plus `q · base` for residuals,
    /// which the scanner adds per list).
    pub(crate) fn prepare(&self, q: &[f32]) -> Prepared {
        let weights: Vec<f32> = q.iter().zip(&self.step).map(|(x, s)| x * s).collect();
        Prepared { ints: IntWeights::new(&weights), weights, bias: q.iter().zip(&self.min).map(|(x, m)| x * m).sum() }
    }

    /// `min ‖ step` (whether they are of residuals is the codec's tag).
    pub(crate) fn to_parts(&self) -> Vec<f32> {
        self.min.iter().chain(&self.step).copied().collect()
    }

    pub(crate) fn from_parts(dim: usize, values: &[f32], of_residuals: bool) -> Option<Sq8> {
        if values.len() != 2 * dim || values.iter().any(|x| !x.is_finite()) || values[dim..].iter().any(|&s| s < 0.0) {
            return None;
        }
        Some(Sq8 { min: values[..dim].to_vec(), step: values[dim..].to_vec(), of_residuals })
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        (self.min.capacity() + self.step.capacity()) * size_of::<f32>()
    }
}
