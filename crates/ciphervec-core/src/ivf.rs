//! Inverted lists (IVF-Flat): each item lives in the list of its nearest centroid, and a
//! query scans only the lists of its `n_probes` nearest centroids.
//!
//! Each list stores copies of its vectors contiguously (like FAISS's IndexIVFFlat) so a probe
//! is a sequential scan, not a gather over random slots. `loc` maps a working-set slot to its
//! place in a list, so removing or moving a slot is O(1).

use crate::kernels;
use crate::metric::Metric;
use crate::search::{Accept, Query};
use crate::topk::{Hit, TopK};

#[derive(Default, Clone)]
struct List {
    slots: Vec<u32>,
    vectors: Vec<f32>,
    norms: Vec<f32>,
}

/// Trained centroids and the lists built on them.
#[derive(Clone)]
pub struct Ivf {
    dim: usize,
    centroids: Vec<f32>,
    lists: Vec<List>,
    /// slot → (list, position in list); `u32::MAX` list = not present.
    loc: Vec<(u32, u32)>,
}

const ABSENT: (u32, u32) = (u32::MAX, u32::MAX);

impl Ivf {
    /// Empty lists over `centroids` (`n_lists × dim`, row-major).
    pub fn new(dim: usize, centroids: Vec<f32>) -> Ivf {
        assert!(dim > 0 && centroids.len().is_multiple_of(dim) && !centroids.is_empty());
        let n = centroids.len() / dim;
        Ivf { dim, centroids, lists: vec![List::default(); n], loc: Vec::new() }
    }

    pub fn n_lists(&self) -> usize {
        self.lists.len()
    }

    pub fn centroids(&self) -> &[f32] {
        &self.centroids
    }

    fn centroid(&self, list: usize) -> &[f32] {
        &self.centroids[list * self.dim..(list + 1) * self.dim]
    }

    /// The list whose centroid is nearest to `v` (squared L2; callers normalise for cosine).
    pub fn nearest_list(&self, v: &[f32]) -> u32 {
        let mut best = (f32::INFINITY, 0u32);
        for l in 0..self.lists.len() {
            let d = kernels::l2_sqr(v, self.centroid(l));
            if d < best.0 {
                best = (d, l as u32);
            }
        }
        best.1
    }

    /// Adds `slot` (whose vector is `v` with L2 norm `norm`) to `list`.
    pub fn insert(&mut self, slot: u32, list: u32, v: &[f32], norm: f32) {
        let s = slot as usize;
        if self.loc.len() <= s {
            self.loc.resize(s + 1, ABSENT);
        }
        debug_assert_eq!(self.loc[s], ABSENT, "slot inserted twice");
        let l = &mut self.lists[list as usize];
        self.loc[s] = (list, l.slots.len() as u32);
        l.slots.push(slot);
        l.vectors.extend_from_slice(v);
        l.norms.push(norm);
    }

    /// Removes `slot` from its list (swap-remove inside the list).
    pub fn remove(&mut self, slot: u32) {
        let Some(&(list, pos)) = self.loc.get(slot as usize) else { return };
        if list == u32::MAX {
            return;
        }
        let dim = self.dim;
        let l = &mut self.lists[list as usize];
        let last = l.slots.len() - 1;
        let p = pos as usize;
        if p != last {
            let moved = l.slots[last];
            l.slots[p] = moved;
            l.vectors.copy_within(last * dim..(last + 1) * dim, p * dim);
            l.norms[p] = l.norms[last];
            self.loc[moved as usize] = (list, pos);
        }
        l.slots.pop();
        l.vectors.truncate(last * dim);
        l.norms.pop();
        self.loc[slot as usize] = ABSENT;
    }

    /// Records that the item in slot `from` now lives in slot `to` (the working set moved it).
    pub fn relabel(&mut self, from: u32, to: u32) {
        let Some(&(list, pos)) = self.loc.get(from as usize) else { return };
        if list == u32::MAX {
            return;
        }
        self.lists[list as usize].slots[pos as usize] = to;
        if self.loc.len() <= to as usize {
            self.loc.resize(to as usize + 1, ABSENT);
        }
        self.loc[to as usize] = (list, pos);
        self.loc[from as usize] = ABSENT;
    }

    /// The `n_probes` lists nearest to the (normalised, for cosine) query vector.
    pub fn probe_order(&self, q: &[f32], n_probes: usize, scratch: &mut Vec<f32>) -> Vec<u32> {
        let n = self.lists.len();
        scratch.resize(n, 0.0);
        kernels::l2_sqr_batch(q, &self.centroids, self.dim, &mut scratch[..n]);
        let mut top = TopK::new(n_probes.min(n));
        for (l, &d) in scratch[..n].iter().enumerate() {
            if d < top.threshold() {
                top.push(Hit { score: d, slot: l as u32 });
            }
        }
        top.into_sorted().into_iter().map(|h| h.slot).collect()
    }

    /// Scans the `n_probes` lists nearest to `probe_vec` and returns the `k` best accepted
    /// slots, best first. Distances of a whole list are computed by one batch kernel call.
    /// With a filter (`accept`), scanning goes on past `n_probes` lists, nearest first, until
    /// `k` items are accepted or every list was scanned, so a selective filter still returns
    /// `k` results whenever that many match.
    pub fn search(
        &self,
        metric: Metric,
        q: &Query,
        probe_vec: &[f32],
        n_probes: usize,
        k: usize,
        accept: Accept,
    ) -> Vec<Hit> {
        let mut top = TopK::new(k);
        let mut scratch = Vec::new();
        let order =
            self.probe_order(probe_vec, if accept.is_some() { self.lists.len() } else { n_probes }, &mut scratch);
        for (scanned, l) in order.into_iter().enumerate() {
            if scanned >= n_probes && top.len() >= k {
                break;
            }
            let list = &self.lists[l as usize];
            let len = list.slots.len();
            scratch.resize(len, 0.0);
            let out = &mut scratch[..len];
            match metric {
                Metric::Cosine => {
                    kernels::dot_batch(q.vector, &list.vectors, self.dim, out);
                    for (d, n) in out.iter_mut().zip(&list.norms) {
                        *d = 1.0 - *d / (q.norm * n);
                    }
                }
                _ => kernels::l2_sqr_batch(q.vector, &list.vectors, self.dim, out),
            }
            for (i, &s) in out.iter().enumerate() {
                if s < top.threshold() && accept.is_none_or(|ok| ok(list.slots[i])) {
                    top.push(Hit { score: s, slot: list.slots[i] });
                }
            }
        }
        top.into_sorted()
    }

    /// Items per list (for stats and tests).
    pub fn list_sizes(&self) -> Vec<usize> {
        self.lists.iter().map(|l| l.slots.len()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ivf() -> Ivf {
        // Two centroids on a line: lists 0 (near 0) and 1 (near 10).
        Ivf::new(1, vec![0.0, 10.0])
    }

    #[test]
    fn insert_remove_relabel_keep_lists_consistent() {
        let mut ivf = ivf();
        for (slot, x) in [(0u32, 1.0f32), (1, 9.0), (2, 2.0), (3, 11.0)] {
            let list = ivf.nearest_list(&[x]);
            ivf.insert(slot, list, &[x], x.abs());
        }
        assert_eq!(ivf.list_sizes(), vec![2, 2]);
        ivf.remove(0);
        assert_eq!(ivf.list_sizes(), vec![1, 2]);
        // The working set moved slot 3 into the hole at slot 0.
        ivf.relabel(3, 0);
        let q = Query::new(&[11.0]);
        let hits = ivf.search(Metric::SquaredEuclidean, &q, &[11.0], 1, 5, None);
        let slots: Vec<u32> = hits.iter().map(|h| h.slot).collect();
        assert_eq!(slots, vec![0, 1]);
        let all = ivf.search(Metric::SquaredEuclidean, &Query::new(&[2.0]), &[2.0], 2, 10, None);
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].slot, 2);
    }

    #[test]
    fn probe_order_is_nearest_first() {
        let ivf = Ivf::new(1, vec![0.0, 10.0, 4.0, 6.0]);
        let mut scratch = Vec::new();
        assert_eq!(ivf.probe_order(&[5.5], 3, &mut scratch), vec![3, 2, 1]);
        assert_eq!(ivf.probe_order(&[5.5], 99, &mut scratch).len(), 4);
    }
}
