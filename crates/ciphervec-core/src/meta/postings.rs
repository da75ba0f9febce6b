//! The metadata index: for every field path and scalar value in the items' metadata, the set
//! of items holding it (a roaring bitmap of working-set positions). It answers the part of a
//! filter made of equalities (`{f: v}`, `$eq`, `$in`, combined by `$and` / `$or`) with a
//! candidate set that contains every matching item; callers still run the filter on each
//! candidate, so the index only has to be a superset and the filter's semantics stay in one
//! place (`filter::eval`). Built in memory from decrypted metadata and never stored: the store
//! learns nothing from it.

use std::collections::{BTreeMap, HashMap};

use roaring::{MultiOps, RoaringBitmap};

use crate::meta::filter::Planned;
use crate::meta::value::{Meta, MetaRef};

/// A scalar as the index keys it. Numbers by their `f64` value (so `20` and `20.0` share a key;
/// integers beyond 2^53 may share one too, which only widens a candidate set).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    Bool(bool),
    Num(OrdNum),
    Str(Box<str>),
}

/// A finite `f64` ordered by value, `-0.0` stored as `0.0` (they are equal numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct OrdNum(i64);

impl OrdNum {
    fn new(x: f64) -> OrdNum {
        let x = if x == 0.0 { 0.0 } else { x };
        // The usual total-order trick: flip the magnitude bits of negatives.
        let bits = x.to_bits() as i64;
        OrdNum(bits ^ (((bits >> 63) as u64) >> 1) as i64)
    }
}

impl Key {
    /// The key of a number.
    pub(crate) fn num(x: f64) -> Key {
        Key::Num(OrdNum::new(x))
    }

    fn of(v: MetaRef<'_>) -> Option<Key> {
        Some(match v {
            MetaRef::Bool(b) => Key::Bool(b),
            MetaRef::U64(u) => Key::num(u as f64),
            MetaRef::I64(i) => Key::num(i as f64),
            MetaRef::F64(f) => Key::num(f),
            MetaRef::Str(s) => Key::Str(s.into()),
            MetaRef::Null | MetaRef::Array(_) | MetaRef::Object(_) => return None,
        })
    }
}

/// One end of a range of values.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum End {
    /// Numbers from (or up to) this value; `inclusive` unless the filter's bound is strict and
    /// an `f64` exactly (a bound rounded to `f64` like the values keeps order only
    /// non-strictly, so it stays inclusive and the candidates a superset).
    Num(f64, bool),
    /// Strings from (or up to) this one; `inclusive` as the filter says.
    Str(Box<str>, bool),
}

/// What a filter guarantees of every item it matches, in index terms: the item holds `key` at
/// `path` (`Term`), a value of the range at `path` (`Range`, of one type: both ends numbers or
/// both strings, or one end open), every part holds (`And`), or some part holds (`Or`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Plan {
    Term(Box<str>, Key),
    Range(Box<str>, Option<End>, Option<End>),
    And(Vec<Plan>),
    Or(Vec<Plan>),
}

/// The values one path holds, each with its items.
#[derive(Default, Clone)]
struct Field {
    nums: BTreeMap<OrdNum, RoaringBitmap>,
    strs: BTreeMap<Box<str>, RoaringBitmap>,
    bools: [RoaringBitmap; 2],
    /// Values here that are not `f64`s exactly (integers beyond 2^53): while there are any,
    /// a number's key may stand for several values, and numeric plans here are not exact.
    lossy: u64,
}

impl Field {
    fn set_mut(&mut self, key: Key) -> &mut RoaringBitmap {
        match key {
            Key::Bool(b) => &mut self.bools[b as usize],
            Key::Num(n) => self.nums.entry(n).or_default(),
            Key::Str(s) => self.strs.entry(s).or_default(),
        }
    }

    fn remove(&mut self, key: &Key, slot: u32) {
        match key {
            Key::Bool(b) => {
                self.bools[*b as usize].remove(slot);
            }
            Key::Num(n) => {
                if let Some(set) = self.nums.get_mut(n) {
                    set.remove(slot);
                    if set.is_empty() {
                        self.nums.remove(n);
                    }
                }
            }
            Key::Str(s) => {
                if let Some(set) = self.strs.get_mut(s) {
                    set.remove(slot);
                    if set.is_empty() {
                        self.strs.remove(s);
                    }
                }
            }
        }
    }

    /// Adds `other`'s sets to this field's (their items are others: a merge of two builds).
    fn merge(&mut self, other: Field) {
        for (n, set) in other.nums {
            *self.nums.entry(n).or_default() |= set;
        }
        for (s, set) in other.strs {
            *self.strs.entry(s).or_default() |= set;
        }
        for (mine, theirs) in self.bools.iter_mut().zip(other.bools) {
            *mine |= theirs;
        }
        self.lossy += other.lossy;
    }

    fn get(&self, key: &Key) -> Option<&RoaringBitmap> {
        match key {
            Key::Bool(b) => Some(&self.bools[*b as usize]),
            Key::Num(n) => self.nums.get(n),
            Key::Str(s) => self.strs.get(s),
        }
    }

    fn range(&self, lo: Option<&End>, hi: Option<&End>) -> RoaringBitmap {
        // One multi-way union: folding `|=` over a range's sets re-copied the growing result
        // at each step (a 100-value range of ~195 items each was a fifth of a query's time).
        let mut sets = Vec::new();
        self.each_in_range(lo, hi, &mut |s| sets.push(s));
        sets.union()
    }

    fn range_len(&self, lo: Option<&End>, hi: Option<&End>) -> u64 {
        let mut n = 0;
        self.each_in_range(lo, hi, &mut |s| n += s.len());
        n
    }

    /// Calls `f` with the set of every value between the ends.
    fn each_in_range<'a>(&'a self, lo: Option<&End>, hi: Option<&End>, f: &mut dyn FnMut(&'a RoaringBitmap)) {
        use std::ops::Bound::{Excluded, Included, Unbounded};
        let mut union = |sets: &mut dyn Iterator<Item = &'a RoaringBitmap>| sets.for_each(&mut *f);
        match (lo, hi) {
            (Some(End::Str(..)), _) | (_, Some(End::Str(..))) => {
                let bound = |e: Option<&End>| match e {
                    Some(End::Str(s, true)) => Included(s.clone()),
                    Some(End::Str(s, false)) => Excluded(s.clone()),
                    _ => Unbounded,
                };
                let (l, h) = (bound(lo), bound(hi));
                let empty = match (&l, &h) {
                    (Included(a), Included(b)) => a > b,
                    (Included(a) | Excluded(a), Included(b) | Excluded(b)) => a >= b,
                    _ => false,
                };
                if empty {
                    return;
                }
                union(&mut self.strs.range::<Box<str>, _>((l, h)).map(|(_, s)| s))
            }
            _ => {
                let bound = |e: Option<&End>| match e {
                    Some(End::Num(x, true)) => Included(OrdNum::new(*x)),
                    Some(End::Num(x, false)) => Excluded(OrdNum::new(*x)),
                    _ => Unbounded,
                };
                let (l, h) = (bound(lo), bound(hi));
                let empty = match (&l, &h) {
                    (Included(a), Included(b)) => a > b,
                    (Included(a) | Excluded(a), Included(b) | Excluded(b)) => a >= b,
                    _ => false,
                };
                if empty {
                    return; // BTreeMap::range panics on an empty range of excluded ends
                }
                union(&mut self.nums.range((l, h)).map(|(_, s)| s))
            }
        }
    }

    fn heap_bytes(&self) -> usize {
        let sets = self.nums.values().chain(self.strs.values()).chain(&self.bools);
        sets.map(|s| s.serialized_size() + 48).sum::<usize>() + self.strs.keys().map(|k| k.len()).sum::<usize>()
    }
}

/// The metadata index of a working set (see the module docs).
#[derive(Default, Clone)]
pub(crate) struct Postings {
    fields: HashMap<Box<str>, Field>,
    /// Paths left out of the index, with everything below them (`createIndex({
    /// unindexedFields })`): filters on them are checked item by item.
    unindexed: Vec<String>,
}

impl Postings {
    /// An empty index that leaves out `unindexed` paths and everything below them.
    pub(crate) fn leaving_out(unindexed: &[String]) -> Postings {
        Postings { fields: HashMap::new(), unindexed: unindexed.to_vec() }
    }

    /// The index of `n` items, item `i` holding `meta(i)`, built in parallel on `pool` from
    /// runs of items whose indexes are then merged: at load, one thread made it half of the
    /// load of 390k items with three fields (BENCHMARKS.md, "Filtered queries").
    pub(crate) fn build<'m>(
        unindexed: &[String],
        n: usize,
        meta: &(dyn Fn(usize) -> Option<&'m Meta> + Sync),
        pool: &rayon::ThreadPool,
    ) -> Postings {
        use rayon::prelude::*;
        const RUN: usize = 32_768;
        let runs: Vec<Postings> = pool.install(|| {
            (0..n.div_ceil(RUN))
                .into_par_iter()
                .map(|r| {
                    let mut part = Postings::leaving_out(unindexed);
                    for i in r * RUN..((r + 1) * RUN).min(n) {
                        part.insert(i as u32, meta(i));
                    }
                    part
                })
                .collect()
        });
        let mut out = Postings::leaving_out(unindexed);
        for part in runs {
            for (path, field) in part.fields {
                match out.fields.get_mut(&path) {
                    Some(mine) => mine.merge(field),
                    None => {
                        out.fields.insert(path, field);
                    }
                }
            }
        }
        out
    }

    /// Whether `path` is left out.
    fn is_unindexed(&self, path: &str) -> bool {
        self.unindexed
            .iter()
            .any(|u| path.strip_prefix(u.as_str()).is_some_and(|rest| rest.is_empty() || rest.starts_with('.')))
    }

    /// The terms of `meta` this index holds.
    fn indexed_terms(&self, meta: Option<&Meta>) -> impl Iterator<Item = (Box<str>, Key, bool)> + '_ {
        terms(meta).into_iter().filter(|(path, _, _)| !self.is_unindexed(path))
    }

    /// Adds item `slot` with metadata `meta`.
    pub(crate) fn insert(&mut self, slot: u32, meta: Option<&Meta>) {
        let terms: Vec<_> = self.indexed_terms(meta).collect();
        for (path, key, lossy) in terms {
            let field = self.fields.entry(path).or_default();
            field.lossy += u64::from(lossy);
            field.set_mut(key).insert(slot);
        }
    }

    /// Removes item `slot`, whose metadata is `meta`.
    pub(crate) fn remove(&mut self, slot: u32, meta: Option<&Meta>) {
        let terms: Vec<_> = self.indexed_terms(meta).collect();
        for (path, key, lossy) in terms {
            if let Some(field) = self.fields.get_mut(&path) {
                field.lossy -= u64::from(lossy);
                field.remove(&key, slot);
            }
        }
    }

    /// `planned` limited to the paths this index holds: an `And` keeps its indexed parts (each
    /// is implied, so the rest still bound the matches), while an `Or`, a term or a range on
    /// an unindexed path cannot be planned. A plan that lost a part is no longer exact.
    /// Numeric parts on a path holding values that are not `f64`s exactly stay, but the plan
    /// is then not exact either.
    pub(crate) fn restrict(&self, planned: Planned) -> Option<Planned> {
        let mut lost = false;
        let plan = self.restrict_plan(planned.plan, &mut lost)?;
        Some(Planned { plan, exact: planned.exact && !lost })
    }

    fn restrict_plan(&self, plan: Plan, lost: &mut bool) -> Option<Plan> {
        match plan {
            Plan::Term(ref path, _) | Plan::Range(ref path, _, _) => {
                if self.is_unindexed(path) {
                    return None;
                }
                let numeric = match &plan {
                    Plan::Term(_, key) => matches!(key, Key::Num(_)),
                    Plan::Range(_, lo, hi) => matches!((lo, hi), (Some(End::Num(..)), _) | (_, Some(End::Num(..)))),
                    _ => false,
                };
                *lost |= numeric && self.fields.get(path).is_some_and(|f| f.lossy > 0);
                Some(plan)
            }
            Plan::And(parts) => {
                let n = parts.len();
                let kept: Vec<Plan> = parts.into_iter().filter_map(|p| self.restrict_plan(p, lost)).collect();
                *lost |= kept.len() < n;
                match kept.len() {
                    0 => None,
                    1 => kept.into_iter().next(),
                    _ => Some(Plan::And(kept)),
                }
            }
            Plan::Or(parts) => {
                let kept: Option<Vec<Plan>> = parts.into_iter().map(|p| self.restrict_plan(p, lost)).collect();
                kept.map(Plan::Or)
            }
        }
    }

    /// The items that may match a filter planned as `plan`: a superset of its matches.
    pub(crate) fn candidates(&self, plan: &Plan) -> RoaringBitmap {
        match plan {
            Plan::Term(path, key) => self.fields.get(path).and_then(|f| f.get(key)).cloned().unwrap_or_default(),
            Plan::Range(path, lo, hi) => {
                self.fields.get(path).map(|f| f.range(lo.as_ref(), hi.as_ref())).unwrap_or_default()
            }
            Plan::And(parts) => {
                let mut sets = parts.iter().map(|p| self.candidates(p));
                let first = sets.next().unwrap_or_default();
                sets.fold(first, |acc, s| acc & s)
            }
            Plan::Or(parts) => parts.iter().map(|p| self.candidates(p)).union(),
        }
    }

    /// An upper bound on `candidates(plan).len()`, without building the set: a range or an
    /// `Or` counts its parts' sizes, an `And` its smallest part's.
    pub(crate) fn estimate(&self, plan: &Plan) -> u64 {
        match plan {
            Plan::Term(path, key) => self.fields.get(path).and_then(|f| f.get(key)).map_or(0, RoaringBitmap::len),
            Plan::Range(path, lo, hi) => self.fields.get(path).map_or(0, |f| f.range_len(lo.as_ref(), hi.as_ref())),
            Plan::And(parts) => parts.iter().map(|p| self.estimate(p)).min().unwrap_or(0),
            Plan::Or(parts) => parts.iter().map(|p| self.estimate(p)).sum(),
        }
    }

    /// Heap bytes, estimated from the sets' serialized sizes and the keys.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.fields.iter().map(|(path, f)| path.len() + 64 + f.heap_bytes()).sum()
    }
}

/// Every (path, scalar) an item holds: scalars at object paths, and the scalar elements of
/// arrays at object paths (what `{f: v}` matches); nothing inside arrays of arrays or objects
/// (filters do not fan out over them).
/// Whether a value is a number that is not an `f64` exactly (an integer beyond 2^53), so its
/// key may stand for other values too.
fn is_lossy(v: MetaRef<'_>) -> bool {
    match v {
        MetaRef::U64(u) => u > 1 << 53,
        MetaRef::I64(i) => i.unsigned_abs() > 1 << 53,
        _ => false,
    }
}

fn terms(meta: Option<&Meta>) -> Vec<(Box<str>, Key, bool)> {
    let mut out = Vec::new();
    if let Some(MetaRef::Object(o)) = meta.map(Meta::as_ref) {
        let mut path = String::new();
        walk(MetaRef::Object(o), &mut path, &mut out);
    }
    out
}

fn walk(v: MetaRef<'_>, path: &mut String, out: &mut Vec<(Box<str>, Key, bool)>) {
    match v {
        MetaRef::Object(o) => {
            for (k, child) in o.iter() {
                if k.contains('.') {
                    continue; // not addressable by a path
                }
                let len = path.len();
                if len > 0 {
                    path.push('.');
                }
                path.push_str(k);
                walk(child, path, out);
                path.truncate(len);
            }
        }
        MetaRef::Array(items) => {
            for e in items.iter() {
                if let Some(key) = Key::of(e) {
                    out.push((path.as_str().into(), key, is_lossy(e)));
                }
            }
        }
        scalar => {
            if let Some(key) = Key::of(scalar) {
                out.push((path.as_str().into(), key, is_lossy(scalar)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn meta(v: serde_json::Value) -> Meta {
        Meta::from(&v)
    }

    #[test]
    fn numeric_plans_are_exact_only_while_every_value_is_an_f64_exactly() {
        let exactness = |p: &Postings, f: serde_json::Value| {
            p.restrict(crate::meta::Filter::parse(&f).unwrap().plan().unwrap()).unwrap().exact
        };
        let mut p = Postings::default();
        p.insert(0, Some(&meta(json!({ "n": 5, "m": 1 }))));
        assert!(exactness(&p, json!({ "n": { "$gt": 4 } })));
        let big = json!({ "n": 9007199254740993u64, "m": 1 });
        p.insert(1, Some(&meta(big.clone())));
        assert!(!exactness(&p, json!({ "n": { "$gt": 4 } })), "a key of n may stand for two values");
        assert!(exactness(&p, json!({ "m": 1 })), "other fields stay exact");
        p.remove(1, Some(&meta(big)));
        assert!(exactness(&p, json!({ "n": 5 })));
    }

    #[test]
    fn a_parallel_build_equals_inserting_one_by_one() {
        let metas: Vec<Option<Meta>> = (0..70_000u64)
            .map(|i| {
                (i % 11 != 0).then(|| {
                    meta(json!({ "b": i % 97, "s": format!("v{}", i % 13), "f": i % 2 == 0, "a": [i % 5, "x"], "o": { "k": i % 3 } }))
                })
            })
            .collect();
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        let unindexed = ["o".to_string()];
        let built = Postings::build(&unindexed, metas.len(), &|i| metas[i].as_ref(), &pool);
        let mut one_by_one = Postings::leaving_out(&unindexed);
        for (i, m) in metas.iter().enumerate() {
            one_by_one.insert(i as u32, m.as_ref());
        }
        assert_eq!(built.fields.len(), one_by_one.fields.len());
        for (path, field) in &one_by_one.fields {
            let other = &built.fields[path];
            assert_eq!(field.nums, other.nums, "{path}");
            assert_eq!(field.strs, other.strs, "{path}");
            assert_eq!(field.bools, other.bools, "{path}");
        }
        assert!(!built.fields.contains_key("o.k"), "unindexed paths stay out");
    }

    #[test]
    fn terms_cover_scalars_and_array_elements_at_object_paths() {
        let m = meta(json!({ "a": 1, "b": { "c": "x", "d": [true, 2.0, [3], { "e": 4 }] }, "n": null, "k.dot": 5 }));
        let mut got = terms(Some(&m));
        got.sort_by(|x, y| format!("{x:?}").cmp(&format!("{y:?}")));
        let want =
            [("a", Key::num(1.0)), ("b.c", Key::Str("x".into())), ("b.d", Key::Bool(true)), ("b.d", Key::num(2.0))];
        assert_eq!(got.len(), want.len(), "{got:?}");
        for (p, k) in want {
            assert!(got.contains(&(p.into(), k.clone(), false)), "{p} {k:?} in {got:?}");
        }
    }

    #[test]
    fn candidates_combine_and_removal_forgets() {
        let mut p = Postings::default();
        p.insert(0, Some(&meta(json!({ "t": "a", "y": 1 }))));
        p.insert(1, Some(&meta(json!({ "t": "b", "y": 1 }))));
        p.insert(2, Some(&meta(json!({ "t": ["a", "b"], "y": 2 }))));
        let t = |v: &str| Plan::Term("t".into(), Key::Str(v.into()));
        let y = |v: f64| Plan::Term("y".into(), Key::num(v));
        let ids = |b: RoaringBitmap| b.iter().collect::<Vec<u32>>();
        assert_eq!(ids(p.candidates(&t("a"))), vec![0, 2]);
        assert_eq!(ids(p.candidates(&Plan::And(vec![t("a"), y(1.0)]))), vec![0]);
        assert_eq!(ids(p.candidates(&Plan::Or(vec![t("b"), y(2.0)]))), vec![1, 2]);
        assert_eq!(ids(p.candidates(&y(-0.0 + 1.0))), vec![0, 1]);
        p.remove(2, Some(&meta(json!({ "t": ["a", "b"], "y": 2 }))));
        assert_eq!(ids(p.candidates(&t("a"))), vec![0]);
        assert!(p.candidates(&y(2.0)).is_empty());
        assert_eq!(Key::num(0.0), Key::num(-0.0));
    }

    #[test]
    fn ranges_take_every_value_between_their_ends() {
        let mut p = Postings::default();
        for (i, v) in [json!(-3.5), json!(-1), json!(0), json!(2), json!(9.25), json!("b"), json!("d"), json!([1, "c"])]
            .iter()
            .enumerate()
        {
            p.insert(i as u32, Some(&meta(json!({ "x": v }))));
        }
        let ids = |lo: Option<End>, hi: Option<End>| {
            p.candidates(&Plan::Range("x".into(), lo, hi)).iter().collect::<Vec<u32>>()
        };
        assert_eq!(ids(Some(End::Num(-1.0, true)), Some(End::Num(2.0, true))), vec![1, 2, 3, 7]);
        assert_eq!(ids(Some(End::Num(-1.0, false)), Some(End::Num(2.0, false))), vec![2, 7], "exclusive ends");
        assert_eq!(ids(None, Some(End::Num(-2.0, true))), vec![0]);
        assert_eq!(ids(Some(End::Num(5.0, true)), None), vec![4]);
        assert_eq!(ids(Some(End::Num(5.0, true)), Some(End::Num(1.0, true))), Vec::<u32>::new());
        assert_eq!(ids(Some(End::Num(2.0, false)), Some(End::Num(2.0, false))), Vec::<u32>::new(), "no panic");
        assert_eq!(ids(Some(End::Num(2.0, true)), Some(End::Num(2.0, false))), Vec::<u32>::new());
        assert_eq!(ids(Some(End::Str("b".into(), false)), None), vec![6, 7]);
        assert_eq!(ids(Some(End::Str("b".into(), true)), Some(End::Str("c".into(), true))), vec![5, 7]);
        assert_eq!(ids(Some(End::Str("z".into(), true)), Some(End::Str("a".into(), true))), Vec::<u32>::new());
        // Ordering of the number keys across signs and magnitudes.
        let mut xs = [-1e300, -2.0, -0.5, 0.0, 1e-300, 0.5, 3.0, 1e300];
        xs.reverse();
        let mut keys: Vec<OrdNum> = xs.iter().map(|&x| OrdNum::new(x)).collect();
        keys.sort();
        let back: Vec<OrdNum> =
            [-1e300, -2.0, -0.5, 0.0, 1e-300, 0.5, 3.0, 1e300].iter().map(|&x| OrdNum::new(x)).collect();
        assert_eq!(keys, back);
    }
}
