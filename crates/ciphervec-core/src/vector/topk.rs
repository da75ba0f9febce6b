//! Bounded top-k selection: keeps the k smallest (score, slot) pairs seen.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::vector::Slot;

/// A scored candidate; ordered by score, then slot, so results are deterministic.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Hit {
    pub(crate) score: f32,
    pub(crate) slot: Slot,
}

impl Eq for Hit {}
impl Ord for Hit {
    fn cmp(&self, other: &Self) -> Ordering {
        self.score.total_cmp(&other.score).then(self.slot.cmp(&other.slot))
    }
}
impl PartialOrd for Hit {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A max-heap of the k best hits; `push` is O(1) when the hit cannot enter.
pub(crate) struct TopK {
    k: usize,
    heap: BinaryHeap<Hit>,
}

impl TopK {
    pub(crate) fn new(k: usize) -> Self {
        TopK { k, heap: BinaryHeap::with_capacity(k + 1) }
    }

    /// The score a new hit must beat once the heap is full.
    #[inline]
    pub(crate) fn threshold(&self) -> f32 {
        if self.heap.len() < self.k {
            f32::INFINITY
        } else {
            self.heap.peek().map_or(f32::INFINITY, |h| h.score)
        }
    }

    #[inline]
    pub(crate) fn push(&mut self, hit: Hit) {
        if self.heap.len() < self.k {
            self.heap.push(hit);
        } else if let Some(mut top) = self.heap.peek_mut() {
            if hit < *top {
                *top = hit;
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    pub(crate) fn merge(mut self, other: TopK) -> TopK {
        for h in other.heap {
            self.push(h);
        }
        self
    }

    /// Best first.
    pub(crate) fn into_sorted(self) -> Vec<Hit> {
        self.heap.into_sorted_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_k_smallest_in_order() {
        let scores = [5.0, 1.0, 9.0, 3.0, 3.0, 7.0, 0.5];
        let mut t = TopK::new(3);
        for (i, s) in scores.iter().enumerate() {
            t.push(Hit { score: *s, slot: Slot(i as u32) });
        }
        let got: Vec<u32> = t.into_sorted().iter().map(|h| h.slot.0).collect();
        assert_eq!(got, vec![6, 1, 3]);
    }

    #[test]
    fn merge_equals_single_pass() {
        let mut a = TopK::new(2);
        let mut b = TopK::new(2);
        a.push(Hit { score: 4.0, slot: Slot(0) });
        a.push(Hit { score: 2.0, slot: Slot(1) });
        b.push(Hit { score: 1.0, slot: Slot(2) });
        b.push(Hit { score: 3.0, slot: Slot(3) });
        let got: Vec<u32> = a.merge(b).into_sorted().iter().map(|h| h.slot.0).collect();
        assert_eq!(got, vec![2, 1]);
    }
}
