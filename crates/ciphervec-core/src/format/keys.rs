//! Every storage key of an index, and the associated data that binds a sealed value to it.
//!
//! An index is one storage space (named by `IndexKey::storage_name`) holding:
//!
//! | key | value | written by |
//! |---|---|---|
//! | `h` | the header: format version, key check, wrapped data key (not sealed) | create |
//! | `c` | the sealed config: name, dimension, metric | create, first upsert |
//! | `s` | the sealed record summary (see `summary`) | every write |
//! | `k` | the sealed IVF centroids | training |
//! | `g` | the sealed segment directory | compaction |
//! | `r ‖ HMAC(id)` | a loose record (see `record`) | upsert |
//! | `d ‖ HMAC(id)` | a tombstone: the packed copy of `id` is deleted | delete |
//! | `p ‖ n (u32 BE)` | packed segment `n` (see `segment`) | compaction |
//!
//! A shared store also keeps a change log beside the space (see `store::sharing`); its
//! bodies are sealed as if stored under `l ‖ seq (u64 BE)` (see `log`), so a body cannot be
//! replayed under another number.
//!
//! Every value but the header is sealed with associated data `storage name ‖ 0 ‖ key`, so a
//! value moved to another key or another index fails authentication.

/// The header.
pub(crate) const HEADER_KEY: &[u8] = b"h";
/// The sealed config.
pub(crate) const CONFIG_KEY: &[u8] = b"c";
/// The sealed record summary.
pub(crate) const SUMMARY_KEY: &[u8] = b"s";
/// The sealed IVF centroids (absent until the index is trained).
pub(crate) const CENTROIDS_KEY: &[u8] = b"k";
/// The sealed segment directory.
pub(crate) const DIRECTORY_KEY: &[u8] = b"g";
/// Loose records: this byte, then the id's HMAC.
pub(crate) const RECORD_PREFIX: &[u8] = b"r";
/// Tombstones: this byte, then the id's HMAC.
pub(crate) const TOMBSTONE_PREFIX: &[u8] = b"d";
/// Packed segments: this byte, then the segment number (u32 big-endian, so keys sort by it).
pub(crate) const SEGMENT_PREFIX: &[u8] = b"p";

/// The key whose associated data seals the body of change-log entry `seq`.
pub(crate) fn log_key(seq: u64) -> Vec<u8> {
    [b"l".as_slice(), &seq.to_be_bytes()].concat()
}

/// The storage key of the loose record of the id whose HMAC is `tag`.
pub(crate) fn record_key(tag: &[u8; 32]) -> Vec<u8> {
    [RECORD_PREFIX, tag].concat()
}

/// The storage key of the tombstone of the id whose HMAC is `tag`.
pub(crate) fn tombstone_key(tag: &[u8; 32]) -> Vec<u8> {
    [TOMBSTONE_PREFIX, tag].concat()
}

/// The storage key of segment `n`.
pub(crate) fn segment_key(n: u32) -> Vec<u8> {
    [SEGMENT_PREFIX, &n.to_be_bytes()].concat()
}

/// The segment number a storage key names, if it is a well-formed segment key.
pub(crate) fn segment_number(key: &[u8]) -> Option<u32> {
    match key {
        [b'p', n @ ..] => Some(u32::from_be_bytes(n.try_into().ok()?)),
        _ => None,
    }
}

/// The associated data of the value under `key` in the index stored as `storage_name`.
pub(crate) fn aad(storage_name: &str, key: &[u8]) -> Vec<u8> {
    let mut a = Vec::with_capacity(storage_name.len() + 1 + key.len());
    aad_into(&mut a, storage_name, key);
    a
}

/// [`aad`] written into a reused buffer (cleared first), for loops over many entries.
pub(crate) fn aad_into(out: &mut Vec<u8>, storage_name: &str, key: &[u8]) {
    out.clear();
    out.extend_from_slice(storage_name.as_bytes());
    out.push(0);
    out.extend_from_slice(key);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_keys_sort_by_number_and_name_it() {
        for n in [0, 1, 255, 256, 70_000, u32::MAX] {
            assert_eq!(segment_number(&segment_key(n)), Some(n));
        }
        assert!(segment_key(255) < segment_key(256));
        assert_eq!(segment_number(b"p\x01\x00"), None);
        assert_eq!(segment_number(b"r\x00\x00\x00\x00"), None);
    }

    #[test]
    fn keys_are_distinct_and_aad_binds_the_index_and_key() {
        let single = [HEADER_KEY, CONFIG_KEY, SUMMARY_KEY, CENTROIDS_KEY, DIRECTORY_KEY];
        let prefixes = [RECORD_PREFIX, TOMBSTONE_PREFIX, SEGMENT_PREFIX];
        let firsts: std::collections::BTreeSet<u8> = single.iter().chain(&prefixes).map(|k| k[0]).collect();
        assert_eq!(firsts.len(), 8, "no key starts like another");
        assert_ne!(aad("a", b"r1"), aad("a", b"r2"));
        assert_ne!(aad("a", b"r1"), aad("b", b"r1"));
        assert_ne!(aad("ab", b"c"), aad("a", b"bc"), "the separator keeps names and keys apart");
    }
}
