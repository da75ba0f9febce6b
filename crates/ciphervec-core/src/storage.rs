//! The storage trait: an ordered key → blob store split into named spaces (one per index).
//!
//! Implementations only ever receive ciphertext and derived names: the index seals every
//! value and hashes every key before calling them. Later backends (disk, Redis, PostgreSQL)
//! implement the same five methods.

use crate::error::Result;

/// One change in an atomic batch: `Some(value)` puts, `None` deletes.
pub type Change = (Vec<u8>, Option<Vec<u8>>);

/// A key → blob store. Every method is synchronous and called from worker threads.
pub trait Storage: Send + Sync {
    /// The value under `key` in `space`, if any.
    fn get(&self, space: &str, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// Applies all changes or none (creating the space if needed).
    fn write(&self, space: &str, changes: Vec<Change>) -> Result<()>;
    /// Every entry of `space` whose key starts with `prefix`, in key order.
    fn scan_prefix(&self, space: &str, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>>;
    /// The names of all spaces.
    fn spaces(&self) -> Result<Vec<String>>;
    /// Removes a space and everything in it.
    fn drop_space(&self, space: &str) -> Result<()>;
    /// Releases the backend (files, locks, connections); later calls may fail with `ERR_CLOSED`.
    fn close(&self) {}
}
