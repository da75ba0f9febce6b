//! `Client.prototype[Symbol.asyncDispose]`, so that `await using client = await Client.open()`
//! closes the client at the end of its scope. napi-rs declares class members by name only, so
//! the symbol-keyed method is defined once the module's classes exist (a `module_exports`
//! callback runs after they are registered); index.d.ts declares it in `src/types.d.ts`.

use napi::bindgen_prelude::{Function, JsObjectValue, Object, Unknown};
use napi::Env;
use napi_derive::napi;

/// Defines the method on `Client.prototype` as a non-enumerable property, like a class
/// method. Runtimes without `Symbol.asyncDispose` (Node < 18.18) get nothing.
// napi-derive registers `module_exports` callbacks only outside `cfg(test)`.
#[cfg_attr(test, allow(dead_code))]
const DEFINE: &str = r#"(function (Client) {
  'use strict'
  if (typeof Symbol.asyncDispose !== 'symbol') return
  Object.defineProperty(Client.prototype, Symbol.asyncDispose, {
    value: function () { return this.close() },
    writable: true,
    configurable: true,
    enumerable: false,
  })
})"#;

#[napi(module_exports)]
#[cfg_attr(test, allow(dead_code))]
pub fn define_async_dispose(exports: Object, env: Env) -> napi::Result<()> {
    let define: Function<Unknown, ()> = env.run_script(DEFINE)?;
    let client: Unknown = exports.get_named_property("Client")?;
    define.call(client)
}
