//! All cryptography of ciphervec; nothing else touches `aes-gcm`, HKDF or HMAC.
//!
//! Key hierarchy (per index):
//! - the caller's 32-byte *index key* is a key-encryption key (KEK). It never encrypts data;
//!   it wraps a random 32-byte *data key* (DEK) with AES-256-GCM, so a key can later be
//!   rotated by re-wrapping one small blob instead of re-encrypting every record.
//! - sub-keys are derived from the DEK with HKDF-SHA256: one AES-256-GCM key for records and
//!   one HMAC-SHA256 key that turns ids into storage keys (the store never sees an id).
//! - a third sub-key (an AES-256 block key) turns each sealed record's nonce into a secret
//!   *seal token*; the record summary (`format::summary`) is the XOR of the tokens of the
//!   current record versions, so records that disappear, appear, or roll back to an older
//!   sealed version are detected, not just records whose bytes changed.
//! - a *key check* value, HMAC(HKDF(KEK, "key-check"), storage name), lets `loadIndex` tell a
//!   wrong key (check mismatch) from tampering (check matches, but the wrapped DEK fails).
//!
//! Nonces: every sealed blob gets a fresh random 96-bit nonce from the OS CSPRNG. With random
//! nonces the chance of a collision stays below 2^-32 as long as one data key seals at most
//! 2^32 messages (NIST SP 800-38D, 8.3): [`NONCE_LIMIT`]. Every seal is counted (see
//! `format::vault`) and the data key is rotated long before that.

use aes::cipher::BlockCipherEncrypt;
use aes::Aes256;
use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Length of index keys and data keys in bytes.
pub(crate) const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// Version byte that starts every sealed blob: the plaintext as it is.
const BLOB_VERSION: u8 = 1;
/// Version byte of a padded blob: its plaintext is `len u32 ‖ plaintext ‖ zeros`, filled to a
/// size class (see [`padded_len`]).
const PADDED_BLOB_VERSION: u8 = 2;
/// The smallest step between the plaintext sizes of padded blobs.
const PAD_STEP: usize = 64;
/// Bytes a sealed blob adds to its plaintext.
pub(crate) const SEAL_OVERHEAD: usize = 1 + NONCE_LEN + TAG_LEN;
/// Messages one data key may seal with random nonces (see module docs).
pub(crate) const NONCE_LIMIT: u64 = 1 << 32;

/// The secret token of one sealed value (see [`DataKeys::seal_token`]). Tokens combine by
/// XOR into the record summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub(crate) struct SealToken(pub(crate) u128);

impl std::ops::BitXor for SealToken {
    type Output = SealToken;
    fn bitxor(self, other: SealToken) -> SealToken {
        SealToken(self.0 ^ other.0)
    }
}

impl std::ops::BitXorAssign for SealToken {
    fn bitxor_assign(&mut self, other: SealToken) {
        self.0 ^= other.0;
    }
}

type HmacSha256 = Hmac<Sha256>;

/// 32 bytes from the operating system's CSPRNG.
pub fn random_key() -> [u8; KEY_LEN] {
    let mut k = [0u8; KEY_LEN];
    getrandom::fill(&mut k).expect("the OS random number generator failed");
    k
}

/// The caller's key-encryption key. Its `Debug` never prints the bytes.
#[derive(Clone)]
pub(crate) struct IndexKey([u8; KEY_LEN]);

impl IndexKey {
    /// Accepts exactly 32 bytes, else `ERR_INVALID_KEY`.
    pub(crate) fn from_slice(bytes: &[u8]) -> Result<Self> {
        let arr: [u8; KEY_LEN] = bytes.try_into().map_err(|_| {
            Error::InvalidKey(format!(
                "an index key must be exactly {KEY_LEN} bytes, got {}: use Client.generateKey()",
                bytes.len()
            ))
        })?;
        Ok(IndexKey(arr))
    }

    fn subkey(&self, info: &[u8]) -> [u8; KEY_LEN] {
        hkdf_expand(&self.0, info)
    }

    /// The name under which the index `index_name` is stored: HMAC-SHA256 of the name under a
    /// key derived from this index key, truncated to 128 bits. Only holders of the key can
    /// find the index or confirm a guessed name (an unkeyed hash let anyone with the store
    /// test guesses like `tenant-42`); the price is that an index is identified by its name
    /// *and* its key, so a wrong key finds no index instead of failing a key check.
    pub(crate) fn storage_name(&self, index_name: &str) -> String {
        hex(&hmac(&self.subkey(b"ciphervec/v2/index-name"), index_name.as_bytes())[..16])
    }

    /// Proves knowledge of the key for one index without revealing anything about it.
    pub(crate) fn key_check(&self, storage_name: &str) -> [u8; 32] {
        hmac(&self.subkey(b"ciphervec/v1/key-check"), storage_name.as_bytes())
    }

    /// Wraps a data key; `aad` binds the wrapped key to its index.
    pub(crate) fn wrap(&self, dek: &[u8; KEY_LEN], aad: &[u8]) -> Vec<u8> {
        Sealer::new(&self.subkey(b"ciphervec/v1/wrap")).seal(aad, dek)
    }

    /// Unwraps a data key; fails if the blob was altered or the key differs.
    pub(crate) fn unwrap(&self, wrapped: &[u8], aad: &[u8]) -> Option<[u8; KEY_LEN]> {
        let plain = Sealer::new(&self.subkey(b"ciphervec/v1/wrap")).open(aad, wrapped).ok()?;
        plain.try_into().ok()
    }
}

impl std::fmt::Debug for IndexKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IndexKey(..)")
    }
}

/// The client key: seals the store's catalog of index names (see `format::catalog`), so a
/// client holding it can list every index after a restart. Its `Debug` never prints the bytes.
#[derive(Clone)]
pub(crate) struct ClientKey([u8; KEY_LEN]);

impl ClientKey {
    /// Accepts exactly 32 bytes, else `ERR_INVALID_KEY`.
    pub(crate) fn from_slice(bytes: &[u8]) -> Result<Self> {
        let arr: [u8; KEY_LEN] = bytes.try_into().map_err(|_| {
            Error::InvalidKey(format!(
                "a client key must be exactly {KEY_LEN} bytes, got {}: use Client.generateKey()",
                bytes.len()
            ))
        })?;
        Ok(ClientKey(arr))
    }

    fn subkey(&self, info: &[u8]) -> [u8; KEY_LEN] {
        hkdf_expand(&self.0, info)
    }

    /// Seals the catalog's entries.
    pub(crate) fn catalog_sealer(&self) -> Sealer {
        Sealer::new(&self.subkey(b"ciphervec/v1/catalog"))
    }

    /// Proves knowledge of the key to a store's catalog without revealing anything about it.
    pub(crate) fn catalog_check(&self) -> [u8; 32] {
        hmac(&self.subkey(b"ciphervec/v1/catalog-check"), b"catalog")
    }

    /// The catalog key of the index stored as `storage_name`: keyed, so the catalog does not
    /// tell which of the store's spaces each entry names.
    pub(crate) fn catalog_tag(&self, storage_name: &str) -> [u8; 32] {
        hmac(&self.subkey(b"ciphervec/v1/catalog-entry"), storage_name.as_bytes())
    }
}

impl std::fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientKey(..)")
    }
}

/// The plaintext size a padded blob of `len` bytes is filled to, length prefix included:
/// Padmé (Nikitin et al., "Reducing Metadata Leakage from Encrypted Files and Communication
/// with PURBs", 2019), which keeps only the top ~log₂log₂ bits of the size, so the overhead is
/// at most ~12% and what the size reveals shrinks as it grows; with steps of at least
/// [`PAD_STEP`] bytes, so records of a few hundred bytes do not reveal their length to the byte
/// either (600 → 640, 2000 → 2048, 5000 → 5120).
pub(crate) fn padded_len(len: usize) -> usize {
    let l = len + 4;
    let e = usize::BITS - 1 - l.leading_zeros();
    let s = u32::BITS - e.max(1).leading_zeros();
    let mask = (1usize << (e - s.min(e))).max(PAD_STEP) - 1;
    (l + mask) & !mask
}

/// AES-256-GCM with random nonces. Blob layout: version(1) ‖ nonce(12) ‖ ciphertext ‖ tag(16);
/// the version says whether the plaintext is padded ([`Sealer::seal_padded`]).
pub(crate) struct Sealer {
    cipher: Aes256Gcm,
}

/// Authentication failed: wrong key, altered bytes, or a blob moved to another place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AuthError;

impl Sealer {
    pub(crate) fn new(key: &[u8; KEY_LEN]) -> Self {
        Sealer { cipher: Aes256Gcm::new(key.into()) }
    }

    pub(crate) fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(plaintext.len() + SEAL_OVERHEAD);
        out.push(BLOB_VERSION);
        out.extend_from_slice(&random_nonce());
        out.extend_from_slice(plaintext);
        self.encrypt_body(aad, out)
    }

    /// [`Sealer::seal`] of `plaintext` filled to its size class ([`padded_len`]), so the blob's
    /// length tells the store the class, not the length: for entries whose size would reveal
    /// the size of what users stored (records, tombstones, an index's config with its name).
    pub(crate) fn seal_padded(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let len = u32::try_from(plaintext.len()).expect("sealed blobs are smaller than 4 GiB");
        let padded = padded_len(plaintext.len());
        let mut out = Vec::with_capacity(padded + SEAL_OVERHEAD);
        out.push(PADDED_BLOB_VERSION);
        out.extend_from_slice(&random_nonce());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(plaintext);
        out.resize(1 + NONCE_LEN + padded, 0);
        self.encrypt_body(aad, out)
    }

    /// Encrypts `out[1 + NONCE_LEN..]` in place under the nonce in `out` and appends the tag.
    fn encrypt_body(&self, aad: &[u8], mut out: Vec<u8>) -> Vec<u8> {
        let nonce = blob_nonce(&out);
        let body = &mut out[1 + NONCE_LEN..];
        let tag = self
            .cipher
            .encrypt_inout_detached(&Nonce::from(nonce), aad, body.into())
            .expect("AES-GCM message too long");
        out.extend_from_slice(&tag);
        out
    }

    /// Authenticates and decrypts a copy of `blob`; for the few small per-index entries.
    pub(crate) fn open(&self, aad: &[u8], blob: &[u8]) -> Result<Vec<u8>, AuthError> {
        Ok(self.open_in_place(aad, &mut blob.to_vec())?.to_vec())
    }

    /// Authenticates and decrypts `blob` where it lies (no allocation); returns the plaintext,
    /// a sub-slice of `blob`. On failure the bytes of `blob` are unspecified.
    pub(crate) fn open_in_place<'b>(&self, aad: &[u8], blob: &'b mut [u8]) -> Result<&'b mut [u8], AuthError> {
        if blob.len() < SEAL_OVERHEAD || !matches!(blob[0], BLOB_VERSION | PADDED_BLOB_VERSION) {
            return Err(AuthError);
        }
        let padded = blob[0] == PADDED_BLOB_VERSION;
        let nonce = blob_nonce(blob);
        let body_len = blob.len() - SEAL_OVERHEAD;
        let (body, tag) = blob[1 + NONCE_LEN..].split_at_mut(body_len);
        let tag: [u8; TAG_LEN] = (&*tag).try_into().unwrap();
        self.cipher
            .decrypt_inout_detached(&Nonce::from(nonce), aad, (&mut *body).into(), &Tag::from(tag))
            .map_err(|_| AuthError)?;
        if !padded {
            return Ok(body);
        }
        // Authenticated, so a bad length is a writer's bug, not an attack; still never read past.
        let (len, rest) = body.split_first_chunk_mut::<4>().ok_or(AuthError)?;
        let len = u32::from_le_bytes(*len) as usize;
        rest.get_mut(..len).ok_or(AuthError)
    }
}

fn random_nonce() -> [u8; NONCE_LEN] {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).expect("the OS random number generator failed");
    nonce
}

/// The nonce of a sealed blob (public: it is stored in the clear at the blob's start).
fn blob_nonce(blob: &[u8]) -> [u8; NONCE_LEN] {
    blob[1..1 + NONCE_LEN].try_into().expect("a sealed blob starts with version and nonce")
}

/// The keys derived from one index's data key. `Debug` shows no key material.
pub(crate) struct DataKeys {
    pub records: Sealer,
    /// Seals a shared store's change-log bodies (see `format::log`).
    pub log: Sealer,
    /// Keyed once: cloning the keyed state skips two of the four SHA-256 blocks per id.
    id_mac: HmacSha256,
    seal_token: Aes256,
}

impl std::fmt::Debug for DataKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKeys(..)")
    }
}

impl DataKeys {
    pub(crate) fn derive(dek: &[u8; KEY_LEN]) -> Self {
        DataKeys {
            records: Sealer::new(&hkdf_expand(dek, b"ciphervec/v1/records")),
            log: Sealer::new(&hkdf_expand(dek, b"ciphervec/v1/change-log")),
            id_mac: <HmacSha256 as KeyInit>::new_from_slice(&hkdf_expand(dek, b"ciphervec/v1/id-mac"))
                .expect("HMAC accepts any key length"),
            seal_token: Aes256::new(&hkdf_expand(dek, b"ciphervec/v2/seal-token").into()),
        }
    }

    /// The storage key of an item id: HMAC-SHA256 under an index-specific key, so equal ids in
    /// two indexes look unrelated and the store cannot test guesses without the key.
    pub(crate) fn id_tag(&self, id: &str) -> [u8; 32] {
        let mut mac = self.id_mac.clone();
        mac.update(id.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The secret token of one sealed record version: AES(k, nonce ‖ 0⁴). Nonces are random
    /// and unique per seal, so every write of a record gets a fresh, unpredictable token; only
    /// holders of the key can compute it (the record summary relies on that). One
    /// AES block per record, where a MAC of the storage key cost two SHA-256 HMAC passes.
    pub(crate) fn seal_token(&self, blob: &[u8]) -> SealToken {
        let mut block = [0u8; 16];
        block[..NONCE_LEN].copy_from_slice(&blob_nonce(blob));
        let mut block = block.into();
        self.seal_token.encrypt_block(&mut block);
        SealToken(u128::from_le_bytes(block.into()))
    }
}

/// The name under which an index created before names were keyed (ciphervec 0.1) is stored:
/// an unkeyed hash, which anyone holding the store can test guessed names against. Such
/// indexes are still found under it; new ones use [`IndexKey::storage_name`].
pub(crate) fn legacy_storage_name(index_name: &str) -> String {
    let digest = Sha256::new_with_prefix(b"ciphervec/v1/index-name\0").chain_update(index_name).finalize();
    hex(&digest[..16])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hkdf_expand(ikm: &[u8; KEY_LEN], info: &[u8]) -> [u8; KEY_LEN] {
    let mut out = [0u8; KEY_LEN];
    Hkdf::<Sha256>::new(None, ikm).expand(info, &mut out).expect("32 bytes is a valid HKDF length");
    out
}

fn hmac(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Computed independently (Python's hashlib/hmac: HKDF-SHA256 with an empty salt, then
    /// HMAC-SHA256), so the derivation is pinned to its specification, not to this code.
    const STORAGE_NAME_OF_DOCS_UNDER_KEY_7: &str = "89c08a9e9816442618b790538f144be8";
    const LEGACY_STORAGE_NAME_OF_DOCS: &str = "d837c2f83c39c72f8bb2a9678a84156b";

    #[test]
    fn seal_open_round_trip_and_aad_binding() {
        let s = Sealer::new(&random_key());
        let blob = s.seal(b"slot-1", b"hello");
        assert_eq!(blob.len(), 5 + SEAL_OVERHEAD);
        assert_eq!(s.open(b"slot-1", &blob).unwrap(), b"hello");
        assert_eq!(s.open(b"slot-2", &blob), Err(AuthError));
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        let s = Sealer::new(&random_key());
        let blob = s.seal(b"a", b"some plaintext bytes");
        for i in 0..blob.len() {
            let mut bad = blob.clone();
            bad[i] ^= 0x01;
            assert_eq!(s.open(b"a", &bad), Err(AuthError), "flip at {i} undetected");
        }
        assert_eq!(s.open(b"a", &blob[..blob.len() - 1]), Err(AuthError));
    }

    #[test]
    fn open_in_place_matches_open_and_rejects_flips() {
        let s = Sealer::new(&random_key());
        let blob = s.seal(b"k", b"in place please");
        let mut buf = blob.clone();
        assert_eq!(s.open_in_place(b"k", &mut buf).unwrap(), b"in place please");
        for i in 0..blob.len() {
            let mut bad = blob.clone();
            bad[i] ^= 0x80;
            assert_eq!(s.open_in_place(b"k", &mut bad), Err(AuthError), "flip at {i} undetected");
        }
        assert_eq!(s.open_in_place(b"other", &mut blob.clone()), Err(AuthError));
        assert_eq!(s.open_in_place(b"k", &mut blob[..SEAL_OVERHEAD - 1].to_vec()), Err(AuthError));
    }

    #[test]
    fn seal_tokens_are_keyed_and_fresh_per_seal() {
        let a = DataKeys::derive(&random_key());
        let b = DataKeys::derive(&random_key());
        let blob = a.records.seal(b"", b"same");
        let again = a.records.seal(b"", b"same");
        assert_eq!(a.seal_token(&blob), a.seal_token(&blob));
        assert_ne!(a.seal_token(&blob), a.seal_token(&again));
        assert_ne!(a.seal_token(&blob), b.seal_token(&blob));
    }

    #[test]
    fn padded_blobs_round_trip_hide_their_length_within_a_class_and_detect_flips() {
        let s = Sealer::new(&random_key());
        for len in [0, 1, 59, 60, 61, 300, 600, 1000, 4096, 100_000] {
            let plain: Vec<u8> = (0..len).map(|i| i as u8 ^ 0x5a).collect();
            let blob = s.seal_padded(b"a", &plain);
            assert_eq!(blob.len(), padded_len(len) + SEAL_OVERHEAD, "len {len}");
            assert!(padded_len(len) >= len + 4 && padded_len(len).is_multiple_of(PAD_STEP));
            assert!(padded_len(len) as f64 <= (len + 4) as f64 * 1.13 + PAD_STEP as f64, "overhead at {len}");
            assert_eq!(s.open(b"a", &blob).unwrap(), plain);
            assert_eq!(s.open(b"b", &blob), Err(AuthError));
            let mut bad = blob.clone();
            bad[blob.len() / 2] ^= 4;
            assert_eq!(s.open(b"a", &bad), Err(AuthError));
        }
        // Lengths within one class make blobs of one size.
        assert_eq!(s.seal_padded(b"", &[0; 600]).len(), s.seal_padded(b"", &[0; 620]).len());
        assert_eq!(padded_len(596), 640);
        assert_eq!(padded_len(2000), 2048);
        assert_eq!(padded_len(5000), 5120);
        // Unpadded blobs still open.
        assert_eq!(s.open(b"a", &s.seal(b"a", b"plain")).unwrap(), b"plain");
    }

    #[test]
    fn nonces_differ_between_seals() {
        let s = Sealer::new(&random_key());
        assert_ne!(s.seal(b"", b"same"), s.seal(b"", b"same"));
    }

    #[test]
    fn wrong_kek_fails_key_check_and_unwrap() {
        let k1 = IndexKey::from_slice(&random_key()).unwrap();
        let k2 = IndexKey::from_slice(&random_key()).unwrap();
        let dek = random_key();
        let wrapped = k1.wrap(&dek, b"idx");
        assert_eq!(k1.unwrap(&wrapped, b"idx"), Some(dek));
        assert_eq!(k2.unwrap(&wrapped, b"idx"), None);
        assert_ne!(k1.key_check("idx"), k2.key_check("idx"));
    }

    #[test]
    fn key_length_is_checked_and_debug_hides_bytes() {
        let err = IndexKey::from_slice(&[7u8; 31]).unwrap_err();
        assert_eq!(err.code(), "ERR_INVALID_KEY");
        let k = IndexKey::from_slice(&[7u8; 32]).unwrap();
        assert_eq!(format!("{k:?}"), "IndexKey(..)");
    }

    #[test]
    fn id_tags_are_keyed() {
        let a = DataKeys::derive(&random_key());
        let b = DataKeys::derive(&random_key());
        assert_eq!(a.id_tag("x"), a.id_tag("x"));
        assert_ne!(a.id_tag("x"), b.id_tag("x"));
        assert_ne!(legacy_storage_name("docs"), legacy_storage_name("docs2"));
        assert!(!legacy_storage_name("docs").contains("docs"));
    }

    #[test]
    fn storage_names_are_keyed_and_differ_from_the_legacy_hash() {
        let k1 = IndexKey::from_slice(&random_key()).unwrap();
        let k2 = IndexKey::from_slice(&random_key()).unwrap();
        assert_eq!(k1.storage_name("docs"), k1.storage_name("docs"));
        assert_ne!(k1.storage_name("docs"), k2.storage_name("docs"), "another key, another name");
        assert_ne!(k1.storage_name("docs"), k1.storage_name("docs2"));
        assert_ne!(k1.storage_name("docs"), legacy_storage_name("docs"));
        assert_eq!(k1.storage_name("docs").len(), legacy_storage_name("docs").len());
        // Pinned: a stored index must be found under the same name by every later build.
        let fixed = IndexKey::from_slice(&[7u8; 32]).unwrap();
        assert_eq!(fixed.storage_name("docs"), STORAGE_NAME_OF_DOCS_UNDER_KEY_7);
        assert_eq!(legacy_storage_name("docs"), LEGACY_STORAGE_NAME_OF_DOCS);
    }
}
