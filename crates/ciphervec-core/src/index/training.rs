//! `Index::train`: k-means on a sample, off-lock, then one atomic swap to IVF lists.
//!
//! 1. Snapshot a random sample of vectors under a brief read lock.
//! 2. Run k-means on the pool with no lock held: queries, upserts and deletes go on, served
//!    by the previous lists (or exhaustively).
//! 3. Under the writer lock (writes wait, reads go on): assign every current item (k-means
//!    hands back its sample's assignment when it kept bounds; an item whose vector is still
//!    its sampled row keeps it, the rest are assigned here), re-seal
//!    each record with its new list id into packed segments, and write centroids + segments
//!    in one atomic batch.
//!    Then swap the new lists in under a short write lock. Items written during step 2 are
//!    assigned in step 3, so nothing is left out.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::index::background::Background;
use crate::index::compaction::Packed;
use crate::index::state::{placement, FullVectors};
use crate::index::Index;
use crate::vector::codes::Codec;
use crate::vector::ivf::{auto_n_lists, Ivf};
use crate::vector::kmeans::{self, KMeansError, KMeansParams, SplitMix64, POINTS_PER_CENTROID};

pub use crate::vector::kmeans::Algorithm as TrainAlgorithm;
use crate::vector::{ListId, Metric, Slot};

pub use crate::vector::kmeans::Progress as TrainingProgress;

/// Largest accepted `nLists`.
pub const MAX_N_LISTS: usize = 1 << 16;
/// Largest accepted `maxIters`.
pub const MAX_ITERS: usize = 10_000;

/// Options of a training run; the defaults are k-means' (see `vector::kmeans`).
#[derive(Debug, Clone)]
pub struct TrainParams {
    /// Lists (k-means centroids); default: the largest power of two ≤ 4·√n, at most n/39.
    pub n_lists: Option<usize>,
    /// Which k-means runs; default [`TrainAlgorithm::Lloyd`].
    pub algorithm: TrainAlgorithm,
    /// Mini-batch: vectors per step. Lloyd: vectors per assignment block. Default 2048.
    pub batch_size: usize,
    /// Lloyd: iterations (default 10). Mini-batch: passes over the training sample (default 4,
    /// then one Lloyd iteration).
    pub max_iters: Option<usize>,
    /// Stop when the relative inertia change falls below it; default 1e-6.
    pub tolerance: f64,
    /// Megabytes the trainer may use for its sample (0 = no limit).
    pub max_memory_mb: usize,
    /// Seed for sampling and initialisation; same seed, same data → same centroids.
    pub seed: u64,
}

impl Default for TrainParams {
    fn default() -> Self {
        TrainParams {
            n_lists: None,
            algorithm: TrainAlgorithm::default(),
            batch_size: kmeans::DEFAULT_BATCH_SIZE,
            max_iters: None,
            tolerance: kmeans::DEFAULT_TOLERANCE,
            max_memory_mb: 0,
            seed: kmeans::DEFAULT_SEED,
        }
    }
}

/// What a finished training run did.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainReport {
    /// Lists built.
    pub n_lists: usize,
    /// k-means iterations run: Lloyd iterations, or mini-batch passes + the finishing Lloyd
    /// iteration.
    pub iterations: usize,
    /// Final inertia of the training sample.
    pub inertia: f64,
    /// Vectors the centroids were trained on.
    pub trained_on: usize,
    /// Training vectors assigned against all centroids, seeding aside: the work k-means did
    /// (Lloyd: iterations × sample; mini-batch: about (passes + 1) × sample).
    pub assigned: usize,
    /// Point–centroid distances k-means computed for those assignments, seeding aside: Lloyd
    /// iterations after the first skip the centroids their bounds rule out.
    pub distances: u64,
    /// Items assigned to the final centroids after k-means: every item, unless k-means's
    /// bounded iterations already assigned its sample to them (see `KMeansResult::assignment`);
    /// then only the items outside the sample or written during training.
    pub assigned_after: usize,
    /// Wall-clock seconds, including assigning and re-sealing every item.
    pub seconds: f64,
}

/// Resets the index's training flag (and gives up its claim across processes) however the
/// run ends.
struct TrainingGuard<'a>(&'a Background);

impl Drop for TrainingGuard<'_> {
    fn drop(&mut self) {
        self.0.training_claim.lock().unwrap_or_else(|p| p.into_inner()).take();
        self.0.training.store(false, Ordering::Release);
    }
}

impl Index {
    /// Trains IVF lists with k-means. `cancel` aborts (→ `ERR_ABORTED`, state unchanged);
    /// `on_progress` is called once per Lloyd iteration or mini-batch pass.
    pub fn train(
        &self,
        params: &TrainParams,
        cancel: &AtomicBool,
        on_progress: &(dyn Fn(&TrainingProgress) + Sync),
    ) -> Result<TrainReport> {
        self.reserve_training()?;
        self.train_reserved(params, cancel, on_progress)
    }

    /// Marks the index as training (`is_training()` turns true at once), or fails with
    /// `ERR_TRAINING_IN_PROGRESS`. Callers that start the run on another thread reserve first
    /// and then call [`Index::train_reserved`], which releases the reservation.
    pub fn reserve_training(&self) -> Result<()> {
        self.check_open()?;
        if self.background.training.swap(true, Ordering::AcqRel) {
            return Err(Error::TrainingInProgress(format!(
                "index '{}' is already training: wait for it (see isTraining()) or abort it",
                self.name()
            )));
        }
        Ok(())
    }

    /// In a shared store, claims the index's training across processes (held until the run
    /// ends), or fails with `ERR_TRAINING_IN_PROGRESS`. Part of the run, not of
    /// [`Index::reserve_training`], which the addon calls on the JS thread.
    fn claim_training(&self) -> Result<()> {
        let Some(sharing) = self.shared.store.sharing() else { return Ok(()) };
        let Some(claim) = sharing.try_claim(&self.storage_name, "training")? else {
            return Err(Error::TrainingInProgress(format!(
                "index '{}' is already training in another process: wait for it to finish",
                self.name()
            )));
        };
        *self.background.training_claim.lock().unwrap_or_else(|p| p.into_inner()) = Some(claim);
        Ok(())
    }

    /// [`Index::train`] after a successful [`Index::reserve_training`].
    pub fn train_reserved(
        &self,
        params: &TrainParams,
        cancel: &AtomicBool,
        on_progress: &(dyn Fn(&TrainingProgress) + Sync),
    ) -> Result<TrainReport> {
        let _guard = TrainingGuard(&self.background);
        self.check_open()?;
        validate(params)?;
        self.claim_training()?;
        let started = Instant::now();

        let Sample { slots, rows: sample, dim, n_lists } = self.snapshot_sample(params)?;
        let kparams = KMeansParams {
            n_lists,
            algorithm: params.algorithm,
            max_iters: params.max_iters.unwrap_or(params.algorithm.default_max_iters()),
            tolerance: params.tolerance,
            batch_size: params.batch_size,
            max_points_per_centroid: POINTS_PER_CENTROID,
            max_memory_bytes: params.max_memory_mb << 20,
            seed: params.seed,
        };
        let stop = || cancel.load(Ordering::Acquire);
        let result =
            self.pool().install(|| kmeans::train(&sample, dim, &kparams, &stop, on_progress)).map_err(|e| match e {
                KMeansError::Aborted => {
                    Error::Aborted(format!("training of index '{}' was aborted; the index is unchanged", self.name()))
                }
                KMeansError::InsufficientPoints { needed, have } => insufficient(needed, have),
                KMeansError::InvalidArgument(m) => Error::InvalidArgument(m),
            })?;
        if stop() {
            return Err(Error::Aborted(format!(
                "training of index '{}' was aborted; the index is unchanged",
                self.name()
            )));
        }
        // The sample stays only as long as it saves the assignment of its rows.
        let known = match result.assignment {
            Some(lists) => Some(Assigned { slots, rows: sample, lists }),
            None => {
                drop((slots, sample));
                None
            }
        };
        let assigned_after = self.install_centroids(result.centroids, known, params.seed, cancel)?;
        self.reclaim_space();
        Ok(TrainReport {
            n_lists,
            iterations: result.iterations,
            inertia: result.inertia,
            trained_on: result.trained_on,
            assigned: result.assigned,
            distances: result.distances,
            assigned_after,
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// Copies a random training sample (placement vectors) under a brief read lock.
    fn snapshot_sample(&self, params: &TrainParams) -> Result<Sample> {
        let state = self.read_state()?;
        let items = &state.items;
        let (n, dim) = (items.len(), items.dim());
        let n_lists = params.n_lists.unwrap_or_else(|| auto_n_lists(n));
        if n < 2 * n_lists || n == 0 {
            return Err(insufficient(2 * n_lists.max(1), n));
        }
        let cap = (n_lists * POINTS_PER_CENTROID).min(n);
        let slots = kmeans::pick_distinct(n, cap, &mut SplitMix64(params.seed ^ 0x9e37_79b9));
        let metric = self.metric();
        let mut sample = vec![0f32; slots.len() * dim];
        self.pool().install(|| {
            sample.par_chunks_mut(dim).zip(&slots).for_each(|(out, &s)| {
                // A codes-only index samples the vectors its codes decode to.
                out.copy_from_slice(&placement(metric, &state.vector_or_decoded(Slot::at(s))));
            })
        });
        Ok(Sample { slots, rows: sample, dim, n_lists })
    }

    /// Step 3: assign everything to the new centroids, persist, swap.
    fn install_centroids(
        &self,
        centroids: Vec<f32>,
        known: Option<Assigned>,
        seed: u64,
        cancel: &AtomicBool,
    ) -> Result<usize> {
        let mut lock = self.lock_writer()?;
        let state = self.read_state()?;
        let dim = state.items.dim();
        let n = state.items.len();
        // Read back from the store if only codes are in memory: every record is re-sealed.
        let vectors = self.full_vectors(&state)?;
        let (lists, assigned) = match known {
            Some(known) => self.assign_unknown(&vectors, n, dim, &centroids, known),
            None => (self.assign_all(&vectors, n, dim, &centroids), n),
        };
        if cancel.load(Ordering::Acquire) {
            return Err(Error::Aborted(format!(
                "training of index '{}' was aborted; the index is unchanged",
                self.name()
            )));
        }
        // The writer lock keeps the working set fixed from here to the swap, so lists built
        // under this read guard still match it when installed. Every record changes (its list
        // id is sealed inside it), so training writes them all packed (see `compaction`).
        // The code book is trained on every vector (one pass), so its ranges cover them all.
        let centroid_of = |s: usize| &centroids[lists[s].index() * dim..(lists[s].index() + 1) * dim];
        let codec = self
            .pool()
            .install(|| Codec::train(self.index_type, dim, n, &|s| vectors.get(Slot::at(s)), &centroid_of, seed));
        let Packed { changes, ledger, vault, counts } =
            self.pack(&state, &vectors, |slot| Some(lists[slot.index()]), Some((&centroids, codec.as_ref())))?;
        // Written before the lists are built, so the sealed batch is gone (the store consumes
        // it) before the lists' allocation is made: the two are each about the vectors' size.
        self.write_packed(&mut lock, changes)?;
        let mut ivf = Ivf::new(dim, centroids, codec, self.resident());
        state.fill_ivf(&mut ivf, &vectors, &lists, self.pool());
        drop(vectors);
        drop(state);
        let mut state = self.write_state()?;
        state.swap_ivf(ivf, &lists);
        self.install_packed(ledger, vault, &counts, &mut state)?;
        Ok(assigned)
    }

    /// Every item's list: the nearest of `centroids` to its placement vector.
    fn assign_all(&self, vectors: &FullVectors<'_>, n: usize, dim: usize, centroids: &[f32]) -> Vec<ListId> {
        let metric = self.metric();
        let placed: std::borrow::Cow<[f32]> = if metric == Metric::Cosine {
            let mut v = vec![0f32; n * dim];
            self.pool().install(|| {
                v.par_chunks_mut(dim)
                    .enumerate()
                    .for_each(|(s, out)| out.copy_from_slice(&placement(metric, vectors.get(Slot::at(s)))))
            });
            v.into()
        } else {
            // Borrowed until the index is trained (no copy under the lock any more).
            vectors.in_slot_order(n, self.pool())
        };
        self.pool()
            .install(|| kmeans::assign(&placed, dim, centroids))
            .into_iter()
            .map(|(l, _)| ListId::new(l as usize))
            .collect()
    }

    /// [`Index::assign_all`] where k-means already assigned the sampled rows: a slot whose
    /// placement vector is still its sampled row (whatever was written meanwhile) keeps that
    /// assignment, the list being a function of the vector alone; only the other slots (written
    /// during training, or not sampled) are assigned here. Returns the lists and how many slots
    /// were assigned.
    fn assign_unknown(
        &self,
        vectors: &FullVectors<'_>,
        n: usize,
        dim: usize,
        centroids: &[f32],
        known: Assigned,
    ) -> (Vec<ListId>, usize) {
        let metric = self.metric();
        let mut lists: Vec<Option<ListId>> = vec![None; n];
        let matched: Vec<Option<(usize, ListId)>> = self.pool().install(|| {
            known
                .slots
                .par_iter()
                .zip(known.rows.par_chunks(dim))
                .zip(&known.lists)
                .map(|((&s, row), &list)| {
                    let same = s < n && *placement(metric, vectors.get(Slot::at(s))) == *row;
                    same.then(|| (s, ListId::new(list as usize)))
                })
                .collect()
        });
        drop(known);
        for (s, list) in matched.into_iter().flatten() {
            lists[s] = Some(list);
        }
        let unknown: Vec<usize> = (0..n).filter(|&s| lists[s].is_none()).collect();
        if !unknown.is_empty() {
            let mut rows = vec![0f32; unknown.len() * dim];
            self.pool().install(|| {
                rows.par_chunks_mut(dim)
                    .zip(&unknown)
                    .for_each(|(out, &s)| out.copy_from_slice(&placement(metric, vectors.get(Slot::at(s)))))
            });
            let assigned = self.pool().install(|| kmeans::assign(&rows, dim, centroids));
            for (&s, (l, _)) in unknown.iter().zip(assigned) {
                lists[s] = Some(ListId::new(l as usize));
            }
        }
        (lists.into_iter().map(|l| l.expect("every slot assigned")).collect(), unknown.len())
    }
}

/// A training sample: the slots drawn and their placement vectors (row-major), with the
/// dimension and the number of lists to train.
struct Sample {
    slots: Vec<usize>,
    rows: Vec<f32>,
    dim: usize,
    n_lists: usize,
}

/// Sampled rows k-means has already assigned to the final centroids
/// (`KMeansResult::assignment`): row `i` is slot `slots[i]`'s placement vector as sampled.
struct Assigned {
    slots: Vec<usize>,
    rows: Vec<f32>,
    lists: Vec<u32>,
}

fn insufficient(needed: usize, have: usize) -> Error {
    Error::InsufficientVectors(format!(
        "training needs at least {needed} vectors (2 × nLists) but the index holds {have}: upsert more or lower nLists"
    ))
}

fn validate(p: &TrainParams) -> Result<()> {
    let bad = |m: String| Err(Error::InvalidArgument(m));
    if let Some(k) = p.n_lists {
        if k == 0 || k > MAX_N_LISTS {
            return bad(format!("nLists must be between 1 and {MAX_N_LISTS}, got {k}"));
        }
    }
    if let Some(i) = p.max_iters.filter(|&i| i == 0 || i > MAX_ITERS) {
        return bad(format!("maxIters must be between 1 and {MAX_ITERS}, got {i}"));
    }
    if p.batch_size == 0 || p.batch_size > MAX_BATCH_SIZE {
        return bad(format!("batchSize must be between 1 and {MAX_BATCH_SIZE}, got {}", p.batch_size));
    }
    if !(p.tolerance.is_finite() && p.tolerance >= 0.0) {
        return bad(format!("tolerance must be a finite number >= 0, got {}", p.tolerance));
    }
    if p.max_memory_mb > MAX_MEMORY_MB {
        return bad(format!("maxMemory must be at most {MAX_MEMORY_MB} (MB), got {}", p.max_memory_mb));
    }
    if p.seed >= 1 << 53 {
        return bad(format!("seed must be below 2^53 (a whole number JavaScript holds exactly), got {}", p.seed));
    }
    Ok(())
}

/// Largest accepted `batchSize`.
const MAX_BATCH_SIZE: usize = 1 << 24;
/// Largest accepted `maxMemory`, in MB.
const MAX_MEMORY_MB: usize = 1 << 30;
