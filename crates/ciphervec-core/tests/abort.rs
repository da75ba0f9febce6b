//! Calls their callers abort (`*_unless`): an aborted upsert writes nothing, an aborted load
//! stops within a read batch and opens nothing, an aborted query batch fails; none changes
//! the index.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use ciphervec_core::{Client, EntryBatch, Include, MemoryStorage, Metric, Search, Storage};
use common::{item, Rng};

/// A store that sets `abort` as it hands over the first scanned batch, and counts the batches
/// it hands over: the load must take no other.
struct AbortsOnFirstBatch {
    inner: Arc<MemoryStorage>,
    abort: Arc<AtomicBool>,
    batches: AtomicUsize,
}

impl Storage for AbortsOnFirstBatch {
    fn get(&self, space: &str, key: &[u8]) -> ciphervec_core::Result<Option<Vec<u8>>> {
        self.inner.get(space, key)
    }
    fn write(&self, space: &str, changes: Vec<ciphervec_core::Change>) -> ciphervec_core::Result<()> {
        self.inner.write(space, changes)
    }
    fn scan_range_batches(
        &self,
        space: &str,
        start: &[u8],
        end: Option<&[u8]>,
        batch_bytes: usize,
        sink: &mut dyn FnMut(EntryBatch) -> ciphervec_core::Result<()>,
    ) -> ciphervec_core::Result<()> {
        self.inner.scan_range_batches(space, start, end, batch_bytes, &mut |batch| {
            self.batches.fetch_add(1, Ordering::Relaxed);
            self.abort.store(true, Ordering::Release);
            sink(batch)
        })
    }
    fn export(
        &self,
        batch_bytes: usize,
        sink: &mut dyn FnMut(&str, EntryBatch) -> ciphervec_core::Result<()>,
    ) -> ciphervec_core::Result<()> {
        self.inner.export(batch_bytes, sink)
    }
    fn spaces(&self) -> ciphervec_core::Result<Vec<String>> {
        self.inner.spaces()
    }
    fn drop_space(&self, space: &str) -> ciphervec_core::Result<()> {
        self.inner.drop_space(space)
    }
}

fn filled(store: Arc<MemoryStorage>, n: usize, dim: usize) -> [u8; 32] {
    let key = ciphervec_core::random_key();
    let index = Client::new(store, 2).unwrap().create_index("big", &key, Some(dim), Metric::Euclidean).unwrap();
    let mut rng = Rng(9);
    index.upsert((0..n).map(|i| item(&format!("v{i}"), rng.vector(dim))).collect()).unwrap();
    key
}

#[test]
fn an_aborted_load_stops_within_a_batch_and_opens_nothing() {
    let memory = Arc::new(MemoryStorage::new());
    let key = filled(memory.clone(), 5_000, 32);
    let abort = Arc::new(AtomicBool::new(false));
    let store =
        Arc::new(AbortsOnFirstBatch { inner: memory.clone(), abort: abort.clone(), batches: AtomicUsize::new(0) });
    let client = Client::new(store.clone(), 2).unwrap();
    let err = match client.load_index_unless("big", &key, &abort) {
        Ok(_) => panic!("the load must stop"),
        Err(e) => e,
    };
    assert_eq!(err.code(), "ERR_ABORTED");
    assert!(err.to_string().contains("loadIndex of index 'big' was aborted"), "{err}");
    // 5,000 records of ~200 bytes are several 256 KiB batches (one lane reads them at this
    // size): the first is the last.
    let whole: usize = memory.dump().iter().map(|(_, k, v)| k.len() + v.len()).sum();
    assert!(whole > 3 * (256 << 10), "the index must span several batches ({whole} bytes)");
    assert_eq!(store.batches.load(Ordering::Relaxed), 1, "batches were read after the abort");
    assert_eq!(client.list_indexes().unwrap(), Vec::<String>::new(), "nothing was opened");
    let index = Client::new(memory, 2).unwrap().load_index_unless("big", &key, &AtomicBool::new(false)).unwrap();
    assert_eq!(index.count().unwrap(), 5_000, "the stored index is whole");
}

#[test]
fn an_aborted_upsert_writes_nothing_and_an_aborted_batch_fails() {
    let store = Arc::new(MemoryStorage::new());
    let key = filled(store.clone(), 100, 4);
    let index = Client::new(store.clone(), 2).unwrap().load_index("big", &key).unwrap();
    let before = store.dump();
    let err = index
        .upsert_unless(vec![item("new", vec![1.0; 4]), item("v1", vec![2.0; 4])], &AtomicBool::new(true))
        .unwrap_err();
    assert_eq!(err.code(), "ERR_ABORTED");
    assert_eq!(store.dump(), before, "nothing reached the store");
    assert_eq!(index.count().unwrap(), 100);
    assert!(index.get(&["new".to_string()], Include::default()).unwrap().is_empty());

    let include = Include { distance: true, ..Include::default() };
    let search = Search { k: 3, n_probes: None, rerank: None, filter: None, include };
    let queries = vec![vec![0.5; 4]; 10];
    assert_eq!(index.query_batch_unless(&queries, &search, &AtomicBool::new(true)).unwrap_err().code(), "ERR_ABORTED");
    let lists = index.query_batch_unless(&queries, &search, &AtomicBool::new(false)).unwrap();
    assert_eq!(lists.len(), 10);
    assert!(lists.iter().all(|l| l.len() == 3));
}
