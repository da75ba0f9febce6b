//! An in-memory [`Storage`]: what a real store would hold (ciphertext blobs), kept in a map.
//! Used by tests and by `Client.open({ storage: { kind: 'memory' } })`.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use crate::error::Result;
use crate::store::{Change, EntryBatch, Storage};

/// Values are shared (`Arc`), so that [`Storage::export`] can take its snapshot by copying
/// the maps' keys under the lock instead of every value.
type Space = BTreeMap<Vec<u8>, Arc<Vec<u8>>>;

/// Spaces of ordered blobs behind one lock; a batch is applied under the write lock, so it is
/// atomic to every reader.
#[derive(Default)]
pub struct MemoryStorage {
    spaces: RwLock<BTreeMap<String, Space>>,
}

impl MemoryStorage {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every (space, key, value) held, for tests that inspect what the store sees.
    #[cfg(any(test, feature = "test-util"))]
    #[doc(hidden)]
    pub fn dump(&self) -> Vec<(String, Vec<u8>, Vec<u8>)> {
        let spaces = self.spaces.read().unwrap();
        spaces.iter().flat_map(|(s, m)| m.iter().map(move |(k, v)| (s.clone(), k.clone(), v.to_vec()))).collect()
    }

    /// Overwrites one stored value in place, for tests that simulate tampering.
    #[cfg(any(test, feature = "test-util"))]
    #[doc(hidden)]
    pub fn replace_raw(&self, space: &str, key: &[u8], value: Vec<u8>) {
        let mut spaces = self.spaces.write().unwrap();
        if let Some(v) = spaces.get_mut(space).and_then(|m| m.get_mut(key)) {
            *v = Arc::new(value);
        }
    }
}

impl Storage for MemoryStorage {
    fn get(&self, space: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.spaces.read().unwrap().get(space).and_then(|m| m.get(key).map(|v| v.to_vec())))
    }

    fn write(&self, space: &str, changes: Vec<Change>) -> Result<()> {
        self.write_clearing(space, &[], changes)
    }

    fn write_clearing(&self, space: &str, cleared: &[&[u8]], changes: Vec<Change>) -> Result<()> {
        let mut spaces = self.spaces.write().unwrap();
        let m = spaces.entry(space.to_string()).or_default();
        if !cleared.is_empty() {
            m.retain(|k, _| !cleared.iter().any(|p| k.starts_with(p)));
        }
        for (k, v) in changes {
            match v {
                Some(v) => m.insert(k, Arc::new(v)),
                None => m.remove(&k),
            };
        }
        Ok(())
    }

    fn scan_range_batches(
        &self,
        space: &str,
        start: &[u8],
        end: Option<&[u8]>,
        batch_bytes: usize,
        sink: &mut dyn FnMut(EntryBatch) -> Result<()>,
    ) -> Result<()> {
        let spaces = self.spaces.read().unwrap();
        let Some(m) = spaces.get(space) else { return Ok(()) };
        let mut batch = EntryBatch::default();
        for (k, v) in m.range(start.to_vec()..).take_while(|(k, _)| end.is_none_or(|end| k.as_slice() < end)) {
            batch.push(k, v);
            if batch.bytes() >= batch_bytes {
                sink(std::mem::take(&mut batch))?;
            }
        }
        if !batch.is_empty() {
            sink(batch)?;
        }
        Ok(())
    }

    fn spaces(&self) -> Result<Vec<String>> {
        Ok(self.spaces.read().unwrap().keys().cloned().collect())
    }

    fn drop_space(&self, space: &str) -> Result<()> {
        self.spaces.write().unwrap().remove(space);
        Ok(())
    }

    /// The snapshot is a copy of the maps taken under the read lock (a write waits only for
    /// the copy, not for the export): keys are copied, values shared with the live store, so
    /// for as long as the export runs it holds one more copy of the keys, and of the values
    /// written over or deleted meanwhile.
    fn export(&self, batch_bytes: usize, sink: &mut dyn FnMut(&str, EntryBatch) -> Result<()>) -> Result<()> {
        let snapshot: Vec<(String, Space)> =
            self.spaces.read().unwrap().iter().map(|(name, m)| (name.clone(), m.clone())).collect();
        for (name, m) in snapshot {
            let mut batch = EntryBatch::default();
            let mut sent = false;
            for (k, v) in &m {
                batch.push(k, v);
                if batch.bytes() >= batch_bytes {
                    sink(&name, std::mem::take(&mut batch))?;
                    sent = true;
                }
            }
            if !batch.is_empty() || !sent {
                sink(&name, batch)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_storage_conforms() {
        crate::store::conformance::run(&MemoryStorage::new());
    }
}
