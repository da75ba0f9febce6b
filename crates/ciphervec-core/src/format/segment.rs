//! Packed segments and tombstones: the storage layout a compaction writes.
//!
//! A record written by `upsert` is stored on its own, under `r ‖ HMAC(id)` ("loose"), so a
//! write touches only its items. Loading one sealed blob per item, though, pays per entry:
//! a B-tree lookup, a short AES-GCM message (~40% of AES-GCM's large-message speed) and
//! half-full pages. A compaction (training does one) rewrites every live item into
//! segments of ~1 MiB, each sealed as one blob, and removes every other record entry.
//!
//! After a compaction, writes go loose again. The live version of an id is its loose record
//! if there is one, else its packed copy unless a *tombstone* `d ‖ HMAC(id)` marks that copy
//! deleted. So the store always has at most one packed copy per id, and the next compaction
//! removes dead copies and tombstones together.
//!
//! A compaction also writes the sealed *segment directory*: each segment's record count, so
//! a load knows where every segment's items go before reading any, and decodes each segment
//! into place as soon as it is decrypted. The directory is only a layout, not part of the
//! record summary: a store without one (packed before directories existed), or with one that
//! does not fit its segments (an older ciphervec compacted after it), is loaded by counting
//! its segments first.
//!
//! Segment plaintext: version u8 ‖ count u32 ‖ count × (u32 len ‖ record, see `record`).
//! Directory plaintext: version u8 ‖ segments u32 ‖ segments × record count u32.
//! Tombstone plaintext: version u8 ‖ id (utf-8).

use crate::error::{Error, Result};
#[cfg(test)]
use crate::format::record::Record;
use crate::format::record::RecordView;
use crate::format::wire::check_version;

/// Plaintext bytes a segment is filled to (one record may overshoot it). redb stores a value
/// in a page of the next power-of-two size, so a segment just under 256 KiB sealed wastes
/// little (see BENCHMARKS.md, "Disk store").
pub(crate) const SEGMENT_BYTES: usize = 240 << 10;
/// Room a segment buffer starts with beyond [`SEGMENT_BYTES`], for the record that crosses it.
const SEGMENT_SLACK: usize = 8 << 10;

const SEGMENT_VERSION: u8 = 1;
const TOMBSTONE_VERSION: u8 = 1;
const DIRECTORY_VERSION: u8 = 1;

/// Builds one segment's plaintext, a record at a time.
pub(crate) struct SegmentWriter {
    buf: Vec<u8>,
    count: u32,
}

impl Default for SegmentWriter {
    fn default() -> Self {
        // Room for a full segment from the start: grown by doubling from its 5-byte header, the
        // buffer reached 320 KiB for 240 KiB of records (a third of every packed batch was
        // slack, while all of a batch's plaintext is held; tests/training_memory.rs).
        let mut buf = Vec::with_capacity(SEGMENT_BYTES + SEGMENT_SLACK);
        buf.extend_from_slice(&[SEGMENT_VERSION, 0, 0, 0, 0]);
        SegmentWriter { buf, count: 0 }
    }
}

impl SegmentWriter {
    #[cfg(test)]
    pub(crate) fn push(&mut self, rec: &Record) {
        self.push_encoded(|out| rec.encode_into(out));
    }

    /// Adds one record that `encode` appends in the record encoding.
    pub(crate) fn push_encoded(&mut self, encode: impl FnOnce(&mut Vec<u8>)) {
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]);
        encode(&mut self.buf);
        let len = (self.buf.len() - at - 4) as u32;
        self.buf[at..at + 4].copy_from_slice(&len.to_le_bytes());
        self.count += 1;
    }

    /// Plaintext bytes so far.
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Records so far.
    pub(crate) fn count(&self) -> u32 {
        self.count
    }

    /// The segment's plaintext, at its exact size (a short last segment, or one whose last
    /// record overshot the room, gives its spare capacity back).
    pub(crate) fn finish(mut self) -> Vec<u8> {
        self.buf[1..5].copy_from_slice(&self.count.to_le_bytes());
        self.buf.shrink_to_fit();
        self.buf
    }
}

/// Encodes records into segment plaintext.
#[cfg(test)]
pub(crate) fn encode<'a>(records: impl IntoIterator<Item = &'a Record>) -> Vec<u8> {
    let mut w = SegmentWriter::default();
    records.into_iter().for_each(|r| w.push(r));
    w.finish()
}

/// The record count an authenticated segment plaintext declares (checked by [`records`]).
pub(crate) fn record_count(plain: &[u8]) -> Result<usize> {
    check_version("segment", plain.first().copied(), &[SEGMENT_VERSION], None)?;
    let count = plain.get(1..5).ok_or_else(|| Error::Corrupt("malformed segment: truncated".into()))?;
    Ok(u32::from_le_bytes(count.try_into().unwrap()) as usize)
}

/// The records of an authenticated segment plaintext, borrowed from it.
#[cfg(test)]
pub(crate) fn decode(plain: &[u8]) -> Result<Vec<RecordView<'_>>> {
    records(plain)?.collect()
}

/// The records of an authenticated segment plaintext, decoded one at a time as borrowed
/// views: as many as the segment declares, then an error if bytes are left over.
pub(crate) fn records(plain: &[u8]) -> Result<Records<'_>> {
    let count = record_count(plain)?;
    Ok(Records { rest: &plain[5..], left: count, done: false })
}

/// See [`records`].
pub(crate) struct Records<'a> {
    rest: &'a [u8],
    left: usize,
    done: bool,
}

impl Records<'_> {
    /// Records the segment declares that are not yet read.
    pub(crate) fn len(&self) -> usize {
        self.left
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<RecordView<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        let corrupt = |what: &str| Err(Error::Corrupt(format!("malformed segment: {what}")));
        if self.done {
            return None;
        }
        if self.left == 0 {
            self.done = true;
            return (!self.rest.is_empty()).then(|| corrupt("trailing bytes"));
        }
        let Some(len) = self.rest.get(..4) else {
            self.done = true;
            return Some(corrupt("truncated"));
        };
        let len = u32::from_le_bytes(len.try_into().unwrap()) as usize;
        let Some(body) = self.rest.get(4..4 + len) else {
            self.done = true;
            return Some(corrupt("truncated"));
        };
        self.rest = &self.rest[4 + len..];
        self.left -= 1;
        let rec = RecordView::decode(body);
        self.done = rec.is_err();
        Some(rec)
    }
}

/// Directory plaintext for segments `0..counts.len()` holding `counts[n]` records each.
pub(crate) fn encode_directory(counts: &[u32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + 4 * counts.len());
    out.push(DIRECTORY_VERSION);
    out.extend_from_slice(&(counts.len() as u32).to_le_bytes());
    counts.iter().for_each(|c| out.extend_from_slice(&c.to_le_bytes()));
    out
}

/// The record count of each segment, from an authenticated directory plaintext.
pub(crate) fn decode_directory(plain: &[u8]) -> Result<Vec<u32>> {
    let corrupt = || Error::Corrupt("malformed segment directory".into());
    check_version("segment directory", plain.first().copied(), &[DIRECTORY_VERSION], None)?;
    let n = u32::from_le_bytes(plain.get(1..5).ok_or_else(corrupt)?.try_into().unwrap()) as usize;
    let counts = &plain[5..];
    if counts.len() != n.checked_mul(4).ok_or_else(corrupt)? {
        return Err(corrupt());
    }
    Ok(counts.chunks_exact(4).map(|c| u32::from_le_bytes(c.try_into().unwrap())).collect())
}

/// Tombstone plaintext for `id`.
pub(crate) fn encode_tombstone(id: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + id.len());
    out.push(TOMBSTONE_VERSION);
    out.extend_from_slice(id.as_bytes());
    out
}

/// The id of an authenticated tombstone plaintext.
pub(crate) fn decode_tombstone(plain: &[u8]) -> Result<&str> {
    check_version("tombstone", plain.first().copied(), &[TOMBSTONE_VERSION], None)?;
    std::str::from_utf8(&plain[1..]).map_err(|_| Error::Corrupt("malformed tombstone: id is not UTF-8".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vector::ListId;

    fn rec(i: u32) -> Record {
        Record {
            id: format!("id-{i}"),
            vector: vec![i as f32; 3],
            metadata: i.is_multiple_of(2).then(|| serde_json::json!({ "i": i }).into()),
            contents: None,
            list: (!i.is_multiple_of(3)).then(|| ListId::new(i as usize)),
        }
    }

    #[test]
    fn segments_round_trip_and_reject_every_truncation() {
        let recs: Vec<Record> = (0..5).map(rec).collect();
        let plain = encode(&recs);
        let back: Vec<Record> = decode(&plain).unwrap().iter().map(|v| v.to_record().unwrap()).collect();
        assert_eq!(back, recs);
        assert_eq!(record_count(&plain).unwrap(), 5);
        assert!(decode(&encode(&[])).unwrap().is_empty());
        assert_rejects_damage(&plain, |b| decode(b).map(drop));
    }

    /// Every truncation and a trailing byte are `ERR_CORRUPT`; another version byte is
    /// `ERR_UNSUPPORTED_FORMAT`.
    fn assert_rejects_damage(plain: &[u8], decode: impl Fn(&[u8]) -> Result<()>) {
        for cut in 0..plain.len() {
            assert_eq!(decode(&plain[..cut]).unwrap_err().code(), "ERR_CORRUPT", "cut at {cut}");
        }
        let mut longer = plain.to_vec();
        longer.push(0);
        assert_eq!(decode(&longer).unwrap_err().code(), "ERR_CORRUPT");
        let mut v2 = plain.to_vec();
        v2[0] = 2;
        assert_eq!(decode(&v2).unwrap_err().code(), "ERR_UNSUPPORTED_FORMAT");
    }

    #[test]
    fn directories_round_trip_and_reject_damage() {
        for counts in [vec![], vec![7], vec![1, 0, u32::MAX]] {
            assert_eq!(decode_directory(&encode_directory(&counts)).unwrap(), counts);
        }
        assert_rejects_damage(&encode_directory(&[3, 4]), |b| decode_directory(b).map(drop));
    }

    #[test]
    fn tombstones_round_trip() {
        assert_eq!(decode_tombstone(&encode_tombstone("döc-7")).unwrap(), "döc-7");
        assert_eq!(decode_tombstone(&[]).unwrap_err().code(), "ERR_CORRUPT");
        assert_eq!(decode_tombstone(&[9, b'a']).unwrap_err().code(), "ERR_UNSUPPORTED_FORMAT");
        assert_eq!(decode_tombstone(&[1, 0xff]).unwrap_err().code(), "ERR_CORRUPT");
    }
}
