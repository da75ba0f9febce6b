//! Reading an index's stored entries back into memory: packed segments, loose records and
//! tombstones (see `segment`). Pool threads scan disjoint key ranges of the store in batches
//! and authenticate, decrypt (in place, in the scanned buffer) and decode each batch straight
//! into working-set columns; the caller then assembles them in key order (segments by
//! number), so a reload is deterministic.
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

/// Decoded columns of one scanned batch and the summary of its entries.
struct Part {
    /// The segment number, for segments; loose batches keep their scan order.
    segment: u32,
    cols: Columns,
    set: RecordSet,
}

pub(crate) fn load_records(shared: &Shared, src: &Source<'_>) -> Result<Loaded> {
    let mut packed = scan_pipelined(shared, src, SEGMENT_PREFIX, decode_segments)?;
    packed.sort_unstable_by_key(|p| p.segment);
    let loose = scan_lanes(shared, src, RECORD_PREFIX, decode_records)?;
    let (tombstones, tombstone_set) = read_tombstones(shared, src)?;

    let mut items = Items::new(src.dim);
    items.reserve(packed.iter().chain(&loose).map(|p| p.cols.ids.len()).sum());
    let mut found = tombstone_set;
    let duplicate =
        |id: Arc<str>| Error::Corrupt(format!("index '{}' holds two records with the id '{id}'", src.index_name));
    let segments = packed.len() as u32;
    for part in packed {
        found = found.merge(part.set);
        items.append(part.cols).map_err(duplicate)?;
    }
    // Tombstones delete packed copies; a loose record replaces its id's packed copy.
    let any_packed = !items.is_empty();
    for id in tombstones.keys() {
        items.remove(id);
    }
    for mut part in loose {
        found = found.merge(part.set);
        if any_packed || !tombstones.is_empty() {
            for (id, stored) in part.cols.ids.iter().zip(&mut part.cols.stored) {
                if items.remove(id).is_some() || tombstones.contains_key(&**id) {
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

/// One scan of everything under `prefix`, each batch decoded by a pool task while the scan
/// reads on. For few large entries (segments): splitting them into 256 key ranges would read
/// a segment-sized page per range only to find where the range ends. The parts come back in
/// no particular order.
fn scan_pipelined(
    shared: &Shared,
    src: &Source<'_>,
    prefix: &[u8],
    decode: fn(EntryBatch, &Source<'_>) -> Result<Vec<Part>>,
) -> Result<Vec<Part>> {
    let decoded = Mutex::new(Vec::new());
    let scanned = shared.pool.install(|| {
        rayon::scope(|scope| {
            // The sink only spawns: it must not wait on pool work while the scan is open.
            shared.store.scan_prefix_batches(src.storage_name, prefix, SEGMENT_BYTES, &mut |batch| {
                let decoded = &decoded;
                scope.spawn(move |_| {
                    let part = decode(batch, src);
                    decoded.lock().unwrap().push(part);
                });
                Ok(())
            })
        })
    });
    scanned?;
    let mut parts = Vec::new();
    for part in decoded.into_inner().unwrap() {
        parts.extend(part?);
    }
    Ok(parts)
}

fn columns(n: usize, dim: usize) -> Columns {
    Columns {
        ids: Vec::with_capacity(n),
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
    cols.ids.push(Arc::from(rec.id));
    cols.metadata.push(rec.metadata()?.map(Arc::new));
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
    Ok(vec![Part { segment: 0, cols, set }])
}

/// A batch of segments: one part per segment.
fn decode_segments(mut batch: EntryBatch, src: &Source<'_>) -> Result<Vec<Part>> {
    let mut parts = Vec::with_capacity(batch.len());
    let mut aad = Vec::new();
    for (key, blob) in batch.iter_mut() {
        let number = segment::segment_number(key)
            .ok_or_else(|| Error::Corrupt(format!("index '{}' has a malformed segment key", src.index_name)))?;
        let (plain, token) = open(src, &mut aad, key, blob)?;
        let records = segment::decode(plain)?;
        let mut cols = columns(records.len(), src.dim);
        for rec in records {
            push(&mut cols, rec, Stored::Packed, src)?;
        }
        parts.push(Part { segment: number, cols, set: RecordSet::of([token]) });
    }
    Ok(parts)
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
