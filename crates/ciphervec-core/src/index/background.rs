//! Work an index starts by itself, and the policy for when: auto-training (as the system we
//! replace documents it: an index trains itself once it holds `threshold` vectors, and
//! retrains when it grows past `n_lists × threshold`) and auto-compaction (once loose entries
//! pile up, or the data key is due for rotation). Every write checks both when it is done.
//!
//! Such work runs on its own thread after the write that started it returned, so an error
//! has nobody to go to: it is kept until the caller takes it ([`Index::take_background_failure`];
//! the addon turns it into a process warning on the next call), instead of vanishing with the
//! thread. The next write that finds the work still due starts it again.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::index::training::TrainParams;
use crate::index::Index;
use crate::store::Claim;

/// Vectors after which an untrained index trains itself, unless configured otherwise.
pub const DEFAULT_THRESHOLD: usize = 10_000;
/// Untrained indexes larger than this warn (once) that queries scan everything.
pub(super) const UNTRAINED_WARNING_AT: usize = 50_000;
/// Loose entries after which writes start a background compaction (see
/// [`Index::compaction_due`]).
pub const AUTO_COMPACT_MIN: usize = 65_536;

/// Whether and when an index trains itself in the background.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AutoTrain {
    /// What the environment says: off if `CIPHERVEC_AUTO_TRAIN_DISABLED` is `1`, `true` or
    /// `yes`; else on, at `CIPHERVEC_RETRAIN_THRESHOLD` vectors (default [`DEFAULT_THRESHOLD`]).
    #[default]
    FromEnv,
    /// Never.
    Off,
    /// On, at this many vectors (`None`: the environment's threshold, or the default).
    On(Option<usize>),
}

impl AutoTrain {
    /// The threshold this setting means (`None`: off). `ERR_INVALID_ARGUMENT` for a threshold
    /// of 0, or a malformed `CIPHERVEC_RETRAIN_THRESHOLD`.
    pub fn threshold(self) -> Result<Option<usize>> {
        let from_env = || -> Result<usize> {
            match std::env::var("CIPHERVEC_RETRAIN_THRESHOLD") {
                Ok(v) => v.trim().parse::<usize>().ok().filter(|&t| t > 0).ok_or_else(|| {
                    Error::invalid(format!("CIPHERVEC_RETRAIN_THRESHOLD must be a whole number >= 1, got '{v}'"))
                }),
                Err(_) => Ok(DEFAULT_THRESHOLD),
            }
        };
        match self {
            AutoTrain::Off => Ok(None),
            AutoTrain::On(Some(0)) => Err(Error::invalid("autoTrain.threshold must be at least 1")),
            AutoTrain::On(Some(t)) => Ok(Some(t)),
            AutoTrain::On(None) => from_env().map(Some),
            AutoTrain::FromEnv => {
                let disabled = std::env::var("CIPHERVEC_AUTO_TRAIN_DISABLED")
                    .map(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
                    .unwrap_or(false);
                if disabled {
                    Ok(None)
                } else {
                    from_env().map(Some)
                }
            }
        }
    }
}

/// Work an index starts by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackgroundTask {
    /// Auto-training.
    Training,
    /// A compaction started by writes.
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
    /// The work that failed.
    pub task: BackgroundTask,
    /// Why.
    pub error: Error,
}

/// The background state of an index.
#[derive(Default)]
pub(crate) struct Background {
    /// A training run (explicit or automatic) is running.
    pub(crate) training: AtomicBool,
    /// In a shared store, the claim that keeps other processes from training meanwhile.
    pub(crate) training_claim: Mutex<Option<Box<dyn Claim>>>,
    /// A background compaction is running.
    pub(crate) compacting: AtomicBool,
    /// The auto-training threshold (0 = off).
    auto_train: AtomicUsize,
    /// Whether the "query on a large untrained index" warning was already given.
    warned_untrained: AtomicBool,
    /// The latest failure not yet taken.
    failure: Mutex<Option<BackgroundFailure>>,
}

impl Index {
    /// Sets when this handle trains the index by itself.
    pub fn set_auto_train(&self, setting: AutoTrain) -> Result<()> {
        let threshold = setting.threshold()?;
        self.background.auto_train.store(threshold.unwrap_or(0), Ordering::Release);
        Ok(())
    }

    /// The auto-training threshold, if auto-training is on.
    pub fn auto_train_threshold(&self) -> Option<usize> {
        Some(self.background.auto_train.load(Ordering::Acquire)).filter(|&t| t > 0)
    }

    /// Whether a training run is in progress.
    pub fn is_training(&self) -> bool {
        self.background.training.load(Ordering::Acquire)
    }

    /// Whether a background compaction runs.
    pub fn is_compacting(&self) -> bool {
        self.background.compacting.load(Ordering::Acquire)
    }

    /// After a write: starts auto-training if it is due, else a compaction if one is due;
    /// returns whether training started.
    pub(crate) fn after_write(self: &Arc<Self>) -> bool {
        let training = self.maybe_auto_train();
        if !training {
            self.maybe_auto_compact();
        }
        training
    }

    /// Starts a background training run (default parameters, automatic nLists) if one is
    /// due and none is running; returns whether it started. The run reserves the training
    /// slot, so a `train()` call meanwhile gets `ERR_TRAINING_IN_PROGRESS`; it never blocks
    /// readers or writers (see `training`). A failed run leaves the index as it was.
    fn maybe_auto_train(self: &Arc<Self>) -> bool {
        if !self.auto_train_due() || self.reserve_training().is_err() {
            return false;
        }
        let started = self.spawn_background("autotrain", |index| {
            // In a shared store another process may have trained the index since this one
            // last looked.
            if index.sync().is_err() || !index.auto_train_due() {
                index.background.training.store(false, Ordering::Release);
                return;
            }
            match index.train_reserved(&TrainParams::default(), &AtomicBool::new(false), &|_| {}) {
                // Another process is training the index (in a shared store): once is enough.
                Ok(_) | Err(Error::TrainingInProgress(_)) => {}
                Err(e) => index.record_background_failure(BackgroundTask::Training, e),
            }
        });
        if !started {
            self.background.training.store(false, Ordering::Release);
        }
        started
    }

    /// Whether auto-training is on and the index is due for it.
    fn auto_train_due(&self) -> bool {
        let Some(threshold) = self.auto_train_threshold() else { return false };
        let n = self.len_hint();
        if self.is_trained() {
            n > self.n_lists().saturating_mul(threshold)
        } else {
            n >= threshold
        }
    }

    /// Whether enough loose entries piled up since the last compaction: at least
    /// [`AUTO_COMPACT_MIN`] and at least half as many as there are items (then a reload
    /// reads mostly segments, and a growing index rewrites each item about twice per
    /// doubling); or the data key is due for rotation (see `format::vault`).
    pub fn compaction_due(&self) -> bool {
        let loose = self.loose_entries();
        (loose >= AUTO_COMPACT_MIN && loose >= self.len_hint() / 2) || self.vault().rotation_due()
    }

    /// Starts a compaction on a background thread if one is due and neither a compaction nor
    /// a training run (which compacts too) is running; returns whether it started. Writes
    /// wait for it like for any write; queries go on.
    fn maybe_auto_compact(self: &Arc<Self>) -> bool {
        if !self.compaction_due() || self.is_training() || self.background.compacting.swap(true, Ordering::AcqRel) {
            return false;
        }
        let started = self.spawn_background("compact", |index| {
            if index.compaction_due() {
                if let Err(e) = index.compact_packing_only(true) {
                    index.record_background_failure(BackgroundTask::Compaction, e);
                }
            }
            index.background.compacting.store(false, Ordering::Release);
        });
        if !started {
            self.background.compacting.store(false, Ordering::Release);
        }
        started
    }

    /// Runs `work` on a thread of its own, below normal priority; whether it started.
    fn spawn_background(self: &Arc<Self>, name: &str, work: impl FnOnce(&Index) + Send + 'static) -> bool {
        let index = Arc::clone(self);
        std::thread::Builder::new()
            .name(format!("ciphervec-{name}"))
            .spawn(move || {
                crate::priority::lower_current_thread();
                work(&index);
            })
            .is_ok()
    }

    /// True once per index: when it holds more than [`UNTRAINED_WARNING_AT`] vectors, is not
    /// trained and not training, so the caller should warn that queries scan everything.
    pub fn take_untrained_warning(&self) -> bool {
        !self.is_trained()
            && !self.is_training()
            && self.len_hint() > UNTRAINED_WARNING_AT
            && !self.background.warned_untrained.swap(true, Ordering::AcqRel)
    }

    /// Keeps `error` for [`Index::take_background_failure`] (replacing an older one), unless
    /// the client was closed or the index deleted meanwhile, which ends background work on
    /// purpose.
    pub(crate) fn record_background_failure(&self, task: BackgroundTask, error: Error) {
        if matches!(error, Error::Closed(_)) {
            return;
        }
        *self.background.failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(BackgroundFailure { task, error });
    }

    /// The latest background failure not yet taken.
    pub fn take_background_failure(&self) -> Option<BackgroundFailure> {
        self.background.failure.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::store::MemoryStorage;
    use crate::{Client, Metric, NewItem};

    fn items(from: usize, n: usize) -> Vec<NewItem> {
        (from..from + n)
            .map(|i| NewItem {
                id: i.to_string(),
                vector: vec![(i % 97) as f32, (i % 13) as f32],
                metadata: None,
                contents: None,
            })
            .collect()
    }

    /// Waits for a background run, failing the test (instead of hanging it) after a minute.
    fn wait_trained(index: &Index) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while index.is_training() || !index.is_trained() {
            assert!(Instant::now() < deadline, "auto-training did not finish");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn writes_train_at_the_threshold_and_retrain_past_n_lists_times_it() {
        let client = Client::new(Arc::new(MemoryStorage::new()), 2).unwrap();
        let index = client.create_index("a", &[1; 32], None, Metric::Euclidean).unwrap();
        index.set_auto_train(AutoTrain::On(Some(100))).unwrap();
        assert!(!index.upsert(items(0, 99)).unwrap().training_started, "99 < threshold");
        assert!(index.upsert(items(99, 1)).unwrap().training_started);
        wait_trained(&index);
        assert_eq!(index.n_lists(), 2, "auto nLists for 100 vectors");
        assert!(!index.upsert(items(100, 100)).unwrap().training_started, "not yet past nLists × threshold");
        assert!(index.upsert(items(200, 1)).unwrap().training_started, "201 > 2 × 100");
        wait_trained(&index);
        while index.is_training() {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(index.n_lists(), 4);
        assert_eq!(index.count().unwrap(), 201);
    }

    #[test]
    fn disabled_auto_training_never_starts_and_the_warning_is_given_once() {
        let client = Client::new(Arc::new(MemoryStorage::new()), 2).unwrap();
        let index = client.create_index("b", &[2; 32], None, Metric::Euclidean).unwrap();
        index.set_auto_train(AutoTrain::Off).unwrap();
        assert!(!index.upsert(items(0, UNTRAINED_WARNING_AT + 1)).unwrap().training_started);
        assert!(!index.is_training());
        assert!(index.take_untrained_warning());
        assert!(!index.take_untrained_warning());
    }

    #[test]
    fn settings_resolve_to_thresholds() {
        assert_eq!(AutoTrain::Off.threshold().unwrap(), None);
        assert_eq!(AutoTrain::On(Some(7)).threshold().unwrap(), Some(7));
        assert_eq!(AutoTrain::On(Some(0)).threshold().unwrap_err().code(), "ERR_INVALID_ARGUMENT");
    }
}
