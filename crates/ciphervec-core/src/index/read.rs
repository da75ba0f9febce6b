//! Reads: nearest-neighbour queries (exact before training, IVF after), metadata queries,
//! and fetching items by id. Reads hold the state's read lock and take no other.
//!
//! A filtered query first asks the metadata index (`meta::postings`) for its candidates; when
//! scoring them is cheaper than the search would be otherwise, it scores exactly those
//! (recall 1.0): one query where they are stored, a batch by gathering them once into panels
//! (`vector::candidates`); else it scans as usual with the filter as an accept test.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rayon::prelude::*;

use crate::error::Result;
use crate::format::record::Contents;
use crate::index::state::{placement, State};
use crate::index::validate::{check_ids, check_n_probes, check_query, check_rerank, check_top_k};
use crate::index::Index;
use crate::meta::order::SortKey;
use crate::meta::postings::Plan;
use crate::meta::{Filter, Meta};
use crate::vector::candidates;
use crate::vector::exhaustive::{exhaustive, exhaustive_parallel};
use crate::vector::ivf::{auto_n_probes, Ivf};
use crate::vector::kmeans::SplitMix64;
use crate::vector::scan::{Accept, Query};
use crate::vector::topk::Hit;
use crate::vector::topk::TopK;
use crate::vector::Slot;

/// Costs of the batch candidate path, in ns per candidate (see
/// [`Index::planned_candidates`]): gathering into panels once per batch (~110 ns at 50
/// dimensions, with the batch's fixed costs), then scoring per query (~5.7 ns at 50
/// dimensions, top-k selection included). Measured on glove50 only: the split between the
/// fixed and the per-dimension parts is an estimate (BENCHMARKS.md, "Filtered queries").
const GATHER_NS: f64 = 60.0;
const GATHER_NS_PER_DIM: f64 = 1.0;
const PANEL_NS: f64 = 2.0;
const PANEL_NS_PER_DIM: f64 = 0.075;

/// Candidates one task of a single query scores (a task is ~0.1-0.2 ms at 50 dimensions).
const CANDIDATE_CHUNK: usize = 4096;
/// Queries from which a batch on the list path tests a filter by membership in its exact
/// matches rather than by running it.
const EXACT_SET_MIN_BATCH: usize = 8;

/// What a block of a batch may hold for its queries while it scans list by list: each
/// query's prepared codes (`f32` and `i16` weights) and its vector, about 10 bytes per
/// dimension; 16 MiB is ~4,000 queries of 384 dimensions.
const BATCH_BLOCK_BYTES: usize = 16 << 20;
const QUERY_BYTES_PER_DIM: usize = 10;
/// Candidates prefetched ahead of the one scored.
const PREFETCH_AHEAD: usize = 8;

/// Which fields a read returns besides the id.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Include {
    /// The distance to the query (queries only).
    pub distance: bool,
    /// The item's metadata.
    pub metadata: bool,
    /// The item's contents.
    pub contents: bool,
    /// The item's vector.
    pub vector: bool,
}

impl Include {
    /// What a query returns unless told: the distance.
    pub const QUERY_DEFAULT: Include = Include { distance: true, metadata: false, contents: false, vector: false };
    /// What a get returns unless told: everything stored.
    pub const GET_DEFAULT: Include = Include { distance: false, metadata: true, contents: true, vector: true };
}

/// How a query searches: result count, probes (trained indexes), an optional metadata
/// filter and which fields to return.
#[derive(Debug, Clone, Copy)]
pub struct Search<'a> {
    /// Results to return, 1..=[`MAX_TOP_K`](crate::MAX_TOP_K) (default
    /// [`DEFAULT_TOP_K`](crate::DEFAULT_TOP_K)).
    pub k: usize,
    /// Lists to scan once trained; default 2·⌈√nLists⌉. `nLists` or more is exact.
    pub n_probes: Option<usize>,
    /// In an index with codes: candidates per result taken from the codes and re-scored
    /// exactly (default [`IndexType::default_rerank`](crate::IndexType::default_rerank));
    /// ignored by IVF-Flat and before training.
    pub rerank: Option<usize>,
    /// Only items whose metadata matches are returned.
    pub filter: Option<&'a Filter>,
    /// Fields to return.
    pub include: Include,
}

/// Items sampled to estimate a filter's selectivity.
const SELECTIVITY_SAMPLE: usize = 1024;

/// One returned item; fields not requested are `None`.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemView {
    /// The item's id.
    pub id: String,
    /// Distance to the query under the index's metric (lower is closer).
    pub distance: Option<f32>,
    /// The item's metadata, if it has any.
    pub metadata: Option<Meta>,
    /// The item's contents, if it has any.
    pub contents: Option<Arc<Contents>>,
    /// The item's vector.
    pub vector: Option<Vec<f32>>,
}

/// Where a page of [`Index::query_metadata_page`] starts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetadataPage {
    /// Results to skip (after `after_id`, if given).
    pub offset: usize,
    /// Only ids after this one (exclusive, in id order): a cursor that stays right while items
    /// are written or deleted between pages.
    pub after_id: Option<String>,
}

impl Index {
    /// The `k` nearest items to `vector` that pass the filter, closest first. Untrained: exact
    /// search over every item. Trained: the `n_probes` nearest lists, widened by the filter's
    /// estimated selectivity; exact when `n_probes` ≥ the number of lists.
    pub fn query(&self, vector: &[f32], search: &Search) -> Result<Vec<ItemView>> {
        let Search { k, n_probes, include, .. } = *search;
        check_top_k(k)?;
        check_n_probes(n_probes)?;
        check_rerank(search.rerank)?;
        self.reading(include, |state| {
            check_query(vector, self.metric, state.items.dim(), &self.name, || "the query vector".into())?;
            if state.items.is_empty() {
                return Ok(Vec::new());
            }
            let hits = self.nearest(state, vector, search);
            Ok(self.views(state, &hits, include))
        })
    }

    /// The hits of [`Index::query`] (its checks passed, the index not empty).
    pub(crate) fn nearest(&self, state: &State, vector: &[f32], search: &Search) -> Vec<Hit> {
        let k = search.k;
        let q = Query::new(vector);
        let filter = search.filter.filter(|f| !f.is_match_all());
        let accept_fn = |slot: Slot| filter.is_none_or(|f| f.matches(state.items.metadata(slot)));
        let accept: Accept = filter.map(|_| &accept_fn as &(dyn Fn(Slot) -> bool + Sync));
        let candidates = filter.and_then(|f| self.planned_candidates(state, f, search.n_probes, 1));
        match (&state.ivf, candidates) {
            (_, Some((c, exact))) => {
                let accept = if exact { None } else { accept };
                scan_candidates(state, self.metric, &q, &c, accept, k, Some(self.pool()))
            }
            (None, None) => self.pool().install(|| exhaustive_parallel(state.rows(), self.metric, &q, accept, k)),
            (Some(ivf), None) => self.probe(state, ivf, &q, search, filter, accept),
        }
    }

    /// One result list per query vector, computed in parallel over queries.
    pub fn query_batch(&self, vectors: &[Vec<f32>], search: &Search) -> Result<Vec<Vec<ItemView>>> {
        self.query_batch_unless(vectors, search, &AtomicBool::new(false))
    }

    /// [`Index::query_batch`] that its caller can abort: once `abort` is set, the queries not
    /// started yet are skipped (each thread finishes the query or block it is on) and the call
    /// fails with `ERR_ABORTED`.
    pub fn query_batch_unless(
        &self,
        vectors: &[Vec<f32>],
        search: &Search,
        abort: &AtomicBool,
    ) -> Result<Vec<Vec<ItemView>>> {
        let results = self.query_batch_checking(vectors, search, abort)?;
        self.check_abort(abort, "queryBatch")?;
        Ok(results)
    }

    fn query_batch_checking(
        &self,
        vectors: &[Vec<f32>],
        search: &Search,
        abort: &AtomicBool,
    ) -> Result<Vec<Vec<ItemView>>> {
        let Search { k, n_probes, include, .. } = *search;
        check_top_k(k)?;
        check_n_probes(n_probes)?;
        check_rerank(search.rerank)?;
        self.reading(include, |state| self.query_batch_in(state, vectors, search, abort))
    }

    fn query_batch_in(
        &self,
        state: &State,
        vectors: &[Vec<f32>],
        search: &Search,
        abort: &AtomicBool,
    ) -> Result<Vec<Vec<ItemView>>> {
        let aborted = || abort.load(Ordering::Acquire);
        let Search { k, include, .. } = *search;
        for (i, v) in vectors.iter().enumerate() {
            check_query(v, self.metric, state.items.dim(), &self.name, || format!("query vector {i}"))?;
        }
        if state.items.is_empty() {
            return Ok(vec![Vec::new(); vectors.len()]);
        }
        let filter = search.filter.filter(|f| !f.is_match_all());
        let accept_fn = |slot: Slot| filter.is_none_or(|f| f.matches(state.items.metadata(slot)));
        let accept: Accept = filter.map(|_| &accept_fn as &(dyn Fn(Slot) -> bool + Sync));
        if let Some((c, exact)) = filter.and_then(|f| self.planned_candidates(state, f, search.n_probes, vectors.len()))
        {
            if let [v] = vectors {
                // One query gains nothing from gathering: it scores the candidates in place.
                let accept = if exact { None } else { accept };
                let hits = scan_candidates(state, self.metric, &Query::new(v), &c, accept, k, Some(self.pool()));
                return Ok(vec![self.views(state, &hits, include)]);
            }
            if !state.holds_vectors() {
                // Codes only: no vectors to gather; each query scores the candidates' codes.
                let accept = if exact { None } else { accept };
                return Ok(self.pool().install(|| {
                    vectors
                        .par_iter()
                        .map(|v| {
                            if aborted() {
                                return Vec::new();
                            }
                            let hits = scan_candidates(state, self.metric, &Query::new(v), &c, accept, k, None);
                            self.views(state, &hits, include)
                        })
                        .collect()
                }));
            }
            return Ok(self.pool().install(|| {
                // Candidates that are not exactly the matches are checked once here, for the
                // whole batch, rather than once per query.
                let slots: Vec<Slot> = if exact {
                    c.iter().map(Slot).collect()
                } else {
                    let all: Vec<u32> = c.iter().collect();
                    all.into_par_iter().map(Slot).filter(|&s| accept_fn(s)).collect()
                };
                let queries: Vec<Query> = vectors.iter().map(|v| Query::new(v)).collect();
                let scorers: Vec<_> = queries.iter().map(|q| state.scorer(self.metric, q)).collect();
                let rows: Vec<&[f32]> = vectors.iter().map(Vec::as_slice).collect();
                let hits = candidates::search(
                    self.metric,
                    &rows,
                    &slots,
                    k,
                    &|s| state.vector(s),
                    &|qi, s| scorers[qi].score(s),
                    &aborted,
                );
                hits.par_iter().map(|h| self.views(state, h, include)).collect()
            }));
        }
        let Some(ivf) = &state.ivf else {
            return Ok(self.pool().install(|| {
                vectors
                    .par_iter()
                    .map(|v| {
                        if aborted() {
                            return Vec::new();
                        }
                        self.views(state, &exhaustive(state.rows(), self.metric, &Query::new(v), accept, k), include)
                    })
                    .collect()
            }));
        };
        // Queries go through in blocks, one per pool thread unless that would hold too much:
        // the block's probe orders come from passes over the centroids
        // (`Quantizer::probe_orders`), then the block scans list by list (`Ivf::search_batch`),
        // so the larger the block, the more queries share each read of a list.
        let n_probes = self.n_probes(state, ivf, search.n_probes, filter);
        // A batch whose filter the metadata index answers exactly tests membership in the
        // matches (a bit test) instead of running the filter on each candidate that enters
        // a top-k (a quarter of a 50 %-selective batch's time). One query alone would spend
        // more building the set than it saves.
        let matches =
            filter.filter(|_| vectors.len() >= EXACT_SET_MIN_BATCH).and_then(|f| self.exact_matches(state, f));
        let in_matches = |slot: Slot| matches.as_ref().is_some_and(|m| m.contains(slot.0));
        let accept: Accept = match &matches {
            Some(_) => Some(&in_matches),
            None => accept,
        };
        let rerank = search.rerank.unwrap_or(self.index_type.default_rerank());
        let threads = self.pool().current_num_threads().max(1);
        let dim = state.items.dim();
        let block = vectors.len().div_ceil(threads).clamp(1, (BATCH_BLOCK_BYTES / (dim * QUERY_BYTES_PER_DIM)).max(64));
        Ok(self.pool().install(|| {
            vectors
                .par_chunks(block)
                .flat_map_iter(|chunk| {
                    if aborted() {
                        return vec![Vec::new(); chunk.len()];
                    }
                    let mut probe_vecs = Vec::with_capacity(chunk.len() * dim);
                    for v in chunk {
                        probe_vecs.extend_from_slice(&placement(self.metric, v));
                    }
                    let mut scratch = Vec::new();
                    let orders = ivf.quantizer.probe_orders(&probe_vecs, ivf.probe_len(n_probes, accept), &mut scratch);
                    drop(probe_vecs);
                    let queries: Vec<Query> = chunk.iter().map(|v| Query::new(v)).collect();
                    let hits = ivf.search_batch(self.metric, &queries, &orders, n_probes, k, rerank, accept, &aborted);
                    hits.iter().map(|hits| self.views(state, hits, include)).collect::<Vec<_>>()
                })
                .collect()
        }))
    }

    /// IVF search. A filter that matches a fraction `s` of the items widens the probe to
    /// `n_probes / √s` lists; `s` is estimated on a fixed sample of the working set. (`/ s`
    /// would scan as many matching candidates as an unfiltered query scans items, but the
    /// filtered neighbours sit in nearby lists too, so `/ √s` keeps the recall at a fraction
    /// of the lists: BENCHMARKS.md, "Filtered queries".)
    fn probe(
        &self,
        state: &State,
        ivf: &Ivf,
        q: &Query,
        search: &Search,
        filter: Option<&Filter>,
        accept: Accept,
    ) -> Vec<Hit> {
        let n_probes = self.n_probes(state, ivf, search.n_probes, filter);
        let rerank = search.rerank.unwrap_or(self.index_type.default_rerank());
        ivf.search(self.metric, q, &placement(self.metric, q.vector), n_probes, search.k, rerank, accept)
    }

    /// The items the metadata index names for `filter`, when scoring exactly them is cheaper
    /// for a batch of `queries` than the search would be otherwise (all items before
    /// training, the probed lists' share of them after), and whether they are exactly its
    /// matches (then the filter need not run on them). The set is built only when its size
    /// bound says it wins. Costs per item, measured (BENCHMARKS.md, "Filtered queries"):
    /// - a vector scanned in a list: ~4 ns + 0.1 ns per dimension, per query;
    /// - one query alone scores each candidate where it is stored: ~30 ns + 0.4 ns per
    ///   dimension, ~150 ns more when the filter runs on it;
    /// - a batch gathers the candidates once and scores them by the panel kernel for each
    ///   query (`vector::candidates`, [`GATHER_NS`], [`PANEL_NS`]); the filter runs once per
    ///   candidate.
    fn planned_candidates(
        &self,
        state: &State,
        filter: &Filter,
        n_probes: Option<usize>,
        queries: usize,
    ) -> Option<(roaring::RoaringBitmap, bool)> {
        let planned = state.postings.restrict(filter.plan()?)?;
        let n = state.items.len() as f64;
        let scanned = match &state.ivf {
            None => n,
            Some(ivf) => n * self.n_probes(state, ivf, n_probes, Some(filter)) as f64 / ivf.n_lists() as f64,
        };
        let (dim, q) = (state.items.dim() as f64, queries.max(1) as f64);
        let check = if planned.exact { 0.0 } else { 150.0 };
        let per_candidate = if queries > 1 {
            GATHER_NS + GATHER_NS_PER_DIM * dim + check + q * (PANEL_NS + PANEL_NS_PER_DIM * dim)
        } else {
            30.0 + 0.4 * dim + check
        };
        if state.postings.estimate(&planned.plan) as f64 * per_candidate > q * scanned * (4.0 + 0.1 * dim) {
            return None;
        }
        Some((state.postings.candidates(&planned.plan), planned.exact))
    }

    /// Exactly the items matching `filter`, when the metadata index can say (its plan covers
    /// the whole filter with exact operands).
    fn exact_matches(&self, state: &State, filter: &Filter) -> Option<roaring::RoaringBitmap> {
        let planned = state.postings.restrict(filter.plan()?)?;
        planned.exact.then(|| state.postings.candidates(&planned.plan))
    }

    /// Whether a query with `filter` would score the index's candidates (for tests).
    #[cfg(any(test, feature = "test-util"))]
    pub(crate) fn scans_filter_candidates(&self, filter: &Filter, n_probes: Option<usize>) -> bool {
        let state = self.read_state().expect("an open index");
        self.planned_candidates(&state, filter, n_probes, 1).is_some()
    }

    /// The lists a query probes: `n_probes` (default 2·⌈√nLists⌉), widened for a filter (see
    /// [`Index::probe`]).
    fn n_probes(&self, state: &State, ivf: &Ivf, n_probes: Option<usize>, filter: Option<&Filter>) -> usize {
        let n_probes = n_probes.unwrap_or_else(|| auto_n_probes(ivf.n_lists())).min(ivf.n_lists());
        match filter {
            Some(f) => {
                let s = estimate_selectivity(state, f);
                ((n_probes as f64 / s.sqrt()).ceil() as usize).min(ivf.n_lists())
            }
            None => n_probes,
        }
    }

    /// Ids of items matching `filter`, at most `k`: ordered by the metadata field `order_by`
    /// (numbers before strings, items without it last) or else by id.
    pub fn query_metadata(
        &self,
        filter: &Filter,
        k: usize,
        order_by: Option<&str>,
        ascending: bool,
    ) -> Result<Vec<String>> {
        self.query_metadata_page(filter, k, order_by, ascending, &MetadataPage::default())
    }

    /// [`Index::query_metadata`] from a later page: the matches after `page.after_id` (id
    /// order only), then `page.offset` of them skipped. The candidates come from the metadata
    /// index when the filter has a plan (its equalities, `$in` lists and ranges), so a
    /// selective filter touches only its matches; other filters are checked on every item.
    pub fn query_metadata_page(
        &self,
        filter: &Filter,
        k: usize,
        order_by: Option<&str>,
        ascending: bool,
        page: &MetadataPage,
    ) -> Result<Vec<String>> {
        let items = self.query_metadata_items(filter, k, order_by, ascending, page, Include::default())?;
        Ok(items.into_iter().map(|v| v.id).collect())
    }

    /// The items of [`Index::query_metadata_page`]'s page, with the fields `include` asks
    /// for (a get by filter: the ids and items come from one view of the index).
    pub fn query_metadata_items(
        &self,
        filter: &Filter,
        k: usize,
        order_by: Option<&str>,
        ascending: bool,
        page: &MetadataPage,
        include: Include,
    ) -> Result<Vec<ItemView>> {
        check_top_k(k)?;
        let include = Include { distance: false, ..include };
        if page.after_id.is_some() && order_by.is_some() {
            return Err(crate::error::Error::invalid(
                "afterId pages through results in id order: it does not apply with orderBy (use offset)",
            ));
        }
        self.reading(include, |state| self.metadata_page_in(state, filter, k, order_by, ascending, page, include))
    }

    #[allow(clippy::too_many_arguments)]
    fn metadata_page_in(
        &self,
        state: &State,
        filter: &Filter,
        k: usize,
        order_by: Option<&str>,
        ascending: bool,
        page: &MetadataPage,
        include: Include,
    ) -> Result<Vec<ItemView>> {
        let items = &state.items;
        let after = page.after_id.as_deref();
        let keep = |s: Slot, check: bool| {
            after.is_none_or(|a| items.id(s) > a) && (!check || filter.matches(items.metadata(s)))
        };
        let mut slots: Vec<Slot> = match filter.plan().and_then(|p| state.postings.restrict(p)) {
            Some(planned) => {
                let candidates = state.postings.candidates(&planned.plan);
                candidates.iter().map(Slot).filter(|&s| keep(s, !planned.exact)).collect()
            }
            None => self
                .pool()
                .install(|| (0..items.len()).into_par_iter().map(Slot::at).filter(|&s| keep(s, true)).collect()),
        };
        let wanted = page.offset.saturating_add(k);
        let by_id = |a: &Slot, b: &Slot| items.id(*a).cmp(items.id(*b));
        match order_by {
            None => {
                if slots.len() > wanted {
                    slots.select_nth_unstable_by(wanted, by_id);
                    slots.truncate(wanted);
                }
                slots.sort_unstable_by(by_id);
            }
            Some(path) => {
                let mut keyed: Vec<_> = slots.iter().map(|&s| (SortKey::of(items.metadata(s), path), s)).collect();
                let cmp = |(ka, a): &(SortKey, Slot), (kb, b): &(SortKey, Slot)| {
                    ka.cmp(kb, ascending).then_with(|| by_id(a, b))
                };
                if keyed.len() > wanted {
                    keyed.select_nth_unstable_by(wanted, cmp);
                    keyed.truncate(wanted);
                }
                keyed.sort_by(cmp);
                slots = keyed.into_iter().map(|(_, s)| s).collect();
            }
        }
        Ok(slots.into_iter().skip(page.offset).take(k).map(|s| self.view(state, s, None, include)).collect())
    }

    /// The items with these ids, in the order asked; ids not in the index yield no item.
    pub fn get(&self, ids: &[String], include: Include) -> Result<Vec<ItemView>> {
        check_ids(ids.iter().map(String::as_str))?;
        let include = Include { distance: false, ..include };
        self.reading(include, |state| {
            Ok(ids
                .iter()
                .filter_map(|id| state.items.slot(id))
                .map(|slot| self.view(state, slot, None, include))
                .collect())
        })
    }

    /// Every id, in no particular order.
    pub fn list_ids(&self) -> Result<Vec<String>> {
        Ok(self.read_state()?.items.ids().map(str::to_string).collect())
    }

    /// The number of items.
    pub fn count(&self) -> Result<usize> {
        Ok(self.read_state()?.items.len())
    }

    fn views(&self, state: &State, hits: &[Hit], include: Include) -> Vec<ItemView> {
        hits.iter().map(|h| self.view(state, h.slot, Some(self.metric.finish(h.score)), include)).collect()
    }

    pub(crate) fn view(&self, state: &State, slot: Slot, distance: Option<f32>, include: Include) -> ItemView {
        let items = &state.items;
        ItemView {
            id: items.id(slot).to_string(),
            distance: distance.filter(|_| include.distance),
            metadata: include.metadata.then(|| items.metadata(slot).cloned()).flatten(),
            contents: include.contents.then(|| items.contents(slot).cloned()).flatten(),
            // A codes-only index's vectors come from the store (`Index::reading`).
            vector: (include.vector && state.holds_vectors()).then(|| state.vector(slot).to_vec()),
        }
    }
}

/// Fraction of items matching `filter`, from a fixed pseudo-random sample (a stride sample
/// aliased with periodic metadata, e.g. ids assigned round-robin to tenants); never below
/// half an item of the sample, so a filter no sampled item matches scans every list.
/// A filter that is exactly one indexed equality (`{ tenant }`) is counted instead.
fn estimate_selectivity(state: &State, filter: &Filter) -> f64 {
    let n = state.items.len();
    if n == 0 {
        return 1.0;
    }
    if let Some(planned) = filter.plan().and_then(|p| state.postings.restrict(p)) {
        if planned.exact && matches!(planned.plan, Plan::Term(..)) {
            return (state.postings.estimate(&planned.plan) as f64).max(0.5) / n as f64;
        }
    }
    let sample = n.min(SELECTIVITY_SAMPLE);
    let mut rng = SplitMix64(0x5e1e_c7ed);
    let matches =
        (0..sample).map(|_| Slot::at(rng.below(n))).filter(|&s| filter.matches(state.items.metadata(s))).count();
    (matches as f64).max(0.5) / sample as f64
}

/// The `k` nearest of the slots in `candidates` that pass `accept`, scored exactly as a flat
/// list scan scores them: in chunks on `pool` (so that one query alone uses every core), or
/// on the calling thread without one.
pub(crate) fn scan_candidates(
    state: &State,
    metric: crate::vector::Metric,
    q: &Query,
    candidates: &roaring::RoaringBitmap,
    accept: Accept,
    k: usize,
    pool: Option<&rayon::ThreadPool>,
) -> Vec<Hit> {
    let slots: Vec<Slot> = candidates.iter().map(Slot).collect();
    match pool {
        Some(pool) if slots.len() > CANDIDATE_CHUNK => pool.install(|| {
            slots
                .par_chunks(CANDIDATE_CHUNK)
                .map(|chunk| scan_slots(state, metric, q, chunk, accept, k))
                .reduce(|| TopK::new(k), TopK::merge)
                .into_sorted()
        }),
        _ => scan_slots(state, metric, q, &slots, accept, k).into_sorted(),
    }
}

fn scan_slots(
    state: &State,
    metric: crate::vector::Metric,
    q: &Query,
    slots: &[Slot],
    accept: Accept,
    k: usize,
) -> TopK {
    let mut top = TopK::new(k);
    let scorer = state.scorer(metric, q);
    // The candidates are scattered over the lists: prefetching a few ahead overlaps their
    // cache misses (1.5-3x faster at 19,500 candidates of 50 dimensions).
    for (i, &slot) in slots.iter().enumerate() {
        if let Some(&next) = slots.get(i + PREFETCH_AHEAD) {
            scorer.prefetch(next);
        }
        if accept.is_none_or(|ok| ok(slot)) {
            let score = scorer.score(slot);
            if score < top.threshold() {
                top.push(Hit { score, slot });
            }
        }
    }
    top
}
