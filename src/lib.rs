//! Node.js bindings for ciphervec. Only argument conversion, async plumbing and error
//! mapping live here; every operation is implemented in `ciphervec-core`.

/// Rust-side allocations (working set, metadata, load buffers) use mimalloc: `loadIndex`
/// ran about 2× faster than with glibc's malloc (BENCHMARKS.md). Node's own malloc is not
/// replaced; memory crosses to JS only as values napi copies or frees through Rust.
/// mimalloc is built without its request for transparent huge pages (`no_thp`): on kernels in
/// THP `madvise` mode those made the slack of its arenas resident and made the JS thread's
/// first writes into fresh memory fault in 2 MiB at a time (BENCHMARKS.md, "Huge pages off").
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod abort;
mod client;
mod convert;
mod errors;
mod helpers;
mod index;
mod input;
mod iterate;
mod memory;
mod names;
mod options;
mod output;
mod pool;
mod staged;
mod task;
mod types;
