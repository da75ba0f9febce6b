//! Everything about bytes at rest.

pub mod manifest;
pub mod record;
pub mod segment;
pub mod summary;
