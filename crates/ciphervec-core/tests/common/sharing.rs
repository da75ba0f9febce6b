//! Scenarios for clients that share one store, as processes sharing one database do. Each
//! takes `open`, which opens a new client over the shared store (a new "process"), and runs
//! on the in-memory shared store (`tests/sharing.rs`) and on PostgreSQL (`tests/postgres.rs`).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ciphervec_core::{Client, Include, Index, Metric, NewItem, Search, TrainParams};

use super::{item, Rng};

pub type Open<'a> = &'a (dyn Fn() -> Client + Sync);

const ALL: Include = Include { distance: false, metadata: true, contents: true, vector: true };

fn items(from: usize, n: usize, version: u32, dim: usize) -> Vec<NewItem> {
    let mut rng = Rng(from as u64 * 7919 + version as u64 + 1);
    (from..from + n)
        .map(|i| {
            let mut it = item(&format!("id-{i}"), rng.vector(dim));
            it.metadata = Some(ciphervec_core::Meta::from(&serde_json::json!({ "v": version, "i": i })));
            it
        })
        .collect()
}

/// Every item of `index`, by id: (vector, metadata as JSON text).
pub fn contents(index: &Index) -> BTreeMap<String, (Vec<f32>, String)> {
    let ids = index.list_ids().unwrap();
    index
        .get(&ids, ALL)
        .unwrap()
        .into_iter()
        .map(|v| (v.id, (v.vector.unwrap(), format!("{:?}", v.metadata))))
        .collect()
}

/// Waits until `done` holds, failing (instead of hanging) after two minutes.
pub fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Writes in one client are seen by another: after `sync()` at once, and without it once
/// its follower catches up. Overwrites, deletes and re-adds converge; each reads its own
/// writes.
pub fn writes_reach_every_client(open: Open, name: &str) {
    let key = [7u8; 32];
    let (a, b) = (open(), open());
    let ia = a.create_index(name, &key, None, Metric::Euclidean).unwrap();
    ia.upsert(items(0, 300, 1, 8)).unwrap();
    let ib = b.load_index(name, &key).unwrap();
    assert_eq!(contents(&ib), contents(&ia), "a load sees every committed write");
    ia.upsert(items(100, 100, 2, 8)).unwrap(); // overwrites
    ia.delete(&(250..260).map(|i| format!("id-{i}")).collect::<Vec<_>>()).unwrap();
    ib.upsert(items(300, 50, 3, 8)).unwrap(); // a write builds on the other's writes
    assert_eq!(ib.count().unwrap(), 340, "the writer applied the other's commits before writing");
    // a's follower may or may not have applied b's commit yet; never anything in between.
    let seen = ia.count().unwrap();
    assert!(seen == 290 || seen == 340, "a holds its own writes, with or without b's: {seen}");
    ia.sync().unwrap();
    assert_eq!(contents(&ia), contents(&ib));
    // Without sync: the follower catches up by itself.
    ia.delete(&["id-0".to_string()]).unwrap();
    ia.upsert(items(255, 2, 4, 8)).unwrap(); // re-added after their delete
    let want = contents(&ia);
    eventually("b follows a", || contents(&ib) == want);
    assert_eq!(ib.count().unwrap(), 341);
    // And a third client loading now reads the same.
    let c = open();
    assert_eq!(contents(&c.load_index(name, &key).unwrap()), want);
    ia.destroy().unwrap();
}

/// Two clients write the same and different ids at once: nothing acknowledged is lost, and
/// both end with the same items, which a fresh load reads too.
pub fn concurrent_writers_converge(open: Open, name: &str) {
    let key = [8u8; 32];
    let (a, b) = (open(), open());
    let ia = a.create_index(name, &key, None, Metric::Euclidean).unwrap();
    ia.upsert(items(0, 10, 0, 4)).unwrap();
    let ib = b.load_index(name, &key).unwrap();
    std::thread::scope(|s| {
        for (index, version) in [(&ia, 1u32), (&ib, 2u32)] {
            s.spawn(move || {
                for round in 0..20 {
                    // Overlapping ids 0..50, plus ids only this writer writes.
                    index.upsert(items(round * 2, 10, version, 4)).unwrap();
                    index.upsert(items(1000 * version as usize + round * 5, 5, version, 4)).unwrap();
                    if round % 4 == 3 {
                        index.delete(&[format!("id-{}", round)]).unwrap();
                    }
                }
            });
        }
    });
    ia.sync().unwrap();
    ib.sync().unwrap();
    let (ca, cb) = (contents(&ia), contents(&ib));
    assert_eq!(ca, cb, "both clients end with the same items");
    for version in [1, 2] {
        for i in 0..100 {
            let id = format!("id-{}", 1000 * version + i);
            assert!(ca.contains_key(&id), "{id}, acknowledged, is there");
        }
    }
    let fresh = open().load_index(name, &key).unwrap();
    assert_eq!(contents(&fresh), ca, "and the store holds exactly that");
    ia.destroy().unwrap();
}

/// Training in one client while another writes and queries: no failed call, no lost write,
/// and every client ends on the same lists (the same answers to the same queries).
pub fn training_while_others_write(open: Open, name: &str) {
    let key = [9u8; 32];
    let (a, b) = (open(), open());
    let ia = a.create_index(name, &key, None, Metric::Euclidean).unwrap();
    ia.upsert(items(0, 3000, 0, 8)).unwrap();
    let ib = b.load_index(name, &key).unwrap();
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let mut round = 0;
            while !stop.load(std::sync::atomic::Ordering::Acquire) || round < 5 {
                ib.upsert(items(10_000 + round * 20, 20, 1, 8)).unwrap();
                let q = Rng(round as u64 + 5).vector(8);
                let hits = ib.query(
                    &q,
                    &Search { k: 5, n_probes: None, rerank: None, filter: None, include: Include::default() },
                );
                assert_eq!(hits.unwrap().len(), 5, "queries keep answering");
                round += 1;
            }
            round
        });
        let params = TrainParams { n_lists: Some(16), max_iters: Some(10), ..Default::default() };
        let report = ia.train(&params, &AtomicBool::new(false), &|_| {}).unwrap();
        assert_eq!(report.n_lists, 16);
        stop.store(true, std::sync::atomic::Ordering::Release);
        let rounds = writer.join().unwrap();
        ia.sync().unwrap();
        ib.sync().unwrap();
        assert_eq!(ia.count().unwrap(), 3000 + rounds * 20, "no write was lost");
    });
    let ic = open().load_index(name, &key).unwrap();
    assert!(ia.is_trained() && ib.is_trained() && ic.is_trained());
    assert_eq!(contents(&ia), contents(&ib));
    let search = Search { k: 10, n_probes: Some(2), rerank: None, filter: None, include: Include::default() };
    let mut rng = Rng(11);
    for _ in 0..20 {
        let q = rng.vector(8);
        let ids = |i: &Index| i.query(&q, &search).unwrap().into_iter().map(|h| h.id).collect::<Vec<_>>();
        assert_eq!(ids(&ia), ids(&ib), "same lists in both clients");
        assert_eq!(ids(&ia), ids(&ic), "and in the store");
    }
    ia.destroy().unwrap();
}

/// One training run per index across clients: a second `train()` elsewhere is refused while
/// the first runs, and allowed after it.
pub fn one_training_run_at_a_time(open: Open, name: &str) {
    let key = [10u8; 32];
    let (a, b) = (open(), open());
    let ia = a.create_index(name, &key, None, Metric::Euclidean).unwrap();
    ia.upsert(items(0, 2000, 0, 8)).unwrap();
    let ib = b.load_index(name, &key).unwrap();
    let (started_tx, started) = mpsc::channel();
    let (release, released) = mpsc::channel::<()>();
    let released = std::sync::Mutex::new(released);
    std::thread::scope(|s| {
        let run = s.spawn(|| {
            let params = TrainParams { n_lists: Some(8), max_iters: Some(3), tolerance: 0.0, ..Default::default() };
            let on_progress = |_: &ciphervec_core::TrainingProgress| {
                let _ = started_tx.send(());
                let _ = released.lock().unwrap().recv_timeout(Duration::from_secs(120));
            };
            ia.train(&params, &AtomicBool::new(false), &on_progress).unwrap()
        });
        started.recv_timeout(Duration::from_secs(120)).expect("training started");
        let params = TrainParams { n_lists: Some(8), ..Default::default() };
        let err = ib.train(&params, &AtomicBool::new(false), &|_| {}).unwrap_err();
        assert_eq!(err.code(), "ERR_TRAINING_IN_PROGRESS", "{err}");
        for _ in 0..3 {
            let _ = release.send(());
        }
        run.join().unwrap();
    });
    ib.sync().unwrap();
    assert!(ib.is_trained());
    let params = TrainParams { n_lists: Some(4), max_iters: Some(3), ..Default::default() };
    assert_eq!(ib.train(&params, &AtomicBool::new(false), &|_| {}).unwrap().n_lists, 4, "free again");
    ia.sync().unwrap();
    assert_eq!(ia.n_lists(), 4);
    ia.destroy().unwrap();
}

/// A compaction in one client: the others switch to the packed store and go on writing.
/// Deleting the index closes every client's handle; creating a name taken elsewhere fails.
pub fn compaction_deletion_and_names(open: Open, name: &str) {
    let key = [11u8; 32];
    let (a, b) = (open(), open());
    let ia = a.create_index(name, &key, None, Metric::Euclidean).unwrap();
    assert_eq!(b.create_index(name, &key, None, Metric::Euclidean).unwrap_err().code(), "ERR_INDEX_EXISTS");
    ia.upsert(items(0, 500, 0, 4)).unwrap();
    let ib = b.load_index(name, &key).unwrap();
    ia.delete(&["id-1".to_string()]).unwrap();
    ia.compact().unwrap();
    ia.upsert(items(500, 10, 1, 4)).unwrap();
    ib.upsert(items(510, 10, 2, 4)).unwrap();
    ib.delete(&["id-2".to_string()]).unwrap();
    ia.sync().unwrap();
    assert_eq!(contents(&ia), contents(&ib));
    assert_eq!(ia.count().unwrap(), 518);
    assert_eq!(contents(&open().load_index(name, &key).unwrap()), contents(&ia));
    ib.destroy().unwrap();
    let err = ia.sync().unwrap_err();
    assert_eq!(err.code(), "ERR_CLOSED", "{err}");
    assert_eq!(ia.count().unwrap_err().code(), "ERR_CLOSED");
    assert_eq!(open().load_index(name, &key).unwrap_err().code(), "ERR_INDEX_NOT_FOUND");
    // The name is free again.
    let again = a.create_index(name, &key, None, Metric::Euclidean).unwrap();
    again.destroy().unwrap();
}

/// Every seal of every client counts against the index's one nonce budget.
pub fn seals_are_counted_across_clients(open: Open, name: &str, seals: impl Fn(&Index) -> u64) {
    let key = [12u8; 32];
    let (a, b) = (open(), open());
    let ia = a.create_index(name, &key, None, Metric::Euclidean).unwrap();
    let ib = b.load_index(name, &key).unwrap();
    ia.upsert(items(0, 100, 0, 4)).unwrap();
    let after_a = seals(&ia);
    ib.upsert(items(100, 100, 0, 4)).unwrap();
    assert!(seals(&ib) > after_a + 100, "b continued a's count: {} after {after_a}", seals(&ib));
    ia.sync().unwrap();
    assert_eq!(seals(&ia), seals(&ib), "a resumed from b's");
    ia.destroy().unwrap();
}

pub fn all(open: Open, prefix: &str, seals: impl Fn(&Index) -> u64) {
    writes_reach_every_client(open, &format!("{prefix}-follow"));
    concurrent_writers_converge(open, &format!("{prefix}-converge"));
    training_while_others_write(open, &format!("{prefix}-train"));
    one_training_run_at_a_time(open, &format!("{prefix}-claim"));
    compaction_deletion_and_names(open, &format!("{prefix}-compact"));
    seals_are_counted_across_clients(open, &format!("{prefix}-seals"), seals);
}

/// An `Arc` helper so callers can build `open` closures over a shared store.
pub fn opener<S: ciphervec_core::Storage + 'static>(store: Arc<S>) -> impl Fn() -> Client + Sync {
    move || Client::new(store.clone(), 2).unwrap()
}
