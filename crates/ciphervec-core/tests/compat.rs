//! Every stored format a released build wrote keeps being read: each fixture in
//! `tests/fixtures/` was written by `examples/make_fixture.rs` with an earlier build, and
//! must load with the same items, stay trained, answer queries, and move to the current
//! format on its next compaction.
//!
//! - `loose-v1`: one record per item, JSON metadata (record format 1, before segments).
//! - `packed-v1`: segments without a directory, JSON metadata, loose overwrites and
//!   tombstones over them.
//! - `packed-v2`: segments with a directory, binary metadata (record format 2).
//! - `keyed-v3`: the index under its keyed storage name; padded loose records, tombstones and
//!   config.
//! - `counted-v4`: the record summary counts the values sealed under the data key.
//! - `sq8-v5`: an IVF-SQ8 index: the config holds the index type, the centroids entry the
//!   code book (config and centroids version 2).
//! - `sq8-codes-v6`: an IVF-SQ8 index keeping only codes in memory (config version 4).
//! - `pq-v7`: an IVF-PQ index of 3 sub-vectors over 8 dimensions (config version 5, the
//!   product code book behind tag 3).
//! - `sq8-residual-v8`: an IVF-SQ8 index whose codes are of residuals from the centroids
//!   (centroids version 3, code book tag 4). The older 8-bit fixtures keep codes of the
//!   vectors themselves until they are retrained.

#[path = "common/fixture_items.rs"]
mod fixture_items;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ciphervec_core::DiskStorage;
use ciphervec_core::{Client, Include, Index, Search};
use fixture_items::*;

const FIXTURES: [&str; 9] =
    ["loose-v1", "packed-v1", "packed-v2", "keyed-v3", "counted-v4", "sq8-v5", CODES_ONLY, "pq-v7", RESIDUAL];
/// The fixture of a codes-only index.
const CODES_ONLY: &str = "sq8-codes-v6";
/// The fixture whose 8-bit codes are of residuals.
const RESIDUAL: &str = "sq8-residual-v8";
/// The fixtures written before index names were keyed.
const LEGACY_NAMED: [&str; 3] = ["loose-v1", "packed-v1", "packed-v2"];

/// A copy of fixture `name` in a fresh directory for test `test` (the fixture itself is
/// never opened).
fn copy_of(name: &str, test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ciphervec-compat-{test}-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(format!("{name}.redb"));
    std::fs::copy(&fixture, dir.join("ciphervec.redb")).unwrap();
    dir
}

fn open(dir: &Path) -> (Client, Arc<Index>) {
    let client = Client::new(Arc::new(DiskStorage::open(dir).unwrap()), 2).unwrap();
    let index = client.load_index(INDEX, &KEY).unwrap_or_else(|e| panic!("loading {}: {e}", dir.display()));
    (client, index)
}

/// The index holds exactly the expected items, field for field, is trained, and finds each
/// item's own vector first when every list is probed.
fn assert_holds_expected(index: &Index, fixture: &str) {
    let expected = expected();
    assert_eq!(index.count().unwrap(), expected.len(), "{fixture}");
    assert!(index.is_trained(), "{fixture}: the trained state survives");
    use ciphervec_core::{IndexType, PqShape};
    let index_type = match fixture {
        f if f.starts_with("sq8") => IndexType::IvfSq8,
        "pq-v7" => IndexType::IvfPq(PqShape { sub_vectors: Some(3) }),
        _ => IndexType::IvfFlat,
    };
    assert_eq!(index.index_type(), index_type, "{fixture}");
    let codes_only = fixture == CODES_ONLY;
    let resident = if codes_only { ciphervec_core::Resident::Codes } else { ciphervec_core::Resident::Vectors };
    assert_eq!(index.resident(), resident, "{fixture}");
    use ciphervec_core::test_util::codes_of_residuals;
    let residual = match fixture {
        "sq8-v5" | CODES_ONLY => Some(false),
        "pq-v7" | RESIDUAL => Some(true),
        _ => None,
    };
    assert_eq!(codes_of_residuals(index), residual, "{fixture}: codes as they were trained");
    let ids: Vec<String> = expected.iter().map(|it| it.id.clone()).collect();
    let all = Include { distance: false, metadata: true, contents: true, vector: true };
    let got = index.get(&ids, all).unwrap();
    assert_eq!(got.len(), expected.len(), "{fixture}");
    for (want, got) in expected.iter().zip(&got) {
        assert_eq!(got.id, want.id, "{fixture}");
        assert_eq!(got.vector.as_deref(), Some(&want.vector[..]), "{fixture}: vector of {}", want.id);
        assert_eq!(got.metadata, want.metadata, "{fixture}: metadata of {}", want.id);
        assert_eq!(got.contents.as_deref(), want.contents.as_ref(), "{fixture}: contents of {}", want.id);
    }
    let mut listed = index.list_ids().unwrap();
    listed.sort();
    let mut want_ids = ids.clone();
    want_ids.sort();
    assert_eq!(listed, want_ids, "{fixture}: deleted items stay deleted");
    // A codes-only index has no vectors to re-rank on: its answers are the codes' (and items
    // written after training lie partly outside the code book's ranges), so it is only
    // checked to return exact vectors (above).
    for want in expected.iter().step_by(7).filter(|_| !codes_only) {
        // Every list and every candidate re-ranked: exact, whatever the codes (items written
        // after training lie partly outside the code book's ranges).
        let search = Search { k: 1, n_probes: Some(4), rerank: Some(1000), filter: None, include: Include::default() };
        let hits = index.query(&want.vector, &search).unwrap();
        assert_eq!(hits[0].id, want.id, "{fixture}: query by the vector of {}", want.id);
    }
}

#[test]
fn stores_written_by_earlier_builds_load_unchanged_and_move_to_the_current_format() {
    for fixture in FIXTURES {
        let dir = copy_of(fixture, "load");
        let (client, index) = open(&dir);
        assert_holds_expected(&index, fixture);
        // A compaction rewrites the store in the current format; it reads back the same.
        index.compact().unwrap();
        drop(index);
        client.close();
        let (client, index) = open(&dir);
        assert_holds_expected(&index, fixture);
        // And it takes writes as any store does.
        index.upsert(vec![item(1000, 0)]).unwrap();
        index.delete(&["item-0".to_string()]).unwrap();
        drop(index);
        client.close();
        let (client, index) = open(&dir);
        assert_eq!(index.count().unwrap(), expected().len(), "{fixture}");
        assert_eq!(index.get(&["item-1000".to_string()], Include::default()).unwrap().len(), 1);
        client.close();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// 8-bit codes of the vectors themselves (trained before codes of residuals) are kept as they
/// are through loads and compactions; the next training codes residuals, and the index
/// answers as before.
#[test]
fn older_8_bit_codes_stay_until_the_next_training_codes_residuals() {
    use ciphervec_core::test_util::codes_of_residuals;
    use ciphervec_core::TrainParams;
    for fixture in ["sq8-v5", CODES_ONLY] {
        let dir = copy_of(fixture, "retrain");
        let (client, index) = open(&dir);
        index.compact().unwrap();
        assert_eq!(codes_of_residuals(&index), Some(false), "{fixture}: compaction keeps the code book");
        let params = TrainParams { n_lists: Some(4), max_iters: Some(5), seed: 7, ..Default::default() };
        index.train(&params, &std::sync::atomic::AtomicBool::new(false), &|_| {}).unwrap();
        assert_eq!(codes_of_residuals(&index), Some(true), "{fixture}: retrained");
        drop(index);
        client.close();
        let (client, index) = open(&dir);
        assert_eq!(codes_of_residuals(&index), Some(true), "{fixture}: reloaded");
        assert_holds_expected_after_retraining(&index, fixture);
        client.close();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// The items are all there with their exact vectors, and (with vectors to re-rank on) each
/// is its own nearest neighbour.
fn assert_holds_expected_after_retraining(index: &Index, fixture: &str) {
    let expected = expected();
    let ids: Vec<String> = expected.iter().map(|it| it.id.clone()).collect();
    let got = index.get(&ids, Include { distance: false, metadata: false, contents: false, vector: true }).unwrap();
    assert_eq!(got.len(), expected.len(), "{fixture}");
    for (want, got) in expected.iter().zip(&got) {
        assert_eq!(got.vector.as_deref(), Some(&want.vector[..]), "{fixture}: vector of {}", want.id);
    }
    for want in expected.iter().step_by(7).filter(|_| fixture != CODES_ONLY) {
        let search = Search { k: 1, n_probes: Some(4), rerank: Some(1000), filter: None, include: Include::default() };
        assert_eq!(index.query(&want.vector, &search).unwrap()[0].id, want.id, "{fixture}: {}", want.id);
    }
}

/// Stores written before index names were keyed hold each index under an unkeyed hash of its
/// name: they are still found there, a wrong key still fails the header's key check, and the
/// name stays taken for every key.
#[test]
fn indexes_named_before_names_were_keyed_keep_their_name_and_key_check() {
    for fixture in LEGACY_NAMED {
        let dir = copy_of(fixture, "legacy-name");
        let client = Client::new(Arc::new(DiskStorage::open(&dir).unwrap()), 2).unwrap();
        let other = [9u8; 32];
        assert_eq!(client.load_index(INDEX, &other).unwrap_err().code(), "ERR_WRONG_KEY", "{fixture}");
        let err = client.create_index(INDEX, &other, None, ciphervec_core::Metric::Euclidean).unwrap_err();
        assert_eq!(err.code(), "ERR_INDEX_EXISTS", "{fixture}");
        let index = client.load_index(INDEX, &KEY).unwrap();
        assert_eq!(client.load_index(INDEX, &other).unwrap_err().code(), "ERR_WRONG_KEY", "{fixture}: open handle");
        assert_eq!(client.list_indexes().unwrap(), vec![INDEX.to_string()]);
        drop(index);
        client.close();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn the_fixtures_are_the_formats_they_are_named_for() {
    // Guards the fixtures themselves, by the entry layout each format has (readable without
    // the key): segments only in packed stores, a segment directory only from format 2 on.
    use ciphervec_core::test_util::{legacy_storage_name, storage_name};
    use ciphervec_core::Storage;
    for (fixture, packed) in [
        ("loose-v1", false),
        ("packed-v1", true),
        ("packed-v2", true),
        ("keyed-v3", true),
        ("counted-v4", true),
        ("sq8-v5", true),
        (CODES_ONLY, true),
        ("pq-v7", true),
        (RESIDUAL, true),
    ] {
        let dir = copy_of(fixture, "layout");
        let store = DiskStorage::open(&dir).unwrap();
        let space = store.spaces().unwrap().pop().unwrap();
        let segments = store.scan_prefix(&space, b"p").unwrap().len();
        let directory = store.get(&space, b"g").unwrap().is_some();
        assert_eq!(segments > 0, packed, "{fixture}: segments");
        assert_eq!(directory, fixture != "loose-v1" && fixture != "packed-v1", "{fixture}: segment directory");
        let keyed = storage_name(&KEY, INDEX);
        let expected = if LEGACY_NAMED.contains(&fixture) { legacy_storage_name(INDEX) } else { keyed };
        assert_eq!(space, expected, "{fixture}: storage name");
        // Blob version 2 (padded) for loose records from keyed-v3 on.
        let loose = store.scan_prefix(&space, b"r").unwrap();
        assert!(!loose.is_empty(), "{fixture}: has loose records");
        assert!(
            loose.iter().all(|(_, v)| v[0] == if LEGACY_NAMED.contains(&fixture) { 1 } else { 2 }),
            "{fixture}: blob version"
        );
        store.close();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// A store that records its seal count resumes from it; one written before seals were counted
/// may have spent any part of its nonce budget, so its next compaction rotates the data key
/// (and the count starts over under the new one).
#[test]
fn the_nonce_budget_resumes_from_the_recorded_count_and_unknown_counts_rotate() {
    use ciphervec_core::test_util::seals_under_data_key;
    for fixture in FIXTURES {
        let dir = copy_of(fixture, "seals");
        let (client, index) = open(&dir);
        let seals = seals_under_data_key(&index);
        if ["counted-v4", "sq8-v5", CODES_ONLY, "pq-v7", RESIDUAL].contains(&fixture) {
            // The fixture's writes sealed a few hundred values, nowhere near the budget.
            assert!((100..10_000).contains(&seals), "{fixture}: resumed at {seals}");
            index.compact().unwrap();
            assert!(seals_under_data_key(&index) > seals, "{fixture}: the same key goes on counting");
        } else {
            assert!(seals >= 1 << 31, "{fixture}: an unknown count is taken as half the budget: {seals}");
            index.compact().unwrap();
            let after = seals_under_data_key(&index);
            assert!(after < 10_000, "{fixture}: the compaction rotated the data key: {after}");
        }
        drop(index);
        client.close();
        // The count survives a reload, and the rotated store still holds everything.
        let (client, index) = open(&dir);
        assert!(seals_under_data_key(&index) < 1 << 31, "{fixture}: after reload");
        assert_holds_expected(&index, fixture);
        client.close();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
