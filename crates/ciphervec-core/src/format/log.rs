//! The body of a change-log entry that a write leaves in a shared store (see
//! `store::sharing`): the ids whose loose records or tombstones it changed, so that other
//! processes know which entries to read again.
//!
//! Layout (sealed under the log's key, as if stored under `keys::log_key(seq)`): version u8 ‖ count u32 ‖ (u32 len ‖ UTF-8 id)
//! × count (little-endian). A rewrite's entry has no body.

use crate::error::{Error, Result};
use crate::format::vault::Vault;
use crate::format::wire::{check_version, Reader};

const VERSION: u8 = 1;

/// The body of entry `seq` naming `ids`, sealed by `vault`.
pub(crate) fn seal_ids<'a>(vault: &Vault, seq: u64, ids: impl ExactSizeIterator<Item = &'a str>) -> Vec<u8> {
    let mut plain = Vec::with_capacity(5 + ids.len() * 24);
    plain.push(VERSION);
    plain.extend_from_slice(&(ids.len() as u32).to_le_bytes());
    for id in ids {
        plain.extend_from_slice(&(id.len() as u32).to_le_bytes());
        plain.extend_from_slice(id.as_bytes());
    }
    vault.seal_log(seq, &plain)
}

/// The ids named by the body of entry `seq`; `index_name` is for messages.
pub(crate) fn open_ids(vault: &Vault, seq: u64, body: &[u8], index_name: &str) -> Result<Vec<String>> {
    let plain = vault
        .open_log(seq, body)
        .map_err(|_| Error::Integrity(format!("change-log entry {seq} of index '{index_name}'")))?;
    check_version("change-log entry", plain.first().copied(), &[VERSION], None)?;
    let mut r = Reader::new(&plain, "change-log entry");
    r.u8()?;
    let n = r.u32()? as usize;
    let mut ids = Vec::with_capacity(n.min(plain.len() / 4));
    for _ in 0..n {
        let id = std::str::from_utf8(r.bytes()?).map_err(|_| r.corrupt("an id is not UTF-8"))?;
        ids.push(id.to_string());
    }
    r.finish()?;
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::DataKeys;

    #[test]
    fn bodies_round_trip_and_are_bound_to_their_number_and_index() {
        let vault = Vault::new(DataKeys::derive(&[5; 32]), "space".into(), 0);
        let ids = ["a", "", "ünï", "a"];
        let body = seal_ids(&vault, 7, ids.iter().copied());
        assert_eq!(open_ids(&vault, 7, &body, "x").unwrap(), ids);
        assert_eq!(open_ids(&vault, 8, &body, "x").unwrap_err().code(), "ERR_INTEGRITY", "replayed as another entry");
        let other = Vault::new(DataKeys::derive(&[5; 32]), "other".into(), 0);
        assert_eq!(open_ids(&other, 7, &body, "x").unwrap_err().code(), "ERR_INTEGRITY", "moved to another index");
        let mut flipped = body.clone();
        flipped[20] ^= 1;
        assert_eq!(open_ids(&vault, 7, &flipped, "x").unwrap_err().code(), "ERR_INTEGRITY");
        assert_eq!(vault.seals(), 0, "bodies are sealed under the log's own key, not counted");
        let record = vault.seal(&crate::format::keys::log_key(7), b"x").blob;
        assert!(open_ids(&vault, 7, &record, "x").is_err(), "the data key does not seal log bodies");
        let empty = seal_ids(&vault, 9, std::iter::empty());
        assert!(open_ids(&vault, 9, &empty, "x").unwrap().is_empty());
    }
}
