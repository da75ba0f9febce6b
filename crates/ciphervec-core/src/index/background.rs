//! Failures of work an index starts by itself (auto-training, background compaction). Such
//! work runs on its own thread after the write that started it has resolved, so an error has
//! nobody to go to: it is kept here until the caller takes it (the addon turns it into a
//! process warning on the next call), instead of vanishing with the thread. The next write
//! that finds the work still due starts it again.

use std::fmt;

use crate::error::Error;
use crate::index::Index;

/// Work an index starts by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackgroundTask {
    Training,
    Compaction,
    /// Giving the store's unused space back after an explicit compaction or a training run
    /// that succeeded.
    Reclaim,
}

impl BackgroundTask {
    /// What the failure left, and what happens next, for the caller's warning.
    pub fn aftermath(&self) -> &'static str {
        match self {
            BackgroundTask::Training | BackgroundTask::Compaction => {
                "the index is unchanged, and the next write that finds it due tries again"
            }
            BackgroundTask::Reclaim => {
                "the index is intact and stored; the next compact(), training or deleteIndex tries again"
            }
        }
    }
}

impl fmt::Display for BackgroundTask {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            BackgroundTask::Training => "auto-training",
            BackgroundTask::Compaction => "background compaction",
            BackgroundTask::Reclaim => "returning unused disk space",
        })
    }
}

/// What failed in the background, and why.
#[derive(Debug)]
pub struct BackgroundFailure {
    pub task: BackgroundTask,
    pub error: Error,
}

impl Index {
    /// Keeps `error` for [`Index::take_background_failure`] (replacing an older one), unless
    /// the client was closed or the index deleted meanwhile, which ends background work on
    /// purpose.
    pub(crate) fn record_background_failure(&self, task: BackgroundTask, error: Error) {
        if matches!(error, Error::Closed(_)) {
            return;
        }
        *self.background_failure_slot().lock().unwrap() = Some(BackgroundFailure { task, error });
    }

    /// The latest background failure not yet taken.
    pub fn take_background_failure(&self) -> Option<BackgroundFailure> {
        self.background_failure_slot().lock().unwrap().take()
    }
}
