//! Calls their callers can abort (an `AbortSignal` in JS sets a flag): where an upsert, a
//! load or a query batch checks the flag, and the store wrapper through which a load sees it.
//!
//! An abort is honoured only where it leaves the index as it was: before a write reaches
//! the store, between the batches a load reads, between blocks of a query batch.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result};
use crate::index::Index;
use crate::store::{Change, EntryBatch, Sharing, Storage};

impl Index {
    /// `ERR_ABORTED` if `abort` is set; `call` names what was aborted.
    pub(crate) fn check_abort(&self, abort: &AtomicBool, call: &str) -> Result<()> {
        if abort.load(Ordering::Acquire) {
            return Err(aborted(call, &self.name));
        }
        Ok(())
    }
}

/// The error of `call` on index `name`, aborted by its caller.
pub(crate) fn aborted(call: &str, name: &str) -> Error {
    Error::Aborted(format!("{call} of index '{name}' was aborted; the index is unchanged"))
}

/// A store as a load reads it: every scanned batch first checks the abort flag, so a load of
/// a large index stops within a batch of being aborted. Writes pass through unchanged (a load
/// writes nothing; the wrapper only ever reads).
pub(crate) struct Aborting<'a> {
    pub(crate) inner: &'a dyn Storage,
    pub(crate) abort: &'a AtomicBool,
    /// The index being loaded, for the error.
    pub(crate) name: &'a str,
}

impl Aborting<'_> {
    fn check(&self) -> Result<()> {
        if self.abort.load(Ordering::Acquire) {
            return Err(aborted("loadIndex", self.name));
        }
        Ok(())
    }
}

impl Storage for Aborting<'_> {
    fn get(&self, space: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.check()?;
        self.inner.get(space, key)
    }

    fn get_many(&self, space: &str, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        self.check()?;
        self.inner.get_many(space, keys)
    }

    fn write(&self, space: &str, changes: Vec<Change>) -> Result<()> {
        self.inner.write(space, changes)
    }

    fn write_clearing(&self, space: &str, cleared: &[&[u8]], changes: Vec<Change>) -> Result<()> {
        self.inner.write_clearing(space, cleared, changes)
    }

    fn scan_range_batches(
        &self,
        space: &str,
        start: &[u8],
        end: Option<&[u8]>,
        batch_bytes: usize,
        sink: &mut dyn FnMut(EntryBatch) -> Result<()>,
    ) -> Result<()> {
        self.check()?;
        self.inner.scan_range_batches(space, start, end, batch_bytes, &mut |batch| {
            self.check()?;
            sink(batch)
        })
    }

    fn export(&self, batch_bytes: usize, sink: &mut dyn FnMut(&str, EntryBatch) -> Result<()>) -> Result<()> {
        self.check()?;
        self.inner.export(batch_bytes, &mut |space, batch| {
            self.check()?;
            sink(space, batch)
        })
    }

    fn spaces(&self) -> Result<Vec<String>> {
        self.inner.spaces()
    }

    fn drop_space(&self, space: &str) -> Result<()> {
        self.inner.drop_space(space)
    }

    fn check_intact(&self) -> Result<()> {
        self.inner.check_intact()
    }

    fn sharing(&self) -> Option<&dyn Sharing> {
        self.inner.sharing()
    }
}
