//! `index.iterate()`: every item of an index, in batches, as an async iterator.

use std::sync::{Arc, Mutex};

use ciphervec_core::{Include, Index};
use napi::bindgen_prelude::{FnArgs, Function, JsObjectValue, Object, PromiseRaw, This, Unknown};
use napi::{Env, JsValue};
use napi_derive::napi;

use crate::output;
use crate::task;

/// Items per batch unless `batchSize` says otherwise.
pub const DEFAULT_BATCH: usize = 1_000;
/// The largest `batchSize`, as for `topK` (a batch is built on the JS thread in slices).
pub const MAX_BATCH: usize = 10_000;

/// Batches of an index's items, from `index.iterate()`: `for await (const batch of it)`.
/// Each batch is an array of up to `batchSize` items, as `get` returns them. The ids are taken
/// when the first batch is asked for: each item present then and still present when its batch
/// is read comes exactly once (with its value at that moment); items upserted after the start
/// are not included. Batches never overlap, even when `next()` is called again before the
/// previous call settles.
#[napi]
pub struct ItemBatches {
    index: Arc<Index>,
    include: Include,
    batch_size: usize,
    strong: bool,
    /// A bad option, reported by the first `next()` (`iterate()` itself never throws).
    failure: Option<ciphervec_core::Error>,
    cursor: Arc<Mutex<Cursor>>,
}

#[derive(Default)]
struct Cursor {
    /// The ids as the iteration started; `None` before the first batch and after the last.
    ids: Option<Vec<String>>,
    next: usize,
    done: bool,
}

impl ItemBatches {
    pub fn new(
        index: Arc<Index>,
        include: Include,
        batch_size: ciphervec_core::Result<usize>,
        strong: bool,
    ) -> ItemBatches {
        let (batch_size, failure) = match batch_size {
            Ok(n) => (n, None),
            Err(e) => (0, Some(e)),
        };
        ItemBatches { index, include, batch_size, strong, failure, cursor: Arc::default() }
    }
}

#[napi]
impl ItemBatches {
    /// The next batch: `{ done: false, value: items }`, or `{ done: true }` after the last.
    #[napi(ts_return_type = "Promise<IteratorResult<Array<GetResult>, undefined>>")]
    pub fn next<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, Unknown<'env>>> {
        if let Some(e) = &self.failure {
            return task::reject(env, e.clone());
        }
        let (index, include, batch_size, strong) = (self.index.clone(), self.include, self.batch_size, self.strong);
        let cursor = self.cursor.clone();
        let work = move || {
            let mut c = cursor.lock().unwrap_or_else(|p| p.into_inner());
            if c.done {
                return Ok(None);
            }
            if c.ids.is_none() {
                if strong {
                    index.sync()?;
                }
                c.ids = Some(index.list_ids()?);
            }
            loop {
                let ids = c.ids.as_ref().expect("taken above");
                if c.next >= ids.len() {
                    *c = Cursor { ids: None, next: 0, done: true };
                    return Ok(None);
                }
                let end = (c.next + batch_size).min(ids.len());
                let views = index.get(&ids[c.next..end], include)?;
                c.next = end;
                // A batch whose items were all deleted meanwhile is skipped, not yielded empty.
                if !views.is_empty() {
                    return Ok(Some(output::Items::of(&views, include)));
                }
            }
        };
        task::spawn(env, work, |env, items| match items {
            None => iterator_result(env, None),
            Some(items) => {
                let value = items.into_js(env)?;
                if !value.is_promise()? {
                    return iterator_result(env, Some(value));
                }
                // A large batch is built over several turns: wrap it once it is.
                let wrap = env.create_function_from_closure::<Unknown, Object, _>("wrap", |ctx| {
                    let value: Unknown = ctx.get(0)?;
                    let mut result = Object::new(ctx.env)?;
                    result.set_named_property("done", false)?;
                    result.set_named_property("value", value)?;
                    Ok(result)
                })?;
                let promise = Object::from_raw(env.raw(), value.raw());
                let then: Function<'_, FnArgs<(Function<'_, Unknown, Object>,)>, Unknown> =
                    promise.get_named_property("then")?;
                then.apply(promise, FnArgs::from((wrap,)))
            }
        })
    }

    /// Ends the iteration early (what `break` in `for await` calls): later `next()` calls
    /// report `done`, and the ids taken at the start are freed.
    #[napi(js_name = "return", ts_return_type = "Promise<IteratorResult<Array<GetResult>, undefined>>")]
    pub fn finish<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, Unknown<'env>>> {
        let cursor = self.cursor.clone();
        let work = move || {
            *cursor.lock().unwrap_or_else(|p| p.into_inner()) = Cursor { ids: None, next: 0, done: true };
            Ok(())
        };
        task::spawn(env, work, |env, ()| iterator_result(env, None))
    }

    /// The iterator itself, so `for await (const batch of index.iterate())` works.
    #[napi(well_known_symbol = "asyncIterator", ts_return_type = "ItemBatches")]
    pub fn async_iterator<'env>(&self, this: This<'env>) -> Object<'env> {
        this.object
    }
}

/// `{ done: false, value }`, or `{ done: true, value: undefined }` for `None`.
fn iterator_result<'env>(env: &'env Env, value: Option<Unknown<'env>>) -> napi::Result<Unknown<'env>> {
    let mut result = Object::new(env)?;
    result.set_named_property("done", value.is_none())?;
    match value {
        Some(v) => result.set_named_property("value", v)?,
        None => result.set_named_property("value", ())?,
    }
    Ok(result.to_unknown())
}
