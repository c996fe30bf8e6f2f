//! The x86 address translation LZMS applies to every chunk.
//!
//! Relative operands of a few common x86/x64 instructions (CALL rel32;
//! CALL/LOCK ADD through RIP; MOV/LEA with RIP-relative operand) are turned
//! into absolute positions before compression, so repeated references to
//! one target become repeated byte strings, and turned back after
//! decompression. Translation is only done near code that looks like x86: a
//! 16-bit target seen twice within 64 KiB marks the place as code, and
//! instructions within 1023 bytes (511 for the very common E8 byte) of the
//! last such mark are translated. The decoder must recompute the same marks,
//! so they are taken from the *untranslated* operands on both sides.

const ID_WINDOW: i64 = 65535;
const MAX_TRANSLATION_OFFSET: i64 = 1023;

/// Marks (0x80) the bytes of `w` equal to one of the first bytes of the
/// instructions the filter looks at: 0x48, 0x4C, 0xE8, 0xE9, 0xF0, 0xFF.
/// Exact per byte (no false positives, no carries between bytes). The
/// scan on x86-64 uses SSE2 instead; this serves other targets (and the
/// tests check both).
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
#[inline(always)]
fn opcode_bytes(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;
    // 0x80 in every zero byte of x: the add carries into bit 7 exactly
    // when one of the low seven bits is set, and bit 7 itself is or-ed in.
    let zero = |x: u64| !(((x & LOW7) + LOW7) | x | LOW7);
    // 0x48/0x4C differ in bit 2 only, 0xE8/0xE9 in bit 0 only.
    zero((w & (0xFB * ONES)) ^ (0x48 * ONES))
        | zero((w & (0xFE * ONES)) ^ (0xE8 * ONES))
        | zero(w ^ (0xF0 * ONES))
        | zero(w ^ (0xFF * ONES))
}

/// Bit `i` set when byte `p + i` (`i < 16`) is one of the first bytes
/// [`opcode_bytes`] marks; `data` must hold 16 bytes from `p`.
#[inline(always)]
fn opcode_mask16(data: &[u8], p: usize) -> u32 {
    let chunk: &[u8; 16] = match data[p..].first_chunk::<16>() {
        Some(c) => c,
        None => panic!("opcode_mask16 needs 16 bytes"),
    };
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        // Sixteen bytes per step with SSE2 (part of every x86-64 CPU): with
        // the word-at-a-time test, decoding an 8 MiB chunk took 443 M
        // instructions, with this 420 M (wimlib: 303 M).
        // SAFETY: `chunk` is 16 readable bytes (an unaligned load); the
        // other intrinsics only compute on registers.
        unsafe {
            let v = _mm_loadu_si128(chunk.as_ptr().cast());
            let rex = _mm_cmpeq_epi8(
                _mm_and_si128(v, _mm_set1_epi8(0xFBu8 as i8)),
                _mm_set1_epi8(0x48),
            );
            let call = _mm_cmpeq_epi8(
                _mm_and_si128(v, _mm_set1_epi8(0xFEu8 as i8)),
                _mm_set1_epi8(0xE8u8 as i8),
            );
            let lock = _mm_cmpeq_epi8(v, _mm_set1_epi8(0xF0u8 as i8));
            let ff = _mm_cmpeq_epi8(v, _mm_set1_epi8(-1));
            let any = _mm_or_si128(_mm_or_si128(rex, call), _mm_or_si128(lock, ff));
            _mm_movemask_epi8(any) as u32
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        opcode_mask16_words(chunk)
    }
}

/// [`opcode_mask16`] from two [`opcode_bytes`] words, for targets without
/// SSE2 (built everywhere, so that the tests check it on x86-64 too).
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
#[inline(always)]
fn opcode_mask16_words(chunk: &[u8; 16]) -> u32 {
    // One bit per marked byte: the multiplication gathers the low bit of
    // each byte (the 0x80 marks shifted down) into the top byte, byte i
    // at bit 56 + i, without carries.
    let bits = |w: &[u8]| -> u32 {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        let m = opcode_bytes(u64::from_le_bytes(b)) >> 7;
        (m.wrapping_mul(0x0102_0408_1020_4080) >> 56) as u32
    };
    bits(&chunk[..8]) | (bits(&chunk[8..]) << 8)
}

/// Scratch state of the filter (256 KiB, reused between chunks).
pub struct X86Filter {
    last_use: Vec<i32>,
}

impl X86Filter {
    pub fn new() -> Self {
        X86Filter {
            last_use: vec![0; 1 << 16],
        }
    }

    /// Translates `data` in place: `undo == false` before compression,
    /// `true` after decompression.
    pub fn run(&mut self, data: &mut [u8], undo: bool) {
        let size = data.len();
        if size <= 17 {
            return;
        }
        self.last_use.fill(-(ID_WINDOW as i32) - 1);
        let mut last_x86: i64 = -MAX_TRANSLATION_OFFSET - 1;
        // Opcodes in the last 16 bytes are never considered, so an operand
        // (at most 7 bytes past its opcode) always lies inside the buffer.
        let end = size - 16;
        // The first byte is never an opcode for this purpose.
        let mut p = 1;
        while p < end {
            // Most bytes cannot start a translated instruction: skip them 16
            // at a time (this filter runs over every decoded byte). p + 16 <
            // size, so the 16 bytes are always there.
            let marks = opcode_mask16(data, p);
            if marks == 0 {
                p += 16;
                continue;
            }
            p += marks.trailing_zeros() as usize;
            if p >= end {
                break;
            }
            let b0 = data[p];
            let b1 = data[p + 1];
            let b2 = data[p + 2];
            let (opcode_len, max_off) = match b0 {
                0xE8 => (1, MAX_TRANSLATION_OFFSET >> 1),
                // Relative JMP is skipped whole, never translated.
                0xE9 => {
                    p += 5;
                    continue;
                }
                0xFF if b1 == 0x15 => (2, MAX_TRANSLATION_OFFSET),
                0xF0 if b1 == 0x83 && b2 == 0x05 => (3, MAX_TRANSLATION_OFFSET),
                // REX.W prefixes: LEA, or MOV with a restricted ModR/M; the
                // format only tests the R/M bits for RIP-relative mode.
                0x48 | 0x4C
                    if b2 & 0x07 == 0x05
                        && (b1 == 0x8D || (b1 == 0x8B && b0 & 0x04 == 0 && b2 & 0xF0 == 0)) =>
                {
                    (3, MAX_TRANSLATION_OFFSET)
                }
                _ => {
                    p += 1;
                    continue;
                }
            };
            let i = p as i64;
            let at = p + opcode_len;
            let word = |d: &[u8]| u32::from_le_bytes([d[at], d[at + 1], d[at + 2], d[at + 3]]);
            let translate = i - last_x86 <= max_off;
            // The target key comes from the relative form of the operand.
            let target = if undo {
                if translate {
                    let v = word(data).wrapping_sub(i as u32);
                    data[at..at + 4].copy_from_slice(&v.to_le_bytes());
                }
                (i as u32).wrapping_add(word(data) & 0xFFFF) as u16
            } else {
                let t = (i as u32).wrapping_add(word(data) & 0xFFFF) as u16;
                if translate {
                    let v = word(data).wrapping_add(i as u32);
                    data[at..at + 4].copy_from_slice(&v.to_le_bytes());
                }
                t
            };
            let last = i + opcode_len as i64 + 3;
            let slot = &mut self.last_use[target as usize];
            if last - i64::from(*slot) <= ID_WINDOW {
                last_x86 = last;
            }
            *slot = last as i32;
            p = at + 4;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translation_is_undone_exactly() {
        let mut data = Vec::new();
        let mut x = 7u32;
        while data.len() < 100_000 {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            match x >> 29 {
                0 | 1 => {
                    let pos = data.len() as u32;
                    data.push(0xE8);
                    data.extend_from_slice(
                        &(((x >> 8) & 0x3FF) * 16).wrapping_sub(pos).to_le_bytes(),
                    );
                }
                2 => data.extend_from_slice(&[0x48, 0x8D, 0x05, 1, 2, 0, 0]),
                3 => data.extend_from_slice(&[0xFF, 0x15, 0x10, 0, 0, 0]),
                4 => data.extend_from_slice(&[0xF0, 0x83, 0x05, 0x20, 0, 0, 0]),
                5 => data.push(0xE9),
                _ => data.push((x >> 12) as u8),
            }
        }
        let orig = data.clone();
        let mut f = X86Filter::new();
        f.run(&mut data, false);
        assert_ne!(data, orig, "x86-like data must be translated");
        f.run(&mut data, true);
        assert_eq!(data, orig);
    }

    #[test]
    fn opcode_scan_marks_exactly_the_six_first_bytes() {
        for b in 0..=255u8 {
            for at in 0..8 {
                // The byte under test among bytes that never match.
                let mut w = [0x90u8; 8];
                w[at] = b;
                let marks = opcode_bytes(u64::from_le_bytes(w));
                let want = matches!(b, 0x48 | 0x4C | 0xE8 | 0xE9 | 0xF0 | 0xFF);
                assert_eq!(
                    marks,
                    u64::from(want) << (8 * at + 7),
                    "byte {b:#x} at {at}"
                );
            }
        }
        // Every byte an opcode: all eight marked.
        let w = u64::from_le_bytes([0x48, 0x4C, 0xE8, 0xE9, 0xF0, 0xFF, 0x48, 0xFF]);
        assert_eq!(opcode_bytes(w), 0x8080_8080_8080_8080);
    }

    #[test]
    fn sixteen_byte_scan_marks_exactly_the_six_first_bytes() {
        let mut x = 12345u32;
        for round in 0..2000 {
            let mut d = [0u8; 20];
            for b in d.iter_mut() {
                x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                // Half the bytes from the six, to get dense masks too.
                *b = if x >> 31 == 0 {
                    [0x48, 0x4C, 0xE8, 0xE9, 0xF0, 0xFF][(x >> 8) as usize % 6]
                } else {
                    (x >> 16) as u8
                };
            }
            let p = round % 4;
            let want = (0..16).fold(0u32, |m, i| {
                m | u32::from(matches!(d[p + i], 0x48 | 0x4C | 0xE8 | 0xE9 | 0xF0 | 0xFF)) << i
            });
            assert_eq!(opcode_mask16(&d, p), want, "{d:x?} from {p}");
            let chunk: &[u8; 16] = d[p..].first_chunk().unwrap();
            assert_eq!(opcode_mask16_words(chunk), want, "{d:x?} from {p}");
        }
    }

    #[test]
    fn short_buffers_are_left_alone() {
        let mut d = [0xE8u8; 17];
        X86Filter::new().run(&mut d, false);
        assert_eq!(d, [0xE8; 17]);
    }
}
