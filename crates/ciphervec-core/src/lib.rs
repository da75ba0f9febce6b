//! ciphervec-core: an embedded, encrypted vector index in pure Rust.
//!
//! A [`Client`] owns a storage backend ([`Storage`]: [`MemoryStorage`], [`DiskStorage`])
//! and a worker pool, and creates or loads [`Index`]es, each under its own 32-byte key.
//! Everything handed to the storage is ciphertext: ids, names, vectors, metadata, contents,
//! centroids and lists are sealed with AES-256-GCM under keys derived from the index key,
//! and plaintext lives only in each index's in-memory working set. See `ARCHITECTURE.md`
//! for how the parts fit together.

#![deny(missing_docs)]
#![warn(unreachable_pub)]

mod client;
mod crypto;
mod error;
mod format;
mod index;
mod meta;
pub mod priority;
mod store;
mod vector;

pub use client::{BackupStats, Client, MAX_NAME_BYTES, MAX_THREADS};
pub use crypto::random_key;
pub use error::{Error, Result};
pub use format::record::Contents;
pub use index::{
    AutoTrain, BackgroundFailure, BackgroundTask, Fusion, Include, Index, IndexSpec, IndexStats, ItemView, ListSizes,
    MemoryUsage, MetadataPage, NewItem, Search, TextHit, TextQuery, TrainAlgorithm, TrainParams, TrainReport,
    TrainingProgress, UpsertReport, AUTO_COMPACT_MIN, DEFAULT_THRESHOLD, DEFAULT_TOP_K, HYBRID_CANDIDATES,
    MAX_DIMENSION, MAX_ID_BYTES, MAX_ITERS, MAX_METADATA_DEPTH, MAX_N_LISTS, MAX_RERANK, MAX_TOP_K,
};
pub use meta::{
    ArrayRef, Filter, FilterError, Meta, MetaRef, ObjectRef, TextSpec, CONTENTS_FIELD, MAX_QUERY_TEXT, MAX_TEXT_FIELDS,
};
pub use store::{
    Change, Claim, DiskStorage, EntryBatch, LogEntry, LogKind, MemoryStorage, Sharing, Snapshot, Storage, Wake,
    WriteTxn,
};
#[cfg(feature = "postgres")]
pub use store::{PostgresOptions, PostgresStorage};
pub use vector::{IndexType, Metric, PqShape, Resident, MAX_NORM_SQR, MIN_COSINE_NORM_SQR};

/// Internals that the crate's own integration tests and examples inspect: storage names,
/// raw sealing. Not part of the API.
#[cfg(any(test, feature = "test-util"))]
#[doc(hidden)]
pub mod test_util {
    /// The storage key of the segment directory.
    pub const DIRECTORY_KEY: &[u8] = crate::format::keys::DIRECTORY_KEY;
    /// Bytes a sealed blob adds to its plaintext.
    pub const SEAL_OVERHEAD: usize = crate::crypto::SEAL_OVERHEAD;

    pub use crate::store::SharedMemoryStorage;

    /// The terms the full-text analyzer makes of `text` (for reference implementations).
    pub fn text_terms(text: &str) -> Vec<String> {
        crate::meta::text::analyzer::terms(text)
    }

    /// Runs the checks every [`Storage`](crate::Storage) backend must pass on `store` (which
    /// must be empty).
    pub fn storage_conformance(store: &dyn crate::Storage) {
        crate::store::conformance::run(store)
    }

    /// Runs the checks every [`Sharing`](crate::Sharing) backend must pass on `store`.
    pub fn sharing_conformance<S: crate::Storage + 'static>(store: &std::sync::Arc<S>) {
        crate::store::conformance::run_sharing(store)
    }

    /// The space index `name` is stored under with `key`.
    pub fn storage_name(key: &[u8; 32], name: &str) -> String {
        crate::crypto::IndexKey::from_slice(key).expect("32 bytes").storage_name(name)
    }

    /// The space of an index created before names were keyed.
    pub fn legacy_storage_name(name: &str) -> String {
        crate::crypto::legacy_storage_name(name)
    }

    /// Whether a query with `filter` and `n_probes` scores the metadata index's candidates
    /// exactly (rather than scanning lists with the filter as an accept test).
    pub fn scans_filter_candidates(index: &crate::Index, filter: &crate::Filter, n_probes: Option<usize>) -> bool {
        index.scans_filter_candidates(filter, n_probes)
    }

    /// The metadata index's candidates for `filter` over items `docs` (item i = position i),
    /// and whether they are exact; `None` when the filter has no plan.
    pub fn filter_candidates(docs: &[Option<crate::Meta>], filter: &crate::Filter) -> Option<(Vec<u32>, bool)> {
        let mut postings = crate::meta::postings::Postings::default();
        for (i, d) in docs.iter().enumerate() {
            postings.insert(i as u32, d.as_ref());
        }
        let planned = postings.restrict(filter.plan()?)?;
        Some((postings.candidates(&planned.plan).iter().collect(), planned.exact))
    }

    /// Whether a trained index's codes are of residuals from its lists' centroids (`None`:
    /// untrained, or a type without codes).
    pub fn codes_of_residuals(index: &crate::Index) -> Option<bool> {
        index.codes_of_residuals()
    }

    /// Values sealed under the index's current data key (its nonce budget spent).
    pub fn seals_under_data_key(index: &crate::Index) -> u64 {
        index.vault().seals()
    }

    /// AES-256-GCM sealing as the index does it (for timing it alone).
    pub struct Sealer(crate::crypto::Sealer);

    impl Sealer {
        /// A sealer under `key`.
        pub fn new(key: &[u8; 32]) -> Sealer {
            Sealer(crate::crypto::Sealer::new(key))
        }

        /// `plaintext` sealed with associated data `aad`.
        pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
            self.0.seal(aad, plaintext)
        }

        /// Opens what [`Sealer::seal`] sealed, in place.
        pub fn open_in_place<'b>(&self, aad: &[u8], blob: &'b mut [u8]) -> Option<&'b mut [u8]> {
            self.0.open_in_place(aad, blob).ok()
        }
    }
}
