//! Runs a core operation off the JS thread and settles a promise with its result.
//!
//! The JS thread only converts arguments. The operation runs on tokio's blocking pool (never
//! on a tokio worker): it may wait for the index's locks there, and the core hands its heavy
//! parallel sections to the client's rayon pool, whose jobs never take locks (a rayon worker
//! that waited for a lock could deadlock, see `ciphervec_core::client`). The result becomes JS
//! values back on the JS thread, where a core error becomes a rejection with its `code`.

use ciphervec_core::Error as CoreError;
use napi::bindgen_prelude::{PromiseRaw, ToNapiValue, Unknown};
use napi::{Env, JsValue};

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

/// A promise that rejects at once with a core error (bad option values found on the JS thread).
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
    W: FnOnce(&std::sync::atomic::AtomicBool) -> ciphervec_core::Result<T> + Send + 'static,
    C: FnOnce(&'env Env, T) -> napi::Result<V> + 'static,
{
    let flag = abort.flag.clone();
    let work = move || {
        // A blocking thread does the call's serial work; like the pool it yields to the JS thread.
        ciphervec_core::priority::lower_current_thread();
        work(&flag)
    };
    let fut = async move {
        Ok(tokio::task::spawn_blocking(work).await.unwrap_or_else(|e| {
            let msg = e.try_into_panic().ok().and_then(|p| {
                p.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| p.downcast_ref::<String>().cloned())
            });
            Err(CoreError::Internal(msg.unwrap_or_else(|| "a worker task failed".into())))
        }))
    };
    env.spawn_future_with_callback(fut, move |env, result| {
        abort.finish(env);
        match result {
            Ok(value) => convert(env, value),
            Err(e) => Err(to_rejection(env, &e)),
        }
    })
}
