//! A redb storage backend that fails on demand, for tests of how [`DiskStorage`] handles
//! operating-system errors without needing root (a `chattr +i` file or a full disk).
//!
//! It forwards everything, file locks included (so `ERR_LOCKED` still works), to redb's
//! [`FileBackend`]. While [`Faults::refuse_writes`] is on, it fails the way an immutable file
//! does on Linux: writes and length changes fail with `EPERM`, and so does opening the file
//! for writing (which the store does itself, see [`Faults::check_open`]); reads and fsync go on.
//!
//! [`DiskStorage`]: crate::store::disk::DiskStorage

use std::io;
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use redb::backends::FileBackend;
use redb::{BackendError, StorageBackend};

/// The switch shared by a test and every backend the store opens with it (also on a reopen).
#[derive(Debug, Default)]
pub(crate) struct Faults {
    refuse_writes: AtomicBool,
}

impl Faults {
    /// Turns the failure on or off; the next I/O sees the change.
    pub(crate) fn refuse_writes(&self, on: bool) {
        self.refuse_writes.store(on, Ordering::SeqCst);
    }

    /// `EPERM` while writes are refused: what opening an immutable file for writing gives.
    pub(crate) fn check_open(&self) -> io::Result<()> {
        self.check()
    }

    fn check(&self) -> io::Result<()> {
        if self.refuse_writes.load(Ordering::SeqCst) {
            return Err(io::Error::from_raw_os_error(1)); // EPERM, "Operation not permitted"
        }
        Ok(())
    }
}

/// redb's file backend behind a [`Faults`] switch.
#[derive(Debug)]
pub(crate) struct FaultyBackend {
    inner: FileBackend,
    faults: Arc<Faults>,
}

impl FaultyBackend {
    pub(crate) fn new(inner: FileBackend, faults: Arc<Faults>) -> Self {
        FaultyBackend { inner, faults }
    }
}

impl StorageBackend for FaultyBackend {
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        self.inner.read(offset, out)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.faults.check()?;
        self.inner.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.inner.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.faults.check()?;
        self.inner.write(offset, data)
    }

    fn close(&self) -> io::Result<()> {
        self.inner.close()
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.try_lock_range(start, end)
    }

    fn try_lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.query_lock_range(start, end)
    }
}
