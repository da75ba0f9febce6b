//! Reading an index's stored entries back into memory: packed segments, loose records and
//! tombstones (see `segment`).
//!
//! - Segments: the sealed directory gives each segment's record count, so the working-set
//!   columns are allocated once and every segment's place in them is known (a directory
//!   that does not fit the segments is ignored, and they are counted first). Pool tasks each
//!   read a run of segments (key ranges split by segment number) and authenticate, decrypt
//!   and decode each into its place as they read it, so a segment's buffer is freed before
//!   the next is read.
//! - Loose records (read first, so the segments' columns leave room for them): pool threads
//!   scan the 256 key ranges set by the first HMAC byte (one range, if the summary says there
//!   are few) and decode each batch into columns, appended in key order in one append.
//!
//! - A trained codes-only index ([`Encoder`]) encodes each record's vector into its list's
//!   code as it decodes it: its `f32` vectors are never all in memory at once (they were,
//!   for a peak of 1.56× the vectors in live heap, before the lists took the codes).
//!
//! So a reload is deterministic. The entries found are compared with the sealed record
//! summary before any item is built from them.
//!
//! Per entry this costs one AES-GCM open, one AES block (the seal token for the record
//! summary) and the decode; no per-record allocation except the id, metadata and contents
//! the working set keeps. The id inside a record is not re-hashed against its storage key:
//! the key is bound to the ciphertext as associated data, so only a holder of the key could
//! have sealed that pairing, and a duplicated id still fails the load.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rayon::prelude::*;

use crate::crypto::SealToken;
use crate::error::{Error, Result};
use crate::format::keys::{
    segment_key, segment_number, DIRECTORY_KEY, RECORD_PREFIX, SEGMENT_PREFIX, TOMBSTONE_PREFIX,
};
use crate::format::record::{Contents, RecordView};
use crate::format::segment::{self, SEGMENT_BYTES};
use crate::format::summary::Summary;
use crate::format::vault::Vault;
use crate::index::ids::{DuplicateId, IdList};
use crate::index::items::{Columns, Items};
use crate::index::ledger::shadows_packed;
use crate::index::state::placement;
use crate::index::stored::Stored;
use crate::index::stored::StoredColumn;
use crate::index::Shared;
use crate::meta::Meta;
use crate::store::{prefix_end, EntryBatch, Storage};
use crate::vector::ivf::Ivf;
use crate::vector::{kernels, ListId, Metric};

/// Bytes of ciphertext per batch: small enough to stay in a core's cache between being read
/// and being decrypted, large enough to amortise the per-batch allocations.
const BATCH_BYTES: usize = 256 << 10;

/// What one index's stored entries decode to.
pub(crate) struct Loaded {
    pub(crate) items: Items,
    pub(crate) tombstones: HashMap<String, SealToken>,
    /// Segments found (numbered `0..segments` if the store is intact).
    pub(crate) segments: u32,
}

/// The index being loaded: where to read it (the store, or a snapshot of a shared one), its
/// vault, its name (for messages) and dimension.
pub(crate) struct Source<'a> {
    pub(crate) store: &'a dyn Storage,
    pub(crate) vault: &'a Vault,
    pub(crate) index_name: &'a str,
    pub(crate) dim: usize,
    /// The sealed record summary: the entries (segments, loose records, tombstones) written.
    pub(crate) summary: &'a Summary,
    /// Encode the vectors instead of keeping them (a trained codes-only index).
    pub(crate) encoder: Option<Encoder<'a>>,
}

/// The empty lists of a trained codes-only index being loaded, which each record's vector is
/// encoded for.
#[derive(Clone, Copy)]
pub(crate) struct Encoder<'a> {
    pub(crate) ivf: &'a Ivf,
    pub(crate) metric: Metric,
}

impl Encoder<'_> {
    fn code_size(&self, dim: usize) -> usize {
        self.ivf.lists.codec().expect("codes-only lists have a codec").code_size(dim)
    }

    /// Appends the code of `v` to `out`; returns its list (the record's, or the nearest for a
    /// record without a valid one) and the norm of the vector the code decodes to.
    fn encode(&self, v: &[f32], list: Option<ListId>, out: &mut Vec<u8>) -> (ListId, f32) {
        let list = match list {
            Some(l) if l.index() < self.ivf.n_lists() => l,
            _ => self.ivf.quantizer.nearest(&placement(self.metric, v)),
        };
        (list, self.ivf.lists.encode_in(list, v, out))
    }
}

impl Source<'_> {
    fn storage_name(&self) -> &str {
        self.vault.storage_name()
    }
}

/// Loose entries from which splitting their scan into 256 key ranges pays: each range scan
/// costs ~70 µs even when empty, so a packed store scanned in 256 ranges lost ~17 ms.
const LANES_FROM: u64 = 16_384;

/// Decoded columns of one scanned batch of loose records and the summary of their entries.
struct Part {
    cols: Columns,
    set: Summary,
}

pub(crate) fn load_records(shared: &Shared, src: &Source<'_>) -> Result<Loaded> {
    // Loose records first, so the packed columns are allocated with room for them: appended
    // into exactly sized columns and id tables, they made every column reallocate and every
    // packed id be hashed again (a third of loading 390k packed and 190k loose items).
    let directory = read_directory(src)?;
    // Whatever the summary's count says, every loose entry is scanned (an entry it does not
    // account for fails the load), but a few are scanned in one range.
    let packed_hint = directory.as_ref().map_or(0, |counts| counts.len() as u64);
    let lanes = if src.summary.count.saturating_sub(packed_hint) >= LANES_FROM { 256 } else { 1 };
    let loose = scan_lanes(shared, src, RECORD_PREFIX, lanes, decode_records)?;
    let room = Room {
        items: loose.iter().map(|p| p.cols.ids.len()).sum(),
        id_bytes: loose.iter().map(|p| p.cols.ids.bytes()).sum(),
    };
    let (packed, packed_set, segments) = load_segments(shared, src, directory, room)?;
    let (tombstones, tombstone_set) = read_tombstones(src)?;
    // Before anything is built from them: are these exactly the entries written? (Entries of
    // other versions put together can hold one id twice, which is tampering, not damage.)
    let found = loose.iter().fold(packed_set.merge(tombstone_set), |set, part| set.merge(part.set));
    if found != *src.summary {
        return Err(Error::Integrity(format!(
            "index '{}': the store holds {} entries (records, segments, tombstones) but {} were written, \
             or other entries or entry versions than those written",
            src.index_name, found.count, src.summary.count
        )));
    }

    let duplicate =
        |DuplicateId(id)| Error::Corrupt(format!("index '{}' holds two records with the id '{id}'", src.index_name));
    // On the pool, which fills the id tables of a large append in parallel.
    let items = shared.pool.install(|| -> Result<Items> {
        let mut items = Items::new(src.dim);
        // Id tables sized for every item at once; then the packed columns (with room for the
        // loose items) move in, not copy.
        items.reserve_ids(packed.ids.len() + room.items);
        items.append(packed).map_err(duplicate)?;
        // Tombstones delete packed copies; a loose record replaces its id's packed copy.
        let any_packed = !items.is_empty();
        for id in tombstones.keys() {
            items.remove(id);
        }
        let mut loose: Vec<Columns> = loose.into_iter().map(|part| part.cols).collect();
        if any_packed || !tombstones.is_empty() {
            // Which loose items shadow a packed copy: lookups only, so in parallel.
            let packed = &items;
            let shadowing: Vec<Vec<usize>> = loose
                .par_iter()
                .map(|cols| {
                    let shadows = |id: &str| shadows_packed(packed.slot(id).is_some(), tombstones.contains_key(id));
                    cols.ids.iter().enumerate().filter(|&(_, id)| shadows(id)).map(|(i, _)| i).collect()
                })
                .collect();
            for (cols, shadowing) in loose.iter_mut().zip(shadowing) {
                for i in shadowing {
                    items.remove(cols.ids.get(i));
                    if let Stored::Loose { token, .. } = cols.stored.get(i) {
                        cols.stored.set(i, Stored::Loose { token, over_packed: true });
                    }
                }
            }
        }
        items.append_all(loose).map_err(duplicate)?;
        Ok(items)
    })?;
    Ok(Loaded { items, tombstones, segments })
}

/// Scans the key ranges `prefix ‖ byte` (256 of them, or one range `prefix` if `lanes` is 1)
/// in parallel, decoding each batch with `decode`; the parts come back in key order. Keys
/// under `prefix` continue with an HMAC, so the ranges are evenly filled. `decode` runs
/// inside the storage's scan, so it must not wait on pool work (see `client`).
fn scan_lanes(
    shared: &Shared,
    src: &Source<'_>,
    prefix: &[u8],
    lanes: usize,
    decode: fn(EntryBatch, &Source<'_>) -> Result<Vec<Part>>,
) -> Result<Vec<Part>> {
    let ranges: Vec<Vec<u8>> = match lanes {
        1 => vec![prefix.to_vec()],
        _ => (0..=255u8).map(|byte| [prefix, &[byte]].concat()).collect(),
    };
    let lanes: Vec<Result<Vec<Part>>> = shared.pool.install(|| {
        ranges
            .par_iter()
            .map(|range| {
                let mut parts = Vec::new();
                src.store.scan_prefix_batches(src.storage_name(), range, BATCH_BYTES, &mut |batch| {
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
/// scan reads on: for counting the segments of a store without a directory, where no key
/// ranges of similar size are known (256 by key byte would each read a segment-sized page only
/// to find where they end). Results come back in no particular order.
fn scan_pipelined<T: Send>(
    shared: &Shared,
    src: &Source<'_>,
    prefix: &[u8],
    open: &(dyn Fn(EntryBatch) -> Result<Vec<T>> + Sync),
) -> Result<Vec<T>> {
    let opened = Mutex::new(Vec::new());
    let pending = AtomicUsize::new(0);
    let backlog = 2 * shared.pool.current_num_threads();
    let scanned = shared.pool.install(|| {
        rayon::scope(|scope| {
            // The sink must not wait on pool work while the scan is open: it spawns, or, once
            // the pool is `backlog` batches behind (always, on a one-thread pool, whose only
            // thread is this one), opens the batch itself, so batches waiting in memory stay few.
            src.store.scan_prefix_batches(src.storage_name(), prefix, SEGMENT_BYTES, &mut |batch| {
                let (opened, pending) = (&opened, &pending);
                if pending.load(Ordering::Acquire) >= backlog {
                    let result = open(batch);
                    opened.lock().unwrap().push(result);
                    return Ok(());
                }
                pending.fetch_add(1, Ordering::AcqRel);
                scope.spawn(move |_| {
                    let result = open(batch);
                    opened.lock().unwrap().push(result);
                    pending.fetch_sub(1, Ordering::AcqRel);
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

fn columns(n: usize, src: &Source<'_>) -> Columns {
    let (dim, encoded) = (src.dim, src.encoder.is_some());
    let code_size = src.encoder.map_or(0, |e| e.code_size(dim));
    Columns {
        ids: IdList::with_capacity(n, n * 16),
        vectors: Vec::with_capacity(if encoded { 0 } else { n * dim }),
        norms: Vec::with_capacity(if encoded { 0 } else { n }),
        codes: Vec::with_capacity(n * code_size),
        code_norms: Vec::with_capacity(if encoded { n } else { 0 }),
        metadata: Vec::with_capacity(n),
        contents: Vec::with_capacity(n),
        lists: Vec::with_capacity(n),
        stored: StoredColumn::with_capacity(n),
    }
}

/// Authenticates and decrypts one entry in place; returns its plaintext and seal token.
fn open<'b>(src: &Source<'_>, aad: &mut Vec<u8>, key: &[u8], blob: &'b mut [u8]) -> Result<(&'b [u8], SealToken)> {
    src.vault.open_in_place(aad, key, blob).map_err(|_| integrity(src))
}

fn push(cols: &mut Columns, rec: RecordView<'_>, stored: Stored, src: &Source<'_>) -> Result<()> {
    if rec.dim() != src.dim {
        return Err(Error::Corrupt(format!("a record of index '{}' has the wrong dimension", src.index_name)));
    }
    if let Some(encoder) = src.encoder {
        let vector: Vec<f32> = rec.vector().collect();
        let (list, norm) = encoder.encode(&vector, rec.list, &mut cols.codes);
        cols.code_norms.push(norm);
        cols.lists.push(Some(list));
    } else {
        let start = cols.vectors.len();
        cols.vectors.extend(rec.vector());
        cols.norms.push(kernels::norm_sqr(&cols.vectors[start..]).sqrt());
        cols.lists.push(rec.list);
    }
    cols.ids.push(rec.id);
    cols.metadata.push(rec.metadata()?);
    cols.contents.push(rec.contents()?.map(Arc::new));
    cols.stored.push(stored);
    Ok(())
}

/// A batch of loose records: one part.
fn decode_records(mut batch: EntryBatch, src: &Source<'_>) -> Result<Vec<Part>> {
    let mut cols = columns(batch.len(), src);
    let mut set = Summary::default();
    let mut aad = Vec::new();
    for (key, blob) in batch.iter_mut() {
        let (plain, token) = open(src, &mut aad, key, blob)?;
        push(&mut cols, RecordView::decode(plain)?, Stored::Loose { token, over_packed: false }, src)?;
        set.insert(token);
    }
    Ok(vec![Part { cols, set }])
}

/// The slices of the working-set columns that one segment's records fill.
struct Dest<'a> {
    vectors: &'a mut [f32],
    norms: &'a mut [f32],
    /// With an [`Encoder`] (then `vectors` and `norms` are empty).
    codes: &'a mut [u8],
    code_norms: &'a mut [f32],
    metadata: &'a mut [Option<Meta>],
    contents: &'a mut [Option<Arc<Contents>>],
    lists: &'a mut [Option<ListId>],
}

/// What decoding a segment into its [`Dest`] leaves to merge: its ids and its seal token.
struct Decoded {
    number: u32,
    token: SealToken,
    ids: IdList,
}

/// Capacity the packed columns leave for items appended after them.
#[derive(Clone, Copy)]
struct Room {
    items: usize,
    id_bytes: usize,
}

/// Loads every segment, laid out by `directory` if it fits: the packed items' columns (with
/// `room` to spare), the summary of the segments, and how many there are. Each segment is authenticated, decrypted and decoded into its place in the
/// columns by the pool task its scanned batch went to, so each batch is dropped (and its
/// memory reused for the next) as soon as it is decoded, and each column is written once.
fn load_segments(
    shared: &Shared,
    src: &Source<'_>,
    directory: Option<Vec<u32>>,
    room: Room,
) -> Result<(Columns, Summary, u32)> {
    if let Some(counts) = directory {
        if let Some(loaded) = decode_segments(shared, src, &counts, room)? {
            return Ok(loaded);
        }
        // The directory does not fit the segments: an older ciphervec compacted after it was
        // written (or the store was tampered with, which the summary check reports). It is
        // only a layout, so lay the segments out by counting them instead.
    }
    let counts = count_segments(shared, src)?;
    decode_segments(shared, src, &counts, room)?.ok_or_else(|| mismatch(src))
}

/// [`load_segments`] with segment `n` holding `counts[n]` records; `None` if the segments
/// are not laid out so.
fn decode_segments(
    shared: &Shared,
    src: &Source<'_>,
    counts: &[u32],
    room: Room,
) -> Result<Option<(Columns, Summary, u32)>> {
    let total: usize = counts.iter().map(|&c| c as usize).sum();
    let dim = src.dim;
    // Per item: `dim` floats and a norm, or an encoder's code and its norm.
    let (row, code_size) = match src.encoder {
        Some(encoder) => (0, encoder.code_size(dim)),
        None => (dim, 0),
    };
    let (norm, code_norm) = if src.encoder.is_some() { (0, 1) } else { (1, 0) };
    let mut cols = Columns {
        ids: IdList::default(),
        vectors: zeroed_with_room(total * row, room.items * row),
        norms: zeroed_with_room(total * norm, room.items * norm),
        codes: zeroed_with_room(total * code_size, room.items * code_size),
        code_norms: zeroed_with_room(total * code_norm, room.items * code_norm),
        metadata: filled_with_room(total, room.items, None),
        contents: filled_with_room(total, room.items, None),
        lists: filled_with_room(total, room.items, None),
        stored: StoredColumn::packed(counts, room.items),
    };
    let mut dests = Vec::with_capacity(counts.len());
    let (mut v, mut n, mut m) = (&mut cols.vectors[..], &mut cols.norms[..], &mut cols.metadata[..]);
    let (mut c, mut l) = (&mut cols.contents[..], &mut cols.lists[..]);
    let (mut cd, mut cn) = (&mut cols.codes[..], &mut cols.code_norms[..]);
    for &count in counts {
        let k = count as usize;
        let (vectors, norms, codes, code_norms, metadata, contents, lists);
        (vectors, v) = std::mem::take(&mut v).split_at_mut(k * row);
        (norms, n) = std::mem::take(&mut n).split_at_mut(k * norm);
        (codes, cd) = std::mem::take(&mut cd).split_at_mut(k * code_size);
        (code_norms, cn) = std::mem::take(&mut cn).split_at_mut(k * code_norm);
        (metadata, m) = std::mem::take(&mut m).split_at_mut(k);
        (contents, c) = std::mem::take(&mut c).split_at_mut(k);
        (lists, l) = std::mem::take(&mut l).split_at_mut(k);
        dests.push(Some(Dest { vectors, norms, codes, code_norms, metadata, contents, lists }));
    }
    let dests = Mutex::new(dests);
    let misfit = AtomicBool::new(false);
    let open_batch = |mut batch: EntryBatch| -> Result<Vec<Decoded>> {
        let mut out = Vec::with_capacity(batch.len());
        let mut aad = Vec::new();
        for (key, blob) in batch.iter_mut() {
            let number = segment_number(key)
                .ok_or_else(|| Error::Corrupt(format!("index '{}' has a malformed segment key", src.index_name)))?;
            let (plain, token) = open(src, &mut aad, key, blob)?;
            // Each listed segment's place is taken once; an unlisted segment, or one holding
            // another count, does not fit.
            let dest = dests.lock().unwrap().get_mut(number as usize).and_then(Option::take);
            match dest.map(|dest| decode_segment(plain, dest, src)).transpose()? {
                Some(Some(ids)) => out.push(Decoded { number, token, ids }),
                _ => misfit.store(true, Ordering::Relaxed),
            }
        }
        Ok(out)
    };
    // Pool tasks each read a run of segments and decode them as they read: the reading is
    // parallel too (one scan feeding the pool left a 2-thread load with one thread reading).
    let runs = segment_runs(counts.len() as u32, 4 * shared.pool.current_num_threads());
    let scanned: Vec<Result<Vec<Decoded>>> = shared.pool.install(|| {
        runs.par_iter()
            .map(|(start, end)| {
                let mut out = Vec::new();
                src.store.scan_range_batches(
                    src.storage_name(),
                    start,
                    end.as_deref(),
                    SEGMENT_BYTES,
                    &mut |batch| {
                        out.extend(open_batch(batch)?);
                        Ok(())
                    },
                )?;
                Ok(out)
            })
            .collect()
    });
    let mut decoded = Vec::with_capacity(counts.len());
    for run in scanned {
        decoded.extend(run?);
    }
    if misfit.into_inner() || decoded.len() != counts.len() {
        return Ok(None);
    }
    decoded.sort_unstable_by_key(|d| d.number);
    let set = Summary::of(decoded.iter().map(|d| d.token));
    // One copy into lists sized exactly (grown by doubling, the merge copies each id again).
    let id_bytes: usize = decoded.iter().map(|d| d.ids.bytes()).sum();
    let mut ids = IdList::with_capacity(total + room.items, id_bytes + room.id_bytes);
    decoded.into_iter().for_each(|d| ids.extend(d.ids));
    cols.ids = ids;
    Ok(Some((cols, set, counts.len() as u32)))
}

/// `len` zeros with capacity for `room` more. Zeroed allocations come from fresh pages
/// untouched, so the decode that overwrites them is their first write.
fn zeroed_with_room<T: Copy + Default>(len: usize, room: usize) -> Vec<T> {
    let mut v = vec![T::default(); len + room];
    v.truncate(len);
    v
}

/// `len` copies of `value` with capacity for `room` more.
fn filled_with_room<T: Clone>(len: usize, room: usize, value: T) -> Vec<T> {
    let mut v = Vec::with_capacity(len + room);
    v.resize(len, value);
    v
}

/// Key ranges splitting segments `0..n` into about `parts` runs of consecutive numbers. They
/// cover every key under the segment prefix, so a stray key (before segment 0, after the
/// last) is still read, and fails the load.
fn segment_runs(n: u32, parts: usize) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    let parts = (parts as u64).clamp(1, u64::from(n.max(1)));
    let mut bounds = vec![SEGMENT_PREFIX.to_vec()];
    bounds.extend((1..parts).map(|i| segment_key((u64::from(n) * i / parts) as u32)));
    let mut ends: Vec<Option<Vec<u8>>> = bounds[1..].iter().cloned().map(Some).collect();
    ends.push(prefix_end(SEGMENT_PREFIX));
    bounds.into_iter().zip(ends).collect()
}

/// The record count of each segment, from the sealed directory a compaction wrote.
fn read_directory(src: &Source<'_>) -> Result<Option<Vec<u32>>> {
    let Some(blob) = src.store.get(src.storage_name(), DIRECTORY_KEY)? else { return Ok(None) };
    let plain = src.vault.open(DIRECTORY_KEY, &blob).map_err(|_| integrity(src))?;
    segment::decode_directory(&plain).map(Some)
}

/// The record count of each segment of a store packed before segment directories existed:
/// one pass that authenticates and decrypts every segment only to read its count.
fn count_segments(shared: &Shared, src: &Source<'_>) -> Result<Vec<u32>> {
    let mut numbered = scan_pipelined(shared, src, SEGMENT_PREFIX, &|mut batch: EntryBatch| {
        let mut aad = Vec::new();
        let mut out = Vec::with_capacity(batch.len());
        for (key, blob) in batch.iter_mut() {
            let number = segment_number(key)
                .ok_or_else(|| Error::Corrupt(format!("index '{}' has a malformed segment key", src.index_name)))?;
            let (plain, _) = open(src, &mut aad, key, blob)?;
            out.push((number, segment::record_count(plain)? as u32));
        }
        Ok(out)
    })?;
    numbered.sort_unstable();
    if numbered.iter().enumerate().any(|(i, &(number, _))| number as usize != i) {
        return Err(mismatch(src));
    }
    Ok(numbered.into_iter().map(|(_, count)| count).collect())
}

/// Decodes one segment's records into `dest`; returns their ids, or `None` if the segment
/// holds another number of records than `dest` has room for.
fn decode_segment(plain: &[u8], dest: Dest<'_>, src: &Source<'_>) -> Result<Option<IdList>> {
    let records = segment::records(plain)?;
    let n = records.len();
    if n != dest.lists.len() {
        return Ok(None);
    }
    let dim = src.dim;
    let mut ids = IdList::with_capacity(n, n * 16);
    let (mut vector, mut code) = (Vec::new(), Vec::new());
    for (i, rec) in records.enumerate() {
        let rec = rec?;
        if rec.dim() != dim {
            return Err(Error::Corrupt(format!("a record of index '{}' has the wrong dimension", src.index_name)));
        }
        if let Some(encoder) = src.encoder {
            vector.clear();
            vector.extend(rec.vector());
            code.clear();
            let (list, norm) = encoder.encode(&vector, rec.list, &mut code);
            dest.codes[i * code.len()..(i + 1) * code.len()].copy_from_slice(&code);
            dest.code_norms[i] = norm;
            dest.lists[i] = Some(list);
        } else {
            let out = &mut dest.vectors[i * dim..(i + 1) * dim];
            out.iter_mut().zip(rec.vector()).for_each(|(o, x)| *o = x);
            dest.norms[i] = kernels::norm_sqr(out).sqrt();
            dest.lists[i] = rec.list;
        }
        ids.push(rec.id);
        dest.metadata[i] = rec.metadata()?;
        dest.contents[i] = rec.contents()?.map(Arc::new);
    }
    Ok(Some(ids))
}

/// Segments not numbered `0..n`, or not laid out as counted: entries of different
/// compactions put together, which only tampering (or a partial restore) produces.
fn mismatch(src: &Source<'_>) -> Error {
    Error::Integrity(format!("the segments of index '{}' do not match their directory", src.index_name))
}

fn read_tombstones(src: &Source<'_>) -> Result<(HashMap<String, SealToken>, Summary)> {
    let mut tombstones = HashMap::new();
    let mut set = Summary::default();
    let mut aad = Vec::new();
    src.store.scan_prefix_batches(src.storage_name(), TOMBSTONE_PREFIX, BATCH_BYTES, &mut |mut batch| {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_runs_cover_the_prefix_in_order() {
        for (n, parts) in [(0, 4), (1, 8), (3, 8), (10, 4), (1000, 8)] {
            let runs = segment_runs(n, parts);
            assert_eq!(runs.len() as u32, (parts as u32).min(n.max(1)));
            assert_eq!(runs[0].0, SEGMENT_PREFIX, "starts at the prefix");
            assert_eq!(runs.last().unwrap().1, prefix_end(SEGMENT_PREFIX), "ends past it");
            for pair in runs.windows(2) {
                assert_eq!(pair[0].1.as_deref(), Some(&pair[1].0[..]), "adjacent");
                assert!(pair[0].0 < pair[1].0, "increasing");
            }
        }
    }
}
