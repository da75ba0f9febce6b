//! What a store that several processes share adds to [`Storage`]: a way to serialise the
//! writers of a space across processes, a change log that lets every process follow the
//! others' commits, consistent snapshots to read them from, and claims for work that must run
//! once per space (training).
//!
//! The index (see `index::follow`) uses it like this:
//! - every write starts with [`Sharing::begin_write`], which waits until no other writer of the
//!   space holds it; the index first applies whatever other processes committed since it last
//!   looked (reading through the transaction), then commits its batch together with one log
//!   entry, atomically;
//! - a log entry is `(seq, kind, body)`: `seq` counts the space's commits without gaps (1, 2,
//!   ...), the body is sealed by the index (for a [`LogKind::Write`], the ids it touched);
//!   a [`LogKind::Rewrite`] (compaction, training, creation) tells followers to read the whole
//!   space again, and lets the store drop the entries before it;
//! - between writes, a process follows: [`Sharing::subscribe`] wakes it when another process
//!   commits, and it reads the entries after its cursor from a [`Snapshot`].
//!
//! Everything passed here is what [`Storage`] receives too: storage names, derived keys and
//! sealed blobs. Only the log's `kind` and `seq` are plain, and the store learns as much from
//! the writes themselves.

use std::sync::mpsc::Receiver;
use std::time::Duration;

use crate::error::Result;
use crate::store::{Change, Storage};

/// What a change-log entry stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogKind {
    /// Changed entries named by the body (loose records and tombstones of some ids).
    Write,
    /// The whole space was rewritten (or created): read it again.
    Rewrite,
}

/// One committed change of a space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Its place in the space's commits: 1, 2, ... without gaps.
    pub seq: u64,
    /// What it stands for.
    pub kind: LogKind,
    /// Sealed by the writer (empty for a rewrite).
    pub body: Vec<u8>,
}

/// A wake-up: another process committed `seq` to `space` (or deleted the space).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wake {
    /// The space written.
    pub space: String,
    /// The commit's sequence number (0: the space was deleted).
    pub seq: u64,
}

/// A consistent, read-only view of a store as of one moment.
pub trait Snapshot: Send + Sync {
    /// The space's last committed sequence number at that moment; `None` if it does not
    /// exist.
    fn head(&self) -> Option<u64>;
    /// The log entries of the space after `seq`, in order, up to [`Snapshot::head`]; `None`
    /// if the store no longer keeps all of them (a rewrite since let it drop them).
    fn log_after(&self, seq: u64) -> Result<Option<Vec<LogEntry>>>;
    /// Reads as of that moment (the store's write methods fail on it).
    fn reader(&self) -> &dyn Storage;
}

/// A write of one space, holding the space's write lock across processes until it is
/// committed or dropped (dropping it rolls back). Its reads see every commit made before the
/// lock was taken.
pub trait WriteTxn: Snapshot {
    /// The snapshot side of the transaction.
    fn as_snapshot(&self) -> &dyn Snapshot;
    /// Commits `changes` (after removing every key that starts with one of `cleared`) and the
    /// log entry `(kind, body)` numbered [`Snapshot::head`] + 1 (the space is created at 1 if
    /// it did not exist), atomically; returns that number. A [`LogKind::Rewrite`] lets the
    /// store drop the entries before it.
    fn commit(self: Box<Self>, cleared: &[&[u8]], changes: Vec<Change>, kind: LogKind, body: Vec<u8>) -> Result<u64>;
    /// Removes the space, its entries and its log, atomically.
    fn drop_space(self: Box<Self>) -> Result<()>;
}

/// Held while work that must run once per space across processes runs; dropping it
/// releases the claim (so does the holder's death).
pub trait Claim: Send {}

/// See the module docs.
pub trait Sharing: Send + Sync {
    /// Starts a write of `space`, waiting for other writers (see [`WriteTxn`]).
    fn begin_write(&self, space: &str) -> Result<Box<dyn WriteTxn>>;
    /// A snapshot of the store as of now.
    fn snapshot(&self, space: &str) -> Result<Box<dyn Snapshot>>;
    /// The last committed sequence number of each of `spaces` (`None`: it does not exist),
    /// in order.
    fn heads(&self, spaces: &[&str]) -> Result<Vec<Option<u64>>>;
    /// Claims `what` on `space` if no other holder (in any process) has it.
    fn try_claim(&self, space: &str, what: &str) -> Result<Option<Box<dyn Claim>>>;
    /// Wake-ups for commits by others, as long as the receiver lives. Best effort: a wake-up
    /// can be lost (while the connection is down, say), so followers poll as well.
    fn subscribe(&self) -> Result<Receiver<Wake>>;
    /// How often followers poll for commits they were not woken for.
    fn poll_interval(&self) -> Duration {
        Duration::from_secs(1)
    }
}
