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

use std::fmt;

use crate::meta::value::Meta;

mod eval;
mod parse;
mod plan;

use eval::Node;
pub(crate) use plan::Planned;

/// Deepest JSON nesting of a filter (objects and arrays each count).
const MAX_DEPTH: usize = 32;
/// Largest compiled `$regex` program, so a filter cannot build a huge automaton.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Why a filter was rejected; `path` locates the offending part, e.g. `$and[1].price.$gt`.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterError {
    /// Where in the filter: field and operator path, with `[i]` for array positions.
    pub path: String,
    /// What is wrong there.
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
    /// Parses and validates `filter` (see the module docs for the semantics).
    pub fn parse(filter: &serde_json::Value) -> Result<Filter, FilterError> {
        Ok(Filter { root: parse::parse_filter(filter, "", 1)? })
    }

    /// `None` means the item has no metadata: every field is missing.
    pub fn matches(&self, metadata: Option<&Meta>) -> bool {
        self.root.eval(metadata.map(Meta::as_ref))
    }

    /// What every item this filter matches holds, in metadata-index terms (see
    /// `meta::postings`), or `None` when the filter has no such part (`$ne`, ranges, `$nor`,
    /// ...): then only evaluating it on each item tells.
    pub(crate) fn plan(&self) -> Option<Planned> {
        self.root.plan()
    }

    /// True for filters that trivially match everything (`{}`), so callers can skip evaluation.
    pub fn is_match_all(&self) -> bool {
        matches!(&self.root, Node::And(children) if children.is_empty())
    }
}
