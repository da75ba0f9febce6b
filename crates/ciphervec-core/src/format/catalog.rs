//! The catalog: the names of a store's indexes, sealed under the client key.
//!
//! Index names are stored only keyed by each index's own key (see
//! `IndexKey::storage_name`), so without more a client cannot list the indexes of a store it
//! has just opened. A client opened with a client key keeps a catalog in one space of the
//! store, [`CATALOG_SPACE`]:
//!
//! | key | value |
//! |---|---|
//! | `h` | magic(4) ‖ version(1) ‖ key check(32) ‖ sealed probe: which client key the catalog is sealed under |
//! | `e ‖ HMAC(storage name)` | sealed, padded: version(1) ‖ storage name length (u32) ‖ storage name ‖ index name |
//!
//! Each entry's key is an HMAC under the client key, so the store cannot tell which space an
//! entry names, and its value is padded like an index config, so its size does not give the
//! name's length away. What the store learns: that a catalog exists and how many entries it
//! holds (it already sees how many spaces it has), and when one is added or removed.
//! Every value is sealed with associated data `catalog ‖ 0 ‖ key`, so entries cannot be
//! moved between keys or into an index.

use crate::crypto::{ClientKey, Sealer};
use crate::error::{Error, Result};
use crate::format::keys::aad;
use crate::format::wire::{check_version, put_bytes, Reader};

/// The space the catalog lives in. Index spaces are named by 32 hex digits, so no index
/// space can take this name.
pub(crate) const CATALOG_SPACE: &str = "catalog";
/// The catalog's header.
pub(crate) const CATALOG_HEADER_KEY: &[u8] = b"h";
/// Entries: this byte, then the HMAC of the storage name.
pub(crate) const ENTRY_PREFIX: &[u8] = b"e";

const MAGIC: &[u8; 4] = b"CVCT";
const HEADER_VERSION: u8 = 1;
const ENTRY_VERSION: u8 = 1;
/// What the header's probe seals: opening it tells a damaged key check from a wrong key.
const PROBE: &[u8] = b"ciphervec catalog";

/// A client key's view of a catalog: builds and opens its entries.
pub(crate) struct Catalog {
    key: ClientKey,
    sealer: Sealer,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Catalog(..)")
    }
}

impl Catalog {
    pub(crate) fn new(key: ClientKey) -> Self {
        let sealer = key.catalog_sealer();
        Catalog { key, sealer }
    }

    /// The header a new catalog is written with.
    pub(crate) fn header(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(37 + PROBE.len() + 29);
        out.extend_from_slice(MAGIC);
        out.push(HEADER_VERSION);
        out.extend_from_slice(&self.key.catalog_check());
        out.extend_from_slice(&self.sealer.seal(&aad(CATALOG_SPACE, CATALOG_HEADER_KEY), PROBE));
        out
    }

    /// Checks that a stored header is this key's: `ERR_WRONG_KEY` if the catalog was made
    /// under another client key, `ERR_INTEGRITY` if the header was altered.
    pub(crate) fn check_header(&self, stored: &[u8]) -> Result<()> {
        if stored.len() < 5 || &stored[..4] != MAGIC {
            return Err(Error::Corrupt("the store's index catalog is damaged (bad magic bytes)".into()));
        }
        check_version("index catalog", Some(stored[4]), &[HEADER_VERSION], None)?;
        if stored.len() < 37 {
            return Err(Error::Corrupt("the store's index catalog header is truncated".into()));
        }
        let check_ok = stored[5..37] == self.key.catalog_check();
        let probe_ok =
            self.sealer.open(&aad(CATALOG_SPACE, CATALOG_HEADER_KEY), &stored[37..]).is_ok_and(|p| p == PROBE);
        match (check_ok, probe_ok) {
            (true, true) => Ok(()),
            (false, false) => Err(Error::WrongKey(
                "the client key does not open this store's index catalog: pass the client key the store's \
                 catalog was made with (one store has one catalog), or open the client without one"
                    .into(),
            )),
            _ => Err(Error::Integrity("the header of the store's index catalog".into())),
        }
    }

    /// The storage key of the entry for the index stored as `storage_name`.
    pub(crate) fn entry_key(&self, storage_name: &str) -> Vec<u8> {
        [ENTRY_PREFIX, &self.key.catalog_tag(storage_name)].concat()
    }

    /// The entry for index `name` stored as `storage_name`: its storage key and sealed value.
    pub(crate) fn entry(&self, storage_name: &str, name: &str) -> (Vec<u8>, Vec<u8>) {
        let key = self.entry_key(storage_name);
        let mut plain = Vec::with_capacity(5 + storage_name.len() + name.len());
        plain.push(ENTRY_VERSION);
        put_bytes(&mut plain, storage_name.as_bytes());
        plain.extend_from_slice(name.as_bytes());
        let value = self.sealer.seal_padded(&aad(CATALOG_SPACE, &key), &plain);
        (key, value)
    }

    /// Opens the entry stored under `key`: `(storage name, index name)`. `ERR_INTEGRITY` if it
    /// was altered or moved.
    pub(crate) fn open_entry(&self, key: &[u8], value: &[u8]) -> Result<(String, String)> {
        let altered = || Error::Integrity("an entry of the store's index catalog".into());
        let plain = self.sealer.open(&aad(CATALOG_SPACE, key), value).map_err(|_| altered())?;
        let mut r = Reader::new(&plain, "index catalog entry");
        check_version("index catalog entry", Some(r.u8()?), &[ENTRY_VERSION], None)?;
        let sname = String::from_utf8(r.bytes()?.to_vec()).map_err(|_| altered())?;
        let name = String::from_utf8(r.rest().to_vec()).map_err(|_| altered())?;
        if self.entry_key(&sname) != key {
            return Err(altered());
        }
        Ok((sname, name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog(byte: u8) -> Catalog {
        Catalog::new(ClientKey::from_slice(&[byte; 32]).unwrap())
    }

    #[test]
    fn entries_round_trip_and_hide_names() {
        let c = catalog(1);
        let (key, value) = c.entry("00ff00ff00ff00ff00ff00ff00ff00ff", "tenant-42");
        assert_eq!(
            c.open_entry(&key, &value).unwrap(),
            ("00ff00ff00ff00ff00ff00ff00ff00ff".into(), "tenant-42".into())
        );
        assert!(!value.windows(9).any(|w| w == b"tenant-42"));
        assert!(!key.windows(8).any(|w| w == b"00ff00ff"));
        let (_, short) = c.entry("00ff00ff00ff00ff00ff00ff00ff00ff", "a");
        assert_eq!(short.len(), value.len(), "padding hides the name's length");
    }

    #[test]
    fn a_moved_or_altered_entry_or_another_key_fails() {
        let c = catalog(1);
        let (k1, v1) = c.entry("aa", "one");
        let (k2, _) = c.entry("bb", "two");
        assert_eq!(c.open_entry(&k2, &v1).unwrap_err().code(), "ERR_INTEGRITY");
        let mut bad = v1.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert_eq!(c.open_entry(&k1, &bad).unwrap_err().code(), "ERR_INTEGRITY");
        assert_eq!(catalog(2).open_entry(&k1, &v1).unwrap_err().code(), "ERR_INTEGRITY");
    }

    #[test]
    fn the_header_tells_a_wrong_key_from_damage() {
        let c = catalog(1);
        let h = c.header();
        c.check_header(&h).unwrap();
        assert_eq!(catalog(2).check_header(&h).unwrap_err().code(), "ERR_WRONG_KEY");
        let mut check_flipped = h.clone();
        check_flipped[10] ^= 1;
        assert_eq!(c.check_header(&check_flipped).unwrap_err().code(), "ERR_INTEGRITY");
        let mut probe_flipped = h.clone();
        *probe_flipped.last_mut().unwrap() ^= 1;
        assert_eq!(c.check_header(&probe_flipped).unwrap_err().code(), "ERR_INTEGRITY");
        assert_eq!(c.check_header(b"CVCT").unwrap_err().code(), "ERR_CORRUPT");
        let mut newer = h;
        newer[4] = 9;
        assert_eq!(c.check_header(&newer).unwrap_err().code(), "ERR_UNSUPPORTED_FORMAT");
    }
}
