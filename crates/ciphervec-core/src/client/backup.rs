//! `Client::backup`: a consistent copy of the whole store, as a new disk store.
//!
//! The entries are copied as they are stored (ciphertext under derived names): nothing is
//! decrypted or sealed again, so no key is needed, and every index in the store is copied,
//! also those this client never opened. The source hands them over from one snapshot
//! ([`Storage::export`](crate::store::Storage::export)) while the client keeps serving writes and queries; the copy is
//! published only once complete ([`DiskStorage::create_filled`]).

use std::path::Path;

use crate::client::Client;
use crate::error::Result;
use crate::store::DiskStorage;

/// Bytes of entries per batch handed from the source to the copy: a few segments' worth,
/// so a backup holds little of the store in memory at once.
const BATCH_BYTES: usize = 4 << 20;

/// What [`Client::backup`] copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BackupStats {
    /// Spaces copied: one per index, and one per index created before names were keyed.
    pub spaces: u64,
    /// Entries copied (records, segments, headers, summaries, ...).
    pub entries: u64,
    /// The size of the backup's file.
    pub bytes: u64,
}

impl Client {
    /// Writes a consistent snapshot of the whole store this client is open on (every index
    /// in it) into a new disk store in directory `path`, which opens as
    /// `DiskStorage::open(path)` and loads each index with its key, as it was at one moment:
    /// each write (an upsert, a delete, a compaction) is wholly in it or not at all. Writes
    /// and queries go on meanwhile. `path` must be missing or an empty directory
    /// (`ERR_INVALID_ARGUMENT` otherwise, nothing written); if the backup fails, no store is
    /// left at `path`. From a shared store (PostgreSQL) the copy holds the indexes' entries,
    /// not the change log: it is a store for one process.
    pub fn backup(&self, path: &Path) -> Result<BackupStats> {
        self.check_open()?;
        let store = &self.shared.store;
        let mut stats = BackupStats::default();
        let mut last: Option<String> = None;
        let ((), bytes) = DiskStorage::create_filled(path, |put| {
            store.export(BATCH_BYTES, &mut |space, batch| {
                if last.as_deref() != Some(space) {
                    stats.spaces += 1;
                    last = Some(space.to_string());
                }
                stats.entries += batch.len() as u64;
                put(space, batch)
            })
        })?;
        stats.bytes = bytes;
        Ok(stats)
    }
}
