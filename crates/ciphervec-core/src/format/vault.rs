//! The vault of one index: its data keys and storage name, through which every value of the
//! index is sealed and opened (with the associated data of `keys`), and which counts every
//! seal against the data key's nonce budget.
//!
//! With random 96-bit nonces one data key may seal at most 2^32 values ([`NONCE_LIMIT`]). The
//! count is kept in the sealed record summary, which every write rewrites, so it survives
//! restarts. Once it passes [`ROTATE_AFTER`] (half the budget), the next compaction seals the
//! index anew under a fresh data key (`Index::compact`, which writes every entry anyway);
//! writes start compactions when rotation is due. Should it still reach [`REFUSE_AT`], writes
//! are refused with `ERR_NONCE_BUDGET` until a compaction has rotated the key.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::crypto::{AuthError, DataKeys, SealToken, NONCE_LIMIT};
use crate::error::{Error, Result};
use crate::format::keys::{aad, aad_into, log_key, record_key, tombstone_key};

/// Seals after which the next compaction rotates the data key.
pub(crate) const ROTATE_AFTER: u64 = NONCE_LIMIT / 2;
/// Seals after which writes are refused (room is left for a compaction's own seals, which
/// it makes under the new key anyway).
pub(crate) const REFUSE_AT: u64 = NONCE_LIMIT - (1 << 24);

/// A sealed value: the bytes to store and its seal token (for the record summary).
pub(crate) struct Sealed {
    pub(crate) blob: Vec<u8>,
    pub(crate) token: SealToken,
}

/// See the module docs.
pub(crate) struct Vault {
    keys: DataKeys,
    storage_name: String,
    /// Values sealed under `keys` so far (persisted in the record summary).
    seals: AtomicU64,
    /// The budget's thresholds: [`ROTATE_AFTER`] and [`REFUSE_AT`] except in tests, which
    /// cannot seal 2^31 values.
    rotate_after: AtomicU64,
    refuse_at: AtomicU64,
}

impl Vault {
    /// The vault of the index stored as `storage_name` whose data keys are `keys` and which
    /// has sealed `seals` values under them.
    pub(crate) fn new(keys: DataKeys, storage_name: String, seals: u64) -> Vault {
        Vault {
            keys,
            storage_name,
            seals: AtomicU64::new(seals),
            rotate_after: AtomicU64::new(ROTATE_AFTER),
            refuse_at: AtomicU64::new(REFUSE_AT),
        }
    }

    /// Sets a nonce budget of `rotate_after` / `refuse_at` seals, for tests.
    #[cfg(test)]
    pub(crate) fn set_budget(&self, rotate_after: u64, refuse_at: u64) {
        self.rotate_after.store(rotate_after, Ordering::Release);
        self.refuse_at.store(refuse_at, Ordering::Release);
    }

    /// The same vault with a nonce budget of `rotate_after` / `refuse_at` seals, for tests.
    #[cfg(test)]
    pub(crate) fn with_budget(self, rotate_after: u64, refuse_at: u64) -> Vault {
        self.set_budget(rotate_after, refuse_at);
        self
    }

    pub(crate) fn storage_name(&self) -> &str {
        &self.storage_name
    }

    /// Continues the count from `seals`, as a load read it from the record summary (which
    /// it needs this vault to open).
    pub(crate) fn resume_count(&self, seals: u64) {
        self.seals.fetch_max(seals, Ordering::AcqRel);
    }

    /// Continues from a count that was never recorded (an index written before seals were
    /// counted): as far as the budget goes it may be anything, so the next compaction rotates
    /// the data key.
    pub(crate) fn resume_unknown_count(&self) {
        self.resume_count(self.rotate_after.load(Ordering::Acquire));
    }

    /// Values sealed under this vault's data key.
    pub(crate) fn seals(&self) -> u64 {
        self.seals.load(Ordering::Acquire)
    }

    /// Whether the data key has sealed enough for the next compaction to replace it.
    pub(crate) fn rotation_due(&self) -> bool {
        self.seals() >= self.rotate_after.load(Ordering::Acquire)
    }

    /// `ERR_NONCE_BUDGET` if the data key has sealed so much that writes must wait for a
    /// compaction to rotate it; `index_name` is for the message.
    pub(crate) fn check_budget(&self, index_name: &str) -> Result<()> {
        let seals = self.seals();
        if seals < self.refuse_at.load(Ordering::Acquire) {
            return Ok(());
        }
        Err(Error::NonceBudget(format!(
            "index '{index_name}' has sealed {seals} values under its data key, close to the {NONCE_LIMIT} that \
             random nonces allow; run index.compact(), which seals the index anew under a fresh key"
        )))
    }

    fn counted(&self, blob: Vec<u8>) -> Sealed {
        self.seals.fetch_add(1, Ordering::AcqRel);
        let token = self.keys.seal_token(&blob);
        Sealed { blob, token }
    }

    /// `plain` sealed for storage key `key`.
    pub(crate) fn seal(&self, key: &[u8], plain: &[u8]) -> Sealed {
        self.counted(self.keys.records.seal(&aad(&self.storage_name, key), plain))
    }

    /// [`Vault::seal`], padded to its size class (see `crypto::padded_len`): for values whose
    /// size would reveal the size of what users stored.
    pub(crate) fn seal_padded(&self, key: &[u8], plain: &[u8]) -> Sealed {
        self.counted(self.keys.records.seal_padded(&aad(&self.storage_name, key), plain))
    }

    /// Authenticates and decrypts the value stored under `key`.
    pub(crate) fn open(&self, key: &[u8], blob: &[u8]) -> std::result::Result<Vec<u8>, AuthError> {
        self.keys.records.open(&aad(&self.storage_name, key), blob)
    }

    /// [`Vault::open`] where the blob lies (no allocation; `aad` is a reused buffer); returns
    /// the plaintext and the blob's seal token.
    pub(crate) fn open_in_place<'b>(
        &self,
        aad: &mut Vec<u8>,
        key: &[u8],
        blob: &'b mut [u8],
    ) -> std::result::Result<(&'b [u8], SealToken), AuthError> {
        aad_into(aad, &self.storage_name, key);
        if blob.len() < crate::crypto::SEAL_OVERHEAD {
            return Err(AuthError);
        }
        let token = self.keys.seal_token(blob);
        let plain = self.keys.records.open_in_place(aad, blob)?;
        Ok((plain, token))
    }

    /// The body of change-log entry `seq`, sealed under the log's own key. Those seals are
    /// not counted: a write seals one body and at least two values (records or tombstones,
    /// and the summary) under the data key, so the log key's budget never runs out first,
    /// and it is replaced with the data key.
    pub(crate) fn seal_log(&self, seq: u64, plain: &[u8]) -> Vec<u8> {
        self.keys.log.seal(&aad(&self.storage_name, &log_key(seq)), plain)
    }

    /// Opens what [`Vault::seal_log`] sealed.
    pub(crate) fn open_log(&self, seq: u64, blob: &[u8]) -> std::result::Result<Vec<u8>, AuthError> {
        self.keys.log.open(&aad(&self.storage_name, &log_key(seq)), blob)
    }

    /// The storage key of `id`'s loose record.
    pub(crate) fn record_key(&self, id: &str) -> Vec<u8> {
        record_key(&self.keys.id_tag(id))
    }

    /// The storage key of `id`'s tombstone.
    pub(crate) fn tombstone_key(&self, id: &str) -> Vec<u8> {
        tombstone_key(&self.keys.id_tag(id))
    }
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault").field("storage_name", &self.storage_name).field("seals", &self.seals()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::random_key;

    #[test]
    fn every_seal_counts_and_the_budget_is_enforced() {
        let vault = Vault::new(DataKeys::derive(&random_key()), "s".into(), 5).with_budget(8, 10);
        let a = vault.seal(b"r1", b"one");
        let b = vault.seal_padded(b"r2", b"two");
        assert_eq!(vault.seals(), 7);
        assert!(!vault.rotation_due());
        assert_eq!(vault.open(b"r1", &a.blob).unwrap(), b"one");
        assert_eq!(vault.open(b"r2", &b.blob).unwrap(), b"two");
        assert!(vault.open(b"r2", &a.blob).is_err(), "bound to its key");
        let mut aad = Vec::new();
        let mut blob = a.blob.clone();
        let (plain, token) = vault.open_in_place(&mut aad, b"r1", &mut blob).unwrap();
        assert_eq!((plain, token), (&b"one"[..], a.token));
        vault.seal(b"r3", b"");
        assert!(vault.rotation_due());
        vault.check_budget("x").unwrap();
        vault.seal(b"r4", b"");
        vault.seal(b"r5", b"");
        assert_eq!(vault.check_budget("x").unwrap_err().code(), "ERR_NONCE_BUDGET");
    }
}
