//! What the LZ77 decoders share: copying a match within the output.

/// Copies the `len`-byte match at `dst - offset` to `dst`
/// (`1 <= offset <= dst`, `dst + len <= out.len()`; panics otherwise).
#[inline(always)]
pub(crate) fn copy_match(out: &mut [u8], dst: usize, offset: usize, len: usize) {
    assert!(offset >= 1 && offset <= dst && dst + len <= out.len());
    // SAFETY: the assertion is the function's precondition.
    unsafe { copy_match_unchecked(out, dst, offset, len) }
}

/// [`copy_match`] for callers that have checked its conditions already.
///
/// # Safety
/// `1 <= offset <= dst` and `dst + len <= out.len()`.
#[inline(always)]
pub(crate) unsafe fn copy_match_unchecked(out: &mut [u8], dst: usize, offset: usize, len: usize) {
    debug_assert!(offset >= 1 && offset <= dst && dst + len <= out.len());
    let src = dst - offset;
    let base = out.as_mut_ptr();
    if offset >= 8 && dst + len + 16 <= out.len() {
        // The common case, first: 8 bytes at a time with raw pointers
        // (measured: the safe versions spent more on index arithmetic than
        // on copying). The first 16 bytes are copied without a test, which
        // covers most matches; only longer ones enter the loop (LLVM
        // vectorizes the loop, and its set-up cost about 15 instructions
        // per match when every match went through it). The writes may
        // spill up to 15 bytes past `dst + len`, still inside `out`; those
        // bytes are overwritten later since every output byte is produced
        // by some item.
        // SAFETY: the 8-byte writes start at dst, dst + 8 and then below
        // dst + len, so none ends past max(dst + 16, dst + len + 7) <=
        // dst + len + 16 <= out.len(); every read starts at its write's
        // position minus offset >= 8 (at or after src >= 0), so it lies
        // inside `out` and ends at or before the start of the bytes being
        // written (which makes word-by-word copying the same as
        // byte-by-byte, overlap included).
        unsafe {
            let mut s = base.add(src);
            let mut d = base.add(dst);
            let end = base.add(dst + len);
            d.cast::<u64>()
                .write_unaligned(s.cast::<u64>().read_unaligned());
            d.add(8)
                .cast::<u64>()
                .write_unaligned(s.add(8).cast::<u64>().read_unaligned());
            if len > 16 {
                s = s.add(16);
                d = d.add(16);
                loop {
                    d.cast::<u64>()
                        .write_unaligned(s.cast::<u64>().read_unaligned());
                    s = s.add(8);
                    d = d.add(8);
                    if d >= end {
                        break;
                    }
                }
            }
        }
    } else if len <= 32 {
        // Short match with a small offset (or at the very end): byte by
        // byte, reading what was just written.
        // SAFETY: src + i < dst + i < dst + len <= out.len() (precondition).
        unsafe {
            for i in 0..len {
                *base.add(dst + i) = *base.add(src + i);
            }
        }
    } else if offset >= len {
        out.copy_within(src..src + len, dst);
    } else if offset == 1 {
        let b = out[src];
        out[dst..dst + len].fill(b);
    } else {
        // Overlapping: [src, dst + done) repeats with period `offset`, so
        // each step can copy as much as has been produced so far.
        let mut done = 0;
        while done < len {
            let n = (offset + done).min(len - done);
            out.copy_within(src..src + n, dst + done);
            done += n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::copy_match;

    /// The byte-at-a-time definition of an LZ77 copy.
    fn reference(out: &mut [u8], dst: usize, offset: usize, len: usize) {
        for i in dst..dst + len {
            out[i] = out[i - offset];
        }
    }

    #[test]
    fn every_offset_and_length_copies_like_the_definition() {
        let seed: Vec<u8> = (0..64u32).map(|i| (i * 37 + 11) as u8).collect();
        for total in [70usize, 80, 200] {
            for dst in 1..64 {
                for offset in 1..=dst {
                    for len in 1..=(total - dst).min(70) {
                        let mut a = vec![0u8; total];
                        a[..64].copy_from_slice(&seed);
                        let mut b = a.clone();
                        copy_match(&mut a, dst, offset, len);
                        reference(&mut b, dst, offset, len);
                        assert_eq!(
                            a[..dst + len],
                            b[..dst + len],
                            "dst {dst} offset {offset} len {len} total {total}"
                        );
                    }
                }
            }
        }
    }
}
