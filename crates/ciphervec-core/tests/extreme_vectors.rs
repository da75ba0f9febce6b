//! Vectors at the edges of what float32 can score: the ones accepted always give finite,
//! in-range distances and complete results (searched exactly, through IVF lists, after
//! training); the ones beyond are rejected up front and change nothing.

mod common;

use std::sync::atomic::AtomicBool;

use ciphervec_core::{Include, Metric, NewItem, Search, TrainParams};
use ciphervec_core::{MAX_NORM_SQR, MIN_COSINE_NORM_SQR};
use common::{client, item, Rng};

const DIM: usize = 8;
const IDS: Include = Include { distance: true, metadata: false, contents: false, vector: false };

fn search(k: usize, n_probes: Option<usize>) -> Search<'static> {
    Search { k, n_probes, rerank: None, filter: None, include: IDS }
}

/// Random directions scaled to squared lengths spread over the accepted range of `metric`,
/// from its smallest to its largest (both ends included).
fn extremes(metric: Metric, n: usize, rng: &mut Rng) -> Vec<Vec<f32>> {
    let (low, high) = match metric {
        Metric::Cosine => (MIN_COSINE_NORM_SQR * 1.01, MAX_NORM_SQR * 0.99),
        _ => (1e-60, MAX_NORM_SQR * 0.99),
    };
    (0..n)
        .map(|i| {
            let v = rng.vector(DIM);
            let len: f64 = v.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
            // Log-uniform between the bounds; the first and last items sit on them.
            let t = i as f64 / (n - 1) as f64;
            let target = (low.ln() + t * (high.ln() - low.ln())).exp().sqrt();
            v.iter().map(|&x| (f64::from(x) / len * target) as f32).collect()
        })
        .collect()
}

fn assert_sane(metric: Metric, hits: &[ciphervec_core::ItemView], expected: usize, what: &str) {
    assert_eq!(hits.len(), expected, "{metric:?} {what}: every item is found");
    for h in hits {
        let d = h.distance.unwrap();
        assert!(d.is_finite(), "{metric:?} {what}: distance {d} of {}", h.id);
        assert!(d >= 0.0, "{metric:?} {what}: distance {d} of {}", h.id);
        if metric == Metric::Cosine {
            assert!(d <= 2.0, "{metric:?} {what}: cosine distance {d} of {}", h.id);
        }
    }
    assert!(hits.windows(2).all(|w| w[0].distance <= w[1].distance), "{metric:?} {what}: ordered");
}

#[test]
fn accepted_extremes_give_finite_complete_results_exact_trained_and_after_training() {
    for metric in [Metric::Euclidean, Metric::SquaredEuclidean, Metric::Cosine] {
        let (_, client, key) = client();
        let index = client.create_index("x", &key, None, metric).unwrap();
        let mut rng = Rng(11);
        let data = extremes(metric, 64, &mut rng);
        index.upsert(data.iter().enumerate().map(|(i, v)| item(&i.to_string(), v.clone())).collect()).unwrap();
        let n = data.len();
        for q in data.iter().step_by(5) {
            assert_sane(metric, &index.query(q, &search(n, None)).unwrap(), n, "exact");
        }
        let report = index
            .train(
                &TrainParams { n_lists: Some(4), max_iters: Some(20), ..Default::default() },
                &AtomicBool::new(false),
                &|_| {},
            )
            .unwrap();
        assert!(report.inertia.is_finite(), "{metric:?}: inertia {}", report.inertia);
        for (i, q) in data.iter().enumerate().step_by(5) {
            let hits = index.query(q, &search(n, Some(4))).unwrap();
            assert_sane(metric, &hits, n, "every list probed");
            // Its own vector is at distance 0 (cosine: up to rounding), so it ranks first or
            // ties with another item that close.
            let tie = if metric == Metric::Cosine { 1e-6 } else { 0.0 };
            let near = |h: &&ciphervec_core::ItemView| h.distance.unwrap() <= tie;
            assert!(hits.iter().take_while(near).any(|h| h.id == i.to_string()), "{metric:?}: item {i} finds itself");
        }
    }
}

#[test]
fn vectors_beyond_float32_scoring_are_rejected_and_change_nothing() {
    let cases: [(Metric, Vec<f32>); 5] = [
        (Metric::Euclidean, vec![1e20; DIM]),
        (Metric::SquaredEuclidean, vec![3e19; DIM]),
        (Metric::Cosine, vec![1e20; DIM]),
        (Metric::Cosine, vec![1e-30; DIM]),
        (Metric::Cosine, vec![0.0; DIM]),
    ];
    for (metric, bad) in cases {
        let (_, client, key) = client();
        let index = client.create_index("r", &key, None, metric).unwrap();
        let mut rng = Rng(5);
        let good: Vec<NewItem> = (0..50).map(|i| item(&i.to_string(), rng.vector(DIM))).collect();
        index.upsert(good).unwrap();
        let mut batch = vec![item("ok", rng.vector(DIM))];
        batch.push(item("bad", bad.clone()));
        let err = index.upsert(batch).unwrap_err();
        assert_eq!(err.code(), "ERR_INVALID_VECTOR", "{metric:?} {bad:?}");
        assert!(err.to_string().contains("'bad'"), "the message names the item: {err}");
        assert_eq!(index.count().unwrap(), 50, "nothing of the batch was written");
        assert_eq!(index.query(&bad, &search(10, None)).unwrap_err().code(), "ERR_INVALID_VECTOR");
        assert_sane(metric, &index.query(&rng.vector(DIM), &search(10, None)).unwrap(), 10, "after the rejection");
    }
}
