//! Filtered queries through the metadata index: whenever the index names few enough
//! candidates, the answer is the exact filtered top-k (the reference: every item's metadata
//! run through the filter, every match scored), before and after training, with one list
//! probed, and after overwrites, deletes and a reload.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use ciphervec_core::{Client, Filter, Include, Index, Meta, Metric, NewItem, Search, TrainParams};
use common::{client, Rng};
use serde_json::{json, Value};

const DIM: usize = 16;
const WITH_DISTANCE: Include = Include { distance: true, metadata: false, contents: false, vector: false };

/// Metadata with planned fields (tenant: a few large, many small; tags; nested; numbers of
/// both kinds; booleans) and unplanned ones (ranges, missing fields, nulls).
fn metadata(i: usize, round: u64, rng: &mut Rng) -> Value {
    let tenant = if rng.below(4) == 0 { format!("t{}", rng.below(200)) } else { format!("t{}", rng.below(3)) };
    let lang = ["en", "de", "fr"][i % 3];
    let mut m = json!({
        "tenant": tenant,
        "tags": (0..rng.below(3)).map(|_| format!("g{}", rng.below(30))).collect::<Vec<_>>(),
        "doc": { "lang": lang, "v": (i as u64 + round) % 7 },
        "score": (rng.below(100) as f64) / 4.0,
        "flag": rng.below(2) == 0,
    });
    if rng.below(5) == 0 {
        m["opt"] = json!(null);
    } else if rng.below(2) == 0 {
        m["opt"] = json!(rng.below(3));
    }
    m
}

fn filters() -> Vec<Value> {
    vec![
        json!({ "tenant": "t17" }),
        json!({ "tenant": { "$in": ["t5", "t150", "nobody"] } }),
        json!({ "tags": "g3" }),
        json!({ "tags": "g3", "doc.lang": "de" }),
        json!({ "doc.v": 3, "flag": true }),
        json!({ "doc.v": 3.0, "score": { "$gt": 10 } }),
        json!({ "$or": [{ "tenant": "t42" }, { "tags": "g7" }] }),
        json!({ "$and": [{ "tenant": "t9" }, { "opt": { "$ne": 1 } }] }),
        json!({ "tenant": "t1", "opt": 2 }),
        json!({ "tenant": { "$in": [] } }),
        json!({ "opt": 0, "tags": { "$nin": ["g1"] } }),
        json!({ "score": 12.5, "$or": [{ "flag": false }, { "doc.lang": "fr" }] }),
        json!({ "score": { "$gte": 3, "$lt": 4 } }),
        json!({ "score": { "$gt": 24 } }),
        json!({ "tenant": { "$gt": "t19", "$lte": "t2" } }),
        json!({ "tags": { "$lt": "g1" }, "flag": false }),
        json!({ "doc.v": { "$lte": 0 }, "doc.lang": "en" }),
    ]
}

/// The exact filtered top-k, by brute force over the items as the test knows them.
fn reference(items: &BTreeMap<String, (Vec<f32>, Value)>, filter: &Filter, q: &[f32], k: usize) -> Vec<(String, f32)> {
    let mut scored: Vec<(String, f32)> = items
        .iter()
        .filter(|(_, (_, m))| filter.matches(Some(&Meta::from(m))))
        .map(|(id, (v, _))| (id.clone(), v.iter().zip(q).map(|(a, b)| (a - b) * (a - b)).sum::<f32>()))
        .collect();
    scored.sort_by(|a, b| a.1.total_cmp(&b.1));
    scored.truncate(k);
    scored
}

fn check(index: &Index, items: &BTreeMap<String, (Vec<f32>, Value)>, rng: &mut Rng, when: &str) {
    let mut exact = 0;
    for f in filters() {
        let filter = Filter::parse(&f).unwrap();
        // One list probed: only the index's exact candidate scan finds every match.
        if !ciphervec_core::test_util::scans_filter_candidates(index, &filter, Some(1)) {
            continue;
        }
        exact += 1;
        // Single queries (and batches of one) score the candidates where they are stored; a
        // batch gathers them once into panels for all its queries (`vector::candidates`):
        // both are exact.
        let queries: Vec<Vec<f32>> = (0..3).map(|_| rng.vector(DIM)).collect();
        let s = Search { k: 10, n_probes: Some(1), rerank: None, filter: Some(&filter), include: WITH_DISTANCE };
        let batch = index.query_batch(&queries, &s).unwrap();
        for (q, batched) in queries.iter().zip(batch) {
            let want = reference(items, &filter, q, 10);
            let alone = index.query_batch(std::slice::from_ref(q), &s).unwrap().remove(0);
            for got in [index.query(q, &s).unwrap(), alone, batched] {
                let got: Vec<(String, f32)> = got.into_iter().map(|h| (h.id, h.distance.unwrap())).collect();
                assert_eq!(got.len(), want.len(), "{when}: {f}");
                for ((gi, gd), (wi, wd)) in got.iter().zip(&want) {
                    assert!((gd - wd).abs() <= 1e-4 * wd.max(1.0), "{when}: {f}: {gd} vs {wd}");
                    if (gd - wd).abs() > 1e-6 {
                        assert_eq!(gi, wi, "{when}: {f}");
                    }
                }
            }
        }
    }
    // The most selective filters take the candidate scan (at least 4 of the 17 here).
    assert!(exact >= 4, "{when}: only {exact} filters took the candidate scan");
}

fn upsert(index: &Arc<Index>, batch: &[(String, Vec<f32>, Value)]) {
    let items = batch
        .iter()
        .map(|(id, v, m)| NewItem { id: id.clone(), vector: v.clone(), metadata: Some(Meta::from(m)), contents: None })
        .collect();
    index.upsert(items).unwrap();
}

#[test]
fn selective_filters_get_the_exact_filtered_top_k_through_every_change() {
    let (store, client, key) = client();
    let index = client.create_index("f", &key, Some(DIM), Metric::SquaredEuclidean).unwrap();
    let mut rng = Rng(21);
    let mut items = BTreeMap::new();
    let batch: Vec<(String, Vec<f32>, Value)> =
        (0..6_000).map(|i| (format!("d{i}"), rng.vector(DIM), metadata(i, 0, &mut rng))).collect();
    upsert(&index, &batch);
    for (id, v, m) in batch {
        items.insert(id, (v, m));
    }
    check(&index, &items, &mut rng, "untrained");

    let params = TrainParams { n_lists: Some(64), seed: 3, ..TrainParams::default() };
    index.train(&params, &AtomicBool::new(false), &|_| {}).unwrap();
    check(&index, &items, &mut rng, "trained");

    // Overwrites change metadata (and vectors); deletes move the last items into the holes.
    let over: Vec<(String, Vec<f32>, Value)> =
        (0..6_000).step_by(5).map(|i| (format!("d{i}"), rng.vector(DIM), metadata(i, 1, &mut rng))).collect();
    upsert(&index, &over);
    for (id, v, m) in over {
        items.insert(id, (v, m));
    }
    let gone: Vec<String> = (0..6_000).step_by(7).map(|i| format!("d{i}")).collect();
    index.delete(&gone).unwrap();
    for id in &gone {
        items.remove(id);
    }
    check(&index, &items, &mut rng, "after overwrites and deletes");

    let reloaded = Client::new(store, 2).unwrap().load_index("f", &key).unwrap();
    check(&reloaded, &items, &mut rng, "reloaded");
    assert!(reloaded.memory().unwrap().metadata_index > 0);
}

/// `query_metadata_page` answers from the metadata index exactly what a scan of every item
/// gives, in id or field order, page by page (offset, or the afterId cursor), for planned and
/// unplanned filters alike; paging by cursor visits every match once.
#[test]
fn metadata_queries_page_through_every_match_in_order() {
    use ciphervec_core::MetadataPage;
    let (_, client, key) = client();
    let index = client.create_index("p", &key, Some(DIM), Metric::SquaredEuclidean).unwrap();
    let mut rng = Rng(8);
    let batch: Vec<(String, Vec<f32>, Value)> =
        (0..3_000).map(|i| (format!("d{i:05}"), rng.vector(DIM), metadata(i, 0, &mut rng))).collect();
    upsert(&index, &batch);
    let mut filters = filters();
    filters.push(json!({}));
    for f in filters {
        let filter = Filter::parse(&f).unwrap();
        let mut want: Vec<&(String, Vec<f32>, Value)> =
            batch.iter().filter(|(_, _, m)| filter.matches(Some(&Meta::from(m)))).collect();
        want.sort_by(|a, b| a.0.cmp(&b.0));
        let ids: Vec<String> = want.iter().map(|x| x.0.clone()).collect();
        for (offset, k) in [(0, 5), (3, 7), (ids.len().saturating_sub(2), 10), (ids.len() + 5, 3)] {
            let page = MetadataPage { offset, after_id: None };
            let got = index.query_metadata_page(&filter, k, None, true, &page).unwrap();
            assert_eq!(got, ids.iter().skip(offset).take(k).cloned().collect::<Vec<_>>(), "{f} offset {offset}");
        }
        // By cursor, 97 at a time: every match once, in order.
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = MetadataPage { offset: 0, after_id: after.clone() };
            let got = index.query_metadata_page(&filter, 97, None, true, &page).unwrap();
            if got.is_empty() {
                break;
            }
            after = got.last().cloned();
            seen.extend(got);
        }
        assert_eq!(seen, ids, "{f}: the cursor visits every match once");
        // Field order with an offset: the same as sorting the matches by that field, then id.
        let score = |m: &Value| m["score"].as_f64().unwrap();
        let mut by_score = want.clone();
        by_score.sort_by(|a, b| score(&b.2).total_cmp(&score(&a.2)).then_with(|| a.0.cmp(&b.0)));
        let page = MetadataPage { offset: 4, after_id: None };
        let got = index.query_metadata_page(&filter, 6, Some("score"), false, &page).unwrap();
        assert_eq!(got, by_score.iter().skip(4).take(6).map(|x| x.0.clone()).collect::<Vec<_>>(), "{f} by score");
    }
    let page = MetadataPage { offset: 0, after_id: Some("d1".into()) };
    let all = Filter::parse(&json!({})).unwrap();
    assert_eq!(
        index.query_metadata_page(&all, 5, Some("score"), true, &page).unwrap_err().code(),
        "ERR_INVALID_ARGUMENT"
    );
}

/// Paths left out of the metadata index (`unindexed`) still filter, item by item: every
/// query and metadata query answers as with a full index; a filter only on them is not
/// planned, an `$and` with an indexed part plans that part; the setting survives a reload.
#[test]
fn unindexed_paths_still_filter_exactly() {
    use ciphervec_core::{IndexSpec, MetadataPage};
    let (store, client, key) = client();
    let spec = IndexSpec {
        dimension: Some(DIM),
        metric: Metric::SquaredEuclidean,
        unindexed: vec!["tags".into(), "doc".into()],
        ..IndexSpec::default()
    };
    let index = client.create_index_with("u", &key, &spec).unwrap();
    let full = client.create_index("full", &key, Some(DIM), Metric::SquaredEuclidean).unwrap();
    let mut rng = Rng(4);
    let batch: Vec<(String, Vec<f32>, Value)> =
        (0..4_000).map(|i| (format!("d{i}"), rng.vector(DIM), metadata(i, 0, &mut rng))).collect();
    upsert(&index, &batch);
    upsert(&full, &batch);
    assert!(index.memory().unwrap().metadata_index < full.memory().unwrap().metadata_index);
    let reloaded = Client::new(store, 2).unwrap().load_index("u", &key).unwrap();
    let only_tags = Filter::parse(&json!({ "tags": "g3" })).unwrap();
    let nested = Filter::parse(&json!({ "doc.lang": "de", "doc.v": 3 })).unwrap();
    let mixed = Filter::parse(&json!({ "tenant": "t17", "tags": "g3" })).unwrap();
    for ix in [&index, &reloaded] {
        assert!(!ciphervec_core::test_util::scans_filter_candidates(ix, &only_tags, Some(1)));
        assert!(!ciphervec_core::test_util::scans_filter_candidates(ix, &nested, Some(1)));
        assert!(ciphervec_core::test_util::scans_filter_candidates(ix, &mixed, Some(1)), "the tenant part plans");
        for f in filters() {
            let filter = Filter::parse(&f).unwrap();
            let page = MetadataPage::default();
            assert_eq!(
                ix.query_metadata_page(&filter, 10_000, None, true, &page).unwrap(),
                full.query_metadata_page(&filter, 10_000, None, true, &page).unwrap(),
                "{f}"
            );
            let q = rng.vector(DIM);
            let s = Search { k: 10, n_probes: None, rerank: None, filter: Some(&filter), include: WITH_DISTANCE };
            let ids = |v: Vec<ciphervec_core::ItemView>| v.into_iter().map(|h| h.id).collect::<Vec<_>>();
            assert_eq!(ids(ix.query(&q, &s).unwrap()), ids(full.query(&q, &s).unwrap()), "{f}");
        }
    }
    for bad in [vec![String::new()], vec!["a..b".to_string()]] {
        let spec = IndexSpec { unindexed: bad, ..IndexSpec::default() };
        assert_eq!(client.create_index_with("bad", &key, &spec).err().map(|e| e.code()), Some("ERR_INVALID_ARGUMENT"));
    }
}

/// A batch on the list path whose filter the metadata index answers exactly tests
/// membership in the matches instead of running the filter: the same answers as single
/// queries (which run it) and, with every list probed, the exact filtered top-k.
#[test]
fn broad_exact_filters_in_a_batch_match_single_queries_and_the_reference() {
    let (_store, client, key) = client();
    let index = client.create_index("b", &key, Some(DIM), Metric::SquaredEuclidean).unwrap();
    let mut rng = Rng(5);
    let batch: Vec<(String, Vec<f32>, Value)> =
        (0..4_000).map(|i| (format!("d{i}"), rng.vector(DIM), metadata(i, 0, &mut rng))).collect();
    upsert(&index, &batch);
    let items: BTreeMap<String, (Vec<f32>, Value)> = batch.into_iter().map(|(id, v, m)| (id, (v, m))).collect();
    let params = TrainParams { n_lists: Some(16), seed: 3, ..TrainParams::default() };
    index.train(&params, &AtomicBool::new(false), &|_| {}).unwrap();
    let queries: Vec<Vec<f32>> = (0..12).map(|_| rng.vector(DIM)).collect();
    for f in [json!({ "flag": true }), json!({ "doc.lang": { "$in": ["en", "fr"] } }), json!({ "doc.v": { "$lt": 5 } })]
    {
        let filter = Filter::parse(&f).unwrap();
        for n_probes in [Some(2), Some(16)] {
            let s = Search { k: 10, n_probes, rerank: None, filter: Some(&filter), include: WITH_DISTANCE };
            assert!(!ciphervec_core::test_util::scans_filter_candidates(&index, &filter, n_probes), "{f}");
            let batched = index.query_batch(&queries, &s).unwrap();
            for (q, got) in queries.iter().zip(batched) {
                let single = index.query(q, &s).unwrap();
                let ids = |v: &[ciphervec_core::ItemView]| v.iter().map(|h| h.id.clone()).collect::<Vec<_>>();
                assert_eq!(ids(&got), ids(&single), "{f} at {n_probes:?}");
                if n_probes == Some(16) {
                    let want: Vec<String> = reference(&items, &filter, q, 10).into_iter().map(|(id, _)| id).collect();
                    assert_eq!(ids(&got), want, "{f}");
                }
            }
        }
    }
}
