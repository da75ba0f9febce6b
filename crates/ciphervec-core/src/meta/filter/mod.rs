//! Mongo-style metadata filters: parsed and validated once by [`Filter::parse`],
//! then evaluated per candidate item by [`Filter::matches`] without allocating.
//!
//! # Semantics (pinned; differences from MongoDB are marked)
//!
//! - `{}` matches everything. Top-level keys are ANDed, and so are the operators
//!   of one field: `{"price": {"$gt": 1, "$lt": 5}}`.
//! - `{f: v}` / `$eq`: the value equals `v`, or — when `f` is an array — the whole
//!   array equals `v` or one of its elements does. Equality is deep; numbers
//!   compare by exact value (`20 == 20.0`, integers beyond 2^53 exactly); object
//!   key order is ignored (MongoDB: order-sensitive). An object value with no
//!   `$` keys is a literal; with only `$` keys it is an operator object; a mix
//!   is an error.
//! - `{f: null}` matches `f` null, missing, or an array containing null.
//! - `$ne: v` — **differs from MongoDB**: the field must exist and not match
//!   `{f: v}` (for arrays: no element equals `v`). Missing fields never match
//!   `$ne`; `{f: {"$not": {"$eq": v}}}` gives MongoDB's behaviour.
//! - `$in: [..]` matches when `{f: x}` matches for some `x`, so `$in: []` matches
//!   nothing. `$nin` is its exact negation: it matches missing fields (unless
//!   the list contains `null`) and `$nin: []` matches everything.
//! - `$gt $gte $lt $lte`: the operand must be a number or a string; only values
//!   of the same type match (for arrays: any element). Strings compare by
//!   Unicode code point, case-sensitive. Booleans support equality only.
//! - `$exists: bool` tests presence; `null` counts as present.
//! - `$regex` (optional sibling `$options`, letters of `imsx`) uses Rust `regex`
//!   syntax, unanchored, on string values or string elements of arrays. The
//!   compiled program is capped at 1 MiB so a filter cannot build a huge automaton.
//! - `$contains`: an array field has an element deep-equal to the operand, or a
//!   string field contains the (string) operand as a substring; otherwise false.
//! - `$and: []` is true, `$or: []` false, `$nor: []` true; `$nor` matches when
//!   every clause is false, including because fields are missing.
//! - `$not`: field-level `{f: {"$not": {ops}}}` negates the operator expression,
//!   so it matches missing fields (as MongoDB). Top-level `{"$not": {filter}}`
//!   negates a whole sub-filter — an extension; MongoDB rejects it.
//! - Paths: `"loc.city"` walks objects; an all-digit segment indexes into an
//!   array (`"tags.0"`), and is a plain key on objects. Any other segment
//!   applied to an array resolves to missing (no MongoDB fan-out over arrays
//!   of objects). Keys containing `.` cannot be addressed; empty segments are
//!   errors.
//! - Dates: JSON has no date type, so values compare as stored. ISO-8601 strings
//!   in one format (UTC, `Z`) order correctly as strings, epoch-millisecond
//!   numbers as numbers, and a string operand never matches a number field:
//!   `{"published": {"$gte": "2024-05-01T00:00:00Z"}}` matches
//!   `{"published": "2024-06-30T12:00:00Z"}` but not `{"published": 1719748800000}`.
//!   `{"$date": ..}` operands are not supported and are rejected.
//! - Limits: the filter's JSON nesting (objects and arrays each count) is at most
//!   32 levels; this also bounds recursion in `matches`.

use std::cmp::Ordering;
use std::fmt;

use regex::{Regex, RegexBuilder};
use serde_json::{Map, Number, Value};

use crate::meta::value::{Meta, MetaRef};

const MAX_DEPTH: usize = 32;
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Why a filter was rejected; `path` locates the offending part, e.g. `$and[1].price.$gt`.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterError {
    pub path: String,
    pub message: String,
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "invalid filter: {}", self.message)
        } else {
            write!(f, "invalid filter at {}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for FilterError {}

/// A filter parsed and validated once, evaluated many times.
#[derive(Debug, Clone)]
pub struct Filter {
    root: Node,
}

impl Filter {
    pub fn parse(filter: &Value) -> Result<Filter, FilterError> {
        Ok(Filter { root: parse_filter(filter, "", 1)? })
    }

    /// `None` means the item has no metadata: every field is missing.
    pub fn matches(&self, metadata: Option<&Meta>) -> bool {
        self.root.eval(metadata.map(Meta::as_ref))
    }

    /// True for filters that trivially match everything (`{}`), so callers can skip evaluation.
    pub fn is_match_all(&self) -> bool {
        matches!(&self.root, Node::And(children) if children.is_empty())
    }
}

#[derive(Debug, Clone)]
enum Node {
    And(Box<[Node]>),
    Or(Box<[Node]>),
    Nor(Box<[Node]>),
    Not(Box<Node>),
    Field(Box<[Segment]>, Box<[Op]>),
}

impl Node {
    fn eval(&self, doc: Option<MetaRef<'_>>) -> bool {
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
struct Segment {
    key: Box<str>,
    index: Option<usize>,
}

fn resolve<'a>(doc: Option<MetaRef<'a>>, path: &[Segment]) -> Option<MetaRef<'a>> {
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
enum Op {
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
    fn eval(&self, value: Option<MetaRef<'_>>) -> bool {
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
enum Num {
    Int(i128),
    Float(f64),
}

impl Num {
    fn of(n: &Number) -> Num {
        if let Some(u) = n.as_u64() {
            Num::Int(u as i128)
        } else if let Some(i) = n.as_i64() {
            Num::Int(i as i128)
        } else {
            Num::Float(n.as_f64().unwrap_or(0.0))
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
enum Lit {
    Null,
    Bool(bool),
    Num(Num),
    Str(Box<str>),
    Composite(Meta),
}

impl Lit {
    fn new(v: &Value) -> Lit {
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
struct ValueSet {
    null: bool,
    true_: bool,
    false_: bool,
    nums: Box<[Num]>,
    strs: Box<[Box<str>]>,
    composites: Box<[Meta]>,
}

impl ValueSet {
    fn new(items: &[Value]) -> ValueSet {
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
enum CmpOp {
    Gt,
    Gte,
    Lt,
    Lte,
}

/// A range-comparison operand; only numbers and strings are ordered.
#[derive(Debug, Clone)]
enum Bound {
    Num(Num),
    Str(Box<str>),
}

impl Bound {
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

// ---------------------------------------------------------------------------
// Parsing. `depth` is the JSON nesting level of the value being parsed (the
// filter object itself is 1); error paths are built only while parsing.

fn err<T>(path: &str, message: impl Into<String>) -> Result<T, FilterError> {
    Err(FilterError { path: path.to_string(), message: message.into() })
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn check_depth(depth: usize, path: &str) -> Result<(), FilterError> {
    if depth > MAX_DEPTH {
        return err(path, format!("nested deeper than {MAX_DEPTH} levels"));
    }
    Ok(())
}

/// Nesting levels of `v` (scalars 0), counted only up to `limit + 1` so hostile
/// inputs cannot make this recurse deeply.
fn json_depth(v: &Value, limit: usize) -> usize {
    fn deepest<'a>(children: impl Iterator<Item = &'a Value>, limit: usize) -> usize {
        match limit {
            0 => 0,
            _ => children.map(|c| json_depth(c, limit - 1)).max().unwrap_or(0),
        }
    }
    match v {
        Value::Array(items) => 1 + deepest(items.iter(), limit),
        Value::Object(map) => 1 + deepest(map.values(), limit),
        _ => 0,
    }
}

fn parse_filter(v: &Value, path: &str, depth: usize) -> Result<Node, FilterError> {
    check_depth(depth, path)?;
    let Value::Object(map) = v else {
        return err(path, "expected a filter object");
    };
    let mut children = Vec::with_capacity(map.len());
    for (key, value) in map {
        let child_path = join(path, key);
        let node = match key.as_str() {
            "$and" => Node::And(parse_clauses(value, &child_path, depth + 1)?),
            "$or" => Node::Or(parse_clauses(value, &child_path, depth + 1)?),
            "$nor" => Node::Nor(parse_clauses(value, &child_path, depth + 1)?),
            "$not" => Node::Not(Box::new(parse_filter(value, &child_path, depth + 1)?)),
            op if op.starts_with('$') => return unknown_operator(op, &child_path),
            field => Node::Field(parse_path(field, &child_path)?, parse_condition(value, &child_path, depth + 1)?),
        };
        children.push(node);
    }
    Ok(match children.len() {
        1 => children.pop().expect("one child"),
        _ => Node::And(children.into()),
    })
}

fn unknown_operator<T>(op: &str, path: &str) -> Result<T, FilterError> {
    let hint = if op == "$date" { " (dates are compared as stored: ISO-8601 strings or epoch-ms numbers)" } else { "" };
    err(path, format!("unknown operator {op}{hint}"))
}

fn parse_clauses(v: &Value, path: &str, depth: usize) -> Result<Box<[Node]>, FilterError> {
    check_depth(depth, path)?;
    let Value::Array(items) = v else {
        return err(path, "expected an array of filter objects");
    };
    items.iter().enumerate().map(|(i, item)| parse_filter(item, &format!("{path}[{i}]"), depth + 1)).collect()
}

fn parse_path(field: &str, path: &str) -> Result<Box<[Segment]>, FilterError> {
    field
        .split('.')
        .map(|key| {
            if key.is_empty() {
                return err(path, "empty segment in field path");
            }
            let index = if key.bytes().all(|b| b.is_ascii_digit()) { key.parse().ok() } else { None };
            Ok(Segment { key: key.into(), index })
        })
        .collect()
}

/// Whether `map` is an operator object (all keys `$`) rather than a literal (no `$` keys).
fn is_operator_object(map: &Map<String, Value>, path: &str) -> Result<bool, FilterError> {
    let ops = map.keys().filter(|k| k.starts_with('$')).count();
    if ops > 0 && ops < map.len() {
        return err(path, "cannot mix operators and plain keys in one object");
    }
    Ok(ops > 0)
}

/// The value of a field key: an operator object or a literal for implicit equality.
fn parse_condition(v: &Value, path: &str, depth: usize) -> Result<Box<[Op]>, FilterError> {
    if let Value::Object(map) = v {
        if is_operator_object(map, path)? {
            return parse_ops(map, path, depth);
        }
    }
    Ok(Box::new([Op::Eq(parse_literal(v, path, depth)?)]))
}

fn parse_ops(map: &Map<String, Value>, path: &str, depth: usize) -> Result<Box<[Op]>, FilterError> {
    check_depth(depth, path)?;
    let mut ops = Vec::with_capacity(map.len());
    for (key, v) in map {
        let p = join(path, key);
        let d = depth + 1;
        ops.push(match key.as_str() {
            "$eq" => Op::Eq(parse_literal(v, &p, d)?),
            "$ne" => Op::Ne(parse_literal(v, &p, d)?),
            "$gt" => Op::Cmp(CmpOp::Gt, parse_bound(v, &p)?),
            "$gte" => Op::Cmp(CmpOp::Gte, parse_bound(v, &p)?),
            "$lt" => Op::Cmp(CmpOp::Lt, parse_bound(v, &p)?),
            "$lte" => Op::Cmp(CmpOp::Lte, parse_bound(v, &p)?),
            "$in" => Op::In(parse_set(v, &p, d)?),
            "$nin" => Op::Nin(parse_set(v, &p, d)?),
            "$exists" => match v {
                Value::Bool(b) => Op::Exists(*b),
                _ => return err(&p, "expected true or false"),
            },
            "$regex" => Op::Regex(parse_regex(v, map.get("$options"), &p, &join(path, "$options"))?),
            "$options" if map.contains_key("$regex") => continue,
            "$options" => return err(&p, "$options requires a sibling $regex"),
            "$contains" => Op::Contains(parse_literal(v, &p, d)?),
            "$not" => match v {
                Value::Object(inner) if !inner.is_empty() && is_operator_object(inner, &p)? => {
                    Op::Not(parse_ops(inner, &p, d)?)
                }
                _ => {
                    return err(&p, "expected a non-empty operator object such as {\"$gt\": 5}");
                }
            },
            op => return unknown_operator(op, &p),
        });
    }
    Ok(ops.into())
}

/// An equality operand. Top-level `$` keys are rejected so that operator-like
/// values (`{"$date": ..}`) fail loudly instead of never matching.
fn parse_literal(v: &Value, path: &str, depth: usize) -> Result<Lit, FilterError> {
    check_value(v, path, depth)?;
    Ok(Lit::new(v))
}

fn check_value(v: &Value, path: &str, depth: usize) -> Result<(), FilterError> {
    if let Value::Object(map) = v {
        if let Some(key) = map.keys().find(|k| k.starts_with('$')) {
            return err(path, format!("operator {key} is not allowed inside a value"));
        }
    }
    check_depth(depth - 1 + json_depth(v, MAX_DEPTH), path)
}

fn parse_bound(v: &Value, path: &str) -> Result<Bound, FilterError> {
    match v {
        Value::Number(n) => Ok(Bound::Num(Num::of(n))),
        Value::String(s) => Ok(Bound::Str(s.as_str().into())),
        _ => err(path, "expected a number or a string"),
    }
}

fn parse_set(v: &Value, path: &str, depth: usize) -> Result<ValueSet, FilterError> {
    check_depth(depth, path)?;
    let Value::Array(items) = v else {
        return err(path, "expected an array");
    };
    for (i, item) in items.iter().enumerate() {
        if matches!(item, Value::Array(_) | Value::Object(_)) {
            check_value(item, &format!("{path}[{i}]"), depth + 1)?;
        }
    }
    Ok(ValueSet::new(items))
}

fn parse_regex(v: &Value, options: Option<&Value>, path: &str, options_path: &str) -> Result<Regex, FilterError> {
    let Value::String(pattern) = v else {
        return err(path, "expected a regex string");
    };
    let mut builder = RegexBuilder::new(pattern);
    builder.size_limit(REGEX_SIZE_LIMIT).dfa_size_limit(REGEX_SIZE_LIMIT);
    match options {
        None => {}
        Some(Value::String(flags)) => {
            for flag in flags.chars() {
                match flag {
                    'i' => builder.case_insensitive(true),
                    'm' => builder.multi_line(true),
                    's' => builder.dot_matches_new_line(true),
                    'x' => builder.ignore_whitespace(true),
                    _ => {
                        return err(options_path, format!("unknown regex option '{flag}' (allowed: imsx)"));
                    }
                };
            }
        }
        Some(_) => return err(options_path, "expected a string of regex options"),
    }
    builder.build().or_else(|e| err(path, format!("invalid regex: {e}")))
}
