//! An owned byte string behind one thin pointer: its length is the first four bytes of its
//! allocation. The working set keeps one metadata value per item, so the column of them costs
//! 8 bytes a slot instead of a `Box<[u8]>`'s 16 (with or without metadata: `Option` takes the
//! pointer's niche). The crates for thin slices keep a larger header in every allocation
//! (thin-vec: length and capacity, 16 bytes; slice-dst: an 8-byte length) where this needs 4.

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::ptr::NonNull;

/// Bytes of the length prefix.
const HEADER: usize = size_of::<u32>();

/// Bytes, owned (see the module docs).
pub(crate) struct ThinBytes(NonNull<u8>);

// SAFETY: a `ThinBytes` owns its allocation alone and never writes it after `new`, like a
// `Box<[u8]>`.
unsafe impl Send for ThinBytes {}
// SAFETY: as above: shared access only reads.
unsafe impl Sync for ThinBytes {}

/// The allocation for `len` bytes (alignment 1: the prefix is read as bytes).
fn layout(len: usize) -> Layout {
    Layout::from_size_align(HEADER + len, 1).expect("a size below isize::MAX")
}

impl ThinBytes {
    /// A copy of `bytes` (at most `u32::MAX` of them).
    pub(crate) fn new(bytes: &[u8]) -> ThinBytes {
        let len = u32::try_from(bytes.len()).expect("metadata is under 4 GiB");
        let layout = layout(bytes.len());
        // SAFETY: the layout's size is at least HEADER, so not zero.
        let Some(ptr) = NonNull::new(unsafe { alloc(layout) }) else { handle_alloc_error(layout) };
        // SAFETY: the allocation holds HEADER + len bytes, at alignment 1 (what `[u8; 4]`
        // needs); `bytes` is another allocation.
        unsafe {
            ptr.as_ptr().cast::<[u8; HEADER]>().write(len.to_ne_bytes());
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), ptr.as_ptr().add(HEADER), bytes.len());
        }
        ThinBytes(ptr)
    }

    fn len(&self) -> usize {
        // SAFETY: `new` wrote the prefix, and nothing writes it after.
        u32::from_ne_bytes(unsafe { self.0.as_ptr().cast::<[u8; HEADER]>().read() }) as usize
    }

    /// Bytes of the allocation.
    pub(crate) fn heap_bytes(&self) -> usize {
        HEADER + self.len()
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        // SAFETY: `new` initialised `len` bytes after the prefix; they live as long as `self`.
        unsafe { std::slice::from_raw_parts(self.0.as_ptr().add(HEADER), self.len()) }
    }
}

impl Drop for ThinBytes {
    fn drop(&mut self) {
        // SAFETY: allocated by `new` with this layout (its length is the prefix), freed once.
        unsafe { dealloc(self.0.as_ptr(), layout(self.len())) }
    }
}

impl Clone for ThinBytes {
    fn clone(&self) -> ThinBytes {
        ThinBytes::new(self.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_its_bytes_behind_eight_bytes_with_or_without_a_value() {
        assert_eq!(size_of::<ThinBytes>(), 8);
        assert_eq!(size_of::<Option<ThinBytes>>(), 8);
        for len in [0, 1, 3, 4, 5, 255, 256, 70_000] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let thin = ThinBytes::new(&bytes);
            assert_eq!(thin.as_bytes(), &bytes[..]);
            assert_eq!(thin.heap_bytes(), 4 + len);
            let copy = thin.clone();
            drop(thin);
            assert_eq!(copy.as_bytes(), &bytes[..]);
        }
    }

    #[test]
    fn moves_between_threads() {
        let thin = ThinBytes::new(b"shared");
        let seen = std::thread::scope(|s| s.spawn(|| thin.as_bytes().to_vec()).join().unwrap());
        assert_eq!(seen, b"shared");
        let moved = std::thread::spawn(move || thin.as_bytes().len()).join().unwrap();
        assert_eq!(moved, 6);
    }
}
