//! The names each options object may hold, so that a misspelt option (`topk: 10`, which napi
//! would skip, leaving the default) rejects with `ERR_INVALID_ARGUMENT` instead of being
//! ignored. A test compares every list with its interface in index.d.ts.

use std::ptr;

use napi::bindgen_prelude::{FromNapiValue, Unknown};
use napi::{sys, Env, JsValue, ValueType};

use crate::helpers::check;
use crate::types::{
    BackupOptions, ClientOptions, CreateIndexOptions, DeleteOptions, GetOptions, IterateOptions, LoadIndexOptions,
    QueryBatchOptions, QueryMetadataOptions, QueryOptions, ReadOptions, TrainOptions, UpsertOptions,
};

/// The option names of an options struct, as JS spells them.
pub trait Names {
    /// The names of the struct's fields.
    const NAMES: &'static [&'static str];
    /// Fields whose value, when an object, has names of its own (`storage`, `autoTrain`).
    const NESTED: &'static [(&'static str, &'static [&'static str])] = &[];
}

const STORAGE: &[&str] = &[
    "kind",
    "path",
    "url",
    "table",
    "poolSize",
    "connectTimeoutMs",
    "queryTimeoutMs",
    "lockTimeoutMs",
    "pollIntervalMs",
];
const AUTO_TRAIN: &[&str] = &["threshold"];
const BM25: &[&str] = &["k1", "b"];

impl Names for ClientOptions {
    const NAMES: &'static [&'static str] = &["storage", "threads", "consistency", "clientKey"];
    const NESTED: &'static [(&'static str, &'static [&'static str])] = &[("storage", STORAGE)];
}

impl Names for CreateIndexOptions {
    const NAMES: &'static [&'static str] = &[
        "indexName",
        "indexKey",
        "dimension",
        "metric",
        "indexType",
        "resident",
        "pqDim",
        "pqBits",
        "autoTrain",
        "textFields",
        "bm25",
        "unindexedFields",
    ];
    const NESTED: &'static [(&'static str, &'static [&'static str])] = &[("autoTrain", AUTO_TRAIN), ("bm25", BM25)];
}

impl Names for LoadIndexOptions<'_> {
    const NAMES: &'static [&'static str] = &["indexName", "indexKey", "autoTrain", "signal"];
    const NESTED: &'static [(&'static str, &'static [&'static str])] = &[("autoTrain", AUTO_TRAIN)];
}

impl Names for BackupOptions {
    const NAMES: &'static [&'static str] = &["path"];
}

impl Names for UpsertOptions<'_> {
    const NAMES: &'static [&'static str] = &["items", "ids", "vectors", "metadata", "contents", "signal"];
}

impl Names for QueryOptions<'_> {
    const NAMES: &'static [&'static str] = &[
        "vector",
        "topK",
        "nProbes",
        "rerank",
        "filters",
        "include",
        "consistency",
        "text",
        "textFields",
        "alpha",
        "rrfK",
    ];
}

impl Names for QueryBatchOptions<'_> {
    const NAMES: &'static [&'static str] = &[
        "vectors",
        "topK",
        "nProbes",
        "rerank",
        "filters",
        "include",
        "consistency",
        "signal",
        "texts",
        "textFields",
        "alpha",
        "rrfK",
        "layout",
    ];
}

impl Names for QueryMetadataOptions<'_> {
    const NAMES: &'static [&'static str] = &[
        "filters",
        "text",
        "textFields",
        "requireAllTerms",
        "topK",
        "orderBy",
        "ascending",
        "offset",
        "afterId",
        "include",
        "consistency",
    ];
}

impl Names for GetOptions<'_> {
    const NAMES: &'static [&'static str] = &["ids", "include", "consistency"];
}

impl Names for DeleteOptions<'_> {
    const NAMES: &'static [&'static str] = &["ids"];
}

impl Names for IterateOptions {
    const NAMES: &'static [&'static str] = &["batchSize", "include", "consistency"];
}

impl Names for ReadOptions {
    const NAMES: &'static [&'static str] = &["consistency"];
}

impl Names for TrainOptions<'_> {
    const NAMES: &'static [&'static str] =
        &["nLists", "algorithm", "batchSize", "maxIters", "tolerance", "maxMemory", "seed", "signal", "onProgress"];
}

/// The first own enumerable key of `options` (or of a nested options object) that `T` does
/// not have, as a message: `unknown option topk (did you mean topK?)`.
pub fn unknown<T: Names>(env: &Env, options: &Unknown) -> napi::Result<Option<String>> {
    if let Some(message) = unknown_in(env, options.raw(), T::NAMES, "")? {
        return Ok(Some(message));
    }
    for (field, names) in T::NESTED {
        let mut value = ptr::null_mut();
        let key = std::ffi::CString::new(*field).expect("a field name has no NUL");
        check(unsafe { sys::napi_get_named_property(env.raw(), options.raw(), key.as_ptr(), &mut value) })?;
        let value = unsafe { Unknown::from_raw_unchecked(env.raw(), value) };
        if value.get_type()? == ValueType::Object && !value.is_array()? {
            if let Some(message) = unknown_in(env, value.raw(), names, &format!("{field}."))? {
                return Ok(Some(message));
            }
        }
    }
    Ok(None)
}

fn unknown_in(env: &Env, object: sys::napi_value, names: &[&str], prefix: &str) -> napi::Result<Option<String>> {
    let mut keys = ptr::null_mut();
    check(unsafe {
        sys::napi_get_all_property_names(
            env.raw(),
            object,
            sys::KeyCollectionMode::own_only,
            sys::KeyFilter::enumerable | sys::KeyFilter::skip_symbols,
            sys::KeyConversion::numbers_to_strings,
            &mut keys,
        )
    })?;
    let mut len = 0;
    check(unsafe { sys::napi_get_array_length(env.raw(), keys, &mut len) })?;
    for i in 0..len {
        let mut key = ptr::null_mut();
        check(unsafe { sys::napi_get_element(env.raw(), keys, i, &mut key) })?;
        let key = unsafe { String::from_napi_value(env.raw(), key)? };
        if names.contains(&key.as_str()) {
            continue;
        }
        let hint = names.iter().find(|n| n.eq_ignore_ascii_case(&key)).map_or_else(
            || format!("; the options are {}", names.join(", ")),
            |n| format!(" (did you mean {prefix}{n}?)"),
        );
        return Ok(Some(format!("unknown option {prefix}{key}{hint}")));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The property names of `export interface <name> { ... }` in index.d.ts.
    fn interface(dts: &str, name: &str) -> Vec<String> {
        let start =
            dts.find(&format!("export interface {name} {{\n")).unwrap_or_else(|| panic!("{name} in index.d.ts"));
        let body = &dts[start..start + dts[start..].find("\n}\n").expect("the interface ends")];
        body.lines()
            .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
            .filter_map(|l| l.trim().split_once(':').map(|(n, _)| n.trim_end_matches('?').to_string()))
            .filter(|n| n.chars().all(|c| c.is_ascii_alphanumeric()))
            .collect()
    }

    #[test]
    fn every_list_is_its_interface_in_index_d_ts() {
        let dts = include_str!("../index.d.ts");
        let lists: [(&str, &[&str]); 16] = [
            ("ClientOptions", ClientOptions::NAMES),
            ("StorageOptions", STORAGE),
            ("CreateIndexOptions", CreateIndexOptions::NAMES),
            ("AutoTrainOptions", AUTO_TRAIN),
            ("Bm25Options", BM25),
            ("LoadIndexOptions", LoadIndexOptions::NAMES),
            ("BackupOptions", BackupOptions::NAMES),
            ("UpsertOptions", UpsertOptions::NAMES),
            ("QueryOptions", QueryOptions::NAMES),
            ("QueryBatchOptions", QueryBatchOptions::NAMES),
            ("QueryMetadataOptions", QueryMetadataOptions::NAMES),
            ("GetOptions", GetOptions::NAMES),
            ("DeleteOptions", DeleteOptions::NAMES),
            ("ReadOptions", ReadOptions::NAMES),
            ("IterateOptions", IterateOptions::NAMES),
            ("TrainOptions", TrainOptions::NAMES),
        ];
        for (name, names) in lists {
            assert_eq!(interface(dts, name), names, "{name}: the Names list and index.d.ts differ");
        }
    }
}
