//! The embedded default [`Storage`]: one redb file per client directory.
//!
//! Why redb: pure Rust (no C++ engine to build on 2 cores), a copy-on-write B-tree whose
//! commits are atomic and, at its default durability, fsynced before `commit` returns, so a
//! resolved upsert survives `kill -9`; a crash mid-commit leaves the previous commit intact.
//! It locks its file, so a second process gets `ERR_LOCKED` instead of corrupting it. Every
//! value written is already sealed by the index; keys are storage names and HMACs.

#[cfg(test)]
mod faulty;

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::RwLock;

use redb::backends::FileBackend;
use redb::{Database, DatabaseError, Durability, ReadableDatabase, ReadableTable, TableDefinition, TableError};

use crate::error::{Error, Result};
use crate::store::{prefix_end, Change, EntryBatch, Storage};

/// File name inside the client's directory.
pub(super) const FILE_NAME: &str = "ciphervec.redb";
/// Version of the layout below; a store written by another layout is `ERR_UNSUPPORTED_FORMAT`.
const FORMAT_VERSION: u32 = 1;

/// redb's page cache (read cache plus write buffer). Every page a load reads passes through
/// it and stays cached, next to the decrypted working set that already holds every record,
/// so after a load it is memory for nothing (redb's default, 1 GiB, kept the whole file
/// resident). 32 MiB once kept ingest fast with per-record storage; with segments, ingest
/// next to background compactions and loads ran as fast at 2, 4 and 8 MiB, and 4 MiB takes
/// an IVF-Flat index's resident memory after a load from 1.37× to 1.18× its vectors
/// (BENCHMARKS.md, "A 4 MiB page cache for the disk store").
const CACHE_BYTES: usize = 4 << 20;

/// [`Storage::reclaim_space`] shrinks the file once its unused pages are at least this many
/// bytes and at least as many as its used ones. A compaction writes its new segments next to
/// the records and segments it replaces (a transaction cannot reuse pages it frees), and freed
/// small pages rarely fit a segment's 256 KiB, so a compaction can leave the file several
/// times the size of the pages in use (BENCHMARKS.md, "Disk space").
const RECLAIM_MIN_BYTES: u64 = 32 << 20;

/// `space ‖ 0 ‖ key` → sealed value.
const KV: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kv");
/// Space names (index storage names).
const SPACES: TableDefinition<&str, ()> = TableDefinition::new("spaces");
const META: TableDefinition<&str, u32> = TableDefinition::new("meta");
/// `META` keys: the format version, and its bitwise complement (so one damaged byte in the
/// version reads as damage, not as a newer format). Stores written before the marker existed
/// have no `META` table and are format 1.
const FORMAT_KEY: &str = "format";
const FORMAT_CHECK_KEY: &str = "format-check";
/// How a new store is named while it is made, in the directory of the store: then a crash
/// can leave only such a file behind (removed by the next open), never a partial store.
const CREATING_PREFIX: &str = ".ciphervec.redb.creating-";
/// Bytes of entries per transaction while [`DiskStorage::create_filled`] fills a new store.
const FILL_COMMIT_BYTES: usize = 64 << 20;

/// How the store's file is handed to redb: to redb's own file backend, or in tests through
/// one that fails on demand (see `faulty_backend`).
#[derive(Clone, Default)]
struct Opener {
    #[cfg(test)]
    faults: Option<std::sync::Arc<crate::store::disk::faulty::Faults>>,
}

impl Opener {
    /// Opens the existing file `path` for reading and writing.
    fn file(&self, path: &Path) -> std::io::Result<File> {
        #[cfg(test)]
        if let Some(faults) = &self.faults {
            faults.check_open()?;
        }
        OpenOptions::new().read(true).write(true).open(path)
    }

    /// redb's database in `file`. redb would initialise an empty file as a new database: the
    /// caller has refused those.
    fn database(&self, file: File) -> std::result::Result<Database, DatabaseError> {
        let mut builder = Database::builder();
        builder.set_cache_size(CACHE_BYTES);
        let backend = FileBackend::new(file)?;
        #[cfg(test)]
        if let Some(faults) = &self.faults {
            return builder
                .create_with_backend(crate::store::disk::faulty::FaultyBackend::new(backend, faults.clone()));
        }
        builder.create_with_backend(backend)
    }
}

/// A redb-backed store; [`DiskStorage::close`] releases the file lock.
pub struct DiskStorage {
    path: PathBuf,
    opener: Opener,
    /// `None` once closed, or while a reopen after an I/O error has not succeeded yet.
    db: RwLock<Option<Database>>,
    /// [`DiskStorage::close`] was called: the only way to `ERR_CLOSED` (a missing database
    /// alone may just be a reopen still to retry).
    closed: AtomicBool,
    /// Set after an I/O error: redb then refuses every operation ("previous I/O error")
    /// until reopened, so the next operation reopens it (at its last good commit). Stays set
    /// while reopening fails, so every later call tries again.
    needs_reopen: AtomicBool,
    /// Set when a read found the file damaged (truncated structure), until the next reopen.
    damaged: AtomicBool,
    /// redb's integrity check passed since the file was (re)opened (see `verify`).
    verified: AtomicBool,
    /// Why writes are refused for the rest of this session: the check found damage.
    refused: std::sync::Mutex<Option<String>>,
    /// Exports running (see [`Storage::export`]).
    exports: AtomicUsize,
}

/// Counts one running export down again when dropped.
struct Running<'a>(&'a AtomicUsize);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn io(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Io(format!("{}: {e}", path.display()))
}

/// A read past the end of the file: the store's structure points outside it, which only
/// damage (or truncation) does.
fn is_truncation(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::UnexpectedEof
}

fn truncated(path: &Path) -> Error {
    Error::Corrupt(format!("{} is damaged: its structure points past the end of the file", path.display()))
}

fn full_key(space: &str, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(space.len() + 1 + key.len());
    k.extend_from_slice(space.as_bytes());
    k.push(0);
    k.extend_from_slice(key);
    k
}

impl DiskStorage {
    /// The name of the store's file in its directory.
    pub const FILE_NAME: &'static str = FILE_NAME;

    /// Opens (or creates) the store in directory `dir`.
    pub fn open(dir: impl AsRef<Path>) -> Result<DiskStorage> {
        Self::open_with(dir.as_ref(), Opener::default())
    }

    /// Makes a new store in directory `dir` holding the entries `fill` hands to the sink it
    /// is given (each call: a space and a batch of its entries, as [`Storage::export`] hands
    /// them), for a backup. The store is published only once complete, as every new store is
    /// (see `create_if_missing`): if `fill` fails, or the process dies meanwhile, there is no
    /// store at `dir`, and a directory this call created is removed again. `dir` must be
    /// missing or an empty directory (a leftover of an interrupted creation aside): one that
    /// holds a store or anything else, or a path that is no directory, is refused with
    /// `ERR_INVALID_ARGUMENT` and nothing is written. Returns what `fill` returned and the size
    /// of the new store's file.
    pub fn create_filled<T>(
        dir: impl AsRef<Path>,
        fill: impl FnOnce(&mut dyn FnMut(&str, EntryBatch) -> Result<()>) -> Result<T>,
    ) -> Result<(T, u64)> {
        let dir = dir.as_ref();
        if dir.as_os_str().is_empty() {
            return Err(Error::invalid("the path is empty: pass the directory to write the new store to"));
        }
        let created = match std::fs::metadata(dir) {
            Ok(m) if m.is_dir() => {
                check_empty(dir)?;
                false
            }
            Ok(_) => return Err(Error::invalid(format!("{} exists and is not a directory", dir.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
                true
            }
            Err(e) => return Err(io(dir, e)),
        };
        let path = dir.join(FILE_NAME);
        let temp = temp_name(dir);
        let made = make_store_with(&temp, fill).and_then(|out| match std::fs::hard_link(&temp, &path) {
            Ok(()) => File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io(dir, e)).map(|()| out),
            Err(_) if std::fs::symlink_metadata(&path).is_ok() => Err(Error::invalid(format!(
                "{} holds a ciphervec store now: another one was created there meanwhile",
                dir.display()
            ))),
            Err(e) => Err(io(&path, format!("cannot publish the new store: {e}"))),
        });
        let _ = std::fs::remove_file(&temp);
        match made {
            Ok(out) => Ok((out, std::fs::metadata(&path).map_err(|e| io(&path, e))?.len())),
            Err(e) => {
                if created {
                    let _ = std::fs::remove_dir(dir);
                }
                Err(e)
            }
        }
    }

    /// [`DiskStorage::open`] through a backend that fails while `faults` says so.
    #[cfg(test)]
    pub(crate) fn open_with_faults(
        dir: impl AsRef<Path>,
        faults: std::sync::Arc<crate::store::disk::faulty::Faults>,
    ) -> Result<DiskStorage> {
        Self::open_with(dir.as_ref(), Opener { faults: Some(faults) })
    }

    fn open_with(dir: &Path, opener: Opener) -> Result<DiskStorage> {
        if dir.as_os_str().is_empty() {
            // It would open the current directory, which nobody means by leaving it out.
            return Err(Error::invalid("the disk store's path is empty: pass the directory to keep the store in"));
        }
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let path = dir.join(FILE_NAME);
        // redb can panic on pages damaged in ways its checks miss, also while opening.
        std::panic::catch_unwind(|| {
            create_if_missing(dir, &path)?;
            let db = Self::open_file(&opener, &path)?;
            let store = DiskStorage {
                path: path.clone(),
                opener: opener.clone(),
                db: RwLock::new(Some(db)),
                closed: AtomicBool::new(false),
                needs_reopen: AtomicBool::new(false),
                damaged: AtomicBool::new(false),
                verified: AtomicBool::new(false),
                refused: std::sync::Mutex::new(None),
                exports: AtomicUsize::new(0),
            };
            store.check_format()?;
            remove_leftovers(dir);
            Ok(store)
        })
        .unwrap_or_else(|_| {
            Err(Error::Corrupt(format!("{} is damaged: the storage engine failed while opening it", path.display())))
        })
    }

    /// Opens the store's file. A store is published whole (see `create_if_missing`), so a
    /// file that is empty or no redb file at all is damage, never a store to initialise.
    fn open_file(opener: &Opener, path: &Path) -> Result<Database> {
        let file = opener.file(path).map_err(|e| io(path, e))?;
        if file.metadata().map_err(|e| io(path, e))?.len() == 0 {
            return Err(Error::Corrupt(format!(
                "{} is empty: its contents are lost; restore it from a backup, or delete it to start an empty store",
                path.display()
            )));
        }
        opener.database(file).map_err(|e| match e {
            DatabaseError::DatabaseAlreadyOpen | DatabaseError::LockProtocolMismatch => Error::Locked(format!(
                "{} is open in another process (or client): close that client first",
                path.display()
            )),
            DatabaseError::UpgradeRequired(v) => Error::UnsupportedFormat(format!(
                "{} uses storage format {v}, which this ciphervec cannot read",
                path.display()
            )),
            DatabaseError::Storage(redb::StorageError::Io(e)) if is_truncation(&e) => truncated(path),
            // What redb reports for a file without its magic number (a damaged first page, or
            // a file too short to hold it); no OS error has this kind.
            DatabaseError::Storage(redb::StorageError::Io(e)) if e.kind() == std::io::ErrorKind::InvalidData => {
                Error::Corrupt(format!("{} is damaged or not a ciphervec store: {e}", path.display()))
            }
            DatabaseError::Storage(redb::StorageError::Io(e)) => io(path, e),
            DatabaseError::Storage(redb::StorageError::Corrupted(m)) => {
                Error::Corrupt(format!("{}: {m}", path.display()))
            }
            other => io(path, other),
        })
    }

    /// Reopens the database after an I/O error (e.g. a full disk that has been cleared). If
    /// that fails too (say the file cannot be opened for writing yet), the store is left
    /// without a database and `needs_reopen` set: the next call tries again.
    fn reopen_if_needed(&self) -> Result<()> {
        if !self.needs_reopen.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut guard = self.db.write().unwrap_or_else(|p| p.into_inner());
        if self.closed.load(Ordering::Acquire) {
            return Err(self.unavailable());
        }
        if !self.needs_reopen.load(Ordering::Acquire) {
            return Ok(());
        }
        if let Some(db) = guard.take() {
            release(db, false);
        }
        *guard = Some(Self::open_file(&self.opener, &self.path)?);
        self.needs_reopen.store(false, Ordering::Release);
        self.damaged.store(false, Ordering::Release);
        self.verified.store(false, Ordering::Release);
        Ok(())
    }

    /// Why there is no database to use: the store was closed, or a reopen after an I/O error
    /// has not succeeded yet (each call retries it).
    fn unavailable(&self) -> Error {
        if self.closed.load(Ordering::Acquire) {
            return Error::Closed("the storage".into());
        }
        io(&self.path, "the store could not be reopened after an I/O error; retry once its cause is cleared")
    }

    /// Runs redb's integrity check once per (re)opened file: before its first write
    /// transaction, when an entry a caller expected is missing (`check_intact`), and at the
    /// latest when the file is closed. Damage that reads never walk into (redb's own trees of
    /// freed pages, which a commit walks) made redb panic inside a commit and again while
    /// unwinding, which aborts the process: 1 in ~2,300 random bit flips did. The check reads
    /// every page (~120 ms for a 390 MB file, once per process) and reports such damage as
    /// `ERR_CORRUPT`, remembered: writes are refused for the rest of the session; reads go on,
    /// since they authenticate every entry anyway. An OS error during the check (it writes
    /// redb's header) is no damage: it is `ERR_IO`, and the check runs again on the next call,
    /// after the reopen a failed check needs (redb then discards its allocator state).
    fn verify(&self) -> Result<()> {
        if self.verified.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut refused = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(why) = refused.as_ref() {
            return Err(Error::Corrupt(why.clone()));
        }
        self.reopen_if_needed()?;
        let mut guard = self.db.write().unwrap_or_else(|p| p.into_inner());
        if self.verified.load(Ordering::Acquire) {
            return Ok(());
        }
        let Some(db) = guard.as_mut() else { return Err(self.unavailable()) };
        let why = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| db.check_integrity())) {
            Ok(Ok(true)) => {
                self.verified.store(true, Ordering::Release);
                return Ok(());
            }
            // Repaired by going back to redb's previous commit: what this process loaded may
            // be newer than the file now, so writing on would mix the two.
            Ok(Ok(false)) => "the storage engine found damage and went back to its previous commit; \
                              open the store again (its last write may be lost)"
                .to_string(),
            Ok(Err(e)) => match redb::Error::from(e) {
                redb::Error::Corrupted(m) => format!("the storage engine's integrity check failed: {m}"),
                redb::Error::Io(e) if is_truncation(&e) => "its structure points past the end of the file".to_string(),
                other => {
                    let error = self.err(other);
                    self.needs_reopen.store(true, Ordering::Release);
                    return Err(error);
                }
            },
            Err(_) => "the storage engine failed while checking it".to_string(),
        };
        let why = format!("{} is damaged ({why}): writes are refused", self.path.display());
        *refused = Some(why.clone());
        Err(Error::Corrupt(why))
    }

    /// Refuses a store written in another format. Only reads: redb can panic on damaged
    /// pages, and a panic inside a write transaction can panic again while unwinding, which
    /// aborts the process. (A new store gets its marker before it is published.)
    fn check_format(&self) -> Result<()> {
        let guard = self.db.read().unwrap_or_else(|p| p.into_inner());
        let db = guard.as_ref().expect("just opened");
        let found = {
            let txn = db.begin_read().map_err(|e| self.err(e))?;
            match txn.open_table(META) {
                Ok(meta) => {
                    let get = |k: &str| meta.get(k).map(|v| v.map(|v| v.value())).map_err(|e| self.err(e));
                    Some((get(FORMAT_KEY)?, get(FORMAT_CHECK_KEY)?))
                }
                Err(TableError::TableDoesNotExist(_)) => None,
                Err(e) => return Err(self.err(e)),
            }
        };
        match found {
            // Written before the marker existed (or damage the integrity check will find).
            None => Ok(()),
            Some((Some(FORMAT_VERSION), _)) => Ok(()),
            // Written by another version of ciphervec, which writes the check too; without a
            // matching check the version number itself is damaged.
            Some((Some(v), Some(check))) if check == !v => Err(Error::UnsupportedFormat(format!(
                "{} has ciphervec storage format {v}; this version reads {FORMAT_VERSION}: upgrade ciphervec",
                self.path.display()
            ))),
            // The marker is written whole, in the transaction that creates the table.
            Some(_) => {
                Err(Error::Corrupt(format!("{} is damaged: its format marker is unreadable", self.path.display())))
            }
        }
    }

    fn err(&self, e: impl Into<redb::Error>) -> Error {
        match e.into() {
            redb::Error::Corrupted(m) => Error::Corrupt(format!("{}: {m}", self.path.display())),
            redb::Error::Io(e) if is_truncation(&e) => {
                // redb now refuses every operation until reopened; those refusals are this damage.
                self.damaged.store(true, Ordering::Release);
                self.needs_reopen.store(true, Ordering::Release);
                truncated(&self.path)
            }
            // Tables and their types are fixed when the store is created: a missing or
            // mistyped one is damage to the table directory.
            redb::Error::TableDoesNotExist(t) => {
                Error::Corrupt(format!("{} is damaged: its table '{t}' is missing", self.path.display()))
            }
            e @ (redb::Error::TableTypeMismatch { .. }
            | redb::Error::TableIsMultimap(_)
            | redb::Error::TableIsNotMultimap(_)
            | redb::Error::TypeDefinitionChanged { .. }) => {
                Error::Corrupt(format!("{} is damaged: {e}", self.path.display()))
            }
            redb::Error::Io(e) => {
                self.needs_reopen.store(true, Ordering::Release);
                io(&self.path, e)
            }
            redb::Error::PreviousIo => {
                self.needs_reopen.store(true, Ordering::Release);
                if self.damaged.load(Ordering::Acquire) {
                    return truncated(&self.path);
                }
                io(&self.path, "an earlier I/O error left the database needing a reopen; retry")
            }
            other => io(&self.path, other),
        }
    }

    /// Runs `f` on the open database. redb can panic on pages damaged in ways its checks
    /// miss; such a panic becomes `ERR_CORRUPT` instead of unwinding into the caller.
    fn with_db<T>(&self, f: impl FnOnce(&Database) -> Result<T>) -> Result<T> {
        self.reopen_if_needed()?;
        let guard = self.db.read().unwrap_or_else(|p| p.into_inner());
        let Some(db) = guard.as_ref() else { return Err(self.unavailable()) };
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(db))).unwrap_or_else(|_| {
            Err(Error::Corrupt(format!(
                "{} is damaged: the storage engine failed while reading it",
                self.path.display()
            )))
        })
    }

    /// Releases the file (and its lock); later calls fail with `ERR_CLOSED`. Never fails.
    ///
    /// Closing is redb's last write: it commits its allocator state (so the next open needs
    /// no repair) and marks the file cleanly shut down. That commit walks redb's own trees,
    /// and on damage there it panicked (`ERR_INTERNAL` through Node) or panicked twice and
    /// aborted the process; a session that had only read a store with two pages swapped did.
    /// So a session that has not run the integrity check runs it now, and the closing write
    /// is made only on a file that passed it; any other is let go without writing (the next
    /// open recovers it as after a crash).
    pub fn close(&self) {
        if !self.closed.load(Ordering::Acquire) && !self.needs_reopen.load(Ordering::Acquire) {
            // Its outcome is recorded in `verified`; close itself has nothing to report.
            let _ = self.verify();
        }
        let mut guard = self.db.write().unwrap_or_else(|p| p.into_inner());
        self.closed.store(true, Ordering::Release);
        if let Some(db) = guard.take() {
            release(db, self.may_write_back());
        }
    }

    /// Whether closing may make redb's closing write: the file passed the integrity check
    /// since it was (re)opened, and no I/O error has happened since.
    fn may_write_back(&self) -> bool {
        self.verified.load(Ordering::Acquire) && !self.needs_reopen.load(Ordering::Acquire)
    }

    /// [`Storage::scan_range_batches`] in `table` of a read transaction; whether any batch
    /// was handed over.
    fn scan_in(
        &self,
        table: &redb::ReadOnlyTable<&'static [u8], &'static [u8]>,
        space: &str,
        start: &[u8],
        end: Option<&[u8]>,
        batch_bytes: usize,
        sink: &mut dyn FnMut(EntryBatch) -> Result<()>,
    ) -> Result<bool> {
        let start = full_key(space, start);
        // The space's keys all start with its name and a 0 byte.
        let end = match end {
            Some(end) => Some(full_key(space, end)),
            None => prefix_end(&full_key(space, b"")),
        };
        let strip = space.len() + 1;
        // Room for one more entry of typical size, so a batch is allocated once.
        let capacity = batch_bytes + batch_bytes / 4;
        let mut batch = EntryBatch::with_capacity(capacity);
        let mut sent = false;
        for entry in table.range(start.as_slice()..).map_err(|e| self.err(e))? {
            let (k, v) = entry.map_err(|e| self.err(e))?;
            if end.as_deref().is_some_and(|end| k.value() >= end) {
                break;
            }
            batch.push(&k.value()[strip..], v.value());
            if batch.bytes() >= batch_bytes {
                sink(std::mem::replace(&mut batch, EntryBatch::with_capacity(capacity)))?;
                sent = true;
            }
        }
        if !batch.is_empty() {
            sink(batch)?;
            sent = true;
        }
        Ok(sent)
    }

    /// The store's file, for tests that inspect or damage it.
    #[cfg(any(test, feature = "test-util"))]
    #[doc(hidden)]
    pub fn file(&self) -> &Path {
        &self.path
    }
}

/// Publishes a new, empty store at `path` unless a file is there. The store is made whole
/// under a temporary name in the same directory (redb's layout and the format marker
/// committed, the file fsynced), then linked to `path`, which fails if `path` exists, and the
/// directory fsynced: a crash leaves no file at `path` or a complete store, never the empty or
/// half-initialised file an in-place creation can leave (which must read as damage). Of two
/// processes creating at once, one links its store; the other finds it there and opens it
/// (and is refused by its lock while the first has it open).
fn create_if_missing(dir: &Path, path: &Path) -> Result<()> {
    let exists = |path: &Path| std::fs::symlink_metadata(path).is_ok();
    match std::fs::symlink_metadata(path) {
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(path, e)),
    }
    let temp = temp_name(dir);
    let made = make_store(&temp).and_then(|()| match std::fs::hard_link(&temp, path) {
        Ok(()) => File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io(dir, e)),
        // Another process published its store first (and may have removed this temporary
        // file as a leftover): open that one.
        Err(_) if exists(path) => Ok(()),
        Err(e) => Err(io(path, format!("cannot publish the new store: {e}"))),
    });
    let _ = std::fs::remove_file(&temp);
    made
}

/// A new store's temporary name in `dir` (see `create_if_missing`).
fn temp_name(dir: &Path) -> PathBuf {
    let nonce = crate::crypto::random_key();
    dir.join(format!(
        "{CREATING_PREFIX}{}-{}",
        std::process::id(),
        nonce[..8].iter().map(|b| format!("{b:02x}")).collect::<String>()
    ))
}

/// Refuses a directory that holds anything but leftovers of interrupted creations.
fn check_empty(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
        let name = entry.map_err(|e| io(dir, e))?.file_name();
        if name == FILE_NAME {
            return Err(Error::invalid(format!(
                "{} already holds a ciphervec store: choose a new or empty directory",
                dir.display()
            )));
        }
        if !name.to_str().is_some_and(|name| name.starts_with(CREATING_PREFIX)) {
            return Err(Error::invalid(format!(
                "{} is not empty: choose a new or empty directory for the new store",
                dir.display()
            )));
        }
    }
    Ok(())
}

/// A new, empty store in the file `temp`: redb's layout, the format marker and the tables,
/// committed, cleanly closed and fsynced. Works on the open file throughout, so another
/// process's `remove_leftovers` unlinking `temp` meanwhile fails only the link after it.
fn make_store(temp: &Path) -> Result<()> {
    make_store_with(temp, |_| Ok(()))
}

/// [`make_store`], then the entries `fill` hands over (see [`DiskStorage::create_filled`]),
/// in transactions of about [`FILL_COMMIT_BYTES`]: all but the last without an fsync, the
/// last durable, and with it every one before.
fn make_store_with<T>(
    temp: &Path,
    fill: impl FnOnce(&mut dyn FnMut(&str, EntryBatch) -> Result<()>) -> Result<T>,
) -> Result<T> {
    let fail = |e: &dyn std::fmt::Display| io(temp, e);
    let file = OpenOptions::new().read(true).write(true).create_new(true).open(temp).map_err(|e| fail(&e))?;
    let synced = file.try_clone().map_err(|e| fail(&e))?;
    let backend = FileBackend::new(file).map_err(|e| fail(&e))?;
    let db = Database::builder().set_cache_size(CACHE_BYTES).create_with_backend(backend).map_err(|e| fail(&e))?;
    let txn = db.begin_write().map_err(|e| fail(&e))?;
    {
        let mut meta = txn.open_table(META).map_err(|e| fail(&e))?;
        meta.insert(FORMAT_KEY, FORMAT_VERSION).map_err(|e| fail(&e))?;
        meta.insert(FORMAT_CHECK_KEY, !FORMAT_VERSION).map_err(|e| fail(&e))?;
        txn.open_table(KV).map_err(|e| fail(&e))?;
        txn.open_table(SPACES).map_err(|e| fail(&e))?;
    }
    txn.commit().map_err(|e| fail(&e))?;
    let mut open: Option<redb::WriteTransaction> = None;
    let mut pending = 0;
    let out = fill(&mut |space, batch| {
        let txn = match open.as_mut() {
            Some(txn) => txn,
            None => {
                let mut txn = db.begin_write().map_err(|e| fail(&e))?;
                txn.set_durability(Durability::None).map_err(|e| fail(&e))?;
                open.insert(txn)
            }
        };
        {
            let mut kv = txn.open_table(KV).map_err(|e| fail(&e))?;
            for (k, v) in batch.iter() {
                kv.insert(full_key(space, k).as_slice(), v).map_err(|e| fail(&e))?;
            }
            txn.open_table(SPACES).map_err(|e| fail(&e))?.insert(space, ()).map_err(|e| fail(&e))?;
        }
        pending += batch.bytes();
        if pending >= FILL_COMMIT_BYTES {
            open.take().expect("just used").commit().map_err(|e| fail(&e))?;
            pending = 0;
        }
        Ok(())
    })?;
    let mut last = match open.take() {
        Some(txn) => txn,
        None => db.begin_write().map_err(|e| fail(&e))?,
    };
    last.set_durability(Durability::Immediate).map_err(|e| fail(&e))?;
    last.commit().map_err(|e| fail(&e))?;
    db.close().map_err(|e| fail(&e))?;
    synced.sync_all().map_err(|e| fail(&e))?;
    Ok(out)
}

/// Removes the temporary files of creations that never finished (a crash before the
/// store was published). Called with the store open, so with its lock held: a creation still
/// running elsewhere will find the store and open it instead of its own file, so that file is
/// a leftover too. Best effort: a file that cannot be removed stays for the next open.
fn remove_leftovers(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        if entry.file_name().to_str().is_some_and(|name| name.starts_with(CREATING_PREFIX)) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Lets a database handle go; `write_back: false` without any write. Never panics.
///
/// redb writes nothing while dropped during an unwind (its close checks
/// `std::thread::panicking()`, so that a panic leaves the file for recovery), and it has no
/// other way to close without writing; `resume_unwind` starts such an unwind without calling
/// the panic hook, so nothing is printed. A panic inside redb's normal close is caught too.
fn release(db: Database, write_back: bool) {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        if write_back {
            drop(db);
        } else {
            let _dropped_while_unwinding = db;
            std::panic::resume_unwind(Box::new("closing without writing"));
        }
    }));
}

impl Drop for DiskStorage {
    /// A store dropped without [`DiskStorage::close`] is let go the same way, but without
    /// running a check first: a drop may happen on any thread (the JS thread, when Node
    /// collects a client that was never closed).
    fn drop(&mut self) {
        let write_back = self.may_write_back();
        if let Some(db) = self.db.get_mut().unwrap_or_else(|p| p.into_inner()).take() {
            release(db, write_back);
        }
    }
}

impl Storage for DiskStorage {
    fn get(&self, space: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.with_db(|db| {
            let txn = db.begin_read().map_err(|e| self.err(e))?;
            let table = match txn.open_table(KV) {
                Ok(t) => t,
                Err(TableError::TableDoesNotExist(_)) => return Ok(None),
                Err(e) => return Err(self.err(e)),
            };
            let v = table.get(full_key(space, key).as_slice()).map_err(|e| self.err(e))?;
            Ok(v.map(|v| v.value().to_vec()))
        })
    }

    fn write(&self, space: &str, changes: Vec<Change>) -> Result<()> {
        self.write_clearing(space, &[], changes)
    }

    fn write_clearing(&self, space: &str, cleared: &[&[u8]], mut changes: Vec<Change>) -> Result<()> {
        self.verify()?;
        // In key order, the B-tree's pages are each visited once in a row, not at random
        // (record keys are HMACs), so a batch larger than the page cache does not evict pages
        // it comes back to. Stable, so of two changes to one key the last still wins.
        changes.sort_by(|a, b| a.0.cmp(&b.0));
        self.with_db(|db| {
            let txn = db.begin_write().map_err(|e| self.err(e))?;
            {
                let mut kv = txn.open_table(KV).map_err(|e| self.err(e))?;
                // One pass over each range, not one delete per key: it drops a compacted
                // index's loose records in a fraction of the time.
                for prefix in cleared {
                    let start = full_key(space, prefix);
                    match prefix_end(&start) {
                        Some(end) => kv.retain_in(start.as_slice()..end.as_slice(), |_, _| false),
                        None => kv.retain_in(start.as_slice().., |_, _| false),
                    }
                    .map_err(|e| self.err(e))?;
                }
                // By value: each blob is freed once redb holds it, so a whole-index batch is
                // not held twice (in the batch and in redb's pages) until the commit.
                for (k, v) in changes {
                    let k = full_key(space, &k);
                    match v {
                        Some(v) => kv.insert(k.as_slice(), v.as_slice()).map(|_| ()),
                        None => kv.remove(k.as_slice()).map(|_| ()),
                    }
                    .map_err(|e| self.err(e))?;
                }
                let mut spaces = txn.open_table(SPACES).map_err(|e| self.err(e))?;
                spaces.insert(space, ()).map_err(|e| self.err(e))?;
            }
            // Default durability: the commit is fsynced before it returns.
            txn.commit().map_err(|e| self.err(e))
        })
    }

    fn scan_range_batches(
        &self,
        space: &str,
        start: &[u8],
        end: Option<&[u8]>,
        batch_bytes: usize,
        sink: &mut dyn FnMut(EntryBatch) -> Result<()>,
    ) -> Result<()> {
        self.with_db(|db| {
            let txn = db.begin_read().map_err(|e| self.err(e))?;
            let table = txn.open_table(KV).map_err(|e| self.err(e))?;
            self.scan_in(&table, space, start, end, batch_bytes, sink).map(|_| ())
        })
    }

    /// One read transaction (a redb snapshot: writers go on committing meanwhile, and the
    /// pages it reads stay in the file until it ends) over both tables.
    ///
    /// The session's integrity check (see `verify`) runs first if it has not yet: it needs
    /// the database to itself, and run later by the session's first write it would make that
    /// write (and every call after it) wait for the export. A damaged file is not copied.
    /// While an export runs, [`Storage::reclaim_space`] gives nothing back, for the same reason.
    fn export(&self, batch_bytes: usize, sink: &mut dyn FnMut(&str, EntryBatch) -> Result<()>) -> Result<()> {
        self.verify()?;
        self.exports.fetch_add(1, Ordering::AcqRel);
        let _running = Running(&self.exports);
        self.with_db(|db| {
            let txn = db.begin_read().map_err(|e| self.err(e))?;
            let spaces = txn.open_table(SPACES).map_err(|e| self.err(e))?;
            let mut names = Vec::new();
            for entry in spaces.iter().map_err(|e| self.err(e))? {
                names.push(entry.map_err(|e| self.err(e))?.0.value().to_string());
            }
            let table = txn.open_table(KV).map_err(|e| self.err(e))?;
            for name in names {
                let sent = self.scan_in(&table, &name, b"", None, batch_bytes, &mut |batch| sink(&name, batch))?;
                if !sent {
                    sink(&name, EntryBatch::default())?;
                }
            }
            Ok(())
        })
    }

    fn spaces(&self) -> Result<Vec<String>> {
        self.with_db(|db| {
            let txn = db.begin_read().map_err(|e| self.err(e))?;
            let table = txn.open_table(SPACES).map_err(|e| self.err(e))?;
            let mut out = Vec::new();
            for entry in table.iter().map_err(|e| self.err(e))? {
                out.push(entry.map_err(|e| self.err(e))?.0.value().to_string());
            }
            Ok(out)
        })
    }

    fn drop_space(&self, space: &str) -> Result<()> {
        self.verify()?;
        self.with_db(|db| {
            let txn = db.begin_write().map_err(|e| self.err(e))?;
            {
                let mut kv = txn.open_table(KV).map_err(|e| self.err(e))?;
                // One pass over the space's range (it ends where `space ‖ 1` starts), not a
                // listing and one delete per key; a read error now fails the batch instead of
                // ending the listing early and committing a partial drop.
                let start = full_key(space, b"");
                let end = prefix_end(&start).expect("a space's keys end with a 0 byte");
                kv.retain_in(start.as_slice()..end.as_slice(), |_, _| false).map_err(|e| self.err(e))?;
                txn.open_table(SPACES).map_err(|e| self.err(e))?.remove(space).map_err(|e| self.err(e))?;
            }
            txn.commit().map_err(|e| self.err(e))
        })
    }

    /// redb's `compact` moves pages in use towards the start of the file and truncates it, in
    /// crash-safe commits. It needs the database to itself, so it runs under the write guard:
    /// every other call on this store waits (0.6 s for a 374 MB file with 100 MB in use,
    /// ~1.2 s for 570 MB).
    fn reclaim_space(&self) -> Result<u64> {
        if self.exports.load(Ordering::Acquire) > 0 {
            // Compacting waits for the export's read transaction, and every call waits for it
            // meanwhile; the next compaction, training run or deletion gives the space back.
            return Ok(0);
        }
        self.verify()?;
        self.reopen_if_needed()?;
        let mut guard = self.db.write().unwrap_or_else(|p| p.into_inner());
        let Some(db) = guard.as_mut() else { return Err(self.unavailable()) };
        let file_len = || std::fs::metadata(&self.path).map(|m| m.len()).map_err(|e| io(&self.path, e));
        let before = file_len()?;
        let compacted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> Result<bool> {
            let txn = db.begin_write().map_err(|e| self.err(e))?;
            let stats = txn.stats().map_err(|e| self.err(e))?;
            txn.abort().map_err(|e| self.err(e))?;
            let used = stats.allocated_pages() * stats.page_size() as u64;
            let unused = before.saturating_sub(used);
            if unused < RECLAIM_MIN_BYTES || unused < used {
                return Ok(false);
            }
            db.compact().map_err(|e| self.err(e))
        }))
        .unwrap_or_else(|_| {
            Err(Error::Corrupt(format!(
                "{} is damaged: the storage engine failed while compacting it",
                self.path.display()
            )))
        })?;
        Ok(if compacted { before.saturating_sub(file_len()?) } else { 0 })
    }

    /// redb's integrity check, which verifies every page's checksum, once per session (see
    /// `verify`): damage to a B-tree page can hide entries (two pages swapped made both
    /// indexes of a store read as missing). Where the check finds damage it may repair the
    /// file by going back to redb's previous commit; the store then reports `ERR_CORRUPT`
    /// all the same and refuses writes for the session, since what was read before the repair
    /// may be newer than the file now.
    fn check_intact(&self) -> Result<()> {
        self.verify()
    }

    fn close(&self) {
        DiskStorage::close(self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ciphervec-disk-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    /// A bit flipped in any page's entry count (the damage that made a commit panic twice and
    /// abort): writes either work or are refused with ERR_CORRUPT, never a panic.
    #[test]
    fn writes_to_a_damaged_file_are_refused_not_a_crash() {
        let d = dir("damaged-writes");
        {
            let store = DiskStorage::open(&d).unwrap();
            // Enough history for several trees and freed pages: puts, overwrites, deletes.
            for round in 0..6u8 {
                let changes = (0..200u32)
                    .map(|i| (format!("r{i:05}").into_bytes(), (i % 5 != round as u32 % 5).then(|| vec![round; 300])))
                    .collect();
                store.write("s", changes).unwrap();
            }
            store.close();
        }
        let file = d.join(FILE_NAME);
        let clean = std::fs::read(&file).unwrap();
        let (mut refused, mut written) = (0, 0);
        for page in 1..clean.len() / 4096 {
            for bit in [5, 6] {
                let mut bad = clean.clone();
                bad[page * 4096 + 3] ^= 1 << bit;
                std::fs::write(&file, &bad).unwrap();
                let Ok(store) = DiskStorage::open(&d) else { continue };
                match store.write("s", vec![(b"new".to_vec(), Some(vec![1; 300]))]) {
                    Ok(()) => written += 1,
                    Err(e) => {
                        assert!(matches!(e, Error::Corrupt(_) | Error::Integrity(_)), "page {page} bit {bit}: {e}");
                        refused += 1;
                        let again = store.write("s", vec![(b"other".to_vec(), None)]).unwrap_err();
                        assert!(matches!(again, Error::Corrupt(_)), "refused for the session: {again}");
                    }
                }
                store.close();
            }
        }
        assert!(refused > 0 && written > 0, "refused {refused}, written {written}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    /// An OS error (here what an immutable file gives: `EPERM` on every write and on opening
    /// it for writing) is `ERR_IO` wherever it strikes: in the integrity check before the
    /// session's first write, in the reopen after it, in a commit. It is never damage and
    /// never closes the store: once it clears, the next call reopens the store and writes.
    #[test]
    fn an_os_error_is_err_io_and_writes_resume_once_it_clears() {
        use crate::store::disk::faulty::Faults;
        let d = dir("os-error");
        let first = DiskStorage::open(&d).unwrap();
        first.write("s", vec![(b"before".to_vec(), Some(b"1".to_vec()))]).unwrap();
        first.close();
        let faults = std::sync::Arc::new(Faults::default());
        let store = DiskStorage::open_with_faults(&d, faults.clone()).unwrap();
        let put = |k: &str| store.write("s", vec![(k.as_bytes().to_vec(), Some(b"1".to_vec()))]);
        let keys = || -> Vec<Vec<u8>> { store.scan_prefix("s", b"").unwrap().into_iter().map(|(k, _)| k).collect() };

        faults.refuse_writes(true);
        for attempt in 0..3 {
            assert_eq!(put("refused").unwrap_err().code(), "ERR_IO", "before the first write, attempt {attempt}");
        }
        faults.refuse_writes(false);
        put("after-check").unwrap();

        faults.refuse_writes(true);
        for attempt in 0..3 {
            assert_eq!(put("refused").unwrap_err().code(), "ERR_IO", "in a commit, attempt {attempt}");
        }
        assert_eq!(store.drop_space("s").unwrap_err().code(), "ERR_IO");
        faults.refuse_writes(false);
        put("later").unwrap();
        assert_eq!(keys(), [&b"after-check"[..], b"before", b"later"]);

        store.close();
        assert_eq!(put("closed").unwrap_err().code(), "ERR_CLOSED", "only close() closes it");
        let again = DiskStorage::open(&d).unwrap();
        assert_eq!(again.scan_prefix("s", b"").unwrap().len(), 3, "the acknowledged writes persist");
        again.close();
        std::fs::remove_dir_all(&d).unwrap();
    }

    /// Two pages swapped (the damage that made closing panic, or panic twice and abort the
    /// process, also after a session that had only read): closing never fails, and once a
    /// write was refused, closing writes nothing either.
    #[test]
    fn closing_a_damaged_store_never_fails_and_writes_nothing_once_writes_are_refused() {
        let d = dir("damaged-close");
        {
            let store = DiskStorage::open(&d).unwrap();
            for space in ["a", "b"] {
                for round in 0..3u8 {
                    let changes = (0..100u32).map(|i| (format!("r{i:04}").into_bytes(), Some(vec![round; 200])));
                    store.write(space, changes.collect()).unwrap();
                }
            }
            store.close();
        }
        let file = d.join(FILE_NAME);
        let clean = std::fs::read(&file).unwrap();
        let pages = clean.len() / 4096;
        let (mut sessions, mut refused) = (0, 0);
        // Each page after the file header with its next three and with the last one.
        let pairs =
            (1..pages).flat_map(|p| (p + 1..pages).filter(move |&q| q <= p + 3 || q == pages - 1).map(move |q| (p, q)));
        for (p, q) in pairs {
            let mut bad = clean.clone();
            bad[p * 4096..(p + 1) * 4096].copy_from_slice(&clean[q * 4096..(q + 1) * 4096]);
            bad[q * 4096..(q + 1) * 4096].copy_from_slice(&clean[p * 4096..(p + 1) * 4096]);
            std::fs::write(&file, &bad).unwrap();
            let Ok(store) = DiskStorage::open(&d) else { continue };
            sessions += 1;
            for space in ["a", "b"] {
                let _ = store.scan_prefix(space, b"");
            }
            store.close();
            std::fs::write(&file, &bad).unwrap();
            let store = DiskStorage::open(&d).unwrap();
            match store.write("c", vec![(b"k".to_vec(), Some(b"v".to_vec()))]) {
                Ok(()) => store.close(),
                Err(e) => {
                    assert!(matches!(e, Error::Corrupt(_)), "swap {p}/{q}: {e}");
                    refused += 1;
                    let before = std::fs::read(&file).unwrap();
                    store.close();
                    assert!(std::fs::read(&file).unwrap() == before, "swap {p}/{q}: closing wrote to a damaged file");
                }
            }
        }
        assert!(refused > 0 && refused < sessions, "{refused} of {sessions} sessions refused to write");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn disk_storage_conforms() {
        let d = dir("conformance");
        let store = DiskStorage::open(&d).unwrap();
        crate::store::conformance::run(&store);
        store.close();
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn batches_persist_across_reopen() {
        let d = dir("persist");
        {
            let s = DiskStorage::open(&d).unwrap();
            s.write("a", vec![(b"r1".to_vec(), Some(b"x".to_vec())), (b"r2".to_vec(), Some(b"y".to_vec()))]).unwrap();
            s.write("a", vec![(b"r1".to_vec(), None)]).unwrap();
            s.close();
        }
        let s = DiskStorage::open(&d).unwrap();
        assert_eq!(s.scan_prefix("a", b"").unwrap(), vec![(b"r2".to_vec(), b"y".to_vec())]);
        s.close();
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn reclaiming_gives_freed_space_back_and_keeps_every_entry() {
        let d = dir("reclaim");
        let s = DiskStorage::open(&d).unwrap();
        let len = || std::fs::metadata(s.file()).unwrap().len();
        // Incompressible values, so no layer can store them smaller than written.
        let value = |i: u32| -> Vec<u8> {
            let mut x = u64::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
            (0..100_000)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect()
        };
        let kept: Vec<Change> = (0..40).map(|i| (format!("k{i:03}").into_bytes(), Some(value(i)))).collect();
        s.write("kept", kept.clone()).unwrap();
        assert_eq!(s.reclaim_space().unwrap(), 0, "a store without unused space stays as it is");
        for chunk in 0..6u32 {
            let big = (0..100).map(|i| (format!("b{chunk}-{i:03}").into_bytes(), Some(value(1000 + chunk * 100 + i))));
            s.write("big", big.collect()).unwrap();
        }
        s.drop_space("big").unwrap();
        let before = len();
        assert!(before > 60_000_000, "{before} bytes: the dropped space's pages stay in the file");
        let given_back = s.reclaim_space().unwrap();
        let after = len();
        assert_eq!(given_back, before - after);
        assert!(after < 12_000_000, "{after} bytes left for 4 MB of entries");
        assert_eq!(s.reclaim_space().unwrap(), 0, "nothing is left to give back");
        s.write("kept", vec![(b"later".to_vec(), Some(b"written after".to_vec()))]).unwrap();
        s.close();
        let s = DiskStorage::open(&d).unwrap();
        let mut expected: Vec<(Vec<u8>, Vec<u8>)> = kept.into_iter().map(|(k, v)| (k, v.unwrap())).collect();
        expected.push((b"later".to_vec(), b"written after".to_vec()));
        assert_eq!(s.scan_prefix("kept", b"").unwrap(), expected);
        assert_eq!(s.spaces().unwrap(), vec!["kept".to_string()]);
        s.close();
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_second_open_is_locked_until_close() {
        let d = dir("lock");
        let first = DiskStorage::open(&d).unwrap();
        assert_eq!(DiskStorage::open(&d).err().unwrap().code(), "ERR_LOCKED");
        first.close();
        assert_eq!(first.get("a", b"k").unwrap_err().code(), "ERR_CLOSED");
        DiskStorage::open(&d).unwrap();
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_newer_format_is_refused_a_damaged_marker_is_corrupt_and_garbage_is_a_typed_error() {
        let d = dir("format");
        {
            let s = DiskStorage::open(&d).unwrap();
            let guard = s.db.read().unwrap();
            let txn = guard.as_ref().unwrap().begin_write().unwrap();
            let mut meta = txn.open_table(META).unwrap();
            meta.insert(FORMAT_KEY, 99).unwrap();
            meta.insert(FORMAT_CHECK_KEY, !99).unwrap();
            drop(meta);
            txn.commit().unwrap();
        }
        assert_eq!(DiskStorage::open(&d).err().unwrap().code(), "ERR_UNSUPPORTED_FORMAT");
        {
            let db = Database::create(d.join(FILE_NAME)).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(META).unwrap().insert(FORMAT_KEY, 1 | 1 << 15).unwrap();
            txn.commit().unwrap();
        }
        assert_eq!(DiskStorage::open(&d).err().unwrap().code(), "ERR_CORRUPT", "a flipped bit in the version");
        std::fs::write(d.join(FILE_NAME), b"not a database at all").unwrap();
        assert_eq!(DiskStorage::open(&d).err().unwrap().code(), "ERR_CORRUPT");
        let _ = std::fs::remove_dir_all(&d);
    }

    /// A store is never empty or shorter than redb's header (it is published whole), so such
    /// a file, or one whose first page lost redb's magic number, is damage: `ERR_CORRUPT`, and
    /// the file stays as it is rather than becoming a new, empty store.
    #[test]
    fn an_empty_short_or_headless_file_is_corrupt_and_left_as_it_is() {
        let d = dir("empty");
        let store = DiskStorage::open(&d).unwrap();
        store.write("s", vec![(b"k".to_vec(), Some(vec![7; 100]))]).unwrap();
        store.close();
        let file = d.join(FILE_NAME);
        let clean = std::fs::read(&file).unwrap();
        let mut headless = clean.clone();
        headless[..64].fill(0x55);
        for bad in [&[][..], &clean[..5], &clean[..100], b"not a store", &headless] {
            std::fs::write(&file, bad).unwrap();
            for attempt in 0..2 {
                let e = DiskStorage::open(&d).err().unwrap();
                assert_eq!(e.code(), "ERR_CORRUPT", "{} bytes, attempt {attempt}: {e}", bad.len());
            }
            assert!(std::fs::read(&file).unwrap() == bad, "a {}-byte file was changed", bad.len());
        }
        std::fs::remove_dir_all(&d).unwrap();
    }

    /// A new store appears at its path complete or not at all: what a crashed creation leaves
    /// is a temporary file, which the next open removes. Of threads creating one store at
    /// once, one gets it and the others `ERR_LOCKED`, as a second process would.
    #[test]
    fn new_stores_are_published_whole_once_and_leftovers_are_removed() {
        let d = dir("publish");
        std::fs::create_dir_all(&d).unwrap();
        let leftover = d.join(format!("{CREATING_PREFIX}4242-00ff00ff00ff00ff"));
        std::fs::write(&leftover, b"half a store").unwrap();
        let store = DiskStorage::open(&d).unwrap();
        let names: Vec<_> = std::fs::read_dir(&d).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, [FILE_NAME], "only the store is left");
        store.close();
        std::fs::remove_dir_all(&d).unwrap();

        for round in 0..5 {
            let d = dir(&format!("race-{round}"));
            let barrier = std::sync::Barrier::new(4);
            let opened: Vec<Result<DiskStorage>> = std::thread::scope(|s| {
                let racers: Vec<_> = (0..4)
                    .map(|_| {
                        s.spawn(|| {
                            barrier.wait();
                            DiskStorage::open(&d)
                        })
                    })
                    .collect();
                racers.into_iter().map(|r| r.join().unwrap()).collect()
            });
            let codes: Vec<&str> = opened.iter().filter_map(|r| r.as_ref().err().map(Error::code)).collect();
            assert_eq!(codes, ["ERR_LOCKED"; 3], "round {round}");
            let winner = opened.into_iter().find_map(|r| r.ok()).unwrap();
            winner.write("s", vec![(b"k".to_vec(), Some(b"v".to_vec()))]).unwrap();
            winner.close();
            let names: Vec<_> = std::fs::read_dir(&d).unwrap().map(|e| e.unwrap().file_name()).collect();
            assert_eq!(names, [FILE_NAME], "round {round}: no leftovers");
            assert_eq!(DiskStorage::open(&d).unwrap().get("s", b"k").unwrap(), Some(b"v".to_vec()));
            std::fs::remove_dir_all(&d).unwrap();
        }
    }
}
