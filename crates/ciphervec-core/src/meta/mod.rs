//! Metadata: the binary encoding, ordering, filters.

pub mod filter;
pub mod order;
pub mod value;
