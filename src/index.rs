//! The `EncryptedIndex` class.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use ciphervec_core::{Include, Index, ItemView, Search};
use napi::bindgen_prelude::{Either, FnArgs, Function, JsObjectValue, Object, PromiseRaw, Unknown};
use napi::threadsafe_function::ThreadsafeFunctionCallMode;
use napi::Env;
use napi::JsValue;
use napi_derive::napi;

use crate::abort::Abort;
use crate::convert;
use crate::input::{self, Batch, IdsInput, RowsInput, UpsertArgs};
use crate::iterate::{ItemBatches, DEFAULT_BATCH, MAX_BATCH};
use crate::options;
use crate::output;
use crate::staged::{self, Failure};
use crate::task;
use crate::types::{
    Consistency, DeleteOptions, DeleteResult, DistanceMetric, GetOptions, GetResultItem, IndexStats, IterateOptions,
    MetadataMatch, QueryBatchOptions, QueryLayout, QueryMetadataOptions, QueryOptions, QueryResultItem, ReadOptions,
    TrainOptions, TrainResult, TrainingProgress, TrainingState, UpsertOptions, UpsertResult,
};

/// An open encrypted index. Every data method returns a Promise and runs off the JS thread.
#[napi]
pub struct EncryptedIndex {
    inner: Arc<Index>,
    /// The client's default: reads catch up with other processes first.
    strong: bool,
}

impl EncryptedIndex {
    pub fn new(inner: Arc<Index>, strong: bool) -> Self {
        EncryptedIndex { inner, strong }
    }

    /// Whether a read asking for `consistency` catches up first.
    fn strong(&self, consistency: Option<Consistency>) -> bool {
        consistency.map_or(self.strong, |c| matches!(c, Consistency::Strong))
    }

    fn top_k(x: Option<f64>) -> ciphervec_core::Result<usize> {
        Ok(convert::count(x, "topK")?.unwrap_or(ciphervec_core::DEFAULT_TOP_K))
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
        self.inner.metric().into()
    }

    /// Writes items, all or none. Rejects with `ERR_INVALID_VECTOR` (NaN, Infinity, empty,
    /// too long or, under cosine, too short to score), `ERR_DIMENSION_MISMATCH` or
    /// `ERR_INVALID_ARGUMENT`, leaving the index unchanged. The arguments are read (and
    /// vectors copied) a slice per event-loop turn before the write starts, so do not change
    /// them until the promise settles; a vectors buffer transferred meanwhile rejects with
    /// `ERR_INVALID_ARGUMENT`.
    // Either form, not a mix (`UpsertOptions` has every field, for the conversion).
    #[napi(ts_args_type = "options: UpsertItems | UpsertColumns")]
    pub fn upsert<'env>(&self, env: &'env Env, options: Unknown<'env>) -> napi::Result<PromiseRaw<'env, UpsertResult>> {
        let options: UpsertOptions = match options::required(env, &options, "upsert") {
            Ok(o) => o,
            Err(e) => return task::reject(env, e),
        };
        let abort = match Abort::on(env, options.signal.as_ref(), "upsert") {
            Ok(a) => a,
            Err(e) => return task::reject(env, e),
        };
        warn_if_background_failed(env, &self.inner)?;
        let index = self.inner.clone();
        let then = input::upsert_then(move |env, batch: Batch| {
            let work = move |abort: &AtomicBool| index.upsert_unless(batch.into_items()?, abort);
            let promise = task::spawn_abortable(env, abort, work, |_, report| {
                Ok(UpsertResult { upserted_count: report.upserted as u32, training_triggered: report.training_started })
            })?;
            Ok(promise.to_unknown())
        });
        let args = UpsertArgs {
            items: options.items,
            ids: options.ids,
            vectors: options.vectors,
            metadata: options.metadata,
            contents: options.contents,
        };
        match input::upsert(env, args, then) {
            Ok((pump, args)) => Ok(task::typed(staged::run(env, pump, &args)?)),
            Err(failure) => Ok(task::typed(staged::rejected(env, failure)?)),
        }
    }

    /// The `topK` nearest items to `vector`, closest first.
    #[napi(
        ts_generic_types = "const I extends ReadonlyArray<IncludeField> = ['distance']",
        ts_args_type = "options: QueryOptions & { include?: I }",
        ts_return_type = "Promise<Array<QueryResult<I>>>"
    )]
    pub fn query<'env>(
        &self,
        env: &'env Env,
        options: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, Vec<QueryResultItem>>> {
        let options: QueryOptions = match options::required(env, &options, "query") {
            Ok(o) => o,
            Err(e) => return task::reject(env, e),
        };
        let prepared = (|| -> Result<_, Failure> {
            let top_k = Self::top_k(options.top_k)?;
            let n_probes = convert::count(options.n_probes, "nProbes")?;
            let rerank = convert::count(options.rerank, "rerank")?;
            let filter = input::filter_json(env, options.filters.as_ref())?;
            let vector = input::vector(env, &options.vector, "the query vector")?;
            Ok((top_k, n_probes, rerank, filter, vector))
        })();
        let (top_k, n_probes, rerank, filter, vector) = match prepared {
            Ok(p) => p,
            Err(failure) => return Ok(task::typed(staged::rejected(env, failure)?)),
        };
        warn_if_untrained(env, &self.inner)?;
        warn_if_background_failed(env, &self.inner)?;
        let include = convert::include(options.include.as_deref(), Include::QUERY_DEFAULT);
        let index = self.inner.clone();
        let strong = self.strong(options.consistency);
        let hybrid_only = options.alpha.is_some() || options.rrf_k.is_some() || options.text_fields.is_some();
        let hybrid = options.text.map(|text| {
            let fusion = ciphervec_core::Fusion::default();
            let fusion = ciphervec_core::Fusion {
                alpha: options.alpha.unwrap_or(fusion.alpha),
                rrf_k: options.rrf_k.unwrap_or(fusion.rrf_k),
            };
            (text, options.text_fields, fusion)
        });
        if hybrid.is_none() && hybrid_only {
            let e = ciphervec_core::Error::InvalidArgument(
                "query: alpha, rrfK and textFields apply to a hybrid query only: give a text too".into(),
            );
            return task::reject(env, e);
        }
        let work = move || {
            if strong {
                index.sync()?;
            }
            let filter = input::parse_filter(filter.as_deref())?;
            let search = Search { k: top_k, n_probes, rerank, filter: filter.as_ref(), include };
            match &hybrid {
                // The search runs on this call thread: see `pool::scan`.
                None => Ok(output::Items::of(&crate::pool::scan(|| index.query(&vector, &search))?, include)),
                Some((text, fields, fusion)) => {
                    let q = ciphervec_core::TextQuery { text, fields: fields.as_deref(), require_all: false };
                    let (views, scores): (Vec<_>, Vec<_>) =
                        crate::pool::scan(|| index.hybrid_query(&vector, &q, *fusion, &search))?.into_iter().unzip();
                    Ok(output::Items::scored(&views, scores, include))
                }
            }
        };
        let promise = task::spawn(env, work, |env, items| items.into_js(env))?;
        Ok(task::typed(promise.to_unknown()))
    }

    /// One result list per query vector, computed in parallel. The vectors are copied (a
    /// slice per event-loop turn) before the queries start. With `layout: 'columns'` the lists
    /// come as one `QueryColumns` object instead.
    #[napi(
        ts_generic_types = "const I extends ReadonlyArray<IncludeField> = ['distance'], L extends QueryLayout = 'rows'",
        ts_args_type = "options: QueryBatchOptions & { include?: I; layout?: L }",
        ts_return_type = "Promise<[L] extends ['rows'] ? Array<Array<QueryResult<I>>> : [L] extends ['columns'] ? QueryColumns<I> : Array<Array<QueryResult<I>>> | QueryColumns<I>>"
    )]
    pub fn query_batch<'env>(
        &self,
        env: &'env Env,
        options: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, Vec<Vec<QueryResultItem>>>> {
        let options: QueryBatchOptions = match options::required(env, &options, "queryBatch") {
            Ok(o) => o,
            Err(e) => return task::reject(env, e),
        };
        let include = convert::include(options.include.as_deref(), Include::QUERY_DEFAULT);
        let index = self.inner.clone();
        let strong = self.strong(options.consistency);
        let prepared = (|| -> Result<_, Failure> {
            let top_k = Self::top_k(options.top_k)?;
            let n_probes = convert::count(options.n_probes, "nProbes")?;
            let rerank = convert::count(options.rerank, "rerank")?;
            let filter = input::filter_json(env, options.filters.as_ref())?;
            let hybrid_only = options.alpha.is_some() || options.rrf_k.is_some() || options.text_fields.is_some();
            if options.texts.is_none() && hybrid_only {
                return Err(ciphervec_core::Error::InvalidArgument(
                    "queryBatch: alpha, rrfK and textFields apply to a hybrid query only: give texts too".into(),
                )
                .into());
            }
            let defaults = ciphervec_core::Fusion::default();
            let fusion = ciphervec_core::Fusion {
                alpha: options.alpha.unwrap_or(defaults.alpha),
                rrf_k: options.rrf_k.unwrap_or(defaults.rrf_k),
            };
            let (texts, text_fields) = (options.texts, options.text_fields);
            let columns = options.layout == Some(QueryLayout::Columns);
            let abort = Abort::on(env, options.signal.as_ref(), "queryBatch")?;
            let then = input::rows_then(move |env, rows: RowsInput| {
                let work = move |abort: &AtomicBool| {
                    if strong {
                        index.sync()?;
                    }
                    let filter = input::parse_filter(filter.as_deref())?;
                    let search = Search { k: top_k, n_probes, rerank, filter: filter.as_ref(), include };
                    let Some(texts) = &texts else {
                        let lists = index.query_batch_unless(&rows.rows(), &search, abort)?;
                        return Ok(output::Items::of_lists(lists, include));
                    };
                    let lists =
                        index.hybrid_query_batch(&rows.rows(), texts, text_fields.as_deref(), fusion, &search)?;
                    Ok(output::Items::scored_lists(lists, include))
                };
                let promise = task::spawn_abortable(env, abort, work, move |env, items| {
                    if columns {
                        items.into_js_columns(env)
                    } else {
                        items.into_js(env)
                    }
                })?;
                Ok(promise.to_unknown())
            });
            input::rows(env, &options.vectors, self.inner.dimension().unwrap_or(0), then)
        })();
        let pump = match prepared {
            Ok(p) => p,
            Err(failure) => return Ok(task::typed(staged::rejected(env, failure)?)),
        };
        warn_if_untrained(env, &self.inner)?;
        warn_if_background_failed(env, &self.inner)?;
        Ok(task::typed(staged::run(env, pump, &[options.vectors])?))
    }

    /// Ids of the items whose metadata matches `filters`, without a vector (works on trained
    /// and untrained indexes), answered from the metadata index when the filter has a plan.
    /// With `include`, each match carries those fields as `get` returns them (a get by
    /// filter). Rejects with `ERR_INVALID_FILTER` for a malformed filter.
    #[napi(
        ts_generic_types = "const I extends ReadonlyArray<IncludeField> = []",
        ts_args_type = "options: QueryMetadataOptions & { include?: I }",
        ts_return_type = "Promise<Array<MetadataResult<I>>>"
    )]
    pub fn query_metadata<'env>(
        &self,
        env: &'env Env,
        options: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, Vec<MetadataMatch>>> {
        let options: QueryMetadataOptions = match options::required(env, &options, "queryMetadata") {
            Ok(o) => o,
            Err(e) => return task::reject(env, e),
        };
        let text = options.text;
        let prepared = (|| -> Result<_, Failure> {
            let top_k = Self::top_k(options.top_k)?;
            let filter = input::filter_json(env, options.filters.as_ref())?;
            if filter.is_none() && text.is_none() {
                return Err(ciphervec_core::Error::InvalidFilter(
                    "queryMetadata needs a filters object or a text".into(),
                )
                .into());
            }
            if text.is_some() && options.order_by.is_some() {
                return Err(ciphervec_core::Error::InvalidArgument(
                    "queryMetadata: orderBy does not apply to a text search (its results are ordered by score)".into(),
                )
                .into());
            }
            if text.is_none() && (options.text_fields.is_some() || options.require_all_terms.is_some()) {
                return Err(ciphervec_core::Error::InvalidArgument(
                    "queryMetadata: textFields and requireAllTerms apply to a text search only: give a text too".into(),
                )
                .into());
            }
            if text.is_some() && (options.offset.is_some() || options.after_id.is_some()) {
                return Err(ciphervec_core::Error::InvalidArgument(
                    "queryMetadata: offset and afterId page through filter matches, not a text search's".into(),
                )
                .into());
            }
            let order_by = options.order_by.map(|o| o.get("orderBy")).transpose()?;
            let page = ciphervec_core::MetadataPage {
                offset: convert::count(options.offset, "offset")?.unwrap_or(0),
                after_id: options.after_id.map(|a| a.get("afterId")).transpose()?,
            };
            Ok((top_k, filter, order_by, page))
        })();
        let (top_k, filter, order_by, page) = match prepared {
            Ok(p) => p,
            Err(failure) => return Ok(task::typed(staged::rejected(env, failure)?)),
        };
        let ascending = options.ascending.unwrap_or(true);
        let include = Include { distance: false, ..convert::include(options.include.as_deref(), Include::default()) };
        let (text_fields, require_all) = (options.text_fields, options.require_all_terms.unwrap_or(false));
        let index = self.inner.clone();
        let strong = self.strong(options.consistency);
        let work = move || {
            if strong {
                index.sync()?;
            }
            let filter = input::parse_filter(filter.as_deref())?;
            match &text {
                Some(text) => {
                    let q = ciphervec_core::TextQuery { text, fields: text_fields.as_deref(), require_all };
                    let hits = index.text_search(&q, filter.as_ref(), top_k)?;
                    let mut fetched: std::collections::HashMap<String, ItemView> = if include == Include::default() {
                        Default::default()
                    } else {
                        let ids: Vec<String> = hits.iter().map(|h| h.id.clone()).collect();
                        index.get(&ids, include)?.into_iter().map(|v| (v.id.clone(), v)).collect()
                    };
                    // A hit deleted between the search and the fetch is left out.
                    let (views, scores): (Vec<ItemView>, Vec<f64>) = hits
                        .into_iter()
                        .filter_map(|h| {
                            let view = if include == Include::default() {
                                ItemView { id: h.id, distance: None, metadata: None, contents: None, vector: None }
                            } else {
                                fetched.remove(&h.id)?
                            };
                            Some((view, h.score))
                        })
                        .unzip();
                    Ok(Either::B(output::Items::scored(&views, scores, include)))
                }
                None if include == Include::default() => {
                    let filter = filter.expect("a filter was given");
                    let ids = index.query_metadata_page(&filter, top_k, order_by.as_deref(), ascending, &page)?;
                    Ok(Either::A(output::Ids::of(&ids, true)))
                }
                None => {
                    let filter = filter.expect("a filter was given");
                    let views =
                        index.query_metadata_items(&filter, top_k, order_by.as_deref(), ascending, &page, include)?;
                    Ok(Either::B(output::Items::of(&views, include)))
                }
            }
        };
        let promise = task::spawn(env, work, |env, out| match out {
            Either::A(ids) => ids.into_js(env),
            Either::B(items) => items.into_js(env),
        })?;
        Ok(task::typed(promise.to_unknown()))
    }

    /// The items with these ids, in the order asked. An id that is not in the index yields
    /// no item (the result can be shorter than `ids`).
    #[napi(
        ts_generic_types = "const I extends ReadonlyArray<IncludeField> = ['metadata', 'contents', 'vector']",
        ts_args_type = "options: GetOptions & { include?: I }",
        ts_return_type = "Promise<Array<GetResult<I>>>"
    )]
    pub fn get<'env>(
        &self,
        env: &'env Env,
        options: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, Vec<GetResultItem>>> {
        let options: GetOptions = match options::required(env, &options, "get") {
            Ok(o) => o,
            Err(e) => return task::reject(env, e),
        };
        let include = convert::include(options.include.as_deref(), Include::GET_DEFAULT);
        let index = self.inner.clone();
        let strong = self.strong(options.consistency);
        let then = input::ids_then(move |env, ids: IdsInput| {
            let work = move || {
                if strong {
                    index.sync()?;
                }
                let include = Include { distance: false, ..include };
                let views = index.get(&ids.into_ids()?, include)?;
                Ok(output::Items::of(&views, include))
            };
            Ok(task::spawn(env, work, |env, items| items.into_js(env))?.to_unknown())
        });
        match input::ids(&options.ids, then) {
            Ok(pump) => Ok(task::typed(staged::run(env, pump, &[options.ids])?)),
            Err(failure) => Ok(task::typed(staged::rejected(env, failure)?)),
        }
    }

    /// Every item of the index, in batches of up to `batchSize`, as an async iterator:
    /// `for await (const batch of index.iterate({ batchSize: 500 })) for (const item of batch)`.
    /// Each item present when the first batch is read, and still present when its own batch
    /// is, comes exactly once; items upserted after the start are not included. Bad options
    /// reject the first `next()` with `ERR_INVALID_ARGUMENT`.
    #[napi(
        ts_generic_types = "const I extends ReadonlyArray<IncludeField> = ['metadata', 'contents', 'vector']",
        ts_args_type = "options?: IterateOptions & { include?: I }",
        ts_return_type = "AsyncIterableIterator<Array<GetResult<I>>>"
    )]
    pub fn iterate(&self, env: &Env, options: Option<Unknown>) -> ItemBatches {
        let options: ciphervec_core::Result<Option<IterateOptions>> =
            options::optional(env, options.as_ref(), "iterate");
        let (options, failure) = match options {
            Ok(o) => (o, None),
            Err(e) => (None, Some(e)),
        };
        let IterateOptions { batch_size: size, include, consistency } =
            options.unwrap_or(IterateOptions { batch_size: None, include: None, consistency: None });
        let include = Include { distance: false, ..convert::include(include.as_deref(), Include::GET_DEFAULT) };
        let strong = self.strong(consistency);
        let batch_size = match failure {
            Some(e) => Err(e),
            None => batch_size(size),
        };
        ItemBatches::new(self.inner.clone(), include, batch_size, strong)
    }

    /// Deletes items, all or none; ids not in the index are ignored.
    #[napi(ts_args_type = "options: DeleteOptions")]
    pub fn delete<'env>(&self, env: &'env Env, options: Unknown<'env>) -> napi::Result<PromiseRaw<'env, DeleteResult>> {
        let options: DeleteOptions = match options::required(env, &options, "delete") {
            Ok(o) => o,
            Err(e) => return task::reject(env, e),
        };
        warn_if_background_failed(env, &self.inner)?;
        let index = self.inner.clone();
        let then = input::ids_then(move |env, ids: IdsInput| {
            let work = move || index.delete(&ids.into_ids()?);
            Ok(task::spawn(env, work, |_, n| Ok(DeleteResult { deleted_count: n as u32 }))?.to_unknown())
        });
        match input::ids(&options.ids, then) {
            Ok(pump) => Ok(task::typed(staged::run(env, pump, &[options.ids])?)),
            Err(failure) => Ok(task::typed(staged::rejected(env, failure)?)),
        }
    }

    /// Every id in the index, in no particular order.
    #[napi(ts_args_type = "options?: ReadOptions | undefined | null")]
    pub fn list_ids<'env>(
        &self,
        env: &'env Env,
        options: Option<Unknown<'env>>,
    ) -> napi::Result<PromiseRaw<'env, Vec<String>>> {
        let options: Option<ReadOptions> = match options::optional(env, options.as_ref(), "listIds") {
            Ok(o) => o,
            Err(e) => return task::reject(env, e),
        };
        let index = self.inner.clone();
        let strong = self.strong(options.and_then(|o| o.consistency));
        let work = move || {
            if strong {
                index.sync()?;
            }
            Ok(output::Ids::of(&index.list_ids()?, false))
        };
        let promise = task::spawn(env, work, |env, ids| ids.into_js(env))?;
        Ok(task::typed(promise.to_unknown()))
    }

    /// The number of items.
    #[napi(ts_args_type = "options?: ReadOptions | undefined | null")]
    pub fn count<'env>(&self, env: &'env Env, options: Option<Unknown<'env>>) -> napi::Result<PromiseRaw<'env, u32>> {
        let options: Option<ReadOptions> = match options::optional(env, options.as_ref(), "count") {
            Ok(o) => o,
            Err(e) => return task::reject(env, e),
        };
        let index = self.inner.clone();
        let strong = self.strong(options.and_then(|o| o.consistency));
        let work = move || {
            if strong {
                index.sync()?;
            }
            index.count()
        };
        task::spawn(env, work, |_, n| Ok(n as u32))
    }

    /// What the index is made of: items, lists and their balance, loose entries due for
    /// compaction, and the memory its working set holds (see `IndexStats`). Reads nothing
    /// from the store.
    #[napi]
    pub fn stats<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, IndexStats>> {
        let index = self.inner.clone();
        let state = self.training_state();
        task::spawn(env, move || index.stats(), move |_, s| Ok(convert::index_stats(s, state)))
    }

    /// Clusters the index with k-means into IVF lists, off the JS thread; queries then scan only
    /// the nearest lists. Queries, upserts and deletes keep working during training (served
    /// by the previous state) and nothing written meanwhile is lost. Rejects with
    /// `ERR_INSUFFICIENT_VECTORS` (fewer than 2 × nLists vectors), `ERR_TRAINING_IN_PROGRESS`,
    /// `ERR_ABORTED` or `ERR_INVALID_ARGUMENT`.
    #[napi(ts_args_type = "options?: TrainOptions | undefined | null")]
    pub fn train<'env>(
        &self,
        env: &'env Env,
        options: Option<Unknown<'env>>,
    ) -> napi::Result<PromiseRaw<'env, TrainResult>> {
        let options: Option<TrainOptions> = match options::optional(env, options.as_ref(), "train") {
            Ok(o) => o,
            Err(e) => return task::reject(env, e),
        };
        let options = options.unwrap_or(TrainOptions {
            n_lists: None,
            algorithm: None,
            batch_size: None,
            max_iters: None,
            tolerance: None,
            max_memory: None,
            seed: None,
            signal: None,
            on_progress: None,
        });
        let params = match convert::train_params(&options) {
            Ok(p) => p,
            Err(e) => return task::reject(env, e),
        };
        // napi takes a `Function` or an `Object` field without checking what it is.
        if options.on_progress.as_ref().is_some_and(|f| !options::is_function(f)) {
            let e = ciphervec_core::Error::InvalidArgument("train: option onProgress is not a function".into());
            return task::reject(env, e);
        }
        let progress = match &options.on_progress {
            Some(f) => Some(
                f.build_threadsafe_function::<TrainingProgress>().callee_handled::<false>().weak::<true>().build()?,
            ),
            None => None,
        };
        let abort = match Abort::on(env, options.signal.as_ref(), "train") {
            Ok(a) => a,
            Err(e) => return task::reject(env, e),
        };
        if let Err(e) = self.inner.reserve_training() {
            abort.finish(env);
            return task::reject(env, e);
        }
        let index = self.inner.clone();
        let work = move |cancel: &AtomicBool| {
            let report = |p: &ciphervec_core::TrainingProgress| {
                if let Some(tsfn) = &progress {
                    let p = TrainingProgress {
                        iteration: p.iteration as u32,
                        max_iters: p.max_iters as u32,
                        inertia: p.inertia,
                    };
                    tsfn.call(p, ThreadsafeFunctionCallMode::NonBlocking);
                }
            };
            index.train_reserved(&params, cancel, &report)
        };
        task::spawn_abortable(env, abort, work, |_, r| {
            Ok(TrainResult {
                n_lists: r.n_lists as u32,
                iterations: r.iterations as u32,
                inertia: r.inertia,
                trained_on: r.trained_on as u32,
                seconds: r.seconds,
            })
        })
    }

    /// Whether IVF lists exist.
    #[napi]
    pub fn is_trained(&self) -> bool {
        self.inner.is_trained()
    }

    /// Whether a training run is in progress.
    #[napi]
    pub fn is_training(&self) -> bool {
        self.inner.is_training()
    }

    /// `'untrained'`, `'training'` or `'trained'` (a retraining index reports `'training'`).
    #[napi]
    pub fn training_state(&self) -> TrainingState {
        if self.inner.is_training() {
            TrainingState::Training
        } else if self.inner.is_trained() {
            TrainingState::Trained
        } else {
            TrainingState::Untrained
        }
    }

    /// Number of IVF lists: 1 until trained.
    #[napi(getter)]
    pub fn n_lists(&self) -> u32 {
        self.inner.n_lists() as u32
    }

    /// Rewrites the stored index into packed segments: a few hundred large sealed blobs
    /// instead of one per item, so the next `loadIndex` is several times faster, and
    /// overwritten or deleted versions are dropped. `train()` does the same as part of
    /// training, and writes start it in the background once 65,536 loose entries (and at
    /// least half the item count) have piled up, so calling it is rarely needed: e.g. after a
    /// bulk load, before a restart. Then, if much of the store's file is unused (the rewrite
    /// frees what it replaced), the file is shrunk (disk storage; `train()` does this too,
    /// background compactions do not, since the next writes would grow it again). Writes
    /// wait while it runs; queries go on.
    #[napi]
    pub fn compact<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, ()>> {
        warn_if_background_failed(env, &self.inner)?;
        let index = self.inner.clone();
        task::spawn(env, move || index.compact(), |_, ()| Ok(()))
    }

    /// Whether a background compaction is running. One that fails is reported by a process
    /// warning (`code: 'CIPHERVEC_BACKGROUND_FAILURE'`) on the next call that writes or queries.
    #[napi]
    pub fn is_compacting(&self) -> bool {
        self.inner.is_compacting()
    }

    /// Deletes the index and all its stored data, and shrinks the store's file by the space it
    /// took (disk storage); the handle rejects with `ERR_CLOSED` afterwards.
    #[napi]
    pub fn delete_index<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, ()>> {
        let index = self.inner.clone();
        task::spawn(env, move || index.destroy(), |_, ()| Ok(()))
    }
}

/// `batchSize` of `iterate`: 1 to [`MAX_BATCH`], default [`DEFAULT_BATCH`].
fn batch_size(x: Option<f64>) -> ciphervec_core::Result<usize> {
    match convert::count(x, "batchSize")? {
        None => Ok(DEFAULT_BATCH),
        Some(n) if (1..=MAX_BATCH).contains(&n) => Ok(n),
        Some(n) => Err(ciphervec_core::Error::InvalidArgument(format!(
            "iterate: batchSize must be a whole number from 1 to {MAX_BATCH}, got {n}"
        ))),
    }
}

/// Emits a process warning when auto-training, a background compaction or returning unused
/// disk space failed since the last call: that work runs after the write or call that
/// started it resolved, so its error has no promise to reject.
fn warn_if_background_failed(env: &Env, index: &Index) -> napi::Result<()> {
    let Some(failure) = index.take_background_failure() else { return Ok(()) };
    let message = format!(
        "{} of index '{}' failed ({}: {}); {}",
        failure.task,
        index.name(),
        failure.error.code(),
        failure.error,
        failure.task.aftermath()
    );
    emit_warning(env, message, "CIPHERVEC_BACKGROUND_FAILURE")
}

/// Emits a process warning (once per index) when queries scan a large untrained index.
fn warn_if_untrained(env: &Env, index: &Index) -> napi::Result<()> {
    if !index.take_untrained_warning() {
        return Ok(());
    }
    let message = format!(
        "index '{}' holds {} vectors but is not trained, so every query scans all of them; call index.train() (or enable autoTrain) for much faster queries",
        index.name(),
        index.len_hint()
    );
    emit_warning(env, message, "CIPHERVEC_UNTRAINED_INDEX")
}

/// `process.emitWarning(message, { type: 'CiphervecWarning', code })`.
fn emit_warning(env: &Env, message: String, code: &str) -> napi::Result<()> {
    let process: Object = env.get_global()?.get_named_property("process")?;
    let emit: Function<FnArgs<(String, Object)>, ()> = process.get_named_property("emitWarning")?;
    let mut options = Object::new(env)?;
    options.set_named_property("type", "CiphervecWarning")?;
    options.set_named_property("code", code)?;
    emit.apply(process, FnArgs::from((message, options)))?;
    Ok(())
}
