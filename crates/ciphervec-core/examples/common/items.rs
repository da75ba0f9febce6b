//! The items the profiling examples index (shared through `#[path]`, like `fbin.rs`).

use ciphervec_core::NewItem;

/// One item per row of the row-major `data` (`dim` columns): its row number as the id, no
/// metadata or contents, so a profile measures the vectors' path alone.
pub fn vector_items(data: &[f32], dim: usize) -> Vec<NewItem> {
    data.chunks_exact(dim)
        .enumerate()
        .map(|(i, v)| NewItem { id: i.to_string(), vector: v.to_vec(), metadata: None, contents: None })
        .collect()
}
