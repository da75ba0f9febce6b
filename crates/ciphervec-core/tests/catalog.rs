//! `list_indexes` after a restart: a client opened with a client key keeps a sealed catalog of
//! the store's index names (`format::catalog`), so a fresh client with the key lists every
//! index without loading any; a wrong client key fails at open, a tampered entry is detected,
//! and the store sees no name.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use ciphervec_core::{random_key, Client, DiskStorage, MemoryStorage, Metric, Storage};

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ciphervec-catalog-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn a_client_key_lists_every_index_after_a_restart() {
    let dir = temp_dir("restart");
    let ck = random_key();
    let (k1, k2) = (random_key(), random_key());
    {
        let client = Client::open_with_key(Arc::new(DiskStorage::open(&dir).unwrap()), Some(2), &ck).unwrap();
        let a = client.create_index("alpha", &k1, Some(2), Metric::Euclidean).unwrap();
        a.upsert(vec![common::item("x", vec![1.0, 2.0])]).unwrap();
        client.create_index("beta", &k2, None, Metric::Cosine).unwrap();
        client.create_index("beta", &k1, None, Metric::Cosine).unwrap(); // the same name, another key
        client.close();
    }
    {
        let client = Client::open_with_key(Arc::new(DiskStorage::open(&dir).unwrap()), Some(2), &ck).unwrap();
        assert_eq!(client.list_indexes().unwrap(), names(&["alpha", "beta"]), "listed before any load, once each");
        // Deleting an index takes it out of the catalog.
        client.load_index("beta", &k2).unwrap().destroy().unwrap();
        assert_eq!(client.list_indexes().unwrap(), names(&["alpha", "beta"]), "beta under k1 is still there");
        client.load_index("beta", &k1).unwrap().destroy().unwrap();
        assert_eq!(client.list_indexes().unwrap(), names(&["alpha"]));
        client.close();
    }
    {
        let client = Client::open_with_key(Arc::new(DiskStorage::open(&dir).unwrap()), Some(2), &ck).unwrap();
        assert_eq!(client.list_indexes().unwrap(), names(&["alpha"]));
        assert_eq!(client.load_index("alpha", &k1).unwrap().count().unwrap(), 1, "the catalog changes no index");
        client.close();
    }
    // Without the client key, a client lists only what it opened, as before.
    let client = Client::open(Arc::new(DiskStorage::open(&dir).unwrap()), Some(2)).unwrap();
    assert_eq!(client.list_indexes().unwrap(), Vec::<String>::new());
    client.load_index("alpha", &k1).unwrap();
    assert_eq!(client.list_indexes().unwrap(), names(&["alpha"]));
    client.close();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_index_made_without_the_client_key_joins_the_catalog_when_loaded_with_it() {
    let store = Arc::new(MemoryStorage::new());
    let (ck, k) = (random_key(), random_key());
    Client::new(store.clone(), 1).unwrap().create_index("old", &k, Some(2), Metric::Euclidean).unwrap();
    let keyed = Client::open_with_key(store.clone(), Some(1), &ck).unwrap();
    assert_eq!(keyed.list_indexes().unwrap(), Vec::<String>::new(), "not in the catalog yet");
    keyed.load_index("old", &k).unwrap();
    let fresh = Client::open_with_key(store, Some(1), &ck).unwrap();
    assert_eq!(fresh.list_indexes().unwrap(), names(&["old"]));
}

#[test]
fn another_client_key_fails_at_open_and_bad_keys_are_typed() {
    let store = Arc::new(MemoryStorage::new());
    let ck = random_key();
    Client::open_with_key(store.clone(), Some(1), &ck)
        .unwrap()
        .create_index("a", &random_key(), None, Metric::Cosine)
        .unwrap();
    let other = match Client::open_with_key(store.clone(), Some(1), &random_key()) {
        Ok(_) => panic!("another key must fail"),
        Err(e) => e,
    };
    assert_eq!(other.code(), "ERR_WRONG_KEY");
    assert!(other.to_string().contains("client key"), "{other}");
    let short = Client::open_with_key(store.clone(), Some(1), &[7u8; 16]).err().unwrap();
    assert_eq!(short.code(), "ERR_INVALID_KEY");
    assert!(!short.to_string().contains("7, 7"), "no key bytes in the message: {short}");
    assert_eq!(Client::open_with_key(store.clone(), Some(0), &ck).err().unwrap().code(), "ERR_INVALID_ARGUMENT");
    // The failed opens changed nothing: the right key still lists the index.
    assert_eq!(Client::open_with_key(store, Some(1), &ck).unwrap().list_indexes().unwrap(), names(&["a"]));
}

#[test]
fn the_store_sees_no_name_and_a_tampered_entry_is_detected() {
    let store = Arc::new(MemoryStorage::new());
    let ck = random_key();
    let client = Client::open_with_key(store.clone(), Some(1), &ck).unwrap();
    client.create_index("tenant-secret-name", &random_key(), Some(2), Metric::Euclidean).unwrap();
    client.create_index("x", &random_key(), Some(2), Metric::Euclidean).unwrap();
    let dump = store.dump();
    for (space, key, value) in &dump {
        for bytes in [space.as_bytes(), key.as_slice(), value.as_slice()] {
            assert!(!bytes.windows(13).any(|w| w == b"tenant-secret"), "a name reached the store");
        }
    }
    let entries: Vec<_> = dump.iter().filter(|(space, key, _)| space == "catalog" && key[0] == b'e').collect();
    assert_eq!(entries.len(), 2, "one entry per index");
    assert_eq!(entries[0].2.len(), entries[1].2.len(), "entries are padded: sizes do not tell names apart");
    // Swap the two entries' values: each is bound to its key, so listing fails, never lists.
    let (k0, v0) = (entries[0].1.clone(), entries[0].2.clone());
    let (k1, v1) = (entries[1].1.clone(), entries[1].2.clone());
    store.write("catalog", vec![(k0, Some(v1)), (k1, Some(v0))]).unwrap();
    let fresh = Client::open_with_key(store, Some(1), &ck).unwrap();
    assert_eq!(fresh.list_indexes().unwrap_err().code(), "ERR_INTEGRITY");
}
