//! The decrypted working set of an index: dense slots holding ids, vectors (contiguous, for
//! fast scans), norms, metadata and contents, plus where each item's stored version lives
//! (for the record summary and for deletes). Plaintext lives here and nowhere else.

use std::sync::Arc;

use crate::format::record::{Contents, Record};
use crate::index::ids::{DuplicateId, IdList, Ids};
use crate::index::memory::MemoryUsage;
use crate::index::optional::OptionalColumn;
use crate::index::stored::{Stored, StoredColumn};
use crate::meta::Meta;
use crate::vector::{kernels, ListId, Slot};

/// Items in dense slots `0..len`. Deleting swaps the last slot into the hole so scans stay
/// contiguous; slot numbers are therefore not stable across deletes.
///
/// Vectors and norms are held here until the index is trained; then the IVF lists hold them
/// (see [`Items::release_vectors`]), so they are not held twice.
#[derive(Default)]
pub(crate) struct Items {
    dim: usize,
    ids: Ids,
    /// Row-major, slot order; empty once `released`.
    vectors: Vec<f32>,
    norms: Vec<f32>,
    /// The vectors and norms live elsewhere (the IVF lists): writes skip them here.
    released: bool,
    /// A codes-only index's load: each item's code (row-major, slot order) and the norm of the
    /// vector it decodes to, in place of `vectors` and `norms` until the lists take them
    /// ([`Items::take_codes`]).
    codes: Vec<u8>,
    code_norms: Vec<f32>,
    metadata: OptionalColumn<Meta>,
    contents: OptionalColumn<Arc<Contents>>,
    lists: Vec<Option<ListId>>,
    /// Where each item's stored version lives, with a packed item's segment, so its full
    /// record can be read back alone (codes-only indexes).
    stored: StoredColumn,
}

/// Items decoded in bulk (by a loader), in the column layout of [`Items`], ready to append.
#[derive(Default)]
pub(crate) struct Columns {
    pub(crate) ids: IdList,
    /// Empty when the loader encodes (`codes` instead).
    pub(crate) vectors: Vec<f32>,
    pub(crate) norms: Vec<f32>,
    /// Codes and their norms when the loader encodes (a codes-only index), else empty.
    pub(crate) codes: Vec<u8>,
    pub(crate) code_norms: Vec<f32>,
    pub(crate) metadata: Vec<Option<Meta>>,
    pub(crate) contents: Vec<Option<Arc<Contents>>>,
    pub(crate) lists: Vec<Option<ListId>>,
    pub(crate) stored: StoredColumn,
}

impl Items {
    pub(crate) fn new(dim: usize) -> Self {
        Items { dim, ..Default::default() }
    }

    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub(crate) fn dim(&self) -> usize {
        self.dim
    }

    /// Sets the dimension of an empty working set (first upsert into an index without one).
    pub(crate) fn set_dim(&mut self, dim: usize) {
        assert!(self.is_empty(), "dimension is fixed once items exist");
        self.dim = dim;
    }

    pub(crate) fn slot(&self, id: &str) -> Option<Slot> {
        self.ids.slot(id)
    }

    pub(crate) fn id(&self, slot: Slot) -> &str {
        self.ids.get(slot)
    }

    /// Ids in slot order.
    pub(crate) fn ids(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.ids.iter()
    }

    /// A slot's vector (while the vectors are held here: see [`Items::release_vectors`]).
    pub(crate) fn vector(&self, slot: Slot) -> &[f32] {
        debug_assert!(!self.released, "the vectors live in the IVF lists");
        let s = slot.index() * self.dim;
        &self.vectors[s..s + self.dim]
    }

    /// All vectors, row-major (while held here).
    pub(crate) fn vectors(&self) -> &[f32] {
        debug_assert!(!self.released, "the vectors live in the IVF lists");
        &self.vectors
    }

    /// L2 norms per slot (used by the cosine metric; while held here).
    pub(crate) fn norms(&self) -> &[f32] {
        debug_assert!(!self.released, "the vectors live in the IVF lists");
        &self.norms
    }

    /// Frees the vector and norm columns once another structure (the IVF lists) holds every
    /// slot's vector; from then on upserts and removes leave them to it.
    pub(crate) fn release_vectors(&mut self) {
        (self.vectors, self.norms, self.released) = (Vec::new(), Vec::new(), true);
        (self.codes, self.code_norms) = (Vec::new(), Vec::new());
    }

    /// The vectors and norms, moved out for the lists (which then hold them: the caller
    /// releases them here, see [`Items::release_vectors`]).
    pub(crate) fn take_vectors(&mut self) -> (Vec<f32>, Vec<f32>) {
        (std::mem::take(&mut self.vectors), std::mem::take(&mut self.norms))
    }

    /// Whether a load encoded the items (codes, no vectors: see [`Items::take_codes`]).
    pub(crate) fn has_codes(&self) -> bool {
        !self.code_norms.is_empty()
    }

    /// The codes and code norms a load encoded, moved out for the lists.
    pub(crate) fn take_codes(&mut self) -> (Vec<u8>, Vec<f32>) {
        (std::mem::take(&mut self.codes), std::mem::take(&mut self.code_norms))
    }

    pub(crate) fn metadata(&self, slot: Slot) -> Option<&Meta> {
        self.metadata.get(slot.index())
    }

    pub(crate) fn contents(&self, slot: Slot) -> Option<&Arc<Contents>> {
        self.contents.get(slot.index())
    }

    pub(crate) fn list(&self, slot: Slot) -> Option<ListId> {
        self.lists[slot.index()]
    }

    /// Heap bytes of the working set's columns (by capacity, so slack counts), into `usage`.
    /// The vectors and norms count only while held here.
    pub(crate) fn heap_bytes(&self, usage: &mut MemoryUsage) {
        usage.ids += self.ids.heap_bytes();
        usage.vectors += self.vectors.capacity() * size_of::<f32>();
        usage.norms += self.norms.capacity() * size_of::<f32>();
        usage.metadata += self.metadata.heap_bytes() + self.metadata.present().map(Meta::heap_bytes).sum::<usize>();
        // An `Arc`'s allocation: its two counts and the value, then the value's own bytes.
        let arc = 2 * size_of::<usize>() + size_of::<Contents>();
        usage.contents +=
            self.contents.heap_bytes() + self.contents.present().map(|c| arc + c.heap_bytes()).sum::<usize>();
        usage.columns += self.lists.capacity() * size_of::<Option<ListId>>() + self.stored.heap_bytes();
    }

    /// Where the stored version of a slot's item lives.
    pub(crate) fn stored(&self, slot: Slot) -> Stored {
        self.stored.get(slot.index())
    }

    /// The segment holding the stored version of a slot's item, if it is packed and the
    /// segment is known.
    pub(crate) fn packed_segment(&self, slot: Slot) -> Option<u32> {
        self.stored.segment(slot.index())
    }

    /// Appends decoded items (moving the columns into an empty working set, so a load writes
    /// each vector once). Fails, changing nothing, with the first id that is already present
    /// (or repeated within `cols`).
    pub(crate) fn append(&mut self, cols: Columns) -> Result<(), DuplicateId> {
        assert!(!self.released, "append is for loading, before the lists hold the vectors");
        let n = cols.ids.len();
        debug_assert!(cols.vectors.len() == n * self.dim || cols.code_norms.len() == n);
        if !self.ids.is_empty() {
            return self.append_all(vec![cols]);
        }
        let Columns { ids, vectors, norms, codes, code_norms, metadata, contents, lists, stored } = cols;
        self.ids.append(ids)?;
        (self.vectors, self.norms) = (vectors, norms);
        (self.metadata, self.contents) = (OptionalColumn::from_vec(metadata), OptionalColumn::from_vec(contents));
        (self.codes, self.code_norms) = (codes, code_norms);
        (self.lists, self.stored) = (lists, stored);
        Ok(())
    }

    /// [`Items::append`] of several column sets in order, as one append of their ids (so a
    /// large one fills the id tables in parallel); each set is freed once copied.
    pub(crate) fn append_all(&mut self, parts: Vec<Columns>) -> Result<(), DuplicateId> {
        assert!(!self.released, "append is for loading, before the lists hold the vectors");
        let n = parts.iter().map(|p| p.ids.len()).sum();
        let mut ids = IdList::with_capacity(n, parts.iter().map(|p| p.ids.bytes()).sum());
        let mut rest = Vec::with_capacity(parts.len());
        for Columns { ids: part_ids, vectors, norms, codes, code_norms, metadata, contents, lists, stored } in parts {
            ids.extend(part_ids);
            rest.push((vectors, norms, codes, code_norms, metadata, contents, lists, stored));
        }
        let mut first = self.ids.len();
        self.ids.append(ids)?;
        for (vectors, norms, codes, code_norms, metadata, contents, lists, stored) in rest {
            self.vectors.extend_from_slice(&vectors);
            self.norms.extend(norms);
            self.codes.extend_from_slice(&codes);
            self.code_norms.extend(code_norms);
            self.metadata.extend(first, metadata);
            self.contents.extend(first, contents);
            first += lists.len();
            self.lists.extend(lists);
            self.stored.extend(stored);
        }
        Ok(())
    }

    /// Sizes the id tables for `n` more items (before appending columns that bring their own
    /// room, so nothing else is allocated twice).
    pub(crate) fn reserve_ids(&mut self, n: usize) {
        self.ids.reserve_tables(n);
    }

    /// Inserts a record stored as `stored`, replacing every field of an existing item with the
    /// same id. Returns its slot. Once the vectors are released, `rec.vector` is ignored (the
    /// caller gives it to the structure that holds them).
    pub(crate) fn upsert(&mut self, rec: Record, stored: Stored) -> Slot {
        if self.released {
            return self.upsert_fields(rec, stored);
        }
        debug_assert_eq!(rec.vector.len(), self.dim);
        let norm = kernels::norm_sqr(&rec.vector).sqrt();
        match self.ids.slot(&rec.id) {
            Some(slot) => {
                let s = slot.index();
                self.vectors[s * self.dim..(s + 1) * self.dim].copy_from_slice(&rec.vector);
                self.norms[s] = norm;
                let len = self.len();
                self.metadata.set(s, len, rec.metadata);
                self.contents.set(s, len, rec.contents);
                self.lists[s] = rec.list;
                self.stored.set(s, stored);
                slot
            }
            None => {
                let slot = self.ids.push_new(&rec.id);
                self.vectors.extend_from_slice(&rec.vector);
                self.norms.push(norm);
                self.metadata.push(slot.index(), rec.metadata);
                self.contents.push(slot.index(), rec.contents);
                self.lists.push(rec.list);
                self.stored.push(stored);
                slot
            }
        }
    }

    /// [`Items::upsert`] of every field but the vector and norm.
    fn upsert_fields(&mut self, rec: Record, stored: Stored) -> Slot {
        let slot = self.ids.slot(&rec.id).unwrap_or_else(|| {
            let slot = self.ids.push_new(&rec.id);
            self.metadata.push(slot.index(), None);
            self.contents.push(slot.index(), None);
            self.lists.push(rec.list);
            self.stored.push(Stored::Packed);
            slot
        });
        let (s, len) = (slot.index(), self.len());
        self.metadata.set(s, len, rec.metadata);
        self.contents.set(s, len, rec.contents);
        self.lists[s] = rec.list;
        self.stored.set(s, stored);
        slot
    }

    pub(crate) fn set_list(&mut self, slot: Slot, list: ListId) {
        self.lists[slot.index()] = Some(list);
    }

    /// Records that the items are stored packed after a rewrite (a compaction): `counts[n]`
    /// of them in segment `n`, in slot order from slot 0.
    pub(crate) fn set_packed(&mut self, counts: &[u32]) {
        self.stored.set_packed_in_order(counts);
    }

    /// Removes an item. Returns its slot and, if the last item moved into that slot to keep
    /// slots dense, the slot it moved from.
    pub(crate) fn remove(&mut self, id: &str) -> Option<(Slot, Option<Slot>)> {
        let (slot, moved_from) = self.ids.remove(id)?;
        let s = slot.index();
        let last = self.lists.len() - 1;
        if !self.released && self.has_codes() {
            let size = self.codes.len() / self.code_norms.len();
            self.codes.copy_within(last * size..(last + 1) * size, s * size);
            self.codes.truncate(last * size);
            self.code_norms.swap_remove(s);
        } else if !self.released {
            if s != last {
                self.vectors.copy_within(last * self.dim..(last + 1) * self.dim, s * self.dim);
            }
            self.vectors.truncate(last * self.dim);
            self.norms.swap_remove(s);
        }
        self.metadata.swap_remove(s);
        self.contents.swap_remove(s);
        self.lists.swap_remove(s);
        self.stored.swap_remove(s);
        Some((slot, moved_from))
    }

    /// Appends the record encoding of a slot's item with vector `vector` and IVF list `list`
    /// (see `record`), so a compaction re-seals items without copying them into [`Record`]s.
    pub(crate) fn encode_into(&self, slot: Slot, vector: &[f32], list: Option<ListId>, out: &mut Vec<u8>) {
        crate::format::record::encode_fields(
            out,
            self.id(slot),
            vector,
            self.metadata(slot),
            self.contents(slot).map(|c| &**c),
            list,
        );
    }

    /// Rebuilds the record of a slot.
    #[cfg(test)]
    pub(crate) fn record(&self, slot: Slot) -> Record {
        Record {
            id: self.id(slot).to_string(),
            vector: self.vector(slot).to_vec(),
            metadata: self.metadata(slot).cloned(),
            contents: self.contents(slot).cloned(),
            list: self.list(slot),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::SealToken;

    fn loose(token: u128) -> Stored {
        Stored::Loose { token: SealToken(token), over_packed: false }
    }

    fn rec(id: &str, v: f32) -> Record {
        Record { id: id.into(), vector: vec![v, v + 1.0], metadata: None, contents: None, list: None }
    }

    #[test]
    fn upsert_overwrites_and_remove_keeps_slots_dense() {
        let mut items = Items::new(2);
        for (i, id) in ["a", "b", "c"].iter().enumerate() {
            items.upsert(rec(id, i as f32), loose(i as u128));
        }
        items.upsert(rec("a", 10.0), Stored::Packed);
        assert_eq!(items.stored(items.slot("a").unwrap()), Stored::Packed);
        assert_eq!(items.len(), 3);
        assert_eq!(items.vector(items.slot("a").unwrap()), &[10.0, 11.0]);
        assert_eq!(items.remove("a"), Some((Slot(0), Some(Slot(2)))));
        assert_eq!(items.remove("a"), None);
        assert_eq!(items.len(), 2);
        for id in ["b", "c"] {
            let s = items.slot(id).unwrap();
            assert_eq!(items.id(s), id);
            assert_eq!(items.record(s).id, id);
        }
        assert_eq!(items.vector(items.slot("c").unwrap()), &[2.0, 3.0]);
        assert_eq!(items.vectors().len(), 4);
    }

    #[test]
    fn append_adds_columns_and_refuses_duplicate_ids_unchanged() {
        let mut items = Items::new(2);
        items.upsert(rec("a", 0.0), loose(1));
        let cols = |ids: &[&str]| Columns {
            ids: ids.iter().copied().collect(),
            vectors: ids.iter().flat_map(|_| [3.0, 4.0]).collect(),
            norms: vec![5.0; ids.len()],
            codes: Vec::new(),
            code_norms: Vec::new(),
            metadata: vec![None; ids.len()],
            contents: vec![None; ids.len()],
            lists: vec![None; ids.len()],
            stored: ids.iter().fold(StoredColumn::default(), |mut c, _| {
                c.push(loose(9));
                c
            }),
        };
        items.append(cols(&["b", "c"])).unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(items.vector(items.slot("c").unwrap()), &[3.0, 4.0]);
        assert_eq!(items.stored(Slot(2)), loose(9));
        assert_eq!(items.append(cols(&["d", "a"])).unwrap_err(), DuplicateId("a".into()));
        assert_eq!(items.append(cols(&["e", "e"])).unwrap_err(), DuplicateId("e".into()));
        assert_eq!(items.len(), 3);
        assert_eq!(items.slot("d"), None);
        assert_eq!(items.slot("e"), None);
        assert_eq!((items.slot("a"), items.slot("b"), items.slot("c")), (Some(Slot(0)), Some(Slot(1)), Some(Slot(2))));
    }
}
