//! An authenticated summary of which record versions exist: their count and the XOR of the
//! secret seal token of each stored record (see `DataKeys::seal_token`). Sealing each record
//! detects changed bytes, but not a record that vanished (a damaged B-tree page can drop
//! entries without any error), one that came back after a delete, or one replaced by an
//! older sealed version of itself. This summary, written in the same atomic batch as every
//! write and checked at load, catches all three: XOR of PRF outputs the store cannot compute
//! is a secure set MAC (Bellare–Guérin–Rogaway XOR-MAC), and updates are O(1) per record.
//! Not covered: rolling back the whole index (summary and records together) to an older
//! commit; that needs state outside the store.

use crate::crypto::DataKeys;
use crate::error::{Error, Result};
use crate::format::manifest::aad;

/// Storage key of the sealed summary.
pub const RECORD_SET_KEY: &[u8] = b"s";
/// Version 1 (pre-release) summed MACs of storage keys instead of seal tokens.
const VERSION: u8 = 2;
const SEALED_LEN: usize = 1 + 8 + 16;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordSet {
    pub count: u64,
    acc: u128,
}

impl RecordSet {
    /// Adds a record version, by its seal token.
    pub fn insert(&mut self, token: u128) {
        self.acc ^= token;
        self.count += 1;
    }

    /// Removes a record version, by its seal token.
    pub fn remove(&mut self, token: u128) {
        self.acc ^= token;
        self.count -= 1;
    }

    /// Replaces one version of a record by another.
    pub fn replace(&mut self, old: u128, new: u128) {
        self.acc ^= old ^ new;
    }

    /// The summary of a list of seal tokens.
    pub fn of(tokens: impl IntoIterator<Item = u128>) -> RecordSet {
        let mut set = RecordSet::default();
        for t in tokens {
            set.insert(t);
        }
        set
    }

    /// Combines summaries of disjoint sets of records.
    pub fn merge(mut self, other: RecordSet) -> RecordSet {
        self.acc ^= other.acc;
        self.count += other.count;
        self
    }

    pub fn seal(&self, keys: &DataKeys, storage_name: &str) -> Vec<u8> {
        let mut plain = Vec::with_capacity(SEALED_LEN);
        plain.push(VERSION);
        plain.extend_from_slice(&self.count.to_le_bytes());
        plain.extend_from_slice(&self.acc.to_le_bytes());
        keys.records.seal(&aad(storage_name, RECORD_SET_KEY), &plain)
    }

    pub fn open(blob: &[u8], keys: &DataKeys, storage_name: &str, index_name: &str) -> Result<RecordSet> {
        let plain = keys
            .records
            .open(&aad(storage_name, RECORD_SET_KEY), blob)
            .map_err(|_| Error::Integrity(format!("the record summary of index '{index_name}'")))?;
        match plain.first() {
            Some(&VERSION) if plain.len() == SEALED_LEN => Ok(RecordSet {
                count: u64::from_le_bytes(plain[1..9].try_into().unwrap()),
                acc: u128::from_le_bytes(plain[9..].try_into().unwrap()),
            }),
            Some(&v) if v != VERSION => Err(Error::UnsupportedFormat(format!(
                "index '{index_name}' has record summary version {v}; this ciphervec reads version {VERSION} \
                 (version 1 was a pre-release format): re-create the index"
            ))),
            _ => Err(Error::Corrupt(format!("the record summary of index '{index_name}' is malformed"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::random_key;

    #[test]
    fn order_independent_and_detects_missing_extra_and_replayed_records() {
        let keys = DataKeys::derive(&random_key());
        let blobs: Vec<Vec<u8>> = (0..100u32).map(|i| keys.records.seal(b"", &i.to_le_bytes())).collect();
        let tokens: Vec<u128> = blobs.iter().map(|b| keys.seal_token(b)).collect();
        let all = RecordSet::of(tokens.iter().copied());
        assert_eq!(all, RecordSet::of(tokens.iter().rev().copied()));
        assert_eq!(all, RecordSet::of(tokens[..40].iter().copied()).merge(RecordSet::of(tokens[40..].iter().copied())));
        let mut minus_one = all;
        minus_one.remove(tokens[17]);
        assert_ne!(minus_one.acc, all.acc);
        assert_eq!(minus_one, RecordSet::of(tokens.iter().enumerate().filter(|(i, _)| *i != 17).map(|(_, t)| *t)));
        // Re-sealing record 5 gives a new token: the summary of the old version no longer matches.
        let resealed = keys.seal_token(&keys.records.seal(b"", &5u32.to_le_bytes()));
        let mut updated = all;
        updated.replace(tokens[5], resealed);
        assert_eq!(updated.count, all.count);
        assert_ne!(updated, all, "an older version of a record is detected");
        let blob = all.seal(&keys, "s1");
        assert_eq!(RecordSet::open(&blob, &keys, "s1", "x").unwrap(), all);
        assert_eq!(RecordSet::open(&blob, &keys, "s2", "x").unwrap_err().code(), "ERR_INTEGRITY");
    }

    #[test]
    fn an_older_summary_format_is_unsupported_not_corrupt() {
        let keys = DataKeys::derive(&random_key());
        let mut v1 = vec![1u8];
        v1.extend_from_slice(&[0u8; 40]);
        let blob = keys.records.seal(&aad("s1", RECORD_SET_KEY), &v1);
        assert_eq!(RecordSet::open(&blob, &keys, "s1", "x").unwrap_err().code(), "ERR_UNSUPPORTED_FORMAT");
        let short = keys.records.seal(&aad("s1", RECORD_SET_KEY), &[VERSION, 1, 2]);
        assert_eq!(RecordSet::open(&short, &keys, "s1", "x").unwrap_err().code(), "ERR_CORRUPT");
    }
}
