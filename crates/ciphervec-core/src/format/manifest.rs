//! The two per-index entries besides records: the *header* (format version, key check,
//! wrapped data key; readable before the key is known) and the sealed *config*
//! (name, dimension, metric).

use crate::crypto::{random_key, DataKeys, IndexKey};
use crate::error::{Error, Result};
use crate::vector::metric::Metric;

/// Storage key of the header.
pub const HEADER_KEY: &[u8] = b"h";
/// Storage key of the sealed config.
pub const CONFIG_KEY: &[u8] = b"c";
/// Storage keys of item records start with this byte, followed by HMAC(id).
pub const RECORD_PREFIX: &[u8] = b"r";
/// Storage key of the sealed IVF centroids (absent until the index is trained).
pub const CENTROIDS_KEY: &[u8] = b"k";
const CENTROIDS_VERSION: u8 = 1;

const MAGIC: &[u8; 4] = b"CVIX";
const FORMAT_VERSION: u8 = 1;
const CONFIG_VERSION: u8 = 1;

/// What `loadIndex` reads first. Layout: magic(4) ‖ version(1) ‖ key check(32) ‖ wrapped DEK.
pub struct Header {
    key_check: [u8; 32],
    wrapped_dek: Vec<u8>,
}

/// Settings of an index, sealed in the store.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub name: String,
    pub dimension: Option<usize>,
    pub metric: Metric,
}

/// Associated data that binds a sealed value to its index and storage key, so a blob moved
/// to another key or index fails authentication.
pub fn aad(storage_name: &str, key: &[u8]) -> Vec<u8> {
    let mut a = Vec::with_capacity(storage_name.len() + 1 + key.len());
    aad_into(&mut a, storage_name, key);
    a
}

/// [`aad`] written into a reused buffer (cleared first), for loops over many records.
pub fn aad_into(out: &mut Vec<u8>, storage_name: &str, key: &[u8]) {
    out.clear();
    out.extend_from_slice(storage_name.as_bytes());
    out.push(0);
    out.extend_from_slice(key);
}

impl Header {
    /// A new header with a fresh data key; returns the header and the derived keys.
    pub fn create(kek: &IndexKey, storage_name: &str) -> (Header, DataKeys) {
        let dek = random_key();
        let header =
            Header { key_check: kek.key_check(storage_name), wrapped_dek: kek.wrap(&dek, &wrap_aad(storage_name)) };
        (header, DataKeys::derive(&dek))
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(37 + self.wrapped_dek.len());
        out.extend_from_slice(MAGIC);
        out.push(FORMAT_VERSION);
        out.extend_from_slice(&self.key_check);
        out.extend_from_slice(&self.wrapped_dek);
        out
    }

    pub fn decode(buf: &[u8]) -> Result<Header> {
        if buf.len() < 5 || &buf[..4] != MAGIC {
            return Err(Error::Corrupt("index header is damaged (bad magic bytes)".into()));
        }
        if buf[4] != FORMAT_VERSION {
            return Err(Error::UnsupportedFormat(format!(
                "index format version {} is not supported (this ciphervec reads version {FORMAT_VERSION}): upgrade ciphervec",
                buf[4]
            )));
        }
        if buf.len() < 37 {
            return Err(Error::Corrupt("index header is truncated".into()));
        }
        Ok(Header { key_check: buf[5..37].try_into().unwrap(), wrapped_dek: buf[37..].to_vec() })
    }

    /// Unwraps the data key. A key-check mismatch with a failed unwrap means a wrong key;
    /// any other failure means the header was altered.
    pub fn open(&self, kek: &IndexKey, storage_name: &str, index_name: &str) -> Result<DataKeys> {
        let check_ok = kek.key_check(storage_name) == self.key_check;
        match kek.unwrap(&self.wrapped_dek, &wrap_aad(storage_name)) {
            Some(dek) if check_ok => Ok(DataKeys::derive(&dek)),
            None if !check_ok => Err(Error::WrongKey(index_name.to_string())),
            _ => Err(Error::Integrity(format!("the header of index '{index_name}'"))),
        }
    }
}

fn wrap_aad(storage_name: &str) -> Vec<u8> {
    aad(storage_name, HEADER_KEY)
}

impl Config {
    pub fn seal(&self, keys: &DataKeys, storage_name: &str) -> Vec<u8> {
        let mut plain = vec![CONFIG_VERSION, self.metric.to_byte()];
        plain.extend_from_slice(&(self.dimension.unwrap_or(0) as u32).to_le_bytes());
        plain.extend_from_slice(self.name.as_bytes());
        // Padded: the config's size would reveal the length of the index's name.
        keys.records.seal_padded(&aad(storage_name, CONFIG_KEY), &plain)
    }

    pub fn open(blob: &[u8], keys: &DataKeys, storage_name: &str, index_name: &str) -> Result<Config> {
        let plain = keys
            .records
            .open(&aad(storage_name, CONFIG_KEY), blob)
            .map_err(|_| Error::Integrity(format!("the config of index '{index_name}'")))?;
        let corrupt = || Error::Corrupt(format!("the config of index '{index_name}' is malformed"));
        if plain.len() < 6 {
            return Err(corrupt());
        }
        if plain[0] != CONFIG_VERSION {
            return Err(Error::UnsupportedFormat(format!(
                "index config version {} is not supported: upgrade ciphervec",
                plain[0]
            )));
        }
        let metric = Metric::from_byte(plain[1]).ok_or_else(corrupt)?;
        let dim = u32::from_le_bytes(plain[2..6].try_into().unwrap()) as usize;
        let name = String::from_utf8(plain[6..].to_vec()).map_err(|_| corrupt())?;
        Ok(Config { name, dimension: (dim > 0).then_some(dim), metric })
    }
}

/// Seals trained centroids: version ‖ n_lists u32 ‖ dim u32 ‖ f32 × n_lists × dim.
pub fn seal_centroids(keys: &DataKeys, storage_name: &str, dim: usize, centroids: &[f32]) -> Vec<u8> {
    let mut plain = Vec::with_capacity(9 + centroids.len() * 4);
    plain.push(CENTROIDS_VERSION);
    plain.extend_from_slice(&((centroids.len() / dim) as u32).to_le_bytes());
    plain.extend_from_slice(&(dim as u32).to_le_bytes());
    for x in centroids {
        plain.extend_from_slice(&x.to_le_bytes());
    }
    keys.records.seal(&aad(storage_name, CENTROIDS_KEY), &plain)
}

/// Opens sealed centroids, checking they match the index dimension.
pub fn open_centroids(
    blob: &[u8],
    keys: &DataKeys,
    storage_name: &str,
    index_name: &str,
    dim: usize,
) -> Result<Vec<f32>> {
    let plain = keys
        .records
        .open(&aad(storage_name, CENTROIDS_KEY), blob)
        .map_err(|_| Error::Integrity(format!("the centroids of index '{index_name}'")))?;
    let corrupt = || Error::Corrupt(format!("the centroids of index '{index_name}' are malformed"));
    if plain.len() < 9 {
        return Err(corrupt());
    }
    if plain[0] != CENTROIDS_VERSION {
        return Err(Error::UnsupportedFormat(format!(
            "centroid format version {} is not supported: upgrade ciphervec",
            plain[0]
        )));
    }
    let n = u32::from_le_bytes(plain[1..5].try_into().unwrap()) as usize;
    let d = u32::from_le_bytes(plain[5..9].try_into().unwrap()) as usize;
    if n == 0 || d != dim || plain.len() != 9 + n * d * 4 {
        return Err(corrupt());
    }
    Ok(plain[9..].chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_distinguishes_wrong_key_from_tampering() {
        let kek = IndexKey::from_slice(&random_key()).unwrap();
        let (h, _) = Header::create(&kek, "s1");
        let enc = h.encode();
        let back = Header::decode(&enc).unwrap();
        assert!(back.open(&kek, "s1", "docs").is_ok());
        let other = IndexKey::from_slice(&random_key()).unwrap();
        assert_eq!(back.open(&other, "s1", "docs").unwrap_err().code(), "ERR_WRONG_KEY");
        for i in 0..enc.len() {
            let mut bad = enc.clone();
            bad[i] ^= 0x40;
            let code = match Header::decode(&bad) {
                Err(e) => e.code(),
                Ok(h) => h.open(&kek, "s1", "docs").err().map_or("OK", |e| e.code()),
            };
            let expected: &[&str] = match i {
                0..=3 => &["ERR_CORRUPT"],
                4 => &["ERR_UNSUPPORTED_FORMAT"],
                _ => &["ERR_INTEGRITY"],
            };
            assert!(expected.contains(&code), "byte {i}: {code}");
        }
    }

    #[test]
    fn config_round_trips_and_is_bound_to_its_index() {
        let keys = DataKeys::derive(&random_key());
        let c = Config { name: "docs".into(), dimension: Some(384), metric: Metric::Cosine };
        let blob = c.seal(&keys, "s1");
        assert_eq!(Config::open(&blob, &keys, "s1", "docs").unwrap(), c);
        assert_eq!(Config::open(&blob, &keys, "s2", "docs").unwrap_err().code(), "ERR_INTEGRITY");
    }
}
