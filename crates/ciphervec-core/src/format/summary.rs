//! The record summary: an authenticated set MAC of which entry versions an index stores (its
//! records, segments and tombstones), and the count of values sealed under its data key.
//!
//! The set MAC is the entries' count and the XOR of the secret seal token of each stored
//! entry version (see `DataKeys::seal_token`). Sealing each entry detects changed bytes, but
//! not an entry that vanished (a damaged B-tree page can drop entries without any error), one
//! that came back after a delete, or one replaced by an older sealed version of itself. The
//! summary, written in the same atomic batch as every write and checked at load, catches all
//! three: XOR of PRF outputs the store cannot compute is a secure set MAC (Bellare–Guérin–
//! Rogaway XOR-MAC), and updates are O(1) per entry. Not covered: rolling back the whole index
//! (summary and entries together) to an older commit; that needs state outside the store.
//!
//! Layout (sealed): version u8 ‖ count u64 ‖ XOR u128 ‖ seals u64 (all little-endian).
//! Version 2 had no seal count (unknown: such an index rotates its data key at its next
//! compaction, see `Vault::resume_unknown_count`);
//! version 1 (pre-release) summed MACs of storage keys instead of seal tokens.

use crate::crypto::SealToken;
use crate::error::{Error, Result};
use crate::format::keys::SUMMARY_KEY;
use crate::format::vault::{Sealed, Vault};
use crate::format::wire::{check_version, Reader};

const VERSION: u8 = 3;
/// Without the seal count.
const UNCOUNTED_VERSION: u8 = 2;

/// The set MAC of an index's stored entries (see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Summary {
    /// Entries in the set.
    pub(crate) count: u64,
    acc: SealToken,
}

impl Summary {
    /// Adds an entry version, by its seal token.
    pub(crate) fn insert(&mut self, token: SealToken) {
        self.acc ^= token;
        self.count += 1;
    }

    /// Removes an entry version, by its seal token.
    pub(crate) fn remove(&mut self, token: SealToken) {
        self.acc ^= token;
        self.count -= 1;
    }

    /// Replaces one version of an entry by another.
    pub(crate) fn replace(&mut self, old: SealToken, new: SealToken) {
        self.acc ^= old ^ new;
    }

    /// The summary of a list of seal tokens.
    pub(crate) fn of(tokens: impl IntoIterator<Item = SealToken>) -> Summary {
        let mut set = Summary::default();
        for t in tokens {
            set.insert(t);
        }
        set
    }

    /// Combines summaries of disjoint sets of entries.
    pub(crate) fn merge(mut self, other: Summary) -> Summary {
        self.acc ^= other.acc;
        self.count += other.count;
        self
    }

    /// The summary sealed by `vault`, with the vault's seal count (this seal included).
    pub(crate) fn seal(&self, vault: &Vault) -> Sealed {
        let mut plain = Vec::with_capacity(33);
        plain.push(VERSION);
        plain.extend_from_slice(&self.count.to_le_bytes());
        plain.extend_from_slice(&self.acc.0.to_le_bytes());
        plain.extend_from_slice(&(vault.seals() + 1).to_le_bytes());
        vault.seal(SUMMARY_KEY, &plain)
    }

    /// Opens a sealed summary; returns it and the seal count it records (`None` from a
    /// summary written before seals were counted).
    pub(crate) fn open(blob: &[u8], vault: &Vault, index_name: &str) -> Result<(Summary, Option<u64>)> {
        let plain = vault
            .open(SUMMARY_KEY, blob)
            .map_err(|_| Error::Integrity(format!("the record summary of index '{index_name}'")))?;
        let hint = "version 1 was a pre-release format: re-create the index";
        let mut r = Reader::new(&plain, "record summary");
        let version =
            check_version("record summary", plain.first().copied(), &[UNCOUNTED_VERSION, VERSION], Some(hint))?;
        r.u8()?;
        let summary = Summary { count: r.u64()?, acc: SealToken(r.u128()?) };
        let seals = if version == VERSION { Some(r.u64()?) } else { None };
        r.finish()?;
        Ok((summary, seals))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::DataKeys;

    fn vault(name: &str) -> Vault {
        Vault::new(DataKeys::derive(&[3; 32]), name.into(), 0)
    }

    #[test]
    fn order_independent_and_detects_missing_extra_and_replayed_entries() {
        let vault = vault("s1");
        let tokens: Vec<SealToken> = (0..100u32).map(|i| vault.seal(b"r", &i.to_le_bytes()).token).collect();
        let all = Summary::of(tokens.iter().copied());
        assert_eq!(all, Summary::of(tokens.iter().rev().copied()));
        assert_eq!(all, Summary::of(tokens[..40].iter().copied()).merge(Summary::of(tokens[40..].iter().copied())));
        let mut minus_one = all;
        minus_one.remove(tokens[17]);
        assert_ne!(minus_one.acc, all.acc);
        assert_eq!(minus_one, Summary::of(tokens.iter().enumerate().filter(|(i, _)| *i != 17).map(|(_, t)| *t)));
        // Re-sealing entry 5 gives a new token: the summary of the old version no longer matches.
        let resealed = vault.seal(b"r", &5u32.to_le_bytes()).token;
        let mut updated = all;
        updated.replace(tokens[5], resealed);
        assert_eq!(updated.count, all.count);
        assert_ne!(updated, all, "an older version of an entry is detected");
        let sealed = all.seal(&vault);
        assert_eq!(Summary::open(&sealed.blob, &vault, "x").unwrap(), (all, Some(102)), "it records the seal count");
        assert_eq!(Summary::open(&sealed.blob, &self::vault("s2"), "x").unwrap_err().code(), "ERR_INTEGRITY");
    }

    #[test]
    fn older_summaries_read_or_are_unsupported_and_malformed_ones_are_corrupt() {
        let vault = vault("s1");
        let mut v2 = vec![UNCOUNTED_VERSION];
        v2.extend_from_slice(&7u64.to_le_bytes());
        v2.extend_from_slice(&9u128.to_le_bytes());
        let (read, seals) = Summary::open(&vault.seal(SUMMARY_KEY, &v2).blob, &vault, "x").unwrap();
        assert_eq!((read.count, read.acc, seals), (7, SealToken(9), None), "version 2: no seal count yet");
        let mut v1 = vec![1u8];
        v1.extend_from_slice(&[0u8; 40]);
        let err = Summary::open(&vault.seal(SUMMARY_KEY, &v1).blob, &vault, "x").unwrap_err();
        assert_eq!(err.code(), "ERR_UNSUPPORTED_FORMAT");
        let short = vault.seal(SUMMARY_KEY, &[VERSION, 1, 2]);
        assert_eq!(Summary::open(&short.blob, &vault, "x").unwrap_err().code(), "ERR_CORRUPT");
    }
}
