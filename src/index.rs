//! The `EncryptedIndex` class.

use std::sync::Arc;

use ciphervec_core::{Include, Index, Metric};
use napi::bindgen_prelude::PromiseRaw;
use napi::Env;
use napi_derive::napi;

use crate::convert;
use crate::task;
use crate::types::{
    DeleteOptions, DeleteResult, DistanceMetric, GetOptions, GetResultItem, QueryBatchOptions, QueryOptions,
    QueryResultItem, UpsertOptions, UpsertResult,
};

const DEFAULT_TOP_K: usize = 100;
const QUERY_DEFAULT: Include = Include { distance: true, metadata: false, contents: false, vector: false };
const GET_DEFAULT: Include = Include { distance: false, metadata: true, contents: true, vector: true };

/// An open encrypted index. Every data method returns a Promise and runs off the JS thread.
#[napi]
pub struct EncryptedIndex {
    inner: Arc<Index>,
}

impl EncryptedIndex {
    pub fn new(inner: Arc<Index>) -> Self {
        EncryptedIndex { inner }
    }

    fn top_k(x: Option<f64>) -> ciphervec_core::Result<usize> {
        convert::whole(x, "topK", DEFAULT_TOP_K, 1, ciphervec_core::index::MAX_TOP_K)
    }
}

#[napi]
impl EncryptedIndex {
    /// The index's name.
    #[napi(getter)]
    pub fn index_name(&self) -> String {
        self.inner.name().to_string()
    }

    /// The vector dimension, or `null` until the first upsert fixes it.
    #[napi(getter)]
    pub fn dimension(&self) -> Option<u32> {
        self.inner.dimension().map(|d| d as u32)
    }

    /// The distance metric.
    #[napi(getter)]
    pub fn metric(&self) -> DistanceMetric {
        match self.inner.metric() {
            Metric::Euclidean => DistanceMetric::Euclidean,
            Metric::SquaredEuclidean => DistanceMetric::SquaredEuclidean,
            Metric::Cosine => DistanceMetric::Cosine,
        }
    }

    /// Writes items, all or none. Rejects with `ERR_INVALID_VECTOR` (NaN, Infinity, empty),
    /// `ERR_DIMENSION_MISMATCH` or `ERR_INVALID_ARGUMENT`, leaving the index unchanged.
    /// A flat `vectors` Float32Array is read in place: do not modify it until the promise settles.
    #[napi]
    pub fn upsert<'env>(&self, env: &'env Env, options: UpsertOptions<'env>) -> napi::Result<PromiseRaw<'env, UpsertResult>> {
        let raw = match convert::upsert_batch(env, options)? {
            Ok(raw) => raw,
            Err(e) => return task::reject(env, e),
        };
        let index = self.inner.clone();
        task::spawn(
            env,
            move || index.upsert(raw.into_items(index.dimension().unwrap_or(0))?),
            |_, n| Ok(UpsertResult { upserted_count: n as u32 }),
        )
    }

    /// The `topK` nearest items to `vector`, closest first.
    #[napi]
    pub fn query<'env>(&self, env: &'env Env, options: QueryOptions) -> napi::Result<PromiseRaw<'env, Vec<QueryResultItem>>> {
        let top_k = match Self::top_k(options.top_k) {
            Ok(k) => k,
            Err(e) => return task::reject(env, e),
        };
        let vector = convert::vector(&options.vector);
        let include = convert::include(options.include.as_deref(), QUERY_DEFAULT);
        let index = self.inner.clone();
        task::spawn(env, move || index.query(&vector, top_k, None, include), |_, views| {
            Ok(views.into_iter().map(convert::query_item).collect())
        })
    }

    /// One result list per query vector, computed in parallel. A flat `Float32Array` is read
    /// in place: do not modify it until the promise settles.
    #[napi]
    pub fn query_batch<'env>(
        &self,
        env: &'env Env,
        options: QueryBatchOptions,
    ) -> napi::Result<PromiseRaw<'env, Vec<Vec<QueryResultItem>>>> {
        let top_k = match Self::top_k(options.top_k) {
            Ok(k) => k,
            Err(e) => return task::reject(env, e),
        };
        let include = convert::include(options.include.as_deref(), QUERY_DEFAULT);
        let index = self.inner.clone();
        let raw = options.vectors;
        let work = move || {
            let vectors = convert::rows(&raw, index.dimension().unwrap_or(0), "queryBatch vectors")?;
            index.query_batch(&vectors, top_k, None, include)
        };
        task::spawn(env, work, |_, lists| {
            Ok(lists.into_iter().map(|views| views.into_iter().map(convert::query_item).collect()).collect())
        })
    }

    /// The items with these ids, in the order asked. An id that is not in the index yields
    /// no item (the result can be shorter than `ids`).
    #[napi]
    pub fn get<'env>(&self, env: &'env Env, options: GetOptions) -> napi::Result<PromiseRaw<'env, Vec<GetResultItem>>> {
        let include = convert::include(options.include.as_deref(), GET_DEFAULT);
        let index = self.inner.clone();
        task::spawn(env, move || index.get(&options.ids, include), |_, views| {
            Ok(views.into_iter().map(convert::get_item).collect())
        })
    }

    /// Deletes items, all or none; ids not in the index are ignored.
    #[napi]
    pub fn delete<'env>(&self, env: &'env Env, options: DeleteOptions) -> napi::Result<PromiseRaw<'env, DeleteResult>> {
        let index = self.inner.clone();
        task::spawn(env, move || index.delete(&options.ids), |_, n| Ok(DeleteResult { deleted_count: n as u32 }))
    }

    /// Every id in the index, in no particular order.
    #[napi]
    pub fn list_ids<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, Vec<String>>> {
        let index = self.inner.clone();
        task::spawn(env, move || index.list_ids(), |_, ids| Ok(ids))
    }

    /// The number of items.
    #[napi]
    pub fn count<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, u32>> {
        let index = self.inner.clone();
        task::spawn(env, move || index.count(), |_, n| Ok(n as u32))
    }

    /// Deletes the index and all its stored data; the handle rejects with `ERR_CLOSED` afterwards.
    #[napi]
    pub fn delete_index<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, ()>> {
        let index = self.inner.clone();
        task::spawn(env, move || index.destroy(), |_, ()| Ok(()))
    }
}
