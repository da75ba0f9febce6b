//! Reading the stored layouts: a bounds-checked reader and the one version check.
//!
//! Every sealed value starts with a version byte of its own layout. A value whose version
//! this build does not read is `ERR_UNSUPPORTED_FORMAT` (written by a newer ciphervec, or a
//! pre-release format), never `ERR_CORRUPT`: authentication passed, so its bytes are intact.

use crate::error::{Error, Result};

/// Checks the version byte `found` of a `what` ("record", "segment", ...) against the
/// versions this build reads; `hint` says what to do instead of upgrading, if anything.
pub(crate) fn check_version(what: &str, found: Option<u8>, reads: &[u8], hint: Option<&str>) -> Result<u8> {
    let Some(v) = found else { return Err(Error::Corrupt(format!("malformed {what}: empty"))) };
    if reads.contains(&v) {
        return Ok(v);
    }
    let newest = reads.iter().max().copied().unwrap_or(0);
    let action = hint.unwrap_or("upgrade ciphervec");
    Err(Error::UnsupportedFormat(format!(
        "{what} format version {v} is not supported (this ciphervec reads version {newest}): {action}"
    )))
}

/// Reads little-endian fields from a buffer, failing with `ERR_CORRUPT` ("malformed `what`:
/// truncated") instead of reading past its end.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Self {
        Reader { buf, pos: 0, what }
    }

    /// `ERR_CORRUPT` for this layout.
    pub(crate) fn corrupt(&self, why: &str) -> Error {
        Error::Corrupt(format!("malformed {}: {why}", self.what))
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len()).ok_or_else(|| self.corrupt("truncated"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    pub(crate) fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }

    pub(crate) fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }

    pub(crate) fn u128(&mut self) -> Result<u128> {
        Ok(u128::from_le_bytes(self.take(16)?.try_into().expect("16 bytes")))
    }

    /// A `u32` length, then that many bytes.
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    /// [`Reader::bytes`], with the length `u32::MAX` meaning none.
    pub(crate) fn opt_bytes(&mut self, none: u32) -> Result<Option<&'a [u8]>> {
        match self.u32()? {
            n if n == none => Ok(None),
            n => self.take(n as usize).map(Some),
        }
    }

    /// Everything not read yet.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let rest = &self.buf[self.pos..];
        self.pos = self.buf.len();
        rest
    }

    /// `ERR_CORRUPT` unless every byte was read.
    pub(crate) fn finish(&self) -> Result<()> {
        if self.pos != self.buf.len() {
            return Err(self.corrupt("trailing bytes"));
        }
        Ok(())
    }
}

/// Appends a `u32` length and `b`.
pub(crate) fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_checked_in_one_place() {
        assert_eq!(check_version("record", Some(2), &[1, 2], None).unwrap(), 2);
        let newer = check_version("record", Some(3), &[1, 2], None).unwrap_err();
        assert_eq!(newer.code(), "ERR_UNSUPPORTED_FORMAT");
        assert!(newer.to_string().contains("version 3") && newer.to_string().contains("reads version 2"));
        assert_eq!(check_version("record", None, &[1], None).unwrap_err().code(), "ERR_CORRUPT");
        let hinted = check_version("summary", Some(1), &[2], Some("re-create the index")).unwrap_err();
        assert!(hinted.to_string().ends_with("re-create the index"));
    }

    #[test]
    fn the_reader_never_reads_past_the_end() {
        let mut r = Reader::new(&[1, 2, 0, 0, 0, 9, 9], "test value");
        assert_eq!(r.u8().unwrap(), 1);
        assert_eq!(r.bytes().unwrap(), &[9, 9]);
        r.finish().unwrap();
        let err = Reader::new(&[5, 0, 0, 0, 1], "test value").bytes().unwrap_err();
        assert_eq!((err.code(), err.to_string().as_str()), ("ERR_CORRUPT", "malformed test value: truncated"));
        let mut r = Reader::new(&[255, 255, 255, 255], "x");
        assert_eq!(r.opt_bytes(u32::MAX).unwrap(), None);
        assert!(Reader::new(&[1], "x").finish().is_err());
    }
}
