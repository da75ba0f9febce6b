//! Conversions between JS values and core types. Everything that reads JS memory runs here,
//! on the JS thread, and copies: a `Float32Array` may be mutated by JS once we return.

use ciphervec_core::{Contents, Error, Include, ItemView, NewItem, Result};
use napi::bindgen_prelude::{Buffer, Either, Float32Array, Uint8Array};
use serde_json::{Map, Value};

use crate::types::{GetResultItem, IncludeField, QueryResultItem, UpsertOptions, VectorItem};

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

fn item(it: &VectorItem) -> NewItem {
    NewItem {
        id: it.id.clone(),
        vector: vector(&it.vector),
        metadata: it.metadata.clone().map(Value::Object),
        contents: it.contents.as_ref().map(contents),
    }
}

/// Either form of `upsert` → core items. `dim` is the index dimension (0 if not yet fixed).
pub fn upsert_items(o: &UpsertOptions, dim: usize) -> Result<Vec<NewItem>> {
    match (&o.items, &o.ids) {
        (Some(items), None) if o.vectors.is_none() && o.metadata.is_none() && o.contents.is_none() => {
            Ok(items.iter().map(item).collect())
        }
        (None, Some(ids)) => {
            let vectors = o.vectors.as_ref().ok_or_else(|| {
                Error::InvalidArgument("upsert with `ids` also needs `vectors` of the same length".into())
            })?;
            let n = ids.len();
            let dim = match vectors {
                Either::A(flat) if n > 0 => flat.len() / n,
                _ => dim,
            };
            let vectors = if n == 0 { Vec::new() } else { rows(vectors, dim, "upsert vectors")? };
            check_len("vectors", vectors.len(), n)?;
            let metadata: Vec<Option<Map<String, Value>>> = o.metadata.clone().unwrap_or_else(|| vec![None; n]);
            check_len("metadata", metadata.len(), n)?;
            let contents_col = o.contents.as_deref();
            if let Some(c) = contents_col {
                check_len("contents", c.len(), n)?;
            }
            Ok(ids
                .iter()
                .zip(vectors)
                .zip(metadata)
                .enumerate()
                .map(|(i, ((id, vector), meta))| NewItem {
                    id: id.clone(),
                    vector,
                    metadata: meta.map(Value::Object),
                    contents: contents_col.and_then(|c| c[i].as_ref()).map(contents),
                })
                .collect())
        }
        _ => Err(Error::InvalidArgument(
            "upsert takes either { items } or { ids, vectors, metadata?, contents? }, not both or neither".into(),
        )),
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
        metadata: v.metadata.and_then(|m| m.as_object().cloned()),
        contents: v.contents.as_deref().map(js_contents),
        vector: v.vector.map(Float32Array::new),
    }
}

pub fn get_item(v: ItemView) -> GetResultItem {
    GetResultItem {
        id: v.id,
        metadata: v.metadata.and_then(|m| m.as_object().cloned()),
        contents: v.contents.as_deref().map(js_contents),
        vector: v.vector.map(Float32Array::new),
    }
}
