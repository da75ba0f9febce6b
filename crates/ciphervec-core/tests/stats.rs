//! `Index::stats`: what an operator sees of an index follows its items, its training, its
//! compaction and its deletes.

mod common;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use ciphervec_core::{Client, ListSizes, Metric, NewItem, TrainParams};
use common::Rng;

const DIM: usize = 8;

fn items(from: usize, n: usize, rng: &mut Rng) -> Vec<NewItem> {
    (from..from + n).map(|i| common::item(&format!("doc-{i}"), rng.vector(DIM))).collect()
}

#[test]
fn stats_follow_items_training_compaction_and_deletes() {
    let client = Client::new(Arc::new(ciphervec_core::MemoryStorage::new()), 2).unwrap();
    let index = client.create_index("s", &ciphervec_core::random_key(), None, Metric::Cosine).unwrap();
    let empty = index.stats().unwrap();
    assert_eq!((empty.items, empty.dimension, empty.n_lists, empty.lists), (0, None, 1, None));
    assert_eq!(empty.metric, Metric::Cosine);

    let mut rng = Rng(3);
    index.upsert(items(0, 600, &mut rng)).unwrap();
    let loose = index.stats().unwrap();
    assert_eq!((loose.items, loose.dimension, loose.lists), (600, Some(DIM), None));
    assert_eq!(loose.loose_entries, 600, "one loose record per item before any compaction");
    assert_eq!(loose.segments, 0);
    // The column grows by doubling until training builds exactly sized lists.
    assert!(loose.memory.vectors >= 600 * DIM * 4, "{:?}", loose.memory);

    let params = TrainParams { n_lists: Some(16), seed: 1, ..Default::default() };
    index.train(&params, &AtomicBool::new(false), &|_| {}).unwrap();
    let trained = index.stats().unwrap();
    assert_eq!(trained.n_lists, 16);
    let ListSizes { min, median, max, empty } = trained.lists.expect("lists once trained");
    assert!(min <= median && median <= max && max <= 600, "{:?}", trained.lists);
    assert!(max * 16 >= 600 && min * 16 <= 600, "{:?}", trained.lists);
    assert_eq!(empty > 0, min == 0);
    assert_eq!(trained.loose_entries, 0, "training writes every record packed");
    assert!(trained.segments > 0);
    assert_eq!(trained.memory.vectors, 600 * DIM * 4, "the vectors live in the lists now, once");
    assert!(trained.memory.centroids >= 16 * DIM * 4);

    index.upsert(items(600, 50, &mut rng)).unwrap();
    index.delete(&["doc-0".to_string(), "doc-1".to_string()]).unwrap();
    let after = index.stats().unwrap();
    assert_eq!(after.items, 648);
    assert_eq!(after.loose_entries, 52, "50 loose records and 2 tombstones");
    assert_eq!(after.segments, trained.segments);

    index.compact().unwrap();
    let compacted = index.stats().unwrap();
    assert_eq!((compacted.items, compacted.loose_entries), (648, 0));
    assert!(compacted.segments > 0);
}
