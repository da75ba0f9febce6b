//! An authenticated summary of which records exist: their count and the XOR of a keyed MAC
//! of every record's storage key. Sealing each record detects changed bytes but not a record
//! that vanished (a damaged B-tree page can drop entries without any error); this summary,
//! written in the same atomic batch as every insert and delete and checked at load, catches
//! missing or extra records. XOR of PRF outputs under a secret key is a secure set MAC
//! (Bellare–Guérin–Rogaway XOR-MAC), and updates are O(1) per record.
//! Not covered: replacing a record by an older sealed version of itself (needs versions).

use crate::crypto::DataKeys;
use crate::error::{Error, Result};
use crate::manifest::aad;

/// Storage key of the sealed summary.
pub const RECORD_SET_KEY: &[u8] = b"s";
const VERSION: u8 = 1;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordSet {
    pub count: u64,
    acc: [u8; 32],
}

impl RecordSet {
    /// Adds a record key to the summary.
    pub fn insert(&mut self, keys: &DataKeys, storage_key: &[u8]) {
        self.xor(&keys.member_mac(storage_key));
        self.count += 1;
    }

    /// Removes a record key from the summary.
    pub fn remove(&mut self, keys: &DataKeys, storage_key: &[u8]) {
        self.xor(&keys.member_mac(storage_key));
        self.count -= 1;
    }

    fn xor(&mut self, mac: &[u8; 32]) {
        for (a, b) in self.acc.iter_mut().zip(mac) {
            *a ^= b;
        }
    }

    /// The summary of a list of record keys (used at load, in parallel by the caller).
    pub fn of<'a>(keys: &DataKeys, storage_keys: impl Iterator<Item = &'a [u8]>) -> RecordSet {
        let mut set = RecordSet::default();
        for k in storage_keys {
            set.insert(keys, k);
        }
        set
    }

    /// Combines summaries of disjoint key sets.
    pub fn merge(mut self, other: RecordSet) -> RecordSet {
        self.xor(&other.acc);
        self.count += other.count;
        self
    }

    pub fn seal(&self, keys: &DataKeys, storage_name: &str) -> Vec<u8> {
        let mut plain = Vec::with_capacity(41);
        plain.push(VERSION);
        plain.extend_from_slice(&self.count.to_le_bytes());
        plain.extend_from_slice(&self.acc);
        keys.records.seal(&aad(storage_name, RECORD_SET_KEY), &plain)
    }

    pub fn open(blob: &[u8], keys: &DataKeys, storage_name: &str, index_name: &str) -> Result<RecordSet> {
        let plain = keys
            .records
            .open(&aad(storage_name, RECORD_SET_KEY), blob)
            .map_err(|_| Error::Integrity(format!("the record summary of index '{index_name}'")))?;
        if plain.len() != 41 || plain[0] != VERSION {
            return Err(Error::Corrupt(format!("the record summary of index '{index_name}' is malformed")));
        }
        Ok(RecordSet { count: u64::from_le_bytes(plain[1..9].try_into().unwrap()), acc: plain[9..41].try_into().unwrap() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::random_key;

    #[test]
    fn order_independent_and_detects_any_missing_or_extra_key() {
        let keys = DataKeys::derive(&random_key());
        let ks: Vec<Vec<u8>> = (0..100u32).map(|i| i.to_le_bytes().to_vec()).collect();
        let all = RecordSet::of(&keys, ks.iter().map(Vec::as_slice));
        let reversed = RecordSet::of(&keys, ks.iter().rev().map(Vec::as_slice));
        assert_eq!(all, reversed);
        let halves = RecordSet::of(&keys, ks[..40].iter().map(Vec::as_slice)).merge(RecordSet::of(&keys, ks[40..].iter().map(Vec::as_slice)));
        assert_eq!(all, halves);
        let mut minus_one = all;
        minus_one.remove(&keys, &ks[17]);
        assert_ne!(minus_one.acc, all.acc);
        assert_eq!(minus_one, RecordSet::of(&keys, ks.iter().enumerate().filter(|(i, _)| *i != 17).map(|(_, k)| k.as_slice())));
        let blob = all.seal(&keys, "s1");
        assert_eq!(RecordSet::open(&blob, &keys, "s1", "x").unwrap(), all);
        assert_eq!(RecordSet::open(&blob, &keys, "s2", "x").unwrap_err().code(), "ERR_INTEGRITY");
    }
}
