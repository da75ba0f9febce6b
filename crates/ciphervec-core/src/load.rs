//! Reading an index's records back into memory. Pool threads scan disjoint key ranges of the
//! store in batches and authenticate, decrypt (in place, in the scanned buffer) and decode
//! each batch straight into working-set columns; the caller then appends the columns in key
//! order, so a reload is deterministic.
//!
//! Per record this costs one AES-GCM open, one AES block (the seal token for the record
//! summary) and the decode; no per-record allocation except the id, metadata and contents
//! the working set keeps. The id inside a record is not re-hashed against its storage key:
//! the key is bound to the ciphertext as associated data, so only a holder of the key could
//! have sealed that pairing, and a duplicated id still fails the load.

use std::sync::Arc;

use rayon::prelude::*;

use crate::client::Shared;
use crate::crypto::{DataKeys, SEAL_OVERHEAD};
use crate::error::{Error, Result};
use crate::items::{Columns, Items};
use crate::kernels;
use crate::manifest::{aad_into, RECORD_PREFIX};
use crate::record::RecordView;
use crate::record_set::RecordSet;
use crate::storage::EntryBatch;

/// Bytes of ciphertext per batch: small enough to stay in a core's cache between being read
/// and being decrypted, large enough to amortise the per-batch allocations.
const BATCH_BYTES: usize = 256 << 10;

/// What one index's records decode to.
pub(crate) struct Loaded {
    pub items: Items,
    /// The summary of the records found, to compare with the sealed one.
    pub found: RecordSet,
}

/// The index being loaded: its keys, its names (storage and, for messages, user) and dimension.
pub(crate) struct Source<'a> {
    pub keys: &'a DataKeys,
    pub storage_name: &'a str,
    pub index_name: &'a str,
    pub dim: usize,
}

pub(crate) fn load_records(shared: &Shared, src: &Source<'_>) -> Result<Loaded> {
    // Record keys are the prefix and an HMAC, so their next byte is uniform: the 256 ranges it
    // selects are scanned and decoded as independent tasks, each batch decoded by the thread
    // that just read it (still in its cache). Concatenated in range order they are the key
    // order, so a reload is deterministic. The decode inside the sink runs sequentially: it
    // must not wait on rayon work while the storage holds its read lock (see `client`).
    let parts: Vec<Result<Vec<(Columns, RecordSet)>>> = shared.pool.install(|| {
        (0..=255u8)
            .into_par_iter()
            .map(|byte| {
                let prefix = [RECORD_PREFIX, &[byte]].concat();
                let mut decoded = Vec::new();
                shared.store.scan_prefix_batches(src.storage_name, &prefix, BATCH_BYTES, &mut |batch| {
                    decoded.push(decode_batch(batch, src)?);
                    Ok(())
                })?;
                Ok(decoded)
            })
            .collect()
    });
    let mut batches = Vec::new();
    for part in parts {
        batches.extend(part?);
    }
    let mut items = Items::new(src.dim);
    items.reserve(batches.iter().map(|(c, _)| c.ids.len()).sum());
    let mut found = RecordSet::default();
    for (cols, set) in batches {
        found = found.merge(set);
        items
            .append(cols)
            .map_err(|id| Error::Corrupt(format!("index '{}' holds two records with the id '{id}'", src.index_name)))?;
    }
    Ok(Loaded { items, found })
}

/// Authenticates, decrypts and decodes one batch into columns plus its record summary.
fn decode_batch(mut batch: EntryBatch, src: &Source<'_>) -> Result<(Columns, RecordSet)> {
    let (n, dim) = (batch.len(), src.dim);
    let mut cols = Columns {
        ids: Vec::with_capacity(n),
        vectors: Vec::with_capacity(n * dim),
        norms: Vec::with_capacity(n),
        metadata: Vec::with_capacity(n),
        contents: Vec::with_capacity(n),
        lists: Vec::with_capacity(n),
        tokens: Vec::with_capacity(n),
    };
    let mut set = RecordSet::default();
    let mut aad = Vec::new();
    for (key, blob) in batch.iter_mut() {
        aad_into(&mut aad, src.storage_name, key);
        if blob.len() < SEAL_OVERHEAD {
            return Err(integrity(src));
        }
        let token = src.keys.seal_token(blob);
        let plain = src.keys.records.open_in_place(&aad, blob).map_err(|_| integrity(src))?;
        let rec = RecordView::decode(plain)?;
        if rec.dim() != dim {
            return Err(Error::Corrupt(format!("a record of index '{}' has the wrong dimension", src.index_name)));
        }
        let start = cols.vectors.len();
        cols.vectors.extend(rec.vector());
        cols.norms.push(kernels::norm_sqr(&cols.vectors[start..]).sqrt());
        cols.ids.push(Arc::from(rec.id));
        cols.metadata.push(rec.metadata()?.map(Arc::new));
        cols.contents.push(rec.contents()?.map(Arc::new));
        cols.lists.push(rec.list);
        cols.tokens.push(token);
        set.insert(token);
    }
    Ok((cols, set))
}

fn integrity(src: &Source<'_>) -> Error {
    Error::Integrity(format!("a record of index '{}'", src.index_name))
}
