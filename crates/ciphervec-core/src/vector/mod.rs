//! Vectors: metrics, kernels, top-k, k-means, exhaustive and IVF search.

pub mod exhaustive;
pub mod ivf;
pub mod kernels;
pub mod kmeans;
pub mod metric;
pub mod topk;
