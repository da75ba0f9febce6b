//! Maps core errors to JavaScript `Error`s whose `code` is the stable `ERR_*` string.

use ciphervec_core::Error as CoreError;
use napi::{Env, JsError};

/// A thrown (sync) error with `code` set.
pub fn to_napi(e: &CoreError) -> napi::Error<String> {
    napi::Error::new(e.code().to_string(), e.to_string())
}

/// A rejection value for a promise: a real JS `Error` object with `code`, created on the JS
/// thread (napi's `Error<Status>` alone would give codes like `GenericFailure`).
pub fn to_rejection(env: &Env, e: &CoreError) -> napi::Error {
    napi::Error::from(JsError::from(to_napi(e)).into_unknown(*env))
}
