//! Work on the JS thread cut into slices, one per macrotask, so that converting the arguments
//! or results of a large call never holds the event loop for long (in one piece, a 100k-item
//! upsert with `number[][]` vectors held it for seconds: BENCHMARKS.md, "Event-loop blocking
//! per input form").
//!
//! A [`Pump`] converts one slice per [`Pump::step`]. [`run`] takes the first slice at once (a
//! small call needs no other) and, if more remain, returns a promise and takes each further
//! slice in a `setImmediate` callback, so timers and I/O run between slices. The JS values a
//! pump works on travel as arguments of those callbacks, which keeps them alive until the
//! last slice without references to release.

use std::cell::RefCell;
use std::ptr;
use std::rc::Rc;

use ciphervec_core::Error as CoreError;
use napi::bindgen_prelude::{FromNapiValue, JsObjectValue, Object, Unknown};
use napi::{sys, Env, JsError, JsValue};

use crate::errors::to_napi;
use crate::helpers::check;

/// Why a pump stopped: a core error (rejects with its code) or a JS-level failure.
pub enum Failure {
    Core(CoreError),
    Js(napi::Error),
}

impl From<CoreError> for Failure {
    fn from(e: CoreError) -> Self {
        Failure::Core(e)
    }
}

impl From<napi::Error> for Failure {
    fn from(e: napi::Error) -> Self {
        Failure::Js(e)
    }
}

pub type StepResult<'env> = Result<Option<Unknown<'env>>, Failure>;

/// Conversion work done a slice at a time on the JS thread.
pub trait Pump: 'static {
    /// Converts the next slice of `args` (the values given to [`run`]); `Some(value)` once
    /// finished, with the value the call resolves to (or a promise it follows).
    fn step<'env>(&mut self, env: &'env Env, args: &[Unknown<'env>]) -> StepResult<'env>;
}

/// Runs `pump` over `args`: the value of its first slice if that finishes it, else a promise
/// that settles once the last slice has run. A failure becomes a rejected promise.
pub fn run<'env>(env: &'env Env, mut pump: impl Pump, args: &[Unknown<'env>]) -> napi::Result<Unknown<'env>> {
    match pump.step(env, args) {
        Ok(Some(value)) => Ok(value),
        Err(failure) => rejected(env, failure),
        Ok(None) => {
            let (mut deferred, mut promise) = (ptr::null_mut(), ptr::null_mut());
            check(unsafe { sys::napi_create_promise(env.raw(), &mut deferred, &mut promise) })?;
            let state = Rc::new(RefCell::new(Some(Pending { pump: Box::new(pump), deferred })));
            let raw: Vec<sys::napi_value> = args.iter().map(|a| a.raw()).collect();
            if let Err(e) = schedule(env, state.clone(), &raw) {
                settle(env, &state, Err(Failure::Js(e)));
            }
            Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), promise) })
        }
    }
}

struct Pending {
    pump: Box<dyn Pump>,
    deferred: sys::napi_deferred,
}

type State = Rc<RefCell<Option<Pending>>>;

/// Takes the next slice in a `setImmediate` callback that gets `args`.
fn schedule(env: &Env, state: State, args: &[sys::napi_value]) -> napi::Result<()> {
    let callback = env.create_function_from_closure::<(), (), _>("ciphervecSlice", move |ctx| {
        let env: &Env = ctx.env;
        let args: Vec<Unknown> = (0..ctx.length()).map(|i| ctx.get::<Unknown>(i)).collect::<napi::Result<_>>()?;
        let step = match state.borrow_mut().as_mut() {
            Some(pending) => pending.pump.step(env, &args),
            None => return Ok(()),
        };
        match step {
            Ok(None) => {
                let raw: Vec<sys::napi_value> = args.iter().map(|a| a.raw()).collect();
                if let Err(e) = schedule(env, state.clone(), &raw) {
                    settle(env, &state, Err(Failure::Js(e)));
                }
            }
            Ok(Some(value)) => settle(env, &state, Ok(value)),
            Err(failure) => settle(env, &state, Err(failure)),
        }
        // Never throw from here: an exception in an immediate callback would be uncaught.
        Ok(())
    })?;
    let global = env.get_global()?;
    let set_immediate: Unknown = global.get_named_property("setImmediate")?;
    let mut argv = Vec::with_capacity(args.len() + 1);
    argv.push(callback.raw());
    argv.extend_from_slice(args);
    let mut result = ptr::null_mut();
    check(unsafe {
        sys::napi_call_function(env.raw(), global.raw(), set_immediate.raw(), argv.len(), argv.as_ptr(), &mut result)
    })
}

/// Resolves or rejects the pending promise (once).
fn settle(env: &Env, state: &State, outcome: Result<Unknown, Failure>) {
    let Some(pending) = state.borrow_mut().take() else { return };
    let status = match outcome {
        Ok(value) => unsafe { sys::napi_resolve_deferred(env.raw(), pending.deferred, value.raw()) },
        Err(failure) => match error_value(env, failure) {
            Ok(error) => unsafe { sys::napi_reject_deferred(env.raw(), pending.deferred, error) },
            Err(_) => unsafe { sys::napi_reject_deferred(env.raw(), pending.deferred, ptr::null_mut()) },
        },
    };
    debug_assert_eq!(status, sys::Status::napi_ok);
}

/// The JS error object of a failure: a core error with its `code`.
fn error_value(env: &Env, failure: Failure) -> napi::Result<sys::napi_value> {
    let error = match failure {
        Failure::Core(e) => JsError::from(to_napi(&e)).into_unknown(*env),
        Failure::Js(e) => JsError::from(e).into_unknown(*env),
    };
    Ok(error.raw())
}

/// A promise already rejected with `failure`.
pub fn rejected<'env>(env: &'env Env, failure: Failure) -> napi::Result<Unknown<'env>> {
    let (mut deferred, mut promise) = (ptr::null_mut(), ptr::null_mut());
    check(unsafe { sys::napi_create_promise(env.raw(), &mut deferred, &mut promise) })?;
    check(unsafe { sys::napi_reject_deferred(env.raw(), deferred, error_value(env, failure)?) })?;
    Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), promise) })
}

/// Reads a named property of a JS object (for helper results).
pub fn property<'env, T: FromNapiValue + napi::bindgen_prelude::ValidateNapiValue>(
    value: &Unknown<'env>,
    name: &str,
) -> napi::Result<T> {
    let object = unsafe { Object::from_napi_value(value.value().env, value.raw())? };
    object.get_named_property(name)
}
