//! Reads the glove-style `.fbin` files the profiling examples take (shared through `#[path]`, as
//! Cargo builds every file directly under `examples/` as an example of its own).

/// The rows, the columns and the row-major values of an `.fbin` file: two little-endian `i32`
/// (rows, columns), then rows × columns little-endian `f32`. Panics with the path on a read
/// error, as the examples have nothing better to do with one.
pub fn read_fbin(path: &str) -> (usize, usize, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let rows = i32::from_le_bytes(bytes[0..4].try_into().unwrap()) as usize;
    let cols = i32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize;
    let data =
        bytes[8..8 + rows * cols * 4].chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    (rows, cols, data)
}
