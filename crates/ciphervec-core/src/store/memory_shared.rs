//! A [`Sharing`] store in memory, for tests: several clients over one `SharedMemoryStorage`
//! behave as several processes over one shared database do (each has its own working set and
//! follows the others through the change log), without a database.

use std::collections::{BTreeMap, HashSet};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::error::{Error, Result};
use crate::store::sharing::{Claim, LogEntry, LogKind, Sharing, Snapshot, Wake, WriteTxn};
use crate::store::{Change, EntryBatch, Storage};

#[derive(Default, Clone)]
struct Space {
    kv: BTreeMap<Vec<u8>, Vec<u8>>,
    head: u64,
    /// Entries from the last rewrite on.
    log: Vec<LogEntry>,
}

#[derive(Default)]
struct Data {
    spaces: BTreeMap<String, Space>,
    /// Spaces whose write lock a transaction holds.
    writing: HashSet<String>,
    claims: HashSet<(String, String)>,
}

#[derive(Default)]
struct Inner {
    data: Mutex<Data>,
    unlocked: Condvar,
    subscribers: Mutex<Vec<Sender<Wake>>>,
    /// No wake-ups, and followers poll only hourly: they catch up only when told to.
    quiet: bool,
    /// A space whose wake-ups are lost (as notifications are while a listener reconnects).
    deaf_to: Option<String>,
    /// Followers' polling interval, if not the default.
    poll: Option<std::time::Duration>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Data> {
        self.data.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn notify(&self, wake: Wake) {
        if self.quiet || self.deaf_to.as_deref() == Some(wake.space.as_str()) {
            return;
        }
        self.subscribers.lock().unwrap().retain(|s| s.send(wake.clone()).is_ok());
    }
}

/// See the module docs. Clones share the same data.
#[derive(Default, Clone)]
pub struct SharedMemoryStorage {
    inner: Arc<Inner>,
}

impl SharedMemoryStorage {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store whose clients follow each other only when a call makes them (a write,
    /// `Index::sync`): for tests that must act between a commit and its being followed.
    pub fn quiet() -> Self {
        SharedMemoryStorage { inner: Arc::new(Inner { quiet: true, ..Inner::default() }) }
    }

    /// An empty store that loses every wake-up for `space` and has followers poll every
    /// `poll`: for tests of the polling fallback.
    pub fn deaf_to(space: &str, poll: std::time::Duration) -> Self {
        let inner = Inner { deaf_to: Some(space.to_string()), poll: Some(poll), ..Inner::default() };
        SharedMemoryStorage { inner: Arc::new(inner) }
    }

    /// Every (space, key, value) held.
    pub fn dump(&self) -> Vec<(String, Vec<u8>, Vec<u8>)> {
        let data = self.inner.lock();
        data.spaces.iter().flat_map(|(s, m)| m.kv.iter().map(move |(k, v)| (s.clone(), k.clone(), v.clone()))).collect()
    }

    /// Log entries kept for `space`.
    pub fn log_len(&self, space: &str) -> usize {
        self.inner.lock().spaces.get(space).map_or(0, |s| s.log.len())
    }
}

/// A frozen copy of one space, read through [`Storage`].
struct Frozen {
    name: String,
    space: Option<Space>,
}

impl Snapshot for Frozen {
    fn head(&self) -> Option<u64> {
        self.space.as_ref().map(|s| s.head)
    }

    fn log_after(&self, seq: u64) -> Result<Option<Vec<LogEntry>>> {
        Ok(log_after(self.space.as_ref(), seq))
    }

    fn reader(&self) -> &dyn Storage {
        self
    }
}

fn log_after(space: Option<&Space>, seq: u64) -> Option<Vec<LogEntry>> {
    let space = space?;
    let first = space.log.first().map_or(space.head + 1, |e| e.seq);
    (first <= seq + 1).then(|| space.log.iter().filter(|e| e.seq > seq).cloned().collect())
}

fn read_only() -> Error {
    Error::Internal("a snapshot is read-only".into())
}

impl Storage for Frozen {
    fn get(&self, space: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.space.as_ref().filter(|_| space == self.name).and_then(|s| s.kv.get(key).cloned()))
    }

    fn write(&self, _: &str, _: Vec<Change>) -> Result<()> {
        Err(read_only())
    }

    fn scan_range_batches(
        &self,
        space: &str,
        start: &[u8],
        end: Option<&[u8]>,
        batch_bytes: usize,
        sink: &mut dyn FnMut(EntryBatch) -> Result<()>,
    ) -> Result<()> {
        let Some(s) = self.space.as_ref().filter(|_| space == self.name) else { return Ok(()) };
        scan(&s.kv, start, end, batch_bytes, sink)
    }

    fn spaces(&self) -> Result<Vec<String>> {
        Ok(self.space.iter().map(|_| self.name.clone()).collect())
    }

    fn drop_space(&self, _: &str) -> Result<()> {
        Err(read_only())
    }

    /// Its one space, frozen.
    fn export(&self, batch_bytes: usize, sink: &mut dyn FnMut(&str, EntryBatch) -> Result<()>) -> Result<()> {
        let Some(s) = self.space.as_ref() else { return Ok(()) };
        export_space(&self.name, &s.kv, batch_bytes, sink)
    }
}

/// One space's entries for [`Storage::export`]: at least one batch, empty if it has none.
fn export_space(
    name: &str,
    kv: &BTreeMap<Vec<u8>, Vec<u8>>,
    batch_bytes: usize,
    sink: &mut dyn FnMut(&str, EntryBatch) -> Result<()>,
) -> Result<()> {
    let mut sent = false;
    scan(kv, b"", None, batch_bytes, &mut |batch| {
        sent = true;
        sink(name, batch)
    })?;
    if !sent {
        sink(name, EntryBatch::default())?;
    }
    Ok(())
}

fn scan(
    kv: &BTreeMap<Vec<u8>, Vec<u8>>,
    start: &[u8],
    end: Option<&[u8]>,
    batch_bytes: usize,
    sink: &mut dyn FnMut(EntryBatch) -> Result<()>,
) -> Result<()> {
    let mut batch = EntryBatch::default();
    for (k, v) in kv.range(start.to_vec()..).take_while(|(k, _)| end.is_none_or(|end| k.as_slice() < end)) {
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

/// A write transaction: holds the space's lock; reads see the live data (no other writer can
/// change the space meanwhile).
struct Txn {
    store: SharedMemoryStorage,
    name: String,
    /// The space as the transaction began (for [`Snapshot`]).
    frozen: Frozen,
    done: bool,
}

impl Snapshot for Txn {
    fn head(&self) -> Option<u64> {
        self.frozen.head()
    }

    fn log_after(&self, seq: u64) -> Result<Option<Vec<LogEntry>>> {
        self.frozen.log_after(seq)
    }

    fn reader(&self) -> &dyn Storage {
        &self.frozen
    }
}

impl WriteTxn for Txn {
    fn as_snapshot(&self) -> &dyn Snapshot {
        self
    }

    fn commit(
        mut self: Box<Self>,
        cleared: &[&[u8]],
        changes: Vec<Change>,
        kind: LogKind,
        body: Vec<u8>,
    ) -> Result<u64> {
        let seq = {
            let mut data = self.store.inner.lock();
            let space = data.spaces.entry(self.name.clone()).or_default();
            if !cleared.is_empty() {
                space.kv.retain(|k, _| !cleared.iter().any(|p| k.starts_with(p)));
            }
            for (k, v) in changes {
                match v {
                    Some(v) => space.kv.insert(k, v),
                    None => space.kv.remove(&k),
                };
            }
            space.head += 1;
            let seq = space.head;
            if kind == LogKind::Rewrite {
                space.log.clear();
            }
            space.log.push(LogEntry { seq, kind, body });
            data.writing.remove(&self.name);
            seq
        };
        self.done = true;
        self.store.inner.unlocked.notify_all();
        self.store.inner.notify(Wake { space: self.name.clone(), seq });
        Ok(seq)
    }

    fn drop_space(mut self: Box<Self>) -> Result<()> {
        {
            let mut data = self.store.inner.lock();
            data.spaces.remove(&self.name);
            data.writing.remove(&self.name);
        }
        self.done = true;
        self.store.inner.unlocked.notify_all();
        self.store.inner.notify(Wake { space: self.name.clone(), seq: 0 });
        Ok(())
    }
}

impl Drop for Txn {
    fn drop(&mut self) {
        if !self.done {
            self.store.inner.lock().writing.remove(&self.name);
            self.store.inner.unlocked.notify_all();
        }
    }
}

struct MemoryClaim {
    store: SharedMemoryStorage,
    key: (String, String),
}

impl Claim for MemoryClaim {}

impl Drop for MemoryClaim {
    fn drop(&mut self) {
        self.store.inner.lock().claims.remove(&self.key);
    }
}

impl Sharing for SharedMemoryStorage {
    fn begin_write(&self, space: &str) -> Result<Box<dyn WriteTxn>> {
        let mut data = self.inner.lock();
        while data.writing.contains(space) {
            data = self.inner.unlocked.wait(data).unwrap_or_else(|p| p.into_inner());
        }
        data.writing.insert(space.to_string());
        let frozen = Frozen { name: space.to_string(), space: data.spaces.get(space).cloned() };
        Ok(Box::new(Txn { store: self.clone(), name: space.to_string(), frozen, done: false }))
    }

    fn snapshot(&self, space: &str) -> Result<Box<dyn Snapshot>> {
        let data = self.inner.lock();
        Ok(Box::new(Frozen { name: space.to_string(), space: data.spaces.get(space).cloned() }))
    }

    fn heads(&self, spaces: &[&str]) -> Result<Vec<Option<u64>>> {
        let data = self.inner.lock();
        Ok(spaces.iter().map(|s| data.spaces.get(*s).map(|s| s.head)).collect())
    }

    fn try_claim(&self, space: &str, what: &str) -> Result<Option<Box<dyn Claim>>> {
        let key = (space.to_string(), what.to_string());
        if !self.inner.lock().claims.insert(key.clone()) {
            return Ok(None);
        }
        Ok(Some(Box::new(MemoryClaim { store: self.clone(), key })))
    }

    fn subscribe(&self) -> Result<Receiver<Wake>> {
        let (tx, rx) = channel();
        self.inner.subscribers.lock().unwrap().push(tx);
        Ok(rx)
    }

    fn poll_interval(&self) -> std::time::Duration {
        if let Some(poll) = self.inner.poll {
            poll
        } else if self.inner.quiet {
            std::time::Duration::from_secs(3600)
        } else {
            std::time::Duration::from_secs(1)
        }
    }
}

/// Direct calls (outside a transaction) act on the live data and write no log entry, as a
/// single-client store's would.
impl Storage for SharedMemoryStorage {
    fn get(&self, space: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.inner.lock().spaces.get(space).and_then(|s| s.kv.get(key).cloned()))
    }

    fn write(&self, space: &str, changes: Vec<Change>) -> Result<()> {
        let mut data = self.inner.lock();
        let space = data.spaces.entry(space.to_string()).or_default();
        for (k, v) in changes {
            match v {
                Some(v) => space.kv.insert(k, v),
                None => space.kv.remove(&k),
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
        // Copied out first: the sink may call back into the store.
        let kv = self.inner.lock().spaces.get(space).map(|s| s.kv.clone()).unwrap_or_default();
        scan(&kv, start, end, batch_bytes, sink)
    }

    fn spaces(&self) -> Result<Vec<String>> {
        Ok(self.inner.lock().spaces.keys().cloned().collect())
    }

    fn drop_space(&self, space: &str) -> Result<()> {
        self.inner.lock().spaces.remove(space);
        Ok(())
    }

    /// Every space copied under the lock (the whole store, twice in memory for the export:
    /// this store is for tests), then handed over.
    fn export(&self, batch_bytes: usize, sink: &mut dyn FnMut(&str, EntryBatch) -> Result<()>) -> Result<()> {
        let copy: Vec<(String, Space)> =
            self.inner.lock().spaces.iter().map(|(name, s)| (name.clone(), s.clone())).collect();
        for (name, space) in copy {
            export_space(&name, &space.kv, batch_bytes, sink)?;
        }
        Ok(())
    }

    fn sharing(&self) -> Option<&dyn Sharing> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_memory_storage_conforms() {
        crate::store::conformance::run(&SharedMemoryStorage::new());
        crate::store::conformance::run_sharing(&Arc::new(SharedMemoryStorage::new()));
    }

    #[test]
    fn memory_storage_is_not_shared() {
        assert!(crate::store::MemoryStorage::new().sharing().is_none());
    }
}
