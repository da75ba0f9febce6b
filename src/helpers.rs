//! The JavaScript half of conversion (`helpers.js`), compiled once per JS environment and
//! called by name. See that file for why these parts run in JavaScript.

use std::ptr;

use napi::bindgen_prelude::{FromNapiValue, JsObjectValue, Object, ToNapiValue, Unknown};
use napi::{sys, Env, JsValue, Status};

const SOURCE: &str = include_str!("helpers.js");

/// Values of the scratch Float32Array that helpers copy vectors into, a slice at a time,
/// for the Rust side to take: 2 MB, reused by every call of the environment. Copying a whole
/// call into one JS buffer instead made V8 account tens of MB of new memory at once, which
/// triggered a full garbage collection of the caller's heap in the middle of the call.
pub const SCRATCH_VALUES: usize = 1 << 19;

/// What one environment keeps (its instance data): the compiled helpers and the scratch array.
struct Instance {
    helpers: sys::napi_ref,
    scratch: sys::napi_ref,
}

fn instance(env: &Env) -> napi::Result<&'static Instance> {
    if let Some(instance) = env.get_instance_data::<Instance>()? {
        return Ok(instance);
    }
    let helpers: Object = env.run_script(SOURCE)?;
    let (mut buffer, mut data, mut scratch) = (ptr::null_mut(), ptr::null_mut(), ptr::null_mut());
    check(unsafe { sys::napi_create_arraybuffer(env.raw(), SCRATCH_VALUES * 4, &mut data, &mut buffer) })?;
    check(unsafe {
        sys::napi_create_typedarray(
            env.raw(),
            sys::TypedarrayType::float32_array,
            SCRATCH_VALUES,
            buffer,
            0,
            &mut scratch,
        )
    })?;
    let reference = |value: sys::napi_value| -> napi::Result<sys::napi_ref> {
        let mut r = ptr::null_mut();
        check(unsafe { sys::napi_create_reference(env.raw(), value, 1, &mut r) })?;
        Ok(r)
    };
    // The references go with the environment; nothing to free by hand.
    let instance = Instance { helpers: reference(helpers.raw())?, scratch: reference(scratch)? };
    env.set_instance_data(instance, (), |_| {})?;
    Ok(env.get_instance_data::<Instance>()?.expect("just set"))
}

fn value(env: &Env, reference: sys::napi_ref) -> napi::Result<sys::napi_value> {
    let mut value = ptr::null_mut();
    check(unsafe { sys::napi_get_reference_value(env.raw(), reference, &mut value) })?;
    Ok(value)
}

/// The helpers object, compiling it on first use in this environment.
fn object(env: &Env) -> napi::Result<Object<'_>> {
    let helpers = value(env, instance(env)?.helpers)?;
    unsafe { Object::from_napi_value(env.raw(), helpers) }
}

/// The scratch Float32Array (see [`SCRATCH_VALUES`]).
pub fn scratch(env: &Env) -> napi::Result<sys::napi_value> {
    value(env, instance(env)?.scratch)
}

/// The values of a Float32Array as they are now (valid until JS runs again), or `None` if
/// `array` is not a Float32Array.
pub fn float32_values<'a>(env: &Env, array: sys::napi_value) -> napi::Result<Option<&'a [f32]>> {
    let (mut kind, mut len, mut data) = (0, 0, ptr::null_mut());
    let status = unsafe {
        sys::napi_get_typedarray_info(
            env.raw(),
            array,
            &mut kind,
            &mut len,
            &mut data,
            ptr::null_mut(),
            ptr::null_mut(),
        )
    };
    if status != sys::Status::napi_ok || kind != sys::TypedarrayType::float32_array {
        return Ok(None);
    }
    if len == 0 {
        return Ok(Some(&[]));
    }
    // SAFETY: napi returns the view's current data pointer and length; the caller reads it
    // before any JS runs, so nothing can detach or resize it meanwhile.
    Ok(Some(unsafe { std::slice::from_raw_parts(data.cast::<f32>(), len) }))
}

/// Calls helper `name` with `args`.
pub fn call<'env>(env: &'env Env, name: &str, args: &[sys::napi_value]) -> napi::Result<Unknown<'env>> {
    let helpers = object(env)?;
    let f: Unknown = helpers.get_named_property(name)?;
    let mut result = ptr::null_mut();
    check(unsafe {
        sys::napi_call_function(env.raw(), helpers.raw(), f.raw(), args.len(), args.as_ptr(), &mut result)
    })?;
    Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), result) })
}

/// A JS value of any Rust value napi can convert (a number, a string, ...).
pub fn js<T: ToNapiValue>(env: &Env, value: T) -> napi::Result<sys::napi_value> {
    unsafe { T::to_napi_value(env.raw(), value) }
}

pub fn check(status: sys::napi_status) -> napi::Result<()> {
    if status == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(napi::Error::new(Status::from(status), "a N-API call failed".to_string()))
    }
}
