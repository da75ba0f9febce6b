//! A damaged store file is reported as damage, `ERR_CORRUPT` or `ERR_INTEGRITY`, never as a
//! missing index (which invites creating a new one over it), and closing it never fails.
//!
//! The damage: two pages of the file swapped, every pair in turn. Before `check_intact`, the
//! swaps that hid redb's table roots made both indexes read as `ERR_INDEX_NOT_FOUND`; closing
//! a store such a session had only read panicked, or panicked twice and aborted the process.

use std::path::PathBuf;
use std::sync::Arc;

use ciphervec_core::DiskStorage;
use ciphervec_core::Meta;
use ciphervec_core::{Client, Metric, NewItem};

const KEY: [u8; 32] = [7; 32];
const PAGE: usize = 4096;

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ciphervec-damaged-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// A store holding indexes `a` and `b`, 50 items each, closed.
fn write_two_indexes(d: &PathBuf) {
    let client = Client::new(Arc::new(DiskStorage::open(d).unwrap()), 1).unwrap();
    for name in ["a", "b"] {
        let index = client.create_index(name, &KEY, Some(4), Metric::Euclidean).unwrap();
        let items = (0..50).map(|i| NewItem {
            id: format!("{name}{i}"),
            vector: vec![i as f32, 1.0, 2.0, 3.0],
            metadata: Some(Meta::from(&serde_json::json!({ "k": i }))),
            contents: None,
        });
        index.upsert(items.collect()).unwrap();
    }
    client.close();
}

#[test]
fn swapped_pages_are_damage_never_a_missing_index_and_closing_never_fails() {
    let d = dir("swapped");
    write_two_indexes(&d);
    let file = d.join(DiskStorage::FILE_NAME);
    let clean = std::fs::read(&file).unwrap();
    let pages = clean.len() / PAGE;
    let (mut opened, mut detected) = (0, 0);
    // Page 0 is redb's file header, which has no checksum (tested through Node).
    for p in 1..pages {
        for q in p + 1..pages {
            let mut bad = clean.clone();
            bad[p * PAGE..(p + 1) * PAGE].copy_from_slice(&clean[q * PAGE..(q + 1) * PAGE]);
            bad[q * PAGE..(q + 1) * PAGE].copy_from_slice(&clean[p * PAGE..(p + 1) * PAGE]);
            std::fs::write(&file, &bad).unwrap();
            let store = match DiskStorage::open(&d) {
                Ok(store) => store,
                Err(e) => {
                    assert!(["ERR_CORRUPT", "ERR_UNSUPPORTED_FORMAT"].contains(&e.code()), "swap {p}/{q}: {e}");
                    continue;
                }
            };
            opened += 1;
            // A session that only reads: closing is its only write.
            let client = Client::new(Arc::new(store), 1).unwrap();
            for name in ["a", "b"] {
                if let Err(e) = client.load_index(name, &KEY) {
                    assert!(["ERR_CORRUPT", "ERR_INTEGRITY"].contains(&e.code()), "swap {p}/{q}, loading {name}: {e}");
                    detected += 1;
                }
            }
            match client.create_index("a", &KEY, None, Metric::Euclidean) {
                Ok(_) => panic!("swap {p}/{q}: an index was created over index a"),
                Err(e) => assert!(
                    ["ERR_INDEX_EXISTS", "ERR_CORRUPT", "ERR_INTEGRITY"].contains(&e.code()),
                    "swap {p}/{q}, creating a: {e}"
                ),
            }
            client.close();
        }
    }
    assert!(opened > 0 && detected > 0, "{opened} swaps opened, {detected} loads found damage");
    std::fs::remove_dir_all(&d).unwrap();
}
