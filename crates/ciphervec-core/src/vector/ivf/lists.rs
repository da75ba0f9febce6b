//! The inverted lists: each holds the slots and `f32` vectors (with their norms) of the items
//! whose nearest centroid is its own, stored contiguously like FAISS's IndexIVFFlat, so a
//! probe is one sequential scan. Once an index is trained these are the only copy of its
//! vectors. `loc` maps a working-set slot to its place in a list, so finding, removing or
//! moving a slot is O(1). An index type with codes (`vector::codes`) keeps each list's codes
//! beside its vectors, in the same order: the scan reads the codes, the exact re-rank and
//! `get` the vectors. Lists that keep only codes ([`Resident::Codes`]) hold no vectors or
//! norms at all: the codes are then the only copy in memory.
//!
//! The vectors of lists built together ([`InvertedLists::fill`], at training and load) are
//! one allocation, list after list (the *arena*): one `Vec` per list had each rounded up by
//! the allocator (64 KiB slices for a list of 161 KB at 384-d: 29.6 MB for 1024 lists, made
//! resident by transparent huge pages), and a load held the working set's vector column and
//! the lists' copies at once. A list that grows past its room in the arena moves its vectors
//! into a `Vec` of its own; the room it leaves is reclaimed by the next fill.

use std::sync::Arc;

use rayon::prelude::*;

use crate::vector::codes::{CodeScanner, Codec, Prepared, Resident};
use crate::vector::ivf::ListId;
use crate::vector::kernels;
use crate::vector::scan::{FlatScanner, Query, Scanner};
use crate::vector::{Metric, Slot};

#[derive(Default, Clone)]
pub(crate) struct List {
    pub(crate) slots: Vec<Slot>,
    /// Where the vectors are: rows `start..start + room` of the arena, or (`None`) `vectors`.
    span: Option<Span>,
    vectors: Vec<f32>,
    norms: Vec<f32>,
    /// The codes of the vectors (empty without a codec), `code_size` bytes each.
    codes: Vec<u8>,
    /// The L2 norms of the vectors the codes decode to.
    code_norms: Vec<f32>,
}

/// A list's rows in the arena: from row `start`, room for `room` rows.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    room: usize,
}

impl List {
    /// Appends the code of `v` (of `codec`, if any; `base` is the list's centroid for a
    /// residual codec).
    fn push_code(&mut self, codec: Option<&Codec>, base: Option<&[f32]>, v: &[f32]) {
        if let Some(codec) = codec {
            let norm = codec.encode(v, base, &mut self.codes);
            self.code_norms.push(norm);
        }
    }
}

/// Heap bytes of [`InvertedLists`], by structure.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ListBytes {
    pub(crate) vectors: usize,
    pub(crate) norms: usize,
    pub(crate) slots: usize,
    /// Codes, their norms and the codec's trained parameters.
    pub(crate) codes: usize,
}

/// Where a slot is: its list and its position there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Place {
    list: ListId,
    pos: u32,
}

/// The lists of an IVF index (see the module docs).
#[derive(Clone)]
pub(crate) struct InvertedLists {
    dim: usize,
    codec: Option<Codec>,
    /// Only the codes are kept (no `f32` vectors or norms).
    codes_only: bool,
    /// The lists' centroids (`n_lists × dim`, shared with the quantizer) when the codec codes
    /// residuals from them.
    bases: Option<Arc<[f32]>>,
    /// The vectors of the lists built by the last fill, list after list (see the module docs).
    arena: Vec<f32>,
    /// Arena rows no list uses any more: lists that outgrew their room moved out.
    dead_rows: usize,
    lists: Vec<List>,
    /// slot → its place, `None` for a slot in no list.
    loc: Vec<Option<Place>>,
}

impl InvertedLists {
    /// Empty lists of `dim`-dimensional vectors, one per centroid (`n_lists × dim`), coded by
    /// `codec` if given, keeping what `resident` says (codes only needs a codec).
    pub(crate) fn new(dim: usize, centroids: Arc<[f32]>, codec: Option<Codec>, resident: Resident) -> InvertedLists {
        let codes_only = resident == Resident::Codes;
        assert!(codec.is_some() || !codes_only, "codes-only lists need a codec");
        let n_lists = centroids.len() / dim;
        let bases = codec.as_ref().filter(|c| c.is_residual()).map(|_| centroids);
        let lists = vec![List::default(); n_lists];
        InvertedLists { dim, codec, codes_only, bases, arena: Vec::new(), dead_rows: 0, lists, loc: Vec::new() }
    }

    /// The centroid a residual codec codes list `l`'s vectors from (`None` for other codecs).
    fn base(&self, l: ListId) -> Option<&[f32]> {
        self.bases.as_ref().map(|b| &b[l.index() * self.dim..(l.index() + 1) * self.dim])
    }

    /// Appends the code `v` has in list `l` (coded lists only); returns the norm of the
    /// vector the code decodes to. For a loader that encodes records as it reads them.
    pub(crate) fn encode_in(&self, l: ListId, v: &[f32], out: &mut Vec<u8>) -> f32 {
        self.codec.as_ref().expect("coded lists").encode(v, self.base(l), out)
    }

    /// `q · centroid` of list `l` for a residual codec, else 0: what a code scanner adds.
    fn base_dot(&self, l: ListId, q: &Query) -> f32 {
        self.base(l).map_or(0.0, |b| kernels::dot(q.vector, b))
    }

    /// List `l`'s vectors, row-major.
    fn rows<'a>(&'a self, l: &'a List) -> &'a [f32] {
        match l.span {
            Some(Span { start, .. }) => &self.arena[start * self.dim..(start + l.slots.len()) * self.dim],
            None => &l.vectors,
        }
    }

    /// The scanner of list `l`'s vectors for `query` (lists that hold vectors).
    pub(crate) fn scanner<'a>(&'a self, l: ListId, metric: Metric, query: &'a Query<'a>) -> FlatScanner<'a> {
        let list = &self.lists[l.index()];
        FlatScanner::new(metric, query, self.rows(list), &list.norms)
    }

    /// The scanner of list `l`'s codes for `query`, `prepared` by the lists' codec.
    pub(crate) fn code_scanner<'a>(
        &'a self,
        l: ListId,
        metric: Metric,
        query: &'a Query<'a>,
        prepared: &'a Prepared,
    ) -> CodeScanner<'a> {
        let list = &self.lists[l.index()];
        let codec = self.codec.as_ref().expect("coded lists");
        CodeScanner::new(metric, codec, query, prepared, self.base_dot(l, query), &list.codes, &list.code_norms)
    }

    /// Whether the lists hold the `f32` vectors (else only their codes).
    pub(crate) fn holds_vectors(&self) -> bool {
        !self.codes_only
    }

    /// The codec of the lists' codes, if they have any.
    pub(crate) fn codec(&self) -> Option<&Codec> {
        self.codec.as_ref()
    }

    pub(crate) fn list(&self, l: ListId) -> &List {
        &self.lists[l.index()]
    }

    /// Fills empty lists with every slot `s` of a working set into list `lists[s]`, in slot
    /// order within each list (the lists one [`InvertedLists::insert`] per slot would build):
    /// the vectors copied into one arena of exactly their size, the other columns per list at
    /// their exact size, in parallel on `pool`. `vector` gives a slot's vector (read where it
    /// lies, so a retraining reads the old lists without a slot-order copy of them). `norms`
    /// are not read by codes-only lists.
    pub(crate) fn fill<'v>(
        &mut self,
        lists: &[ListId],
        vector: &(dyn Fn(Slot) -> &'v [f32] + Sync),
        norms: &[f32],
        pool: &rayon::ThreadPool,
    ) {
        let dim = self.dim;
        let (order, starts) = self.place_all(lists);
        let mut arena = Vec::new();
        if !self.codes_only {
            arena = vec![0f32; lists.len() * dim];
            pool.install(|| {
                arena.par_chunks_mut(dim.max(1) * 1024).enumerate().for_each(|(c, rows)| {
                    for (r, out) in rows.chunks_exact_mut(dim).enumerate() {
                        out.copy_from_slice(vector(order[c * 1024 + r]));
                    }
                })
            });
        }
        self.build(arena, &order, &starts, norms, Some(vector), pool);
    }

    /// [`InvertedLists::fill`] from a column of vectors (and norms) it may reorder and keep:
    /// the column becomes the arena, so the vectors are never held twice.
    pub(crate) fn fill_from_column(
        &mut self,
        lists: &[ListId],
        mut column: Vec<f32>,
        norms: &[f32],
        pool: &rayon::ThreadPool,
    ) {
        if self.codes_only {
            let dim = self.dim;
            return self.fill(lists, &|s| &column[s.index() * dim..(s.index() + 1) * dim], norms, pool);
        }
        let dim = self.dim;
        let (order, starts) = self.place_all(lists);
        // Row `to` takes the row of slot `order[to]`: follow each cycle of the permutation,
        // one row in hand (a flag per row says which are in place).
        let mut done = vec![false; order.len()];
        let mut hand = vec![0f32; dim];
        for first in 0..order.len() {
            if done[first] || order[first].index() == first {
                done[first] = true;
                continue;
            }
            hand.copy_from_slice(&column[first * dim..(first + 1) * dim]);
            let mut to = first;
            loop {
                done[to] = true;
                let from = order[to].index();
                if from == first {
                    column[to * dim..(to + 1) * dim].copy_from_slice(&hand);
                    break;
                }
                column.copy_within(from * dim..(from + 1) * dim, to * dim);
                to = from;
            }
        }
        drop(done);
        column.shrink_to_fit();
        // Codes (if any) are computed from the arena rows, now in list order.
        self.build(column, &order, &starts, norms, None, pool);
    }

    /// The lists of a fill: `arena` holds the vectors in list order (empty for codes-only
    /// lists), `order` the slots in that order and `starts` each list's first position.
    /// Codes are computed from the arena, or from `vector` (a slot's vector) without one.
    fn build<'v>(
        &mut self,
        arena: Vec<f32>,
        order: &[Slot],
        starts: &[usize],
        norms: &[f32],
        vector: Option<&(dyn Fn(Slot) -> &'v [f32] + Sync)>,
        pool: &rayon::ThreadPool,
    ) {
        let dim = self.dim;
        let codec = self.codec.as_ref();
        let code_size = codec.map_or(0, |c| c.code_size(dim));
        let keep_vectors = !self.codes_only;
        let bases = self.bases.as_deref();
        let arena_ref = &arena;
        pool.install(|| {
            self.lists.par_iter_mut().enumerate().for_each(|(l, list)| {
                let slots = &order[starts[l]..starts[l + 1]];
                *list = List {
                    slots: slots.to_vec(),
                    span: keep_vectors.then_some(Span { start: starts[l], room: slots.len() }),
                    vectors: Vec::new(),
                    norms: if keep_vectors { slots.iter().map(|&s| norms[s.index()]).collect() } else { Vec::new() },
                    codes: Vec::with_capacity(slots.len() * code_size),
                    code_norms: Vec::with_capacity(if codec.is_some() { slots.len() } else { 0 }),
                };
                let base = bases.map(|b| &b[l * dim..(l + 1) * dim]);
                for (i, &s) in slots.iter().enumerate() {
                    let v = match vector {
                        Some(vector) if arena_ref.is_empty() => vector(s),
                        _ => &arena_ref[(starts[l] + i) * dim..(starts[l] + i + 1) * dim],
                    };
                    list.push_code(codec, base, v);
                }
            })
        });
        (self.arena, self.dead_rows) = (arena, 0);
    }

    /// Copies every list's vectors into a new arena with a quarter more room each. Called
    /// when over half the arena's rows are dead: lists that outgrew their room moved out, so
    /// the arena and their own `Vec`s held up to twice the vectors. A list then moves out
    /// again only after growing by a quarter, so the copy (of every vector) comes at most
    /// once per growth of the index by an eighth.
    fn repack(&mut self) {
        let dim = self.dim;
        let rooms: Vec<usize> = self.lists.iter().map(|l| l.slots.len() + l.slots.len() / 4 + 1).collect();
        let mut arena = vec![0f32; rooms.iter().sum::<usize>() * dim];
        let mut start = 0;
        for (l, &room) in self.lists.iter().zip(&rooms) {
            let rows = self.rows(l);
            arena[start * dim..start * dim + rows.len()].copy_from_slice(rows);
            start += room;
        }
        let mut start = 0;
        for (l, &room) in self.lists.iter_mut().zip(&rooms) {
            (l.span, l.vectors) = (Some(Span { start, room }), Vec::new());
            start += room;
        }
        (self.arena, self.dead_rows) = (arena, 0);
    }

    /// [`InvertedLists::fill`] of codes-only lists from codes already computed (a load that
    /// encoded each record as it decrypted it): slot `s`'s code is row `s` of `codes`, the
    /// norm of the vector it decodes to `code_norms[s]`.
    pub(crate) fn fill_codes(&mut self, lists: &[ListId], codes: &[u8], code_norms: &[f32], pool: &rayon::ThreadPool) {
        assert!(self.codes_only, "lists that hold vectors are filled from the vectors");
        let size = self.codec.as_ref().expect("coded lists").code_size(self.dim);
        assert_eq!((codes.len(), code_norms.len()), (lists.len() * size, lists.len()));
        let (order, starts) = self.place_all(lists);
        pool.install(|| {
            self.lists.par_iter_mut().enumerate().for_each(|(l, list)| {
                let slots = &order[starts[l]..starts[l + 1]];
                let mut own = Vec::with_capacity(slots.len() * size);
                for &s in slots {
                    own.extend_from_slice(&codes[s.index() * size..(s.index() + 1) * size]);
                }
                *list = List {
                    slots: slots.to_vec(),
                    codes: own,
                    code_norms: slots.iter().map(|&s| code_norms[s.index()]).collect(),
                    ..List::default()
                };
            })
        });
    }

    /// Places every slot `s` in list `lists[s]` (in slot order within each list, in `loc`)
    /// and returns the slots grouped by list with each list's start in that order (and the
    /// end at the last position).
    fn place_all(&mut self, lists: &[ListId]) -> (Vec<Slot>, Vec<usize>) {
        assert!(self.loc.is_empty(), "fill needs empty lists");
        let mut sizes = vec![0u32; self.lists.len()];
        self.loc = lists
            .iter()
            .map(|&list| {
                let pos = sizes[list.index()];
                sizes[list.index()] += 1;
                Some(Place { list, pos })
            })
            .collect();
        // Slots grouped by list, in slot order within each (a counting sort).
        let mut starts: Vec<usize> = Vec::with_capacity(sizes.len() + 1);
        starts.push(0);
        for &n in &sizes {
            starts.push(starts.last().unwrap() + n as usize);
        }
        let mut order = vec![Slot(0); lists.len()];
        for (slot, place) in self.loc.iter().enumerate() {
            let Place { list, pos } = place.expect("every slot was placed");
            order[starts[list.index()] + pos as usize] = Slot::at(slot);
        }
        (order, starts)
    }

    fn place(&self, slot: Slot) -> Option<Place> {
        self.loc.get(slot.index()).copied().flatten()
    }

    /// The vector of `slot` (which must be in a list of lists that hold vectors).
    pub(crate) fn vector(&self, slot: Slot) -> &[f32] {
        debug_assert!(!self.codes_only, "codes-only lists hold no vectors");
        let Place { list, pos } = self.place(slot).expect("the slot is in a list");
        let p = pos as usize * self.dim;
        &self.rows(&self.lists[list.index()])[p..p + self.dim]
    }

    /// The code of `slot` (which must be in a list of coded lists).
    pub(crate) fn code(&self, slot: Slot) -> &[u8] {
        let Place { list, pos } = self.place(slot).expect("the slot is in a list");
        let size = self.codec.as_ref().expect("coded lists").code_size(self.dim);
        let p = pos as usize * size;
        &self.lists[list.index()].codes[p..p + size]
    }

    /// Whether `v` encodes to `slot`'s code (coded lists only): `slot` may hold `v`.
    pub(crate) fn encodes_to_its_code(&self, slot: Slot, v: &[f32]) -> bool {
        let Place { list, .. } = self.place(slot).expect("the slot is in a list");
        let code = self.code(slot);
        let mut again = Vec::with_capacity(code.len());
        self.codec.as_ref().expect("coded lists").encode(v, self.base(list), &mut again);
        again == code
    }

    /// The vector `slot`'s code decodes to (coded lists only).
    pub(crate) fn decoded(&self, slot: Slot) -> Vec<f32> {
        let Place { list, .. } = self.place(slot).expect("the slot is in a list");
        self.codec.as_ref().expect("coded lists").decode(self.code(slot), self.base(list))
    }

    /// `slot`'s score for `q` from its code, as a scan of its list by codes scores it
    /// (`prepared` from `q` by the lists' codec).
    pub(crate) fn code_score(&self, metric: Metric, q: &Query, prepared: &Prepared, slot: Slot) -> f32 {
        let Place { list, pos } = self.place(slot).expect("the slot is in a list");
        let l = &self.lists[list.index()];
        let codec = self.codec.as_ref().expect("coded lists");
        let size = codec.code_size(self.dim);
        let p = pos as usize;
        let codes = &l.codes[p * size..(p + 1) * size];
        let scanner =
            CodeScanner::new(metric, codec, q, prepared, self.base_dot(list, q), codes, &l.code_norms[p..p + 1]);
        let mut out = [0f32];
        scanner.score(0, &mut out);
        out[0]
    }

    /// The L2 norm of `slot`'s vector (lists that hold vectors).
    pub(crate) fn norm(&self, slot: Slot) -> f32 {
        debug_assert!(!self.codes_only, "codes-only lists hold no norms");
        let Place { list, pos } = self.place(slot).expect("the slot is in a list");
        self.lists[list.index()].norms[pos as usize]
    }

    /// Adds `slot` (whose vector is `v` with L2 norm `norm`) to `list`.
    pub(crate) fn insert(&mut self, slot: Slot, list: ListId, v: &[f32], norm: f32) {
        let s = slot.index();
        if self.loc.len() <= s {
            self.loc.resize(s + 1, None);
        }
        debug_assert_eq!(self.loc[s], None, "slot inserted twice");
        let dim = self.dim;
        let base = self.bases.as_ref().map(|b| &b[list.index() * dim..(list.index() + 1) * dim]);
        let l = &mut self.lists[list.index()];
        let len = l.slots.len();
        self.loc[s] = Some(Place { list, pos: len as u32 });
        if !self.codes_only {
            match l.span {
                Some(Span { start, room }) if len < room => {
                    self.arena[(start + len) * dim..(start + len + 1) * dim].copy_from_slice(v)
                }
                Some(Span { start, room }) => {
                    // Out of room in the arena: the list's vectors move into a `Vec` that
                    // grows by doubling.
                    let mut own = Vec::with_capacity(2 * room.max(1) * dim);
                    own.extend_from_slice(&self.arena[start * dim..(start + len) * dim]);
                    own.extend_from_slice(v);
                    (l.vectors, l.span) = (own, None);
                    self.dead_rows += room;
                }
                None => l.vectors.extend_from_slice(v),
            }
            l.norms.push(norm);
        }
        l.slots.push(slot);
        l.push_code(self.codec.as_ref(), base, v);
        if 2 * self.dead_rows > self.arena.len() / dim.max(1) {
            self.repack();
        }
    }

    /// Removes `slot` from its list (swap-remove inside the list).
    pub(crate) fn remove(&mut self, slot: Slot) {
        let Some(Place { list, pos }) = self.place(slot) else { return };
        let dim = self.dim;
        let l = &mut self.lists[list.index()];
        let last = l.slots.len() - 1;
        let p = pos as usize;
        if p != last {
            let moved = l.slots[last];
            l.slots[p] = moved;
            if !self.codes_only {
                let rows = match l.span {
                    Some(Span { start, .. }) => &mut self.arena[start * dim..(start + last + 1) * dim],
                    None => &mut l.vectors[..],
                };
                rows.copy_within(last * dim..(last + 1) * dim, p * dim);
                l.norms[p] = l.norms[last];
            }
            if let Some(codec) = &self.codec {
                let size = codec.code_size(dim);
                l.codes.copy_within(last * size..(last + 1) * size, p * size);
                l.code_norms[p] = l.code_norms[last];
            }
            self.loc[moved.index()] = Some(Place { list, pos });
        }
        l.slots.pop();
        if !self.codes_only {
            if l.span.is_none() {
                l.vectors.truncate(last * dim);
            }
            l.norms.pop();
        }
        if let Some(codec) = &self.codec {
            l.codes.truncate(last * codec.code_size(dim));
            l.code_norms.pop();
        }
        self.loc[slot.index()] = None;
    }

    /// Records that the item in slot `from` now lives in slot `to` (the working set moved it).
    pub(crate) fn relabel(&mut self, from: Slot, to: Slot) {
        let Some(place) = self.place(from) else { return };
        self.lists[place.list.index()].slots[place.pos as usize] = to;
        if self.loc.len() <= to.index() {
            self.loc.resize(to.index() + 1, None);
        }
        self.loc[to.index()] = Some(place);
        self.loc[from.index()] = None;
    }

    /// Bytes these lists hold on the heap (by capacity, so slack counts): the vectors, the
    /// norms, and the slot bookkeeping (each list's slots and the slot → place map); the
    /// centroids residuals are from are the quantizer's.
    pub(crate) fn heap_bytes(&self) -> ListBytes {
        let mut bytes = ListBytes {
            slots: self.loc.capacity() * size_of::<Option<Place>>() + self.lists.capacity() * size_of::<List>(),
            codes: self.codec.as_ref().map_or(0, Codec::heap_bytes),
            vectors: self.arena.capacity() * size_of::<f32>(),
            ..ListBytes::default()
        };
        for l in &self.lists {
            bytes.codes += l.codes.capacity() + l.code_norms.capacity() * size_of::<f32>();
            bytes.vectors += l.vectors.capacity() * size_of::<f32>();
            bytes.norms += l.norms.capacity() * size_of::<f32>();
            bytes.slots += l.slots.capacity() * size_of::<Slot>();
        }
        bytes
    }

    /// Whether every list (and the slot map and arena) is allocated at exactly its length:
    /// lists built by [`InvertedLists::fill`] are; inserts after it grow a list by doubling.
    #[cfg(test)]
    pub(crate) fn is_exactly_sized(&self) -> bool {
        self.loc.capacity() == self.loc.len()
            && self.arena.capacity() == self.arena.len()
            && self.lists.iter().all(|l| {
                l.span.is_none_or(|s| s.room == l.slots.len())
                    && l.vectors.capacity() == l.vectors.len()
                    && l.norms.capacity() == l.norms.len()
                    && l.slots.capacity() == l.slots.len()
                    && l.codes.capacity() == l.codes.len()
                    && l.code_norms.capacity() == l.code_norms.len()
            })
    }

    /// Items per list.
    pub(crate) fn sizes(&self) -> Vec<usize> {
        self.lists.iter().map(|l| l.slots.len()).collect()
    }
}
