//! Clients sharing one store follow each other's commits (see `index::follow`), here over
//! the in-memory shared store: the same scenarios run on PostgreSQL in `tests/postgres.rs`.

mod common;

use std::sync::Arc;

use ciphervec_core::test_util::{seals_under_data_key, storage_name, SharedMemoryStorage};
use ciphervec_core::{Client, Include, Metric};
use common::sharing;

#[test]
fn clients_over_one_shared_store_see_each_others_writes() {
    let store = Arc::new(SharedMemoryStorage::new());
    sharing::all(&sharing::opener(store), "mem", seals_under_data_key);
}

/// A follower applies only what the log names, and checks the result against the sealed
/// record summary: an entry changed behind the log's back is found, never returned.
#[test]
fn a_record_altered_in_the_store_fails_the_follower_that_reads_it() {
    // Quiet: b follows only when told to, so the record is altered before b reads it.
    let store = Arc::new(SharedMemoryStorage::quiet());
    let (a, b) = (Client::new(store.clone(), 2).unwrap(), Client::new(store.clone(), 2).unwrap());
    let key = [3u8; 32];
    let ia = a.create_index("t", &key, None, Metric::Euclidean).unwrap();
    ia.upsert(vec![common::item("x", vec![1.0, 2.0]), common::item("y", vec![3.0, 4.0])]).unwrap();
    let ib = b.load_index("t", &key).unwrap();
    ia.upsert(vec![common::item("x", vec![5.0, 6.0])]).unwrap();
    // Swap the two records (both sealed by the index, for each other's storage keys): x's new
    // record is then one the follower must reject.
    let dump = store.dump();
    let records: Vec<_> = dump.iter().filter(|(_, k, _)| k[0] == b'r').collect();
    assert_eq!(records.len(), 2);
    let space = &records[0].0;
    use ciphervec_core::Storage;
    let swapped =
        vec![(records[0].1.clone(), Some(records[1].2.clone())), (records[1].1.clone(), Some(records[0].2.clone()))];
    store.write(space, swapped).unwrap();
    let err = ib.sync().unwrap_err();
    assert_eq!(err.code(), "ERR_INTEGRITY", "{err}");
    let got = ib.get(&["x".to_string()], Include { vector: true, ..Include::default() }).unwrap();
    assert_eq!(got[0].vector.as_deref(), Some(&[1.0f32, 2.0][..]), "the follower kept what it had checked");
}

/// A commit whose wake-up was lost (as notifications are while a listener reconnects) is
/// found by polling, on schedule, even while wake-ups for another index keep arriving more
/// often than the polling interval.
#[test]
fn a_lost_wake_up_is_caught_by_polling_while_other_indexes_keep_waking() {
    let key = [5u8; 32];
    let store =
        Arc::new(SharedMemoryStorage::deaf_to(&storage_name(&key, "lost"), std::time::Duration::from_millis(200)));
    let (a, b) = (Client::new(store.clone(), 1).unwrap(), Client::new(store.clone(), 1).unwrap());
    let (lost, busy) = (
        a.create_index("lost", &key, None, Metric::Euclidean).unwrap(),
        a.create_index("busy", &key, None, Metric::Euclidean).unwrap(),
    );
    lost.upsert(vec![common::item("x", vec![1.0, 2.0])]).unwrap();
    busy.upsert(vec![common::item("b0", vec![1.0, 2.0])]).unwrap();
    let (lost_b, busy_b) = (b.load_index("lost", &key).unwrap(), b.load_index("busy", &key).unwrap());
    lost.upsert(vec![common::item("y", vec![3.0, 4.0])]).unwrap();
    // Writes to `busy` every 20 ms wake b's follower ten times per polling interval.
    let mut k = 1;
    sharing::eventually("b sees the write whose wake-up was lost", || {
        busy.upsert(vec![common::item(&format!("b{k}"), vec![k as f32, 0.0])]).unwrap();
        k += 1;
        std::thread::sleep(std::time::Duration::from_millis(20));
        lost_b.count().unwrap() == 2
    });
    sharing::eventually("b follows busy too", || busy_b.count().unwrap() == busy.count().unwrap());
}
