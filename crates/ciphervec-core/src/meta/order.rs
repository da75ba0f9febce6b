//! Ordering items by a metadata field for `queryMetadata({ orderBy })`.

use std::cmp::Ordering;

use crate::meta::value::{Meta, MetaRef};

/// The value of one field, reduced to what sorting needs: numbers before strings, and items
/// without the field (or with another type there) last, whichever the direction.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SortKey {
    Number(f64),
    Text(String),
    Missing,
}

impl SortKey {
    /// The key of the field at dot `path` of `metadata`.
    pub(crate) fn of(metadata: Option<&Meta>, path: &str) -> SortKey {
        let mut v = match metadata {
            Some(v) => v.as_ref(),
            None => return SortKey::Missing,
        };
        for seg in path.split('.') {
            match v.get(seg) {
                Some(next) => v = next,
                None => return SortKey::Missing,
            }
        }
        match v {
            MetaRef::U64(n) => SortKey::Number(n as f64),
            MetaRef::I64(n) => SortKey::Number(n as f64),
            MetaRef::F64(x) => SortKey::Number(x),
            MetaRef::Str(s) => SortKey::Text(s.to_string()),
            _ => SortKey::Missing,
        }
    }

    /// Compares in the requested direction; `Missing` sorts last either way.
    pub(crate) fn cmp(&self, other: &SortKey, ascending: bool) -> Ordering {
        let rank = |k: &SortKey| match k {
            SortKey::Number(_) => 0,
            SortKey::Text(_) => 1,
            SortKey::Missing => 2,
        };
        let ord = match (self, other) {
            (SortKey::Number(a), SortKey::Number(b)) => a.total_cmp(b),
            (SortKey::Text(a), SortKey::Text(b)) => a.cmp(b),
            (SortKey::Missing, SortKey::Missing) => Ordering::Equal,
            _ => return rank(self).cmp(&rank(other)),
        };
        if ascending {
            ord
        } else {
            ord.reverse()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_then_strings_then_missing_in_both_directions() {
        let docs = [json!({"a": {"y": 3}}), json!({"a": {"y": "b"}}), json!({}), json!({"a": {"y": 1.5}})];
        let mut keys: Vec<SortKey> = docs.iter().map(|d| SortKey::of(Some(&d.into()), "a.y")).collect();
        keys.push(SortKey::of(None, "a.y"));
        let mut asc = keys.clone();
        asc.sort_by(|a, b| a.cmp(b, true));
        assert_eq!(asc[..3], [SortKey::Number(1.5), SortKey::Number(3.0), SortKey::Text("b".into())]);
        let mut desc = keys;
        desc.sort_by(|a, b| a.cmp(b, false));
        assert_eq!(desc[..3], [SortKey::Number(3.0), SortKey::Number(1.5), SortKey::Text("b".into())]);
        assert_eq!(desc[3..], [SortKey::Missing, SortKey::Missing]);
    }
}
