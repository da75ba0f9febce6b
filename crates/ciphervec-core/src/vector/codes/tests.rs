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

fn trained(index_type: IndexType, data: &[Vec<f32>]) -> Codec {
    Codec::train(index_type, data[0].len(), data.len(), &|i| &data[i][..]).expect("a coded type")
}

#[test]
fn flat_has_no_codec_and_types_round_trip_their_byte() {
    assert!(Codec::train(IndexType::IvfFlat, 2, 1, &|_| &[1.0, 2.0][..]).is_none());
    for t in [IndexType::IvfFlat, IndexType::IvfSq8, IndexType::IvfFp16] {
        assert_eq!(IndexType::from_byte(t.to_byte()), Some(t));
    }
    assert_eq!(IndexType::from_byte(9), None);
}

#[test]
fn codes_decode_within_half_a_step_and_clamp_outside_the_trained_ranges() {
    let data = rows(500, 13, 1);
    let sq8 = trained(IndexType::IvfSq8, &data);
    let fp16 = trained(IndexType::IvfFp16, &data);
    for v in &data {
        let mut code = Vec::new();
        let norm = sq8.encode(v, &mut code);
        assert_eq!(code.len(), 13);
        let back = sq8.decode(&code);
        for (j, (&x, &y)) in v.iter().zip(&back).enumerate() {
            // Dimension j spans at most 1 + j; a step is 1/255 of it.
            assert!((x - y).abs() <= (1.0 + j as f32) / 255.0 * 0.5 + 1e-5, "sq8 dim {j}: {x} → {y}");
        }
        assert!((norm - crate::vector::kernels::norm_sqr(&back).sqrt()).abs() < 1e-5);
        let mut code = Vec::new();
        fp16.encode(v, &mut code);
        assert_eq!(code.len(), 26);
        for (&x, &y) in v.iter().zip(&fp16.decode(&code)) {
            assert!((x - y).abs() <= x.abs() / 1024.0 + 1e-6, "fp16: {x} → {y}");
        }
    }
    // Far outside every range: clamped to the range's ends, never wrapped or infinite.
    let far = vec![1e30f32; 13];
    for codec in [&sq8, &fp16] {
        let mut code = Vec::new();
        let norm = codec.encode(&far, &mut code);
        assert!(norm.is_finite());
        assert!(codec.decode(&code).iter().all(|x| x.is_finite() && *x > 0.0));
    }
}

#[test]
fn code_scores_are_the_distances_to_the_decoded_vectors() {
    let data = rows(37, 50, 2);
    let q = rows(1, 50, 3).remove(0);
    for index_type in [IndexType::IvfSq8, IndexType::IvfFp16] {
        let codec = trained(index_type, &data);
        let mut codes = Vec::new();
        let norms: Vec<f32> = data.iter().map(|v| codec.encode(v, &mut codes)).collect();
        let decoded: Vec<f32> = codes.chunks(50 * codec.width().bytes()).flat_map(|c| codec.decode(c)).collect();
        let query = Query::new(&q);
        let prepared = codec.prepare(&q);
        for metric in [Metric::SquaredEuclidean, Metric::Cosine] {
            let mut got = vec![0f32; data.len()];
            CodeScanner::new(metric, &codec, &query, &prepared, &codes, &norms).score(0, &mut got);
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
    for index_type in [IndexType::IvfSq8, IndexType::IvfFp16] {
        let codec = trained(index_type, &data);
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
