//! The x86 CALL ("E8") translation of LZX.
//!
//! Before compression the 32-bit relative target following each 0xE8 byte is
//! turned into an absolute one (so that calls to the same function look
//! alike and match); after decompression the translation is undone. In WIM
//! files it is always on, with the fixed "file size" 12000000, and no call
//! may start in the last 10 bytes of the chunk. The scan skips the 4 target
//! bytes after each E8 it handles, translated or not.

use super::tables::E8_MAGIC_FILESIZE;

/// Rewrites relative call targets as absolute ones (compressor side).
pub fn preprocess(data: &mut [u8]) {
    scan(data, |rel, pos| {
        if rel >= -pos && rel < E8_MAGIC_FILESIZE {
            Some(if rel < E8_MAGIC_FILESIZE - pos {
                rel + pos
            } else {
                rel - E8_MAGIC_FILESIZE
            })
        } else {
            None
        }
    });
}

/// Undoes [`preprocess`] (decompressor side).
pub fn postprocess(data: &mut [u8]) {
    scan(data, |abs, pos| {
        if abs >= 0 {
            (abs < E8_MAGIC_FILESIZE).then(|| abs - pos)
        } else {
            (abs >= -pos).then(|| abs + E8_MAGIC_FILESIZE)
        }
    });
}

/// Calls `f(target, position)` for every E8 byte that starts a call the
/// translation applies to, writing back the value `f` returns.
#[inline]
fn scan(data: &mut [u8], f: impl Fn(i32, i32) -> Option<i32>) {
    if data.len() <= 10 {
        return;
    }
    let limit = data.len() - 10;
    let mut i = 0;
    while i < limit {
        // Skip quickly over stretches without an E8 byte.
        match find_e8(&data[i..limit]) {
            None => return,
            Some(k) => i += k,
        }
        // i < limit, so the 4 target bytes i+1..i+5 lie inside the data.
        let t: [u8; 4] = [data[i + 1], data[i + 2], data[i + 3], data[i + 4]];
        // Chunks are at most 2 MiB, so the position fits in an i32.
        if let Some(v) = f(i32::from_le_bytes(t), i as i32) {
            data[i + 1..i + 5].copy_from_slice(&v.to_le_bytes());
        }
        i += 5;
    }
}

/// Position of the first 0xE8 byte of `s` (`memchr` uses the vector
/// instructions the CPU has; in code, E8 bytes are dense, one in ~20 on
/// the bench corpus, and the work per byte found then weighs as much).
#[inline]
fn find_e8(s: &[u8]) -> Option<usize> {
    memchr::memchr(0xE8, s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn translates_a_call_to_absolute_and_back() {
        let mut d = vec![0u8; 32];
        d[5] = 0xE8;
        d[6..10].copy_from_slice(&100i32.to_le_bytes());
        let orig = d.clone();
        preprocess(&mut d);
        assert_eq!(i32::from_le_bytes([d[6], d[7], d[8], d[9]]), 105);
        postprocess(&mut d);
        assert_eq!(d, orig);
    }

    #[test]
    fn no_translation_in_the_last_ten_bytes() {
        let mut d = vec![0u8; 20];
        d[10] = 0xE8; // starts exactly 10 bytes before the end
        d[11] = 7;
        let orig = d.clone();
        preprocess(&mut d);
        assert_eq!(d, orig);
        d[9] = 0xE8; // one earlier: translated
        preprocess(&mut d);
        assert_ne!(&d[10..14], &orig[10..14]);
    }

    #[test]
    fn negative_targets_use_the_compensating_form() {
        let mut d = vec![0u8; 40];
        d[20] = 0xE8;
        d[21..25].copy_from_slice(&(-3i32).to_le_bytes());
        let orig = d.clone();
        preprocess(&mut d);
        assert_eq!(i32::from_le_bytes([d[21], d[22], d[23], d[24]]), 17);
        postprocess(&mut d);
        assert_eq!(d, orig);
    }

    proptest! {
        #[test]
        fn postprocess_inverts_preprocess(mut v in proptest::collection::vec(
            prop_oneof![Just(0xE8u8), Just(0u8), Just(0xFFu8), any::<u8>()], 0..3000)) {
            let orig = v.clone();
            preprocess(&mut v);
            postprocess(&mut v);
            prop_assert_eq!(v, orig);
        }
    }
}
