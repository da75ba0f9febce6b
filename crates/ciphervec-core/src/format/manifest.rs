//! The per-index entries besides items: the *header* (format version, key check, wrapped
//! data key; readable before the key is known), the sealed *config* (name, dimension,
//! metric, index type) and the sealed IVF *centroids* with the code book of their codes.

use crate::crypto::{random_key, DataKeys, IndexKey};
use crate::error::{Error, Result};
use crate::format::keys::{aad, CENTROIDS_KEY, CONFIG_KEY, HEADER_KEY};
use crate::format::vault::{Sealed, Vault};
use crate::format::wire::{check_version, put_bytes, Reader};
use crate::meta::text::TextSpec;
use crate::vector::codes::{Codec, SQ8_OF_RESIDUALS};
use crate::vector::{IndexType, Metric, PqShape, Resident};

const MAGIC: &[u8; 4] = b"CVIX";
const FORMAT_VERSION: u8 = 1;
/// 2 added the index type (version 1 is an IVF-Flat index), 3 the text fields and the
/// unindexed paths (written only by indexes that have some, so the others stay readable by
/// older builds), 4 what stays resident (written only by codes-only indexes), 5 the shape of
/// product-quantized codes (written only by such indexes).
const CONFIG_VERSION: u8 = 2;
const TEXT_CONFIG_VERSION: u8 = 3;
const RESIDENT_CONFIG_VERSION: u8 = 4;
const PQ_CONFIG_VERSION: u8 = 5;
/// Bits per sub-vector of product-quantized codes: the only width so far, stored so that
/// another can come without a new config version.
const PQ_BITS: u8 = 8;
/// 2 added the code book (version 1 has none), 3 the codec tag of 8-bit codes of residuals
/// (written only with that tag, so the others stay readable by older builds, which refuse
/// this one as a newer format rather than as corrupt).
const CENTROIDS_VERSION: u8 = 2;
const RESIDUAL_SQ8_CENTROIDS_VERSION: u8 = 3;

/// What `loadIndex` reads first. Layout: magic(4) ‖ version(1) ‖ key check(32) ‖ wrapped DEK.
pub(crate) struct Header {
    key_check: [u8; 32],
    wrapped_dek: Vec<u8>,
}

/// Settings of an index, sealed in the store.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Config {
    pub(crate) name: String,
    pub(crate) dimension: Option<usize>,
    pub(crate) metric: Metric,
    pub(crate) index_type: IndexType,
    /// What the lists keep in memory (config version 4; older versions keep vectors).
    pub(crate) resident: Resident,
    /// What full-text search indexes (config version 3), if anything.
    pub(crate) text: Option<TextSpec>,
    /// Paths the metadata index leaves out (config version 3).
    pub(crate) unindexed: Vec<String>,
}

impl Header {
    /// A new header with a fresh data key; returns the header and the derived keys.
    pub(crate) fn create(kek: &IndexKey, storage_name: &str) -> (Header, DataKeys) {
        let dek = random_key();
        let header =
            Header { key_check: kek.key_check(storage_name), wrapped_dek: kek.wrap(&dek, &wrap_aad(storage_name)) };
        (header, DataKeys::derive(&dek))
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(37 + self.wrapped_dek.len());
        out.extend_from_slice(MAGIC);
        out.push(FORMAT_VERSION);
        out.extend_from_slice(&self.key_check);
        out.extend_from_slice(&self.wrapped_dek);
        out
    }

    pub(crate) fn decode(buf: &[u8]) -> Result<Header> {
        if buf.len() < 5 || &buf[..4] != MAGIC {
            return Err(Error::Corrupt("index header is damaged (bad magic bytes)".into()));
        }
        check_version("index", Some(buf[4]), &[FORMAT_VERSION], None)?;
        if buf.len() < 37 {
            return Err(Error::Corrupt("index header is truncated".into()));
        }
        Ok(Header { key_check: buf[5..37].try_into().expect("32 bytes"), wrapped_dek: buf[37..].to_vec() })
    }

    /// Unwraps the data key. A key-check mismatch with a failed unwrap means a wrong key;
    /// any other failure means the header was altered.
    pub(crate) fn open(&self, kek: &IndexKey, storage_name: &str, index_name: &str) -> Result<DataKeys> {
        let check_ok = kek.key_check(storage_name) == self.key_check;
        match kek.unwrap(&self.wrapped_dek, &wrap_aad(storage_name)) {
            Some(dek) if check_ok => Ok(DataKeys::derive(&dek)),
            None if !check_ok => Err(Error::WrongKey(format!(
                "the key does not open index '{index_name}': pass the key the index was created with"
            ))),
            _ => Err(Error::Integrity(format!("the header of index '{index_name}'"))),
        }
    }
}

fn wrap_aad(storage_name: &str) -> Vec<u8> {
    aad(storage_name, HEADER_KEY)
}

impl Config {
    /// Layout: version u8 ‖ metric u8 ‖ dimension u32 (0 = not fixed yet) ‖ index type u8 ‖
    /// [version 5: sub-vectors u32 (0 = the default) ‖ bits u8] ‖ [versions 4 and 5:
    /// resident u8] ‖ [versions 3 and 4: text u8 (0/1) ‖ if 1: k1 f32 ‖ b f32 ‖
    /// field count u32 ‖ fields ‖ unindexed count u32 ‖ paths; strings length-prefixed] ‖
    /// name (UTF-8), padded: the config's size would reveal the length of the index's name.
    pub(crate) fn seal(&self, vault: &Vault) -> Sealed {
        let pq = match self.index_type {
            IndexType::IvfPq(shape) => Some(shape),
            _ => None,
        };
        let v4 = pq.is_some() || self.resident != Resident::Vectors;
        let v3 = v4 || self.text.is_some() || !self.unindexed.is_empty();
        let version = match (pq.is_some(), v4, v3) {
            (true, _, _) => PQ_CONFIG_VERSION,
            (false, true, _) => RESIDENT_CONFIG_VERSION,
            (false, false, true) => TEXT_CONFIG_VERSION,
            (false, false, false) => CONFIG_VERSION,
        };
        let mut plain = vec![version, self.metric.to_byte()];
        plain.extend_from_slice(&(self.dimension.unwrap_or(0) as u32).to_le_bytes());
        plain.push(self.index_type.to_byte());
        if let Some(shape) = pq {
            plain.extend_from_slice(&shape.sub_vectors.unwrap_or(0).to_le_bytes());
            plain.push(PQ_BITS);
        }
        if v4 {
            plain.push(self.resident.to_byte());
        }
        if v3 {
            plain.push(u8::from(self.text.is_some()));
            if let Some(text) = &self.text {
                plain.extend_from_slice(&text.k1.to_le_bytes());
                plain.extend_from_slice(&text.b.to_le_bytes());
                plain.extend_from_slice(&(text.fields.len() as u32).to_le_bytes());
                for f in &text.fields {
                    put_bytes(&mut plain, f.as_bytes());
                }
            }
            plain.extend_from_slice(&(self.unindexed.len() as u32).to_le_bytes());
            for p in &self.unindexed {
                put_bytes(&mut plain, p.as_bytes());
            }
        }
        plain.extend_from_slice(self.name.as_bytes());
        vault.seal_padded(CONFIG_KEY, &plain)
    }

    pub(crate) fn open(blob: &[u8], vault: &Vault, index_name: &str) -> Result<Config> {
        let plain = vault
            .open(CONFIG_KEY, blob)
            .map_err(|_| Error::Integrity(format!("the config of index '{index_name}'")))?;
        let version = plain.first().copied();
        check_version(
            "index config",
            version,
            &[1, CONFIG_VERSION, TEXT_CONFIG_VERSION, RESIDENT_CONFIG_VERSION, PQ_CONFIG_VERSION],
            None,
        )?;
        let mut r = Reader::new(&plain[1..], "index config");
        let metric = Metric::from_byte(r.u8()?).ok_or_else(|| r.corrupt("unknown metric"))?;
        let dim = r.u32()? as usize;
        let index_type = match version {
            Some(1) => IndexType::IvfFlat,
            _ => IndexType::from_byte(r.u8()?).ok_or_else(|| r.corrupt("unknown index type"))?,
        };
        let index_type = match (version, index_type) {
            (Some(PQ_CONFIG_VERSION), IndexType::IvfPq(_)) => {
                let m = r.u32()?;
                if r.u8()? != PQ_BITS {
                    return Err(r.corrupt("unknown code width"));
                }
                IndexType::IvfPq(PqShape { sub_vectors: (m > 0).then_some(m) })
            }
            (Some(PQ_CONFIG_VERSION), _) | (_, IndexType::IvfPq(_)) => {
                return Err(r.corrupt("index type and config version disagree"))
            }
            (_, t) => t,
        };
        let resident = match version {
            Some(RESIDENT_CONFIG_VERSION | PQ_CONFIG_VERSION) => {
                Resident::from_byte(r.u8()?).ok_or_else(|| r.corrupt("unknown residency"))?
            }
            _ => Resident::Vectors,
        };
        let strings = |r: &mut Reader<'_>| -> Result<Vec<String>> {
            let n = r.u32()? as usize;
            let mut out = Vec::with_capacity(n.min(64));
            for _ in 0..n {
                out.push(std::str::from_utf8(r.bytes()?).map_err(|_| r.corrupt("a path is not UTF-8"))?.to_string());
            }
            Ok(out)
        };
        let (text, unindexed) = match version {
            Some(TEXT_CONFIG_VERSION | RESIDENT_CONFIG_VERSION | PQ_CONFIG_VERSION) => {
                let text = match r.u8()? {
                    0 => None,
                    1 => {
                        let k1 = f32::from_bits(r.u32()?);
                        let b = f32::from_bits(r.u32()?);
                        Some(TextSpec { fields: strings(&mut r)?, k1, b })
                    }
                    _ => return Err(r.corrupt("bad text flag")),
                };
                (text, strings(&mut r)?)
            }
            _ => (None, Vec::new()),
        };
        let name = std::str::from_utf8(r.rest()).map_err(|_| r.corrupt("name is not UTF-8"))?.to_string();
        Ok(Config { name, dimension: (dim > 0).then_some(dim), metric, index_type, resident, text, unindexed })
    }
}

/// Seals trained centroids and the code book of the lists' codes: version ‖ n_lists u32 ‖
/// dim u32 ‖ f32 × n_lists × dim ‖ codec tag u8 (0: no codes) ‖ parameter count u32 ‖ f32 ×
/// count.
pub(crate) fn seal_centroids(vault: &Vault, dim: usize, centroids: &[f32], codec: Option<&Codec>) -> Sealed {
    let (tag, params) = codec.map_or((0, Vec::new()), Codec::to_parts);
    let mut plain = Vec::with_capacity(14 + (centroids.len() + params.len()) * 4);
    plain.push(if tag == SQ8_OF_RESIDUALS { RESIDUAL_SQ8_CENTROIDS_VERSION } else { CENTROIDS_VERSION });
    plain.extend_from_slice(&((centroids.len() / dim) as u32).to_le_bytes());
    plain.extend_from_slice(&(dim as u32).to_le_bytes());
    for x in centroids {
        plain.extend_from_slice(&x.to_le_bytes());
    }
    plain.push(tag);
    plain.extend_from_slice(&(params.len() as u32).to_le_bytes());
    for x in &params {
        plain.extend_from_slice(&x.to_le_bytes());
    }
    vault.seal(CENTROIDS_KEY, &plain)
}

/// Opens sealed centroids and their code book, checking they match the index dimension.
pub(crate) fn open_centroids(
    blob: &[u8],
    vault: &Vault,
    index_name: &str,
    dim: usize,
) -> Result<(Vec<f32>, Option<Codec>)> {
    let plain = vault
        .open(CENTROIDS_KEY, blob)
        .map_err(|_| Error::Integrity(format!("the centroids of index '{index_name}'")))?;
    let version = plain.first().copied();
    check_version("centroid", version, &[1, CENTROIDS_VERSION, RESIDUAL_SQ8_CENTROIDS_VERSION], None)?;
    let malformed = || Error::Corrupt(format!("the centroids of index '{index_name}' are malformed"));
    let mut r = Reader::new(&plain[1..], "centroids");
    let n = r.u32()? as usize;
    let d = r.u32()? as usize;
    let rest = r.rest();
    if n == 0 || d != dim || rest.len() < n * d * 4 {
        return Err(malformed());
    }
    let (values, tail) = rest.split_at(n * d * 4);
    let floats = |b: &[u8]| -> Vec<f32> {
        b.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))).collect()
    };
    let centroids = floats(values);
    if version == Some(1) {
        return if tail.is_empty() { Ok((centroids, None)) } else { Err(malformed()) };
    }
    let mut r = Reader::new(tail, "centroids");
    let tag = r.u8()?;
    let count = r.u32()? as usize;
    let params = r.rest();
    if params.len() != count * 4 {
        return Err(malformed());
    }
    let codec = match tag {
        0 if count == 0 => None,
        0 => return Err(malformed()),
        _ => Some(Codec::from_parts(tag, dim, &floats(params)).ok_or_else(malformed)?),
    };
    Ok((centroids, codec))
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
    fn config_and_centroids_round_trip_and_are_bound_to_their_index() {
        let keys = [7u8; 32];
        let vault = |name: &str| Vault::new(DataKeys::derive(&keys), name.into(), 0);
        let c = Config {
            name: "docs".into(),
            dimension: Some(384),
            metric: Metric::Cosine,
            index_type: IndexType::IvfSq8,
            resident: Resident::Vectors,
            text: None,
            unindexed: vec![],
        };
        let blob = c.seal(&vault("s1")).blob;
        assert_eq!(Config::open(&blob, &vault("s1"), "docs").unwrap(), c);
        let t = Config {
            text: Some(TextSpec { fields: vec!["contents".into(), "meta.title".into()], k1: 1.5, b: 0.3 }),
            ..c.clone()
        };
        assert_eq!(Config::open(&t.seal(&vault("s1")).blob, &vault("s1"), "docs").unwrap(), t);
        for text in [None, t.text.clone()] {
            let u = Config { text, unindexed: vec!["blob".into(), "a.b".into()], ..c.clone() };
            assert_eq!(Config::open(&u.seal(&vault("s1")).blob, &vault("s1"), "docs").unwrap(), u);
            let codes = Config { resident: Resident::Codes, ..u };
            let sealed = codes.seal(&vault("s1")).blob;
            assert_eq!(Config::open(&sealed, &vault("s1"), "docs").unwrap(), codes);
            for sub_vectors in [None, Some(1), Some(77)] {
                for resident in [Resident::Vectors, Resident::Codes] {
                    let pq =
                        Config { index_type: IndexType::IvfPq(PqShape { sub_vectors }), resident, ..codes.clone() };
                    let sealed = pq.seal(&vault("s1")).blob;
                    assert_eq!(Config::open(&sealed, &vault("s1"), "docs").unwrap(), pq);
                }
            }
        }
        assert_eq!(Config::open(&blob, &vault("s2"), "docs").unwrap_err().code(), "ERR_INTEGRITY");
        let centroids = [1.0, 2.0, 3.0, 4.0];
        let blob = seal_centroids(&vault("s1"), 2, &centroids, None).blob;
        assert_eq!(open_centroids(&blob, &vault("s1"), "docs", 2).unwrap(), (centroids.to_vec(), None));
        assert_eq!(open_centroids(&blob, &vault("s1"), "docs", 4).unwrap_err().code(), "ERR_CORRUPT");
        let rows = [[-1.0f32, 0.5], [3.0, 2.5]];
        for index_type in [IndexType::IvfSq8, IndexType::IvfFp16, IndexType::IvfPq(PqShape::default())] {
            let codec = Codec::train(index_type, 2, 2, &|i| &rows[i][..], &|_| &[0.0, 0.0][..], 1).unwrap();
            let blob = seal_centroids(&vault("s1"), 2, &centroids, Some(&codec)).blob;
            let (c, back) = open_centroids(&blob, &vault("s1"), "docs", 2).unwrap();
            assert_eq!((c, back), (centroids.to_vec(), Some(codec)), "{index_type:?}");
            // Only codes of residuals need the newer version, so builds from before them
            // still read the other types and call this one a newer format, not corrupt.
            let version = vault("s1").open(CENTROIDS_KEY, &blob).unwrap()[0];
            assert_eq!(version, if index_type == IndexType::IvfSq8 { 3 } else { 2 }, "{index_type:?}");
        }
    }
}
