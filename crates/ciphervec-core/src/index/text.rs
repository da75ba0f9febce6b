//! Full-text search (BM25) and hybrid search (vector + text, fused by weighted reciprocal
//! rank fusion) over an index's text fields.

use std::cmp::Ordering;

use rayon::prelude::*;
use roaring::RoaringBitmap;

use crate::error::{Error, Result};
use crate::index::read::{scan_candidates, ItemView, Search};
use crate::index::state::State;
use crate::index::validate::{check_n_probes, check_query, check_rerank, check_top_k, MAX_TOP_K};
use crate::index::Index;
use crate::meta::text::{analyzer, MAX_QUERY_TEXT};
use crate::meta::Filter;
use crate::vector::scan::Query;
use crate::vector::Slot;

/// A full-text query.
#[derive(Debug, Clone, Copy)]
pub struct TextQuery<'a> {
    /// The query text (analyzed like the documents).
    pub text: &'a str,
    /// The text fields to search (`None`: all of the index's).
    pub fields: Option<&'a [String]>,
    /// Only items holding every distinct term of the query.
    pub require_all: bool,
}

/// How a hybrid query fuses its two rankings: `alpha / (rrf_k + vector rank) + (1 − alpha) /
/// (rrf_k + text rank)`, ranks from 1, a leg an item is absent from adding nothing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fusion {
    /// Weight of the vector ranking, 0 (text only) to 1 (vector only); default 0.5.
    pub alpha: f64,
    /// The rank offset; default 60.
    pub rrf_k: f64,
}

impl Default for Fusion {
    fn default() -> Self {
        Fusion { alpha: 0.5, rrf_k: 60.0 }
    }
}

/// Each leg of a hybrid query ranks this many times `topK` candidates.
pub const HYBRID_CANDIDATES: usize = 3;

/// One full-text hit: the item's id and its BM25 score (higher is better).
#[derive(Debug, Clone, PartialEq)]
pub struct TextHit {
    /// The item's id.
    pub id: String,
    /// Its BM25 score.
    pub score: f64,
}

impl Index {
    /// The `k` items that best match `query` by BM25, best first (ties by id), among those
    /// passing `filter`. `ERR_INVALID_ARGUMENT` for an index without text fields, an unknown
    /// field, or an empty or over-long text.
    pub fn text_search(&self, query: &TextQuery<'_>, filter: Option<&Filter>, k: usize) -> Result<Vec<TextHit>> {
        check_top_k(k)?;
        let state = self.read_state()?;
        let hits = self.text_hits(&state, query, filter, k)?;
        Ok(hits.into_iter().map(|(slot, score)| TextHit { id: state.items.id(slot).to_string(), score }).collect())
    }

    /// The `k` best items for `vector` and `query` together, best first, each with its fused
    /// score (see [`Fusion`]). Both legs see `search.filter`; each ranks
    /// [`HYBRID_CANDIDATES`] × `k` candidates. Distances, when `include` asks, are exact for
    /// every result, also those only the text leg found.
    pub fn hybrid_query(
        &self,
        vector: &[f32],
        query: &TextQuery<'_>,
        fusion: Fusion,
        search: &Search,
    ) -> Result<Vec<(ItemView, f64)>> {
        check_hybrid(search, fusion)?;
        self.reading(search.include, |state| {
            check_query(vector, self.metric, state.items.dim(), &self.name, || "the query vector".into())?;
            self.hybrid_in(state, vector, query, fusion, search)
        })
    }

    /// [`Index::hybrid_query`] for each vector with its text (`texts[i]` for `vectors[i]`),
    /// in parallel over the queries, all against one state of the index.
    pub fn hybrid_query_batch(
        &self,
        vectors: &[Vec<f32>],
        texts: &[String],
        fields: Option<&[String]>,
        fusion: Fusion,
        search: &Search,
    ) -> Result<Vec<Vec<(ItemView, f64)>>> {
        check_hybrid(search, fusion)?;
        if texts.len() != vectors.len() {
            return Err(Error::invalid(format!(
                "texts has {} entries for {} query vectors: give one text per vector",
                texts.len(),
                vectors.len()
            )));
        }
        self.reading(search.include, |state| {
            for (i, v) in vectors.iter().enumerate() {
                check_query(v, self.metric, state.items.dim(), &self.name, || format!("query vector {i}"))?;
            }
            self.pool().install(|| {
                vectors
                    .par_iter()
                    .zip(texts)
                    .map(|(v, text)| {
                        let q = TextQuery { text, fields, require_all: false };
                        self.hybrid_in(state, v, &q, fusion, search)
                    })
                    .collect()
            })
        })
    }

    /// One hybrid query against `state` (its checks passed).
    fn hybrid_in(
        &self,
        state: &State,
        vector: &[f32],
        query: &TextQuery<'_>,
        fusion: Fusion,
        search: &Search,
    ) -> Result<Vec<(ItemView, f64)>> {
        let legs = (search.k * HYBRID_CANDIDATES).min(MAX_TOP_K);
        let text = self.text_hits(state, query, search.filter, legs)?;
        if state.items.is_empty() {
            return Ok(Vec::new());
        }
        let nearest = self.nearest(state, vector, &Search { k: legs, ..*search });
        let mut fused: std::collections::HashMap<u32, (f64, Option<f32>)> = std::collections::HashMap::new();
        for (rank, hit) in nearest.iter().enumerate() {
            let e = fused.entry(hit.slot.0).or_default();
            e.0 += fusion.alpha / (fusion.rrf_k + (rank + 1) as f64);
            e.1 = Some(self.metric.finish(hit.score));
        }
        for (rank, (slot, _)) in text.iter().enumerate() {
            fused.entry(slot.0).or_default().0 += (1.0 - fusion.alpha) / (fusion.rrf_k + (rank + 1) as f64);
        }
        let mut ranked: Vec<(Slot, f64, Option<f32>)> = fused.into_iter().map(|(s, (f, d))| (Slot(s), f, d)).collect();
        ranked.sort_by(|a, b| by_score(state, (a.0, a.1), (b.0, b.1)));
        ranked.truncate(search.k);
        if search.include.distance {
            // Items only the text leg found: their exact distances.
            let missing: RoaringBitmap = ranked.iter().filter(|r| r.2.is_none()).map(|r| r.0 .0).collect();
            if !missing.is_empty() {
                let q = Query::new(vector);
                let exact = scan_candidates(state, self.metric, &q, &missing, None, missing.len() as usize, None);
                for hit in exact {
                    if let Some(r) = ranked.iter_mut().find(|r| r.0 == hit.slot) {
                        r.2 = Some(self.metric.finish(hit.score));
                    }
                }
            }
        }
        Ok(ranked.into_iter().map(|(slot, score, d)| (self.view(state, slot, d, search.include), score)).collect())
    }

    /// BM25 hits of `query`, best first, at most `k`.
    fn text_hits(
        &self,
        state: &State,
        query: &TextQuery<'_>,
        filter: Option<&Filter>,
        k: usize,
    ) -> Result<Vec<(Slot, f64)>> {
        let Some(text) = &state.text else {
            return Err(Error::invalid(format!(
                "index '{}' has no text fields: declare textFields when creating it to search text",
                self.name
            )));
        };
        if query.text.trim().is_empty() {
            return Err(Error::invalid("the query text is empty"));
        }
        if query.text.len() > MAX_QUERY_TEXT {
            return Err(Error::invalid(format!(
                "the query text is {} bytes, more than the {MAX_QUERY_TEXT} allowed",
                query.text.len()
            )));
        }
        let mut fields = Vec::new();
        for f in query.fields.unwrap_or(&[]) {
            match text.spec().position(f) {
                Some(i) => fields.push(i),
                None => {
                    return Err(Error::invalid(format!(
                        "'{f}' is not a text field of index '{}' (its text fields: {})",
                        self.name,
                        text.spec().fields.join(", ")
                    )))
                }
            }
        }
        if query.fields.is_some_and(<[String]>::is_empty) {
            return Err(Error::invalid("textFields is empty: name at least one field, or leave it out for all"));
        }
        let terms = analyzer::terms(query.text);
        let filter = filter.filter(|f| !f.is_match_all());
        let mut hits: Vec<(Slot, f64)> = text
            .scores(&terms, &fields, query.require_all)
            .into_iter()
            .map(|(s, score)| (Slot(s), score))
            .filter(|&(slot, _)| filter.is_none_or(|f| f.matches(state.items.metadata(slot))))
            .collect();
        hits.sort_by(|&a, &b| by_score(state, a, b));
        hits.truncate(k);
        Ok(hits)
    }
}

/// The checks of a hybrid query's options.
fn check_hybrid(search: &Search, fusion: Fusion) -> Result<()> {
    check_top_k(search.k)?;
    check_n_probes(search.n_probes)?;
    check_rerank(search.rerank)?;
    if !(0.0..=1.0).contains(&fusion.alpha) {
        return Err(Error::invalid(format!("alpha must be between 0 and 1, got {}", fusion.alpha)));
    }
    if !(fusion.rrf_k.is_finite() && fusion.rrf_k >= 0.0) {
        return Err(Error::invalid(format!("rrfK must be a number of 0 or more, got {}", fusion.rrf_k)));
    }
    Ok(())
}

/// Higher score first; equal scores by id, so results do not depend on slots.
fn by_score(state: &State, a: (Slot, f64), b: (Slot, f64)) -> Ordering {
    b.1.partial_cmp(&a.1).unwrap_or(Ordering::Equal).then_with(|| state.items.id(a.0).cmp(state.items.id(b.0)))
}
