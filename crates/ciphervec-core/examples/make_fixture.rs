//! Writes the format-compatibility fixture with this build: `make_fixture DIR` creates
//! `DIR/ciphervec.redb` holding the items of `tests/common/fixture_items.rs`. Copy it to
//! `tests/fixtures/NAME.redb` when a change of the stored format needs a new fixture; the
//! older ones stay, so every format ever written keeps being read.

#[path = "../tests/common/fixture_items.rs"]
mod fixture_items;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use ciphervec_core::DiskStorage;
use ciphervec_core::{Client, Metric, TrainParams};
use fixture_items::*;

fn main() {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).expect("usage: make_fixture DIR"));
    let client = Client::new(Arc::new(DiskStorage::open(&dir).unwrap()), 1).unwrap();
    let index = client.create_index(INDEX, &KEY, Some(DIM), Metric::Euclidean).unwrap();
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
