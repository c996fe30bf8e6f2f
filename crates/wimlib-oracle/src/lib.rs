//! Minimal safe wrapper over wimlib's raw compression API
//! (`wimlib_create_compressor`, `wimlib_compress`, `wimlib_decompress`).
//!
//! wimlib is the reference implementation of the WIM codecs. Our tests
//! compress with tasq and decompress with wimlib (and the other way round) to
//! prove the bitstreams are interchangeable, and the benchmarks time both in
//! the same run. Needs Debian's `libwim-dev` (libwim.so).

use std::ffi::{c_int, c_uint, c_void};

#[repr(C)]
struct RawCompressor {
    _private: [u8; 0],
}
#[repr(C)]
struct RawDecompressor {
    _private: [u8; 0],
}

extern "C" {
    fn wimlib_create_compressor(
        ctype: c_int,
        max_block_size: usize,
        compression_level: c_uint,
        compressor_ret: *mut *mut RawCompressor,
    ) -> c_int;
    fn wimlib_compress(
        uncompressed_data: *const c_void,
        uncompressed_size: usize,
        compressed_data: *mut c_void,
        compressed_size_avail: usize,
        compressor: *mut RawCompressor,
    ) -> usize;
    fn wimlib_free_compressor(compressor: *mut RawCompressor);
    fn wimlib_create_decompressor(
        ctype: c_int,
        max_block_size: usize,
        decompressor_ret: *mut *mut RawDecompressor,
    ) -> c_int;
    fn wimlib_decompress(
        compressed_data: *const c_void,
        compressed_size: usize,
        uncompressed_data: *mut c_void,
        uncompressed_size: usize,
        decompressor: *mut RawDecompressor,
    ) -> c_int;
    fn wimlib_free_decompressor(decompressor: *mut RawDecompressor);
}

/// wimlib's compression type numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ctype {
    Xpress = 1,
    Lzx = 2,
    Lzms = 3,
}

/// A wimlib compressor.
pub struct WimlibCompressor {
    raw: *mut RawCompressor,
    max_block: usize,
}

// SAFETY: a wimlib compressor is a plain heap object with no thread affinity;
// it is only used through &mut self.
unsafe impl Send for WimlibCompressor {}

impl WimlibCompressor {
    /// Creates a compressor; `level` 0 means wimlib's default (50).
    pub fn new(ctype: Ctype, max_block: usize, level: u32) -> Result<Self, i32> {
        let mut raw = std::ptr::null_mut();
        // SAFETY: FFI call with a valid out-pointer.
        let rc = unsafe { wimlib_create_compressor(ctype as c_int, max_block, level, &mut raw) };
        if rc != 0 || raw.is_null() {
            return Err(rc);
        }
        Ok(Self { raw, max_block })
    }

    /// Compresses `input`; `None` when it does not fit in `input.len() - 1`
    /// bytes (wimlib's "incompressible").
    pub fn compress(&mut self, input: &[u8]) -> Option<Vec<u8>> {
        assert!(input.len() <= self.max_block, "block larger than max_block");
        if input.is_empty() {
            return None;
        }
        let mut out = vec![0u8; input.len() - 1];
        // SAFETY: both buffers are valid for the lengths passed; the
        // compressor was created with max_block >= input.len().
        let n = unsafe {
            wimlib_compress(
                input.as_ptr().cast(),
                input.len(),
                out.as_mut_ptr().cast(),
                out.len(),
                self.raw,
            )
        };
        if n == 0 {
            return None;
        }
        out.truncate(n);
        Some(out)
    }
}

impl Drop for WimlibCompressor {
    fn drop(&mut self) {
        // SAFETY: raw came from wimlib_create_compressor and is freed once.
        unsafe { wimlib_free_compressor(self.raw) }
    }
}

/// A wimlib decompressor.
pub struct WimlibDecompressor {
    raw: *mut RawDecompressor,
    max_block: usize,
}

// SAFETY: as for the compressor.
unsafe impl Send for WimlibDecompressor {}

impl WimlibDecompressor {
    pub fn new(ctype: Ctype, max_block: usize) -> Result<Self, i32> {
        let mut raw = std::ptr::null_mut();
        // SAFETY: FFI call with a valid out-pointer.
        let rc = unsafe { wimlib_create_decompressor(ctype as c_int, max_block, &mut raw) };
        if rc != 0 || raw.is_null() {
            return Err(rc);
        }
        Ok(Self { raw, max_block })
    }

    /// Decompresses `input` into exactly `usize` bytes; `None` on failure.
    pub fn decompress(&mut self, input: &[u8], usize: usize) -> Option<Vec<u8>> {
        let mut out = vec![0u8; usize];
        self.decompress_into(input, &mut out).then_some(out)
    }

    /// Decompresses `input` into all of `out` (a reused buffer, so a
    /// benchmark times the codec, not page faults); false on failure.
    pub fn decompress_into(&mut self, input: &[u8], out: &mut [u8]) -> bool {
        assert!(out.len() <= self.max_block, "block larger than max_block");
        // SAFETY: both buffers are valid for the lengths passed.
        let rc = unsafe {
            wimlib_decompress(
                input.as_ptr().cast(),
                input.len(),
                out.as_mut_ptr().cast(),
                out.len(),
                self.raw,
            )
        };
        rc == 0
    }
}

impl Drop for WimlibDecompressor {
    fn drop(&mut self) {
        // SAFETY: raw came from wimlib_create_decompressor and is freed once.
        unsafe { wimlib_free_decompressor(self.raw) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wimlib_round_trips_its_own_lzx_and_xpress() {
        let data: Vec<u8> = (0..32768u32)
            .map(|i| (i % 251) as u8 ^ (i / 97) as u8)
            .collect();
        for ct in [Ctype::Xpress, Ctype::Lzx] {
            let mut c = WimlibCompressor::new(ct, 32768, 0).unwrap();
            let z = c.compress(&data).expect("compressible");
            assert!(z.len() < data.len());
            let mut d = WimlibDecompressor::new(ct, 32768).unwrap();
            assert_eq!(d.decompress(&z, data.len()).unwrap(), data);
        }
    }
}
