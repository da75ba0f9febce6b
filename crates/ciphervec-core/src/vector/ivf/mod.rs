//! IVF: a coarse quantizer ([`Quantizer`], the trained centroids) puts each item in the list
//! of its nearest centroid ([`InvertedLists`]), and a query scans only the lists of its
//! `n_probes` nearest centroids. Lists with codes (`vector::codes`) are scanned by their codes
//! for `rerank × k` candidates, which are then scored exactly on their vectors; lists that
//! keep only codes rank and score by the codes alone.

mod lists;
mod quantizer;

use std::num::NonZeroU32;

pub(crate) use lists::InvertedLists;
pub(crate) use quantizer::{auto_n_lists, auto_n_probes, Quantizer};

use crate::vector::codes::{Codec, Prepared, Resident};
use crate::vector::kernels;
use crate::vector::scan::{scan_into, Accept, FlatScanner, Query, Scanner};
use crate::vector::topk::{Hit, TopK};
use crate::vector::{Metric, Slot};

/// The id of an inverted list: the position of its centroid. Stored as the position + 1, so
/// `Option<ListId>` (an item in no list) takes no more room than the id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct ListId(NonZeroU32);

impl ListId {
    /// The list at position `index` (below `u32::MAX`).
    pub(crate) fn new(index: usize) -> ListId {
        let id = u32::try_from(index).ok().and_then(|i| i.checked_add(1)).expect("fewer than 2^32 - 1 lists");
        ListId(NonZeroU32::new(id).expect("non-zero"))
    }

    /// The list's position.
    pub(crate) fn index(self) -> usize {
        self.0.get() as usize - 1
    }
}

/// Trained centroids and the lists built on them.
#[derive(Clone)]
pub(crate) struct Ivf {
    pub(crate) quantizer: Quantizer,
    pub(crate) lists: InvertedLists,
}

impl Ivf {
    /// Empty lists over `centroids` (`n_lists × dim`, row-major), coded by `codec` if given,
    /// keeping what `resident` says.
    pub(crate) fn new(dim: usize, centroids: Vec<f32>, codec: Option<Codec>, resident: Resident) -> Ivf {
        let quantizer = Quantizer::new(dim, centroids);
        let lists = InvertedLists::new(dim, quantizer.shared_centroids(), codec, resident);
        Ivf { quantizer, lists }
    }

    pub(crate) fn n_lists(&self) -> usize {
        self.quantizer.n_lists()
    }

    /// Scans the `n_probes` lists nearest to `probe_vec` and returns the `k` best accepted
    /// slots, best first. With a filter (`accept`), scanning goes on past `n_probes` lists,
    /// nearest first, until `k` items are accepted or every list was scanned, so a selective
    /// filter still returns `k` results whenever that many match. Coded lists yield the
    /// `rerank × k` best candidates by their codes (`rerank` ≥ 1), re-scored exactly on their
    /// vectors, so the scores returned are exact; codes-only lists (no vectors to re-score
    /// on) return the `k` best by their codes, with the codes' scores.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn search(
        &self,
        metric: Metric,
        q: &Query,
        probe_vec: &[f32],
        n_probes: usize,
        k: usize,
        rerank: usize,
        accept: Accept,
    ) -> Vec<Hit> {
        let mut scratch = Vec::new();
        let order = self.quantizer.probe_order(probe_vec, self.probe_len(n_probes, accept), &mut scratch);
        self.search_lists(metric, q, &order, n_probes, k, rerank, accept, &mut scratch)
    }

    /// How many lists of the probe order a search needs: `n_probes`, or all of them with a
    /// filter (scanning goes on until `k` items are accepted).
    pub(crate) fn probe_len(&self, n_probes: usize, accept: Accept) -> usize {
        if accept.is_some() {
            self.n_lists()
        } else {
            n_probes
        }
    }

    /// [`Ivf::search`] with the lists' probe order given (`order`, at least
    /// [`Ivf::probe_len`] lists, nearest first).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn search_lists(
        &self,
        metric: Metric,
        q: &Query,
        order: &[ListId],
        n_probes: usize,
        k: usize,
        rerank: usize,
        accept: Accept,
        scratch: &mut Vec<f32>,
    ) -> Vec<Hit> {
        let rerank = self.rerank(rerank);
        let mut top = TopK::new(k.saturating_mul(rerank));
        let prepared = self.lists.codec().map(|c| c.prepare(q.vector));
        for (scanned, &l) in order.iter().enumerate() {
            if scanned >= n_probes && top.len() >= k {
                break;
            }
            self.scan_list(l, metric, q, prepared.as_ref(), accept, &mut top, scratch);
        }
        self.finish(metric, q, top, k, rerank)
    }

    /// [`Ivf::search_lists`] of every query in `queries` (`orders[i]` is query i's probe
    /// order), with the same results, list by list: each list a query probes among its
    /// first `n_probes` is scanned for all the queries that probe it while its rows are in
    /// cache, so a batch reads a list from memory about once instead of once per query
    /// (`queries × n_probes / n_lists` times fewer list reads; BENCHMARKS.md, "Batches
    /// scan list by list"). A query left with fewer than `k` accepted hits then goes on
    /// through its order alone, as [`Ivf::search_lists`] does. `stop` is asked between
    /// lists; when it says so the results are empty.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn search_batch(
        &self,
        metric: Metric,
        queries: &[Query],
        orders: &[Vec<ListId>],
        n_probes: usize,
        k: usize,
        rerank: usize,
        accept: Accept,
        stop: &dyn Fn() -> bool,
    ) -> Vec<Vec<Hit>> {
        debug_assert_eq!(queries.len(), orders.len());
        let rerank = self.rerank(rerank);
        let prepared: Vec<_> = queries.iter().map(|q| self.lists.codec().map(|c| c.prepare(q.vector))).collect();
        let mut tops: Vec<TopK> = queries.iter().map(|_| TopK::new(k.saturating_mul(rerank))).collect();
        let mut visits: Vec<Vec<u32>> = vec![Vec::new(); self.n_lists()];
        for (qi, order) in orders.iter().enumerate() {
            for l in &order[..n_probes.min(order.len())] {
                visits[l.index()].push(qi as u32);
            }
        }
        let mut scratch = Vec::new();
        for (l, who) in visits.iter().enumerate().filter(|(_, who)| !who.is_empty()) {
            if stop() {
                return vec![Vec::new(); queries.len()];
            }
            for &qi in who {
                let qi = qi as usize;
                let (q, prepared) = (&queries[qi], prepared[qi].as_ref());
                self.scan_list(ListId::new(l), metric, q, prepared, accept, &mut tops[qi], &mut scratch);
            }
        }
        tops.into_iter()
            .enumerate()
            .map(|(qi, mut top)| {
                let (q, prepared) = (&queries[qi], prepared[qi].as_ref());
                for &l in orders[qi].iter().skip(n_probes) {
                    if top.len() >= k {
                        break;
                    }
                    self.scan_list(l, metric, q, prepared, accept, &mut top, &mut scratch);
                }
                self.finish(metric, q, top, k, rerank)
            })
            .collect()
    }

    /// The candidates per result a search takes from the lists: `rerank` (at least 1) for
    /// coded lists with vectors to re-score on, else 1.
    fn rerank(&self, rerank: usize) -> usize {
        if self.lists.codec().is_some() && self.lists.holds_vectors() {
            rerank.max(1)
        } else {
            1
        }
    }

    /// Offers list `l`'s rows, scored for `q` (by its codes, `prepared` for them, if the lists
    /// have codes), to `top`.
    #[allow(clippy::too_many_arguments)]
    fn scan_list(
        &self,
        l: ListId,
        metric: Metric,
        q: &Query,
        prepared: Option<&Prepared>,
        accept: Accept,
        top: &mut TopK,
        scratch: &mut Vec<f32>,
    ) {
        let list = self.lists.list(l);
        let slot_of = |i: usize| list.slots[i];
        match prepared {
            Some(prepared) => {
                scan_into(&self.lists.code_scanner(l, metric, q, prepared), slot_of, accept, top, scratch)
            }
            None => scan_into(&self.lists.scanner(l, metric, q), slot_of, accept, top, scratch),
        }
    }

    /// The `k` best of a search's candidates: re-scored exactly on their vectors when the
    /// candidates came from codes (`rerank` > 1, or any coded lists with vectors).
    fn finish(&self, metric: Metric, q: &Query, top: TopK, k: usize, rerank: usize) -> Vec<Hit> {
        let codec = self.lists.codec();
        if rerank == 1 && (codec.is_none() || !self.lists.holds_vectors()) {
            return top.into_sorted();
        }
        let candidates = top.into_sorted();
        // The candidates' vectors lie anywhere in memory: ask for all of them first, so
        // their cache misses overlap instead of coming one row at a time.
        for hit in &candidates {
            kernels::prefetch(self.lists.vector(hit.slot));
        }
        let mut exact = TopK::new(k);
        for hit in candidates {
            exact.push(Hit { score: self.exact_score(metric, q, hit.slot), slot: hit.slot });
        }
        exact.into_sorted()
    }

    /// The score of `slot`'s vector, computed as a flat list scan computes it (so a re-ranked
    /// distance equals the flat index's, bit for bit).
    fn exact_score(&self, metric: Metric, q: &Query, slot: Slot) -> f32 {
        let norm = [self.lists.norm(slot)];
        let mut out = [0f32];
        FlatScanner::new(metric, q, self.lists.vector(slot), &norm).score(0, &mut out);
        out[0]
    }

    /// The vector of `slot`.
    pub(crate) fn vector(&self, slot: Slot) -> &[f32] {
        self.lists.vector(slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_ids_are_positions_and_take_no_more_room_as_options() {
        assert_eq!(ListId::new(0).index(), 0);
        assert_eq!(ListId::new(70_000).index(), 70_000);
        assert_eq!(std::mem::size_of::<Option<ListId>>(), 4);
    }

    #[test]
    fn fill_builds_the_lists_one_insert_per_slot_builds() {
        let dim = 3;
        let centroids: Vec<f32> = (0..5 * dim).map(|i| i as f32).collect();
        let n = 1000;
        let vectors: Vec<f32> = (0..n * dim).map(|i| (i as f32 * 0.37).sin()).collect();
        let norms: Vec<f32> = (0..n).map(|i| i as f32).collect();
        // Uneven lists, one left empty.
        let lists: Vec<ListId> = (0..n).map(|i| ListId::new([0, 1, 1, 3, 4, 4, 4][i % 7])).collect();
        let mut by_insert = Ivf::new(dim, centroids.clone(), None, Resident::Vectors);
        for (s, &l) in lists.iter().enumerate() {
            by_insert.lists.insert(Slot::at(s), l, &vectors[s * dim..(s + 1) * dim], norms[s]);
        }
        let mut filled = Ivf::new(dim, centroids.clone(), None, Resident::Vectors);
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        filled.lists.fill(&lists, &|s| &vectors[s.index() * dim..(s.index() + 1) * dim], &norms, &pool);
        assert_eq!(filled.lists.sizes(), vec![143, 286, 0, 143, 428]);
        assert!(filled.lists.is_exactly_sized(), "no slack after a fill");
        assert_eq!(filled.lists.heap_bytes().vectors, n * dim * 4);
        for s in 0..n {
            assert_eq!(filled.vector(Slot::at(s)), by_insert.vector(Slot::at(s)));
            assert_eq!(filled.lists.norm(Slot::at(s)), by_insert.lists.norm(Slot::at(s)));
        }
        for l in 0..5 {
            assert_eq!(filled.lists.list(ListId::new(l)).slots, by_insert.lists.list(ListId::new(l)).slots);
        }
        let q = Query::new(&vectors[..dim]);
        assert_eq!(
            filled.search(Metric::SquaredEuclidean, &q, &vectors[..dim], 5, 10, 1, None),
            by_insert.search(Metric::SquaredEuclidean, &q, &vectors[..dim], 5, 10, 1, None)
        );
        // A fill that takes the column (and reorders it in place into the arena) builds the
        // same lists; so do both after writes that move lists out of their arena room.
        let mut from_column = Ivf::new(dim, centroids.clone(), None, Resident::Vectors);
        from_column.lists.fill_from_column(&lists, vectors.clone(), &norms, &pool);
        assert!(from_column.lists.is_exactly_sized());
        let same = |a: &Ivf, b: &Ivf, live: &[usize]| {
            for &s in live {
                assert_eq!(a.vector(Slot::at(s)), b.vector(Slot::at(s)), "slot {s}");
                assert_eq!(a.lists.norm(Slot::at(s)), b.lists.norm(Slot::at(s)));
            }
            for l in 0..5 {
                assert_eq!(a.lists.list(ListId::new(l)).slots, b.lists.list(ListId::new(l)).slots, "list {l}");
            }
            let q = Query::new(&vectors[dim..2 * dim]);
            assert_eq!(
                a.search(Metric::SquaredEuclidean, &q, q.vector, 5, 50, 1, None),
                b.search(Metric::SquaredEuclidean, &q, q.vector, 5, 50, 1, None)
            );
        };
        same(&from_column, &by_insert, &(0..n).collect::<Vec<_>>());
        // Removes (within the arena rows), then inserts: into freed room first, then past it.
        let extra: Vec<f32> = (0..300 * dim).map(|i| (i as f32 * 0.11).cos()).collect();
        for ivf in [&mut by_insert, &mut filled, &mut from_column] {
            for s in (0..n).step_by(3) {
                ivf.lists.remove(Slot::at(s));
            }
            for k in 0..300 {
                let l = ListId::new([0, 1, 3, 4, 4][k % 5]);
                ivf.lists.insert(Slot::at(n + k), l, &extra[k * dim..(k + 1) * dim], k as f32);
            }
        }
        let live: Vec<usize> = (0..n + 300).filter(|s| *s >= n || s % 3 != 0).collect();
        same(&filled, &by_insert, &live);
        same(&from_column, &by_insert, &live);
        assert!(!from_column.lists.is_exactly_sized(), "lists that outgrew the arena grow by doubling");
    }

    #[test]
    fn insert_remove_relabel_keep_lists_consistent() {
        let mut ivf = Ivf::new(1, vec![0.0, 10.0], None, Resident::Vectors);
        for (slot, x) in [(0u32, 1.0f32), (1, 9.0), (2, 2.0), (3, 11.0)] {
            let list = ivf.quantizer.nearest(&[x]);
            ivf.lists.insert(Slot(slot), list, &[x], x.abs());
        }
        assert_eq!(ivf.lists.sizes(), vec![2, 2]);
        ivf.lists.remove(Slot(0));
        assert_eq!(ivf.lists.sizes(), vec![1, 2]);
        // The working set moved slot 3 into the hole at slot 0.
        ivf.lists.relabel(Slot(3), Slot(0));
        let hits = ivf.search(Metric::SquaredEuclidean, &Query::new(&[11.0]), &[11.0], 1, 5, 1, None);
        let slots: Vec<Slot> = hits.iter().map(|h| h.slot).collect();
        assert_eq!(slots, vec![Slot(0), Slot(1)]);
        let all = ivf.search(Metric::SquaredEuclidean, &Query::new(&[2.0]), &[2.0], 2, 10, 1, None);
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].slot, Slot(2));
    }

    #[test]
    fn coded_lists_keep_each_slot_s_code_with_its_vector() {
        use crate::vector::codes::IndexType;
        let rows: Vec<[f32; 2]> = (0..40).map(|i| [i as f32, (i * 7 % 11) as f32]).collect();
        let centroids = [0.0, 0.0, 30.0, 10.0];
        for index_type in [IndexType::IvfSq8, IndexType::IvfFp16, IndexType::IvfPq(Default::default())] {
            let quantizer = Quantizer::new(2, centroids.to_vec());
            let centroid = |i: usize| {
                let l = quantizer.nearest(&rows[i]).index();
                &centroids[2 * l..2 * l + 2]
            };
            let codec = Codec::train(index_type, 2, rows.len(), &|i| &rows[i][..], &centroid, 1).unwrap();
            let mut ivf = Ivf::new(2, centroids.to_vec(), Some(codec.clone()), Resident::Vectors);
            for (s, v) in rows.iter().enumerate() {
                let list = ivf.quantizer.nearest(v);
                ivf.lists.insert(Slot::at(s), list, v, 0.0);
            }
            // Remove from the middle of lists, then move the last slot into a hole.
            for s in [3, 17, 0, 25] {
                ivf.lists.remove(Slot::at(s));
            }
            ivf.lists.relabel(Slot::at(39), Slot::at(3));
            for s in (1..39).filter(|s| ![17, 0, 25].contains(s)) {
                let slot = Slot::at(s);
                let want = if s == 3 { &rows[39] } else { &rows[s] };
                assert_eq!(ivf.vector(slot), &want[..]);
                let mut code = Vec::new();
                let l = ivf.quantizer.nearest(want).index();
                codec.encode(want, Some(&centroids[2 * l..2 * l + 2]), &mut code);
                assert_eq!(ivf.lists.code(slot), &code[..], "{index_type:?} slot {s}");
            }
            // Every list's codes still line up with its slots: an exact query re-ranks to distance 0.
            let q = Query::new(&rows[10]);
            let hits = ivf.search(Metric::SquaredEuclidean, &q, &rows[10], 2, 1, 4, None);
            assert_eq!((hits[0].slot, hits[0].score), (Slot::at(10), 0.0));
        }
    }
}
