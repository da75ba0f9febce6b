//! Node.js bindings for ciphervec. Only argument conversion, async plumbing and error
//! mapping live here; every operation is implemented in `ciphervec-core`.

mod client;
mod convert;
mod errors;
mod index;
mod task;
mod types;
