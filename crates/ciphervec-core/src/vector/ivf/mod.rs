//! Inverted lists (IVF-Flat): each item lives in the list of its nearest centroid, and a
//! query scans only the lists of its `n_probes` nearest centroids.
//!
//! Each list stores its vectors contiguously (like FAISS's IndexIVFFlat) so a probe is a
//! sequential scan, not a gather over random slots; once an index is trained these are the
//! only copy of its vectors (the working set releases its own). `loc` maps a working-set slot
//! to its place in a list, so finding, removing or moving a slot is O(1).

use rayon::prelude::*;

use crate::vector::exhaustive::{Accept, Query};
use crate::vector::kernels;
use crate::vector::metric::Metric;
use crate::vector::topk::{Hit, TopK};

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

    /// Fills empty lists with every slot `s` of a working set into list `lists[s]`, in slot
    /// order within each list (the lists one [`Ivf::insert`] per slot would build), each list
    /// allocated at its exact size and the lists copied in parallel on `pool`. Grown one
    /// insert at a time, a load of a trained 390k index spent ~0.1 s here on one thread and
    /// ended ~150 MB larger than the vectors it copied.
    pub fn fill(&mut self, lists: &[u32], vectors: &[f32], norms: &[f32], pool: &rayon::ThreadPool) {
        assert!(self.loc.is_empty(), "fill needs empty lists");
        let dim = self.dim;
        let mut sizes = vec![0u32; self.lists.len()];
        self.loc = lists
            .iter()
            .map(|&l| {
                let pos = sizes[l as usize];
                sizes[l as usize] += 1;
                (l, pos)
            })
            .collect();
        // Slots grouped by list, in slot order within each (a counting sort).
        let mut starts: Vec<usize> = Vec::with_capacity(sizes.len() + 1);
        starts.push(0);
        for &n in &sizes {
            starts.push(starts.last().unwrap() + n as usize);
        }
        let mut order = vec![0u32; lists.len()];
        for (slot, &(l, pos)) in self.loc.iter().enumerate() {
            order[starts[l as usize] + pos as usize] = slot as u32;
        }
        pool.install(|| {
            self.lists.par_iter_mut().enumerate().for_each(|(l, list)| {
                let slots = &order[starts[l]..starts[l + 1]];
                let mut vs = Vec::with_capacity(slots.len() * dim);
                for &s in slots {
                    vs.extend_from_slice(&vectors[s as usize * dim..(s as usize + 1) * dim]);
                }
                *list = List {
                    slots: slots.to_vec(),
                    vectors: vs,
                    norms: slots.iter().map(|&s| norms[s as usize]).collect(),
                };
            })
        });
    }

    /// The vector of `slot` (which must be in a list).
    pub fn vector(&self, slot: u32) -> &[f32] {
        let (list, pos) = self.loc[slot as usize];
        let p = pos as usize * self.dim;
        &self.lists[list as usize].vectors[p..p + self.dim]
    }

    /// The L2 norm of `slot`'s vector.
    pub fn norm(&self, slot: u32) -> f32 {
        let (list, pos) = self.loc[slot as usize];
        self.lists[list as usize].norms[pos as usize]
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
    fn fill_builds_the_lists_one_insert_per_slot_builds() {
        let dim = 3;
        let centroids: Vec<f32> = (0..5 * dim).map(|i| i as f32).collect();
        let n = 1000;
        let vectors: Vec<f32> = (0..n * dim).map(|i| (i as f32 * 0.37).sin()).collect();
        let norms: Vec<f32> = (0..n).map(|i| i as f32).collect();
        // Uneven lists, one left empty.
        let lists: Vec<u32> = (0..n).map(|i| [0, 1, 1, 3, 4, 4, 4][i % 7]).collect();
        let mut by_insert = Ivf::new(dim, centroids.clone());
        for (s, &l) in lists.iter().enumerate() {
            by_insert.insert(s as u32, l, &vectors[s * dim..(s + 1) * dim], norms[s]);
        }
        let mut filled = Ivf::new(dim, centroids);
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        filled.fill(&lists, &vectors, &norms, &pool);
        assert_eq!(filled.loc, by_insert.loc);
        assert_eq!(filled.list_sizes(), vec![143, 286, 0, 143, 428]);
        for (a, b) in filled.lists.iter().zip(&by_insert.lists) {
            assert_eq!((&a.slots, &a.vectors, &a.norms), (&b.slots, &b.vectors, &b.norms));
            assert_eq!(a.vectors.capacity(), a.vectors.len(), "sized exactly");
        }
        let q = Query::new(&vectors[..dim]);
        assert_eq!(
            filled.search(Metric::SquaredEuclidean, &q, &vectors[..dim], 5, 10, None),
            by_insert.search(Metric::SquaredEuclidean, &q, &vectors[..dim], 5, 10, None)
        );
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
