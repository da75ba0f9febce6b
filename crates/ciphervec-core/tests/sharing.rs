//! Clients sharing one store follow each other's commits (see `index::follow`), here over
//! the in-memory shared store: the same scenarios run on PostgreSQL in `tests/postgres.rs`.

mod common;

use std::sync::Arc;

use ciphervec_core::test_util::{seals_under_data_key, SharedMemoryStorage};
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
