//! The in-memory state of an index: the working set and, once trained, its inverted lists,
//! changed together so they never disagree about which slot holds which item.

use std::borrow::Cow;

use crate::items::{Items, Stored};
use crate::ivf::Ivf;
use crate::kernels;
use crate::metric::Metric;
use crate::record::{Record, UNASSIGNED};

pub struct State {
    pub items: Items,
    pub ivf: Option<Ivf>,
}

/// The vector that decides an item's list: unit length under cosine (so k-means clusters
/// directions), the vector itself otherwise.
pub fn placement(metric: Metric, v: &[f32]) -> Cow<'_, [f32]> {
    if metric != Metric::Cosine {
        return Cow::Borrowed(v);
    }
    let norm = kernels::norm_sqr(v).sqrt();
    Cow::Owned(v.iter().map(|x| x / norm).collect())
}

impl State {
    pub fn new(items: Items) -> State {
        State { items, ivf: None }
    }

    /// Inserts or replaces an item stored as `stored`. Under IVF,
    /// `rec.list` must name a valid list (callers compute it before sealing, so the list id is
    /// inside the ciphertext).
    pub fn upsert(&mut self, rec: Record, stored: Stored) {
        let list = rec.list;
        let slot = self.items.upsert(rec, stored);
        if let Some(ivf) = &mut self.ivf {
            debug_assert!((list as usize) < ivf.n_lists());
            ivf.remove(slot);
            ivf.insert(slot, list, self.items.vector(slot), self.items.norms()[slot as usize]);
        }
    }

    /// Removes an item; returns whether it existed.
    pub fn remove(&mut self, id: &str) -> bool {
        let Some((slot, moved_from)) = self.items.remove(id) else { return false };
        if let Some(ivf) = &mut self.ivf {
            ivf.remove(slot);
            if let Some(from) = moved_from {
                ivf.relabel(from, slot);
            }
        }
        true
    }

    /// Fills `ivf` with every item, in the list given by `lists[slot]`. Read-only, so it can
    /// run under a read lock; [`State::swap_ivf`] then takes the write lock only briefly.
    pub fn fill_ivf(&self, ivf: &mut Ivf, lists: &[u32], pool: &rayon::ThreadPool) {
        ivf.fill(lists, self.items.vectors(), self.items.norms(), pool);
    }

    /// Installs lists built by [`State::fill_ivf`] from this same working set.
    pub fn swap_ivf(&mut self, ivf: Ivf, lists: &[u32]) {
        for (slot, &list) in lists.iter().enumerate() {
            self.items.set_list(slot as u32, list);
        }
        self.ivf = Some(ivf);
    }

    /// After a load: rebuilds lists from the list ids stored in the records, placing any
    /// record without a valid list by its nearest centroid.
    pub fn rebuild_ivf(&mut self, metric: Metric, ivf: Ivf, pool: &rayon::ThreadPool) {
        let n_lists = ivf.n_lists() as u32;
        let lists: Vec<u32> = (0..self.items.len() as u32)
            .map(|slot| match self.items.list(slot) {
                l if l != UNASSIGNED && l < n_lists => l,
                _ => ivf.nearest_list(&placement(metric, self.items.vector(slot))),
            })
            .collect();
        let mut ivf = ivf;
        self.fill_ivf(&mut ivf, &lists, pool);
        self.swap_ivf(ivf, &lists);
    }
}
