//! Index semantics in the core: validation leaves state unchanged, exact search is exact,
//! concurrent writers and readers lose nothing.

mod common;

use std::sync::Arc;
use std::thread;

use ciphervec_core::{Client, Include, Metric, NewItem, Search};
use common::{client, item, Rng};

const IDS: Include = Include { distance: true, metadata: false, contents: false, vector: false };

fn top(k: usize, n_probes: Option<usize>) -> Search<'static> {
    Search { k, n_probes, rerank: None, filter: None, include: IDS }
}

#[test]
fn exhaustive_search_is_exact_for_every_metric() {
    for metric in [Metric::Euclidean, Metric::SquaredEuclidean, Metric::Cosine] {
        let (_, client, key) = client();
        let index = client.create_index("m", &key, None, metric).unwrap();
        let mut rng = Rng(3);
        let data: Vec<Vec<f32>> = (0..2000).map(|_| rng.vector(17)).collect();
        index.upsert(data.iter().enumerate().map(|(i, v)| item(&i.to_string(), v.clone())).collect()).unwrap();
        for _ in 0..10 {
            let q = rng.vector(17);
            let reference = |v: &[f32]| -> f64 {
                let (mut sq, mut dot, mut nq, mut nv) = (0f64, 0f64, 0f64, 0f64);
                for (a, b) in q.iter().zip(v) {
                    let (a, b) = (*a as f64, *b as f64);
                    sq += (a - b) * (a - b);
                    dot += a * b;
                    nq += a * a;
                    nv += b * b;
                }
                match metric {
                    Metric::Euclidean => sq.sqrt(),
                    Metric::SquaredEuclidean => sq,
                    Metric::Cosine => 1.0 - dot / (nq * nv).sqrt(),
                }
            };
            let mut expected: Vec<(f64, usize)> = data.iter().enumerate().map(|(i, v)| (reference(v), i)).collect();
            expected.sort_by(|a, b| a.0.total_cmp(&b.0));
            let got = index.query(&q, &top(10, None)).unwrap();
            let batch = index.query_batch(std::slice::from_ref(&q), &top(10, None)).unwrap().remove(0);
            assert_eq!(got, batch);
            for (g, e) in got.iter().zip(&expected) {
                assert_eq!(g.id, e.1.to_string(), "{metric:?}");
                assert!((g.distance.unwrap() as f64 - e.0).abs() < 1e-4, "{metric:?}");
            }
        }
    }
}

#[test]
fn a_rejected_batch_writes_nothing() {
    let (store, client, key) = client();
    let index = client.create_index("v", &key, None, Metric::Euclidean).unwrap();
    index.upsert(vec![item("keep", vec![1.0, 2.0])]).unwrap();
    let before = store.dump();
    let bad_batches = vec![
        vec![item("a", vec![1.0, 2.0]), item("b", vec![f32::NAN, 0.0])],
        vec![item("a", vec![1.0, 2.0, 3.0])],
        vec![item("a", vec![1.0, 2.0]), item("", vec![1.0, 2.0])],
        vec![NewItem { metadata: Some(serde_json::json!([1, 2]).into()), ..item("a", vec![1.0, 2.0]) }],
    ];
    for batch in bad_batches {
        assert!(index.upsert(batch).is_err());
        assert_eq!(store.dump(), before, "a rejected upsert changed the store");
        assert_eq!(index.count().unwrap(), 1);
    }
}

#[test]
fn concurrent_writers_and_readers_lose_nothing() {
    let (store, client, key) = client();
    let index = client.create_index("c", &key, Some(4), Metric::Euclidean).unwrap();
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let index = Arc::clone(&index);
            thread::spawn(move || {
                let mut rng = Rng(t + 1);
                for b in 0..20 {
                    let batch = (0..25).map(|i| item(&format!("t{t}-b{b}-{i}"), rng.vector(4))).collect();
                    index.upsert(batch).unwrap();
                    index.query(&rng.vector(4), &top(5, None)).unwrap();
                    if b % 4 == 3 {
                        let ids: Vec<String> = (0..25).map(|i| format!("t{t}-b{}-{i}", b - 1)).collect();
                        assert_eq!(index.delete(&ids).unwrap(), 25);
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let expected = 8 * (20 - 5) * 25;
    assert_eq!(index.count().unwrap(), expected);
    // What is stored matches what is in memory: reload from the store and compare.
    drop(client);
    let reloaded = Client::new(store, 2).unwrap().load_index("c", &key).unwrap();
    let mut a = index.list_ids().unwrap();
    let mut b = reloaded.list_ids().unwrap();
    a.sort();
    b.sort();
    assert_eq!(a, b);
    assert_eq!(a.len(), expected);
    let all = Include { vector: true, ..IDS };
    assert_eq!(index.get(&a[..50], all).unwrap(), reloaded.get(&a[..50], all).unwrap());
}
