//! The ids of the working set: every id's bytes in one arena, a span per slot, and hash
//! tables from id to slot that hold only slot numbers.
//!
//! A load rebuilds hundreds of thousands of ids at once, so an id must not cost an allocation
//! of its own: here it costs its bytes, an 8-byte span and ~5 bytes of table, and a loader
//! builds its ids into an [`IdList`] that is appended with one copy of bytes.
//!
//! The table is split into [`SHARDS`] by hash, so a large append fills the shards in
//! parallel instead of being the serial step of a load (BENCHMARKS.md, "Disk store: ingest
//! and reopen", items 1 and 9).

use std::hash::{BuildHasher, RandomState};
use std::sync::LazyLock;

use hashbrown::hash_table::{Entry, HashTable};
use rayon::prelude::*;

use crate::vector::Slot;

/// An id that is already present, or given twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DuplicateId(pub(crate) String);

/// One hasher for the process: `std`'s randomly keyed SipHash, because ids come from users of
/// the service (a faster unkeyed-quality hash would let chosen ids collide on purpose).
static HASHER: LazyLock<RandomState> = LazyLock::new(RandomState::new);

fn hash(id: &str) -> u64 {
    HASHER.hash_one(id)
}

/// Tables the ids are split into by hash.
const SHARDS: usize = 16;

/// An id's shard: hash bits that neither a table's bucket index (the low bits) nor its
/// control tag (the top 7) uses, so ids within a shard still spread over all of both.
fn shard(hash: u64) -> usize {
    (hash >> 32) as usize % SHARDS
}

/// Appends of at least this many ids fill the shards on the rayon pool.
const PARALLEL_FROM: usize = 32_768;

/// Where a slot's id lies in the arena: its start and its length in one `u64` (a struct of
/// the two would be padded to 16 bytes).
#[derive(Debug, Clone, Copy)]
struct Span(u64);

/// Low bits of a [`Span`] that hold the length: ids are at most
/// [`MAX_ID_BYTES`](super::validate::MAX_ID_BYTES) long, and the rest (2^53 bytes) bounds the arena.
const LEN_BITS: u32 = 11;
const _: () = assert!(super::validate::MAX_ID_BYTES < 1 << LEN_BITS);

impl Span {
    fn new(start: usize, len: usize) -> Span {
        assert!(len < 1 << LEN_BITS, "ids are at most MAX_ID_BYTES long");
        Span((start as u64) << LEN_BITS | len as u64)
    }

    fn start(self) -> usize {
        (self.0 >> LEN_BITS) as usize
    }

    fn len(self) -> usize {
        (self.0 & ((1 << LEN_BITS) - 1)) as usize
    }

    fn range(self) -> std::ops::Range<usize> {
        self.start()..self.start() + self.len()
    }

    /// The same span in an arena whose first `base` bytes come before it.
    fn after(self, base: usize) -> Span {
        Span::new(self.start() + base, self.len())
    }
}

/// Ids in order, as a loader decodes them: an arena and spans, no table yet.
#[derive(Debug, Default)]
pub(crate) struct IdList {
    arena: String,
    spans: Vec<Span>,
}

impl IdList {
    pub(crate) fn with_capacity(ids: usize, bytes: usize) -> Self {
        IdList { arena: String::with_capacity(bytes), spans: Vec::with_capacity(ids) }
    }

    pub(crate) fn push(&mut self, id: &str) {
        self.spans.push(Span::new(self.arena.len(), id.len()));
        self.arena.push_str(id);
    }

    pub(crate) fn len(&self) -> usize {
        self.spans.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    pub(crate) fn get(&self, i: usize) -> &str {
        &self.arena[self.spans[i].range()]
    }

    pub(crate) fn iter(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.spans.iter().map(|s| &self.arena[s.range()])
    }

    /// Bytes of all ids together.
    pub(crate) fn bytes(&self) -> usize {
        self.arena.len()
    }

    /// Heap bytes held (by capacity): the arena and the spans.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.arena.capacity() + self.spans.capacity() * size_of::<Span>()
    }

    /// Appends all of `other`'s ids after this list's (taking `other` whole if this list is
    /// empty and has not reserved room for it).
    pub(crate) fn extend(&mut self, other: IdList) {
        if self.spans.is_empty() && self.spans.capacity() < other.len() {
            *self = other;
            return;
        }
        let base = self.arena.len();
        self.arena.push_str(&other.arena);
        self.spans.extend(other.spans.iter().map(|s| s.after(base)));
    }
}

impl<'a> FromIterator<&'a str> for IdList {
    fn from_iter<I: IntoIterator<Item = &'a str>>(iter: I) -> Self {
        let mut list = IdList::default();
        for id in iter {
            list.push(id);
        }
        list
    }
}

/// The ids of slots `0..len`, unique, with lookup by id.
#[derive(Debug, Default)]
pub(crate) struct Ids {
    list: IdList,
    /// Arena bytes no slot points to any more (removed ids), reclaimed once they are half.
    dead: usize,
    /// Slot numbers, in the table of their id's [`shard`].
    tables: [HashTable<u32>; SHARDS],
}

impl Ids {
    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub(crate) fn get(&self, slot: Slot) -> &str {
        self.list.get(slot.index())
    }

    pub(crate) fn iter(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.list.iter()
    }

    /// Heap bytes held: the id list and the hash tables.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.list.heap_bytes() + self.tables.iter().map(HashTable::allocation_size).sum::<usize>()
    }

    pub(crate) fn slot(&self, id: &str) -> Option<Slot> {
        let (h, list) = (hash(id), &self.list);
        self.tables[shard(h)].find(h, |&s| list.get(s as usize) == id).copied().map(Slot)
    }

    /// Sizes the tables for `ids` more ids (one in [`SHARDS`] each, and some slack: a shard
    /// that outgrows its table re-hashes every id in it).
    pub(crate) fn reserve_tables(&mut self, ids: usize) {
        let list = &self.list;
        let per_shard = ids / SHARDS + ids / SHARDS / 16 + 64;
        for table in &mut self.tables {
            table.reserve(per_shard, |&s| hash(list.get(s as usize)));
        }
    }

    /// Adds an id that is not present as slot `len`; returns the slot.
    pub(crate) fn push_new(&mut self, id: &str) -> Slot {
        let slot = self.list.len() as u32;
        let (h, list) = (hash(id), &self.list);
        let entry = self.tables[shard(h)].entry(h, |&s| list.get(s as usize) == id, |&s| hash(list.get(s as usize)));
        match entry {
            Entry::Occupied(_) => panic!("push_new of an id that is present"),
            Entry::Vacant(v) => {
                v.insert(slot);
            }
        }
        self.list.push(id);
        Slot(slot)
    }

    /// Appends `other`'s ids as slots `len..`. Fails, changing nothing, with the first id that
    /// is already present or repeated within `other`. A large append hashes and fills the
    /// shards on the current rayon pool.
    pub(crate) fn append(&mut self, other: IdList) -> Result<(), DuplicateId> {
        let first = self.list.len();
        let n = other.len();
        let parallel = n >= PARALLEL_FROM;
        // The new ids' indexes and hashes grouped by shard, chunk by chunk, so each shard's
        // come in order and its fill reads them (not the ids) sequentially.
        let group = |c: usize| {
            let mut groups: [Vec<(u32, u64)>; SHARDS] = Default::default();
            for i in c * PARALLEL_FROM..n.min((c + 1) * PARALLEL_FROM) {
                let h = hash(other.get(i));
                groups[shard(h)].push((i as u32, h));
            }
            groups
        };
        let chunks = n.div_ceil(PARALLEL_FROM);
        let chunks: Vec<[Vec<(u32, u64)>; SHARDS]> =
            if parallel { (0..chunks).into_par_iter().map(group).collect() } else { (0..chunks).map(group).collect() };
        let (tables, list) = (&mut self.tables, &self.list);
        let taken = |s: u32| {
            let s = s as usize;
            if s < first {
                list.get(s)
            } else {
                other.get(s - first)
            }
        };
        // Fills one shard; returns the index of its first id that is taken (by then, every
        // earlier id of the shard went in, so the least over all shards is the first overall).
        let fill = |(k, table): (usize, &mut HashTable<u32>)| {
            table.reserve(chunks.iter().map(|c| c[k].len()).sum(), |&s| hash(taken(s)));
            for &(i, h) in chunks.iter().flat_map(|c| &c[k]) {
                // The id is read only to compare it with a slot whose hash tag matches.
                match table.entry(h, |&s| taken(s) == other.get(i as usize), |&s| hash(taken(s))) {
                    Entry::Vacant(v) => {
                        v.insert((first + i as usize) as u32);
                    }
                    Entry::Occupied(_) => return Some(i),
                }
            }
            None
        };
        let taken_at = if parallel {
            tables.par_iter_mut().enumerate().filter_map(fill).min()
        } else {
            tables.iter_mut().enumerate().filter_map(fill).min()
        };
        if let Some(i) = taken_at {
            // Drop what this call added, leaving the tables as they were.
            for table in tables.iter_mut() {
                table.retain(|&mut s| (s as usize) < first);
            }
            return Err(DuplicateId(other.get(i as usize).to_string()));
        }
        if first == 0 {
            // Into an empty set (a load) the list moves, not copies.
            (self.list, self.dead) = (other, 0);
        } else {
            self.list.extend(other);
        }
        Ok(())
    }

    /// Removes an id. Returns its slot and, if the last slot's id moved into it to keep slots
    /// dense, the slot it moved from (as `Vec::swap_remove` does).
    pub(crate) fn remove(&mut self, id: &str) -> Option<(Slot, Option<Slot>)> {
        let (h, list) = (hash(id), &self.list);
        let slot = self.tables[shard(h)].find_entry(h, |&s| list.get(s as usize) == id).ok()?.remove().0;
        let last = (self.list.len() - 1) as u32;
        if slot != last {
            let moved = hash(self.list.get(last as usize));
            let entry = self.tables[shard(moved)].find_mut(moved, |&s| s == last).expect("every slot is in a table");
            *entry = slot;
        }
        self.dead += self.list.spans.swap_remove(slot as usize).len();
        self.reclaim_if_mostly_dead();
        Some((Slot(slot), (slot != last).then_some(Slot(last))))
    }

    fn reclaim_if_mostly_dead(&mut self) {
        if self.dead < 4096 || self.dead * 2 < self.list.arena.len() {
            return;
        }
        let live: IdList = self.list.iter().collect();
        self.list = live;
        self.dead = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(of: &[&str]) -> Ids {
        let mut ids = Ids::default();
        ids.append(of.iter().copied().collect()).unwrap();
        ids
    }

    fn all(ids: &Ids) -> Vec<&str> {
        ids.iter().collect()
    }

    #[test]
    fn a_span_is_eight_bytes_and_holds_the_longest_id_far_into_the_arena() {
        assert_eq!(size_of::<Span>(), 8);
        let s = Span::new(1 << 50, crate::MAX_ID_BYTES);
        assert_eq!((s.start(), s.len()), (1 << 50, crate::MAX_ID_BYTES));
        assert_eq!(s.after(3).range(), (1 << 50) + 3..(1 << 50) + 3 + crate::MAX_ID_BYTES);
    }

    #[test]
    fn append_and_push_give_dense_slots_found_by_id() {
        let mut x = ids(&["a", "bb", ""]);
        assert_eq!(x.push_new("ccc"), Slot(3));
        x.append(["d", "é"].into_iter().collect()).unwrap();
        assert_eq!(all(&x), ["a", "bb", "", "ccc", "d", "é"]);
        for (slot, id) in all(&x).into_iter().enumerate() {
            assert_eq!(x.slot(id), Some(Slot::at(slot)));
        }
        assert_eq!(x.slot("zz"), None);
    }

    #[test]
    fn append_refuses_present_and_repeated_ids_unchanged() {
        let mut x = ids(&["a", "b"]);
        assert_eq!(x.append(["c", "d", "a"].into_iter().collect()), Err(DuplicateId("a".to_string())));
        assert_eq!(x.append(["e", "f", "e"].into_iter().collect()), Err(DuplicateId("e".to_string())));
        assert_eq!(all(&x), ["a", "b"]);
        for id in ["c", "d", "e", "f"] {
            assert_eq!(x.slot(id), None);
        }
        assert_eq!(x.push_new("c"), Slot(2));
        assert_eq!(x.slot("c"), Some(Slot(2)));
    }

    #[test]
    fn a_parallel_append_finds_every_id_and_reports_the_first_taken_one() {
        let n = 3 * PARALLEL_FROM + 17;
        let list = |range: std::ops::Range<usize>| range.map(|i| format!("id-{i}")).collect::<Vec<_>>();
        let mut x = ids(&["id-5", "other"]);
        x.remove("id-5").unwrap();
        let fresh = list(0..n);
        // Repeats: one within the list (late), one of a present id (later still).
        let mut bad = fresh.clone();
        bad[2 * PARALLEL_FROM + 3] = "id-40000".into();
        bad[n - 1] = "other".into();
        assert_eq!(x.append(bad.iter().map(String::as_str).collect()), Err(DuplicateId("id-40000".to_string())));
        assert_eq!(all(&x), ["other"]);
        assert_eq!(x.slot("id-1"), None);
        x.append(fresh.iter().map(String::as_str).collect()).unwrap();
        assert_eq!(x.len(), n + 1);
        for (i, id) in fresh.iter().enumerate() {
            assert_eq!(x.slot(id), Some(Slot::at(i + 1)), "{id}");
        }
        assert_eq!(x.slot("other"), Some(Slot(0)));
        assert!(x.tables.iter().all(|t| !t.is_empty()), "ids spread over every shard");
    }

    #[test]
    fn remove_moves_the_last_slot_into_the_hole() {
        let mut x = ids(&["a", "b", "c"]);
        assert_eq!(x.remove("a"), Some((Slot(0), Some(Slot(2)))));
        assert_eq!(x.remove("a"), None);
        assert_eq!(all(&x), ["c", "b"]);
        assert_eq!((x.slot("c"), x.slot("b")), (Some(Slot(0)), Some(Slot(1))));
        assert_eq!(x.remove("b"), Some((Slot(1), None)));
        assert_eq!(x.remove("c"), Some((Slot(0), None)));
        assert!(x.is_empty());
        assert_eq!(x.push_new("a"), Slot(0));
    }

    #[test]
    fn a_list_moves_into_an_empty_set_and_a_failed_append_after_churn_changes_nothing() {
        let list: IdList = ["a", "b", "c", "d"].into_iter().collect();
        let arena = list.arena.as_ptr();
        let mut x = Ids::default();
        x.append(list).unwrap();
        assert_eq!(x.list.arena.as_ptr(), arena, "moved, not copied");
        for round in 0..3000 {
            let id = format!("churn-{round}");
            let slot = x.push_new(&id);
            assert_eq!(x.remove(&id), Some((slot, None)));
        }
        assert!(x.dead < 4096 * 2, "reclaimed");
        x.remove("b").unwrap();
        assert_eq!(x.append(["e", "f", "c"].into_iter().collect()), Err(DuplicateId("c".to_string())));
        assert_eq!(all(&x), ["a", "d", "c"]);
        for (slot, id) in ["a", "d", "c"].iter().enumerate() {
            assert_eq!(x.slot(id), Some(Slot::at(slot)));
        }
        assert_eq!((x.slot("b"), x.slot("e"), x.slot("f")), (None, None, None));
        x.append(["e", "b"].into_iter().collect()).unwrap();
        assert_eq!(all(&x), ["a", "d", "c", "e", "b"]);
        assert_eq!(x.slot("b"), Some(Slot(4)));
    }

    #[test]
    fn churn_reclaims_dead_bytes_and_keeps_every_lookup() {
        let mut x = Ids::default();
        let mut model: Vec<String> = Vec::new();
        for round in 0..20_000u32 {
            let id = format!("item-{}-{}", round % 977, round % 13);
            match x.slot(&id) {
                Some(slot) => {
                    let (s, moved) = x.remove(&id).unwrap();
                    assert_eq!(s, slot);
                    model.swap_remove(slot.index());
                    assert_eq!(moved.is_some(), slot.index() < model.len());
                }
                None => {
                    assert_eq!(x.push_new(&id).index(), model.len());
                    model.push(id);
                }
            }
        }
        assert_eq!(all(&x), model.iter().map(String::as_str).collect::<Vec<_>>());
        for (slot, id) in model.iter().enumerate() {
            assert_eq!(x.slot(id), Some(Slot::at(slot)));
        }
        assert!(x.dead * 2 < x.list.arena.len().max(8192), "dead bytes are reclaimed");
    }
}
