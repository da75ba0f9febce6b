//! Limits and defaults of the public operations, and the checks that apply them: every call
//! is validated here, before it reads or writes anything, so bad input changes nothing.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::index::write::NewItem;
use crate::vector::{IndexType, Metric};

/// `topK` when a query does not say.
pub const DEFAULT_TOP_K: usize = 100;
/// Largest accepted `topK`.
pub const MAX_TOP_K: usize = 10_000;
/// Largest accepted id, in UTF-8 bytes.
pub const MAX_ID_BYTES: usize = 1024;
/// Largest accepted dimension.
pub const MAX_DIMENSION: usize = 65_536;
/// Deepest accepted metadata nesting (an object of scalars is 1 level). Filters can address
/// at most 32 levels; the rest is room for stored structure.
pub const MAX_METADATA_DEPTH: usize = 64;

pub(crate) fn check_dimension(d: usize) -> Result<()> {
    if d == 0 || d > MAX_DIMENSION {
        return Err(Error::invalid(format!("dimension must be between 1 and {MAX_DIMENSION}, got {d}")));
    }
    Ok(())
}

/// Whether `index_type`'s codes fit `dim` dimensions (0: not fixed yet): product
/// quantization needs 1 ≤ sub-vectors ≤ dimension (any split of the dimension is fine).
/// The message of the error, if not.
pub(crate) fn index_type_problem(index_type: IndexType, dim: usize) -> Option<String> {
    let IndexType::IvfPq(shape) = index_type else { return None };
    match shape.sub_vectors {
        Some(0) => Some("pqDim must be at least 1 (bytes per code)".into()),
        Some(m) if dim > 0 && m as usize > dim => Some(format!(
            "pqDim {m} is more sub-vectors than the {dim} dimensions: choose at most {dim} (any value up to it \
             works, it need not divide the dimension)"
        )),
        _ => None,
    }
}

pub(crate) fn check_n_probes(n: Option<usize>) -> Result<()> {
    if n == Some(0) {
        return Err(Error::invalid("nProbes must be at least 1"));
    }
    Ok(())
}

/// The largest re-rank factor a query takes: beyond it a coded index re-scores more
/// candidates than a flat scan of the probed lists would.
pub const MAX_RERANK: usize = 1000;

pub(crate) fn check_rerank(r: Option<usize>) -> Result<()> {
    match r {
        Some(r) if r == 0 || r > MAX_RERANK => {
            Err(Error::invalid(format!("rerank must be between 1 and {MAX_RERANK}, got {r}")))
        }
        _ => Ok(()),
    }
}

pub(crate) fn check_top_k(k: usize) -> Result<()> {
    if k == 0 || k > MAX_TOP_K {
        return Err(Error::invalid(format!("topK must be between 1 and {MAX_TOP_K}, got {k}")));
    }
    Ok(())
}

pub(crate) fn check_ids<'a>(ids: impl Iterator<Item = &'a str>) -> Result<()> {
    for (i, id) in ids.enumerate() {
        if id.is_empty() {
            return Err(Error::invalid(format!("id at position {i} is empty: ids must be non-empty strings")));
        }
        if id.len() > MAX_ID_BYTES {
            return Err(Error::invalid(format!(
                "id at position {i} is {} bytes long; the limit is {MAX_ID_BYTES}",
                id.len()
            )));
        }
    }
    Ok(())
}

/// A vector the metric can score (see [`Metric::check`]) within [`MAX_DIMENSION`]; `what`
/// names it in the error (built only on failure).
pub(crate) fn check_vector(v: &[f32], metric: Metric, what: impl FnOnce() -> String) -> Result<()> {
    if v.len() > MAX_DIMENSION {
        return Err(Error::InvalidVector(format!("{} has {} values; the limit is {MAX_DIMENSION}", what(), v.len())));
    }
    metric.check(v).map_err(|problem| Error::InvalidVector(format!("{} {problem}", what())))
}

/// A query vector for an index of dimension `dim` (0: not fixed yet) named `index`.
pub(crate) fn check_query(v: &[f32], metric: Metric, dim: usize, index: &str, what: impl Fn() -> String) -> Result<()> {
    check_vector(v, metric, &what)?;
    if dim > 0 && v.len() != dim {
        return Err(Error::DimensionMismatch(format!(
            "{} has dimension {}, but index '{index}' has dimension {dim}",
            what(),
            v.len()
        )));
    }
    Ok(())
}

/// Validates every item before anything is written and keeps the last occurrence of each id.
pub(crate) fn check_batch(batch: Vec<NewItem>, metric: Metric) -> Result<Vec<NewItem>> {
    check_ids(batch.iter().map(|it| it.id.as_str()))?;
    let dim = batch.first().map_or(0, |it| it.vector.len());
    for (i, it) in batch.iter().enumerate() {
        check_vector(&it.vector, metric, || format!("the vector of item '{}'", it.id))?;
        if it.vector.len() != dim {
            return Err(Error::DimensionMismatch(format!(
                "item {i} ('{}') has dimension {} but item 0 has {dim}: all vectors in a batch need one dimension",
                it.id,
                it.vector.len()
            )));
        }
        if let Some(m) = &it.metadata {
            if !m.is_object() {
                return Err(Error::invalid(format!("metadata of item '{}' must be a JSON object", it.id)));
            }
            if m.depth() > MAX_METADATA_DEPTH {
                return Err(Error::invalid(format!(
                    "metadata of item '{}' is nested {} levels deep; the limit is {MAX_METADATA_DEPTH}",
                    it.id,
                    m.depth()
                )));
            }
        }
    }
    let mut last: HashMap<&str, usize> = HashMap::with_capacity(batch.len());
    for (i, it) in batch.iter().enumerate() {
        last.insert(it.id.as_str(), i);
    }
    if last.len() == batch.len() {
        return Ok(batch);
    }
    let keep: Vec<bool> = (0..batch.len()).map(|i| last[batch[i].id.as_str()] == i).collect();
    Ok(batch.into_iter().zip(keep).filter_map(|(it, k)| k.then_some(it)).collect())
}

/// Most paths `unindexed` may list.
pub(crate) const MAX_UNINDEXED: usize = 64;

/// `unindexedFields`: dot paths, none empty, at most [`MAX_UNINDEXED`].
pub(crate) fn check_unindexed(paths: &[String]) -> Result<()> {
    if paths.len() > MAX_UNINDEXED {
        return Err(Error::invalid(format!("unindexedFields lists {} paths, at most {MAX_UNINDEXED}", paths.len())));
    }
    for p in paths {
        if p.is_empty() || p.len() > 256 || p.split('.').any(str::is_empty) {
            return Err(Error::invalid(format!("unindexedFields: '{p}' is not a field name or dot path")));
        }
    }
    Ok(())
}
