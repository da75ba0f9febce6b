//! Call arguments → core inputs, on the JS thread in bounded slices (see `staged`).
//!
//! Every input is read exactly and safely:
//! - strings (ids, contents, names, paths) come across as written: one that is not
//!   well-formed UTF-16 (a lone surrogate, e.g. half of an emoji cut by truncating) is
//!   rejected with `ERR_INVALID_ARGUMENT`, where N-API's UTF-8 conversion would have turned
//!   it into U+FFFD and made two different ids one;
//! - vectors are copied into a Float32Array only this call holds, on the JS thread, a slice
//!   per macrotask. A caller's flat Float32Array is never read from a worker thread: one
//!   detached (transferred) while the call ran would have been freed under it (a crash);
//! - metadata and filters are JSON that means what it says: a value JSON would drop or change
//!   (undefined, a function, NaN, a BigInt, a Map) is refused, naming its path, where
//!   `{ tenant: undefined }` used to become `{}` and match every item.

use std::ptr;

use ciphervec_core::{Contents, Error, Meta, NewItem, Result};
use napi::bindgen_prelude::{FromNapiValue, JsObjectValue, Object, TypeName, Uint8Array, Unknown, ValidateNapiValue};
use napi::{sys, Env, JsValue, ValueType};
use serde::de::{DeserializeOwned, SeqAccess, Visitor};
use serde::Deserializer as _;

use crate::helpers::{self, check, js};
use crate::staged::{Failure, Pump, StepResult};

/// Items per slice when items carry metadata or contents (~2-4 ms of work).
const ITEMS_PER_SLICE: usize = 4096;
/// Ids per slice of a bare id column (get, delete).
const IDS_PER_SLICE: usize = 65_536;
/// Vector values read from JS arrays per slice (~4 ns each): the scratch array's size.
const ARRAY_VALUES_PER_SLICE: usize = helpers::SCRATCH_VALUES;
/// Vector values copied from a flat Float32Array per slice: a 4 MB memcpy, most of whose
/// ~1.5 ms is the kernel faulting in the fresh pages it writes.
const FLAT_VALUES_PER_SLICE: usize = 1 << 20;

// ---- small JS reads ----

fn type_of(v: &Unknown) -> napi::Result<ValueType> {
    v.get_type()
}

fn is_absent(v: &Unknown) -> napi::Result<bool> {
    Ok(matches!(type_of(v)?, ValueType::Undefined | ValueType::Null))
}

/// The length of `v` if it is an array.
fn array_len(v: &Unknown) -> napi::Result<Option<usize>> {
    if !v.is_array()? {
        return Ok(None);
    }
    let mut len = 0;
    check(unsafe { sys::napi_get_array_length(v.value().env, v.raw(), &mut len) })?;
    Ok(Some(len as usize))
}

/// The length of `v` if it is a Float32Array.
fn float32_len(v: &Unknown) -> napi::Result<Option<usize>> {
    if !v.is_typedarray()? {
        return Ok(None);
    }
    let (mut kind, mut len) = (0, 0);
    check(unsafe {
        sys::napi_get_typedarray_info(
            v.value().env,
            v.raw(),
            &mut kind,
            &mut len,
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
        )
    })?;
    Ok((kind == sys::TypedarrayType::float32_array).then_some(len))
}

fn undefined(env: &Env) -> napi::Result<Unknown<'_>> {
    let mut v = ptr::null_mut();
    check(unsafe { sys::napi_get_undefined(env.raw(), &mut v) })?;
    Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), v) })
}

/// Room for `values` vector values, or `ERR_INVALID_ARGUMENT` if there is no such memory.
fn vector_buffer(values: usize) -> Result<Vec<f32>> {
    let mut v = Vec::new();
    v.try_reserve_exact(values).map_err(|_| {
        Error::InvalidArgument(format!(
            "the call holds {values} vector values, more than this process can allocate: split it into smaller calls"
        ))
    })?;
    Ok(v)
}

/// A problem a helper reported (`{ index, kind, message, path, length }`), if `v` is one.
struct Problem {
    index: Option<usize>,
    kind: String,
    message: String,
    path: String,
    length: Option<usize>,
}

fn problem(v: &Unknown) -> napi::Result<Option<Problem>> {
    if type_of(v)? != ValueType::Object || v.is_typedarray()? {
        return Ok(None);
    }
    let object = unsafe { Object::from_napi_value(v.value().env, v.raw())? };
    if !object.has_named_property("message")? {
        return Ok(None);
    }
    let number = |name: &str| -> napi::Result<Option<usize>> {
        let x: Option<f64> = object.get_named_property(name)?;
        Ok(x.filter(|x| *x >= 0.0).map(|x| x as usize))
    };
    Ok(Some(Problem {
        index: number("index")?,
        kind: object.get_named_property::<Option<String>>("kind")?.unwrap_or_default(),
        message: object.get_named_property("message")?,
        path: object.get_named_property::<Option<String>>("path")?.unwrap_or_default(),
        length: number("length")?,
    }))
}

/// A helper's string result, or the problem it reported turned into an error by `fail`.
fn text_or(v: Unknown, fail: impl FnOnce(Problem) -> Error) -> std::result::Result<String, Failure> {
    if type_of(&v)? == ValueType::String {
        return Ok(unsafe { String::from_napi_value(v.value().env, v.raw())? });
    }
    match problem(&v)? {
        Some(p) => Err(fail(p).into()),
        None => Err(Error::Internal("a conversion helper returned an unexpected value".into()).into()),
    }
}

// ---- exact strings ----

/// A JS string read as UTF-16 and converted exactly; `Err` holds why it cannot be (a lone
/// surrogate), so the call can reject with `ERR_INVALID_ARGUMENT` instead of throwing.
pub struct ExactString(pub std::result::Result<String, String>);

impl ExactString {
    /// The string, or `ERR_INVALID_ARGUMENT` naming `what`.
    pub fn get(self, what: &str) -> Result<String> {
        self.0.map_err(|why| Error::InvalidArgument(format!("{what} {why}")))
    }
}

impl TypeName for ExactString {
    fn type_name() -> &'static str {
        "string"
    }
    fn value_type() -> ValueType {
        ValueType::String
    }
}

impl ValidateNapiValue for ExactString {}

impl FromNapiValue for ExactString {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> napi::Result<Self> {
        let mut len = 0;
        check(unsafe { sys::napi_get_value_string_utf16(env, value, ptr::null_mut(), 0, &mut len) })
            .map_err(|_| napi::Error::new(napi::Status::StringExpected, "expected a string".to_string()))?;
        let mut units = vec![0u16; len + 1];
        let mut written = 0;
        check(unsafe { sys::napi_get_value_string_utf16(env, value, units.as_mut_ptr(), len + 1, &mut written) })?;
        units.truncate(written);
        Ok(ExactString(String::from_utf16(&units).map_err(|_| NOT_WELL_FORMED.to_string())))
    }
}

/// Whether a serde_json error is about a `\u` escape of a lone surrogate: JSON.stringify
/// escapes those (and only those) as `\ud83d`, which serde_json refuses as "lone leading
/// surrogate in hex escape", or as "unexpected end of hex escape" when the string ends there.
fn is_lone_surrogate(why: &str) -> bool {
    why.contains("surrogate") || why.contains("hex escape")
}

const NOT_WELL_FORMED: &str = "is not well-formed UTF-16: it holds a lone surrogate (half of a character, as \
     truncating a string in the middle of an emoji leaves); pass the exact string";

// ---- JSON columns, parsed on a worker ----

/// Parses a JSON array of `T`, reporting a bad element by its position (`offset` + index in
/// this array) through `fail`.
fn parse_column<T: DeserializeOwned>(
    json: &str,
    offset: usize,
    fail: &dyn Fn(Option<usize>, String) -> Error,
) -> Result<Vec<T>> {
    struct Column<'a, T> {
        at: &'a std::cell::Cell<usize>,
        _t: std::marker::PhantomData<T>,
    }
    impl<'de, T: DeserializeOwned> Visitor<'de> for Column<'_, T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an array")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Vec<T>, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
            loop {
                self.at.set(out.len());
                match seq.next_element()? {
                    Some(v) => out.push(v),
                    None => return Ok(out),
                }
            }
        }
    }
    let at = std::cell::Cell::new(usize::MAX);
    let mut de = serde_json::Deserializer::from_str(json);
    let parsed = de.deserialize_seq(Column { at: &at, _t: std::marker::PhantomData }).and_then(|v| de.end().map(|_| v));
    parsed.map_err(|e| {
        let position = (at.get() != usize::MAX).then(|| offset + at.get());
        let mut why = e.to_string();
        // serde_json says where in the JSON text; the position in the call is what helps.
        if let Some(cut) = why.find(" at line ") {
            why.truncate(cut);
        }
        if is_lone_surrogate(&why) {
            why = NOT_WELL_FORMED.to_string();
        } else if why.contains("recursion limit") {
            why = format!("is nested too deeply (the limit is {} levels)", ciphervec_core::MAX_METADATA_DEPTH);
        }
        fail(position, why)
    })
}

fn parse_slices<T: DeserializeOwned>(
    slices: &[String],
    per_slice: usize,
    fail: &dyn Fn(Option<usize>, String) -> Error,
) -> Result<Vec<T>> {
    let mut out = Vec::new();
    for (i, json) in slices.iter().enumerate() {
        out.extend(parse_column(json, i * per_slice, fail)?);
    }
    Ok(out)
}

fn id_error(position: Option<usize>, why: String) -> Error {
    match position {
        Some(p) => Error::InvalidArgument(format!("the id at position {p} {}", id_why(&why))),
        None => Error::InvalidArgument(format!("ids must be an array of strings: {why}")),
    }
}

fn id_why(why: &str) -> String {
    if why.starts_with("invalid type") {
        format!("is not a string ({why})")
    } else {
        why.to_string()
    }
}

/// Ids of a get or delete, as JSON slices, parsed on a worker.
pub struct IdsInput {
    slices: Vec<String>,
}

impl IdsInput {
    pub fn into_ids(self) -> Result<Vec<String>> {
        parse_slices(&self.slices, IDS_PER_SLICE, &id_error)
    }
}

/// Reads an id array a slice per step, then calls `then` with the ids (on the JS thread).
pub struct IdsPump<F> {
    n: usize,
    next: usize,
    slices: Vec<String>,
    then: Option<F>,
}

/// The ids pump over `ids` (args: `[ids]`).
pub fn ids<F>(ids: &Unknown, then: F) -> std::result::Result<IdsPump<F>, Failure> {
    let n = array_len(ids)?.ok_or_else(|| Error::InvalidArgument("ids must be an array of strings".into()))?;
    Ok(IdsPump { n, next: 0, slices: Vec::new(), then: Some(then) })
}

impl<F> Pump for IdsPump<F>
where
    F: for<'env> FnOnce(&'env Env, IdsInput) -> napi::Result<Unknown<'env>> + 'static,
{
    fn step<'env>(&mut self, env: &'env Env, args: &[Unknown<'env>]) -> StepResult<'env> {
        if self.next < self.n || self.n == 0 {
            let end = self.n.min(self.next + IDS_PER_SLICE);
            let text =
                helpers::call(env, "jsonSlice", &[args[0].raw(), js(env, self.next as f64)?, js(env, end as f64)?])?;
            self.slices.push(text_or(text, |p| Error::InvalidArgument(format!("ids {}", p.message)))?);
            self.next = end;
        }
        if self.next < self.n {
            return Ok(None);
        }
        let then = self.then.take().expect("finished once");
        Ok(Some(then(env, IdsInput { slices: std::mem::take(&mut self.slices) })?))
    }
}

// ---- vectors ----

/// A single vector (query), copied.
pub fn vector(env: &Env, v: &Unknown, what: &str) -> Result<Vec<f32>, Failure> {
    let out = helpers::call(env, "vector", &[v.raw()])?;
    if let Some(values) = helpers::float32_values(env, out.raw())? {
        return Ok(values.to_vec());
    }
    let p = problem(&out)?.ok_or_else(|| Error::Internal("vector helper".into()))?;
    Err(Error::InvalidArgument(format!("{what} {}", p.message)).into())
}

/// How the vectors of a batch arrived.
#[derive(Clone, Copy)]
enum Vectors {
    /// An array of vectors (arrays of numbers or Float32Arrays).
    Rows,
    /// One flat Float32Array of `len` values.
    Flat { len: usize },
}

/// Reads the `vectors` argument: its form, the vector count (`rows` if the call says, else
/// what a flat array holds at the index's dimension `index_dim`) and the dimension.
fn vectors_shape(
    env: &Env,
    v: &Unknown,
    rows: Option<usize>,
    index_dim: usize,
    what: &str,
) -> std::result::Result<(Vectors, usize, usize), Failure> {
    let invalid = |m: String| -> Failure { Error::InvalidArgument(format!("{what}: {m}")).into() };
    if let Some(len) = float32_len(v)? {
        let form = Vectors::Flat { len };
        return match rows {
            Some(0) if len == 0 => Ok((form, 0, 1)),
            Some(0) => Err(invalid(format!("a flat Float32Array of {len} values, but no ids"))),
            Some(_) if len == 0 => Err(Error::InvalidVector(format!("{what} are empty")).into()),
            Some(n) if len % n != 0 => {
                Err(invalid(format!("a flat Float32Array of {len} values cannot be split into {n} vectors")))
            }
            Some(n) => Ok((form, n, len / n)),
            None if len == 0 => Ok((form, 0, index_dim.max(1))),
            None if index_dim == 0 => Err(invalid(format!(
                "the index has no dimension yet, so a flat Float32Array of {len} values cannot be split into \
                 vectors; pass one array per vector"
            ))),
            None if len % index_dim != 0 => Err(invalid(format!(
                "a flat Float32Array of {len} values cannot be split into vectors of dimension {index_dim}"
            ))),
            None => Ok((form, len / index_dim, index_dim)),
        };
    }
    let Some(n) = array_len(v)? else {
        return Err(invalid("must be a Float32Array of n × dimension values or an array of vectors".into()));
    };
    if n == 0 {
        return Ok((Vectors::Rows, 0, index_dim.max(1)));
    }
    let first = unsafe { Object::from_napi_value(env.raw(), v.raw())? }.get_element::<Unknown>(0)?;
    let dim = first_dim(env, helpers::call(env, "rowLength", &[first.raw()])?, what)?;
    Ok((Vectors::Rows, n, dim))
}

/// The dimension a batch takes from its first vector (a helper's `rowLength`): empty is
/// `ERR_INVALID_VECTOR`; a first "vector" that is none is reported by the copy, with its
/// position, so any dimension does here.
fn first_dim(env: &Env, length: Unknown, what: &str) -> std::result::Result<usize, Failure> {
    let length = unsafe { f64::from_napi_value(env.raw(), length.raw())? };
    if length == 0.0 {
        return Err(Error::InvalidVector(format!("{what}: the first vector is empty")).into());
    }
    Ok(if length < 0.0 { 1 } else { length as usize })
}

fn vector_problem(p: Problem, dim: usize, what: &str) -> Error {
    let at = p.index.map_or(String::new(), |i| format!(" at position {i}"));
    match p.kind.as_str() {
        "dimension" => Error::DimensionMismatch(format!(
            "{what}{at} has dimension {} but the first has {dim}: all vectors of a call need one dimension",
            p.length.unwrap_or(0)
        )),
        "detached" => Error::InvalidArgument(p.message),
        _ => Error::InvalidArgument(format!("{what}{at} {}", p.message)),
    }
}

/// Appends rows `start..end` of `src` (in form `form`) to `into`, copied on the JS thread.
fn copy_vectors(
    env: &Env,
    form: Vectors,
    src: &Unknown,
    (start, end, dim): (usize, usize, usize),
    into: &mut Vec<f32>,
    what: &str,
) -> std::result::Result<(), Failure> {
    match form {
        Vectors::Rows => {
            let scratch = helpers::scratch(env)?;
            let per_copy = (helpers::SCRATCH_VALUES / dim).max(1);
            for a in (start..end).step_by(per_copy) {
                let b = end.min(a + per_copy);
                let args = [src.raw(), js(env, a as f64)?, js(env, b as f64)?, js(env, dim as f64)?, scratch];
                let result = helpers::call(env, "copyRows", &args)?;
                if let Some(p) = problem(&result)? {
                    return Err(vector_problem(p, dim, what).into());
                }
                take_scratch(env, scratch, (b - a) * dim, into)?;
            }
        }
        Vectors::Flat { len } => match helpers::float32_values(env, src.raw())? {
            Some(values) if values.len() == len => into.extend_from_slice(&values[start * dim..end * dim]),
            values => {
                let how = if values.is_none_or(<[f32]>::is_empty) { "detached (transferred)" } else { "resized" };
                return Err(Error::InvalidArgument(format!(
                    "the vectors Float32Array was {how} while ciphervec was reading it; keep it unchanged until \
                     the promise settles"
                ))
                .into());
            }
        },
    }
    Ok(())
}

/// Appends the first `values` values of the scratch array to `into`.
fn take_scratch(env: &Env, scratch: sys::napi_value, values: usize, into: &mut Vec<f32>) -> napi::Result<()> {
    let all = helpers::float32_values(env, scratch)?.expect("the scratch array is a Float32Array");
    into.extend_from_slice(&all[..values]);
    Ok(())
}

fn rows_per_slice(form: Vectors, dim: usize, cap: usize) -> usize {
    let values = match form {
        Vectors::Rows => ARRAY_VALUES_PER_SLICE,
        Vectors::Flat { .. } => FLAT_VALUES_PER_SLICE,
    };
    (values / dim.max(1)).clamp(1, cap)
}

/// Query vectors of a queryBatch, copied a slice per step.
pub struct RowsInput {
    pub vectors: Vec<f32>,
    pub dim: usize,
    pub n: usize,
}

impl RowsInput {
    /// The vectors, one `Vec` each.
    pub fn rows(&self) -> Vec<Vec<f32>> {
        self.vectors[..self.n * self.dim].chunks_exact(self.dim.max(1)).map(<[f32]>::to_vec).collect()
    }
}

pub struct RowsPump<F> {
    form: Vectors,
    n: usize,
    dim: usize,
    next: usize,
    vectors: Vec<f32>,
    then: Option<F>,
}

/// The pump over query `vectors` for an index of dimension `index_dim` (0 if unknown). Its
/// args are `[vectors]`.
pub fn rows<F>(env: &Env, vectors: &Unknown, index_dim: usize, then: F) -> std::result::Result<RowsPump<F>, Failure> {
    let (form, n, dim) = vectors_shape(env, vectors, None, index_dim, "queryBatch vectors")?;
    Ok(RowsPump { form, n, dim, next: 0, vectors: vector_buffer(n * dim)?, then: Some(then) })
}

impl<F> Pump for RowsPump<F>
where
    F: for<'env> FnOnce(&'env Env, RowsInput) -> napi::Result<Unknown<'env>> + 'static,
{
    fn step<'env>(&mut self, env: &'env Env, args: &[Unknown<'env>]) -> StepResult<'env> {
        if self.next < self.n {
            let end = self.n.min(self.next + rows_per_slice(self.form, self.dim, usize::MAX));
            copy_vectors(env, self.form, &args[0], (self.next, end, self.dim), &mut self.vectors, "query vector")?;
            self.next = end;
            if self.next < self.n {
                return Ok(None);
            }
        }
        let vectors = std::mem::take(&mut self.vectors);
        let then = self.then.take().expect("finished once");
        Ok(Some(then(env, RowsInput { vectors, dim: self.dim, n: self.n })?))
    }
}

// ---- upsert ----

/// An upsert batch as read on the JS thread; [`Batch::into_items`] finishes it on a worker.
pub struct Batch {
    n: usize,
    dim: usize,
    per_slice: usize,
    ids: Vec<String>,
    vectors: Vec<f32>,
    metadata: Option<Vec<String>>,
    texts: Option<Vec<String>>,
    bytes: Vec<(usize, Vec<u8>)>,
}

impl Batch {
    /// The items, parsed and split.
    pub fn into_items(self) -> Result<Vec<NewItem>> {
        let Batch { n, dim, per_slice, ids, vectors, metadata, texts, bytes } = self;
        let ids: Vec<String> = parse_slices(&ids, per_slice, &id_error)?;
        let metadata: Vec<Option<Meta>> = match metadata {
            Some(slices) => parse_slices(&slices, per_slice, &|position, why| {
                Error::InvalidArgument(match position {
                    Some(p) => format!("the metadata of the item at position {p} {why}"),
                    None => format!("metadata: {why}"),
                })
            })?,
            None => vec![None; n],
        };
        let mut contents: Vec<Option<Contents>> = match texts {
            Some(slices) => parse_slices::<Option<String>>(&slices, per_slice, &|position, why| {
                Error::InvalidArgument(match position {
                    Some(p) => format!("the contents of the item at position {p} {why}"),
                    None => format!("contents: {why}"),
                })
            })?
            .into_iter()
            .map(|t| t.map(Contents::Text))
            .collect(),
            None => vec![None; n],
        };
        for (at, b) in bytes {
            contents[at] = Some(Contents::Bytes(b));
        }
        debug_assert!(ids.len() == n && metadata.len() == n && contents.len() == n);
        Ok(ids
            .into_iter()
            .zip(vectors[..n * dim].chunks_exact(dim.max(1)))
            .zip(metadata)
            .zip(contents)
            .map(|(((id, vector), metadata), contents)| NewItem { id, vector: vector.to_vec(), metadata, contents })
            .collect())
    }
}

/// Which upsert form the batch came in.
enum Form {
    Items,
    Columns { vectors: Vectors, metadata: bool, contents: bool },
}

/// Reads an upsert batch a slice per step; args are `[items or ids, vectors, metadata,
/// contents]` (absent ones `undefined`).
pub struct UpsertPump<F> {
    form: Form,
    n: usize,
    dim: usize,
    next: usize,
    per_slice: usize,
    vectors: Vec<f32>,
    ids: Vec<String>,
    metadata: Vec<String>,
    texts: Vec<String>,
    bytes: Vec<(usize, Vec<u8>)>,
    then: Option<F>,
}

/// The upsert arguments as JS values.
pub struct UpsertArgs<'env> {
    pub items: Option<Unknown<'env>>,
    pub ids: Option<Unknown<'env>>,
    pub vectors: Option<Unknown<'env>>,
    pub metadata: Option<Unknown<'env>>,
    pub contents: Option<Unknown<'env>>,
}

/// The pump for an upsert and the args to run it over.
pub fn upsert<'env, F>(
    env: &'env Env,
    a: UpsertArgs<'env>,
    then: F,
) -> std::result::Result<(UpsertPump<F>, Vec<Unknown<'env>>), Failure> {
    let absent = |v: &Option<Unknown>| -> napi::Result<bool> { v.as_ref().map_or(Ok(true), is_absent) };
    let both_or_neither = || {
        Error::InvalidArgument(
            "upsert takes either { items } or { ids, vectors, metadata?, contents? }, not both or neither".into(),
        )
    };
    let undefined = undefined(env)?;
    if !absent(&a.items)? {
        if !(absent(&a.ids)? && absent(&a.vectors)? && absent(&a.metadata)? && absent(&a.contents)?) {
            return Err(both_or_neither().into());
        }
        let items = a.items.unwrap();
        let n = array_len(&items)?
            .ok_or_else(|| Error::InvalidArgument("upsert items must be an array of { id, vector, ... }".into()))?;
        let dim = if n == 0 {
            1
        } else {
            first_dim(env, helpers::call(env, "firstItemLength", &[items.raw()])?, "upsert items")?
        };
        let pump = UpsertPump::new(Form::Items, n, dim, ITEMS_PER_SLICE, then)?;
        return Ok((pump, vec![items, undefined, undefined, undefined]));
    }
    let Some(ids) = a.ids.filter(|v| !matches!(is_absent(v), Ok(true))) else { return Err(both_or_neither().into()) };
    let n = array_len(&ids)?.ok_or_else(|| Error::InvalidArgument("upsert ids must be an array of strings".into()))?;
    let Some(vectors) = a.vectors.filter(|v| !matches!(is_absent(v), Ok(true))) else {
        return Err(Error::InvalidArgument("upsert with `ids` also needs `vectors` of the same length".into()).into());
    };
    let (form, rows, dim) = vectors_shape(env, &vectors, Some(n), 0, "upsert vectors")?;
    if let Vectors::Rows = form {
        check_len("vectors", rows, n)?;
    }
    let column = |v: Option<Unknown<'env>>, what: &str| -> std::result::Result<Option<Unknown<'env>>, Failure> {
        let Some(v) = v.filter(|v| !matches!(is_absent(v), Ok(true))) else { return Ok(None) };
        let len = array_len(&v)?.ok_or_else(|| Error::InvalidArgument(format!("upsert {what} must be an array")))?;
        check_len(what, len, n)?;
        Ok(Some(v))
    };
    let metadata = column(a.metadata, "metadata")?;
    let contents = column(a.contents, "contents")?;
    let per_slice = if metadata.is_some() || contents.is_some() { ITEMS_PER_SLICE } else { IDS_PER_SLICE };
    let per_slice = rows_per_slice(form, dim, per_slice);
    let form = Form::Columns { vectors: form, metadata: metadata.is_some(), contents: contents.is_some() };
    let pump = UpsertPump::new(form, n, dim, per_slice, then)?;
    Ok((pump, vec![ids, vectors, metadata.unwrap_or(undefined), contents.unwrap_or(undefined)]))
}

fn check_len(what: &str, got: usize, ids: usize) -> Result<()> {
    if got != ids {
        return Err(Error::InvalidArgument(format!("upsert has {ids} ids but {got} {what}: the lengths must match")));
    }
    Ok(())
}

impl<F> UpsertPump<F> {
    fn new(form: Form, n: usize, dim: usize, per_slice: usize, then: F) -> Result<Self> {
        let per_slice = match form {
            Form::Items => rows_per_slice(Vectors::Rows, dim, per_slice),
            Form::Columns { .. } => per_slice,
        };
        Ok(UpsertPump {
            form,
            n,
            dim,
            next: 0,
            per_slice,
            vectors: vector_buffer(n * dim)?,
            ids: Vec::new(),
            metadata: Vec::new(),
            texts: Vec::new(),
            bytes: Vec::new(),
            then: Some(then),
        })
    }

    /// Reads metadata and contents columns `start..end` (slice-local positions + `offset`).
    fn columns(
        &mut self,
        env: &Env,
        metadata: Option<&Unknown>,
        contents: Option<&Unknown>,
        (start, end, offset): (usize, usize, usize),
    ) -> std::result::Result<(), Failure> {
        let range = [js(env, start as f64)?, js(env, end as f64)?];
        if let Some(m) = metadata {
            let text = helpers::call(env, "strictJsonColumn", &[m.raw(), range[0], range[1]])?;
            self.metadata.push(text_or(text, |p| {
                let at = p.index.map_or(String::new(), |i| format!(" of the item at position {}", i - start + offset));
                let path = if p.path.is_empty() { String::new() } else { format!(" at '{}'", p.path) };
                Error::InvalidArgument(format!("the metadata{at}{path} {}", p.message))
            })?);
        }
        if let Some(c) = contents {
            let slice = helpers::call(env, "contentsSlice", &[c.raw(), range[0], range[1]])?;
            if let Some(p) = problem(&slice)? {
                let at = p.index.map_or(String::new(), |i| format!(" of the item at position {}", i - start + offset));
                return Err(Error::InvalidArgument(format!("the contents{at} {}", p.message)).into());
            }
            let texts: Unknown = crate::staged::property(&slice, "texts")?;
            self.texts.push(text_or(texts, |p| Error::InvalidArgument(format!("contents {}", p.message)))?);
            let bytes: Object = crate::staged::property(&slice, "bytes")?;
            let len = bytes.get_array_length()? as usize;
            for k in (0..len).step_by(2) {
                let at: f64 = bytes.get_element(k as u32)?;
                // Copied here, on the JS thread: the caller may change or transfer the array.
                let b: Uint8Array = bytes.get_element(k as u32 + 1)?;
                self.bytes.push((at as usize - start + offset, b.to_vec()));
            }
        }
        Ok(())
    }
}

impl<F> Pump for UpsertPump<F>
where
    F: for<'env> FnOnce(&'env Env, Batch) -> napi::Result<Unknown<'env>> + 'static,
{
    fn step<'env>(&mut self, env: &'env Env, args: &[Unknown<'env>]) -> StepResult<'env> {
        let (start, end) = (self.next, self.n.min(self.next + self.per_slice));
        if start < end || self.n == 0 {
            match self.form {
                Form::Items => {
                    let range = [js(env, start as f64)?, js(env, end as f64)?];
                    let scratch = helpers::scratch(env)?;
                    let slice = helpers::call(
                        env,
                        "itemsSlice",
                        &[args[0].raw(), range[0], range[1], js(env, self.dim as f64)?, scratch],
                    )?;
                    if let Some(p) = problem(&slice)? {
                        return Err(match p.kind.as_str() {
                            "item" => {
                                let at = p.index.map_or(String::new(), |i| format!(" at position {i}"));
                                Error::InvalidArgument(format!("the item{at} {}", p.message))
                            }
                            _ => vector_problem(p, self.dim, "the vector of the item"),
                        }
                        .into());
                    }
                    take_scratch(env, scratch, (end - start) * self.dim, &mut self.vectors)?;
                    let ids: Unknown = crate::staged::property(&slice, "ids")?;
                    let len = js(env, (end - start) as f64)?;
                    let zero = js(env, 0.0)?;
                    let text = helpers::call(env, "jsonSlice", &[ids.raw(), zero, len])?;
                    self.ids.push(text_or(text, |p| Error::InvalidArgument(format!("ids {}", p.message)))?);
                    let metadata: Unknown = crate::staged::property(&slice, "metadata")?;
                    let contents: Unknown = crate::staged::property(&slice, "contents")?;
                    self.columns(env, Some(&metadata), Some(&contents), (0, end - start, start))?;
                }
                Form::Columns { vectors, metadata, contents } => {
                    let range = [js(env, start as f64)?, js(env, end as f64)?];
                    let text = helpers::call(env, "jsonSlice", &[args[0].raw(), range[0], range[1]])?;
                    self.ids.push(text_or(text, |p| Error::InvalidArgument(format!("ids {}", p.message)))?);
                    let (m, c) = (metadata.then_some(&args[2]), contents.then_some(&args[3]));
                    self.columns(env, m, c, (start, end, start))?;
                    copy_vectors(env, vectors, &args[1], (start, end, self.dim), &mut self.vectors, "the vector")?;
                }
            }
            self.next = end;
            if self.next < self.n {
                return Ok(None);
            }
        }
        let has_columns = match self.form {
            Form::Items => (true, true),
            Form::Columns { metadata, contents, .. } => (metadata, contents),
        };
        let batch = Batch {
            n: self.n,
            dim: self.dim,
            per_slice: self.per_slice,
            ids: std::mem::take(&mut self.ids),
            vectors: std::mem::take(&mut self.vectors),
            metadata: has_columns.0.then(|| std::mem::take(&mut self.metadata)),
            texts: has_columns.1.then(|| std::mem::take(&mut self.texts)),
            bytes: std::mem::take(&mut self.bytes),
        };
        let then = self.then.take().expect("finished once");
        Ok(Some(then(env, batch)?))
    }
}

// ---- what follows the conversion ----
//
// A pump ends by handing what it read to a closure that starts the work (on the JS thread,
// with the env of its last slice). These identity functions pin the closures' signature,
// whose result borrows that env, which closure type inference cannot infer on its own.

pub fn upsert_then<F: for<'env> FnOnce(&'env Env, Batch) -> napi::Result<Unknown<'env>>>(f: F) -> F {
    f
}

pub fn ids_then<F: for<'env> FnOnce(&'env Env, IdsInput) -> napi::Result<Unknown<'env>>>(f: F) -> F {
    f
}

pub fn rows_then<F: for<'env> FnOnce(&'env Env, RowsInput) -> napi::Result<Unknown<'env>>>(f: F) -> F {
    f
}

// ---- filters ----

/// A filter as JSON text, checked on the JS thread: a value JSON would drop or change is
/// `ERR_INVALID_FILTER`, naming its path.
pub fn filter_json(env: &Env, filter: Option<&Unknown>) -> std::result::Result<Option<String>, Failure> {
    let Some(filter) = filter.filter(|f| !matches!(is_absent(f), Ok(true))) else { return Ok(None) };
    let text = helpers::call(env, "strictJson", &[filter.raw()])?;
    Ok(Some(text_or(text, |p| {
        let at = if p.path.is_empty() { String::new() } else { format!(" at {}", p.path) };
        Error::InvalidFilter(format!("invalid filter{at}: the value {}", p.message))
    })?))
}

/// Parses filter JSON (on a worker); a malformed filter is `ERR_INVALID_FILTER` naming the
/// path of the bad node.
pub fn parse_filter(json: Option<&str>) -> Result<Option<ciphervec_core::Filter>> {
    let Some(json) = json else { return Ok(None) };
    let value: serde_json::Value = serde_json::from_str(json).map_err(|e| {
        let why = if is_lone_surrogate(&e.to_string()) { NOT_WELL_FORMED.to_string() } else { e.to_string() };
        Error::InvalidFilter(format!("invalid filter: a string {why}"))
    })?;
    ciphervec_core::Filter::parse(&value).map(Some).map_err(|e| Error::InvalidFilter(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail(position: Option<usize>, why: String) -> Error {
        Error::InvalidArgument(format!("{position:?}: {why}"))
    }

    #[test]
    fn columns_report_the_position_of_a_bad_element() {
        let ok: Vec<String> = parse_column(r#"["a", "b"]"#, 10, &fail).unwrap();
        assert_eq!(ok, ["a", "b"]);
        let err = parse_column::<String>(r#"["a", 5, "c"]"#, 10, &fail).unwrap_err();
        assert!(err.to_string().starts_with("Some(11): invalid type"), "{err}");
        let err = parse_column::<String>(r#"["a", "\ud83d"]"#, 0, &fail).unwrap_err();
        assert!(err.to_string().starts_with("Some(1): is not well-formed UTF-16"), "{err}");
        let err = parse_column::<String>(r#"["a", "\ude00x"]"#, 0, &fail).unwrap_err();
        assert!(err.to_string().contains("lone surrogate"), "{err}");
        let err = parse_column::<String>(r#"["user-\ud83d"]"#, 0, &fail).unwrap_err();
        assert!(err.to_string().starts_with("Some(0): is not well-formed UTF-16"), "a leading one at the end: {err}");
        let both: Vec<String> = parse_column(r#"["\ud83d\ude00"]"#, 0, &fail).unwrap();
        assert_eq!(both, ["😀"], "a whole pair is one character");
        assert!(parse_column::<String>("[1] x", 0, &fail).is_err(), "trailing text");
    }
}
