//! Maps core errors to JavaScript `Error`s whose `code` is the stable `ERR_*` string, and
//! tells such errors apart (`isCiphervecError`).

use ciphervec_core::Error as CoreError;
use napi::bindgen_prelude::{FromNapiValue, JsObjectValue, Object, Unknown};
use napi::{sys, Env, JsError, JsValue, ValueType};
use napi_derive::napi;

use crate::helpers::check;

/// A thrown (sync) error with `code` set.
pub fn to_napi(e: &CoreError) -> napi::Error<String> {
    napi::Error::new(e.code().to_string(), e.to_string())
}

/// A rejection value for a promise: a real JS `Error` object with `code`, created on the JS
/// thread (napi's `Error<Status>` alone would give codes like `GenericFailure`).
pub fn to_rejection(env: &Env, e: &CoreError) -> napi::Error {
    napi::Error::from(JsError::from(to_napi(e)).into_unknown(*env))
}

/// Whether `error` is an error ciphervec produced: an `Error` whose `code` is one of the
/// `ErrorCode`s. Narrows `unknown` (a `catch` binding) to `CiphervecError`.
#[napi(ts_args_type = "error: unknown", ts_return_type = "error is CiphervecError")]
// napi-derive registers exported functions only outside `cfg(test)`: unused in a test build.
#[cfg_attr(test, allow(dead_code))]
pub fn is_ciphervec_error(env: Env, error: Unknown) -> napi::Result<bool> {
    if error.get_type()? != ValueType::Object {
        return Ok(false);
    }
    let mut is_error = false;
    check(unsafe { sys::napi_is_error(env.raw(), error.raw(), &mut is_error) })?;
    if !is_error {
        return Ok(false);
    }
    // A getter on `code` could throw; an error that cannot tell its code is not ours.
    let object = unsafe { Object::from_napi_value(env.raw(), error.raw())? };
    let code: Unknown = match object.get_named_property("code") {
        Ok(code) => code,
        Err(_) => {
            crate::options::clear_exception(&env);
            return Ok(false);
        }
    };
    if code.get_type()? != ValueType::String {
        return Ok(false);
    }
    let code = unsafe { String::from_napi_value(env.raw(), code.raw())? };
    Ok(CoreError::CODES.contains(&code.as_str()))
}
