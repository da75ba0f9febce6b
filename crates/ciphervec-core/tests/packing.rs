//! Packed segments, loose records and tombstones together: whatever mix of upserts, deletes,
//! compactions and training an index went through, a reload holds exactly the items a
//! plain model holds, and the store holds no entry the index does not account for.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use ciphervec_core::DiskStorage;
use ciphervec_core::MemoryStorage;
use ciphervec_core::Storage;
use ciphervec_core::{Client, Include, Metric, NewItem, TrainParams};
use common::Rng;
use serde_json::{json, Value};

const ALL: Include = Include { distance: false, metadata: true, contents: false, vector: true };
const DIM: usize = 4;

/// Runs `ops` random operations over a small id space, reloading from `store` now and then,
/// and checks the reloaded index against the model each time.
fn run(seed: u64, ops: usize, store: Arc<dyn Storage>, reopen: &dyn Fn() -> Arc<dyn Storage>) {
    let key = [seed as u8; 32];
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut model: BTreeMap<String, (Vec<f32>, Value)> = BTreeMap::new();
    let mut store = store;
    let mut client = Client::new(store.clone(), 2).unwrap();
    let mut index = client.create_index("p", &key, Some(DIM), Metric::Euclidean).unwrap();
    for step in 0..ops {
        match rng.below(10) {
            0..=3 => {
                let batch: Vec<NewItem> = (0..1 + rng.below(6))
                    .map(|_| {
                        let id = format!("id-{}", rng.below(30));
                        NewItem {
                            id,
                            vector: rng.vector(DIM),
                            metadata: Some(json!({ "step": step, "r": rng.below(1000) }).into()),
                            contents: None,
                        }
                    })
                    .collect();
                for it in &batch {
                    model.insert(it.id.clone(), (it.vector.clone(), it.metadata.as_ref().unwrap().to_json()));
                }
                index.upsert(batch).unwrap();
            }
            4..=5 => {
                let ids: Vec<String> = (0..1 + rng.below(4)).map(|_| format!("id-{}", rng.below(30))).collect();
                let existed = ids.iter().filter(|id| model.contains_key(*id)).collect::<std::collections::HashSet<_>>();
                assert_eq!(index.delete(&ids).unwrap(), existed.len());
                for id in &ids {
                    model.remove(id);
                }
            }
            6 => index.compact().unwrap(),
            7 if model.len() >= 8 => {
                let params = TrainParams { n_lists: Some(2), max_iters: Some(3), ..Default::default() };
                index.train(&params, &AtomicBool::new(false), &|_| {}).unwrap();
            }
            _ => {
                drop(index);
                client.close();
                store = reopen();
                client = Client::new(store.clone(), 2).unwrap();
                index = client.load_index("p", &key).unwrap_or_else(|e| panic!("seed {seed} step {step}: {e}"));
                check(&index, &model, seed, step);
            }
        }
    }
    drop(index);
    client.close();
    let client = Client::new(reopen(), 2).unwrap();
    check(&client.load_index("p", &key).unwrap(), &model, seed, ops);
}

fn check(index: &ciphervec_core::Index, model: &BTreeMap<String, (Vec<f32>, Value)>, seed: u64, step: usize) {
    let mut ids = index.list_ids().unwrap();
    ids.sort();
    assert_eq!(ids, model.keys().cloned().collect::<Vec<_>>(), "seed {seed} step {step}");
    for view in index.get(&ids, ALL).unwrap() {
        let (vector, metadata) = &model[&view.id];
        assert_eq!(view.vector.as_ref(), Some(vector), "seed {seed} step {step} id {}", view.id);
        assert_eq!(
            view.metadata.map(|m| m.to_json()).as_ref(),
            Some(metadata),
            "seed {seed} step {step} id {}",
            view.id
        );
    }
}

#[test]
fn random_writes_compactions_and_reloads_match_a_model_in_memory() {
    for seed in 1..=40 {
        let store = Arc::new(MemoryStorage::new());
        let same = store.clone();
        run(seed, 120, store, &move || same.clone());
    }
}

#[test]
fn random_writes_compactions_and_reloads_match_a_model_on_disk() {
    for seed in 1..=4 {
        let dir = std::env::temp_dir().join(format!("ciphervec-packing-{seed}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let open = {
            let dir = dir.clone();
            move || -> Arc<dyn Storage> { Arc::new(DiskStorage::open(&dir).unwrap()) }
        };
        run(seed, 80, open(), &open);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// After a compaction the store holds segments and the index's own entries, nothing loose;
/// writes after it add loose records and tombstones, and the next compaction removes them.
#[test]
fn compaction_leaves_only_segments() {
    let store = Arc::new(MemoryStorage::new());
    let client = Client::new(store.clone(), 2).unwrap();
    let index = client.create_index("p", &[1; 32], Some(DIM), Metric::Euclidean).unwrap();
    let mut rng = Rng(5);
    index.upsert((0..5000).map(|i| common::item(&format!("{i}"), rng.vector(DIM))).collect()).unwrap();
    let kinds = || {
        let mut k = BTreeMap::new();
        for (_, key, _) in store.dump() {
            *k.entry(key[0] as char).or_insert(0) += 1;
        }
        k
    };
    assert_eq!(kinds()[&'r'], 5000);
    index.compact().unwrap();
    let packed = kinds();
    assert!(!packed.contains_key(&'r') && !packed.contains_key(&'d'), "{packed:?}");
    assert!(packed[&'p'] >= 1);
    index.upsert(vec![common::item("0", vec![1.0; DIM]), common::item("new", vec![2.0; DIM])]).unwrap();
    index.delete(&["1".to_string(), "2".to_string(), "new".to_string()]).unwrap();
    let mixed = kinds();
    assert_eq!((mixed[&'r'], mixed[&'d']), (1, 2), "{mixed:?}");
    index.compact().unwrap();
    assert_eq!(kinds(), packed, "the same number of segments, nothing else");
    assert_eq!(index.count().unwrap(), 4998);
    let all = index.list_ids().unwrap();
    index.delete(&all).unwrap();
    index.compact().unwrap();
    assert!(!kinds().contains_key(&'p'), "segments the index no longer needs are deleted");
    drop(index);
    client.close();
    let reloaded = Client::new(store.clone(), 2).unwrap();
    assert_eq!(reloaded.load_index("p", &[1; 32]).unwrap().count().unwrap(), 0);
}

/// The segment directory only lays out a load: without it (a store packed before directories
/// existed), or with one that does not fit the segments (an older ciphervec compacted after
/// writing it), the same items load in the same slots by counting segments first; a damaged
/// one fails the load with `ERR_INTEGRITY`; old segments under a current directory are still
/// caught by the record summary.
#[test]
fn the_segment_directory_is_only_a_layout() {
    use ciphervec_core::test_util::DIRECTORY_KEY;
    const DIM: usize = 64;
    let store = Arc::new(MemoryStorage::new());
    let client = Client::new(store.clone(), 2).unwrap();
    let index = client.create_index("p", &[1; 32], Some(DIM), Metric::Euclidean).unwrap();
    let mut rng = Rng(9);
    let item = |i: usize, rng: &mut Rng| NewItem {
        id: format!("doc-{i}"),
        vector: rng.vector(DIM),
        metadata: Some(json!({ "i": i }).into()),
        contents: None,
    };
    index.upsert((0..4000).map(|i| item(i, &mut rng)).collect()).unwrap();
    index.compact().unwrap();
    let first = store.dump();
    index.upsert((4000..5000).map(|i| item(i, &mut rng)).collect()).unwrap();
    index.delete(&(0..600).map(|i| format!("doc-{i}")).collect::<Vec<_>>()).unwrap();
    index.compact().unwrap();
    let current = store.dump();
    // Five fewer items: as many segments, the last one shorter.
    index.delete(&(600..605).map(|i| format!("doc-{i}")).collect::<Vec<_>>()).unwrap();
    index.compact().unwrap();
    let shorter = store.dump();
    drop(index);
    client.close();
    let segments = |dump: &[(String, Vec<u8>, Vec<u8>)]| dump.iter().filter(|(_, k, _)| k[0] == b'p').count();
    assert!(segments(&current) >= 4, "several segments ({})", segments(&current));
    assert_eq!(segments(&shorter), segments(&current));
    let directory_of = |dump: &[(String, Vec<u8>, Vec<u8>)]| {
        dump.iter().find(|(_, k, _)| k == DIRECTORY_KEY).map(|(s, _, v)| (s.clone(), v.clone())).unwrap()
    };
    let (space, directory) = directory_of(&current);

    let store = Arc::new(MemoryStorage::new());
    for (space, k, v) in &current {
        store.write(space, vec![(k.clone(), Some(v.clone()))]).unwrap();
    }
    let load = || Client::new(store.clone(), 2).unwrap().load_index("p", &[1; 32]);
    let snapshot = |index: &ciphervec_core::Index| -> Vec<_> {
        let ids = index.list_ids().unwrap();
        let items = index.get(&ids, ALL).unwrap();
        ids.into_iter().zip(items.into_iter().map(|v| (v.vector, v.metadata))).collect()
    };
    let expected = snapshot(&load().unwrap());
    assert_eq!(expected.len(), 4400);

    store.write(&space, vec![(DIRECTORY_KEY.to_vec(), None)]).unwrap();
    assert_eq!(snapshot(&load().unwrap()), expected, "no directory: counted, same slots");
    for (what, other) in [("fewer segments", &first), ("a shorter last segment", &shorter)] {
        store.write(&space, vec![(DIRECTORY_KEY.to_vec(), Some(directory_of(other).1))]).unwrap();
        assert_eq!(snapshot(&load().unwrap()), expected, "a directory listing {what}: counted, same slots");
    }

    let mut flipped = directory.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    store.write(&space, vec![(DIRECTORY_KEY.to_vec(), Some(flipped))]).unwrap();
    assert_eq!(load().unwrap_err().code(), "ERR_INTEGRITY");

    store.write(&space, vec![(DIRECTORY_KEY.to_vec(), Some(directory))]).unwrap();
    assert_eq!(snapshot(&load().unwrap()), expected);
    let (_, k, old_segment) = first.iter().find(|(_, k, _)| k[0] == b'p').unwrap();
    store.write(&space, vec![(k.clone(), Some(old_segment.clone()))]).unwrap();
    assert_eq!(load().unwrap_err().code(), "ERR_INTEGRITY", "an old segment under the current directory");
}

#[test]
fn writes_start_a_background_compaction_once_loose_entries_pile_up() {
    use ciphervec_core::AUTO_COMPACT_MIN;
    let store = Arc::new(MemoryStorage::new());
    let client = Client::new(store.clone(), 2).unwrap();
    let index = client.create_index("p", &[1; 32], Some(DIM), Metric::Euclidean).unwrap();
    let mut rng = Rng(9);
    let batch = |from: usize, n: usize, rng: &mut Rng| -> Vec<NewItem> {
        (from..from + n).map(|i| common::item(&i.to_string(), rng.vector(DIM))).collect()
    };
    index.upsert(batch(0, AUTO_COMPACT_MIN - 1, &mut rng)).unwrap();
    assert!(!index.is_compacting() && !index.compaction_due(), "not due below the minimum");
    assert_eq!(index.loose_entries(), AUTO_COMPACT_MIN - 1);
    // This many loose records are scanned in 256 key ranges.
    let loose = Client::new(store.clone(), 2).unwrap().load_index("p", &[1; 32]).unwrap();
    assert_eq!(loose.count().unwrap(), AUTO_COMPACT_MIN - 1);
    assert_eq!(
        loose.get(&["77".to_string()], ALL).unwrap()[0].vector,
        index.get(&["77".to_string()], ALL).unwrap()[0].vector
    );
    drop(loose);
    // The write that makes it due starts the compaction; writes meanwhile wait for it and
    // are kept.
    index.upsert(batch(AUTO_COMPACT_MIN - 1, 1, &mut rng)).unwrap();
    index.upsert(batch(AUTO_COMPACT_MIN, 10, &mut rng)).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while index.is_compacting() {
        assert!(std::time::Instant::now() < deadline, "the compaction did not finish");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(index.loose_entries() <= 10, "{} loose entries left", index.loose_entries());
    assert!(store.dump().iter().any(|(_, k, _)| k[0] == b'p'));
    // Half the item count is needed too: a large packed index is not rewritten for a few writes.
    index.upsert(batch(0, 10, &mut rng)).unwrap();
    assert!(!index.compaction_due());
    drop(index);
    client.close();
    let reloaded = Client::new(store, 2).unwrap().load_index("p", &[1; 32]).unwrap();
    assert_eq!(reloaded.count().unwrap(), AUTO_COMPACT_MIN + 10);
}

/// A store that refuses large batches while `full` is set, as a nearly full disk would: small
/// writes succeed, a compaction's batch fails. With `reclaim_fails`, giving space back fails.
struct NearlyFull {
    inner: MemoryStorage,
    full: std::sync::atomic::AtomicBool,
    reclaim_fails: bool,
}

impl Storage for NearlyFull {
    fn get(&self, space: &str, key: &[u8]) -> ciphervec_core::Result<Option<Vec<u8>>> {
        self.inner.get(space, key)
    }
    fn write(&self, space: &str, changes: Vec<ciphervec_core::Change>) -> ciphervec_core::Result<()> {
        if self.full.load(std::sync::atomic::Ordering::SeqCst) && changes.len() > 100 {
            return Err(ciphervec_core::Error::Io("No space left on device (os error 28)".into()));
        }
        self.inner.write(space, changes)
    }
    fn scan_range_batches(
        &self,
        space: &str,
        start: &[u8],
        end: Option<&[u8]>,
        batch_bytes: usize,
        sink: &mut dyn FnMut(ciphervec_core::EntryBatch) -> ciphervec_core::Result<()>,
    ) -> ciphervec_core::Result<()> {
        self.inner.scan_range_batches(space, start, end, batch_bytes, sink)
    }
    fn spaces(&self) -> ciphervec_core::Result<Vec<String>> {
        self.inner.spaces()
    }
    fn drop_space(&self, space: &str) -> ciphervec_core::Result<()> {
        self.inner.drop_space(space)
    }
    fn export(
        &self,
        batch_bytes: usize,
        sink: &mut dyn FnMut(&str, ciphervec_core::EntryBatch) -> ciphervec_core::Result<()>,
    ) -> ciphervec_core::Result<()> {
        self.inner.export(batch_bytes, sink)
    }
    fn reclaim_space(&self) -> ciphervec_core::Result<u64> {
        if self.reclaim_fails {
            return Err(ciphervec_core::Error::Io("ftruncate: Input/output error (os error 5)".into()));
        }
        self.inner.reclaim_space()
    }
}

/// A background compaction that fails is kept for the caller (once), changes nothing, and
/// the next due write retries it.
#[test]
fn a_failed_background_compaction_is_reported_once_and_retried() {
    use ciphervec_core::BackgroundTask;
    use ciphervec_core::AUTO_COMPACT_MIN;
    use std::sync::atomic::Ordering::SeqCst;
    let store = Arc::new(NearlyFull { inner: MemoryStorage::new(), full: true.into(), reclaim_fails: false });
    let client = Client::new(store.clone(), 2).unwrap();
    let index = client.create_index("p", &[1; 32], Some(DIM), Metric::Euclidean).unwrap();
    let mut rng = Rng(3);
    let batch = |from: usize, n: usize, rng: &mut Rng| -> Vec<NewItem> {
        (from..from + n).map(|i| common::item(&i.to_string(), rng.vector(DIM))).collect()
    };
    let wait = |index: &Arc<ciphervec_core::Index>| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while index.is_compacting() {
            assert!(std::time::Instant::now() < deadline, "the compaction did not finish");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    };
    // The last of these writes makes a compaction due and starts it; it fails.
    for from in (0..AUTO_COMPACT_MIN).step_by(64) {
        assert!(index.take_background_failure().is_none());
        index.upsert(batch(from, 64, &mut rng)).unwrap();
    }
    wait(&index);
    let failure = index.take_background_failure().expect("the failure is kept");
    assert_eq!(failure.task, BackgroundTask::Compaction);
    assert_eq!(failure.error.code(), "ERR_IO");
    assert!(failure.error.to_string().contains("No space left"), "{}", failure.error);
    assert!(index.take_background_failure().is_none(), "taken once");
    assert_eq!(index.loose_entries(), AUTO_COMPACT_MIN, "nothing changed");
    assert!(store.inner.dump().iter().all(|(_, k, _)| k[0] != b'p'));

    store.full.store(false, SeqCst);
    // The next due write retries.
    index.upsert(batch(AUTO_COMPACT_MIN, 1, &mut rng)).unwrap();
    wait(&index);
    assert!(index.take_background_failure().is_none());
    assert_eq!(index.loose_entries(), 0);
    drop(index);
    client.close();
    let reloaded = Client::new(store, 2).unwrap().load_index("p", &[1; 32]).unwrap();
    assert_eq!(reloaded.count().unwrap(), AUTO_COMPACT_MIN + 1);
}

/// The same for auto-training: its failure (here its install batch) is kept, and the index
/// stays untrained and intact.
#[test]
fn a_failed_auto_training_is_reported() {
    use ciphervec_core::BackgroundTask;
    let store = Arc::new(NearlyFull { inner: MemoryStorage::new(), full: true.into(), reclaim_fails: false });
    let client = Client::new(store.clone(), 2).unwrap();
    let index = client.create_index("p", &[1; 32], Some(DIM), Metric::Euclidean).unwrap();
    index.set_auto_train(ciphervec_core::AutoTrain::On(Some(1000))).unwrap();
    let mut rng = Rng(4);
    let mut started = Vec::new();
    for from in (0..1000).step_by(50) {
        let batch = (from..from + 50).map(|i| common::item(&i.to_string(), rng.vector(DIM))).collect();
        started.push(index.upsert(batch).unwrap().training_started);
    }
    assert_eq!(started.iter().filter(|&&s| s).count(), 1, "the write that reached 1000 started it");
    assert!(started[19]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while index.is_training() {
        assert!(std::time::Instant::now() < deadline, "training did not finish");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let failure = index.take_background_failure().expect("the failure is kept");
    assert_eq!((failure.task, failure.error.code()), (BackgroundTask::Training, "ERR_IO"));
    assert!(!index.is_trained());
    assert_eq!(index.count().unwrap(), 1000);
}

/// A compaction or a training run rewrites the whole index next to what it replaces; then the
/// store gives the freed space back, so the file ends near the size of what it holds. Every
/// item is intact after a restart.
#[test]
fn compaction_and_training_give_the_freed_file_space_back() {
    const DIM: usize = 256;
    let dir = std::env::temp_dir().join(format!("ciphervec-reclaim-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = Arc::new(DiskStorage::open(&dir).unwrap());
    let file = store.file().to_path_buf();
    let len = || std::fs::metadata(&file).unwrap().len();
    let client = Client::new(store.clone(), 2).unwrap();
    let index = client.create_index("p", &[9; 32], Some(DIM), Metric::Euclidean).unwrap();
    let mut rng = Rng(11);
    let mut model = BTreeMap::new();
    let mut upsert = |ids: std::ops::Range<usize>, rng: &mut Rng| {
        let batch: Vec<NewItem> = ids.map(|i| common::item(&format!("id-{i}"), rng.vector(DIM))).collect();
        model.extend(batch.iter().map(|it| (it.id.clone(), it.vector.clone())));
        index.upsert(batch).unwrap();
    };
    for from in (0..40_000).step_by(5000) {
        upsert(from..from + 5000, &mut rng);
    }
    // What the store holds: its sealed entries.
    let held = || -> u64 {
        store
            .scan_prefix(&store.spaces().unwrap()[0], b"")
            .unwrap()
            .iter()
            .map(|(k, v)| (k.len() + v.len()) as u64)
            .sum()
    };
    let loose = len();
    index.compact().unwrap();
    let packed = len();
    assert!(packed < held() * 5 / 4, "compacted: {packed} bytes of file for {} held (loose: {loose})", held());
    for from in (0..20_000).step_by(5000) {
        upsert(from..from + 5000, &mut rng);
    }
    let params = TrainParams { n_lists: Some(64), max_iters: Some(4), ..Default::default() };
    index.train(&params, &AtomicBool::new(false), &|_| {}).unwrap();
    let trained = len();
    assert!(trained < held() * 5 / 4, "trained: {trained} bytes of file for {} held", held());
    assert!(index.take_background_failure().is_none());
    drop(index);
    client.close();
    store.close();
    let client = Client::new(Arc::new(DiskStorage::open(&dir).unwrap()), 2).unwrap();
    let index = client.load_index("p", &[9; 32]).unwrap();
    assert!(index.is_trained());
    let ids: Vec<String> = model.keys().cloned().collect();
    let got = index.get(&ids, ALL).unwrap();
    assert_eq!(got.len(), model.len());
    for item in got {
        assert_eq!(item.vector.as_deref(), Some(model[&item.id].as_slice()), "{}", item.id);
    }
    client.close();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Giving space back comes after the rewrite is durable, so its failure fails neither the
/// compaction nor the training: it is kept as a background failure and the index is intact.
#[test]
fn a_failed_reclaim_is_reported_and_fails_nothing() {
    use ciphervec_core::BackgroundTask;
    let store = Arc::new(NearlyFull { inner: MemoryStorage::new(), full: false.into(), reclaim_fails: true });
    let client = Client::new(store.clone(), 2).unwrap();
    let index = client.create_index("p", &[2; 32], Some(DIM), Metric::Euclidean).unwrap();
    let mut rng = Rng(8);
    index.upsert((0..500).map(|i| common::item(&i.to_string(), rng.vector(DIM))).collect()).unwrap();
    index.compact().unwrap();
    let failure = index.take_background_failure().expect("the failure is kept");
    assert_eq!((failure.task, failure.error.code()), (BackgroundTask::Reclaim, "ERR_IO"));
    assert_eq!(index.loose_entries(), 0, "the compaction is done");
    let params = TrainParams { n_lists: Some(4), max_iters: Some(2), ..Default::default() };
    index.train(&params, &AtomicBool::new(false), &|_| {}).unwrap();
    assert_eq!(index.take_background_failure().map(|f| f.task), Some(BackgroundTask::Reclaim));
    drop(index);
    client.close();
    let reloaded = Client::new(store, 2).unwrap().load_index("p", &[2; 32]).unwrap();
    assert!(reloaded.is_trained());
    assert_eq!(reloaded.count().unwrap(), 500);
}
