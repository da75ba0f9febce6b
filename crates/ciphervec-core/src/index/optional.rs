//! A working-set column of optional values (metadata, contents) that costs nothing while no
//! item has one: an index of vectors alone then saves its 8 bytes a slot. Once an item has a
//! value the column holds an entry for every slot, and keeps them until the index is loaded
//! anew (a column that empties again is rare and costs what it did).

/// `Option<T>` per slot, stored only once some slot has a value (see the module docs). The
/// caller owns the slot count: methods that may create the column take the slot a value is
/// for, and every slot before it exists.
#[derive(Debug)]
pub(crate) struct OptionalColumn<T> {
    /// Empty while every slot is `None`, else one entry per slot.
    values: Vec<Option<T>>,
}

impl<T> Default for OptionalColumn<T> {
    fn default() -> Self {
        OptionalColumn { values: Vec::new() }
    }
}

impl<T> OptionalColumn<T> {
    /// The column of `values` (one per slot), freed if none is present.
    pub(crate) fn from_vec(values: Vec<Option<T>>) -> Self {
        if values.iter().all(Option::is_none) {
            return OptionalColumn::default();
        }
        OptionalColumn { values }
    }

    pub(crate) fn get(&self, slot: usize) -> Option<&T> {
        self.values.get(slot).and_then(Option::as_ref)
    }

    /// Appends the value of new slot `slot` (the slot count before it).
    pub(crate) fn push(&mut self, slot: usize, value: Option<T>) {
        if self.values.is_empty() && value.is_none() {
            return;
        }
        self.fill_to(slot);
        self.values.push(value);
    }

    /// Sets the value of existing slot `slot` of `len`.
    pub(crate) fn set(&mut self, slot: usize, len: usize, value: Option<T>) {
        if self.values.is_empty() && value.is_none() {
            return;
        }
        self.fill_to(len);
        self.values[slot] = value;
    }

    /// Removes slot `slot`, moving the last slot into it (as `Vec::swap_remove`).
    pub(crate) fn swap_remove(&mut self, slot: usize) {
        if !self.values.is_empty() {
            self.values.swap_remove(slot);
        }
    }

    /// Appends `values` as the slots from `first` (the slot count before them).
    pub(crate) fn extend(&mut self, first: usize, values: Vec<Option<T>>) {
        if values.iter().all(Option::is_none) {
            if !self.values.is_empty() {
                self.values.resize_with(first + values.len(), || None);
            }
            return;
        }
        self.fill_to(first);
        self.values.extend(values);
    }

    /// The values present.
    pub(crate) fn present(&self) -> impl Iterator<Item = &T> + '_ {
        self.values.iter().flatten()
    }

    /// Heap bytes of the column itself (not of what its values own), by capacity.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.values.capacity() * size_of::<Option<T>>()
    }

    /// Creates the entries of slots `..len` if the column holds none yet.
    fn fill_to(&mut self, len: usize) {
        if self.values.is_empty() {
            self.values.resize_with(len, || None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(c: &OptionalColumn<u32>, len: usize) -> Vec<Option<u32>> {
        (0..len).map(|i| c.get(i).copied()).collect()
    }

    #[test]
    fn holds_nothing_until_a_value_comes_then_one_entry_per_slot() {
        let mut c = OptionalColumn::default();
        for slot in 0..3 {
            c.push(slot, None);
        }
        c.set(1, 3, None);
        c.swap_remove(0);
        c.extend(2, vec![None, None]);
        assert_eq!(c.heap_bytes(), 0);
        assert_eq!(all(&c, 4), [None; 4]);
        c.set(2, 4, Some(7));
        assert_eq!(all(&c, 4), [None, None, Some(7), None]);
        c.push(4, None);
        c.push(5, Some(9));
        c.swap_remove(0);
        assert_eq!(all(&c, 5), [Some(9), None, Some(7), None, None]);
        c.extend(5, vec![None, Some(1)]);
        c.extend(7, vec![None]);
        assert_eq!(all(&c, 8), [Some(9), None, Some(7), None, None, None, Some(1), None]);
        assert_eq!(c.present().copied().collect::<Vec<_>>(), [9, 7, 1]);
    }

    #[test]
    fn a_first_value_after_many_absent_ones_lines_up_with_its_slot() {
        let mut c = OptionalColumn::default();
        c.extend(0, vec![None; 5]);
        c.push(5, Some(3));
        assert_eq!(all(&c, 6), [None, None, None, None, None, Some(3)]);
        let mut d = OptionalColumn::default();
        d.extend(4, vec![None, Some(2)]);
        assert_eq!(all(&d, 6), [None, None, None, None, None, Some(2)]);
        assert_eq!(OptionalColumn::from_vec(vec![None::<u32>; 9]).heap_bytes(), 0);
        assert_eq!(all(&OptionalColumn::from_vec(vec![None, Some(4)]), 2), [None, Some(4)]);
    }
}
