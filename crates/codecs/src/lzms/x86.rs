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

/// First bytes of the instructions the filter looks at.
const MAY_START: [bool; 256] = {
    let mut t = [false; 256];
    t[0x48] = true;
    t[0x4C] = true;
    t[0xE8] = true;
    t[0xE9] = true;
    t[0xF0] = true;
    t[0xFF] = true;
    t
};

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
            // Most bytes cannot start a translated instruction: skip them in
            // a tight loop (this filter runs over every decoded byte).
            if !MAY_START[usize::from(data[p])] {
                p += 1;
                continue;
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
    fn short_buffers_are_left_alone() {
        let mut d = [0xE8u8; 17];
        X86Filter::new().run(&mut d, false);
        assert_eq!(d, [0xE8; 17]);
    }
}
