//! Float16 codes: a value is scaled by one trained factor (so the largest magnitude seen in
//! training is 1.0, far from float16's overflow at 65,504 and its subnormals below 6.1e-5)
//! and rounded to the nearest IEEE float16.

use half::f16;

use crate::vector::codes::Prepared;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Fp16 {
    /// What a float16 value is multiplied by to give the stored value.
    scale: f32,
}

impl Fp16 {
    /// The codec for values of magnitude up to `largest`.
    pub(crate) fn new(largest: f32) -> Fp16 {
        Fp16 { scale: if largest > 0.0 && largest.is_finite() { largest } else { 1.0 } }
    }

    pub(crate) fn encode(&self, v: &[f32], out: &mut Vec<u8>) {
        let inv = 1.0 / self.scale;
        for &x in v {
            let h = f16::from_f32((x * inv).clamp(-f16::MAX.to_f32(), f16::MAX.to_f32()));
            out.extend_from_slice(&h.to_bits().to_le_bytes());
        }
    }

    pub(crate) fn decode(&self, code: &[u8]) -> Vec<f32> {
        code.chunks_exact(2).map(|b| f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32() * self.scale).collect()
    }

    /// `q · decode(c) = Σ (q_j·scale)·c_j`.
    pub(crate) fn prepare(&self, q: &[f32]) -> Prepared {
        Prepared { weights: q.iter().map(|x| x * self.scale).collect(), bias: 0.0, ints: None }
    }

    pub(crate) fn to_parts(&self) -> Vec<f32> {
        vec![self.scale]
    }

    pub(crate) fn from_parts(values: &[f32]) -> Option<Fp16> {
        match values {
            [scale] if scale.is_finite() && *scale > 0.0 => Some(Fp16 { scale: *scale }),
            _ => None,
        }
    }
}
