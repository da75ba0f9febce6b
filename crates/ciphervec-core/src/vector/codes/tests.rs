use super::*;
use crate::vector::scan::{FlatScanner, Query, Scanner};
use crate::vector::Metric;

fn rows(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            (0..dim)
                .map(|j| {
                    s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * (1.0 + j as f32)
                })
                .collect()
        })
        .collect()
}

/// Residual codecs are trained here against one centroid, the origin.
fn trained(index_type: IndexType, data: &[Vec<f32>]) -> Codec {
    let origin = vec![0f32; data[0].len()];
    Codec::train(index_type, data[0].len(), data.len(), &|i| &data[i][..], &|_| &origin[..], 7).expect("a coded type")
}

const PQ: IndexType = IndexType::IvfPq(PqShape { sub_vectors: None });

fn pq(m: u32) -> IndexType {
    IndexType::IvfPq(PqShape { sub_vectors: Some(m) })
}

#[test]
fn flat_has_no_codec_and_types_round_trip_their_byte() {
    assert!(Codec::train(IndexType::IvfFlat, 2, 1, &|_| &[1.0, 2.0][..], &|_| &[0.0, 0.0][..], 1).is_none());
    for t in [IndexType::IvfFlat, IndexType::IvfSq8, IndexType::IvfFp16, PQ] {
        assert_eq!(IndexType::from_byte(t.to_byte()), Some(t));
    }
    assert_eq!(IndexType::from_byte(9), None);
}

/// 8-bit codes of the vectors themselves, as indexes trained before codes of residuals hold
/// them (codec tag 1).
fn absolute_sq8(data: &[Vec<f32>]) -> Codec {
    let (min, max) = ranges::trimmed(data[0].len(), data.len(), 0.0, &|i, out| out.copy_from_slice(&data[i]));
    Codec::Sq8(sq8::Sq8::new(min, max, false))
}

#[test]
fn codes_decode_within_half_a_step_and_clamp_outside_the_trained_ranges() {
    let data = rows(500, 13, 1);
    let origin = [0f32; 13];
    let sq8 = trained(IndexType::IvfSq8, &data);
    assert!(sq8.is_residual(), "new 8-bit codes are of residuals");
    let fp16 = trained(IndexType::IvfFp16, &data);
    let absolute = absolute_sq8(&data);
    assert!(!absolute.is_residual());
    for v in &data {
        for (codec, base) in [(&sq8, Some(&origin[..])), (&absolute, None)] {
            let mut code = Vec::new();
            let norm = codec.encode(v, base, &mut code);
            assert_eq!(code.len(), 13);
            let back = codec.decode(&code, base);
            for (j, (&x, &y)) in v.iter().zip(&back).enumerate() {
                // Dimension j spans at most 1 + j; a step is 1/255 of it.
                assert!((x - y).abs() <= (1.0 + j as f32) / 255.0 * 0.5 + 1e-5, "sq8 dim {j}: {x} → {y}");
            }
            assert!((norm - crate::vector::kernels::norm_sqr(&back).sqrt()).abs() < 1e-5);
        }
        let mut code = Vec::new();
        fp16.encode(v, None, &mut code);
        assert_eq!(code.len(), 26);
        for (&x, &y) in v.iter().zip(&fp16.decode(&code, None)) {
            assert!((x - y).abs() <= x.abs() / 1024.0 + 1e-6, "fp16: {x} → {y}");
        }
    }
    // Far outside every range: clamped to the range's ends, never wrapped or infinite.
    let far = vec![1e30f32; 13];
    for (codec, base) in [(&sq8, Some(&origin[..])), (&absolute, None), (&fp16, None)] {
        let mut code = Vec::new();
        let norm = codec.encode(&far, base, &mut code);
        assert!(norm.is_finite());
        assert!(codec.decode(&code, base).iter().all(|x| x.is_finite() && *x > 0.0));
    }
}

/// Codes of residuals are trained on each vector's difference from its own list's centroid:
/// for clustered data those differences span far less than the vectors, so the 255 steps are
/// finer and the decoded vectors closer.
#[test]
fn codes_of_residuals_are_finer_than_codes_of_clustered_vectors() {
    let dim = 8;
    let noise = rows(400, dim, 11);
    // Four clusters 100 apart, each point within 0.5·(1 + j) of its centre.
    let centres: Vec<Vec<f32>> = (0..4).map(|c| (0..dim).map(|j| 100.0 * c as f32 + j as f32).collect()).collect();
    let data: Vec<Vec<f32>> =
        noise.iter().enumerate().map(|(i, n)| n.iter().zip(&centres[i % 4]).map(|(x, c)| x + c).collect()).collect();
    let residual =
        Codec::train(IndexType::IvfSq8, dim, data.len(), &|i| &data[i][..], &|i| &centres[i % 4][..], 3).unwrap();
    let absolute = absolute_sq8(&data);
    let error = |codec: &Codec| -> f64 {
        let mut total = 0f64;
        for (i, v) in data.iter().enumerate() {
            let base = codec.is_residual().then_some(&centres[i % 4][..]);
            let mut code = Vec::new();
            codec.encode(v, base, &mut code);
            total += v.iter().zip(codec.decode(&code, base)).map(|(a, b)| ((a - b) * (a - b)) as f64).sum::<f64>();
        }
        total
    };
    let (fine, coarse) = (error(&residual), error(&absolute));
    // The residuals span about 1/300 of the vectors' range: steps ~300× finer, squared
    // error ~10⁵× smaller; 100× is a floor no absolute code can reach.
    assert!(fine * 100.0 < coarse, "residual {fine} vs absolute {coarse}");
}

#[test]
fn code_scores_are_the_distances_to_the_decoded_vectors() {
    let data = rows(37, 50, 2);
    let q = rows(1, 50, 3).remove(0);
    // A residual codec's codes are of the differences from `base`; the scanner is told
    // `q · base`.
    let base: Vec<f32> = (0..50).map(|j| (j as f32 * 0.3).sin()).collect();
    for codec in [IndexType::IvfSq8, IndexType::IvfFp16, PQ, pq(7)]
        .map(|t| trained(t, &data))
        .into_iter()
        .chain([absolute_sq8(&data)])
    {
        let index_type = (codec.index_type(), codec.is_residual());
        let base = codec.is_residual().then_some(&base[..]);
        let mut codes = Vec::new();
        let norms: Vec<f32> = data.iter().map(|v| codec.encode(v, base, &mut codes)).collect();
        let decoded: Vec<f32> = codes.chunks(codec.code_size(50)).flat_map(|c| codec.decode(c, base)).collect();
        let query = Query::new(&q);
        let prepared = codec.prepare(&q);
        let base_dot = base.map_or(0.0, |b| crate::vector::kernels::dot(&q, b));
        for metric in [Metric::SquaredEuclidean, Metric::Cosine] {
            let mut got = vec![0f32; data.len()];
            CodeScanner::new(metric, &codec, &query, &prepared, base_dot, &codes, &norms).score(0, &mut got);
            let mut want = vec![0f32; data.len()];
            FlatScanner::new(metric, &query, &decoded, &norms).score(0, &mut want);
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() <= 1e-3 * w.abs().max(1.0), "{index_type:?} {metric:?}: {g} vs {w}");
            }
        }
    }
}

#[test]
fn parts_round_trip_and_malformed_parts_are_refused() {
    let data = rows(50, 4, 4);
    let tags: Vec<u8> = [IndexType::IvfSq8, IndexType::IvfFp16, PQ].map(|t| trained(t, &data).to_parts().0).into();
    assert_eq!(tags, [SQ8_OF_RESIDUALS, 2, 3]);
    assert_eq!(absolute_sq8(&data).to_parts().0, 1, "the tag indexes trained before residual codes hold");
    for codec in [IndexType::IvfSq8, IndexType::IvfFp16, PQ, pq(3)]
        .map(|t| trained(t, &data))
        .into_iter()
        .chain([absolute_sq8(&data)])
    {
        let index_type = (codec.index_type(), codec.is_residual());
        let (tag, parts) = codec.to_parts();
        assert_eq!(Codec::from_parts(tag, 4, &parts), Some(codec.clone()));
        assert_eq!(Codec::from_parts(tag, 4, &parts[1..]), None, "{index_type:?}: one value short");
        let mut bad = parts.clone();
        bad[0] = f32::NAN;
        assert_eq!(Codec::from_parts(tag, 4, &bad), None, "{index_type:?}: NaN");
    }
    assert_eq!(Codec::from_parts(0, 4, &[]), None, "flat has no code book");
    assert_eq!(Codec::from_parts(77, 4, &[1.0]), None);
}

#[test]
fn any_dimension_splits_into_any_count_of_sub_vectors() {
    for (dim, m) in [(50, 12), (50, 25), (7, 7), (7, 1), (384, 48), (13, 5)] {
        let bounds = pq::split(dim, m);
        assert_eq!(bounds.len(), m + 1);
        assert_eq!((bounds[0], bounds[m]), (0, dim));
        let widths: Vec<usize> = bounds.windows(2).map(|w| w[1] - w[0]).collect();
        // As even as it gets: widths differ by at most one, longer ones first.
        assert!(widths.windows(2).all(|w| w[0] >= w[1] && w[0] - w[1] <= 1), "{dim}/{m}: {widths:?}");
    }
}

#[test]
fn product_codes_are_one_byte_per_sub_vector_and_pick_the_nearest_code_book_entry() {
    // 600 random points: a sub-space code book of 256 entries trained on them reproduces
    // them closely when sub-vectors are short.
    let data = rows(600, 50, 5);
    for m in [25, 12, 50] {
        let codec = trained(pq(m), &data);
        assert_eq!(codec.code_size(50), m as usize);
        let (mut err, mut total) = (0f64, 0f64);
        for v in &data {
            let mut code = Vec::new();
            codec.encode(v, Some(&[0.0; 50]), &mut code);
            assert_eq!(code.len(), m as usize);
            let back = codec.decode(&code, Some(&[0.0; 50]));
            err += v.iter().zip(&back).map(|(a, b)| ((a - b) * (a - b)) as f64).sum::<f64>();
            total += v.iter().map(|a| (a * a) as f64).sum::<f64>();
        }
        // Quantization error of a trained code book is a small part of the signal; coarser
        // splits lose more.
        let relative = err / total;
        assert!(relative < if m == 50 { 0.01 } else { 0.2 }, "pq {m}: relative error {relative}");
    }
    // The base is added back: codes of v from base b decode to about v.
    let codec = trained(pq(25), &data);
    let b: Vec<f32> = (0..50).map(|j| j as f32).collect();
    let shifted: Vec<f32> = data[3].iter().zip(&b).map(|(x, y)| x + y).collect();
    let mut code = Vec::new();
    codec.encode(&shifted, Some(&b), &mut code);
    let mut plain = Vec::new();
    codec.encode(&data[3], Some(&[0.0; 50]), &mut plain);
    assert_eq!(code, plain, "the same residual, the same code");
}
