//! Compressed codes of the vectors in the inverted lists, and the index types that choose
//! them: a trained [`Codec`] turns each vector into a short code (one byte or one float16 per
//! dimension), a query is prepared once per codec ([`Prepared`]), and a [`CodeScanner`]
//! scores a list's codes with one kernel call. Scores from codes are approximations: the
//! IVF search re-ranks the best `rerank × k` of them exactly (`vector::ivf`).

mod fp16;
mod scanner;
mod sq8;

use rayon::prelude::*;

pub(crate) use scanner::CodeScanner;

use crate::vector::kernels::{self, CodeWidth};

/// How an index stores the vectors its lists scan. The default is [`IndexType::IvfSq8`]: at
/// every `nProbes` its recall equalled IVF-Flat's on glove50 and a 384-d set, at 1.5–1.8× the
/// queries per second, for a quarter more memory (BENCHMARKS.md, "Index types").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IndexType {
    /// Full `f32` vectors, scanned exactly (FAISS's IndexIVFFlat): the least memory.
    IvfFlat,
    /// One byte per dimension, on per-dimension ranges trained with the centroids (FAISS's
    /// IndexIVFScalarQuantizer with QT_8bit): a quarter of the bytes to scan.
    #[default]
    IvfSq8,
    /// One IEEE float16 per dimension (QT_fp16); half the bytes, nearly exact.
    IvfFp16,
}

impl IndexType {
    /// The stored form (config byte).
    pub(crate) fn to_byte(self) -> u8 {
        match self {
            IndexType::IvfFlat => 0,
            IndexType::IvfSq8 => 1,
            IndexType::IvfFp16 => 2,
        }
    }

    pub(crate) fn from_byte(b: u8) -> Option<IndexType> {
        Some(match b {
            0 => IndexType::IvfFlat,
            1 => IndexType::IvfSq8,
            2 => IndexType::IvfFp16,
            _ => return None,
        })
    }

    /// Candidates re-ranked exactly per result when a query does not say
    /// (BENCHMARKS.md, "Index types"); 1 for the exact flat type.
    pub fn default_rerank(self) -> usize {
        match self {
            IndexType::IvfFlat => 1,
            IndexType::IvfSq8 => 2,
            IndexType::IvfFp16 => 2,
        }
    }
}

/// What an index's inverted lists keep in memory once it is trained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Resident {
    /// The `f32` vectors (and, for a type with codes, the codes beside them): every result's
    /// distance is exact, and `get` reads vectors from memory.
    #[default]
    Vectors,
    /// Only the codes: a quarter (8-bit) or half (float16) of the vectors' bytes. Queries
    /// rank and score by the codes, so distances are those of the decoded vectors (within a
    /// code step per dimension); full vectors stay sealed in the store, and `get` (or any
    /// `include: ['vector']`) decrypts them from there. Needs an index type with codes.
    Codes,
}

impl Resident {
    /// The stored form (config byte).
    pub(crate) fn to_byte(self) -> u8 {
        match self {
            Resident::Vectors => 0,
            Resident::Codes => 1,
        }
    }

    pub(crate) fn from_byte(b: u8) -> Option<Resident> {
        Some(match b {
            0 => Resident::Vectors,
            1 => Resident::Codes,
            _ => return None,
        })
    }
}

/// A trained code book: how vectors become codes and back.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Codec {
    Sq8(sq8::Sq8),
    Fp16(fp16::Fp16),
}

/// A query prepared for one codec: the dot product with a stored vector is
/// `bias + Σ_j weights[j] · code[j]`.
pub(crate) struct Prepared {
    pub(crate) weights: Vec<f32>,
    pub(crate) bias: f32,
}

impl Codec {
    /// The codec of `index_type` trained on `n` vectors of `dim` values (`vector(i)` is the
    /// i-th), in parallel on the current pool; `None` for the flat type.
    pub(crate) fn train<'a>(
        index_type: IndexType,
        dim: usize,
        n: usize,
        vector: &(dyn Fn(usize) -> &'a [f32] + Sync),
    ) -> Option<Codec> {
        match index_type {
            IndexType::IvfFlat => None,
            IndexType::IvfSq8 => {
                let (min, max) = ranges(dim, n, vector);
                Some(Codec::Sq8(sq8::Sq8::new(min, max)))
            }
            IndexType::IvfFp16 => {
                let (min, max) = ranges(dim, n, vector);
                let largest = min.iter().chain(&max).fold(0f32, |m, x| m.max(x.abs()));
                Some(Codec::Fp16(fp16::Fp16::new(largest)))
            }
        }
    }

    /// The index type this codec belongs to.
    pub(crate) fn index_type(&self) -> IndexType {
        match self {
            Codec::Sq8(_) => IndexType::IvfSq8,
            Codec::Fp16(_) => IndexType::IvfFp16,
        }
    }

    pub(crate) fn width(&self) -> CodeWidth {
        match self {
            Codec::Sq8(_) => CodeWidth::U8,
            Codec::Fp16(_) => CodeWidth::F16,
        }
    }

    /// Appends the code of `v` to `out`; returns the L2 norm of the vector the code decodes
    /// to (what the scanner divides by under cosine, and squares under L2).
    pub(crate) fn encode(&self, v: &[f32], out: &mut Vec<u8>) -> f32 {
        let start = out.len();
        match self {
            Codec::Sq8(c) => c.encode(v, out),
            Codec::Fp16(c) => c.encode(v, out),
        }
        kernels::norm_sqr(&self.decode(&out[start..])).sqrt()
    }

    /// The vector a code stands for.
    pub(crate) fn decode(&self, code: &[u8]) -> Vec<f32> {
        match self {
            Codec::Sq8(c) => c.decode(code),
            Codec::Fp16(c) => c.decode(code),
        }
    }

    /// `query` prepared for scanning this codec's codes.
    pub(crate) fn prepare(&self, query: &[f32]) -> Prepared {
        match self {
            Codec::Sq8(c) => c.prepare(query),
            Codec::Fp16(c) => c.prepare(query),
        }
    }

    /// The trained parameters, for sealing: a tag and `f32` values.
    pub(crate) fn to_parts(&self) -> (u8, Vec<f32>) {
        match self {
            Codec::Sq8(c) => (IndexType::IvfSq8.to_byte(), c.to_parts()),
            Codec::Fp16(c) => (IndexType::IvfFp16.to_byte(), c.to_parts()),
        }
    }

    /// The codec of `dim` dimensions sealed as [`Codec::to_parts`]; `None` if the parts do
    /// not describe one.
    pub(crate) fn from_parts(tag: u8, dim: usize, values: &[f32]) -> Option<Codec> {
        match IndexType::from_byte(tag)? {
            IndexType::IvfFlat => None,
            IndexType::IvfSq8 => sq8::Sq8::from_parts(dim, values).map(Codec::Sq8),
            IndexType::IvfFp16 => fp16::Fp16::from_parts(values).map(Codec::Fp16),
        }
    }

    /// Heap bytes of the trained parameters.
    pub(crate) fn heap_bytes(&self) -> usize {
        match self {
            Codec::Sq8(c) => c.heap_bytes(),
            Codec::Fp16(_) => 0,
        }
    }
}

/// Per-dimension minimum and maximum over `n` vectors (zeros when `n` is 0).
fn ranges<'a>(dim: usize, n: usize, vector: &(dyn Fn(usize) -> &'a [f32] + Sync)) -> (Vec<f32>, Vec<f32>) {
    if n == 0 {
        return (vec![0.0; dim], vec![0.0; dim]);
    }
    let start = || (vec![f32::INFINITY; dim], vec![f32::NEG_INFINITY; dim]);
    (0..n)
        .into_par_iter()
        .fold(start, |(mut lo, mut hi), i| {
            for ((l, h), &x) in lo.iter_mut().zip(hi.iter_mut()).zip(vector(i)) {
                *l = l.min(x);
                *h = h.max(x);
            }
            (lo, hi)
        })
        .reduce(start, |(mut lo, mut hi), (l2, h2)| {
            for (a, b) in lo.iter_mut().zip(l2) {
                *a = a.min(b);
            }
            for (a, b) in hi.iter_mut().zip(h2) {
                *a = a.max(b);
            }
            (lo, hi)
        })
}

#[cfg(test)]
mod tests;
