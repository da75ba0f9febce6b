//! Filtered queries keep their recall at every selectivity, trained or not.

mod common;

use std::collections::HashSet;
use std::sync::atomic::AtomicBool;

use ciphervec_core::Filter;
use ciphervec_core::{Include, Metric, NewItem, Search, TrainParams};
use common::{client, Rng};
use serde_json::json;

const IDS: Include = Include { distance: true, metadata: false, contents: false, vector: false };

#[test]
fn filtered_recall_stays_high_at_every_selectivity() {
    let (n, dim) = (50_000, 16);
    let mut rng = Rng(11);
    let centres: Vec<Vec<f32>> = (0..100).map(|_| rng.vector(dim)).collect();
    let data: Vec<Vec<f32>> =
        (0..n).map(|_| centres[rng.below(100)].iter().map(|x| x + 0.2 * rng.f32()).collect()).collect();
    let (_, client, key) = client();
    let index = client.create_index("f", &key, None, Metric::Euclidean).unwrap();
    // `bucket` is unrelated to the vectors: the hard case for IVF, whose nearest lists hold
    // few matches of a selective filter.
    let items: Vec<NewItem> = data
        .iter()
        .enumerate()
        .map(|(i, v)| NewItem {
            id: i.to_string(),
            vector: v.clone(),
            metadata: Some(json!({ "bucket": (i * 7919) % 2000 }).into()),
            contents: None,
        })
        .collect();
    index.upsert(items).unwrap();
    let queries: Vec<Vec<f32>> =
        (0..50).map(|_| centres[rng.below(100)].iter().map(|x| x + 0.2 * rng.f32()).collect()).collect();

    for trained in [false, true] {
        if trained {
            index.train(&TrainParams::default(), &AtomicBool::new(false), &|_| {}).unwrap();
        }
        for (below, selectivity) in [(1000, "50%"), (100, "5%"), (10, "0.5%"), (1, "0.05%")] {
            let filter = Filter::parse(&json!({ "bucket": { "$lt": below } })).unwrap();
            let matching: Vec<usize> = (0..n).filter(|i| (i * 7919) % 2000 < below).collect();
            let mut found = 0;
            for q in &queries {
                let mut exact: Vec<(f32, usize)> = matching
                    .iter()
                    .map(|&i| (data[i].iter().zip(q).map(|(a, b)| (a - b) * (a - b)).sum(), i))
                    .collect();
                exact.sort_by(|a, b| a.0.total_cmp(&b.0));
                let truth: HashSet<String> = exact.iter().take(10).map(|(_, i)| i.to_string()).collect();
                let search = Search { k: 10, n_probes: None, rerank: None, filter: Some(&filter), include: IDS };
                let got = index.query(q, &search).unwrap();
                assert_eq!(
                    got.len(),
                    10,
                    "{selectivity}: fewer than 10 results although {} items match",
                    matching.len()
                );
                assert!(
                    got.iter().all(|h| h.id.parse::<usize>().unwrap() * 7919 % 2000 < below),
                    "a result fails the filter"
                );
                found += got.iter().filter(|h| truth.contains(&h.id)).count();
            }
            let recall = found as f64 / (10 * queries.len()) as f64;
            assert!(recall >= 0.95, "trained={trained} selectivity {selectivity}: recall@10 {recall}");
            if !trained {
                assert_eq!(recall, 1.0, "untrained filtered search is exact");
            }
        }
    }
}

#[test]
fn a_filter_matching_fewer_than_k_returns_all_matches_and_metadata_queries_sort() {
    let (_, client, key) = client();
    let index = client.create_index("m", &key, None, Metric::Euclidean).unwrap();
    let items: Vec<NewItem> = (0..3000)
        .map(|i| NewItem {
            id: format!("id-{i:04}"),
            vector: vec![i as f32, (i % 17) as f32],
            metadata: (i % 3 != 0)
                .then(|| json!({ "n": i % 50, "tag": if i % 2 == 0 { "even" } else { "odd" } }).into()),
            contents: None,
        })
        .collect();
    index.upsert(items).unwrap();
    index
        .train(&TrainParams { n_lists: Some(64), ..TrainParams::default() }, &AtomicBool::new(false), &|_| {})
        .unwrap();
    let rare = Filter::parse(&json!({ "n": 7, "tag": "odd" })).unwrap();
    let search = Search { k: 100, n_probes: Some(1), rerank: None, filter: Some(&rare), include: IDS };
    let got = index.query(&[0.0, 0.0], &search).unwrap();
    let expected = (0..3000).filter(|i| i % 3 != 0 && i % 50 == 7 && i % 2 == 1).count();
    assert_eq!(got.len(), expected, "one probe, but every match is found");

    let ids = index.query_metadata(&rare, 1000, None, true).unwrap();
    assert_eq!(ids.len(), expected);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ordered by id by default");
    let by_n = index.query_metadata(&Filter::parse(&json!({ "tag": "even" })).unwrap(), 5, Some("n"), false).unwrap();
    assert_eq!(by_n.len(), 5);
    let n_of = |id: &str| id[3..].parse::<usize>().unwrap() % 50;
    assert!(by_n.iter().all(|id| n_of(id) == 48), "descending by n: {by_n:?}");
    let none = index
        .query_metadata(&Filter::parse(&json!({ "n": { "$exists": false } })).unwrap(), 10_000, None, true)
        .unwrap();
    assert_eq!(none.len(), 1000, "items without metadata have no field n");
}
