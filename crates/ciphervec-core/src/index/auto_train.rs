//! Auto-training, as the system we replace documents it: an index trains itself in the
//! background once it holds `threshold` vectors, and retrains when it grows past
//! `n_lists × threshold`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::index::background::BackgroundTask;
use crate::index::training::TrainParams;
use crate::index::Index;

/// Vectors after which an untrained index trains itself, unless configured otherwise.
pub const DEFAULT_THRESHOLD: usize = 10_000;
/// Untrained indexes larger than this warn (once) that queries scan everything.
pub const UNTRAINED_WARNING_AT: usize = 50_000;

impl Index {
    /// Turns auto-training on with `threshold` vectors (`None` or 0 turns it off).
    pub fn set_auto_train(&self, threshold: Option<usize>) {
        self.auto_train_slot().store(threshold.unwrap_or(0), Ordering::Release);
    }

    /// The auto-training threshold, if auto-training is on.
    pub fn auto_train(&self) -> Option<usize> {
        Some(self.auto_train_slot().load(Ordering::Acquire)).filter(|&t| t > 0)
    }

    /// Starts a background training run (default parameters, automatic nLists) if one is
    /// due and none is running; returns whether it started. The run reserves the training
    /// slot, so a `train()` call meanwhile gets `ERR_TRAINING_IN_PROGRESS`; it never blocks
    /// readers or writers (see `training`). A failed background run leaves the index as it was.
    pub fn maybe_auto_train(self: &Arc<Self>) -> bool {
        let Some(threshold) = self.auto_train() else { return false };
        let n = self.len_hint();
        let due = if self.is_trained() { n > self.n_lists().saturating_mul(threshold) } else { n >= threshold };
        if !due || self.reserve_training().is_err() {
            return false;
        }
        let index = Arc::clone(self);
        let spawned = std::thread::Builder::new().name("ciphervec-autotrain".into()).spawn(move || {
            crate::priority::lower_current_thread();
            if let Err(e) = index.train_reserved(&TrainParams::default(), &AtomicBool::new(false), &|_| {}) {
                index.record_background_failure(BackgroundTask::Training, e);
            }
        });
        if spawned.is_err() {
            self.training_flag().store(false, Ordering::Release);
            return false;
        }
        true
    }

    /// True once per index: when it holds more than [`UNTRAINED_WARNING_AT`] vectors, is not
    /// trained and not training, so the caller should warn that queries scan everything.
    pub fn take_untrained_warning(&self) -> bool {
        !self.is_trained()
            && !self.is_training()
            && self.len_hint() > UNTRAINED_WARNING_AT
            && !self.warned_untrained_slot().swap(true, Ordering::AcqRel)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::store::memory::MemoryStorage;
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

    fn wait_trained(index: &Index) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while index.is_training() || !index.is_trained() {
            assert!(Instant::now() < deadline, "auto-training did not finish");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn trains_at_the_threshold_and_retrains_past_n_lists_times_it() {
        let client = Client::new(Arc::new(MemoryStorage::new()), 2).unwrap();
        let index = client.create_index("a", &[1; 32], None, Metric::Euclidean).unwrap();
        index.set_auto_train(Some(100));
        index.upsert(items(0, 99)).unwrap();
        assert!(!index.maybe_auto_train(), "99 < threshold");
        index.upsert(items(99, 1)).unwrap();
        assert!(index.maybe_auto_train());
        wait_trained(&index);
        assert_eq!(index.n_lists(), 2, "auto nLists for 100 vectors");
        assert!(!index.maybe_auto_train(), "not yet past nLists × threshold");
        index.upsert(items(100, 101)).unwrap();
        assert!(index.maybe_auto_train(), "201 > 2 × 100");
        wait_trained(&index);
        while index.is_training() {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(index.n_lists(), 4);
        assert_eq!(index.count().unwrap(), 201);
    }

    #[test]
    fn disabled_auto_training_never_starts_and_warning_is_given_once() {
        let client = Client::new(Arc::new(MemoryStorage::new()), 2).unwrap();
        let index = client.create_index("b", &[2; 32], None, Metric::Euclidean).unwrap();
        index.set_auto_train(None);
        index.upsert(items(0, UNTRAINED_WARNING_AT + 1)).unwrap();
        assert!(!index.maybe_auto_train());
        assert!(!index.is_training());
        assert!(index.take_untrained_warning());
        assert!(!index.take_untrained_warning());
    }
}
