//! The plaintext layout of one item, sealed as a single blob. Versioned from day one.
//!
//! Layout (little-endian): version u8 ‖ id (u32 len ‖ utf-8) ‖ vector (u32 dim ‖ f32 × dim)
//! ‖ metadata (u32 len ‖ encoded, len u32::MAX = none) ‖ contents (u8 kind ‖ u32 len ‖ bytes)
//! ‖ list u32 (IVF list, u32::MAX = unassigned). The list id lives inside the sealed record so
//! the store never learns which list an item belongs to.
//!
//! Version 2 stores metadata in the working set's binary encoding (see `metadata`), so a load
//! checks and copies it; version 1 stored JSON text, still read (and rewritten as version 2
//! by the next compaction).

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::wire::{check_version, put_bytes, Reader};
use crate::meta::Meta;
use crate::vector::ListId;

const RECORD_VERSION: u8 = 2;
/// The version whose metadata is JSON text.
const JSON_METADATA_VERSION: u8 = 1;
const NONE_LEN: u32 = u32::MAX;
/// The stored list id of an item that is not in an IVF list.
const NO_LIST: u32 = u32::MAX;

/// An item's contents: text or raw bytes, returned as given.
#[derive(Debug, Clone, PartialEq)]
pub enum Contents {
    /// UTF-8 text.
    Text(String),
    /// Raw bytes.
    Bytes(Vec<u8>),
}

impl Contents {
    /// Bytes of text or data.
    pub fn len(&self) -> usize {
        match self {
            Contents::Text(s) => s.len(),
            Contents::Bytes(b) => b.len(),
        }
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes held (by capacity).
    pub(crate) fn heap_bytes(&self) -> usize {
        match self {
            Contents::Text(s) => s.capacity(),
            Contents::Bytes(b) => b.capacity(),
        }
    }
}

/// One item, decrypted.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Record {
    pub(crate) id: String,
    pub(crate) vector: Vec<f32>,
    pub(crate) metadata: Option<Meta>,
    pub(crate) contents: Option<Arc<Contents>>,
    /// The IVF list the item is in, if the index is trained.
    pub(crate) list: Option<ListId>,
}

impl Record {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.id.len() + self.vector.len() * 4);
        self.encode_into(&mut out);
        out
    }

    /// [`Record::encode`], appended to `out` (segments pack many records in one buffer).
    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) {
        encode_fields(out, &self.id, &self.vector, self.metadata.as_ref(), self.contents.as_deref(), self.list);
    }

    /// Decodes a record that already passed authentication; a malformed one is `ERR_CORRUPT`
    /// (it can only come from a writer bug or a future format).
    #[cfg(test)]
    pub(crate) fn decode(buf: &[u8]) -> Result<Record> {
        RecordView::decode(buf)?.to_record()
    }
}

/// A decoded record that borrows its fields from the plaintext, so a loader can copy them
/// straight into the working set's columns without building a [`Record`] first.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecordView<'a> {
    pub(crate) id: &'a str,
    /// The vector as little-endian `f32` bytes.
    vector_bytes: &'a [u8],
    metadata: Option<&'a [u8]>,
    json_metadata: bool,
    contents_kind: u8,
    contents: &'a [u8],
    pub(crate) list: Option<ListId>,
}

impl<'a> RecordView<'a> {
    /// Checks the layout and UTF-8 of the id; metadata and contents are checked when read.
    pub(crate) fn decode(buf: &'a [u8]) -> Result<RecordView<'a>> {
        let mut r = Reader::new(buf, "record");
        let version = check_version("record", buf.first().copied(), &[JSON_METADATA_VERSION, RECORD_VERSION], None)?;
        r.u8()?;
        let id = std::str::from_utf8(r.bytes()?).map_err(|_| r.corrupt("id is not UTF-8"))?;
        let dim = r.u32()? as usize;
        let vector_bytes = r.take(dim.checked_mul(4).ok_or_else(|| r.corrupt("vector too long"))?)?;
        let metadata = r.opt_bytes(NONE_LEN)?;
        let contents_kind = r.u8()?;
        let contents = match contents_kind {
            0 => &[][..],
            1 | 2 => r.bytes()?,
            k => return Err(r.corrupt(&format!("unknown contents kind {k}"))),
        };
        let list = match r.u32()? {
            NO_LIST => None,
            l => Some(ListId::new(l as usize)),
        };
        r.finish()?;
        let json_metadata = version == JSON_METADATA_VERSION;
        Ok(RecordView { id, vector_bytes, metadata, json_metadata, contents_kind, contents, list })
    }

    /// An owned copy (checks metadata and contents).
    pub(crate) fn to_record(self) -> Result<Record> {
        Ok(Record {
            id: self.id.to_string(),
            vector: self.vector().collect(),
            metadata: self.metadata()?,
            contents: self.contents()?.map(Arc::new),
            list: self.list,
        })
    }

    pub(crate) fn dim(&self) -> usize {
        self.vector_bytes.len() / 4
    }

    pub(crate) fn vector(&self) -> impl Iterator<Item = f32> + 'a {
        self.vector_bytes.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
    }

    pub(crate) fn metadata(&self) -> Result<Option<Meta>> {
        let Some(bytes) = self.metadata else { return Ok(None) };
        if self.json_metadata {
            return serde_json::from_slice(bytes).map(Some).map_err(|_| corrupt("metadata is not JSON"));
        }
        Meta::from_encoded(bytes).map(Some).ok_or_else(|| corrupt("metadata is malformed"))
    }

    pub(crate) fn contents(&self) -> Result<Option<Contents>> {
        Ok(match self.contents_kind {
            1 => Some(Contents::Text(
                std::str::from_utf8(self.contents).map_err(|_| corrupt("contents are not UTF-8"))?.to_string(),
            )),
            2 => Some(Contents::Bytes(self.contents.to_vec())),
            _ => None,
        })
    }
}

/// Appends the encoding of a record made of these fields to `out`.
pub(crate) fn encode_fields(
    out: &mut Vec<u8>,
    id: &str,
    vector: &[f32],
    metadata: Option<&Meta>,
    contents: Option<&Contents>,
    list: Option<ListId>,
) {
    out.push(RECORD_VERSION);
    put_bytes(out, id.as_bytes());
    out.extend_from_slice(&(vector.len() as u32).to_le_bytes());
    for x in vector {
        out.extend_from_slice(&x.to_le_bytes());
    }
    match metadata {
        Some(m) => put_bytes(out, m.encoded()),
        None => out.extend_from_slice(&NONE_LEN.to_le_bytes()),
    }
    match contents {
        None => out.push(0),
        Some(Contents::Text(s)) => {
            out.push(1);
            put_bytes(out, s.as_bytes());
        }
        Some(Contents::Bytes(b)) => {
            out.push(2);
            put_bytes(out, b);
        }
    }
    out.extend_from_slice(&list.map_or(NO_LIST, |l| l.index() as u32).to_le_bytes());
}

fn corrupt(what: &str) -> Error {
    Error::Corrupt(format!("malformed record: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_field() {
        let r = Record {
            id: "döc-1".into(),
            vector: vec![1.5, -0.0, f32::MIN_POSITIVE],
            metadata: Some(serde_json::json!({"lang": "en", "n": [1, 2.5]}).into()),
            contents: Some(Arc::new(Contents::Bytes(vec![0, 255, 7]))),
            list: Some(ListId::new(42)),
        };
        assert_eq!(Record::decode(&r.encode()).unwrap(), r);
        let bare = Record { metadata: None, contents: Some(Arc::new(Contents::Text("t".into()))), list: None, ..r };
        assert_eq!(Record::decode(&bare.encode()).unwrap(), bare);
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        let r =
            Record { id: "a".into(), vector: vec![1.0; 4], metadata: None, contents: None, list: Some(ListId::new(0)) };
        let enc = r.encode();
        for cut in 0..enc.len() {
            assert!(Record::decode(&enc[..cut]).is_err());
        }
        let mut v9 = enc.clone();
        v9[0] = 9;
        assert_eq!(Record::decode(&v9).unwrap_err().code(), "ERR_UNSUPPORTED_FORMAT");
        let bad_meta = Record { metadata: Some(serde_json::json!({"a": 1}).into()), ..r }.encode();
        // The metadata's first byte (its tag) sits before its 7 bytes' end, the contents kind
        // and the list.
        let at = bad_meta.len() - 5 - 7;
        let mut broken = bad_meta.clone();
        broken[at] = 9;
        assert_eq!(Record::decode(&broken).unwrap_err().code(), "ERR_CORRUPT");
    }

    /// Records written before metadata was binary hold it as JSON text, and still read.
    #[test]
    fn version_1_records_with_json_metadata_still_read() {
        let r = Record {
            id: "old".into(),
            vector: vec![0.5, 2.0],
            metadata: Some(serde_json::json!({"year": 1999, "tags": ["a", "b"], "x": -1.5}).into()),
            contents: Some(Arc::new(Contents::Text("t".into()))),
            list: Some(ListId::new(3)),
        };
        let mut v1 = vec![JSON_METADATA_VERSION];
        put_bytes(&mut v1, r.id.as_bytes());
        v1.extend_from_slice(&2u32.to_le_bytes());
        r.vector.iter().for_each(|x| v1.extend_from_slice(&x.to_le_bytes()));
        put_bytes(&mut v1, br#"{"year":1999,"x":-1.5,"tags":["a","b"]}"#);
        v1.push(1);
        put_bytes(&mut v1, b"t");
        v1.extend_from_slice(&3u32.to_le_bytes());
        assert_eq!(Record::decode(&v1).unwrap(), r);
        let mut not_json = v1.clone();
        let at = 1 + 4 + 3 + 4 + 8 + 4;
        not_json[at] = b'!';
        assert_eq!(Record::decode(&not_json).unwrap_err().code(), "ERR_CORRUPT");
    }
}
