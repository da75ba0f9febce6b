//! Index types with codes (IVF-SQ8, IVF-FP16, IVF-PQ): recall, exactness with re-rank, persistence,
//! writes after training, exact vectors from `get`, clamping, sealing and bad input.

mod common;

use std::collections::HashSet;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use ciphervec_core::{Client, Include, Index, IndexSpec, IndexType, Metric, NewItem, PqShape, Search, TrainParams};
use common::{client, clustered, item, Rng};

const PQ: IndexType = IndexType::IvfPq(PqShape { sub_vectors: None });
const CODED: [IndexType; 3] = [IndexType::IvfSq8, IndexType::IvfFp16, PQ];
const IDS: Include = Include { distance: true, metadata: false, contents: false, vector: false };

fn search(k: usize, n_probes: Option<usize>, rerank: Option<usize>) -> Search<'static> {
    Search { k, n_probes, rerank, filter: None, include: IDS }
}

fn create(client: &Client, key: &[u8; 32], name: &str, metric: Metric, index_type: IndexType) -> Arc<Index> {
    client
        .create_index_with(name, key, &IndexSpec { dimension: None, metric, index_type, ..IndexSpec::default() })
        .unwrap()
}

fn upsert(index: &Arc<Index>, data: &[Vec<f32>]) {
    index.upsert(data.iter().enumerate().map(|(i, v)| item(&i.to_string(), v.clone())).collect()).unwrap();
}

fn train(index: &Index, n_lists: usize) {
    let params = TrainParams { n_lists: Some(n_lists), ..TrainParams::default() };
    index.train(&params, &AtomicBool::new(false), &|_| {}).unwrap();
}

fn ids_and_distances(index: &Index, q: &[f32], s: &Search) -> Vec<(String, f32)> {
    index.query(q, s).unwrap().into_iter().map(|h| (h.id, h.distance.unwrap())).collect()
}

#[test]
fn each_coded_type_has_high_recall_on_defaults_and_is_exact_with_every_list_probed() {
    let data = clustered(50_000, 32, 200, 1);
    let queries: Vec<Vec<f32>> =
        clustered(100, 32, 200, 1).into_iter().map(|v| v.iter().map(|x| x + 0.01).collect()).collect();
    for metric in [Metric::Euclidean, Metric::Cosine] {
        let (_, client, key) = client();
        // The reference: brute force over the untrained flat index.
        let flat = create(&client, &key, "flat", metric, IndexType::IvfFlat);
        upsert(&flat, &data);
        let exact: Vec<Vec<(String, f32)>> =
            queries.iter().map(|q| ids_and_distances(&flat, q, &search(10, None, None))).collect();
        for index_type in CODED {
            let index = create(&client, &key, &format!("{index_type:?}"), metric, index_type);
            upsert(&index, &data);
            train(&index, 256);
            assert_eq!(index.index_type(), index_type);
            let mut found = 0;
            for (q, truth) in queries.iter().zip(&exact) {
                let got: HashSet<String> =
                    index.query(q, &search(10, None, None)).unwrap().into_iter().map(|h| h.id).collect();
                found += truth.iter().filter(|(id, _)| got.contains(id)).count();
            }
            let recall = found as f64 / (10 * queries.len()) as f64;
            assert!(recall >= 0.95, "{index_type:?} {metric:?}: recall@10 {recall} on defaults");
            // Every list probed, enough candidates re-ranked: the brute-force answer, distances
            // bit for bit (re-ranking scores vectors as the flat scan does).
            for (q, truth) in queries.iter().zip(&exact).take(20) {
                let got = ids_and_distances(&index, q, &search(10, Some(256), Some(50)));
                assert_eq!(&got, truth, "{index_type:?} {metric:?}");
            }
        }
    }
}

#[test]
fn a_reloaded_coded_index_answers_identically_and_writes_after_training_use_the_code_book() {
    let data = clustered(6_000, 24, 40, 2);
    for index_type in CODED {
        let (store, client, key) = client();
        let index = create(&client, &key, "docs", Metric::SquaredEuclidean, index_type);
        upsert(&index, &data[..5_000]);
        train(&index, 32);
        // After training: new items, overwrites and deletes.
        let later: Vec<NewItem> =
            data[5_000..].iter().enumerate().map(|(i, v)| item(&format!("n{i}"), v.clone())).collect();
        index.upsert(later).unwrap();
        index.upsert(vec![item("7", data[1].clone())]).unwrap();
        let gone: Vec<String> = (100..200).map(|i| i.to_string()).collect();
        index.delete(&gone).unwrap();
        // A vector far outside the trained ranges is clamped in its code and still found
        // exactly by re-ranking.
        let far: Vec<f32> = data[3].iter().map(|x| x * 1000.0).collect();
        index.upsert(vec![item("far", far.clone())]).unwrap();
        let hit = &index.query(&far, &search(1, Some(32), None)).unwrap()[0];
        assert_eq!((hit.id.as_str(), hit.distance), ("far", Some(0.0)), "{index_type:?}");

        let queries = clustered(30, 24, 40, 3);
        let before: Vec<_> = queries.iter().map(|q| ids_and_distances(&index, q, &search(10, Some(4), None))).collect();
        // Items written after training are found by their own vectors.
        for i in (0..1_000).step_by(97) {
            let hits = index.query(&data[5_000 + i], &search(1, None, None)).unwrap();
            assert_eq!(hits[0].distance, Some(0.0), "{index_type:?}: n{i}");
        }
        assert!(index.query(&data[150], &search(10, Some(32), None)).unwrap().iter().all(|h| h.id != "150"));
        // `get` returns the exact vectors, not their codes.
        let got = index.get(&["7".to_string(), "far".to_string(), "n5".to_string()], Include::GET_DEFAULT).unwrap();
        assert_eq!(got[0].vector.as_deref(), Some(&data[1][..]));
        assert_eq!(got[1].vector.as_deref(), Some(&far[..]));
        assert_eq!(got[2].vector.as_deref(), Some(&data[5_005][..]));

        let mem = index.memory().unwrap();
        let per_vector = match index_type {
            IndexType::IvfSq8 => 24,
            IndexType::IvfFp16 => 48,
            _ => 12, // one byte per sub-vector, one sub-vector per two dimensions
        };
        assert!(mem.codes >= index.count().unwrap() * per_vector, "{index_type:?}: {mem:?}");

        let fresh = Client::new(store.clone(), 2).unwrap();
        let reloaded = fresh.load_index("docs", &key).unwrap();
        assert_eq!(reloaded.index_type(), index_type);
        let after: Vec<_> =
            queries.iter().map(|q| ids_and_distances(&reloaded, q, &search(10, Some(4), None))).collect();
        assert_eq!(before, after, "{index_type:?}: a reload answers the same");
        // A compaction rewrites the records and the code book; still the same answers.
        reloaded.compact().unwrap();
        let fresh = Client::new(store, 2).unwrap();
        let compacted = fresh.load_index("docs", &key).unwrap();
        let again: Vec<_> =
            queries.iter().map(|q| ids_and_distances(&compacted, q, &search(10, Some(4), None))).collect();
        assert_eq!(before, again, "{index_type:?}: after a compaction");
    }
}

#[test]
fn re_ranking_more_candidates_never_lowers_recall_and_flat_ignores_it() {
    let data = clustered(8_000, 16, 50, 4);
    let (_, client, key) = client();
    let flat = create(&client, &key, "flat", Metric::Euclidean, IndexType::IvfFlat);
    upsert(&flat, &data);
    let queries = clustered(50, 16, 50, 5);
    let exact: Vec<HashSet<String>> = queries
        .iter()
        .map(|q| flat.query(q, &search(10, None, None)).unwrap().into_iter().map(|h| h.id).collect())
        .collect();
    train(&flat, 16);
    let flat_answer = ids_and_distances(&flat, &queries[0], &search(10, Some(4), None));
    assert_eq!(ids_and_distances(&flat, &queries[0], &search(10, Some(4), Some(9))), flat_answer);
    let sq8 = create(&client, &key, "sq8", Metric::Euclidean, IndexType::IvfSq8);
    upsert(&sq8, &data);
    train(&sq8, 16);
    let recall = |rerank: usize| {
        let mut found = 0;
        for (q, truth) in queries.iter().zip(&exact) {
            let got = sq8.query(q, &search(10, Some(16), Some(rerank))).unwrap();
            found += got.iter().filter(|h| truth.contains(&h.id)).count();
        }
        found
    };
    let counts: Vec<usize> = [1, 2, 4, 16].into_iter().map(recall).collect();
    assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
    assert_eq!(counts[3], 10 * queries.len(), "every list and 16× candidates: exact");
}

#[test]
fn bad_rerank_values_are_typed_errors() {
    let (_, client, key) = client();
    let index = create(&client, &key, "sq8", Metric::Euclidean, IndexType::IvfSq8);
    upsert(&index, &clustered(200, 4, 4, 6));
    for bad in [0, ciphervec_core::MAX_RERANK + 1] {
        let err = index.query(&[0.0; 4], &search(5, None, Some(bad))).unwrap_err();
        assert_eq!(err.code(), "ERR_INVALID_ARGUMENT", "{bad}");
        assert!(err.to_string().contains("rerank"), "{err}");
    }
    assert_eq!(index.count().unwrap(), 200);
}

#[test]
fn the_store_sees_neither_codes_nor_ranges() {
    let (store, client, key) = client();
    let index = create(&client, &key, "secret", Metric::Euclidean, IndexType::IvfSq8);
    // One dimension is constant, so its range (and its code byte) is known to an observer.
    let mut rng = Rng(8);
    let data: Vec<Vec<f32>> = (0..400).map(|_| rng.vector(16).into_iter().map(|x| x * 3.0 + 1.5).collect()).collect();
    upsert(&index, &data);
    train(&index, 4);
    let dump = store.dump();
    let contains = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    for v in &data[..20] {
        let floats: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        // The 8-bit codes of the vector under the trained ranges, as an attacker who knew
        // them would search for.
        let mut min = [f32::INFINITY; 16];
        let mut max = [f32::NEG_INFINITY; 16];
        for r in &data {
            for j in 0..16 {
                min[j] = min[j].min(r[j]);
                max[j] = max[j].max(r[j]);
            }
        }
        let code: Vec<u8> =
            (0..16).map(|j| ((v[j] - min[j]) / ((max[j] - min[j]) / 255.0)).round().clamp(0.0, 255.0) as u8).collect();
        let ranges: Vec<u8> = min.iter().flat_map(|x| x.to_le_bytes()).collect();
        for (_, k, blob) in &dump {
            for needle in [&floats[..8], &code[..], &ranges[..8]] {
                assert!(!contains(k, needle) && !contains(blob, needle), "plaintext in the store");
            }
        }
    }
}

#[test]
fn a_batch_answers_each_query_as_it_is_answered_alone() {
    let data = clustered(5_000, 20, 30, 9);
    let queries = clustered(300, 20, 30, 10);
    for index_type in [IndexType::IvfFlat, IndexType::IvfSq8, PQ] {
        let (_, client, key) = client();
        let index = create(&client, &key, "b", Metric::Cosine, index_type);
        index
            .upsert(
                data.iter()
                    .enumerate()
                    .map(|(i, v)| NewItem {
                        id: i.to_string(),
                        vector: v.clone(),
                        metadata: Some(serde_json::json!({ "bucket": i % 50 }).into()),
                        contents: None,
                    })
                    .collect(),
            )
            .unwrap();
        train(&index, 64);
        let rare = ciphervec_core::Filter::parse(&serde_json::json!({ "bucket": 7 })).unwrap();
        for filter in [None, Some(&rare)] {
            // 300 queries: several probe blocks, the last one partial.
            let s = Search { k: 10, n_probes: Some(6), rerank: None, filter, include: IDS };
            let batch = index.query_batch(&queries, &s).unwrap();
            for (q, got) in queries.iter().zip(&batch) {
                assert_eq!(got, &index.query(q, &s).unwrap(), "{index_type:?}, filter {}", filter.is_some());
            }
        }
    }
}

#[test]
fn ties_across_lists_resolve_the_same_in_a_batch_as_alone() {
    // 100 items exactly at each of (±1, 0), (0, ±1), in turn, and a ring further out: from the
    // origin, 400 items are at distance 1 exactly, spread over the four lists. A batch scans
    // the lists in another order than a query alone; both must keep the same (lowest) slots.
    let mut data = Vec::new();
    for i in 0..400 {
        let (x, y) = [(1.0, 0.0), (0.0, 1.0), (-1.0, 0.0), (0.0, -1.0)][i % 4];
        data.push(vec![x, y]);
    }
    for i in 0..400 {
        let a = i as f32 * 0.0157;
        data.push(vec![2.0 * a.cos(), 2.0 * a.sin()]);
    }
    let queries = vec![vec![0.0f32, 0.0]; 40];
    for index_type in [IndexType::IvfFlat, IndexType::IvfSq8, PQ] {
        let (_, client, key) = client();
        let index = create(&client, &key, "ties", Metric::Euclidean, index_type);
        upsert(&index, &data);
        train(&index, 4);
        let s = Search { k: 10, n_probes: Some(4), rerank: None, filter: None, include: IDS };
        let alone = index.query(&queries[0], &s).unwrap();
        assert!(alone.iter().all(|h| h.distance == Some(1.0)), "{index_type:?}: {alone:?}");
        for got in index.query_batch(&queries, &s).unwrap() {
            assert_eq!(got, alone, "{index_type:?}");
        }
    }
}

#[test]
fn product_codes_split_any_dimension_and_refuse_more_sub_vectors_than_dimensions() {
    let pq = |m: u32| IndexType::IvfPq(PqShape { sub_vectors: Some(m) });
    let (_, client, key) = client();
    let spec = |dimension: Option<usize>, index_type: IndexType| IndexSpec {
        dimension,
        metric: Metric::Euclidean,
        index_type,
        ..IndexSpec::default()
    };
    for (dimension, m) in [(Some(50), 51), (None, 0), (Some(8), 0)] {
        let err = client.create_index_with("bad", &key, &spec(dimension, pq(m))).unwrap_err();
        assert_eq!(err.code(), "ERR_INVALID_ARGUMENT", "{dimension:?} {m}");
        assert!(err.to_string().contains("pqDim"), "{err}");
    }
    // The dimension comes with the first upsert: too few dimensions for the sub-vectors is
    // refused there and nothing is stored; vectors that fit are taken afterwards.
    let index = client.create_index_with("later", &key, &spec(None, pq(12))).unwrap();
    let err = index.upsert(vec![item("short", vec![0.5; 10])]).unwrap_err();
    assert_eq!(err.code(), "ERR_DIMENSION_MISMATCH");
    assert!(err.to_string().contains("pqDim 12"), "{err}");
    assert_eq!(index.count().unwrap(), 0);
    // 50 dimensions in 12 sub-vectors (FAISS needs m to divide d): trains and finds items.
    let data = clustered(3_000, 50, 30, 11);
    upsert(&index, &data);
    train(&index, 16);
    // 12 code bytes and a norm per item, the code book (256 entries of 50 values in all,
    // held in two layouts) and the 16 centroids the codes are residuals from.
    let codes = index.memory().unwrap().codes;
    let book = (2 * 256 + 16) * 50 * 4;
    assert!((3_000 * 16..3_000 * 16 + book + 1024).contains(&codes), "{codes}");
    for i in (0..3_000).step_by(301) {
        let hit = &index.query(&data[i], &search(1, Some(16), Some(20))).unwrap()[0];
        assert_eq!((hit.id.clone(), hit.distance), (i.to_string(), Some(0.0)));
    }
}
