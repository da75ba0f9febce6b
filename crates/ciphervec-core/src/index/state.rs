//! The in-memory state of an index: the working set, once trained its inverted lists, and the
//! metadata index, changed together so they never disagree about which slot holds which
//! item. Vectors are held once: by the working set until training, by the lists after it
//! (or, for a codes-only index, not at all once trained: only their codes).

use std::borrow::Cow;

use rayon::prelude::*;

use crate::format::record::Contents;
use crate::format::record::Record;
use crate::index::items::Items;
use crate::index::stored::Stored;
use crate::meta::postings::Postings;
use crate::meta::text::index::TextIndex;
use crate::meta::text::{analyzer, metadata_text, TextSpec, CONTENTS_FIELD};
use crate::vector::codes::Prepared;
use crate::vector::exhaustive::Rows;
use crate::vector::ivf::Ivf;
use crate::vector::scan::{FlatScanner, Query, Scanner};
use crate::vector::{kernels, ListId, Metric, Slot};

pub(crate) struct State {
    pub(crate) items: Items,
    pub(crate) ivf: Option<Ivf>,
    /// Which slots hold which metadata values (see `meta::postings`).
    pub(crate) postings: Postings,
    /// The BM25 index of the text fields, if the index has any (see `meta::text`).
    pub(crate) text: Option<TextIndex>,
}

/// The vector that decides an item's list: unit length under cosine (so k-means clusters
/// directions), the vector itself otherwise.
pub(crate) fn placement(metric: Metric, v: &[f32]) -> Cow<'_, [f32]> {
    if metric != Metric::Cosine {
        return Cow::Borrowed(v);
    }
    let norm = kernels::norm_sqr(v).sqrt();
    Cow::Owned(v.iter().map(|x| x / norm).collect())
}

impl State {
    /// The state of a working set, its metadata index built from every item's metadata (but
    /// the `unindexed` paths) and, with text fields, its text index from their texts.
    /// With a `pool`, the texts are analyzed on it (stemming is most of the text index's
    /// cost: one thread took ~1 s of a 1.1 s load of 118k short texts).
    pub(crate) fn new(
        items: Items,
        text: Option<&TextSpec>,
        unindexed: &[String],
        pool: Option<&rayon::ThreadPool>,
    ) -> State {
        let postings = match pool {
            Some(pool) => Postings::build(unindexed, items.len(), &|s| items.metadata(Slot::at(s)), pool),
            None => {
                let mut postings = Postings::leaving_out(unindexed);
                for s in 0..items.len() {
                    postings.insert(s as u32, items.metadata(Slot::at(s)));
                }
                postings
            }
        };
        let mut state = State { items, ivf: None, postings, text: None };
        let Some(spec) = text else { return state };
        let mut index = TextIndex::new(spec.clone());
        let n = state.items.len();
        let analyze = |s: usize| -> Vec<Option<Vec<String>>> {
            state.texts(spec, Slot::at(s)).into_iter().map(|t| t.map(analyzer::terms)).collect()
        };
        // In blocks, so the analyzed terms of only two blocks are held at a time. With a
        // pool, inserting a block's terms (serial: one term dictionary) overlaps analyzing
        // the next block on the other threads.
        const BLOCK: usize = 16_384;
        let block = |start: usize| start..(start + BLOCK).min(n);
        let insert = |index: &mut TextIndex, start: usize, terms: Vec<Vec<Option<Vec<String>>>>| {
            for (s, t) in block(start).zip(terms) {
                index.insert_terms(s as u32, t);
            }
        };
        match pool {
            Some(pool) => pool.install(|| {
                let analyze_block = |start: usize| -> Vec<_> { block(start).into_par_iter().map(analyze).collect() };
                let mut next = (n > 0).then(|| analyze_block(0));
                for start in (0..n).step_by(BLOCK) {
                    let terms = next.take().expect("each block is analyzed before its insert");
                    let following = start + BLOCK;
                    next = rayon::join(
                        || insert(&mut index, start, terms),
                        || (following < n).then(|| analyze_block(following)),
                    )
                    .1;
                }
            }),
            None => {
                for start in (0..n).step_by(BLOCK) {
                    insert(&mut index, start, block(start).map(analyze).collect());
                }
            }
        }
        state.text = Some(index);
        state
    }

    /// The texts of `slot`'s item, one per text field (`None` where it holds no string).
    fn texts<'s>(&'s self, spec: &TextSpec, slot: Slot) -> Vec<Option<&'s str>> {
        spec.fields
            .iter()
            .map(|f| match f.as_str() {
                CONTENTS_FIELD => match self.items.contents(slot).map(|c| &**c) {
                    Some(Contents::Text(t)) => Some(t.as_str()),
                    _ => None,
                },
                path => metadata_text(self.items.metadata(slot), path),
            })
            .collect()
    }

    /// Adds `slot`'s texts to the text index (the slot holds none there yet).
    fn index_text(&mut self, slot: Slot) {
        if self.text.is_none() {
            return;
        }
        // The texts borrow the working set; the index is taken out meanwhile.
        let mut text = self.text.take().expect("checked above");
        text.insert(slot.0, &self.texts(text.spec(), slot));
        self.text = Some(text);
    }

    /// Whether the full vectors are in memory (always, but in a trained codes-only index).
    pub(crate) fn holds_vectors(&self) -> bool {
        self.ivf.as_ref().is_none_or(|ivf| ivf.lists.holds_vectors())
    }

    /// A slot's vector norm, wherever it is held (while [`State::holds_vectors`]).
    pub(crate) fn norm(&self, slot: Slot) -> f32 {
        match &self.ivf {
            Some(ivf) => ivf.lists.norm(slot),
            None => self.items.norms()[slot.index()],
        }
    }

    /// A slot's vector, wherever it is held (while [`State::holds_vectors`]).
    pub(crate) fn vector(&self, slot: Slot) -> &[f32] {
        match &self.ivf {
            Some(ivf) => ivf.vector(slot),
            None => self.items.vector(slot),
        }
    }

    /// A slot's vector, or in a codes-only index the vector its code decodes to: good enough
    /// for a training sample, never for a result.
    pub(crate) fn vector_or_decoded(&self, slot: Slot) -> Cow<'_, [f32]> {
        match &self.ivf {
            Some(ivf) if !ivf.lists.holds_vectors() => Cow::Owned(ivf.lists.decoded(slot)),
            _ => Cow::Borrowed(self.vector(slot)),
        }
    }

    /// Scores slots for one query `q` as a list scan scores them: exactly on the vectors, or
    /// by the codes in a codes-only index (the query prepared once here).
    pub(crate) fn scorer<'a>(&'a self, metric: Metric, q: &'a Query<'a>) -> SlotScorer<'a> {
        let prepared = match &self.ivf {
            Some(ivf) if !ivf.lists.holds_vectors() => ivf.lists.codec().map(|c| (ivf, c.prepare(q.vector))),
            _ => None,
        };
        SlotScorer { state: self, metric, q, prepared }
    }

    /// The working set's vectors and norms, for exhaustive search (untrained only).
    pub(crate) fn rows(&self) -> Rows<'_> {
        Rows { vectors: self.items.vectors(), norms: self.items.norms() }
    }

    /// Inserts or replaces an item stored as `stored`. Under IVF, `rec.list` must name a
    /// list (callers compute it before sealing, so the list id is inside the ciphertext), and
    /// the vector goes to that list only.
    pub(crate) fn upsert(&mut self, mut rec: Record, stored: Stored) {
        if let Some(old) = self.items.slot(&rec.id) {
            self.postings.remove(old.0, self.items.metadata(old));
            if let Some(text) = &mut self.text {
                text.clear(old.0);
            }
        }
        let list = rec.list;
        match &mut self.ivf {
            None => {
                let slot = self.items.upsert(rec, stored);
                self.postings.insert(slot.0, self.items.metadata(slot));
                self.index_text(slot);
            }
            Some(ivf) => {
                let list = list.expect("a trained index assigns every item a list");
                let vector = std::mem::take(&mut rec.vector);
                let slot = self.items.upsert(rec, stored);
                ivf.lists.remove(slot);
                ivf.lists.insert(slot, list, &vector, kernels::norm_sqr(&vector).sqrt());
                self.postings.insert(slot.0, self.items.metadata(slot));
                self.index_text(slot);
            }
        }
    }

    /// Removes an item; returns whether it existed.
    pub(crate) fn remove(&mut self, id: &str) -> bool {
        let Some(gone) = self.items.slot(id) else { return false };
        self.postings.remove(gone.0, self.items.metadata(gone));
        // The last item moves into the hole: its postings move with it.
        let last = Slot::at(self.items.len() - 1);
        if last != gone {
            self.postings.remove(last.0, self.items.metadata(last));
        }
        if let Some(text) = &mut self.text {
            text.clear(gone.0);
        }
        let Some((slot, moved_from)) = self.items.remove(id) else { return false };
        if moved_from.is_some() {
            self.postings.insert(slot.0, self.items.metadata(slot));
        }
        if let Some(text) = &mut self.text {
            if let Some(from) = moved_from {
                text.relabel(from.0, slot.0);
            }
            text.truncate(self.items.len());
        }
        if let Some(ivf) = &mut self.ivf {
            ivf.lists.remove(slot);
            if let Some(from) = moved_from {
                ivf.lists.relabel(from, slot);
            }
        }
        true
    }

    /// Fills `ivf` with every item (whose vectors `vectors` gives), in the list given by
    /// `lists[slot]`. Read-only, so it can run under a read lock; [`State::swap_ivf`] then
    /// takes the write lock only briefly.
    pub(crate) fn fill_ivf(
        &self,
        ivf: &mut Ivf,
        vectors: &FullVectors<'_>,
        lists: &[ListId],
        pool: &rayon::ThreadPool,
    ) {
        match (&self.ivf, vectors) {
            (None, FullVectors::Held(_)) => ivf.lists.fill(lists, &|s| vectors.get(s), self.items.norms(), pool),
            _ => {
                // Retraining: the vectors are in the old lists, or read back from the store.
                let norms: Vec<f32> = pool.install(|| {
                    (0..self.items.len())
                        .into_par_iter()
                        .map(|s| kernels::norm_sqr(vectors.get(Slot::at(s))).sqrt())
                        .collect()
                });
                ivf.lists.fill(lists, &|s| vectors.get(s), &norms, pool)
            }
        }
    }

    /// Installs lists built by [`State::fill_ivf`] from this same working set; they now hold
    /// the only copy of the vectors.
    pub(crate) fn swap_ivf(&mut self, ivf: Ivf, lists: &[ListId]) {
        for (slot, &list) in lists.iter().enumerate() {
            self.items.set_list(Slot::at(slot), list);
        }
        self.ivf = Some(ivf);
        self.items.release_vectors();
    }

    /// After a load: rebuilds lists from the list ids stored in the records, placing any
    /// record without a valid list by its nearest centroid.
    /// A load that encoded every record (a codes-only index, `load::Encoder`) placed each
    /// in a valid list already; its codes move into the lists.
    pub(crate) fn rebuild_ivf(&mut self, metric: Metric, ivf: Ivf, pool: &rayon::ThreadPool) {
        let mut ivf = ivf;
        if self.items.has_codes() {
            let lists: Vec<ListId> =
                (0..self.items.len()).map(|s| self.items.list(Slot::at(s)).expect("the loader placed it")).collect();
            let (codes, code_norms) = self.items.take_codes();
            ivf.lists.fill_codes(&lists, &codes, &code_norms, pool);
            drop((codes, code_norms));
            self.swap_ivf(ivf, &lists);
            return;
        }
        let n_lists = ivf.n_lists();
        let lists: Vec<ListId> = (0..self.items.len())
            .map(|s| match self.items.list(Slot::at(s)) {
                Some(l) if l.index() < n_lists => l,
                _ => ivf.quantizer.nearest(&placement(metric, self.items.vector(Slot::at(s)))),
            })
            .collect();
        // The working set's column becomes the lists' arena (reordered in place).
        let (vectors, norms) = self.items.take_vectors();
        ivf.lists.fill_from_column(&lists, vectors, &norms, pool);
        drop(norms);
        self.swap_ivf(ivf, &lists);
    }
}

/// Every item's full vector, for a rewrite that re-seals the records (compaction, training):
/// the state's own while it holds them, else read back from the store (a codes-only index,
/// see `index::resident`).
pub(crate) enum FullVectors<'s> {
    Held(&'s State),
    /// Row-major in slot order.
    Read {
        dim: usize,
        rows: Vec<f32>,
    },
}

impl FullVectors<'_> {
    /// A slot's vector.
    pub(crate) fn get(&self, slot: Slot) -> &[f32] {
        match self {
            FullVectors::Held(state) => state.vector(slot),
            FullVectors::Read { dim, rows } => &rows[slot.index() * dim..(slot.index() + 1) * dim],
        }
    }

    /// All `n` vectors in slot order: borrowed when they are already a column, else gathered.
    pub(crate) fn in_slot_order(&self, n: usize, pool: &rayon::ThreadPool) -> Cow<'_, [f32]> {
        match self {
            FullVectors::Read { rows, .. } => Cow::Borrowed(rows),
            FullVectors::Held(state) if state.ivf.is_none() => Cow::Borrowed(state.items.vectors()),
            FullVectors::Held(state) => {
                let dim = state.items.dim();
                let mut out = vec![0f32; n * dim];
                pool.install(|| {
                    out.par_chunks_mut(dim).enumerate().for_each(|(s, row)| row.copy_from_slice(self.get(Slot::at(s))));
                });
                Cow::Owned(out)
            }
        }
    }
}

/// Scores slots for one query (see [`State::scorer`]).
pub(crate) struct SlotScorer<'a> {
    state: &'a State,
    metric: Metric,
    q: &'a Query<'a>,
    /// A codes-only index's lists and the query prepared for their codec.
    prepared: Option<(&'a Ivf, Prepared)>,
}

impl SlotScorer<'_> {
    /// `slot`'s score: the same kernel as a list scan, so a pair's score is the same on every
    /// search path.
    pub(crate) fn score(&self, slot: Slot) -> f32 {
        if let Some((ivf, prepared)) = &self.prepared {
            return ivf.lists.code_score(self.metric, self.q, prepared, slot);
        }
        let mut out = [0f32];
        // Only cosine reads the norm: another scattered read per candidate otherwise.
        let norm = [if self.metric == Metric::Cosine { self.state.norm(slot) } else { 0.0 }];
        FlatScanner::new(self.metric, self.q, self.state.vector(slot), &norm).score(0, &mut out);
        out[0]
    }

    /// Hints that `slot` will be scored soon (its vector is likely a cache miss).
    pub(crate) fn prefetch(&self, slot: Slot) {
        if self.prepared.is_none() {
            kernels::prefetch(self.state.vector(slot));
        }
    }
}
