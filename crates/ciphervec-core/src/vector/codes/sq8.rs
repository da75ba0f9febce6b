//! 8-bit scalar quantization: each dimension's trained range `[min, max]` is cut into 255
//! equal steps and a value is stored as the nearest step (values outside are clamped).

use crate::vector::codes::Prepared;
use crate::vector::kernels::IntWeights;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sq8 {
    min: Vec<f32>,
    /// `(max − min) / 255` per dimension; 0 for a dimension with one value.
    step: Vec<f32>,
}

impl Sq8 {
    pub(crate) fn new(min: Vec<f32>, max: Vec<f32>) -> Sq8 {
        let step = min.iter().zip(&max).map(|(&lo, &hi)| ((hi - lo) / 255.0).max(0.0)).collect();
        Sq8 { min, step }
    }

    pub(crate) fn encode(&self, v: &[f32], out: &mut Vec<u8>) {
        out.extend(v.iter().zip(&self.min).zip(&self.step).map(|((&x, &lo), &step)| {
            if step > 0.0 {
                ((x - lo) / step).round().clamp(0.0, 255.0) as u8
            } else {
                0
            }
        }));
    }

    pub(crate) fn decode(&self, code: &[u8]) -> Vec<f32> {
        code.iter().zip(&self.min).zip(&self.step).map(|((&c, &lo), &step)| lo + step * c as f32).collect()
    }

    /// `q · decode(c) = Σ q_j·min_j + Σ (q_j·step_j)·c_j`.
    pub(crate) fn prepare(&self, q: &[f32]) -> Prepared {
        let weights: Vec<f32> = q.iter().zip(&self.step).map(|(x, s)| x * s).collect();
        Prepared { ints: IntWeights::new(&weights), weights, bias: q.iter().zip(&self.min).map(|(x, m)| x * m).sum() }
    }

    /// `min ‖ step`.
    pub(crate) fn to_parts(&self) -> Vec<f32> {
        self.min.iter().chain(&self.step).copied().collect()
    }

    pub(crate) fn from_parts(dim: usize, values: &[f32]) -> Option<Sq8> {
        if values.len() != 2 * dim || values.iter().any(|x| !x.is_finite()) || values[dim..].iter().any(|&s| s < 0.0) {
            return None;
        }
        Some(Sq8 { min: values[..dim].to_vec(), step: values[dim..].to_vec() })
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        (self.min.capacity() + self.step.capacity()) * size_of::<f32>()
    }
}
