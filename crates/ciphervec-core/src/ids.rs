//! The ids of the working set: every id's bytes in one arena, a span per slot, and a hash
//! table from id to slot that holds only slot numbers.
//!
//! A load rebuilds hundreds of thousands of ids at once. As one `Arc<str>` each, shared with
//! a `HashMap<Arc<str>, u32>`, every id cost an allocation, ~56 bytes and a SipHash; building
//! them was the largest serial step of `loadIndex`, and the fresh pages behind all those small
//! allocations were a fifth of its time. Here an id costs its bytes, a 16-byte span and ~5
//! bytes of table, and a loader builds its ids into an [`IdList`] that is appended with one
//! copy of bytes.

use std::hash::{BuildHasher, RandomState};
use std::sync::LazyLock;

use hashbrown::hash_table::{Entry, HashTable};

/// One hasher for the process: `std`'s randomly keyed SipHash, because ids come from users of
/// the service (a faster unkeyed-quality hash would let chosen ids collide on purpose).
static HASHER: LazyLock<RandomState> = LazyLock::new(RandomState::new);

fn hash(id: &str) -> u64 {
    HASHER.hash_one(id)
}

/// Where a slot's id lies in the arena.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    len: u32,
}

/// Ids in order, as a loader decodes them: an arena and spans, no table yet.
#[derive(Debug, Default)]
pub struct IdList {
    arena: String,
    spans: Vec<Span>,
}

impl IdList {
    pub fn with_capacity(ids: usize, bytes: usize) -> Self {
        IdList { arena: String::with_capacity(bytes), spans: Vec::with_capacity(ids) }
    }

    pub fn push(&mut self, id: &str) {
        self.spans.push(Span { start: self.arena.len(), len: span_len(id) });
        self.arena.push_str(id);
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    pub fn get(&self, i: usize) -> &str {
        let s = self.spans[i];
        &self.arena[s.start..s.start + s.len as usize]
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.spans.iter().map(|s| &self.arena[s.start..s.start + s.len as usize])
    }

    /// Bytes of all ids together.
    pub fn bytes(&self) -> usize {
        self.arena.len()
    }

    /// Appends all of `other`'s ids after this list's (taking `other` whole if this list is
    /// empty and has not reserved room for it).
    pub fn extend(&mut self, other: IdList) {
        if self.spans.is_empty() && self.spans.capacity() < other.len() {
            *self = other;
            return;
        }
        let base = self.arena.len();
        self.arena.push_str(&other.arena);
        self.spans.extend(other.spans.iter().map(|s| Span { start: s.start + base, len: s.len }));
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

fn span_len(id: &str) -> u32 {
    u32::try_from(id.len()).expect("ids are at most MAX_ID_BYTES long")
}

/// The ids of slots `0..len`, unique, with lookup by id.
#[derive(Debug, Default)]
pub struct Ids {
    list: IdList,
    /// Arena bytes no slot points to any more (removed ids), reclaimed once they are half.
    dead: usize,
    table: HashTable<u32>,
}

impl Ids {
    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn get(&self, slot: u32) -> &str {
        self.list.get(slot as usize)
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.list.iter()
    }

    pub fn slot(&self, id: &str) -> Option<u32> {
        let list = &self.list;
        self.table.find(hash(id), |&s| list.get(s as usize) == id).copied()
    }

    pub fn reserve(&mut self, ids: usize) {
        let list = &self.list;
        self.table.reserve(ids, |&s| hash(list.get(s as usize)));
        self.list.spans.reserve(ids);
    }

    /// Adds an id that is not present as slot `len`; returns the slot.
    pub fn push_new(&mut self, id: &str) -> u32 {
        let slot = self.list.len() as u32;
        let list = &self.list;
        match self.table.entry(hash(id), |&s| list.get(s as usize) == id, |&s| hash(list.get(s as usize))) {
            Entry::Occupied(_) => panic!("push_new of an id that is present"),
            Entry::Vacant(v) => {
                v.insert(slot);
            }
        }
        self.list.push(id);
        slot
    }

    /// Appends `other`'s ids as slots `len..`. Fails, changing nothing, with the first id that
    /// is already present or repeated within `other`.
    pub fn append(&mut self, other: IdList) -> Result<(), String> {
        let first = self.list.len();
        let list = &self.list;
        self.table.reserve(other.len(), |&s| hash(list.get(s as usize)));
        let (table, list) = (&mut self.table, &self.list);
        for (i, id) in other.iter().enumerate() {
            let taken = |s: u32| {
                let s = s as usize;
                if s < first {
                    list.get(s)
                } else {
                    other.get(s - first)
                }
            };
            let added = match table.entry(hash(id), |&s| taken(s) == id, |&s| hash(taken(s))) {
                Entry::Vacant(v) => {
                    v.insert((first + i) as u32);
                    true
                }
                Entry::Occupied(_) => false,
            };
            if !added {
                // Drop what this call added (all unique so far), leaving the table as it was.
                for (j, added) in other.iter().take(i).enumerate() {
                    let slot = (first + j) as u32;
                    if let Ok(e) = table.find_entry(hash(added), |&s| s == slot) {
                        e.remove();
                    }
                }
                return Err(id.to_string());
            }
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
    pub fn remove(&mut self, id: &str) -> Option<(u32, Option<u32>)> {
        let list = &self.list;
        let slot = self.table.find_entry(hash(id), |&s| list.get(s as usize) == id).ok()?.remove().0;
        let last = (self.list.len() - 1) as u32;
        if slot != last {
            let moved = self.list.get(last as usize);
            let entry = self.table.find_mut(hash(moved), |&s| s == last).expect("every slot is in the table");
            *entry = slot;
        }
        self.dead += self.list.spans.swap_remove(slot as usize).len as usize;
        self.reclaim_if_mostly_dead();
        Some((slot, (slot != last).then_some(last)))
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
    fn append_and_push_give_dense_slots_found_by_id() {
        let mut x = ids(&["a", "bb", ""]);
        assert_eq!(x.push_new("ccc"), 3);
        x.append(["d", "é"].into_iter().collect()).unwrap();
        assert_eq!(all(&x), ["a", "bb", "", "ccc", "d", "é"]);
        for (slot, id) in all(&x).into_iter().enumerate() {
            assert_eq!(x.slot(id), Some(slot as u32));
        }
        assert_eq!(x.slot("zz"), None);
    }

    #[test]
    fn append_refuses_present_and_repeated_ids_unchanged() {
        let mut x = ids(&["a", "b"]);
        assert_eq!(x.append(["c", "d", "a"].into_iter().collect()), Err("a".to_string()));
        assert_eq!(x.append(["e", "f", "e"].into_iter().collect()), Err("e".to_string()));
        assert_eq!(all(&x), ["a", "b"]);
        for id in ["c", "d", "e", "f"] {
            assert_eq!(x.slot(id), None);
        }
        assert_eq!(x.push_new("c"), 2);
        assert_eq!(x.slot("c"), Some(2));
    }

    #[test]
    fn remove_moves_the_last_slot_into_the_hole() {
        let mut x = ids(&["a", "b", "c"]);
        assert_eq!(x.remove("a"), Some((0, Some(2))));
        assert_eq!(x.remove("a"), None);
        assert_eq!(all(&x), ["c", "b"]);
        assert_eq!((x.slot("c"), x.slot("b")), (Some(0), Some(1)));
        assert_eq!(x.remove("b"), Some((1, None)));
        assert_eq!(x.remove("c"), Some((0, None)));
        assert!(x.is_empty());
        assert_eq!(x.push_new("a"), 0);
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
        assert_eq!(x.append(["e", "f", "c"].into_iter().collect()), Err("c".to_string()));
        assert_eq!(all(&x), ["a", "d", "c"]);
        for (slot, id) in ["a", "d", "c"].iter().enumerate() {
            assert_eq!(x.slot(id), Some(slot as u32));
        }
        assert_eq!((x.slot("b"), x.slot("e"), x.slot("f")), (None, None, None));
        x.append(["e", "b"].into_iter().collect()).unwrap();
        assert_eq!(all(&x), ["a", "d", "c", "e", "b"]);
        assert_eq!(x.slot("b"), Some(4));
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
                    model.swap_remove(slot as usize);
                    assert_eq!(moved.is_some(), (slot as usize) < model.len());
                }
                None => {
                    assert_eq!(x.push_new(&id) as usize, model.len());
                    model.push(id);
                }
            }
        }
        assert_eq!(all(&x), model.iter().map(String::as_str).collect::<Vec<_>>());
        for (slot, id) in model.iter().enumerate() {
            assert_eq!(x.slot(id), Some(slot as u32));
        }
        assert!(x.dead * 2 < x.list.arena.len().max(8192), "dead bytes are reclaimed");
    }
}
