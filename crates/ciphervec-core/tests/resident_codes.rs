//! Codes-only indexes (`Resident::Codes`): only the lists' codes stay in memory once trained,
//! queries score by them, and every full vector comes back exactly from the store: through
//! `get` and `include: vector` (loose and packed items), after writes, deletes, a compaction,
//! a retraining and a reload. Damage to a stored vector is reported, never returned.

mod common;

use std::collections::HashSet;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use ciphervec_core::{
    Client, Include, Index, IndexSpec, IndexType, Metric, NewItem, PqShape, Resident, Search, Storage, TrainParams,
};
use common::{client, clustered, item};

const IDS: Include = Include { distance: true, metadata: false, contents: false, vector: false };
const WITH_VECTORS: Include = Include { distance: true, metadata: true, contents: false, vector: true };

fn search(k: usize, n_probes: Option<usize>, include: Include) -> Search<'static> {
    Search { k, n_probes, rerank: None, filter: None, include }
}

fn create(client: &Client, key: &[u8; 32], name: &str, index_type: IndexType, resident: Resident) -> Arc<Index> {
    let spec = IndexSpec { metric: Metric::Euclidean, index_type, resident, ..IndexSpec::default() };
    client.create_index_with(name, key, &spec).unwrap()
}

fn items(data: &[Vec<f32>], from: usize) -> Vec<NewItem> {
    data.iter()
        .enumerate()
        .map(|(i, v)| NewItem {
            metadata: Some(serde_json::json!({ "n": from + i }).into()),
            ..item(&format!("{}", from + i), v.clone())
        })
        .collect()
}

fn train(index: &Index, n_lists: usize) {
    let params = TrainParams { n_lists: Some(n_lists), ..TrainParams::default() };
    index.train(&params, &AtomicBool::new(false), &|_| {}).unwrap();
}

fn ids(index: &Index, q: &[f32], s: &Search) -> Vec<String> {
    index.query(q, s).unwrap().into_iter().map(|h| h.id).collect()
}

/// Every id's vector from `get`, in the order asked.
fn vectors(index: &Index, ids: &[String]) -> Vec<Vec<f32>> {
    index.get(ids, Include::GET_DEFAULT).unwrap().into_iter().map(|v| v.vector.expect("a vector")).collect()
}

#[test]
fn codes_only_keeps_recall_and_memory_and_returns_exact_vectors() {
    let data = clustered(50_000, 32, 200, 1);
    let queries = clustered(100, 32, 200, 2);
    // Product codes of one dimension per sub-vector: a byte per dimension, as SQ8's.
    let pq32 = IndexType::IvfPq(PqShape { sub_vectors: Some(32) });
    for index_type in [IndexType::IvfSq8, IndexType::IvfFp16, pq32] {
        let (_, client, key) = client();
        let flat = create(&client, &key, "flat", IndexType::IvfFlat, Resident::Vectors);
        flat.upsert(items(&data, 0)).unwrap();
        let truth: Vec<HashSet<String>> =
            queries.iter().map(|q| ids(&flat, q, &search(10, None, IDS)).into_iter().collect()).collect();
        let index = create(&client, &key, "codes", index_type, Resident::Codes);
        assert_eq!(index.resident(), Resident::Codes);
        index.upsert(items(&data, 0)).unwrap();
        train(&index, 256);

        // Recall at the default nProbes, against brute force.
        let mut found = 0;
        for (q, truth) in queries.iter().zip(&truth) {
            found += ids(&index, q, &search(10, None, IDS)).iter().filter(|id| truth.contains(*id)).count();
        }
        let recall = found as f64 / (10 * queries.len()) as f64;
        assert!(recall >= 0.95, "{index_type:?}: recall@10 {recall}");

        // Memory: no float32 vector or norm is held, only the codes (one byte or one
        // float16 per dimension, plus a norm per code).
        let mem = index.memory().unwrap();
        let code_bytes = if index_type == IndexType::IvfFp16 { 64 } else { 32 };
        assert_eq!((mem.vectors, mem.norms), (0, 0), "{index_type:?}: {mem:?}");
        assert!(mem.codes >= data.len() * code_bytes, "{index_type:?}: {mem:?}");
        // Beyond the codes: the code book (product codes: 256 × 32 floats in two layouts), and
        // for product codes the lists' centroids they are residuals from (256 × 32 floats).
        assert!(mem.codes <= data.len() * (code_bytes + 4) + 160 * 1024, "{index_type:?}: {mem:?}");

        // Results that include vectors carry the exact stored vectors (training packed every
        // item into segments), as does `get`.
        let hits = index.query(&queries[0], &search(10, None, WITH_VECTORS)).unwrap();
        assert_eq!(hits.len(), 10);
        for h in &hits {
            let i: usize = h.id.parse().unwrap();
            assert_eq!(h.vector.as_deref(), Some(&data[i][..]), "{index_type:?}: query result {i}");
            assert!(h.metadata.is_some());
        }
        let asked: Vec<String> = [7usize, 49_999, 12_345, 7].iter().map(|i| i.to_string()).collect();
        let got = vectors(&index, &asked);
        assert_eq!(got, vec![data[7].clone(), data[49_999].clone(), data[12_345].clone(), data[7].clone()]);
        let batch = index.query_batch(&queries[..3], &search(5, None, WITH_VECTORS)).unwrap();
        for h in batch.iter().flatten() {
            assert_eq!(h.vector.as_deref(), Some(&data[h.id.parse::<usize>().unwrap()][..]));
        }
    }
}

#[test]
fn writes_deletes_compaction_retraining_and_reload_keep_vectors_exact() {
    for index_type in [IndexType::IvfSq8, IndexType::IvfPq(PqShape::default())] {
        writes_deletes_compaction_retraining_and_reload_keep_vectors_exact_in(index_type);
    }
}

fn writes_deletes_compaction_retraining_and_reload_keep_vectors_exact_in(index_type: IndexType) {
    let data = clustered(6_000, 16, 40, 3);
    let (store, client, key) = client();
    let index = create(&client, &key, "docs", index_type, Resident::Codes);
    index.upsert(items(&data[..5_000], 0)).unwrap();
    train(&index, 32);
    // Loose writes after training: new items, overwrites, deletes (slots move).
    index.upsert(items(&data[5_000..], 5_000)).unwrap();
    let moved: Vec<f32> = data[10].iter().map(|x| x + 0.5).collect();
    index.upsert(vec![item("10", moved.clone())]).unwrap();
    let gone: Vec<String> = (100..150).map(|i| i.to_string()).collect();
    index.delete(&gone).unwrap();
    let mut want: Vec<(String, Vec<f32>)> = (0..6_000)
        .filter(|i| !(100..150).contains(i))
        .map(|i| (i.to_string(), if i == 10 { moved.clone() } else { data[i].clone() }))
        .collect();
    let check = |index: &Index, want: &[(String, Vec<f32>)], what: &str| {
        let asked: Vec<String> = want.iter().map(|(id, _)| id.clone()).collect();
        let got = vectors(index, &asked);
        for ((id, v), g) in want.iter().zip(&got) {
            assert_eq!(g, v, "{what}: item {id}");
        }
        assert!(index.get(&gone, Include::GET_DEFAULT).unwrap().is_empty(), "{what}");
        // The item written after training is found by its own vector (its code).
        let hit = &index.query(&data[5_500], &search(1, Some(32), IDS)).unwrap()[0];
        assert_eq!(hit.id, "5500", "{what}");
    };
    check(&index, &want, "loose and packed items");
    let queries = clustered(20, 16, 40, 4);
    let before: Vec<_> = queries.iter().map(|q| ids(&index, q, &search(10, Some(8), IDS))).collect();

    // A compaction re-seals every record from the vectors read back from the store.
    index.compact().unwrap();
    check(&index, &want, "after a compaction");
    let reloaded = Client::new(store.clone(), 2).unwrap().load_index("docs", &key).unwrap();
    check(&reloaded, &want, "after a reload");
    let after: Vec<_> = queries.iter().map(|q| ids(&reloaded, q, &search(10, Some(8), IDS))).collect();
    assert_eq!(before, after, "a reload answers as before");
    assert_eq!(reloaded.memory().unwrap().vectors, 0);

    // Retraining reads every vector back, re-trains the code book and the lists on them.
    train(&reloaded, 16);
    check(&reloaded, &want, "after retraining");
    let hit = &reloaded.query(&moved, &search(1, Some(16), IDS)).unwrap()[0];
    assert_eq!(hit.id, "10");
    want.retain(|(id, _)| id != "0");
    reloaded.delete(&["0".to_string()]).unwrap();
    check(&reloaded, &want, "after a delete over the retrained index");
    drop(store);
}

#[test]
fn a_damaged_stored_vector_is_reported_never_returned() {
    let data = clustered(2_000, 8, 10, 5);
    let (store, client, key) = client();
    let index = create(&client, &key, "docs", IndexType::IvfSq8, Resident::Codes);
    index.upsert(items(&data, 0)).unwrap();
    train(&index, 8);
    index.upsert(vec![item("loose", data[0].clone())]).unwrap();
    // Flip one byte in every stored value of the index except its header, config, centroids
    // and summary: every segment and the loose record.
    let spaces = store.spaces().unwrap();
    assert_eq!(spaces.len(), 1);
    let space = &spaces[0];
    let entries = store.scan_prefix(space, b"").unwrap();
    let mut changes = Vec::new();
    for (k, mut v) in entries {
        if k.starts_with(b"p") || k.starts_with(b"r") {
            let at = v.len() / 2;
            v[at] ^= 0x01;
            changes.push((k, Some(v)));
        }
    }
    assert!(changes.len() >= 2, "segments and a loose record");
    store.write(space, changes).unwrap();
    for id in ["5", "loose"] {
        let err = index.get(&[id.to_string()], Include::GET_DEFAULT).unwrap_err();
        assert_eq!(err.code(), "ERR_INTEGRITY", "{id}: {err}");
    }
    // What memory holds is still served: ids, metadata, codes.
    let no_vectors = Include { vector: false, ..Include::GET_DEFAULT };
    assert_eq!(index.get(&["5".to_string()], no_vectors).unwrap().len(), 1);
    assert_eq!(index.query(&data[5], &search(1, Some(8), IDS)).unwrap()[0].id, "5");
}

#[test]
fn codes_only_needs_a_type_with_codes() {
    let (_, client, key) = client();
    let spec = IndexSpec { index_type: IndexType::IvfFlat, resident: Resident::Codes, ..IndexSpec::default() };
    let err = client.create_index_with("flat", &key, &spec).unwrap_err();
    assert_eq!(err.code(), "ERR_INVALID_ARGUMENT");
    assert!(err.to_string().contains("resident"), "{err}");
    assert!(client.list_indexes().unwrap().is_empty());
}

#[test]
fn untrained_codes_only_indexes_hold_vectors_until_trained() {
    let data = clustered(1_000, 8, 10, 6);
    let (_, client, key) = client();
    let index = create(&client, &key, "docs", IndexType::IvfSq8, Resident::Codes);
    index.upsert(items(&data, 0)).unwrap();
    // Exhaustive and exact before training.
    let hit = &index.query(&data[3], &search(1, None, WITH_VECTORS)).unwrap()[0];
    assert_eq!((hit.id.as_str(), hit.distance, hit.vector.as_deref()), ("3", Some(0.0), Some(&data[3][..])));
    assert!(index.memory().unwrap().vectors >= 1_000 * 8 * 4);
    train(&index, 8);
    assert_eq!(index.memory().unwrap().vectors, 0);
    // Scores now come from the codes: within a code step per dimension of exact (a step is
    // ~2.3 / 255 here), not necessarily zero.
    let hit = &index.query(&data[3], &search(1, Some(8), IDS)).unwrap()[0];
    assert_eq!(hit.id, "3");
    assert!(hit.distance.unwrap() < (8f32).sqrt() * 2.4 / 255.0, "{hit:?}");
}

#[test]
fn vectors_read_during_writes_and_compactions_match_the_metadata_beside_them() {
    // Each write of item i stores version v in its metadata and as its vector's first value.
    // Read alongside overwrites and compactions (the store a step ahead of the working set),
    // every item returned carries the vector of the very version its metadata is from.
    let (_, client, key) = client();
    let index = create(&client, &key, "docs", IndexType::IvfSq8, Resident::Codes);
    let dim = 8;
    let version = |i: usize, v: usize| NewItem {
        metadata: Some(serde_json::json!({ "v": v }).into()),
        ..item(&i.to_string(), (0..dim).map(|d| if d == 0 { v as f32 } else { (i * d) as f32 }).collect())
    };
    index.upsert((0..400).map(|i| version(i, 0)).collect()).unwrap();
    train(&index, 4);
    let ids: Vec<String> = (0..400).map(|i| i.to_string()).collect();
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            for v in 1..=30 {
                index.upsert((0..400).step_by(3).map(|i| version(i, v)).collect()).unwrap();
                if v % 5 == 0 {
                    index.compact().unwrap();
                }
            }
            done.store(true, std::sync::atomic::Ordering::Release);
        });
        let mut reads = 0;
        while !done.load(std::sync::atomic::Ordering::Acquire) || reads < 5 {
            for got in index.get(&ids, Include::GET_DEFAULT).unwrap() {
                let v = got.metadata.as_ref().unwrap().to_json()["v"].as_u64().unwrap();
                assert_eq!(got.vector.as_ref().unwrap()[0], v as f32, "item {}", got.id);
            }
            reads += 1;
        }
    });
}

#[test]
fn another_process_rewriting_the_store_is_caught_up_with_before_vectors_are_read() {
    // Quiet: b follows only when it syncs, so its working set lags behind a's writes.
    let store = Arc::new(ciphervec_core::test_util::SharedMemoryStorage::quiet());
    let (a, b) = (Client::new(store.clone(), 2).unwrap(), Client::new(store.clone(), 2).unwrap());
    let key = [5u8; 32];
    let data = clustered(3_000, 8, 10, 7);
    let ia = create(&a, &key, "shared", IndexType::IvfSq8, Resident::Codes);
    ia.upsert(items(&data, 0)).unwrap();
    train(&ia, 8);
    let ib = b.load_index("shared", &key).unwrap();
    // a overwrites half the items and compacts: the segments b knows are renumbered and
    // refilled, and the loose records it would look for are gone.
    let moved: Vec<Vec<f32>> = data.iter().map(|v| v.iter().map(|x| x + 1.0).collect()).collect();
    ia.upsert(items(&moved[..1_500], 0)).unwrap();
    ia.upsert(vec![item("new", data[0].clone())]).unwrap();
    ia.compact().unwrap();
    let asked: Vec<String> = (0..3_000).step_by(7).map(|i| i.to_string()).chain(["new".to_string()]).collect();
    let got = ib.get(&asked, Include::GET_DEFAULT).unwrap();
    // b caught up first: it sees a's writes, and every vector with its own metadata.
    assert_eq!(got.len(), asked.len());
    for g in &got {
        let want = match g.id.as_str() {
            "new" => &data[0],
            id => {
                let i: usize = id.parse().unwrap();
                if i < 1_500 {
                    &moved[i]
                } else {
                    &data[i]
                }
            }
        };
        assert_eq!(g.vector.as_deref(), Some(&want[..]), "item {}", g.id);
    }
}
