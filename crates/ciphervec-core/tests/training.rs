//! IVF training: recall, exactness, persistence, abort, and writes during training.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use ciphervec_core::{Client, Include, Index, Metric, NewItem, Search, TrainParams};
use common::{client, clustered, item, Rng};

const IDS: Include = Include { distance: true, metadata: false, contents: false, vector: false };

fn top(k: usize, n_probes: Option<usize>) -> Search<'static> {
    Search { k, n_probes, rerank: None, filter: None, include: IDS }
}

fn filled(metric: Metric, data: &[Vec<f32>]) -> (Arc<ciphervec_core::MemoryStorage>, Client, [u8; 32], Arc<Index>) {
    let (store, client, key) = client();
    let index = client.create_index("t", &key, None, metric).unwrap();
    index.upsert(data.iter().enumerate().map(|(i, v)| item(&i.to_string(), v.clone())).collect()).unwrap();
    (store, client, key, index)
}

fn no_progress(_: &ciphervec_core::TrainingProgress) {}

fn recall_at_10(index: &Index, queries: &[Vec<f32>], exact: &[Vec<String>], n_probes: Option<usize>) -> f64 {
    let mut found = 0;
    for (q, truth) in queries.iter().zip(exact) {
        let got: HashSet<String> = index.query(q, &top(10, n_probes)).unwrap().into_iter().map(|h| h.id).collect();
        found += truth.iter().filter(|id| got.contains(*id)).count();
    }
    found as f64 / (10 * queries.len()) as f64
}

#[test]
fn trained_search_has_high_recall_and_is_exact_with_all_probes() {
    for metric in [Metric::Euclidean, Metric::Cosine] {
        let data = clustered(20_000, 32, 64, 1);
        let (_, _, _, index) = filled(metric, &data);
        let queries: Vec<Vec<f32>> =
            clustered(100, 32, 64, 1).into_iter().map(|v| v.iter().map(|x| x + 0.01).collect()).collect();
        let exact: Vec<Vec<String>> = queries
            .iter()
            .map(|q| index.query(q, &top(10, None)).unwrap().into_iter().map(|h| h.id).collect())
            .collect();
        assert!(!index.is_trained());
        let report = index.train(&TrainParams::default(), &AtomicBool::new(false), &no_progress).unwrap();
        assert!(index.is_trained());
        assert_eq!(report.n_lists, 512, "auto nLists for 20k vectors");
        assert_eq!(index.n_lists(), 512);
        assert!(report.iterations >= 1 && report.inertia > 0.0 && report.trained_on <= 20_000);
        let recall = recall_at_10(&index, &queries, &exact, None);
        assert!(recall >= 0.95, "{metric:?}: recall@10 {recall} at auto nProbes");
        assert_eq!(
            recall_at_10(&index, &queries, &exact, Some(512)),
            1.0,
            "{metric:?}: nProbes = nLists must be exact"
        );
        assert!(recall_at_10(&index, &queries, &exact, Some(1)) < recall, "one probe should lose some recall");
    }
}

/// From 96 dimensions up Lloyd skips the lists its bounds rule out: the report shows fewer
/// distances than assignments × lists, and the index answers as well as plain training's.
#[test]
fn training_at_high_dimension_measures_fewer_distances_and_keeps_recall() {
    let dim = 128;
    let data = clustered(20_000, dim, 64, 5);
    let (_, _, _, index) = filled(Metric::Euclidean, &data);
    let queries: Vec<Vec<f32>> =
        clustered(100, dim, 64, 5).into_iter().map(|v| v.iter().map(|x| x + 0.01).collect()).collect();
    let exact: Vec<Vec<String>> =
        queries.iter().map(|q| index.query(q, &top(10, None)).unwrap().into_iter().map(|h| h.id).collect()).collect();
    let report = index.train(&TrainParams::default(), &AtomicBool::new(false), &no_progress).unwrap();
    let all_pairs = (report.assigned * report.n_lists) as u64;
    assert!(report.distances < all_pairs, "{} of {all_pairs} distances: the bounds skipped none", report.distances);
    assert!(report.distances >= (report.trained_on * report.n_lists) as u64, "the first iteration measures all");
    let recall = recall_at_10(&index, &queries, &exact, None);
    assert!(recall >= 0.95, "recall@10 {recall} at auto nProbes");
    assert_eq!(recall_at_10(&index, &queries, &exact, Some(report.n_lists)), 1.0, "nProbes = nLists must be exact");
}

#[test]
fn trained_state_survives_reload_with_identical_results() {
    let data = clustered(5_000, 16, 20, 2);
    let (store, client, key, index) = filled(Metric::Euclidean, &data);
    let params = TrainParams { n_lists: Some(32), ..TrainParams::default() };
    index.train(&params, &AtomicBool::new(false), &no_progress).unwrap();
    index.upsert(vec![item("late", vec![0.5; 16])]).unwrap();
    index.delete(&["7".to_string()]).unwrap();
    let before: Vec<_> = (0..20).map(|i| index.query(&data[i * 7], &top(10, Some(4))).unwrap()).collect();
    drop((client, index));
    let reloaded = Client::new(store, 2).unwrap().load_index("t", &key).unwrap();
    assert!(reloaded.is_trained());
    assert_eq!(reloaded.n_lists(), 32);
    let after: Vec<_> = (0..20).map(|i| reloaded.query(&data[i * 7], &top(10, Some(4))).unwrap()).collect();
    assert_eq!(before, after);
    assert_eq!(reloaded.query(&[0.5; 16], &top(1, Some(1))).unwrap()[0].id, "late");
}

#[test]
fn bad_training_parameters_are_typed_errors() {
    let data = clustered(100, 4, 3, 3);
    let (_, _, _, index) = filled(Metric::Euclidean, &data);
    let stop = AtomicBool::new(false);
    let err =
        index.train(&TrainParams { n_lists: Some(64), ..TrainParams::default() }, &stop, &no_progress).unwrap_err();
    assert_eq!(err.code(), "ERR_INSUFFICIENT_VECTORS");
    assert!(err.to_string().contains("128") && err.to_string().contains("100"), "{err}");
    for bad in [
        TrainParams { n_lists: Some(0), ..TrainParams::default() },
        TrainParams { max_iters: Some(0), ..TrainParams::default() },
        TrainParams { batch_size: 0, ..TrainParams::default() },
        TrainParams { tolerance: f64::NAN, ..TrainParams::default() },
    ] {
        assert_eq!(index.train(&bad, &stop, &no_progress).unwrap_err().code(), "ERR_INVALID_ARGUMENT");
    }
    assert!(!index.is_trained() && !index.is_training());
}

/// An abort is observed within the iteration it lands in (k-means polls the flag in every
/// block): at most one more progress report follows it, however slow the machine is.
#[test]
fn abort_leaves_the_index_untrained_and_queryable() {
    let data = clustered(30_000, 32, 50, 4);
    let (_, _, _, index) = filled(Metric::Euclidean, &data);
    let stop = AtomicBool::new(false);
    let iterations = AtomicUsize::new(0);
    let params = TrainParams { n_lists: Some(100), max_iters: Some(10_000), tolerance: 0.0, ..TrainParams::default() };
    let (err, at_abort) = thread::scope(|s| {
        let aborter = s.spawn(|| {
            while iterations.load(Ordering::Acquire) < 2 {
                thread::sleep(Duration::from_millis(1));
            }
            let at_abort = iterations.load(Ordering::Acquire);
            stop.store(true, Ordering::Release);
            at_abort
        });
        let err = index.train(&params, &stop, &|_| {
            iterations.fetch_add(1, Ordering::AcqRel);
        });
        (err, aborter.join().unwrap())
    });
    assert_eq!(err.unwrap_err().code(), "ERR_ABORTED");
    let after = iterations.load(Ordering::Acquire) - at_abort;
    assert!(after <= 1, "{after} iterations reported after the abort");
    assert!(!index.is_trained() && !index.is_training());
    assert_eq!(index.query(&data[0], &top(1, None)).unwrap()[0].id, "0");
}

#[test]
fn a_second_training_run_is_refused_while_one_runs() {
    let data = clustered(30_000, 32, 50, 5);
    let (_, _, _, index) = filled(Metric::Euclidean, &data);
    let stop = Arc::new(AtomicBool::new(false));
    let runner = {
        let (index, stop) = (index.clone(), stop.clone());
        thread::spawn(move || {
            let params =
                TrainParams { n_lists: Some(100), max_iters: Some(10_000), tolerance: 0.0, ..TrainParams::default() };
            index.train(&params, &stop, &no_progress)
        })
    };
    while !index.is_training() {
        thread::yield_now();
    }
    let err = index.train(&TrainParams::default(), &AtomicBool::new(false), &no_progress).unwrap_err();
    assert_eq!(err.code(), "ERR_TRAINING_IN_PROGRESS");
    stop.store(true, Ordering::Release);
    assert_eq!(runner.join().unwrap().unwrap_err().code(), "ERR_ABORTED");
}

#[test]
fn writes_during_training_are_all_assigned_and_deletes_stick() {
    let data = clustered(20_000, 16, 40, 6);
    let (store, client, key, index) = filled(Metric::Euclidean, &data);
    let trainer = {
        let index = index.clone();
        thread::spawn(move || {
            let params =
                TrainParams { n_lists: Some(128), max_iters: Some(40), tolerance: 0.0, ..TrainParams::default() };
            index.train(&params, &AtomicBool::new(false), &no_progress).unwrap()
        })
    };
    let mut rng = Rng(60);
    let mut added = Vec::new();
    let mut deleted = Vec::new();
    let mut round = 0;
    while !trainer.is_finished() || round < 5 {
        let batch: Vec<NewItem> = (0..50).map(|i| item(&format!("new-{round}-{i}"), rng.vector(16))).collect();
        added.extend(batch.iter().map(|it| (it.id.clone(), it.vector.clone())));
        index.upsert(batch).unwrap();
        let gone: Vec<String> = (0..20).map(|i| (round * 20 + i).to_string()).collect();
        assert_eq!(index.delete(&gone).unwrap(), 20);
        deleted.extend(gone);
        index.query(&rng.vector(16), &top(5, None)).unwrap();
        round += 1;
    }
    trainer.join().unwrap();
    assert!(index.is_trained());
    for (id, v) in &added {
        assert_eq!(index.get(std::slice::from_ref(id), IDS).unwrap().len(), 1, "{id} lost");
        assert_eq!(&index.query(v, &top(1, None)).unwrap()[0].id, id, "{id} not found by its own vector");
    }
    assert!(index.get(&deleted, IDS).unwrap().is_empty());
    assert_eq!(index.count().unwrap(), 20_000 + added.len() - deleted.len());
    drop((client, index));
    let reloaded = Client::new(store, 2).unwrap().load_index("t", &key).unwrap();
    assert_eq!(reloaded.count().unwrap(), 20_000 + added.len() - deleted.len());
    assert!(reloaded.get(&deleted, IDS).unwrap().is_empty());
    let (id, v) = added.last().unwrap();
    assert_eq!(&reloaded.query(v, &top(1, None)).unwrap()[0].id, id);
}

/// From 96 dimensions up k-means hands back its sample's assignment to the final centroids,
/// and training assigns only the rest: items outside the sample, and every item whose vector
/// changed while k-means ran (replaced, added, or moved by a delete). Each item must still land
/// in the list nearest its vector: a query for its own vector probing one list finds it.
#[test]
fn training_reuses_the_sample_assignment_only_where_vectors_are_unchanged() {
    let dim = 128;
    let data = clustered(20_000, dim, 64, 8);
    let (_, _, _, index) = filled(Metric::Euclidean, &data);
    let mut rng = Rng(81);
    let replaced: Vec<(String, Vec<f32>)> = (0..300).map(|i| (i.to_string(), rng.vector(dim))).collect();
    let added: Vec<(String, Vec<f32>)> = (0..300).map(|i| (format!("new-{i}"), rng.vector(dim))).collect();
    let deleted: Vec<String> = (1000..1300).map(|i| i.to_string()).collect();
    let wrote = AtomicBool::new(false);
    // Written from the progress callback, between k-means iterations (no lock is held then).
    let during = |p: &ciphervec_core::TrainingProgress| {
        if p.iteration == 2 && !wrote.swap(true, Ordering::AcqRel) {
            let items = replaced.iter().chain(&added).map(|(id, v)| item(id, v.clone())).collect();
            index.upsert(items).unwrap();
            assert_eq!(index.delete(&deleted).unwrap(), deleted.len());
        }
    };
    // 64 lists sample 16,384 of the 20,000 items.
    let params = TrainParams { n_lists: Some(64), ..TrainParams::default() };
    let report = index.train(&params, &AtomicBool::new(false), &during).unwrap();
    assert!(wrote.load(Ordering::Acquire));
    let n = index.count().unwrap();
    assert_eq!(n, 20_000 + added.len() - deleted.len());
    let outside = n - report.trained_on;
    assert!(report.assigned_after >= outside + replaced.len(), "{} assigned after k-means", report.assigned_after);
    assert!(
        report.assigned_after < n / 2,
        "{} of {n} assigned after k-means: the sample's were not reused",
        report.assigned_after
    );
    let gone: HashSet<&str> = deleted.iter().map(String::as_str).collect();
    let changed: std::collections::HashMap<&str, &Vec<f32>> =
        replaced.iter().chain(&added).map(|(id, v)| (id.as_str(), v)).collect();
    let live = data.iter().enumerate().map(|(i, v)| (i.to_string(), v)).filter(|(id, _)| !gone.contains(id.as_str()));
    let mut checked = 0;
    for (id, original) in live.chain(added.iter().map(|(id, v)| (id.clone(), v))) {
        let v = changed.get(id.as_str()).copied().unwrap_or(original);
        let hit = &index.query(v, &top(1, Some(1))).unwrap()[0];
        assert!(
            hit.id == id || hit.distance == Some(0.0),
            "{id} is not in the list nearest its vector (got {})",
            hit.id
        );
        checked += 1;
    }
    assert_eq!(checked, n);
}

/// Once trained, the IVF lists hold the only copy of the vectors: every write, read,
/// retraining, compaction and reload must still see each item's latest vector.
#[test]
fn vectors_held_by_the_lists_stay_exact_through_writes_retraining_compaction_and_reload() {
    use std::collections::BTreeMap;
    let dim = 8;
    let data = clustered(3_000, dim, 20, 11);
    let (store, client, key, index) = filled(Metric::Cosine, &data);
    let mut model: BTreeMap<String, Vec<f32>> =
        data.iter().enumerate().map(|(i, v)| (i.to_string(), v.clone())).collect();
    let all = Include { distance: false, metadata: false, contents: false, vector: true };
    let check = |index: &Index, model: &BTreeMap<String, Vec<f32>>, when: &str| {
        let ids: Vec<String> = model.keys().cloned().collect();
        let got = index.get(&ids, all).unwrap();
        assert_eq!(got.len(), model.len(), "{when}: count");
        for view in got {
            assert_eq!(view.vector.as_deref(), Some(&model[&view.id][..]), "{when}: vector of {}", view.id);
        }
        assert_eq!(index.count().unwrap(), model.len(), "{when}");
        // Every list probed: exact, so each item is its own nearest neighbour.
        for (id, v) in model.iter().step_by(97) {
            assert_eq!(&index.query(v, &top(1, Some(1 << 20))).unwrap()[0].id, id, "{when}: query by {id}");
        }
    };
    let params = TrainParams { n_lists: Some(16), max_iters: Some(10), ..TrainParams::default() };
    index.train(&params, &AtomicBool::new(false), &no_progress).unwrap();
    check(&index, &model, "trained");
    let mut rng = Rng(12);
    for round in 0..30 {
        // New items, overwrites (new vectors for old ids) and deletes, interleaved.
        let mut batch: Vec<NewItem> = (0..20).map(|i| item(&format!("n{round}-{i}"), rng.vector(dim))).collect();
        batch.extend((0..10).map(|_| item(&rng.below(3_000).to_string(), rng.vector(dim))));
        for it in &batch {
            model.insert(it.id.clone(), it.vector.clone());
        }
        index.upsert(batch).unwrap();
        let gone: Vec<String> =
            (0..15).map(|_| rng.below(3_000).to_string()).filter(|id| model.contains_key(id)).collect();
        let gone: Vec<String> = gone.into_iter().collect::<HashSet<_>>().into_iter().collect();
        for id in &gone {
            model.remove(id);
        }
        assert_eq!(index.delete(&gone).unwrap(), gone.len());
    }
    check(&index, &model, "after writes");
    index.train(&params, &AtomicBool::new(false), &no_progress).unwrap();
    check(&index, &model, "retrained");
    index.compact().unwrap();
    check(&index, &model, "compacted");
    drop((client, index));
    let reloaded = Client::new(store, 2).unwrap().load_index("t", &key).unwrap();
    assert!(reloaded.is_trained());
    check(&reloaded, &model, "reloaded");
}
