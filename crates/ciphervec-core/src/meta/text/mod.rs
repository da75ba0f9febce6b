//! Full-text search: the English analyzer (`analyzer`) and the in-memory BM25 index of an
//! index's text fields (`index`).

pub(crate) mod analyzer;
pub(crate) mod index;

use crate::meta::value::{Meta, MetaRef};

/// The text field that names an item's `contents` (when they are a string); every other
/// field is a dot path into its metadata.
pub const CONTENTS_FIELD: &str = "contents";
/// Most text fields an index declares.
pub const MAX_TEXT_FIELDS: usize = 16;
/// Largest query text, in UTF-8 bytes.
pub const MAX_QUERY_TEXT: usize = 64 << 10;

/// What full-text search indexes, fixed at `createIndex`.
#[derive(Debug, Clone, PartialEq)]
pub struct TextSpec {
    /// Fields to index: [`CONTENTS_FIELD`] or metadata dot paths. A field holding a
    /// non-string for an item is skipped for that item.
    pub fields: Vec<String>,
    /// BM25 term-frequency saturation (default 1.2).
    pub k1: f32,
    /// BM25 length normalisation, 0 to 1 (default 0.75).
    pub b: f32,
}

impl TextSpec {
    /// Text fields with the default `k1` and `b`.
    pub fn new(fields: Vec<String>) -> TextSpec {
        TextSpec { fields, k1: 1.2, b: 0.75 }
    }

    /// The problem with this spec, if any (for `ERR_INVALID_ARGUMENT`).
    pub fn problem(&self) -> Option<String> {
        if self.fields.is_empty() || self.fields.len() > MAX_TEXT_FIELDS {
            return Some(format!("textFields must list 1 to {MAX_TEXT_FIELDS} fields, got {}", self.fields.len()));
        }
        for (i, f) in self.fields.iter().enumerate() {
            if f.is_empty() || f.len() > 256 || f.split('.').any(str::is_empty) {
                return Some(format!("textFields: '{f}' is not a field name or dot path"));
            }
            if self.fields[..i].contains(f) {
                return Some(format!("textFields lists '{f}' twice"));
            }
        }
        if !(self.k1.is_finite() && self.k1 >= 0.0) {
            return Some(format!("bm25.k1 must be a number of 0 or more, got {}", self.k1));
        }
        if !(0.0..=1.0).contains(&self.b) {
            return Some(format!("bm25.b must be between 0 and 1, got {}", self.b));
        }
        None
    }

    /// Index of field `name` in the spec.
    pub(crate) fn position(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f == name)
    }
}

/// The string at dot `path` of `metadata`, if there is one.
pub(crate) fn metadata_text<'m>(metadata: Option<&'m Meta>, path: &str) -> Option<&'m str> {
    let mut v = metadata?.as_ref();
    for seg in path.split('.') {
        v = v.get(seg)?;
    }
    match v {
        MetaRef::Str(s) => Some(s),
        _ => None,
    }
}
