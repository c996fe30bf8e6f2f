//! SHA-1 message digests, the identity of every blob in a WIM.

use std::fmt;

use sha1::{Digest, Sha1};

/// Maps and sets keyed by what a WIM holds (blob hashes, names, ids):
/// foldhash, seeded once per process (the keys come from files that may
/// be hostile, so not an unseeded hash), instead of the standard SipHash,
/// whose hashing alone was 5.8 % of the samples of reading /usr/share's
/// image (blob-table index and look-ups, duplicate-name checks).
pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
pub type FastSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

/// A SHA-1 digest. The all-zero digest means "no data" in WIM structures.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Sha1Hash(pub [u8; 20]);

/// All 20 bytes, as three words (the derived hash feeds a length and the
/// bytes through the hasher's general path; equal digests still hash
/// equally, and a table keyed by digests a file chose cannot be made to
/// collide on a part of them).
impl std::hash::Hash for Sha1Hash {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let [a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q, r, s, t] = self.0;
        state.write_u64(u64::from_le_bytes([a, b, c, d, e, f, g, h]));
        state.write_u64(u64::from_le_bytes([i, j, k, l, m, n, o, p]));
        state.write_u32(u32::from_le_bytes([q, r, s, t]));
    }
}

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
