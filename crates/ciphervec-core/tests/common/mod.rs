//! Shared helpers for the core integration tests.
#![allow(dead_code)]

pub mod postgres;
pub mod sharing;

use std::sync::Arc;

use ciphervec_core::random_key;
use ciphervec_core::MemoryStorage;
use ciphervec_core::{Client, NewItem};

/// A small deterministic PRNG (xorshift64*), so tests need no extra dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    pub fn vector(&mut self, dim: usize) -> Vec<f32> {
        (0..dim).map(|_| self.f32()).collect()
    }
}

/// `n` points around `clusters` random centres (a stand-in for real embeddings).
pub fn clustered(n: usize, dim: usize, clusters: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = Rng(seed);
    let centres: Vec<Vec<f32>> = (0..clusters).map(|_| rng.vector(dim)).collect();
    (0..n)
        .map(|_| {
            let c = &centres[rng.below(clusters)];
            c.iter().map(|x| x + 0.15 * rng.f32()).collect()
        })
        .collect()
}

pub fn client() -> (Arc<MemoryStorage>, Client, [u8; 32]) {
    let store = Arc::new(MemoryStorage::new());
    (store.clone(), Client::new(store, 2).unwrap(), random_key())
}

pub fn item(id: &str, vector: Vec<f32>) -> NewItem {
    NewItem { id: id.into(), vector, metadata: None, contents: None }
}

/// A store whose export, at its first batch (its snapshot taken by then), waits until
/// `done` has grown by `by`: writes made meanwhile must not be in what it exports.
pub struct PausedExport {
    pub inner: Arc<dyn ciphervec_core::Storage>,
    pub done: Arc<std::sync::atomic::AtomicUsize>,
    pub by: usize,
}

impl ciphervec_core::Storage for PausedExport {
    fn get(&self, space: &str, key: &[u8]) -> ciphervec_core::Result<Option<Vec<u8>>> {
        self.inner.get(space, key)
    }
    fn get_many(&self, space: &str, keys: &[Vec<u8>]) -> ciphervec_core::Result<Vec<Option<Vec<u8>>>> {
        self.inner.get_many(space, keys)
    }
    fn write(&self, space: &str, changes: Vec<ciphervec_core::Change>) -> ciphervec_core::Result<()> {
        self.inner.write(space, changes)
    }
    fn write_clearing(
        &self,
        space: &str,
        cleared: &[&[u8]],
        changes: Vec<ciphervec_core::Change>,
    ) -> ciphervec_core::Result<()> {
        self.inner.write_clearing(space, cleared, changes)
    }
    fn scan_range_batches(
        &self,
        space: &str,
        start: &[u8],
        end: Option<&[u8]>,
        batch_bytes: usize,
        sink: &mut dyn FnMut(ciphervec_core::EntryBatch) -> ciphervec_core::Result<()>,
    ) -> ciphervec_core::Result<()> {
        self.inner.scan_range_batches(space, start, end, batch_bytes, sink)
    }
    fn spaces(&self) -> ciphervec_core::Result<Vec<String>> {
        self.inner.spaces()
    }
    fn drop_space(&self, space: &str) -> ciphervec_core::Result<()> {
        self.inner.drop_space(space)
    }
    fn export(
        &self,
        batch_bytes: usize,
        sink: &mut dyn FnMut(&str, ciphervec_core::EntryBatch) -> ciphervec_core::Result<()>,
    ) -> ciphervec_core::Result<()> {
        use std::sync::atomic::Ordering;
        let mut first = true;
        self.inner.export(batch_bytes, &mut |space, batch| {
            if std::mem::take(&mut first) {
                let from = self.done.load(Ordering::Acquire);
                while self.done.load(Ordering::Acquire) < from + self.by {
                    std::thread::yield_now();
                }
            }
            sink(space, batch)
        })
    }
    fn reclaim_space(&self) -> ciphervec_core::Result<u64> {
        self.inner.reclaim_space()
    }
    fn check_intact(&self) -> ciphervec_core::Result<()> {
        self.inner.check_intact()
    }
    fn close(&self) {
        self.inner.close()
    }
    fn sharing(&self) -> Option<&dyn ciphervec_core::Sharing> {
        self.inner.sharing()
    }
}
