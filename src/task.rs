//! Runs a core operation off the JS thread and settles a promise with its result.
//!
//! The JS thread only converts arguments, then hands the operation straight to a call thread
//! (`src/pool.rs`; never a tokio worker or a rayon thread): it may wait for the index's locks
//! there, and the core hands its heavy parallel sections to the client's rayon pool, whose jobs
//! never take locks (a rayon worker that waited for a lock could deadlock, see
//! `ciphervec_core::client`). When the operation returns, that thread settles the call's promise
//! through a napi deferred (a threadsafe function of its own), whose callback turns the result
//! into JS values on the JS thread, where a core error becomes a rejection with its `code`. So
//! a call makes two thread hops, JS → call thread → JS; it made four before, through a tokio
//! worker each way (BENCHMARKS.md, "Single-query latency: thread hops (issue 16)").

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::AtomicBool;

use ciphervec_core::Error as CoreError;
use napi::bindgen_prelude::{PromiseRaw, ToNapiValue, Unknown};
use napi::{sys, Env, JsValue};

use crate::errors::to_rejection;

pub fn spawn<'env, T, V, W, C>(env: &'env Env, work: W, convert: C) -> napi::Result<PromiseRaw<'env, V>>
where
    T: Send + 'static,
    V: ToNapiValue,
    W: FnOnce() -> ciphervec_core::Result<T> + Send + 'static,
    C: FnOnce(&'env Env, T) -> napi::Result<V> + 'static,
{
    spawn_abortable(env, crate::abort::Abort::none(), move |_| work(), convert)
}

/// A promise that rejects with a core error (bad option values found on the JS thread). It
/// settles as every call does, not before the caller gets it.
pub fn reject<'env, V: ToNapiValue + 'static>(env: &'env Env, e: CoreError) -> napi::Result<PromiseRaw<'env, V>> {
    spawn(env, move || Err::<(), _>(e), |_, _| -> napi::Result<V> { unreachable!("a rejected task has no value") })
}

/// A JS promise value as the typed promise a method returns.
pub fn typed<'env, V>(promise: Unknown<'env>) -> PromiseRaw<'env, V> {
    PromiseRaw::new(promise.value().env, promise.raw())
}

/// [`spawn`] of a call its caller can abort: `work` gets the abort flag, and the signal's
/// listener is removed when the call settles, either way.
pub fn spawn_abortable<'env, T, V, W, C>(
    env: &'env Env,
    abort: crate::abort::Abort,
    work: W,
    convert: C,
) -> napi::Result<PromiseRaw<'env, V>>
where
    T: Send + 'static,
    V: ToNapiValue,
    W: FnOnce(&AtomicBool) -> ciphervec_core::Result<T> + Send + 'static,
    C: FnOnce(&'env Env, T) -> napi::Result<V> + 'static,
{
    let flag = abort.flag.clone();
    // What settling needs on the JS thread travels with the work, untouched until it is back.
    let js = JsOnly::new((abort, convert));
    let (deferred, promise) = env.create_deferred()?;
    crate::pool::submit(Box::new(move || {
        // A call thread does the call's serial work; like the pool it yields to the JS thread.
        ciphervec_core::priority::lower_current_thread();
        let result = run(work, &flag);
        // Called on the JS thread (the deferred's threadsafe function), with its environment.
        deferred.resolve(move |env: Env| {
            let (abort, convert) = js.take();
            // SAFETY: as napi's own `spawn_future_with_callback`: `Env` only copies the
            // environment's pointer, which stays valid while the environment lives; whatever
            // `convert` makes of lifetime `'env` becomes a `napi_value` below, in this callback's
            // handle scope, and `convert` is `'static`, so it can keep nothing of it.
            let env_ref: &'env Env = unsafe { &*(&env as *const Env) };
            abort.finish(env_ref);
            let value = catch_unwind(AssertUnwindSafe(|| match result {
                Ok(value) => convert(env_ref, value).and_then(|v| unsafe { V::to_napi_value(env.raw(), v) }),
                Err(e) => Err(to_rejection(env_ref, &e)),
            }))
            .unwrap_or_else(|p| Err(to_rejection(env_ref, &panic_error(&*p))));
            value.map(RawValue).map_err(|e| pending_exception(env_ref).unwrap_or(e))
        });
    }));
    Ok(PromiseRaw::new(env.raw(), promise.raw()))
}

/// `work`'s result, or `ERR_INTERNAL` with its message if it panicked.
fn run<T>(work: impl FnOnce(&AtomicBool) -> ciphervec_core::Result<T>, flag: &AtomicBool) -> ciphervec_core::Result<T> {
    catch_unwind(AssertUnwindSafe(|| work(flag))).unwrap_or_else(|p| Err(panic_error(&*p)))
}

/// `ERR_INTERNAL` with a panic's message.
fn panic_error(p: &(dyn std::any::Any + Send)) -> CoreError {
    let msg = p.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| p.downcast_ref::<String>().cloned());
    CoreError::Internal(msg.unwrap_or_else(|| "a worker task failed".into()))
}

/// The exception a failed conversion left pending, taken as the call's rejection (a promise
/// cannot settle while one is pending).
fn pending_exception(env: &Env) -> Option<napi::Error> {
    let mut pending = false;
    if unsafe { sys::napi_is_exception_pending(env.raw(), &mut pending) } != sys::Status::napi_ok || !pending {
        return None;
    }
    let mut exception = std::ptr::null_mut();
    unsafe { sys::napi_get_and_clear_last_exception(env.raw(), &mut exception) };
    Some(napi::Error::from(unsafe { Unknown::from_raw_unchecked(env.raw(), exception) }))
}

/// A JS value made already: the deferred resolves with it as it is.
struct RawValue(sys::napi_value);

impl ToNapiValue for RawValue {
    unsafe fn to_napi_value(_: sys::napi_env, val: Self) -> napi::Result<sys::napi_value> {
        Ok(val.0)
    }
}

/// A value of the JS thread (JS references, a closure that builds JS values) that passes
/// through a worker thread untouched. Dropped anywhere else — only when the environment went
/// away before the call settled, and napi drops the resolver where the work ran — it is leaked
/// rather than dropped off its thread.
struct JsOnly<T> {
    value: std::mem::ManuallyDrop<T>,
    owner: std::thread::ThreadId,
}

// SAFETY: the value is taken or dropped only on the thread that made it (`owner`).
unsafe impl<T> Send for JsOnly<T> {}

impl<T> JsOnly<T> {
    fn new(value: T) -> Self {
        JsOnly { value: std::mem::ManuallyDrop::new(value), owner: std::thread::current().id() }
    }

    fn take(mut self) -> T {
        assert_eq!(self.owner, std::thread::current().id(), "a JS-thread value taken on another thread");
        // SAFETY: taken once; `self` is forgotten, so its `Drop` does not see the value again.
        let value = unsafe { std::mem::ManuallyDrop::take(&mut self.value) };
        std::mem::forget(self);
        value
    }
}

impl<T> Drop for JsOnly<T> {
    fn drop(&mut self) {
        if self.owner == std::thread::current().id() {
            // SAFETY: dropped once, here, on its own thread.
            unsafe { std::mem::ManuallyDrop::drop(&mut self.value) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_in_the_work_is_an_internal_error_with_its_message() {
        let flag = AtomicBool::new(false);
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let literal = run(|_| -> ciphervec_core::Result<()> { panic!("boom") }, &flag);
        let formatted = run(|_| -> ciphervec_core::Result<()> { panic!("boom {}", 2) }, &flag);
        std::panic::set_hook(hook);
        for (result, message) in [(literal, "boom"), (formatted, "boom 2")] {
            let e = result.unwrap_err();
            assert_eq!(e.code(), "ERR_INTERNAL");
            assert!(e.to_string().contains(message), "{e}");
        }
        assert_eq!(run(|_| Ok(7), &flag).unwrap(), 7);
        assert_eq!(
            run(|_| -> ciphervec_core::Result<()> { Err(CoreError::Closed("closed".into())) }, &flag)
                .unwrap_err()
                .code(),
            "ERR_CLOSED"
        );
    }

    #[test]
    fn a_js_thread_value_dropped_on_another_thread_is_leaked_not_dropped() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        struct Counted(Arc<AtomicUsize>);
        impl Drop for Counted {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let drops = Arc::new(AtomicUsize::new(0));
        drop(JsOnly::new(Counted(drops.clone())));
        assert_eq!(drops.load(Ordering::SeqCst), 1, "dropped on its own thread");
        let away = JsOnly::new(Counted(drops.clone()));
        std::thread::spawn(move || drop(away)).join().unwrap();
        assert_eq!(drops.load(Ordering::SeqCst), 1, "leaked on another thread");
        let back = JsOnly::new(Counted(drops.clone()));
        let back = std::thread::spawn(move || back).join().unwrap();
        drop(back.take());
        assert_eq!(drops.load(Ordering::SeqCst), 2, "taken back on its thread");
    }
}
