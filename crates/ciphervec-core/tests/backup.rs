//! `Client::backup`: a consistent copy of a whole store, as a new disk store, taken while the
//! client goes on writing; it loads with the indexes' keys and equals the source at one moment.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use ciphervec_core::{
    AutoTrain, Client, DiskStorage, EntryBatch, Include, Index, MemoryStorage, Metric, NewItem, Search, Storage,
    TrainParams,
};
use common::{PausedExport, Rng};
use serde_json::json;

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ciphervec-backup-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Items per upsert in the concurrent test; every item of batch `n` has metadata `{ batch: n }`.
const BATCH: usize = 20;

fn batch(n: usize, dim: usize) -> Vec<NewItem> {
    (0..BATCH)
        .map(|j| NewItem {
            id: format!("b{n}-{j}"),
            vector: Rng((n * 1000 + j + 1) as u64).vector(dim),
            metadata: Some(json!({ "batch": n }).into()),
            contents: None,
        })
        .collect()
}

fn items(from: usize, n: usize, dim: usize) -> Vec<NewItem> {
    let mut rng = Rng(from as u64 + 17);
    (from..from + n)
        .map(|i| NewItem { id: format!("id-{i}"), vector: rng.vector(dim), metadata: None, contents: None })
        .collect()
}

fn open_disk(path: &Path) -> Client {
    Client::new(Arc::new(DiskStorage::open(path).unwrap()), 2).unwrap()
}

/// Every item of `index`, sorted by id, with its vector and metadata.
fn contents(index: &Index) -> Vec<(String, Option<Vec<f32>>, Option<String>)> {
    let mut ids = index.list_ids().unwrap();
    ids.sort();
    let got = index.get(&ids, Include::GET_DEFAULT).unwrap();
    got.into_iter().map(|v| (v.id, v.vector, v.metadata.map(|m| format!("{m:?}")))).collect()
}

/// A disk store backed up while a writer thread upserts batches (compactions run in the
/// background meanwhile); the export waits at its first batch for three more upserts, so
/// writes certainly happen during the backup. The backup opens as a disk store, the index
/// loads with its key (which checks the sealed summary against every record), and each batch
/// is wholly in it or not at all: batches 0..k, k from the batches done when the backup
/// started to before the upserts made while it ran.
#[test]
fn a_backup_taken_during_batched_upserts_holds_each_batch_wholly_or_not_at_all() {
    let (src, dst) = (dir("live-src"), dir("live-dst"));
    let (key, other_key) = ([3u8; 32], [4u8; 32]);
    let done = Arc::new(AtomicUsize::new(0));
    let disk: Arc<dyn Storage> = Arc::new(DiskStorage::open(&src).unwrap());
    let client = Client::new(Arc::new(PausedExport { inner: disk, done: done.clone(), by: 3 }), 2).unwrap();
    let index = client.create_index("live", &key, Some(8), Metric::Euclidean).unwrap();
    index.set_auto_train(AutoTrain::Off).unwrap();
    index.upsert(items(0, 5000, 8)).unwrap();
    let other = client.create_index("other", &other_key, Some(8), Metric::Cosine).unwrap();
    other.upsert(items(0, 300, 8)).unwrap();
    let other_before = contents(&other);

    let stop = AtomicBool::new(false);
    let (stats, started, returned) = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let mut n = 0;
            while !stop.load(Ordering::Acquire) {
                index.upsert(batch(n, 8)).unwrap();
                n += 1;
                done.store(n, Ordering::Release);
            }
        });
        while done.load(Ordering::Acquire) < 5 {
            std::thread::yield_now();
        }
        let started = done.load(Ordering::Acquire);
        let stats = client.backup(&dst).unwrap();
        let returned = done.load(Ordering::Acquire);
        while done.load(Ordering::Acquire) < returned + 3 {
            std::thread::yield_now();
        }
        stop.store(true, Ordering::Release);
        writer.join().unwrap();
        (stats, started, returned)
    });
    let total = done.load(Ordering::Acquire);
    assert_eq!(index.count().unwrap(), 5000 + total * BATCH, "the live index took every batch");
    assert_eq!(stats.spaces, 2, "both indexes");
    assert!(stats.entries > 5300, "{stats:?}");
    assert_eq!(stats.bytes, std::fs::metadata(dst.join(DiskStorage::FILE_NAME)).unwrap().len());
    client.close();

    let copy = open_disk(&dst);
    let loaded = copy.load_index("live", &key).unwrap();
    let mut present = Vec::new();
    for n in 0..total {
        let ids: Vec<String> = (0..BATCH).map(|j| format!("b{n}-{j}")).collect();
        let got = loaded.get(&ids, Include::GET_DEFAULT).unwrap();
        assert!(got.is_empty() || got.len() == BATCH, "batch {n}: {} of its {BATCH} items", got.len());
        let want = batch(n, 8)[0].metadata.as_ref().map(|m| format!("{m:?}"));
        for item in &got {
            assert_eq!(item.metadata.as_ref().map(|m| format!("{m:?}")), want, "batch {n}: its tag");
        }
        present.push(!got.is_empty());
    }
    let k = present.iter().take_while(|&&p| p).count();
    assert!(present[k..].iter().all(|&p| !p), "the batches in the backup are a prefix: {present:?}");
    assert!(started <= k && k + 2 <= returned, "{k} batches: not of a moment while it ran ({started}..{returned})");
    assert_eq!(loaded.count().unwrap(), 5000 + k * BATCH);
    assert_eq!(loaded.get(&["id-4999".to_string()], Include::GET_DEFAULT).unwrap().len(), 1);
    let other_copy = copy.load_index("other", &other_key).unwrap();
    assert_eq!(contents(&other_copy), other_before, "the other index, equal");
    // The copy is a store like any other: it takes writes and keeps them.
    loaded.upsert(batch(total + 1, 8)).unwrap();
    copy.close();
    let again = open_disk(&dst);
    assert_eq!(again.load_index("live", &key).unwrap().count().unwrap(), 5000 + (k + 1) * BATCH);
    again.close();
    for d in [src, dst] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

/// A trained, compacted index (segments, centroids, code book) in a memory store backs up
/// to a disk store whose copy answers every query exactly as the source does.
#[test]
fn a_trained_and_compacted_index_backs_up_with_identical_query_results() {
    let dst = dir("trained");
    let key = [9u8; 32];
    let client = Client::new(Arc::new(MemoryStorage::new()), 2).unwrap();
    let index = client.create_index("trained", &key, Some(16), Metric::Cosine).unwrap();
    index.set_auto_train(AutoTrain::Off).unwrap();
    index.upsert(items(0, 3000, 16)).unwrap();
    let params = TrainParams { n_lists: Some(16), ..TrainParams::default() };
    index.train(&params, &AtomicBool::new(false), &|_| {}).unwrap();
    index.compact().unwrap();
    index.upsert(items(3000, 50, 16)).unwrap();
    index.delete(&["id-7".to_string()]).unwrap();
    assert!(index.is_trained());
    let stats = client.backup(&dst).unwrap();
    assert_eq!(stats.spaces, 1);

    let copy = open_disk(&dst);
    let loaded = copy.load_index("trained", &key).unwrap();
    assert!(loaded.is_trained());
    assert_eq!((loaded.count().unwrap(), loaded.n_lists()), (index.count().unwrap(), index.n_lists()));
    assert_eq!(contents(&loaded), contents(&index));
    let search = Search {
        k: 10,
        n_probes: Some(4),
        rerank: None,
        filter: None,
        include: Include { distance: true, ..Include::default() },
    };
    let mut rng = Rng(99);
    for q in 0..30 {
        let v = rng.vector(16);
        let (a, b) = (index.query(&v, &search).unwrap(), loaded.query(&v, &search).unwrap());
        let ids = |r: &[ciphervec_core::ItemView]| r.iter().map(|i| (i.id.clone(), i.distance)).collect::<Vec<_>>();
        assert_eq!(ids(&a), ids(&b), "query {q}");
    }
    copy.close();
    std::fs::remove_dir_all(&dst).unwrap();
}

/// A path that holds a store, a non-empty directory or a file is refused with
/// `ERR_INVALID_ARGUMENT`, and nothing there changes; an empty directory is fine. A closed
/// client refuses with `ERR_CLOSED` and writes nothing.
#[test]
fn a_backup_goes_only_to_a_new_or_empty_directory() {
    let client = Client::new(Arc::new(MemoryStorage::new()), 2).unwrap();
    client.create_index("i", &[1; 32], Some(4), Metric::Euclidean).unwrap().upsert(items(0, 10, 4)).unwrap();

    let store_dir = dir("refused-store");
    let existing = open_disk(&store_dir);
    existing.create_index("kept", &[2; 32], Some(4), Metric::Euclidean).unwrap().upsert(items(0, 3, 4)).unwrap();
    existing.close();
    let file = store_dir.join(DiskStorage::FILE_NAME);
    let before = std::fs::read(&file).unwrap();
    assert_eq!(client.backup(&store_dir).unwrap_err().code(), "ERR_INVALID_ARGUMENT");
    assert!(std::fs::read(&file).unwrap() == before, "the store there is untouched");
    let names: Vec<_> = std::fs::read_dir(&store_dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, [DiskStorage::FILE_NAME]);

    let busy = dir("refused-busy");
    std::fs::create_dir_all(&busy).unwrap();
    std::fs::write(busy.join("notes.txt"), b"mine").unwrap();
    assert_eq!(client.backup(&busy).unwrap_err().code(), "ERR_INVALID_ARGUMENT");
    let names: Vec<_> = std::fs::read_dir(&busy).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["notes.txt"]);
    assert_eq!(client.backup(&busy.join("notes.txt")).unwrap_err().code(), "ERR_INVALID_ARGUMENT", "a file");
    assert_eq!(client.backup(Path::new("")).unwrap_err().code(), "ERR_INVALID_ARGUMENT");

    let empty = dir("empty-ok");
    std::fs::create_dir_all(&empty).unwrap();
    assert_eq!(client.backup(&empty).unwrap().spaces, 1);
    assert_eq!(open_disk(&empty).load_index("i", &[1; 32]).unwrap().count().unwrap(), 10);

    let never = dir("closed");
    client.close();
    assert_eq!(client.backup(&never).unwrap_err().code(), "ERR_CLOSED");
    assert!(!never.exists(), "a closed client creates nothing");
    for d in [store_dir, busy, empty] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

/// A source whose export fails part way (here after two batches, as a lost connection would).
struct FailingExport(MemoryStorage);

impl Storage for FailingExport {
    fn get(&self, space: &str, key: &[u8]) -> ciphervec_core::Result<Option<Vec<u8>>> {
        self.0.get(space, key)
    }
    fn write(&self, space: &str, changes: Vec<ciphervec_core::Change>) -> ciphervec_core::Result<()> {
        self.0.write(space, changes)
    }
    fn scan_range_batches(
        &self,
        space: &str,
        start: &[u8],
        end: Option<&[u8]>,
        batch_bytes: usize,
        sink: &mut dyn FnMut(EntryBatch) -> ciphervec_core::Result<()>,
    ) -> ciphervec_core::Result<()> {
        self.0.scan_range_batches(space, start, end, batch_bytes, sink)
    }
    fn spaces(&self) -> ciphervec_core::Result<Vec<String>> {
        self.0.spaces()
    }
    fn drop_space(&self, space: &str) -> ciphervec_core::Result<()> {
        self.0.drop_space(space)
    }
    fn export(
        &self,
        _: usize,
        sink: &mut dyn FnMut(&str, EntryBatch) -> ciphervec_core::Result<()>,
    ) -> ciphervec_core::Result<()> {
        let mut handed = 0;
        self.0.export(64, &mut |space, batch| {
            handed += 1;
            if handed > 2 {
                return Err(ciphervec_core::Error::Unavailable("the connection was lost".into()));
            }
            sink(space, batch)
        })
    }
}

/// A backup that fails part way leaves nothing behind: not a partial store, not the
/// directory it created.
#[test]
fn a_failed_backup_leaves_nothing_behind() {
    let client = Client::new(Arc::new(FailingExport(MemoryStorage::new())), 2).unwrap();
    client.create_index("i", &[1; 32], Some(4), Metric::Euclidean).unwrap().upsert(items(0, 100, 4)).unwrap();
    let dst = dir("failed");
    assert_eq!(client.backup(&dst).unwrap_err().code(), "ERR_UNAVAILABLE");
    assert!(!dst.exists(), "no directory, no partial store");
    let empty = dir("failed-empty");
    std::fs::create_dir_all(&empty).unwrap();
    assert_eq!(client.backup(&empty).unwrap_err().code(), "ERR_UNAVAILABLE");
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0, "the directory given stays empty");
    std::fs::remove_dir_all(&empty).unwrap();
}
