//! Returning freed memory to the OS after calls that free much of it at once.

/// Asks the allocator to give the memory it holds free back to the OS now. mimalloc returns
/// (purges) freed pages lazily, during later allocations; after `client.close()` freed every
/// working set, or after a load dropped the copy of the vectors that training's lists replaced,
/// nothing may allocate for a long time, and the process would keep the freed memory
/// resident (after closing a loaded index, as much as with it open).
pub fn give_back() {
    // SAFETY: mi_collect is thread-safe and only returns free memory.
    unsafe { libmimalloc_sys::mi_collect(true) }
}
