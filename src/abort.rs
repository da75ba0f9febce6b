//! `signal` options: an `AbortSignal` sets a flag the core checks (see
//! `ciphervec_core`'s `*_unless` methods), and its listener is removed when the call settles,
//! so one signal shared by many calls keeps no listener per finished call (Node warns past
//! ten listeners on one signal, and each would hold its call's flag).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use napi::bindgen_prelude::{FnArgs, Function, JsObjectValue, Object, ObjectRef, Unknown};
use napi::{Env, JsValue};

use crate::options;

/// The abort flag of one call, and the listener that sets it.
pub struct Abort {
    pub flag: Arc<AtomicBool>,
    listener: Option<Listener>,
}

struct Listener {
    signal: ObjectRef<false>,
    function: ObjectRef<false>,
}

impl Abort {
    /// A flag nobody sets (no `signal` given).
    pub fn none() -> Abort {
        Abort { flag: Arc::new(AtomicBool::new(false)), listener: None }
    }

    /// The flag `signal` sets when it aborts (set at once if it already has);
    /// `ERR_INVALID_ARGUMENT` if `signal` is not an `AbortSignal`. `method` names the call in
    /// that error.
    pub fn on(env: &Env, signal: Option<&Object>, method: &str) -> ciphervec_core::Result<Abort> {
        let Some(signal) = signal else { return Ok(Abort::none()) };
        let is_signal = (|| -> napi::Result<bool> {
            let aborted: Unknown = signal.get_named_property("aborted")?;
            let add: Unknown = signal.get_named_property("addEventListener")?;
            let remove: Unknown = signal.get_named_property("removeEventListener")?;
            Ok(aborted.get_type()? == napi::ValueType::Boolean
                && options::is_function(&add)
                && options::is_function(&remove))
        })();
        if !is_signal.unwrap_or(false) {
            options::clear_exception(env);
            return Err(ciphervec_core::Error::InvalidArgument(format!(
                "{method}: option signal is not an AbortSignal (pass an AbortController's signal)"
            )));
        }
        let flag = Arc::new(AtomicBool::new(false));
        if signal.get_named_property::<bool>("aborted").unwrap_or(false) {
            flag.store(true, Ordering::Release);
            return Ok(Abort { flag, listener: None });
        }
        let listener = listen(env, signal, flag.clone()).map_err(|e| ciphervec_core::Error::Internal(e.reason))?;
        Ok(Abort { flag, listener: Some(listener) })
    }

    /// Removes the listener (on the JS thread, once the call has settled).
    pub fn finish(self, env: &Env) {
        let Some(Listener { signal, function }) = self.listener else { return };
        let _ = (|| -> napi::Result<()> {
            let target = signal.get_value(env)?;
            let listener = function.get_value(env)?.to_unknown();
            let remove: Function<'_, FnArgs<(&str, Unknown<'_>)>, ()> =
                target.get_named_property("removeEventListener")?;
            remove.apply(target, FnArgs::from(("abort", listener)))?;
            Ok(())
        })();
        options::clear_exception(env);
        let _ = signal.unref(env);
        let _ = function.unref(env);
    }
}

fn listen(env: &Env, signal: &Object, flag: Arc<AtomicBool>) -> napi::Result<Listener> {
    let listener = env.create_function_from_closure::<(), (), _>("onAbort", move |_| {
        flag.store(true, Ordering::Release);
        Ok(())
    })?;
    type AddEventListener<'a> = Function<'a, FnArgs<(&'a str, Function<'a, (), ()>)>, ()>;
    let add: AddEventListener = signal.get_named_property("addEventListener")?;
    add.apply(signal, FnArgs::from(("abort", listener)))?;
    let function = Object::from_raw(env.raw(), listener.raw()).create_ref::<false>()?;
    Ok(Listener { signal: signal.create_ref::<false>()?, function })
}
