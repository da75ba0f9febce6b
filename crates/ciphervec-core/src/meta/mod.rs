//! Item metadata: the binary JSON encoding the working set holds and records store ([`Meta`],
//! read through [`MetaRef`] views), ordering by a field (`order`), and Mongo-style filters
//! ([`Filter`]: parsed and validated once, evaluated per candidate), and the in-memory
//! metadata index that narrows a filter's candidates (`postings`).

pub(crate) mod filter;
pub(crate) mod order;
pub(crate) mod postings;
pub(crate) mod text;
mod thin;
mod value;

pub use filter::{Filter, FilterError};
pub use text::{TextSpec, CONTENTS_FIELD, MAX_QUERY_TEXT, MAX_TEXT_FIELDS};
pub use value::{ArrayRef, Meta, MetaRef, ObjectRef};
