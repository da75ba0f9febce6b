//! How the addon's allocator returns freed memory to the OS.

use std::os::raw::c_long;

/// mimalloc's `mi_option_purge_delay`: its position in `mi_option_t`, 15 in both the v2 and the
/// v3 headers (libmimalloc-sys exports no constant for it).
const PURGE_DELAY_OPTION: libmimalloc_sys::mi_option_t = 15;
/// The option's built-in defaults: 1,000 ms in the mimalloc v3 that libmimalloc-sys bundles
/// (its header still says 10), 10 ms in v2. Finding one of them there is the check that index
/// 15 is the option we mean; if a future mimalloc renumbers its options, nothing is changed.
const BUILT_IN_PURGE_DELAYS_MS: [c_long; 2] = [1000, 10];
/// Freed pages go back to the OS 10 ms after they fall free instead of after a second.
/// Training frees a phase's buffers and the next phase allocates fresh ones right after; with
/// a second's delay both were resident at once, and training's resident peak was 1.5–2.7× the
/// vectors against a live heap of 1.3×; with 10 ms it is 1.25×, also with both cores busy
/// (BENCHMARKS.md, "Purging freed memory after 10 ms").
const PURGE_DELAY_MS: c_long = 10;

/// Sets mimalloc's purge delay when the addon is loaded, before any of our work, unless the
/// user chose one through `MIMALLOC_PURGE_DELAY`.
#[napi_derive::module_init]
fn set_purge_delay() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() || std::env::var_os("MIMALLOC_RESET_DELAY").is_some() {
        return;
    }
    // SAFETY: mi_option_get/set only read and write mimalloc's option table; they may be called
    // at any time, from any thread.
    unsafe {
        if BUILT_IN_PURGE_DELAYS_MS.contains(&libmimalloc_sys::mi_option_get(PURGE_DELAY_OPTION)) {
            libmimalloc_sys::mi_option_set(PURGE_DELAY_OPTION, PURGE_DELAY_MS);
        }
    }
}

/// Asks the allocator to give the memory it holds free back to the OS now. mimalloc returns
/// (purges) freed pages lazily, during later allocations; after `client.close()` freed every
/// working set, or after a load dropped the copy of the vectors that training's lists replaced,
/// nothing may allocate for a long time, and the process would keep the freed memory
/// resident (after closing a loaded index, as much as with it open).
pub fn give_back() {
    // SAFETY: mi_collect is thread-safe and only returns free memory.
    unsafe { libmimalloc_sys::mi_collect(true) }
}
