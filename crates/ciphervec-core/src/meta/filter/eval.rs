//! Evaluating a parsed filter against one item's metadata, without allocating.

use std::cmp::Ordering;

use regex::Regex;
use serde_json::{Number, Value};

use crate::meta::value::{Meta, MetaRef};

#[derive(Debug, Clone)]
pub(super) enum Node {
    And(Box<[Node]>),
    Or(Box<[Node]>),
    Nor(Box<[Node]>),
    Not(Box<Node>),
    Field(Box<[Segment]>, Box<[Op]>),
}

impl Node {
    pub(super) fn eval(&self, doc: Option<MetaRef<'_>>) -> bool {
        match self {
            Node::And(children) => children.iter().all(|c| c.eval(doc)),
            Node::Or(children) => children.iter().any(|c| c.eval(doc)),
            Node::Nor(children) => !children.iter().any(|c| c.eval(doc)),
            Node::Not(child) => !child.eval(doc),
            Node::Field(path, ops) => {
                let value = resolve(doc, path);
                ops.iter().all(|op| op.eval(value))
            }
        }
    }
}

/// A path segment, with its array index pre-parsed so lookups do no string work.
#[derive(Debug, Clone)]
pub(super) struct Segment {
    pub(super) key: Box<str>,
    pub(super) index: Option<usize>,
}

pub(super) fn resolve<'a>(doc: Option<MetaRef<'a>>, path: &[Segment]) -> Option<MetaRef<'a>> {
    let mut cur = doc?;
    for seg in path {
        cur = match cur {
            MetaRef::Object(o) => o.get(&seg.key)?,
            MetaRef::Array(items) => items.get(seg.index?)?,
            _ => return None,
        };
    }
    Some(cur)
}

#[derive(Debug, Clone)]
pub(super) enum Op {
    Eq(Lit),
    Ne(Lit),
    Cmp(CmpOp, Bound),
    In(ValueSet),
    Nin(ValueSet),
    Exists(bool),
    Regex(Regex),
    Contains(Lit),
    Not(Box<[Op]>),
}

impl Op {
    pub(super) fn eval(&self, value: Option<MetaRef<'_>>) -> bool {
        match self {
            Op::Eq(lit) => lit.matches_field(value),
            Op::Ne(lit) => value.is_some() && !lit.matches_field(value),
            Op::Cmp(op, bound) => value.is_some_and(|v| any_value(v, |x| bound.test(*op, x))),
            Op::In(set) => set.matches_field(value),
            Op::Nin(set) => !set.matches_field(value),
            Op::Exists(wanted) => value.is_some() == *wanted,
            Op::Regex(re) => value.is_some_and(|v| any_value(v, |x| matches!(x, MetaRef::Str(s) if re.is_match(s)))),
            Op::Contains(lit) => match value {
                Some(MetaRef::Array(items)) => items.iter().any(|e| lit.equals(e)),
                Some(MetaRef::Str(s)) => matches!(lit, Lit::Str(sub) if s.contains(&**sub)),
                _ => false,
            },
            Op::Not(ops) => !ops.iter().all(|op| op.eval(value)),
        }
    }
}

/// Tests `pred` on the value itself and, for arrays, on each element (Mongo's implicit "contains").
fn any_value(v: MetaRef<'_>, pred: impl Fn(MetaRef<'_>) -> bool) -> bool {
    pred(v) || matches!(v, MetaRef::Array(items) if items.iter().any(&pred))
}

/// A number kept exact: integers as i128 (covers i64 and u64), others as f64.
#[derive(Debug, Clone, Copy)]
pub(super) enum Num {
    Int(i128),
    Float(f64),
}

impl Num {
    pub(super) fn of(n: &Number) -> Num {
        if let Some(u) = n.as_u64() {
            Num::Int(u as i128)
        } else if let Some(i) = n.as_i64() {
            Num::Int(i as i128)
        } else {
            Num::Float(n.as_f64().unwrap_or(0.0))
        }
    }

    /// Whether the number is an `f64` exactly (so its index key stands for it alone among
    /// exactly representable values): floats always, integers up to 2^53 in magnitude.
    pub(super) fn is_exact_f64(self) -> bool {
        match self {
            Num::Int(i) => i.unsigned_abs() <= 1 << 53,
            Num::Float(_) => true,
        }
    }

    /// The nearest `f64` (exact for every integer a float can equal).
    pub(super) fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }

    /// The number a metadata value holds, if it is one.
    fn of_meta(v: MetaRef<'_>) -> Option<Num> {
        match v {
            MetaRef::U64(u) => Some(Num::Int(u as i128)),
            MetaRef::I64(i) => Some(Num::Int(i as i128)),
            MetaRef::F64(f) => Some(Num::Float(f)),
            _ => None,
        }
    }
}

/// Total order by mathematical value (JSON numbers are finite).
fn num_cmp(a: Num, b: Num) -> Ordering {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => x.cmp(&y),
        (Num::Float(x), Num::Float(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        (Num::Int(x), Num::Float(y)) => int_float_cmp(x, y),
        (Num::Float(x), Num::Int(y)) => int_float_cmp(y, x).reverse(),
    }
}

/// Exact, unlike `i as f64`, which would make 2^53 + 1 equal 2^53 as a float.
fn int_float_cmp(i: i128, f: f64) -> Ordering {
    const TWO_POW_127: f64 = 170_141_183_460_469_231_731_687_303_715_884_105_728.0;
    if f >= TWO_POW_127 {
        return Ordering::Less;
    }
    if f < -TWO_POW_127 {
        return Ordering::Greater;
    }
    let floor = f.floor();
    match i.cmp(&(floor as i128)) {
        Ordering::Equal if f > floor => Ordering::Less,
        other => other,
    }
}

/// Deep equality with numbers by value (object keys are sorted in both, so key order is
/// ignored). Recursion is bounded by the depth of the filter operand, which parsing limits.
fn deep_eq(a: MetaRef<'_>, b: MetaRef<'_>) -> bool {
    if let (Some(x), Some(y)) = (Num::of_meta(a), Num::of_meta(b)) {
        return num_cmp(x, y).is_eq();
    }
    match (a, b) {
        (MetaRef::Array(x), MetaRef::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y.iter()).all(|(p, q)| deep_eq(p, q))
        }
        (MetaRef::Object(x), MetaRef::Object(y)) => {
            x.len() == y.len() && x.iter().zip(y.iter()).all(|((k, v), (l, w))| k == l && deep_eq(v, w))
        }
        _ => a == b,
    }
}

/// An equality operand, pre-classified so scalar comparisons skip `deep_eq`.
#[derive(Debug, Clone)]
pub(super) enum Lit {
    Null,
    Bool(bool),
    Num(Num),
    Str(Box<str>),
    Composite(Meta),
}

impl Lit {
    /// The metadata-index key of a scalar operand other than `null` (which also matches
    /// missing fields, so the index cannot list its matches).
    /// Whether [`Lit::key`] stands for this operand alone (a number that is an `f64` exactly,
    /// or not a number).
    pub(super) fn key_is_exact(&self) -> bool {
        !matches!(self, Lit::Num(n) if !n.is_exact_f64())
    }

    pub(super) fn key(&self) -> Option<crate::meta::postings::Key> {
        use crate::meta::postings::Key;
        Some(match self {
            Lit::Bool(b) => Key::Bool(*b),
            Lit::Num(n) => Key::num(n.as_f64()),
            Lit::Str(s) => Key::Str(s.clone()),
            Lit::Null | Lit::Composite(_) => return None,
        })
    }

    pub(super) fn new(v: &Value) -> Lit {
        match v {
            Value::Null => Lit::Null,
            Value::Bool(b) => Lit::Bool(*b),
            Value::Number(n) => Lit::Num(Num::of(n)),
            Value::String(s) => Lit::Str(s.as_str().into()),
            Value::Array(_) | Value::Object(_) => Lit::Composite(Meta::from(v)),
        }
    }

    fn equals(&self, v: MetaRef<'_>) -> bool {
        match (self, v) {
            (Lit::Null, MetaRef::Null) => true,
            (Lit::Bool(a), MetaRef::Bool(b)) => *a == b,
            (Lit::Num(a), b) => Num::of_meta(b).is_some_and(|b| num_cmp(*a, b).is_eq()),
            (Lit::Str(a), MetaRef::Str(b)) => **a == *b,
            (Lit::Composite(a), b) => deep_eq(a.as_ref(), b),
            _ => false,
        }
    }

    fn matches_field(&self, value: Option<MetaRef<'_>>) -> bool {
        match value {
            None => matches!(self, Lit::Null),
            Some(v) => any_value(v, |x| self.equals(x)),
        }
    }
}

/// `$in`/`$nin` operand: scalars in sorted vectors (binary search, fast for large
/// lists, allocation-free lookups by `&str`), composites compared linearly.
#[derive(Debug, Clone, Default)]
pub(super) struct ValueSet {
    null: bool,
    true_: bool,
    false_: bool,
    nums: Box<[Num]>,
    strs: Box<[Box<str>]>,
    composites: Box<[Meta]>,
}

impl ValueSet {
    /// The metadata-index keys of every operand, or `None` if one has no key (`null`, a
    /// composite).
    /// Whether every key of [`InSet::keys`] stands for its operand alone.
    pub(super) fn keys_are_exact(&self) -> bool {
        self.nums.iter().all(|n| n.is_exact_f64())
    }

    pub(super) fn keys(&self) -> Option<Vec<crate::meta::postings::Key>> {
        use crate::meta::postings::Key;
        if self.null || !self.composites.is_empty() {
            return None;
        }
        let mut keys: Vec<Key> = Vec::new();
        keys.extend(self.true_.then_some(Key::Bool(true)));
        keys.extend(self.false_.then_some(Key::Bool(false)));
        keys.extend(self.nums.iter().map(|n| Key::num(n.as_f64())));
        keys.extend(self.strs.iter().map(|s| Key::Str(s.clone())));
        Some(keys)
    }

    pub(super) fn new(items: &[Value]) -> ValueSet {
        let mut set = ValueSet::default();
        let (mut nums, mut strs, mut composites) = (Vec::new(), Vec::new(), Vec::new());
        for item in items {
            match item {
                Value::Null => set.null = true,
                Value::Bool(true) => set.true_ = true,
                Value::Bool(false) => set.false_ = true,
                Value::Number(n) => nums.push(Num::of(n)),
                Value::String(s) => strs.push(Box::<str>::from(s.as_str())),
                Value::Array(_) | Value::Object(_) => composites.push(Meta::from(item)),
            }
        }
        nums.sort_by(|a, b| num_cmp(*a, *b));
        strs.sort();
        set.nums = nums.into();
        set.strs = strs.into();
        set.composites = composites.into();
        set
    }

    fn contains(&self, v: MetaRef<'_>) -> bool {
        match v {
            MetaRef::Null => self.null,
            MetaRef::Bool(b) => {
                if b {
                    self.true_
                } else {
                    self.false_
                }
            }
            MetaRef::U64(_) | MetaRef::I64(_) | MetaRef::F64(_) => {
                let n = Num::of_meta(v).expect("a number");
                self.nums.binary_search_by(|x| num_cmp(*x, n)).is_ok()
            }
            MetaRef::Str(s) => self.strs.binary_search_by(|x| (**x).cmp(s)).is_ok(),
            MetaRef::Array(_) | MetaRef::Object(_) => self.composites.iter().any(|c| deep_eq(c.as_ref(), v)),
        }
    }

    fn matches_field(&self, value: Option<MetaRef<'_>>) -> bool {
        match value {
            None => self.null,
            Some(v) => any_value(v, |x| self.contains(x)),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(super) enum CmpOp {
    Gt,
    Gte,
    Lt,
    Lte,
}

/// A range-comparison operand; only numbers and strings are ordered.
#[derive(Debug, Clone)]
pub(super) enum Bound {
    Num(Num),
    Str(Box<str>),
}

impl Bound {
    /// Whether the bound's range holds exactly the values it matches among exactly
    /// representable ones (see [`Num::is_exact_f64`]).
    pub(super) fn is_exact(&self) -> bool {
        !matches!(self, Bound::Num(n) if !n.is_exact_f64())
    }

    /// The range of values `op` against this bound admits, as metadata-index ends (lower,
    /// upper); number ends are inclusive (see `postings::End`).
    pub(super) fn ends(&self, op: CmpOp) -> (Option<crate::meta::postings::End>, Option<crate::meta::postings::End>) {
        use crate::meta::postings::End;
        let end = match self {
            // A strict bound is exclusive only if it is an f64 exactly: rounded, it could
            // exclude a value that matches.
            Bound::Num(n) => End::Num(n.as_f64(), matches!(op, CmpOp::Gte | CmpOp::Lte) || !n.is_exact_f64()),
            Bound::Str(s) => End::Str(s.clone(), matches!(op, CmpOp::Gte | CmpOp::Lte)),
        };
        match op {
            CmpOp::Gt | CmpOp::Gte => (Some(end), None),
            CmpOp::Lt | CmpOp::Lte => (None, Some(end)),
        }
    }

    fn test(&self, op: CmpOp, v: MetaRef<'_>) -> bool {
        let ord = match (self, v) {
            (Bound::Num(b), v) => match Num::of_meta(v) {
                Some(n) => num_cmp(n, *b),
                None => return false,
            },
            (Bound::Str(b), MetaRef::Str(s)) => s.cmp(&**b),
            _ => return false,
        };
        match op {
            CmpOp::Gt => ord.is_gt(),
            CmpOp::Gte => ord.is_ge(),
            CmpOp::Lt => ord.is_lt(),
            CmpOp::Lte => ord.is_le(),
        }
    }
}
