//! What the working set of an index holds in memory (`Index::memory`): the f32 vectors once,
//! at exactly their size after a load and after training, and a bounded allowance per item for
//! everything else (ids, metadata, norms, list bookkeeping); an 8-bit index adds its codes
//! (a byte per dimension and a norm per item) and nothing else. Counted bytes, not RSS: the
//! resident figures, which add the allocator and the store's cache, are in BENCHMARKS.md
//! ("Resident memory of a loaded index").

mod common;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use ciphervec_core::{Client, IndexSpec, IndexType, Metric, NewItem, TrainParams};
use common::Rng;

const DIM: usize = 384;
const N: usize = 6_000;
/// Bytes per item beyond its vector that the bound allows: a ~10-byte id (arena, 8-byte span,
/// hash table: ~25 B), two metadata fields (20 B behind an 8-byte pointer, with its 4-byte
/// length: 32 B), the norm, the list slot and place (16 B), the per-item columns (list id and
/// where it is stored: 8 B) and the metadata index (~5 B: roaring sets of two low-cardinality
/// fields) come to ~86 B; no item has contents, so their column holds nothing. Columns grown
/// by doubling during upserts keep some slack (~95 B/item after training here).
const PER_ITEM: usize = 104;
const LANGS: [&str; 3] = ["en", "de", "fr"];

fn items(n: usize, rng: &mut Rng) -> Vec<NewItem> {
    (0..n)
        .map(|i| NewItem {
            id: format!("doc-{i}"),
            vector: rng.vector(DIM),
            metadata: Some(serde_json::json!({"lang": LANGS[i % 3], "year": 1990 + i % 30}).into()),
            contents: None,
        })
        .collect()
}

/// Checks the bound on `index`'s accounting: the vectors at exactly n·dim·4 bytes, the codes
/// of an 8-bit index at exactly a byte per dimension and a norm per item (plus its code book),
/// the rest within the allowance, and the whole within 1.15× the raw vectors besides the codes.
fn check(index: &ciphervec_core::Index, when: &str) {
    let usage = index.memory().unwrap();
    let n = index.len_hint();
    let raw = n * DIM * 4;
    assert_eq!(usage.vectors, raw, "{when}: vectors held once, at exactly their size: {usage:?}");
    let codes = match index.index_type() {
        // Codes and their norms, and the ranges (the centroids residuals are taken from are
        // the quantizer's, not a copy).
        IndexType::IvfSq8 if index.is_trained() => n * (DIM + 4) + 2 * DIM * 4,
        _ => 0,
    };
    assert_eq!(usage.codes, codes, "{when}: codes at exactly their size: {usage:?}");
    let rest = usage.total() - usage.vectors - usage.codes - usage.centroids;
    assert!(rest <= n * PER_ITEM, "{when}: {} B/item besides the vectors: {usage:?}", rest / n);
    let bounded = usage.total() - usage.codes;
    assert!(bounded as f64 <= 1.15 * raw as f64, "{when}: {:.3}× the vectors", bounded as f64 / raw as f64);
}

#[test]
fn a_loaded_or_trained_index_holds_its_vectors_once_at_their_size() {
    for index_type in [IndexType::IvfFlat, IndexType::IvfSq8] {
        holds_its_vectors_once_at_their_size(index_type);
    }
}

fn holds_its_vectors_once_at_their_size(index_type: IndexType) {
    let store = Arc::new(ciphervec_core::MemoryStorage::new());
    let client = Client::new(store.clone(), 2).unwrap();
    let key = ciphervec_core::random_key();
    let spec = IndexSpec { dimension: Some(DIM), metric: Metric::Euclidean, index_type, ..IndexSpec::default() };
    let index = client.create_index_with("m", &key, &spec).unwrap();
    let mut rng = Rng(7);
    for chunk in items(N, &mut rng).chunks(2_000) {
        index.upsert(chunk.to_vec()).unwrap();
    }
    let params = TrainParams { n_lists: Some(32), max_iters: Some(3), seed: 1, ..Default::default() };
    index.train(&params, &AtomicBool::new(false), &|_| {}).unwrap();
    check(&index, "after training");
    client.close();

    for compacted in [false, true] {
        let client = Client::new(store.clone(), 2).unwrap();
        let index = client.load_index("m", &key).unwrap();
        check(&index, &format!("after a load (compacted: {compacted})"));
        if !compacted {
            index.compact().unwrap();
        }
        client.close();
    }

    // Upserts after training grow lists by doubling (slack up to 2× in the lists they reach),
    // until the next load or training packs them exactly again.
    let client = Client::new(store, 2).unwrap();
    let index = client.load_index("m", &key).unwrap();
    index.upsert(items(N + 500, &mut rng)[N..].to_vec()).unwrap();
    let usage = index.memory().unwrap();
    assert!(usage.vectors >= (N + 500) * DIM * 4 && usage.vectors <= 2 * (N + 500) * DIM * 4, "{usage:?}");
}

#[test]
fn an_untrained_index_accounts_its_columns() {
    let (_, client, key) = common::client();
    let index = client.create_index("u", &key, Some(DIM), Metric::Cosine).unwrap();
    let mut rng = Rng(9);
    index.upsert(items(1_000, &mut rng)).unwrap();
    let usage = index.memory().unwrap();
    assert!(usage.vectors >= 1_000 * DIM * 4 && usage.norms >= 4_000, "{usage:?}");
    assert_eq!((usage.centroids, usage.list_slots, usage.tombstones), (0, 0, 0));
    assert!(usage.ids > 0 && usage.metadata > 0 && usage.columns > 0);
    assert_eq!(usage.parts().iter().map(|p| p.1).sum::<usize>(), usage.total());
}
