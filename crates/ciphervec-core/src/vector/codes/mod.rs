//! Compressed codes of the vectors in the inverted lists, and the index types that choose
//! them: a trained [`Codec`] turns each vector into a short code (one byte or one float16 per
//! dimension, or one byte per sub-vector), a query is prepared once per codec ([`Prepared`]),
//! and a [`CodeScanner`] scores a list's codes with one kernel call. Scores from codes are
//! approximations: the IVF search re-ranks the best `rerank × k` of them exactly
//! (`vector::ivf`). A *residual* codec ([`Codec::is_residual`]: product quantization, and
//! 8-bit codes trained since codec tag 4) codes a vector's difference from its list's
//! centroid; the lists supply the centroid.
//!
//! Sealed code books carry a tag ([`Codec::to_parts`]): 1 is 8-bit codes of the vectors
//! themselves (what indexes trained before tag 4 existed hold, still read), 2 float16, 3
//! product quantization, 4 8-bit codes of residuals.

mod fp16;
mod pq;
mod ranges;
mod scanner;
mod sq8;

pub(crate) use scanner::CodeScanner;

use crate::vector::kernels::{self, CodeWidth};

/// How an index stores the vectors its lists scan. The default is [`IndexType::IvfSq8`]: at
/// every `nProbes` its recall equalled IVF-Flat's on glove50 and a 384-d set, at 1.2–1.6× the
/// speed of single queries and 1.2× in batches, for a quarter more memory (BENCHMARKS.md,
/// "Batches scan list by list").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IndexType {
    /// Full `f32` vectors, scanned exactly (FAISS's IndexIVFFlat): the least memory.
    IvfFlat,
    /// One byte per dimension of the vector's difference from its list's centroid, on
    /// per-dimension ranges trained with the centroids (FAISS's IndexIVFScalarQuantizer with
    /// QT_8bit, by residual): a quarter of the bytes to scan.
    #[default]
    IvfSq8,
    /// One IEEE float16 per dimension (QT_fp16); half the bytes, nearly exact.
    IvfFp16,
    /// Product quantization (FAISS's IndexIVFPQ, 8 bits per sub-vector): one byte per
    /// sub-vector of the residual from the list's centroid; the most compact codes.
    IvfPq(PqShape),
}

/// The shape of product-quantized codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PqShape {
    /// Sub-vectors per code (bytes per item; 1 ≤ it ≤ the dimension, any value: an uneven
    /// split is fine). `None`: one per two dimensions up to 64 dimensions, one per four above.
    pub sub_vectors: Option<u32>,
}

impl PqShape {
    /// Sub-vectors of a `dim`-dimensional index's codes.
    pub fn sub_vectors_for(self, dim: usize) -> usize {
        self.sub_vectors.map_or_else(|| pq::Pq::default_sub_vectors(dim), |m| m as usize)
    }
}

impl IndexType {
    /// The stored form (config byte).
    pub(crate) fn to_byte(self) -> u8 {
        match self {
            IndexType::IvfFlat => 0,
            IndexType::IvfSq8 => 1,
            IndexType::IvfFp16 => 2,
            IndexType::IvfPq(_) => 3,
        }
    }

    /// The type of a config byte (product quantization with the default shape: the config
    /// stores the shape after the byte).
    pub(crate) fn from_byte(b: u8) -> Option<IndexType> {
        Some(match b {
            0 => IndexType::IvfFlat,
            1 => IndexType::IvfSq8,
            2 => IndexType::IvfFp16,
            3 => IndexType::IvfPq(PqShape::default()),
            _ => return None,
        })
    }

    /// Whether this type codes the vectors (every type but IVF-Flat).
    pub fn has_codes(self) -> bool {
        self != IndexType::IvfFlat
    }

    /// Candidates re-ranked exactly per result when a query does not say
    /// (BENCHMARKS.md, "Index types"); 1 for the exact flat type.
    pub fn default_rerank(self) -> usize {
        match self {
            IndexType::IvfFlat => 1,
            IndexType::IvfSq8 => 2,
            IndexType::IvfFp16 => 2,
            IndexType::IvfPq(_) => 4,
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
    Pq(pq::Pq),
}

/// A query prepared for one codec: the dot product with a stored vector is
/// `bias + Σ_j weights[j] · code[j]` (product quantization: `bias + Σ_s weights[s·256 +
/// code[s]]`), plus the dot product with the list's centroid for a residual codec.
pub(crate) struct Prepared {
    pub(crate) weights: Vec<f32>,
    pub(crate) bias: f32,
    /// `weights` as integers, for 8-bit codes (see [`kernels::IntWeights`]); `None` for the
    /// other codecs, and where the integers would be too coarse.
    pub(crate) ints: Option<kernels::IntWeights>,
}

impl Codec {
    /// The codec of `index_type` trained on `n` vectors of `dim` values (`vector(i)` is the
    /// i-th, `centroid(i)` the centroid of its list, which a residual codec subtracts), in
    /// parallel on the current pool; `None` for the flat type. `seed` picks a residual
    /// codec's training sample.
    pub(crate) fn train<'a>(
        index_type: IndexType,
        dim: usize,
        n: usize,
        vector: &(dyn Fn(usize) -> &'a [f32] + Sync),
        centroid: &(dyn Fn(usize) -> &'a [f32] + Sync),
        seed: u64,
    ) -> Option<Codec> {
        match index_type {
            IndexType::IvfFlat => None,
            IndexType::IvfPq(shape) => {
                let residual = |i: usize, out: &mut [f32]| {
                    for ((o, &x), &c) in out.iter_mut().zip(vector(i)).zip(centroid(i)) {
                        *o = x - c;
                    }
                };
                Some(Codec::Pq(pq::Pq::train(dim, shape.sub_vectors_for(dim), n, &residual, seed)))
            }
            IndexType::IvfSq8 => {
                let residual = |i: usize, out: &mut [f32]| {
                    for ((o, &x), &c) in out.iter_mut().zip(vector(i)).zip(centroid(i)) {
                        *o = x - c;
                    }
                };
                let (min, max) = ranges::trimmed(dim, n, ranges::CLAMPED_SHARE, &residual);
                Some(Codec::Sq8(sq8::Sq8::new(min, max, true)))
            }
            IndexType::IvfFp16 => {
                let (min, max) = ranges::trimmed(dim, n, 0.0, &|i, out| out.copy_from_slice(vector(i)));
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
            Codec::Pq(c) => IndexType::IvfPq(PqShape { sub_vectors: Some(c.sub_vectors() as u32) }),
        }
    }

    /// Whether codes are of the difference from the list's centroid (`base` in
    /// [`Codec::encode`] and [`Codec::decode`]; the scanner adds `q · centroid`).
    pub(crate) fn is_residual(&self) -> bool {
        match self {
            Codec::Sq8(c) => c.of_residuals(),
            Codec::Fp16(_) => false,
            Codec::Pq(_) => true,
        }
    }

    /// Bytes of one code of a `dim`-dimensional vector.
    pub(crate) fn code_size(&self, dim: usize) -> usize {
        match self {
            Codec::Sq8(_) => dim,
            Codec::Fp16(_) => 2 * dim,
            Codec::Pq(c) => c.sub_vectors(),
        }
    }

    /// Writes `q · decode(code)` (less the bias and the centroid's share) for each of
    /// `out.len()` codes, row-major in `codes`.
    pub(crate) fn dot_batch(&self, prepared: &Prepared, codes: &[u8], out: &mut [f32]) {
        match self {
            Codec::Sq8(_) => match &prepared.ints {
                Some(ints) => kernels::int_codes_dot_batch(ints, codes, out),
                None => kernels::codes_dot_batch(CodeWidth::U8, &prepared.weights, codes, out),
            },
            Codec::Fp16(_) => kernels::codes_dot_batch(CodeWidth::F16, &prepared.weights, codes, out),
            Codec::Pq(_) => kernels::pq_dot_batch(&prepared.weights, codes, out),
        }
    }

    /// Appends the code of `v` to `out`; returns the L2 norm of the vector the code decodes
    /// to (what the scanner divides by under cosine, and squares under L2). `base` is the
    /// centroid of `v`'s list, which a residual codec needs (and the others ignore).
    pub(crate) fn encode(&self, v: &[f32], base: Option<&[f32]>, out: &mut Vec<u8>) -> f32 {
        let start = out.len();
        match self {
            Codec::Sq8(c) => c.encode(v, base, out),
            Codec::Fp16(c) => c.encode(v, out),
            Codec::Pq(c) => {
                let base = base.expect("a residual code needs its list's centroid");
                let r: Vec<f32> = v.iter().zip(base).map(|(x, c)| x - c).collect();
                c.encode(&r, out)
            }
        }
        kernels::norm_sqr(&self.decode(&out[start..], base)).sqrt()
    }

    /// The vector a code stands for (`base` as in [`Codec::encode`]).
    pub(crate) fn decode(&self, code: &[u8], base: Option<&[f32]>) -> Vec<f32> {
        match self {
            Codec::Sq8(c) => c.decode(code, base),
            Codec::Fp16(c) => c.decode(code),
            Codec::Pq(c) => {
                let mut v = c.decode(code);
                let base = base.expect("a residual code needs its list's centroid");
                for (x, b) in v.iter_mut().zip(base) {
                    *x += b;
                }
                v
            }
        }
    }

    /// `query` prepared for scanning this codec's codes.
    pub(crate) fn prepare(&self, query: &[f32]) -> Prepared {
        match self {
            Codec::Sq8(c) => c.prepare(query),
            Codec::Fp16(c) => c.prepare(query),
            Codec::Pq(c) => c.prepare(query),
        }
    }

    /// The trained parameters, for sealing: a tag (the index type's byte, or
    /// [`SQ8_OF_RESIDUALS`]) and `f32` values.
    pub(crate) fn to_parts(&self) -> (u8, Vec<f32>) {
        (
            match self {
                Codec::Sq8(c) if c.of_residuals() => SQ8_OF_RESIDUALS,
                _ => self.index_type().to_byte(),
            },
            match self {
                Codec::Sq8(c) => c.to_parts(),
                Codec::Fp16(c) => c.to_parts(),
                Codec::Pq(c) => c.to_parts(),
            },
        )
    }

    /// The codec of `dim` dimensions sealed as [`Codec::to_parts`]; `None` if the parts do
    /// not describe one.
    pub(crate) fn from_parts(tag: u8, dim: usize, values: &[f32]) -> Option<Codec> {
        if tag == SQ8_OF_RESIDUALS {
            return sq8::Sq8::from_parts(dim, values, true).map(Codec::Sq8);
        }
        match IndexType::from_byte(tag)? {
            IndexType::IvfFlat => None,
            IndexType::IvfSq8 => sq8::Sq8::from_parts(dim, values, false).map(Codec::Sq8),
            IndexType::IvfFp16 => fp16::Fp16::from_parts(values).map(Codec::Fp16),
            IndexType::IvfPq(_) => pq::Pq::from_parts(dim, values).map(Codec::Pq),
        }
    }

    /// Heap bytes of the trained parameters.
    pub(crate) fn heap_bytes(&self) -> usize {
        match self {
            Codec::Sq8(c) => c.heap_bytes(),
            Codec::Fp16(_) => 0,
            Codec::Pq(c) => c.heap_bytes(),
        }
    }
}

/// The codec tag of 8-bit codes of residuals. Tags 0–3 are the index types' bytes, and
/// tag 1 stays 8-bit codes of the vectors themselves, so indexes trained before residual
/// codes keep loading (and keep their codes).
pub(crate) const SQ8_OF_RESIDUALS: u8 = 4;

#[cfg(test)]
mod tests;
