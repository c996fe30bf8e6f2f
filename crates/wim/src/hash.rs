//! SHA-1 message digests, the identity of every blob in a WIM.

use std::fmt;

use sha1::{Digest, Sha1};

/// A SHA-1 digest. The all-zero digest means "no data" in WIM structures.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Sha1Hash(pub [u8; 20]);

impl Sha1Hash {
    pub const ZERO: Sha1Hash = Sha1Hash([0; 20]);

    pub fn is_zero(&self) -> bool {
        self.0 == [0; 20]
    }

    /// Digest of `data` in one call.
    pub fn of(data: &[u8]) -> Sha1Hash {
        let mut h = Sha1::new();
        h.update(data);
        Sha1Hash(h.finalize().into())
    }

    pub fn from_slice(b: &[u8]) -> Option<Sha1Hash> {
        <[u8; 20]>::try_from(b).ok().map(Sha1Hash)
    }
}

impl fmt::Display for Sha1Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Sha1Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha1Hash({self})")
    }
}

/// Incremental SHA-1 (a thin wrapper so callers need not name the crate).
#[derive(Clone, Default)]
pub struct Sha1Hasher(Sha1);

impl Sha1Hasher {
    pub fn new() -> Self {
        Self(Sha1::new())
    }
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }
    pub fn finish(self) -> Sha1Hash {
        Sha1Hash(self.0.finalize().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digest() {
        assert_eq!(
            Sha1Hash::of(b"abc").to_string(),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        let mut h = Sha1Hasher::new();
        h.update(b"a");
        h.update(b"bc");
        assert_eq!(h.finish(), Sha1Hash::of(b"abc"));
    }
}
