//! ciphervec-core: an embedded, encrypted vector index in pure Rust.
//!
//! Everything handed to a [`storage::Storage`] is ciphertext (see [`crypto`]); plaintext lives
//! only in the in-process working set ([`items`]). The Node addon is a thin layer over
//! [`client::Client`] and [`index::Index`].

pub mod auto_train;
pub mod background;
pub mod client;
pub mod compaction;
pub mod crypto;
pub mod disk_storage;
pub mod error;
#[cfg(test)]
mod faulty_backend;
pub mod filter;
pub mod ids;
pub mod index;
pub mod items;
pub mod ivf;
pub mod kernels;
pub mod kmeans;
mod ledger;
mod load;
pub mod manifest;
pub mod memory_storage;
pub mod metadata;
pub mod metadata_order;
pub mod metric;
pub mod priority;
pub mod record;
pub mod record_set;
pub mod search;
pub mod segment;
pub mod state;
pub mod storage;
pub mod topk;
pub mod training;

pub use client::Client;
pub use error::{Error, Result};
pub use index::{Include, Index, ItemView, NewItem, Search};
pub use metric::Metric;
pub use record::Contents;
pub use training::{TrainParams, TrainReport};
