//! Results → JS values, prepared as compact columns on a worker and built into objects on the
//! JS thread a slice per macrotask (see `staged`): built in one piece, one N-API call per
//! property, the results of a large query batch held the JS thread for a long time
//! (BENCHMARKS.md, "Event-loop blocking per input form").

use ciphervec_core::{Contents, Include, ItemView};
use napi::bindgen_prelude::{Buffer, Float32Array, Float64Array, JsObjectValue, Null, Object, Uint32Array, Unknown};
use napi::{Env, JsValue};

use crate::helpers::{self, js};
use crate::staged::{self, Pump, StepResult};

/// Result items per slice (~2-4 ms to build).
const ITEMS_PER_SLICE: usize = 8192;
/// Vector values per slice: each vector becomes a Float32Array of its own (~1 µs each).
const VECTOR_VALUES_PER_SLICE: usize = 1 << 17;
/// Bare ids per slice (listIds, queryMetadata).
const IDS_PER_SLICE: usize = 65_536;

/// Result items as columns: JSON text per slice for what is text, one typed array for what
/// is numeric.
pub struct Items {
    n: usize,
    /// Items per slice.
    per_slice: usize,
    ids: Vec<String>,
    distances: Option<Vec<f64>>,
    /// Hybrid and full-text scores.
    scores: Option<Vec<f64>>,
    metadata: Option<Vec<String>>,
    texts: Option<Vec<String>>,
    /// Byte contents per slice, by position.
    bytes: Vec<Vec<(usize, Vec<u8>)>>,
    vectors: Option<Vec<f32>>,
    dim: usize,
    /// For queryBatch: where each query's list ends.
    list_ends: Option<Vec<u32>>,
}

impl Items {
    /// The columns of `views` (on a worker); `include` says which fields they carry.
    pub fn of(views: &[ItemView], include: Include) -> Items {
        let n = views.len();
        let dim = views.iter().find_map(|v| v.vector.as_ref().map(Vec::len)).unwrap_or(0);
        let per_slice = if include.vector {
            (VECTOR_VALUES_PER_SLICE / dim.max(1)).clamp(64, ITEMS_PER_SLICE)
        } else {
            ITEMS_PER_SLICE
        };
        let slices = || views.chunks(per_slice);
        let ids = slices().map(|s| json(&s.iter().map(|v| v.id.as_str()).collect::<Vec<_>>())).collect();
        let metadata = include
            .metadata
            .then(|| slices().map(|s| json(&s.iter().map(|v| v.metadata.as_ref()).collect::<Vec<_>>())).collect());
        fn text(v: &ItemView) -> Option<&str> {
            match v.contents.as_deref() {
                Some(Contents::Text(t)) => Some(t.as_str()),
                _ => None,
            }
        }
        let texts = include.contents.then(|| slices().map(|s| json(&s.iter().map(text).collect::<Vec<_>>())).collect());
        let bytes = slices()
            .enumerate()
            .map(|(k, s)| {
                s.iter()
                    .enumerate()
                    .filter_map(|(i, v)| match v.contents.as_deref() {
                        Some(Contents::Bytes(b)) if include.contents => Some((k * per_slice + i, b.clone())),
                        _ => None,
                    })
                    .collect()
            })
            .collect();
        let vectors = include.vector.then(|| views.iter().flat_map(|v| v.vector.iter().flatten().copied()).collect());
        Items {
            n,
            per_slice,
            ids,
            distances: include.distance.then(|| views.iter().map(|v| v.distance.map_or(0.0, f64::from)).collect()),
            scores: None,
            metadata,
            texts,
            bytes,
            vectors,
            dim,
            list_ends: None,
        }
    }

    /// The columns of scored results (a hybrid query, a full-text search): `scores[i]` is
    /// the score of `views[i]`.
    pub fn scored(views: &[ItemView], scores: Vec<f64>, include: Include) -> Items {
        let mut items = Items::of(views, include);
        items.scores = Some(scores);
        items
    }

    /// [`Items::of_lists`] of scored results (a hybrid query batch).
    pub fn scored_lists(lists: Vec<Vec<(ItemView, f64)>>, include: Include) -> Items {
        let scores = lists.iter().flatten().map(|(_, s)| *s).collect();
        let views = lists.into_iter().map(|l| l.into_iter().map(|(v, _)| v).collect()).collect();
        let mut items = Items::of_lists(views, include);
        items.scores = Some(scores);
        items
    }

    /// The columns of one result list per query, built into one array of arrays (or, by
    /// [`Items::into_js_columns`], into one object of columns).
    pub fn of_lists(lists: Vec<Vec<ItemView>>, include: Include) -> Items {
        let mut end = 0u32;
        let ends = lists
            .iter()
            .map(|l| {
                end += l.len() as u32;
                end
            })
            .collect();
        let flat: Vec<ItemView> = lists.into_iter().flatten().collect();
        let mut items = Items::of(&flat, include);
        items.list_ends = Some(ends);
        items
    }

    /// Builds the JS array (or a promise of it, if it takes more than one slice).
    pub fn into_js(self, env: &Env) -> napi::Result<Unknown<'_>> {
        let into = env.create_array(0)?;
        staged::run(env, ItemsPump { items: self, next: 0 }, &[into.to_unknown()])
    }

    /// Builds a `QueryColumns` object of the lists (or a promise of it): the text columns a
    /// slice per macrotask as [`Items::into_js`] does, the numbers as one typed array each.
    pub fn into_js_columns(self, env: &Env) -> napi::Result<Unknown<'_>> {
        let into =
            helpers::call(env, "newColumns", &[js(env, self.metadata.is_some())?, js(env, self.texts.is_some())?])?;
        staged::run(env, ColumnsPump { items: self, next: 0 }, &[into])
    }
}

/// One slice's text columns as the object the JS helpers read (`buildItems`, `appendColumns`).
fn slice_object<'env>(env: &'env Env, items: &mut Items, slice: usize) -> napi::Result<Object<'env>> {
    let mut c = Object::new(env)?;
    c.set_named_property("ids", std::mem::take(&mut items.ids[slice]))?;
    let text = |v: &mut Option<Vec<String>>| v.as_mut().map(|s| std::mem::take(&mut s[slice]));
    c.set_named_property("metadata", text(&mut items.metadata))?;
    c.set_named_property("texts", text(&mut items.texts))?;
    let bytes = std::mem::take(&mut items.bytes[slice]);
    if bytes.is_empty() {
        c.set_named_property("bytes", Null)?;
    } else {
        let mut pairs = env.create_array(0)?;
        for (at, b) in bytes {
            pairs.insert(at as f64)?;
            pairs.insert(Buffer::from(b))?;
        }
        c.set_named_property("bytes", pairs)?;
    }
    Ok(c)
}

struct ColumnsPump {
    items: Items,
    next: usize,
}

impl Pump for ColumnsPump {
    fn step<'env>(&mut self, env: &'env Env, args: &[Unknown<'env>]) -> StepResult<'env> {
        let items = &mut self.items;
        let (start, end) = (self.next, items.n.min(self.next + items.per_slice));
        if start < end {
            let c = slice_object(env, items, start / items.per_slice)?;
            helpers::call(
                env,
                "appendColumns",
                &[c.raw(), js(env, start as f64)?, js(env, end as f64)?, args[0].raw()],
            )?;
            self.next = end;
            if self.next < items.n {
                return Ok(None);
            }
        }
        // The numbers: one typed array each for the whole batch, handed to JS without a copy
        // (4 or 8 bytes a result; vectors 4 × dimension). V8 then accounts them at once, which
        // is what a caller asking for one array of every vector asks for.
        let mut offsets = Vec::with_capacity(items.list_ends.as_ref().map_or(0, Vec::len) + 1);
        offsets.push(0);
        offsets.extend(items.list_ends.take().unwrap_or_default());
        let distances = match &items.distances {
            Some(d) => js(env, Float32Array::new(d.iter().map(|&x| x as f32).collect()))?,
            None => js(env, Null)?,
        };
        let scores = match items.scores.take() {
            Some(s) => js(env, Float64Array::new(s))?,
            None => js(env, Null)?,
        };
        let vectors = match items.vectors.take() {
            Some(v) => js(env, Float32Array::new(v))?,
            None => js(env, Null)?,
        };
        let offsets = js(env, Uint32Array::new(offsets))?;
        Ok(Some(helpers::call(env, "finishColumns", &[args[0].raw(), offsets, distances, scores, vectors])?))
    }
}

fn json<T: serde::Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).expect("results serialise")
}

struct ItemsPump {
    items: Items,
    next: usize,
}

impl Pump for ItemsPump {
    fn step<'env>(&mut self, env: &'env Env, args: &[Unknown<'env>]) -> StepResult<'env> {
        let items = &mut self.items;
        let (start, end) = (self.next, items.n.min(self.next + items.per_slice));
        if start < end {
            let slice = start / items.per_slice;
            let mut c = slice_object(env, items, slice)?;
            // This slice's numbers only, copied into JS memory: one external buffer of every
            // vector made V8 account tens of MB at once and collect the caller's whole heap.
            match &items.distances {
                Some(d) => c.set_named_property("distances", Float64Array::from(&d[start..end]))?,
                None => c.set_named_property("distances", Null)?,
            }
            match &items.scores {
                Some(d) => c.set_named_property("scores", Float64Array::from(&d[start..end]))?,
                None => c.set_named_property("scores", Null)?,
            }
            match &items.vectors {
                Some(v) => {
                    c.set_named_property("vectors", Float32Array::from(&v[start * items.dim..end * items.dim]))?
                }
                None => c.set_named_property("vectors", Null)?,
            }
            c.set_named_property("dim", items.dim as f64)?;
            helpers::call(env, "buildItems", &[c.raw(), js(env, start as f64)?, js(env, end as f64)?, args[0].raw()])?;
            self.next = end;
            if self.next < items.n {
                return Ok(None);
            }
        }
        match items.list_ends.take() {
            Some(ends) => Ok(Some(helpers::call(env, "split", &[args[0].raw(), js(env, Uint32Array::new(ends))?])?)),
            None => Ok(Some(args[0])),
        }
    }
}

/// Ids as JSON slices (listIds, queryMetadata), built into an array of strings or of `{ id }`.
pub struct Ids {
    slices: Vec<String>,
    as_objects: bool,
}

impl Ids {
    /// On a worker.
    pub fn of(ids: &[String], as_objects: bool) -> Ids {
        let slices = ids.chunks(IDS_PER_SLICE).map(|s| serde_json::to_string(s).expect("ids serialise")).collect();
        Ids { slices, as_objects }
    }

    pub fn into_js(self, env: &Env) -> napi::Result<Unknown<'_>> {
        let into = env.create_array(0)?;
        staged::run(env, IdsPump { ids: self, next: 0 }, &[into.to_unknown()])
    }
}

struct IdsPump {
    ids: Ids,
    next: usize,
}

impl Pump for IdsPump {
    fn step<'env>(&mut self, env: &'env Env, args: &[Unknown<'env>]) -> StepResult<'env> {
        if let Some(slice) = self.ids.slices.get_mut(self.next) {
            let text = js(env, std::mem::take(slice))?;
            helpers::call(env, "appendParsed", &[text, args[0].raw(), js(env, self.ids.as_objects)?])?;
            self.next += 1;
        }
        Ok((self.next >= self.ids.slices.len()).then_some(args[0]))
    }
}
