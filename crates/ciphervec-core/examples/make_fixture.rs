//! Writes the format-compatibility fixture with this build: `make_fixture DIR [TYPE]` creates
//! `DIR/ciphervec.redb` holding the items of `tests/common/fixture_items.rs`, in an index of
//! TYPE (`flat`, the default, `sq8`, `fp16`, `sq8-codes`: IVF-SQ8 keeping only codes in
//! memory, or `pq`: IVF-PQ in 3 sub-vectors, an uneven split of the dimension). Copy it to
//! `tests/fixtures/NAME.redb` when a change of the stored format needs a new fixture; the
//! older ones stay, so every format ever written keeps being read.

#[path = "../tests/common/fixture_items.rs"]
mod fixture_items;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use ciphervec_core::DiskStorage;
use ciphervec_core::{Client, IndexSpec, IndexType, Metric, PqShape, Resident, TrainParams};
use fixture_items::*;

fn main() {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).expect("usage: make_fixture DIR"));
    let (index_type, resident) = match std::env::args().nth(2).as_deref() {
        None | Some("flat") => (IndexType::IvfFlat, Resident::Vectors),
        Some("sq8") => (IndexType::IvfSq8, Resident::Vectors),
        Some("fp16") => (IndexType::IvfFp16, Resident::Vectors),
        Some("sq8-codes") => (IndexType::IvfSq8, Resident::Codes),
        Some("pq") => (IndexType::IvfPq(PqShape { sub_vectors: Some(3) }), Resident::Vectors),
        Some(other) => panic!("unknown index type {other}"),
    };
    let client = Client::new(Arc::new(DiskStorage::open(&dir).unwrap()), 1).unwrap();
    let spec =
        IndexSpec { dimension: Some(DIM), metric: Metric::Euclidean, index_type, resident, ..IndexSpec::default() };
    let index = client.create_index_with(INDEX, &KEY, &spec).unwrap();
    for batch in batches() {
        index.upsert(batch).unwrap();
    }
    let params = TrainParams { n_lists: Some(4), max_iters: Some(5), seed: 7, ..Default::default() };
    index.train(&params, &AtomicBool::new(false), &|_| {}).unwrap();
    index.upsert(after_training()).unwrap();
    index.delete(&deleted()).unwrap();
    println!("{} items", index.count().unwrap());
    client.close();
}
