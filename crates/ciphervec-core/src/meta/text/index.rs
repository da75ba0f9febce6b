//! The in-memory BM25 index of an index's text fields: per field, which slots hold each term
//! (a roaring bitmap) and each slot's term frequencies and length.
//!
//! Like the metadata index it is built from decrypted records at load and kept by every
//! write, never stored: the store learns no term, no document frequency, nothing of which
//! items share a word.
//!
//! Scoring (Okapi BM25, per field, summed over the fields searched and over the query's
//! terms, a repeated query term counting each time, as `rank_bm25` does):
//! `idf(t) · tf · (k1 + 1) / (tf + k1 · (1 − b + b · len / avglen))` with Lucene's
//! `idf(t) = ln(1 + (N − df + 0.5) / (df + 0.5))` (never negative), where `N` is the number of
//! items whose field holds text and `avglen` their mean length in terms.

use hashbrown::HashMap;

use roaring::RoaringBitmap;

use crate::meta::text::{analyzer, TextSpec};

/// The index of one text field.
#[derive(Default)]
struct FieldIndex {
    /// Term id → the slots whose field holds it (ids are dense: a vector, not a map).
    postings: Vec<RoaringBitmap>,
    /// Per slot: its terms and their frequencies, sorted by term id (empty: no text).
    docs: Vec<Vec<(u32, u32)>>,
    /// Per slot: its length in terms.
    lens: Vec<u32>,
    /// Per slot: whether its field holds text (an empty text counts: it is a document of
    /// length 0).
    has: Vec<bool>,
    /// Slots with text, and the sum of their lengths.
    with_text: u32,
    total_len: u64,
}

impl FieldIndex {
    /// Makes room for slots below `n`.
    fn grow(&mut self, n: usize) {
        if self.docs.len() < n {
            self.docs.resize_with(n, Vec::new);
            self.lens.resize(n, 0);
            self.has.resize(n, false);
        }
    }
}

/// The BM25 index of every text field of an index.
pub(crate) struct TextIndex {
    spec: TextSpec,
    /// Term → id. Ids are never reused (a term seen once keeps its id): terms are few next to
    /// items, and keeping them makes removal cheap.
    term_ids: HashMap<String, u32>,
    fields: Vec<FieldIndex>,
}

impl TextIndex {
    pub(crate) fn new(spec: TextSpec) -> TextIndex {
        let fields = spec.fields.iter().map(|_| FieldIndex::default()).collect();
        TextIndex { spec, term_ids: HashMap::new(), fields }
    }

    pub(crate) fn spec(&self) -> &TextSpec {
        &self.spec
    }

    /// Indexes `slot` with `texts[f]`, the text of field `f` (`None`: the item has none there);
    /// the slot must be empty (new, or [`TextIndex::clear`]ed).
    pub(crate) fn insert(&mut self, slot: u32, texts: &[Option<&str>]) {
        let terms: Vec<Option<Vec<String>>> = texts.iter().map(|t| t.map(analyzer::terms)).collect();
        self.insert_terms(slot, terms);
    }

    /// [`TextIndex::insert`] of texts already analyzed: `terms[f]` are field `f`'s terms.
    pub(crate) fn insert_terms(&mut self, slot: u32, terms: Vec<Option<Vec<String>>>) {
        let s = slot as usize;
        for (f, field_terms) in terms.into_iter().enumerate() {
            let Some(field_terms) = field_terms else { continue };
            let len = field_terms.len() as u32;
            let mut ids: Vec<u32> = field_terms
                .into_iter()
                .map(|term| {
                    let next = self.term_ids.len() as u32;
                    *self.term_ids.entry(term).or_insert(next)
                })
                .collect();
            ids.sort_unstable();
            let mut doc: Vec<(u32, u32)> = Vec::new();
            for id in ids {
                match doc.last_mut() {
                    Some((last, tf)) if *last == id => *tf += 1,
                    _ => doc.push((id, 1)),
                }
            }
            let field = &mut self.fields[f];
            field.grow(s + 1);
            if field.postings.len() < self.term_ids.len() {
                field.postings.resize_with(self.term_ids.len(), RoaringBitmap::new);
            }
            for &(term, _) in &doc {
                field.postings[term as usize].insert(slot);
            }
            field.docs[s] = doc;
            field.lens[s] = len;
            field.has[s] = true;
            field.with_text += 1;
            field.total_len += u64::from(len);
        }
    }

    /// Removes whatever `slot` holds.
    pub(crate) fn clear(&mut self, slot: u32) {
        let s = slot as usize;
        for field in &mut self.fields {
            if !field.has.get(s).copied().unwrap_or(false) {
                continue;
            }
            for (term, _) in std::mem::take(&mut field.docs[s]) {
                field.postings[term as usize].remove(slot);
            }
            field.with_text -= 1;
            field.total_len -= u64::from(field.lens[s]);
            field.lens[s] = 0;
            field.has[s] = false;
        }
    }

    /// Moves what slot `from` holds to the empty slot `to` (the working set moved its item).
    pub(crate) fn relabel(&mut self, from: u32, to: u32) {
        let (f, t) = (from as usize, to as usize);
        for field in &mut self.fields {
            if !field.has.get(f).copied().unwrap_or(false) {
                continue;
            }
            field.grow(t + 1);
            let doc = std::mem::take(&mut field.docs[f]);
            for (term, _) in &doc {
                let bits = &mut field.postings[*term as usize];
                bits.remove(from);
                bits.insert(to);
            }
            field.docs[t] = doc;
            field.lens[t] = std::mem::take(&mut field.lens[f]);
            field.has[t] = std::mem::take(&mut field.has[f]);
        }
    }

    /// Drops slots from `n` on (all empty: the working set shrank to `n` items).
    pub(crate) fn truncate(&mut self, n: usize) {
        for field in &mut self.fields {
            debug_assert!(field.has.iter().skip(n).all(|h| !h), "truncating slots that hold text");
            field.docs.truncate(n);
            field.lens.truncate(n);
            field.has.truncate(n);
        }
    }

    /// BM25 scores of the slots that hold at least one of `query`'s terms in one of `fields`
    /// (indexes into the spec's fields; all if empty), or every term when `require_all`.
    pub(crate) fn scores(&self, query: &[String], fields: &[usize], require_all: bool) -> HashMap<u32, f64> {
        let all: Vec<usize> = (0..self.fields.len()).collect();
        let fields = if fields.is_empty() { &all[..] } else { fields };
        let (k1, b) = (f64::from(self.spec.k1), f64::from(self.spec.b));
        let mut scores: HashMap<u32, f64> = HashMap::new();
        let ids: Vec<Option<u32>> = query.iter().map(|t| self.term_ids.get(t).copied()).collect();
        for &f in fields {
            let field = &self.fields[f];
            if field.with_text == 0 {
                continue;
            }
            let n = f64::from(field.with_text);
            let avg = field.total_len as f64 / n;
            for id in ids.iter().flatten() {
                let Some(bits) = field.postings.get(*id as usize).filter(|b| !b.is_empty()) else { continue };
                let df = bits.len() as f64;
                let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
                for slot in bits {
                    let doc = &field.docs[slot as usize];
                    let tf = doc.binary_search_by_key(id, |&(t, _)| t).map_or(0, |i| doc[i].1) as f64;
                    let len = f64::from(field.lens[slot as usize]);
                    let part = idf * tf * (k1 + 1.0) / (tf + k1 * (1.0 - b + b * len / avg));
                    *scores.entry(slot).or_default() += part;
                }
            }
        }
        if require_all {
            let mut distinct: Vec<Option<u32>> = ids.clone();
            distinct.sort_unstable();
            distinct.dedup();
            scores.retain(|&slot, _| {
                distinct.iter().all(|id| {
                    id.is_some_and(|id| {
                        fields
                            .iter()
                            .any(|&f| self.fields[f].postings.get(id as usize).is_some_and(|b| b.contains(slot)))
                    })
                })
            });
        }
        scores
    }

    /// Heap bytes held (an estimate: postings, per-slot term lists, the term table).
    pub(crate) fn heap_bytes(&self) -> usize {
        let terms: usize = self.term_ids.keys().map(|t| t.capacity() + 40).sum();
        let fields: usize = self
            .fields
            .iter()
            .map(|f| {
                let postings: usize = f.postings.iter().map(|b| b.serialized_size() + 48).sum();
                let docs: usize = f.docs.iter().map(|d| d.capacity() * 8 + 24).sum();
                postings + docs + f.lens.capacity() * 4 + f.has.capacity()
            })
            .sum();
        terms + fields
    }
}
