//! ciphervec-core: an embedded, encrypted vector index in pure Rust.

pub mod client;
pub mod crypto;
pub mod error;
pub mod format;
pub mod index;
pub mod meta;
pub mod priority;
pub mod store;
pub mod vector;

pub use client::Client;
pub use error::{Error, Result};
pub use format::record::Contents;
pub use index::training::{TrainParams, TrainReport};
pub use index::{Include, Index, ItemView, NewItem, Search};
pub use vector::metric::Metric;
