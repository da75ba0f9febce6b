//! Conversions between JS values and core types, on the JS thread, kept cheap because the
//! event loop waits for them. Small inputs are copied. A large flat `Float32Array` is not: it
//! moves to the worker with a reference that keeps it alive, so callers must not modify it
//! until the promise settles (the contract Node's `fs.write` has for its buffer).

use ciphervec_core::metadata::Meta;
use ciphervec_core::{Contents, Error, Include, ItemView, NewItem, Result};
use napi::bindgen_prelude::{Buffer, Either, Float32Array, Function, JsObjectValue, Object, Uint8Array, Unknown};
use napi::Env;
use serde_json::{Map, Value};

use crate::types::{AutoTrainOptions, GetResultItem, IncludeField, QueryResultItem, TrainOptions, UpsertOptions};

/// A JS number that must be a whole number in `min..=max` (napi's u32 conversion would
/// silently wrap -1 or truncate 1.5).
pub fn whole(x: Option<f64>, what: &str, default: usize, min: usize, max: usize) -> Result<usize> {
    let Some(x) = x else { return Ok(default) };
    if x.fract() != 0.0 || x < min as f64 || x > max as f64 {
        return Err(Error::InvalidArgument(format!("{what} must be a whole number between {min} and {max}, got {x}")));
    }
    Ok(x as usize)
}

pub fn vector(v: &Either<Float32Array, Vec<f64>>) -> Vec<f32> {
    match v {
        Either::A(f) => f.to_vec(),
        Either::B(n) => n.iter().map(|&x| x as f32).collect(),
    }
}

/// Rows of a flat `Float32Array` (of `rows × dim` values) or of an array of arrays.
pub fn rows(v: &Either<Float32Array, Vec<Vec<f64>>>, dim: usize, what: &str) -> Result<Vec<Vec<f32>>> {
    match v {
        Either::A(flat) => {
            if dim == 0 || flat.len() % dim != 0 {
                return Err(Error::InvalidArgument(format!(
                    "{what}: a flat Float32Array of {} values cannot be split into vectors of dimension {dim}",
                    flat.len()
                )));
            }
            Ok(flat.chunks_exact(dim).map(<[f32]>::to_vec).collect())
        }
        Either::B(arrays) => Ok(arrays.iter().map(|a| a.iter().map(|&x| x as f32).collect()).collect()),
    }
}

pub fn contents(c: &Either<String, Uint8Array>) -> Contents {
    match c {
        Either::A(s) => Contents::Text(s.clone()),
        Either::B(b) => Contents::Bytes(b.to_vec()),
    }
}

pub fn include(fields: Option<&[IncludeField]>, default: Include) -> Include {
    let Some(fields) = fields else { return default };
    let mut inc = Include::default();
    for f in fields {
        match f {
            IncludeField::Distance => inc.distance = true,
            IncludeField::Metadata => inc.metadata = true,
            IncludeField::Contents => inc.contents = true,
            IncludeField::Vector => inc.vector = true,
        }
    }
    inc
}

/// Serialises a JS value with V8's own `JSON.stringify`: one native call instead of one napi
/// call per property, which kept the JS thread busy for ~9 µs per metadata object.
fn stringify(env: &Env, value: Unknown) -> napi::Result<Option<String>> {
    let json: Object = env.get_global()?.get_named_property("JSON")?;
    let f: Function<Unknown, Option<String>> = json.get_named_property("stringify")?;
    f.call(value)
}

/// An upsert batch as copied off the JS thread; [`RawBatch::into_items`] finishes it on a
/// worker (JSON parsing, splitting vectors).
pub struct RawBatch {
    ids: RawIds,
    vectors: RawVectors,
    metadata: RawMetadata,
    /// `None`: no contents column given.
    contents: Option<Vec<Option<Contents>>>,
}

enum RawIds {
    Json(String),
    Owned(Vec<String>),
}

enum RawVectors {
    Flat(Float32Array),
    Rows(Vec<Vec<f32>>),
}

enum RawMetadata {
    None,
    /// One JSON array for the whole column.
    Column(String),
    /// One JSON object (or none) per item.
    PerItem(Vec<Option<String>>),
}

/// Either form of `upsert` → a [`RawBatch`]. Only cheap work happens here (on the JS thread).
pub fn upsert_batch(env: &Env, o: UpsertOptions) -> napi::Result<Result<RawBatch>> {
    let UpsertOptions { items, ids, vectors, metadata, contents } = o;
    match (items, ids) {
        (Some(items), None) if vectors.is_none() && metadata.is_none() && contents.is_none() => {
            let mut raw = RawBatch {
                ids: RawIds::Owned(Vec::with_capacity(items.len())),
                vectors: RawVectors::Rows(Vec::with_capacity(items.len())),
                metadata: RawMetadata::PerItem(Vec::with_capacity(items.len())),
                contents: Some(Vec::with_capacity(items.len())),
            };
            for it in items {
                if let (RawIds::Owned(ids), RawVectors::Rows(rows), RawMetadata::PerItem(meta)) =
                    (&mut raw.ids, &mut raw.vectors, &mut raw.metadata)
                {
                    ids.push(it.id);
                    rows.push(vector(&it.vector));
                    meta.push(match it.metadata {
                        Some(m) => stringify(env, m)?,
                        None => None,
                    });
                }
                if let Some(c) = raw.contents.as_mut() {
                    c.push(it.contents.as_ref().map(self::contents));
                }
            }
            Ok(Ok(raw))
        }
        (None, Some(ids)) => {
            let Some(vectors) = vectors else {
                return Ok(Err(Error::InvalidArgument(
                    "upsert with `ids` also needs `vectors` of the same length".into(),
                )));
            };
            let ids = stringify(env, ids)?.unwrap_or_default();
            let metadata = match metadata {
                Some(m) => stringify(env, m)?.map_or(RawMetadata::None, RawMetadata::Column),
                None => RawMetadata::None,
            };
            Ok(Ok(RawBatch {
                ids: RawIds::Json(ids),
                vectors: match vectors {
                    Either::A(flat) => RawVectors::Flat(flat),
                    Either::B(rows) => {
                        RawVectors::Rows(rows.iter().map(|r| r.iter().map(|&x| x as f32).collect()).collect())
                    }
                },
                metadata,
                contents: contents.map(|c| c.iter().map(|x| x.as_ref().map(self::contents)).collect()),
            }))
        }
        _ => Ok(Err(Error::InvalidArgument(
            "upsert takes either { items } or { ids, vectors, metadata?, contents? }, not both or neither".into(),
        ))),
    }
}

fn parse<T: serde::de::DeserializeOwned>(json: &str, what: &str) -> Result<T> {
    serde_json::from_str(json).map_err(|e| Error::InvalidArgument(format!("upsert {what}: {e}")))
}

impl RawBatch {
    /// Parses and splits the batch into items; `dim` is the index dimension (0 if unknown).
    pub fn into_items(self, dim: usize) -> Result<Vec<NewItem>> {
        let ids: Vec<String> = match self.ids {
            RawIds::Json(j) => parse(&j, "ids must be an array of strings")?,
            RawIds::Owned(ids) => ids,
        };
        let n = ids.len();
        let vectors = match self.vectors {
            RawVectors::Rows(rows) => rows,
            RawVectors::Flat(_) if n == 0 => Vec::new(),
            RawVectors::Flat(flat) => {
                let dim = if flat.len() % n == 0 { flat.len() / n } else { dim };
                if dim == 0 || flat.len() % dim != 0 {
                    return Err(Error::InvalidArgument(format!(
                        "upsert vectors: a flat Float32Array of {} values cannot be split into {n} vectors",
                        flat.len()
                    )));
                }
                flat.chunks_exact(dim).map(<[f32]>::to_vec).collect()
            }
        };
        check_len("vectors", vectors.len(), n)?;
        let metadata: Vec<Option<Meta>> = match self.metadata {
            RawMetadata::None => vec![None; n],
            RawMetadata::Column(j) => parse(&j, "metadata must be an array of objects or nulls")?,
            RawMetadata::PerItem(m) => {
                m.iter().map(|j| j.as_deref().map(|j| parse(j, "metadata")).transpose()).collect::<Result<_>>()?
            }
        };
        check_len("metadata", metadata.len(), n)?;
        let contents = self.contents.unwrap_or_else(|| vec![None; n]);
        check_len("contents", contents.len(), n)?;
        Ok(ids
            .into_iter()
            .zip(vectors)
            .zip(metadata)
            .zip(contents)
            .map(|(((id, vector), metadata), contents)| NewItem { id, vector, metadata, contents })
            .collect())
    }
}

fn check_len(what: &str, got: usize, ids: usize) -> Result<()> {
    if got != ids {
        return Err(Error::InvalidArgument(format!("upsert has {ids} ids but {got} {what}: the lengths must match")));
    }
    Ok(())
}

fn js_contents(c: &Contents) -> Either<String, Buffer> {
    match c {
        Contents::Text(s) => Either::A(s.clone()),
        Contents::Bytes(b) => Either::B(Buffer::from(b.clone())),
    }
}

pub fn query_item(v: ItemView) -> QueryResultItem {
    QueryResultItem {
        id: v.id,
        distance: v.distance.map(f64::from),
        metadata: v.metadata.as_ref().and_then(js_metadata),
        contents: v.contents.as_deref().map(js_contents),
        vector: v.vector.map(Float32Array::new),
    }
}

/// Metadata as napi converts it to a JS object (only objects are ever stored).
fn js_metadata(m: &Meta) -> Option<Map<String, Value>> {
    match m.to_json() {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

pub fn get_item(v: ItemView) -> GetResultItem {
    GetResultItem {
        id: v.id,
        metadata: v.metadata.as_ref().and_then(js_metadata),
        contents: v.contents.as_deref().map(js_contents),
        vector: v.vector.map(Float32Array::new),
    }
}

pub fn n_probes(x: Option<f64>) -> Result<Option<usize>> {
    x.map(|_| whole(x, "nProbes", 0, 1, u32::MAX as usize)).transpose()
}

/// `train` options → core parameters (defaults documented on `TrainOptions`).
pub fn train_params(o: &TrainOptions) -> Result<ciphervec_core::TrainParams> {
    use ciphervec_core::training::{MAX_ITERS, MAX_N_LISTS};
    let d = ciphervec_core::TrainParams::default();
    let tolerance = o.tolerance.unwrap_or(d.tolerance);
    if !(tolerance.is_finite() && tolerance >= 0.0) {
        return Err(Error::InvalidArgument(format!("tolerance must be a finite number >= 0, got {tolerance}")));
    }
    Ok(ciphervec_core::TrainParams {
        n_lists: o.n_lists.map(|_| whole(o.n_lists, "nLists", 0, 1, MAX_N_LISTS)).transpose()?,
        batch_size: whole(o.batch_size, "batchSize", d.batch_size, 1, 1 << 24)?,
        max_iters: whole(o.max_iters, "maxIters", d.max_iters, 1, MAX_ITERS)?,
        tolerance,
        max_memory_mb: whole(o.max_memory, "maxMemory", 0, 0, 1 << 30)?,
        seed: whole(o.seed, "seed", d.seed as usize, 0, (1usize << 53) - 1)? as u64,
    })
}

/// The auto-training threshold an `autoTrain` option asks for (`None` = off). Unset options
/// fall back to `CIPHERVEC_AUTO_TRAIN_DISABLED` / `CIPHERVEC_RETRAIN_THRESHOLD`.
pub fn auto_train(option: Option<&Either<bool, AutoTrainOptions>>) -> Result<Option<usize>> {
    use ciphervec_core::auto_train::DEFAULT_THRESHOLD;
    let env_threshold = match std::env::var("CIPHERVEC_RETRAIN_THRESHOLD") {
        Ok(v) => v.trim().parse::<usize>().ok().filter(|&t| t > 0).ok_or_else(|| {
            Error::InvalidArgument(format!("CIPHERVEC_RETRAIN_THRESHOLD must be a whole number >= 1, got '{v}'"))
        })?,
        Err(_) => DEFAULT_THRESHOLD,
    };
    let env_disabled = std::env::var("CIPHERVEC_AUTO_TRAIN_DISABLED")
        .map(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
        .unwrap_or(false);
    match option {
        None => Ok((!env_disabled).then_some(env_threshold)),
        Some(Either::A(false)) => Ok(None),
        Some(Either::A(true)) => Ok(Some(env_threshold)),
        Some(Either::B(o)) => Ok(Some(whole(o.threshold, "autoTrain.threshold", env_threshold, 1, usize::MAX >> 11)?)),
    }
}

/// A filter as JSON text, serialised on the JS thread (one native call).
pub fn filter_json(env: &Env, filter: Option<Unknown>) -> napi::Result<Option<String>> {
    match filter {
        Some(f) => stringify(env, f),
        None => Ok(None),
    }
}

/// Parses filter JSON (on a worker); a malformed filter is `ERR_INVALID_FILTER` naming the
/// path of the bad node.
pub fn parse_filter(json: Option<&str>) -> Result<Option<ciphervec_core::filter::Filter>> {
    let Some(json) = json else { return Ok(None) };
    let value: Value =
        serde_json::from_str(json).map_err(|e| Error::InvalidFilter(format!("filters are not valid JSON: {e}")))?;
    ciphervec_core::filter::Filter::parse(&value).map(Some).map_err(|e| Error::InvalidFilter(e.to_string()))
}
