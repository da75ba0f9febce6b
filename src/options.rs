//! Option objects → their `#[napi(object)]` structs, with a failure as `ERR_INVALID_ARGUMENT`.
//!
//! napi converts a method's struct arguments before the method runs, and one field of the
//! wrong type (`topK: 'x'`, `metric: 'bogus'`) made the call throw at once, a `TypeError` with
//! napi's own code (`NumberExpected`, `InvalidArg`), where every other bad value rejects the
//! promise with a stable code. So methods take their options as `Unknown` (index.d.ts still
//! names the interface, through `ts_args_type`) and convert them here: a failure becomes a
//! message naming the option's path, what it was and what it should be. An option name the
//! struct does not have (`topk`) is refused first (see `names`).

use ciphervec_core::Error;
use napi::bindgen_prelude::{FromNapiValue, JsObjectValue, Object, Unknown};
use napi::{sys, Env, JsValue, ValueType};

use crate::names::{self, Names};

/// The options of `method` as `T`; `ERR_INVALID_ARGUMENT` if they are not an object, hold a
/// name `T` does not have, or a field cannot be converted.
pub fn required<T: FromNapiValue + Names>(env: &Env, options: &Unknown, method: &str) -> ciphervec_core::Result<T> {
    if options.get_type().map_or(true, |t| t != ValueType::Object) {
        return Err(Error::InvalidArgument(format!("{method} takes an options object, got {}", describe(options))));
    }
    match names::unknown::<T>(env, options) {
        Ok(Some(unknown)) => return Err(Error::InvalidArgument(format!("{method}: {unknown}"))),
        Ok(None) => {}
        // Keys that cannot be listed (a Proxy's ownKeys threw): the conversion has its say.
        Err(_) => clear_exception(env),
    }
    unsafe { T::from_napi_value(env.raw(), options.raw()) }.map_err(|e| explain(env, options, method, &e))
}

/// As [`required`], for options that may be omitted (`undefined` or `null`).
pub fn optional<T: FromNapiValue + Names>(
    env: &Env,
    options: Option<&Unknown>,
    method: &str,
) -> ciphervec_core::Result<Option<T>> {
    match options {
        None => Ok(None),
        Some(o) if matches!(o.get_type(), Ok(ValueType::Undefined | ValueType::Null)) => Ok(None),
        Some(o) => required(env, o, method).map(Some),
    }
}

/// The error of a failed conversion. napi's reason reads `<why> on Inner.field on Outer.field`
/// (each struct appends its field as the failure comes up), or `Missing field \`name\``.
fn explain(env: &Env, options: &Unknown, method: &str, e: &napi::Error) -> Error {
    // A throwing getter leaves its exception pending; the rejection replaces it.
    clear_exception(env);
    let mut parts = e.reason.split(" on ");
    let why = parts.next().unwrap_or_default();
    let mut path: Vec<&str> = parts.filter_map(|p| p.split_once('.').map(|(_, field)| field)).collect();
    path.reverse();
    let missing = between(why, "Missing field `", "`");
    path.extend(missing);
    if path.is_empty() {
        return Error::InvalidArgument(format!("{method}: the options could not be read ({why})"));
    }
    // napi reads a non-object as an empty one, so `storage: 5` fails on a field inside it.
    for depth in 1..path.len() {
        let Some(value) = value_at(options, &path[..depth]) else { break };
        if value.get_type().is_ok_and(|t| t != ValueType::Object) {
            let name = path[..depth].join(".");
            return Error::InvalidArgument(format!(
                "{method}: option {name} is {}, expected an object",
                describe(&value)
            ));
        }
    }
    let name = path.join(".");
    if missing.is_some() {
        return Error::InvalidArgument(format!("{method}: option {name} is required"));
    }
    if let Some(choices) = between(why, "enum `", "`").and_then(choices) {
        // napi quotes the value as Rust's Debug of a string: `"bogus"`. Only a short one is
        // repeated: a long string is no misspelt choice (and could be anything, even a key).
        let got = between(why, "value `", "` does not match").filter(|v| v.len() <= 40).unwrap_or("another string");
        return Error::InvalidArgument(format!("{method}: option {name} is {got}, expected one of {choices}"));
    }
    let got = value_at(options, &path).map_or("unreadable", |v| describe(&v));
    let expected =
        if let Some(types) = why.split_once("none of these types ").map(|(_, t)| t.trim_end_matches([',', ' '])) {
            // An `Either` (`autoTrain`); its reason does not say which part of an object failed.
            let types: Vec<String> = types.split(", ").map(|t| expected_of(t.trim_matches('`')).to_string()).collect();
            format!("{} (see index.d.ts)", types.join(" or "))
        } else {
            expected_of(why).to_string()
        };
    Error::InvalidArgument(format!("{method}: option {name} is {got}, expected {expected}"))
}

/// What napi's reason (or one of the Rust types it names) asked for, in JS terms.
fn expected_of(why: &str) -> &str {
    if why == "bool" || why.contains("`bool`") {
        "true or false"
    } else if why.contains("`f64`") || why.contains("`u32`") || why.contains("Number") {
        "a number"
    } else if why.contains("`String`") || why.contains("string") {
        "a string"
    } else if why.contains("Array length") {
        "an array"
    } else if why.contains("TypedArray") {
        "a Uint8Array"
    } else if why.ends_with("Options") {
        why
    } else {
        "the type index.d.ts declares for it"
    }
}

/// Whether `value` (an option napi took without checking its type) is a function.
pub fn is_function<'env>(value: &impl napi::JsValue<'env>) -> bool {
    value.to_unknown().get_type().is_ok_and(|t| t == ValueType::Function)
}

/// Drops the pending JS exception, if any (a getter that threw while an option was read), so
/// that the call can reject instead.
pub fn clear_exception(env: &Env) {
    let mut exception = std::ptr::null_mut();
    unsafe { sys::napi_get_and_clear_last_exception(env.raw(), &mut exception) };
}

/// The allowed values of a string enum, by its Rust name.
fn choices(enum_name: &str) -> Option<&'static str> {
    Some(match enum_name {
        "DistanceMetric" => "'euclidean', 'squared_euclidean', 'cosine'",
        "StorageKind" => "'memory', 'disk', 'postgres'",
        "Consistency" => "'eventual', 'strong'",
        "IncludeField" => "'distance', 'metadata', 'contents', 'vector'",
        "QueryLayout" => "'rows', 'columns'",
        _ => return None,
    })
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = s.find(start)? + start.len();
    let len = s[from..].find(end)?;
    Some(&s[from..from + len])
}

/// The value at `path` inside `options`, or `None` if a getter on the way throws.
fn value_at<'env>(options: &Unknown<'env>, path: &[&str]) -> Option<Unknown<'env>> {
    let mut value = *options;
    for key in path {
        if value.get_type().ok()? != ValueType::Object {
            return None;
        }
        let object = unsafe { Object::from_napi_value(value.value().env, value.raw()) }.ok()?;
        value = object.get_named_property::<Unknown>(key).ok()?;
    }
    Some(value)
}

/// What a value is, for messages. Never its contents: a string passed where bytes belong
/// could be key material.
fn describe(value: &Unknown) -> &'static str {
    match value.get_type() {
        Ok(ValueType::Undefined) => "undefined",
        Ok(ValueType::Null) => "null",
        Ok(ValueType::Boolean) => "a boolean",
        Ok(ValueType::Number) => "a number",
        Ok(ValueType::String) => "a string",
        Ok(ValueType::Symbol) => "a symbol",
        Ok(ValueType::BigInt) => "a BigInt",
        Ok(ValueType::Function) => "a function",
        Ok(ValueType::Object) if value.is_array().unwrap_or(false) => "an array",
        Ok(ValueType::Object) if value.is_typedarray().unwrap_or(false) => "a typed array",
        Ok(_) => "an object",
        Err(_) => "unreadable",
    }
}
