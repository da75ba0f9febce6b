//! The storage trait: an ordered key → blob store split into named spaces (one per index).
//!
//! Implementations only ever receive ciphertext and derived names: the index seals every
//! value and hashes every key before calling them. A store that several processes share
//! implements [`Sharing`] too (see `sharing`).

#[cfg(any(test, feature = "test-util"))]
pub(crate) mod conformance;
mod disk;
mod memory;
#[cfg(any(test, feature = "test-util"))]
mod memory_shared;
#[cfg(feature = "postgres")]
mod postgres;
mod sharing;

pub use disk::DiskStorage;
pub use memory::MemoryStorage;
#[cfg(any(test, feature = "test-util"))]
pub use memory_shared::SharedMemoryStorage;
#[cfg(feature = "postgres")]
pub use postgres::{PostgresOptions, PostgresStorage};
pub use sharing::{Claim, LogEntry, LogKind, Sharing, Snapshot, Wake, WriteTxn};

use crate::error::Result;

/// One change in an atomic batch: `Some(value)` puts, `None` deletes.
pub type Change = (Vec<u8>, Option<Vec<u8>>);

/// A key → blob store. Every method is synchronous and called from worker threads.
pub trait Storage: Send + Sync {
    /// The value under `key` in `space`, if any.
    fn get(&self, space: &str, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// The values under `keys`, in order. This default gets them one by one; a backend with
    /// a round trip per call should fetch them at once.
    fn get_many(&self, space: &str, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        keys.iter().map(|k| self.get(space, k)).collect()
    }
    /// Applies all changes or none (creating the space if needed).
    fn write(&self, space: &str, changes: Vec<Change>) -> Result<()>;
    /// Removes every entry of `space` whose key starts with one of `cleared`, then applies
    /// `changes`: all of it or none. For rewrites that drop whole key ranges (a compaction
    /// drops every loose record and tombstone). This default lists the keys and deletes them
    /// one by one; a backend that can drop a range at once should.
    fn write_clearing(&self, space: &str, cleared: &[&[u8]], changes: Vec<Change>) -> Result<()> {
        write_clearing_by_keys(self, space, cleared, changes)
    }
    /// Every entry of `space` whose key is in `start..end` (to the end of the space if `end` is
    /// `None`), in key order, handed to `sink` in batches of roughly `batch_bytes` as they are
    /// read, so the caller can process one batch while the next is read.
    fn scan_range_batches(
        &self,
        space: &str,
        start: &[u8],
        end: Option<&[u8]>,
        batch_bytes: usize,
        sink: &mut dyn FnMut(EntryBatch) -> Result<()>,
    ) -> Result<()>;
    /// [`Storage::scan_range_batches`] of every key that starts with `prefix`.
    fn scan_prefix_batches(
        &self,
        space: &str,
        prefix: &[u8],
        batch_bytes: usize,
        sink: &mut dyn FnMut(EntryBatch) -> Result<()>,
    ) -> Result<()> {
        self.scan_range_batches(space, prefix, prefix_end(prefix).as_deref(), batch_bytes, sink)
    }
    /// The same entries, all at once.
    fn scan_prefix(&self, space: &str, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut out = Vec::new();
        self.scan_prefix_batches(space, prefix, 1 << 20, &mut |b| {
            out.extend(b.iter().map(|(k, v)| (k.to_vec(), v.to_vec())));
            Ok(())
        })?;
        Ok(out)
    }
    /// The names of all spaces.
    fn spaces(&self) -> Result<Vec<String>>;
    /// Every entry of every space, read from one consistent snapshot of the whole store: the
    /// store as it was at one moment, so each batch written before that moment (by
    /// [`Storage::write`] or [`Storage::write_clearing`], or committed by a [`WriteTxn`]) is
    /// wholly in it, in every space, and each batch written after it not at all. Spaces come
    /// in name order, each as one or more calls of `sink` with batches of roughly
    /// `batch_bytes` in key order; a space without entries gets one empty batch, so a copy has
    /// the same spaces. Other calls, writes included, keep working while it runs. For backups:
    /// the entries stay as stored (ciphertext), and nothing but the spaces' entries is
    /// exported (not a shared store's change log or claims).
    ///
    /// There is deliberately no default: one made of [`Storage::spaces`] and scans would read
    /// each space at another moment, so a backend must say where its snapshot comes from.
    fn export(&self, batch_bytes: usize, sink: &mut dyn FnMut(&str, EntryBatch) -> Result<()>) -> Result<()>;
    /// Removes a space and everything in it.
    fn drop_space(&self, space: &str) -> Result<()>;
    /// Gives space the store holds but no longer uses back to the file system, if that is a
    /// large part of it; returns the bytes given back. Called after a rewrite freed much (a
    /// compaction, a dropped space). Other calls wait while it runs. This default does nothing.
    fn reclaim_space(&self) -> Result<u64> {
        Ok(0)
    }
    /// Called when an entry the caller expected is missing, to tell a missing entry from
    /// damage: `Err(ERR_CORRUPT)` if the store is damaged (so the entry may be there but
    /// unreadable), `Ok(())` if it is intact. This default has nothing to check.
    fn check_intact(&self) -> Result<()> {
        Ok(())
    }
    /// Releases the backend (files, locks, connections); later calls may fail with `ERR_CLOSED`.
    fn close(&self) {}
    /// The store's sharing between processes, if several may use it at once (see
    /// [`Sharing`]). This default: none, the store belongs to one client.
    fn sharing(&self) -> Option<&dyn Sharing> {
        None
    }
}

/// The least key above every key that starts with `prefix`, if there is one (none if the
/// prefix is empty or all `0xff` bytes).
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let last = prefix.iter().rposition(|&b| b != 0xff)?;
    let mut end = prefix[..=last].to_vec();
    end[last] += 1;
    Some(end)
}

/// [`Storage::write_clearing`] for any backend: one batch that deletes every key listed under
/// the prefixes, then applies `changes`.
pub(crate) fn write_clearing_by_keys<S: Storage + ?Sized>(
    store: &S,
    space: &str,
    cleared: &[&[u8]],
    changes: Vec<Change>,
) -> Result<()> {
    let mut all = Vec::new();
    for prefix in cleared {
        store.scan_prefix_batches(space, prefix, 1 << 20, &mut |batch| {
            all.extend(batch.iter().map(|(k, _)| (k.to_vec(), None)));
            Ok(())
        })?;
    }
    all.extend(changes);
    store.write(space, all)
}

/// Scanned entries packed back to back in one buffer: a scan of a large space then costs a
/// few allocations instead of two per entry, and values can be decrypted in place.
#[derive(Debug, Default)]
pub struct EntryBatch {
    buf: Vec<u8>,
    /// Per entry: where its key ends (= where its value starts) and where its value ends.
    ends: Vec<(usize, usize)>,
}

impl EntryBatch {
    /// An empty batch with room for `bytes` of keys and values.
    pub fn with_capacity(bytes: usize) -> Self {
        EntryBatch { buf: Vec::with_capacity(bytes), ends: Vec::new() }
    }

    /// Appends an entry.
    pub fn push(&mut self, key: &[u8], value: &[u8]) {
        self.buf.extend_from_slice(key);
        let key_end = self.buf.len();
        self.buf.extend_from_slice(value);
        self.ends.push((key_end, self.buf.len()));
    }

    /// Entries.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Bytes of keys and values held.
    pub fn bytes(&self) -> usize {
        self.buf.len()
    }

    /// The value of entry `i`.
    pub fn value(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1].1 };
        let (key_end, end) = self.ends[i];
        debug_assert!(start <= key_end);
        &self.buf[key_end..end]
    }

    /// `(key, value)` pairs in scan order, values mutable (for in-place decryption).
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&[u8], &mut [u8])> {
        let mut rest: &mut [u8] = &mut self.buf;
        let mut start = 0;
        self.ends.iter().map(move |&(key_end, end)| {
            let (entry, tail) = std::mem::take(&mut rest).split_at_mut(end - start);
            rest = tail;
            let (key, value) = entry.split_at_mut(key_end - start);
            start = end;
            (&*key, value)
        })
    }

    /// `(key, value)` pairs in scan order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        let mut start = 0;
        self.ends.iter().map(move |&(key_end, end)| {
            let pair = (&self.buf[start..key_end], &self.buf[key_end..end]);
            start = end;
            pair
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ends() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(&[1, 0xff, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff]), None);
        assert_eq!(prefix_end(b""), None);
    }

    #[test]
    fn entry_batch_round_trips_pairs_including_empty_ones() {
        let pairs: [(&[u8], &[u8]); 4] = [(b"r1", b"value one"), (b"", b"x"), (b"k", b""), (b"r22", b"yz")];
        let mut b = EntryBatch::default();
        for (k, v) in pairs {
            b.push(k, v);
        }
        assert_eq!(b.len(), 4);
        assert_eq!(b.bytes(), pairs.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>());
        assert!(b.iter().eq(pairs.iter().copied()));
        for (_, v) in b.iter_mut() {
            v.iter_mut().for_each(|x| *x = x.wrapping_add(1));
        }
        let bumped: Vec<Vec<u8>> = b.iter().map(|(_, v)| v.to_vec()).collect();
        assert_eq!(bumped, vec![b"wbmvf!pof".to_vec(), b"y".to_vec(), vec![], b"z{".to_vec()]);
        assert!(b.iter().map(|(k, _)| k).eq(pairs.iter().map(|(k, _)| *k)));
        assert!((0..b.len()).map(|i| b.value(i)).eq(b.iter().map(|(_, v)| v)));
    }
}
