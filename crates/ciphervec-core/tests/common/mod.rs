//! Shared helpers for the core integration tests.
#![allow(dead_code)]

pub mod postgres;

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

pub fn client() -> (Arc<MemoryStorage>, Client, [u8; 32]) {
    let store = Arc::new(MemoryStorage::new());
    (store.clone(), Client::new(store, 2).unwrap(), random_key())
}

pub fn item(id: &str, vector: Vec<f32>) -> NewItem {
    NewItem { id: id.into(), vector, metadata: None, contents: None }
}
