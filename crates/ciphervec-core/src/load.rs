//! Reading an index's stored entries back into memory: packed segments, loose records and
//! tombstones (see `segment`).
//!
//! - Segments: one scan; pool tasks authenticate and decrypt each in place as it is read and
//!   note its record count; then all are decoded in parallel straight into working-set columns
//!   allocated once, in segment order.
//! - Loose records: pool threads scan the 256 key ranges set by the first HMAC byte and decode
//!   each batch into columns, appended in key order.
//!
//! So a reload is deterministic.
//!
//! Per entry this costs one AES-GCM open, one AES block (the seal token for the record
//! summary) and the decode; no per-record allocation except the id, metadata and contents
//! the working set keeps. The id inside a record is not re-hashed against its storage key:
//! the key is bound to the ciphertext as associated data, so only a holder of the key could
//! have sealed that pairing, and a duplicated id still fails the load.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rayon::prelude::*;

use crate::client::Shared;
use crate::crypto::{DataKeys, SEAL_OVERHEAD};
use crate::error::{Error, Result};
use crate::ids::IdList;
use crate::items::{Columns, Items, Stored};
use crate::kernels;
use crate::manifest::{aad_into, RECORD_PREFIX};
use crate::record::RecordView;
use crate::record_set::RecordSet;
use crate::segment::{self, SEGMENT_BYTES, SEGMENT_PREFIX, TOMBSTONE_PREFIX};
use crate::storage::EntryBatch;

/// Bytes of ciphertext per batch: small enough to stay in a core's cache between being read
/// and being decrypted, large enough to amortise the per-batch allocations.
const BATCH_BYTES: usize = 256 << 10;

/// What one index's stored entries decode to.
pub(crate) struct Loaded {
    pub items: Items,
    /// The summary of the entries found, to compare with the sealed one.
    pub found: RecordSet,
    pub tombstones: HashMap<String, u128>,
    /// Segments found (numbered `0..segments` if the store is intact).
    pub segments: u32,
}

/// The index being loaded: its keys, its names (storage and, for messages, user) and dimension.
pub(crate) struct Source<'a> {
    pub keys: &'a DataKeys,
    pub storage_name: &'a str,
    pub index_name: &'a str,
    pub dim: usize,
}

/// Decoded columns of one scanned batch of loose records and the summary of their entries.
struct Part {
    cols: Columns,
    set: RecordSet,
}

pub(crate) fn load_records(shared: &Shared, src: &Source<'_>) -> Result<Loaded> {
    let opened = scan_pipelined(shared, src, SEGMENT_PREFIX, open_segments)?;
    let segments = opened.len() as u32;
    let (packed, packed_set) = decode_segments(shared, src, opened)?;
    let loose = scan_lanes(shared, src, RECORD_PREFIX, decode_records)?;
    let (tombstones, tombstone_set) = read_tombstones(shared, src)?;

    let duplicate =
        |id: String| Error::Corrupt(format!("index '{}' holds two records with the id '{id}'", src.index_name));
    let mut items = Items::new(src.dim);
    // Into an empty working set the packed columns move, not copy.
    items.append(packed).map_err(duplicate)?;
    items.reserve(loose.iter().map(|p| p.cols.ids.len()).sum());
    let mut found = packed_set.merge(tombstone_set);
    // Tombstones delete packed copies; a loose record replaces its id's packed copy.
    let any_packed = !items.is_empty();
    for id in tombstones.keys() {
        items.remove(id);
    }
    for mut part in loose {
        found = found.merge(part.set);
        if any_packed || !tombstones.is_empty() {
            for (id, stored) in part.cols.ids.iter().zip(&mut part.cols.stored) {
                if items.remove(id).is_some() || tombstones.contains_key(id) {
                    *stored = match *stored {
                        Stored::Loose { token, .. } => Stored::Loose { token, over_packed: true },
                        packed => packed,
                    };
                }
            }
        }
        items.append(part.cols).map_err(duplicate)?;
    }
    Ok(Loaded { items, found, tombstones, segments })
}

/// Scans the 256 key ranges `prefix ‖ byte` in parallel, decoding each batch with `decode`;
/// the parts come back in key order. Keys under `prefix` continue with an HMAC, so the
/// ranges are evenly filled. `decode` runs inside the storage's scan, so it must not
/// wait on pool work (see `client`).
fn scan_lanes(
    shared: &Shared,
    src: &Source<'_>,
    prefix: &[u8],
    decode: fn(EntryBatch, &Source<'_>) -> Result<Vec<Part>>,
) -> Result<Vec<Part>> {
    let lanes: Vec<Result<Vec<Part>>> = shared.pool.install(|| {
        (0..=255u8)
            .into_par_iter()
            .map(|byte| {
                let mut parts = Vec::new();
                let range = [prefix, &[byte]].concat();
                shared.store.scan_prefix_batches(src.storage_name, &range, BATCH_BYTES, &mut |batch| {
                    parts.extend(decode(batch, src)?);
                    Ok(())
                })?;
                Ok(parts)
            })
            .collect()
    });
    let mut parts = Vec::new();
    for lane in lanes {
        parts.extend(lane?);
    }
    Ok(parts)
}

/// One scan of everything under `prefix`, each batch handed to `open` in a pool task while the
/// scan reads on. For few large entries (segments): splitting them into 256 key ranges would
/// read a segment-sized page per range only to find where the range ends. Results come back in
/// no particular order.
fn scan_pipelined<T: Send>(
    shared: &Shared,
    src: &Source<'_>,
    prefix: &[u8],
    open: fn(EntryBatch, &Source<'_>) -> Result<Vec<T>>,
) -> Result<Vec<T>> {
    let opened = Mutex::new(Vec::new());
    let scanned = shared.pool.install(|| {
        rayon::scope(|scope| {
            // The sink only spawns: it must not wait on pool work while the scan is open.
            shared.store.scan_prefix_batches(src.storage_name, prefix, SEGMENT_BYTES, &mut |batch| {
                let opened = &opened;
                scope.spawn(move |_| {
                    let result = open(batch, src);
                    opened.lock().unwrap().push(result);
                });
                Ok(())
            })
        })
    });
    scanned?;
    let mut out = Vec::new();
    for result in opened.into_inner().unwrap() {
        out.extend(result?);
    }
    Ok(out)
}

fn columns(n: usize, dim: usize) -> Columns {
    Columns {
        ids: IdList::with_capacity(n, n * 16),
        vectors: Vec::with_capacity(n * dim),
        norms: Vec::with_capacity(n),
        metadata: Vec::with_capacity(n),
        contents: Vec::with_capacity(n),
        lists: Vec::with_capacity(n),
        stored: Vec::with_capacity(n),
    }
}

/// Authenticates and decrypts one entry in place; returns its plaintext and seal token.
fn open<'b>(src: &Source<'_>, aad: &mut Vec<u8>, key: &[u8], blob: &'b mut [u8]) -> Result<(&'b [u8], u128)> {
    aad_into(aad, src.storage_name, key);
    if blob.len() < SEAL_OVERHEAD {
        return Err(integrity(src));
    }
    let token = src.keys.seal_token(blob);
    let plain = src.keys.records.open_in_place(aad, blob).map_err(|_| integrity(src))?;
    Ok((plain, token))
}

fn push(cols: &mut Columns, rec: RecordView<'_>, stored: Stored, src: &Source<'_>) -> Result<()> {
    if rec.dim() != src.dim {
        return Err(Error::Corrupt(format!("a record of index '{}' has the wrong dimension", src.index_name)));
    }
    let start = cols.vectors.len();
    cols.vectors.extend(rec.vector());
    cols.norms.push(kernels::norm_sqr(&cols.vectors[start..]).sqrt());
    cols.ids.push(rec.id);
    cols.metadata.push(rec.metadata()?);
    cols.contents.push(rec.contents()?.map(Arc::new));
    cols.lists.push(rec.list);
    cols.stored.push(stored);
    Ok(())
}

/// A batch of loose records: one part.
fn decode_records(mut batch: EntryBatch, src: &Source<'_>) -> Result<Vec<Part>> {
    let mut cols = columns(batch.len(), src.dim);
    let mut set = RecordSet::default();
    let mut aad = Vec::new();
    for (key, blob) in batch.iter_mut() {
        let (plain, token) = open(src, &mut aad, key, blob)?;
        push(&mut cols, RecordView::decode(plain)?, Stored::Loose { token, over_packed: false }, src)?;
        set.insert(token);
    }
    Ok(vec![Part { cols, set }])
}

/// A segment authenticated and decrypted in place, with its record count, not yet decoded.
struct OpenSegment {
    number: u32,
    token: u128,
    /// The scanned batch holding the plaintext (shared if it held several segments).
    batch: Arc<EntryBatch>,
    entry: usize,
    /// Where the plaintext lies within the entry's value.
    plain: std::ops::Range<usize>,
    count: usize,
}

impl OpenSegment {
    fn plaintext(&self) -> &[u8] {
        &self.batch.value(self.entry)[self.plain.clone()]
    }
}

/// Phase one of loading segments, in the scan's pool tasks: authenticate and decrypt.
fn open_segments(mut batch: EntryBatch, src: &Source<'_>) -> Result<Vec<OpenSegment>> {
    let mut opened = Vec::with_capacity(batch.len());
    let mut aad = Vec::new();
    for (entry, (key, blob)) in batch.iter_mut().enumerate() {
        let number = segment::segment_number(key)
            .ok_or_else(|| Error::Corrupt(format!("index '{}' has a malformed segment key", src.index_name)))?;
        let base = blob.as_ptr() as usize;
        let (plain, token) = open(src, &mut aad, key, blob)?;
        let start = plain.as_ptr() as usize - base;
        let count = segment::record_count(plain)?;
        opened.push((number, token, entry, start..start + plain.len(), count));
    }
    let batch = Arc::new(batch);
    Ok(opened
        .into_iter()
        .map(|(number, token, entry, plain, count)| OpenSegment {
            number,
            token,
            batch: batch.clone(),
            entry,
            plain,
            count,
        })
        .collect())
}

/// Phase two: with every segment's record count known, decode all segments in parallel
/// straight into the working set's vector and norm columns (each written once, in segment
/// order), and return the columns of the packed items with the summary of their segments.
fn decode_segments(shared: &Shared, src: &Source<'_>, mut segs: Vec<OpenSegment>) -> Result<(Columns, RecordSet)> {
    segs.sort_unstable_by_key(|s| s.number);
    let dim = src.dim;
    let total: usize = segs.iter().map(|s| s.count).sum();
    let set = RecordSet::of(segs.iter().map(|s| s.token));
    let mut vectors = vec![0f32; total * dim];
    let mut norms = vec![0f32; total];
    let mut outputs = Vec::with_capacity(segs.len());
    let (mut vectors_left, mut norms_left) = (&mut vectors[..], &mut norms[..]);
    for seg in &segs {
        let (v, rest) = std::mem::take(&mut vectors_left).split_at_mut(seg.count * dim);
        vectors_left = rest;
        let (n, rest) = std::mem::take(&mut norms_left).split_at_mut(seg.count);
        norms_left = rest;
        outputs.push((v, n));
    }
    let parts: Vec<Result<Columns>> = shared
        .pool
        .install(|| segs.into_par_iter().zip(outputs).map(|(seg, (v, n))| decode_segment(&seg, v, n, src)).collect());
    let mut cols = columns(total, 0);
    for part in parts {
        let part = part?;
        cols.ids.extend(part.ids);
        cols.metadata.extend(part.metadata);
        cols.contents.extend(part.contents);
        cols.lists.extend(part.lists);
    }
    cols.vectors = vectors;
    cols.norms = norms;
    cols.stored = vec![Stored::Packed; total];
    Ok((cols, set))
}

/// Decodes one segment: vectors and norms into `vectors` / `norms`, the other fields into
/// the returned columns.
fn decode_segment(seg: &OpenSegment, vectors: &mut [f32], norms: &mut [f32], src: &Source<'_>) -> Result<Columns> {
    let records = segment::decode(seg.plaintext())?;
    if records.len() != seg.count {
        return Err(Error::Corrupt(format!("a segment of index '{}' is malformed", src.index_name)));
    }
    let dim = src.dim;
    let mut cols = columns(records.len(), 0);
    for (i, rec) in records.iter().enumerate() {
        if rec.dim() != dim {
            return Err(Error::Corrupt(format!("a record of index '{}' has the wrong dimension", src.index_name)));
        }
        let out = &mut vectors[i * dim..(i + 1) * dim];
        out.iter_mut().zip(rec.vector()).for_each(|(o, x)| *o = x);
        norms[i] = kernels::norm_sqr(out).sqrt();
        cols.ids.push(rec.id);
        cols.metadata.push(rec.metadata()?);
        cols.contents.push(rec.contents()?.map(Arc::new));
        cols.lists.push(rec.list);
    }
    Ok(cols)
}

fn read_tombstones(shared: &Shared, src: &Source<'_>) -> Result<(HashMap<String, u128>, RecordSet)> {
    let mut tombstones = HashMap::new();
    let mut set = RecordSet::default();
    let mut aad = Vec::new();
    shared.store.scan_prefix_batches(src.storage_name, TOMBSTONE_PREFIX, BATCH_BYTES, &mut |mut batch| {
        for (key, blob) in batch.iter_mut() {
            let (plain, token) = open(src, &mut aad, key, blob)?;
            tombstones.insert(segment::decode_tombstone(plain)?.to_string(), token);
            set.insert(token);
        }
        Ok(())
    })?;
    Ok((tombstones, set))
}

fn integrity(src: &Source<'_>) -> Error {
    Error::Integrity(format!("an entry of index '{}'", src.index_name))
}
