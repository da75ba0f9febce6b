//! What the store sees: only ciphertext, bound to its place, under the right key.

mod common;

use std::sync::Arc;

use ciphervec_core::random_key;
use ciphervec_core::MemoryStorage;
use ciphervec_core::{Client, Contents, Include, Metric, NewItem};
use common::{client, Rng};
use serde_json::json;

const SECRET_ID: &str = "patient-ZXQ-4471";
const SECRET_META: &str = "oncology-ward-secret";
const SECRET_TEXT: &str = "the diagnosis text nobody may read";

fn ingest(client: &Client, key: &[u8; 32]) -> Vec<f32> {
    let index = client.create_index("medical-records", key, None, Metric::Euclidean).unwrap();
    let vector: Vec<f32> = (0..16).map(|i| 0.123_456 + i as f32 * 1.5).collect();
    let mut rng = Rng(7);
    let mut batch: Vec<NewItem> = (0..50)
        .map(|i| NewItem {
            id: format!("{SECRET_ID}-{i}"),
            vector: rng.vector(16),
            metadata: Some(json!({ "ward": SECRET_META, "n": i }).into()),
            contents: Some(Contents::Text(format!("{SECRET_TEXT} {i}"))),
        })
        .collect();
    batch.push(NewItem {
        id: SECRET_ID.into(),
        vector: vector.clone(),
        metadata: Some(json!({ "ward": SECRET_META }).into()),
        contents: Some(Contents::Bytes(SECRET_TEXT.as_bytes().to_vec())),
    });
    index.upsert(batch).unwrap();
    vector
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// What must never appear in anything the store holds after `ingest`.
fn needles(key: &[u8; 32], vector: &[f32]) -> Vec<Vec<u8>> {
    let vec_bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
    let mut needles: Vec<Vec<u8>> = vec![
        SECRET_ID.into(),
        SECRET_META.into(),
        SECRET_TEXT.into(),
        b"medical-records".to_vec(),
        b"ward".to_vec(),
        key.to_vec(),
        vec_bytes[..8].to_vec(),
    ];
    // Any two consecutive floats of the vector would betray it.
    needles.extend(vec_bytes.chunks(8).map(<[u8]>::to_vec));
    needles
}

#[test]
fn the_store_holds_no_plaintext_byte() {
    let (store, client, key) = client();
    let vector = ingest(&client, &key);
    let dump = store.dump();
    assert!(dump.len() >= 53, "header, config and 51 records expected, got {}", dump.len());
    let needles = needles(&key, &vector);
    for (space, k, v) in &dump {
        for n in &needles {
            assert!(!contains(space.as_bytes(), n), "plaintext in a space name");
            assert!(!contains(k, n), "plaintext in a storage key");
            assert!(!contains(v, n), "plaintext in a stored value");
        }
    }
}

/// A backup copies ciphertext only: its file (every byte of it, redb's pages included)
/// holds none of what the store must not, and the index loads from it.
#[test]
fn a_backup_file_holds_no_plaintext_byte() {
    let (_, client, key) = client();
    let vector = ingest(&client, &key);
    let dir = std::env::temp_dir().join(format!("ciphervec-backup-plaintext-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let stats = client.backup(&dir).unwrap();
    assert!(stats.entries >= 53, "{stats:?}");
    let names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, [ciphervec_core::DiskStorage::FILE_NAME], "one file");
    let file = std::fs::read(dir.join(ciphervec_core::DiskStorage::FILE_NAME)).unwrap();
    assert!(file.len() > 51 * 100);
    for n in needles(&key, &vector) {
        assert!(!contains(&file, &n), "plaintext in the backup file");
    }
    let copy = Client::new(Arc::new(ciphervec_core::DiskStorage::open(&dir).unwrap()), 2).unwrap();
    assert_eq!(copy.load_index("medical-records", &key).unwrap().count().unwrap(), 51);
    copy.close();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A loose record's size tells the store its size class, not the length of what it holds.
#[test]
fn loose_records_and_the_config_are_padded_to_size_classes() {
    let (store, client, key) = client();
    let index = client.create_index("padding", &key, Some(4), Metric::Euclidean).unwrap();
    // Ids and metadata of lengths 1..=8 all fall into one 64-byte class with a 4-d vector.
    let batch: Vec<NewItem> = (1..=8)
        .map(|n| NewItem {
            id: "i".repeat(n),
            vector: vec![1.0; 4],
            metadata: Some(json!({ "m": "x".repeat(n) }).into()),
            contents: None,
        })
        .collect();
    index.upsert(batch).unwrap();
    let sizes: std::collections::BTreeSet<usize> =
        store.dump().into_iter().filter(|(_, k, _)| k[0] == b'r').map(|(_, _, v)| v.len()).collect();
    assert_eq!(sizes.len(), 1, "record sizes {sizes:?}");
    let config_size = |name: &str| {
        let (store, client, key) = common::client();
        client.create_index(name, &key, None, Metric::Euclidean).unwrap();
        store.dump().into_iter().find(|(_, k, _)| k == b"c").unwrap().2.len()
    };
    assert_eq!(config_size("a"), config_size("a-much-longer-name-0123456789"), "the config hides the name's length");
}

#[test]
fn every_flipped_byte_in_every_blob_is_detected_at_load() {
    let (store, client, key) = client();
    ingest(&client, &key);
    drop(client);
    let dump = store.dump();
    let mut rng = Rng(99);
    for (space, k, v) in &dump {
        // Every byte of small blobs, a sample of offsets in larger ones.
        let offsets: Vec<usize> =
            if v.len() <= 128 { (0..v.len()).collect() } else { (0..64).map(|_| rng.below(v.len())).collect() };
        for off in offsets {
            let mut bad = v.clone();
            bad[off] ^= 1 << rng.below(8);
            store.replace_raw(space, k, bad);
            let fresh = Client::new(store.clone(), 2).unwrap();
            let err = fresh.load_index("medical-records", &key).unwrap_err();
            assert!(
                ["ERR_INTEGRITY", "ERR_CORRUPT", "ERR_UNSUPPORTED_FORMAT"].contains(&err.code()),
                "key {:?} offset {off}: {err:?}",
                k.first()
            );
            store.replace_raw(space, k, v.clone());
        }
    }
    let fresh = Client::new(store.clone(), 2).unwrap();
    assert_eq!(fresh.load_index("medical-records", &key).unwrap().count().unwrap(), 51);
}

#[test]
fn a_record_moved_to_another_key_is_rejected() {
    let (store, client, key) = client();
    ingest(&client, &key);
    drop(client);
    let records: Vec<_> = store.dump().into_iter().filter(|(_, k, _)| k[0] == b'r').collect();
    let (space, k0, _) = &records[0];
    store.replace_raw(space, k0, records[1].2.clone());
    let err = Client::new(store.clone(), 2).unwrap().load_index("medical-records", &key).unwrap_err();
    assert_eq!(err.code(), "ERR_INTEGRITY");
}

#[test]
fn a_wrong_key_finds_no_index_and_the_right_key_reads_everything_back() {
    let (store, client, key) = client();
    let vector = ingest(&client, &key);
    drop(client);
    let fresh = Client::new(store.clone(), 2).unwrap();
    let err = fresh.load_index("medical-records", &random_key()).unwrap_err();
    assert_eq!(err.code(), "ERR_INDEX_NOT_FOUND");
    assert!(err.to_string().contains("medical-records") && err.to_string().contains("another key"), "{err}");
    let index = fresh.load_index("medical-records", &key).unwrap();
    let all = Include { distance: true, metadata: true, contents: true, vector: true };
    let got = index.get(&[SECRET_ID.to_string()], all).unwrap();
    assert_eq!(got[0].vector.as_deref(), Some(&vector[..]));
    assert_eq!(got[0].metadata.as_ref().map(|m| m.to_json()), Some(json!({ "ward": SECRET_META })));
    assert_eq!(got[0].contents.as_deref(), Some(&Contents::Bytes(SECRET_TEXT.as_bytes().to_vec())));
    // The already-open handle is not handed to another key either.
    assert_eq!(fresh.load_index("medical-records", &random_key()).unwrap_err().code(), "ERR_INDEX_NOT_FOUND");
}

#[test]
fn indexes_in_one_store_are_isolated() {
    let store = Arc::new(MemoryStorage::new());
    let client = Client::new(store.clone(), 2).unwrap();
    let (k1, k2) = (random_key(), random_key());
    let a = client.create_index("a", &k1, Some(2), Metric::Euclidean).unwrap();
    let b = client.create_index("b", &k2, Some(2), Metric::Euclidean).unwrap();
    a.upsert(vec![common::item("x", vec![1.0, 2.0])]).unwrap();
    b.upsert(vec![common::item("x", vec![3.0, 4.0])]).unwrap();
    let keys: Vec<Vec<u8>> = store.dump().into_iter().filter(|(_, k, _)| k[0] == b'r').map(|(_, k, _)| k).collect();
    assert_eq!(keys.len(), 2);
    assert_ne!(keys[0], keys[1], "the same id must map to unrelated storage keys in two indexes");
    assert_eq!(client.load_index("a", &k2).unwrap_err().code(), "ERR_INDEX_NOT_FOUND");
}

/// An index is stored under a name only holders of its key can compute, so nobody with the
/// store can confirm a guessed name; the same name under two keys is two indexes.
#[test]
fn index_names_are_keyed_by_the_index_key() {
    use ciphervec_core::test_util::{legacy_storage_name, storage_name};
    let store = Arc::new(MemoryStorage::new());
    let client = Client::new(store.clone(), 2).unwrap();
    let (k1, k2) = (random_key(), random_key());
    let a1 = client.create_index("tenant-42", &k1, Some(2), Metric::Euclidean).unwrap();
    let a2 = client.create_index("tenant-42", &k2, Some(2), Metric::Euclidean).unwrap();
    a1.upsert(vec![common::item("x", vec![1.0, 2.0])]).unwrap();
    assert_eq!(client.create_index("tenant-42", &k1, None, Metric::Euclidean).unwrap_err().code(), "ERR_INDEX_EXISTS");
    let mut spaces: Vec<String> = store.dump().into_iter().map(|(space, _, _)| space).collect();
    spaces.dedup();
    let mut expected = vec![storage_name(&k1, "tenant-42"), storage_name(&k2, "tenant-42")];
    expected.sort();
    assert_eq!(spaces, expected, "one space per (name, key), under the keyed name");
    assert!(!spaces.contains(&legacy_storage_name("tenant-42")), "a guess of the name finds nothing");
    drop((a1, a2));
    let fresh = Client::new(store, 2).unwrap();
    assert_eq!(fresh.load_index("tenant-42", &k1).unwrap().count().unwrap(), 1);
    assert_eq!(fresh.load_index("tenant-42", &k2).unwrap().count().unwrap(), 0);
    assert_eq!(fresh.list_indexes().unwrap(), vec!["tenant-42".to_string()], "listed once");
}

#[test]
fn a_record_removed_from_the_store_is_detected_at_load() {
    let (store, client, key) = client();
    ingest(&client, &key);
    drop(client);
    let (space, k, _) = store.dump().into_iter().find(|(_, k, _)| k[0] == b'r').unwrap();
    use ciphervec_core::Storage;
    store.write(&space, vec![(k, None)]).unwrap();
    let err = Client::new(store.clone(), 2).unwrap().load_index("medical-records", &key).unwrap_err();
    assert_eq!(err.code(), "ERR_INTEGRITY");
    assert!(err.to_string().contains("holds 50 entries") && err.to_string().contains("but 51 were"), "{err}");
}

/// The store (or whoever controls it) keeps an old sealed version of one record and puts it
/// back later: every blob still authenticates, so only the record summary can tell.
#[test]
fn an_older_version_of_a_record_put_back_is_detected_at_load() {
    let (store, client, key) = client();
    ingest(&client, &key);
    let before = store.dump();
    let index = client.load_index("medical-records", &key).unwrap();
    index.upsert(vec![common::item(SECRET_ID, vec![9.0; 16])]).unwrap();
    drop((index, client));
    let after = store.dump();
    let (space, k, old) = before
        .iter()
        .find(|(s, k, v)| after.iter().any(|(s2, k2, v2)| s == s2 && k == k2 && v != v2) && k[0] == b'r')
        .unwrap();
    store.replace_raw(space, k, old.clone());
    let err = Client::new(store.clone(), 2).unwrap().load_index("medical-records", &key).unwrap_err();
    assert_eq!(err.code(), "ERR_INTEGRITY", "{err}");
    assert!(err.to_string().contains("entry versions"), "{err}");
}

#[test]
fn a_deleted_record_put_back_is_detected_at_load() {
    let (store, client, key) = client();
    ingest(&client, &key);
    let before = store.dump();
    let index = client.load_index("medical-records", &key).unwrap();
    assert_eq!(index.delete(&[SECRET_ID.to_string()]).unwrap(), 1);
    drop((index, client));
    let after = store.dump();
    let (space, k, old) =
        before.iter().find(|(s, k, _)| k[0] == b'r' && !after.iter().any(|(s2, k2, _)| s == s2 && k == k2)).unwrap();
    use ciphervec_core::Storage;
    store.write(space, vec![(k.clone(), Some(old.clone()))]).unwrap();
    let err = Client::new(store.clone(), 2).unwrap().load_index("medical-records", &key).unwrap_err();
    assert_eq!(err.code(), "ERR_INTEGRITY", "{err}");
}

/// Training re-seals every record with its list into packed segments and removes the loose
/// records; the summary follows, so a reload is clean and a pre-training record put back is
/// an entry that should not be there.
#[test]
fn training_rewrites_the_summary_and_old_versions_stay_detectable() {
    let (store, client, key) = client();
    ingest(&client, &key);
    let before = store.dump();
    let index = client.load_index("medical-records", &key).unwrap();
    let params = ciphervec_core::TrainParams { n_lists: Some(4), ..Default::default() };
    index.train(&params, &std::sync::atomic::AtomicBool::new(false), &|_| {}).unwrap();
    index.upsert(vec![common::item("after-training", vec![0.5; 16])]).unwrap();
    assert_eq!(index.delete(&[format!("{SECRET_ID}-3")]).unwrap(), 1);
    drop((index, client));
    let reloaded = Client::new(store.clone(), 2).unwrap();
    assert_eq!(reloaded.load_index("medical-records", &key).unwrap().count().unwrap(), 51);
    drop(reloaded);
    let after = store.dump();
    assert!(
        after.iter().filter(|(_, k, _)| k[0] == b'r').count() == 1,
        "only the record upserted after training is loose"
    );
    let (space, k, old) = before.iter().find(|(_, k, _)| k[0] == b'r' && k.len() > 1).unwrap();
    use ciphervec_core::Storage;
    store.write(space, vec![(k.clone(), Some(old.clone()))]).unwrap();
    let err = Client::new(store.clone(), 2).unwrap().load_index("medical-records", &key).unwrap_err();
    assert_eq!(err.code(), "ERR_INTEGRITY", "{err}");
}

/// The summary covers segments and tombstones too: an old segment put back after a later
/// compaction, or a tombstone removed (which would resurrect a deleted item), fails the load.
#[test]
fn old_segments_and_removed_tombstones_are_detected_at_load() {
    use ciphervec_core::Storage;
    let (store, client, key) = client();
    ingest(&client, &key);
    let index = client.load_index("medical-records", &key).unwrap();
    index.compact().unwrap();
    let packed = store.dump();
    assert!(packed.iter().all(|(_, k, _)| k[0] != b'r'), "a compaction leaves no loose record");
    index.upsert(vec![common::item(SECRET_ID, vec![9.0; 16])]).unwrap();
    index.compact().unwrap();
    assert_eq!(index.delete(&[format!("{SECRET_ID}-3")]).unwrap(), 1);
    drop((index, client));
    let current = store.dump();
    let load = || Client::new(store.clone(), 2).unwrap().load_index("medical-records", &key);
    assert_eq!(load().unwrap().count().unwrap(), 50);

    let (space, k, old) = packed.iter().find(|(_, k, _)| k[0] == b'p').unwrap();
    store.write(space, vec![(k.clone(), Some(old.clone()))]).unwrap();
    assert_eq!(load().unwrap_err().code(), "ERR_INTEGRITY");
    let (_, _, now) = current.iter().find(|(_, k2, _)| k2 == k).unwrap();
    store.write(space, vec![(k.clone(), Some(now.clone()))]).unwrap();
    assert_eq!(load().unwrap().count().unwrap(), 50);

    let (space, k, _) = current.iter().find(|(_, k, _)| k[0] == b'd').unwrap();
    store.write(space, vec![(k.clone(), None)]).unwrap();
    let err = load().unwrap_err();
    assert_eq!(err.code(), "ERR_INTEGRITY", "{err}");
}

/// A lost header (a damaged B-tree can drop an entry) is damage, not a missing index.
#[test]
fn a_missing_header_is_corrupt_but_a_deleted_index_is_not_found() {
    use ciphervec_core::Storage;
    let (store, client, key) = client();
    ingest(&client, &key);
    client.create_index("other", &key, None, Metric::Euclidean).unwrap().destroy().unwrap();
    drop(client);
    let (space, k, _) = store.dump().into_iter().find(|(_, k, _)| k.as_slice() == b"h").unwrap();
    store.write(&space, vec![(k, None)]).unwrap();
    let client = Client::new(store.clone(), 2).unwrap();
    assert_eq!(client.load_index("medical-records", &key).unwrap_err().code(), "ERR_CORRUPT");
    assert_eq!(client.load_index("other", &key).unwrap_err().code(), "ERR_INDEX_NOT_FOUND");
    assert_eq!(client.load_index("never-created", &key).unwrap_err().code(), "ERR_INDEX_NOT_FOUND");
}
