//! The security data block at the start of each metadata resource: a table
//! of self-relative Windows security descriptors, referenced by index from
//! the directory entries.

use std::collections::HashMap;

use crate::error::{Result, WimError};
use crate::reshdr::{le32, le64};

/// Parses the security data; returns the descriptors and the block's total
/// (8-aligned) length, where the root dentry starts.
pub fn parse_security_data(buf: &[u8], image: u32) -> Result<(Vec<Vec<u8>>, usize)> {
    let bad = |reason: String| WimError::InvalidMetadata { image, reason };
    if buf.len() < 8 {
        return Err(bad(
            "metadata resource shorter than its security data header".into(),
        ));
    }
    let mut total = align8(le32(buf) as u64);
    if total == 0 {
        total = 8;
    }
    let n = le32(&buf[4..]) as u64;
    if total > buf.len() as u64 {
        return Err(bad(format!(
            "security data length {total} exceeds the metadata resource ({} bytes)",
            buf.len()
        )));
    }
    let sizes_end = 8 + n * 8;
    if sizes_end > total {
        return Err(bad(format!(
            "security data claims {n} descriptors, more than its length {total} allows"
        )));
    }
    let mut descriptors = Vec::with_capacity(n as usize);
    let mut p = sizes_end;
    for i in 0..n {
        let off = (8 + i * 8) as usize;
        let sz = le64(&buf[off..]);
        if sz > u32::MAX as u64 || p + sz > total {
            return Err(bad(format!(
                "security descriptor {i} of {sz} bytes overruns the security data"
            )));
        }
        descriptors.push(buf[p as usize..(p + sz) as usize].to_vec());
        p += sz;
    }
    if align8(p) != total {
        return Err(bad(format!(
            "security data length {total} does not match its contents ({p} bytes)"
        )));
    }
    Ok((descriptors, total as usize))
}

/// Bytes [`serialize_security_data`] writes for `descriptors`.
pub fn security_data_len(descriptors: &[Vec<u8>]) -> usize {
    let len: usize = 8 + descriptors.len() * 8 + descriptors.iter().map(|d| d.len()).sum::<usize>();
    align8(len as u64) as usize
}

pub fn serialize_security_data(descriptors: &[Vec<u8>], out: &mut Vec<u8>) {
    let start = out.len();
    let total = security_data_len(descriptors);
    out.extend_from_slice(&(total as u32).to_le_bytes());
    out.extend_from_slice(&(descriptors.len() as u32).to_le_bytes());
    for d in descriptors {
        out.extend_from_slice(&(d.len() as u64).to_le_bytes());
    }
    for d in descriptors {
        out.extend_from_slice(d);
    }
    out.resize(start + total, 0);
}

fn align8(x: u64) -> u64 {
    (x + 7) & !7
}

/// Collects distinct security descriptors while capturing, handing out the
/// index each dentry stores.
#[derive(Default, Debug, Clone)]
pub struct SecurityDescriptorSet {
    pub descriptors: Vec<Vec<u8>>,
    index: HashMap<Vec<u8>, u32>,
}

impl SecurityDescriptorSet {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn from_descriptors(descriptors: Vec<Vec<u8>>) -> Self {
        let mut s = Self::default();
        for (i, d) in descriptors.iter().enumerate() {
            s.index.entry(d.clone()).or_insert(i as u32);
        }
        s.descriptors = descriptors;
        s
    }

    /// Index of `sd`, adding it if new.
    pub fn add(&mut self, sd: &[u8]) -> u32 {
        if let Some(&i) = self.index.get(sd) {
            return i;
        }
        let i = self.descriptors.len() as u32;
        self.descriptors.push(sd.to_vec());
        self.index.insert(sd.to_vec(), i);
        i
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_dedup() {
        let mut set = SecurityDescriptorSet::new();
        assert_eq!(set.add(&[1, 2, 3]), 0);
        assert_eq!(set.add(&[4; 21]), 1);
        assert_eq!(set.add(&[1, 2, 3]), 0);
        let mut out = Vec::new();
        serialize_security_data(&set.descriptors, &mut out);
        assert_eq!(out.len() % 8, 0);
        let (d, total) = parse_security_data(&out, 1).unwrap();
        assert_eq!(d, set.descriptors);
        assert_eq!(total, out.len());
    }

    #[test]
    fn empty_and_zero_length() {
        let mut out = Vec::new();
        serialize_security_data(&[], &mut out);
        assert_eq!(out, vec![8, 0, 0, 0, 0, 0, 0, 0]);
        let (d, t) = parse_security_data(&[0; 8], 1).unwrap();
        assert!(d.is_empty());
        assert_eq!(t, 8);
    }

    #[test]
    fn rejects_overruns() {
        // claims 1000 descriptors in 16 bytes
        let mut b = vec![16, 0, 0, 0, 0xe8, 3, 0, 0];
        b.extend_from_slice(&[0; 8]);
        assert!(parse_security_data(&b, 1).is_err());
        // descriptor size beyond total
        let mut b = vec![24, 0, 0, 0, 1, 0, 0, 0];
        b.extend_from_slice(&100u64.to_le_bytes());
        b.extend_from_slice(&[0; 8]);
        assert!(parse_security_data(&b, 1).is_err());
        assert!(parse_security_data(&[1, 2, 3], 1).is_err());
    }
}
