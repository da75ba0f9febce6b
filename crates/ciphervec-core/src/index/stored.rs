//! Where each item's stored version lives: in a packed segment (and which one), or in a loose
//! record entry of its own (with that entry's seal token). The working set keeps this for every
//! slot, for the record summary, for deletes and for reading one full record back (codes-only
//! indexes), so its column costs 4 bytes a slot; the seal tokens of loose items, which a
//! compaction turns packed, live in a side table.

use crate::crypto::SealToken;

/// Where the stored version of an item lives (see `segment`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stored {
    /// In a packed segment.
    Packed,
    /// In its own record entry, whose seal token is `token`. `over_packed`: a dead packed copy
    /// of the id exists too, so deleting the item needs a tombstone (unless one exists).
    Loose { token: SealToken, over_packed: bool },
}

impl Stored {
    /// Whether a packed copy of the id exists, live or dead.
    pub(crate) fn has_packed_copy(self) -> bool {
        matches!(self, Stored::Packed | Stored::Loose { over_packed: true, .. })
    }
}

/// A cell of a loose item: this bit, [`OVER_PACKED`], and the index of its token.
const LOOSE: u32 = 1 << 31;
/// A loose item's `over_packed`.
const OVER_PACKED: u32 = 1 << 30;
/// The bits of a loose cell that index the token table.
const TOKEN_INDEX: u32 = OVER_PACKED - 1;
/// The cell of a packed item whose segment is not known (one written packed before the
/// working set learnt segment numbers); any smaller cell is a packed item's segment number.
const UNKNOWN_SEGMENT: u32 = LOOSE - 1;

/// A [`Stored`] per slot, with the segment of each packed one (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct StoredColumn {
    /// Per slot: a segment number, [`UNKNOWN_SEGMENT`], or a loose cell.
    cells: Vec<u32>,
    /// The seal tokens of loose items; entries in `free` are unused.
    tokens: Vec<SealToken>,
    free: Vec<u32>,
}

impl StoredColumn {
    pub(crate) fn with_capacity(n: usize) -> StoredColumn {
        StoredColumn { cells: Vec::with_capacity(n), ..Default::default() }
    }

    /// Packed items, `counts[n]` of them in segment `n` in order, with capacity for `room`
    /// more.
    pub(crate) fn packed(counts: &[u32], room: usize) -> StoredColumn {
        assert!(counts.len() <= UNKNOWN_SEGMENT as usize, "fewer than 2^31 - 1 segments");
        let total: usize = counts.iter().map(|&c| c as usize).sum();
        let mut cells = Vec::with_capacity(total + room);
        for (n, &count) in counts.iter().enumerate() {
            cells.extend(std::iter::repeat_n(n as u32, count as usize));
        }
        StoredColumn { cells, ..Default::default() }
    }

    pub(crate) fn len(&self) -> usize {
        self.cells.len()
    }

    pub(crate) fn get(&self, i: usize) -> Stored {
        let cell = self.cells[i];
        if cell & LOOSE == 0 {
            return Stored::Packed;
        }
        Stored::Loose { token: self.tokens[(cell & TOKEN_INDEX) as usize], over_packed: cell & OVER_PACKED != 0 }
    }

    /// The segment holding slot `i`'s stored version, if it is packed and the segment known.
    pub(crate) fn segment(&self, i: usize) -> Option<u32> {
        let cell = self.cells[i];
        (cell < UNKNOWN_SEGMENT).then_some(cell)
    }

    /// Appends an item stored as `stored` (a packed one in an unknown segment).
    pub(crate) fn push(&mut self, stored: Stored) {
        let cell = self.cell(stored);
        self.cells.push(cell);
    }

    /// Sets slot `i` to `stored` (a packed one in an unknown segment).
    pub(crate) fn set(&mut self, i: usize, stored: Stored) {
        self.release(i);
        self.cells[i] = self.cell(stored);
    }

    /// Sets slot `i` to packed in segment `segment`.
    pub(crate) fn set_packed(&mut self, i: usize, segment: u32) {
        assert!(segment < UNKNOWN_SEGMENT, "fewer than 2^31 - 1 segments");
        self.release(i);
        self.cells[i] = segment;
    }

    /// Sets slots to packed from slot 0 on: `counts[n]` of them in segment `n`, in order.
    pub(crate) fn set_packed_in_order(&mut self, counts: &[u32]) {
        let segments = counts.iter().enumerate().flat_map(|(n, &c)| std::iter::repeat_n(n as u32, c as usize));
        for (i, segment) in segments.enumerate() {
            self.set_packed(i, segment);
        }
    }

    /// Removes slot `i`, moving the last slot into it (as `Vec::swap_remove`).
    pub(crate) fn swap_remove(&mut self, i: usize) {
        self.release(i);
        self.cells.swap_remove(i);
    }

    /// Appends `other`'s slots after this column's (moving `other` whole into an empty
    /// column that has not reserved room for it).
    pub(crate) fn extend(&mut self, other: StoredColumn) {
        if self.cells.is_empty() && self.tokens.is_empty() && self.cells.capacity() < other.len() {
            *self = other;
            return;
        }
        self.cells.reserve(other.len());
        for i in 0..other.len() {
            let cell = match other.get(i) {
                Stored::Packed => other.cells[i],
                loose => self.cell(loose),
            };
            self.cells.push(cell);
        }
    }

    /// Heap bytes held, by capacity.
    pub(crate) fn heap_bytes(&self) -> usize {
        (self.cells.capacity() + self.free.capacity()) * size_of::<u32>()
            + self.tokens.capacity() * size_of::<SealToken>()
    }

    /// The cell for `stored`, taking a token entry for a loose item.
    fn cell(&mut self, stored: Stored) -> u32 {
        match stored {
            Stored::Packed => UNKNOWN_SEGMENT,
            Stored::Loose { token, over_packed } => {
                let index = match self.free.pop() {
                    Some(index) => {
                        self.tokens[index as usize] = token;
                        index
                    }
                    None => {
                        let index = u32::try_from(self.tokens.len()).ok().filter(|&i| i <= TOKEN_INDEX);
                        self.tokens.push(token);
                        index.expect("fewer than 2^30 loose items")
                    }
                };
                LOOSE | if over_packed { OVER_PACKED } else { 0 } | index
            }
        }
    }

    /// Frees slot `i`'s token entry, if it is loose; once no loose item is left, the token
    /// table's memory too (a compaction makes every item packed).
    fn release(&mut self, i: usize) {
        let cell = self.cells[i];
        if cell & LOOSE == 0 {
            return;
        }
        self.free.push(cell & TOKEN_INDEX);
        if self.free.len() == self.tokens.len() {
            (self.tokens, self.free) = (Vec::new(), Vec::new());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loose(token: u128, over_packed: bool) -> Stored {
        Stored::Loose { token: SealToken(token), over_packed }
    }

    /// The column's values as [`Stored`] and segment, slot by slot.
    fn all(c: &StoredColumn) -> Vec<(Stored, Option<u32>)> {
        (0..c.len()).map(|i| (c.get(i), c.segment(i))).collect()
    }

    #[test]
    fn each_cell_keeps_what_was_set_and_tokens_are_reused_then_freed() {
        let mut c = StoredColumn::packed(&[2, 0, 1], 0);
        assert_eq!(all(&c), [(Stored::Packed, Some(0)), (Stored::Packed, Some(0)), (Stored::Packed, Some(2))]);
        c.push(loose(7, false));
        c.push(loose(8, true));
        c.push(Stored::Packed);
        assert_eq!(all(&c)[3..], [(loose(7, false), None), (loose(8, true), None), (Stored::Packed, None)]);
        c.set(0, loose(9, true));
        c.set(3, loose(10, false));
        assert_eq!(c.tokens.len(), 3, "a loose slot set again reuses its entry");
        c.swap_remove(4);
        assert_eq!(all(&c)[3..], [(loose(10, false), None), (Stored::Packed, None)]);
        c.set_packed(0, 5);
        c.set_packed_in_order(&[1, 0, 3]);
        assert_eq!(
            all(&c),
            [
                (Stored::Packed, Some(0)),
                (Stored::Packed, Some(2)),
                (Stored::Packed, Some(2)),
                (Stored::Packed, Some(2)),
                (Stored::Packed, None)
            ]
        );
        assert_eq!((c.tokens.capacity(), c.free.capacity()), (0, 0), "no loose item left: the table is freed");
        c.push(loose(11, false));
        assert_eq!(c.get(5), loose(11, false));
    }

    #[test]
    fn extend_reindexes_tokens_and_moves_into_an_empty_column() {
        let mut a = StoredColumn::default();
        let mut b = StoredColumn::packed(&[1], 2);
        b.push(loose(1, false));
        b.push(loose(2, true));
        let cells = b.cells.as_ptr();
        a.extend(b);
        assert_eq!(a.cells.as_ptr(), cells, "moved, not copied");
        let mut more = StoredColumn::with_capacity(2);
        more.push(loose(3, true));
        more.push(Stored::Packed);
        more.set_packed(1, 4);
        a.extend(more);
        assert_eq!(
            all(&a),
            [
                (Stored::Packed, Some(0)),
                (loose(1, false), None),
                (loose(2, true), None),
                (loose(3, true), None),
                (Stored::Packed, Some(4))
            ]
        );
    }

    #[test]
    fn a_slot_costs_four_bytes() {
        let c = StoredColumn::packed(&[1000], 0);
        assert_eq!(c.heap_bytes(), 4000);
    }
}
