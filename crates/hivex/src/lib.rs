//! Registry hive files through libhivex: the BCD store the boot step
//! builds from the image's `BCD-Template`, and the SYSTEM/SOFTWARE hives
//! other steps read or edit.
//!
//! [`ffi`] declares the few C functions used (prototypes from
//! `/usr/include/hivex.h`; every type crossing the boundary is a pointer,
//! a `size_t`, an `int` or the plain four-field `hive_set_value`).
//! [`Hive`] wraps a handle: open, walk keys, add keys, replace a key's
//! values, commit to a file. hivex cannot create a hive from nothing;
//! [`minimal_hive`] writes the smallest valid one (header block, one hbin
//! with a root key and a security cell) for it to open.
//!
//! Values are raw registry data: strings are UTF-16LE with a terminating
//! NUL ([`utf16z`]), multi-strings a list of those plus a final NUL
//! ([`multi_sz`]).

use std::ffi::{CStr, CString};
use std::path::{Path, PathBuf};

pub mod ffi {
    //! Raw bindings to libhivex (LGPL-2.1-or-later, linked dynamically).
    use libc::{c_char, c_int, size_t};

    #[repr(C)]
    pub struct HiveH {
        _private: [u8; 0],
    }
    pub type NodeH = size_t;
    pub type ValueH = size_t;

    /// `struct hive_set_value`: key (NUL-terminated), type, length, data.
    #[repr(C)]
    pub struct HiveSetValue {
        pub key: *mut c_char,
        pub t: c_int,
        pub len: size_t,
        pub value: *mut c_char,
    }

    pub const OPEN_WRITE: c_int = 4;

    extern "C" {
        pub fn hivex_open(filename: *const c_char, flags: c_int) -> *mut HiveH;
        pub fn hivex_close(h: *mut HiveH) -> c_int;
        pub fn hivex_root(h: *mut HiveH) -> NodeH;
        pub fn hivex_node_name(h: *mut HiveH, node: NodeH) -> *mut c_char;
        pub fn hivex_node_children(h: *mut HiveH, node: NodeH) -> *mut NodeH;
        pub fn hivex_node_get_child(h: *mut HiveH, node: NodeH, name: *const c_char) -> NodeH;
        pub fn hivex_node_values(h: *mut HiveH, node: NodeH) -> *mut ValueH;
        pub fn hivex_value_key(h: *mut HiveH, val: ValueH) -> *mut c_char;
        pub fn hivex_value_value(
            h: *mut HiveH,
            val: ValueH,
            t: *mut c_int,
            len: *mut size_t,
        ) -> *mut c_char;
        pub fn hivex_commit(h: *mut HiveH, filename: *const c_char, flags: c_int) -> c_int;
        pub fn hivex_node_add_child(h: *mut HiveH, parent: NodeH, name: *const c_char) -> NodeH;
        pub fn hivex_node_delete_child(h: *mut HiveH, node: NodeH) -> c_int;
        pub fn hivex_node_set_values(
            h: *mut HiveH,
            node: NodeH,
            nr_values: size_t,
            values: *const HiveSetValue,
            flags: c_int,
        ) -> c_int;
    }
}

/// Registry value types (`hive_type`).
pub mod reg {
    pub const SZ: i32 = 1;
    pub const EXPAND_SZ: i32 = 2;
    pub const BINARY: i32 = 3;
    pub const DWORD: i32 = 4;
    pub const MULTI_SZ: i32 = 7;
    pub const QWORD: i32 = 11;
}

#[derive(Debug, thiserror::Error)]
pub enum HiveError {
    #[error("{path}: {what}: {source}")]
    Os {
        path: PathBuf,
        what: String,
        source: std::io::Error,
    },
    #[error("{path}: {0}", path = .1.display())]
    Invalid(String, PathBuf),
}

pub type Result<T> = std::result::Result<T, HiveError>;

/// A key of an open hive (hivex's node handle; valid while the hive is open).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Node(ffi::NodeH);

/// One value of a key as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    pub name: String,
    pub kind: i32,
    pub data: Vec<u8>,
}

/// An open hive file.
pub struct Hive {
    h: *mut ffi::HiveH,
    path: PathBuf,
}

fn cstring(s: &str, path: &Path) -> Result<CString> {
    CString::new(s).map_err(|_| HiveError::Invalid(format!("{s:?} holds a NUL"), path.into()))
}

fn path_cstring(p: &Path) -> Result<CString> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| HiveError::Invalid("the path holds a NUL".into(), p.into()))
}

/// Copies a NUL-terminated string hivex allocated, and frees it.
///
/// # Safety
/// `p` is null or a `malloc`ed NUL-terminated string nobody else owns.
unsafe fn take_string(p: *mut libc::c_char) -> Option<String> {
    if p.is_null() {
        return None;
    }
    // SAFETY: non-null, NUL-terminated per hivex's contract.
    let s = unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
    // SAFETY: hivex returns malloc'ed strings the caller frees.
    unsafe { libc::free(p.cast()) };
    Some(s)
}

/// Copies a 0-terminated handle array hivex allocated, and frees it.
///
/// # Safety
/// `p` is null or a `malloc`ed array of `size_t` ending in 0.
unsafe fn take_handles(p: *mut libc::size_t) -> Option<Vec<usize>> {
    if p.is_null() {
        return None;
    }
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        // SAFETY: the array is terminated by 0, so every index up to it is in bounds.
        let v = unsafe { *p.add(i) };
        if v == 0 {
            break;
        }
        out.push(v);
        i += 1;
    }
    // SAFETY: malloc'ed by hivex, owned by us now.
    unsafe { libc::free(p.cast()) };
    Some(out)
}

impl Hive {
    /// Opens `path` (writable changes are kept in memory until [`commit`](Self::commit)).
    pub fn open(path: &Path, writable: bool) -> Result<Hive> {
        let c = path_cstring(path)?;
        let flags = if writable { ffi::OPEN_WRITE } else { 0 };
        // SAFETY: `c` is a valid C string for the duration of the call.
        let h = unsafe { ffi::hivex_open(c.as_ptr(), flags) };
        if h.is_null() {
            return Err(HiveError::Os {
                path: path.into(),
                what: "opening the hive".into(),
                source: std::io::Error::last_os_error(),
            });
        }
        Ok(Hive {
            h,
            path: path.into(),
        })
    }

    fn os(&self, what: String) -> HiveError {
        HiveError::Os {
            path: self.path.clone(),
            what,
            source: std::io::Error::last_os_error(),
        }
    }

    pub fn root(&self) -> Node {
        // SAFETY: `self.h` is an open handle.
        Node(unsafe { ffi::hivex_root(self.h) })
    }

    pub fn name(&self, n: Node) -> String {
        // SAFETY: open handle; the string is ours to free.
        unsafe { take_string(ffi::hivex_node_name(self.h, n.0)) }.unwrap_or_default()
    }

    /// The sub-key `name` (compared without case, as hivex does).
    pub fn child(&self, n: Node, name: &str) -> Result<Option<Node>> {
        let c = cstring(name, &self.path)?;
        // SAFETY: open handle, valid C string.
        let r = unsafe { ffi::hivex_node_get_child(self.h, n.0, c.as_ptr()) };
        Ok((r != 0).then_some(Node(r)))
    }

    pub fn children(&self, n: Node) -> Result<Vec<Node>> {
        // SAFETY: open handle; the array is ours to free.
        let v = unsafe { take_handles(ffi::hivex_node_children(self.h, n.0)) }
            .ok_or_else(|| self.os(format!("listing the sub-keys of {}", self.name(n))))?;
        Ok(v.into_iter().map(Node).collect())
    }

    /// Follows `path` (`\`-separated) from `n`.
    pub fn lookup(&self, n: Node, path: &str) -> Result<Option<Node>> {
        let mut cur = n;
        for part in path.split('\\').filter(|p| !p.is_empty()) {
            match self.child(cur, part)? {
                Some(c) => cur = c,
                None => return Ok(None),
            }
        }
        Ok(Some(cur))
    }

    /// The sub-key `name`, created when missing.
    pub fn ensure_child(&mut self, n: Node, name: &str) -> Result<Node> {
        if let Some(c) = self.child(n, name)? {
            return Ok(c);
        }
        let c = cstring(name, &self.path)?;
        // SAFETY: open (writable) handle, valid C string.
        let r = unsafe { ffi::hivex_node_add_child(self.h, n.0, c.as_ptr()) };
        if r == 0 {
            return Err(self.os(format!("adding the key {name}")));
        }
        Ok(Node(r))
    }

    /// Removes `n` and everything under it.
    pub fn delete(&mut self, n: Node) -> Result<()> {
        // SAFETY: open handle.
        if unsafe { ffi::hivex_node_delete_child(self.h, n.0) } != 0 {
            return Err(self.os("deleting a key".into()));
        }
        Ok(())
    }

    pub fn values(&self, n: Node) -> Result<Vec<Value>> {
        // SAFETY: open handle; the array is ours to free.
        let handles = unsafe { take_handles(ffi::hivex_node_values(self.h, n.0)) }
            .ok_or_else(|| self.os(format!("listing the values of {}", self.name(n))))?;
        let mut out = Vec::new();
        for v in handles {
            // SAFETY: open handle and a value handle hivex just gave us.
            let name = unsafe { take_string(ffi::hivex_value_key(self.h, v)) }.unwrap_or_default();
            let mut t: libc::c_int = 0;
            let mut len: libc::size_t = 0;
            // SAFETY: as above; `t` and `len` are valid out-pointers.
            let p = unsafe { ffi::hivex_value_value(self.h, v, &mut t, &mut len) };
            if p.is_null() {
                return Err(self.os(format!("reading the value {name}")));
            }
            // SAFETY: hivex returned `len` readable bytes at `p`.
            let data = unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len) }.to_vec();
            // SAFETY: malloc'ed by hivex.
            unsafe { libc::free(p.cast()) };
            out.push(Value {
                name,
                kind: t,
                data,
            });
        }
        Ok(out)
    }

    pub fn value(&self, n: Node, name: &str) -> Result<Option<Value>> {
        Ok(self
            .values(n)?
            .into_iter()
            .find(|v| v.name.eq_ignore_ascii_case(name)))
    }

    /// Replaces every value of `n` with `values`.
    pub fn set_values(&mut self, n: Node, values: &[Value]) -> Result<()> {
        let keys: Vec<CString> = values
            .iter()
            .map(|v| cstring(&v.name, &self.path))
            .collect::<Result<_>>()?;
        let mut datas: Vec<Vec<u8>> = values.iter().map(|v| v.data.clone()).collect();
        let raw: Vec<ffi::HiveSetValue> = values
            .iter()
            .zip(&keys)
            .zip(datas.iter_mut())
            .map(|((v, k), d)| ffi::HiveSetValue {
                key: k.as_ptr().cast_mut(),
                t: v.kind,
                len: d.len(),
                value: d.as_mut_ptr().cast(),
            })
            .collect();
        // SAFETY: every pointer in `raw` points into `keys`/`datas`, alive
        // until after the call; hivex copies the data.
        let r = unsafe { ffi::hivex_node_set_values(self.h, n.0, raw.len(), raw.as_ptr(), 0) };
        if r != 0 {
            return Err(self.os(format!("setting the values of {}", self.name(n))));
        }
        Ok(())
    }

    /// Sets (adds or replaces) one value of `n`, keeping the others.
    pub fn set_value(&mut self, n: Node, v: Value) -> Result<()> {
        let mut all: Vec<Value> = self
            .values(n)?
            .into_iter()
            .filter(|x| !x.name.eq_ignore_ascii_case(&v.name))
            .collect();
        all.push(v);
        self.set_values(n, &all)
    }

    /// Writes the hive (with the changes) to `dest`.
    pub fn commit(&mut self, dest: &Path) -> Result<()> {
        let c = path_cstring(dest)?;
        // SAFETY: open handle, valid C string.
        if unsafe { ffi::hivex_commit(self.h, c.as_ptr(), 0) } != 0 {
            return Err(HiveError::Os {
                path: dest.into(),
                what: "writing the hive".into(),
                source: std::io::Error::last_os_error(),
            });
        }
        Ok(())
    }
}

impl Drop for Hive {
    fn drop(&mut self) {
        // SAFETY: the handle is open and closed exactly once, here.
        unsafe { ffi::hivex_close(self.h) };
    }
}

/// `s` as REG_SZ data: UTF-16LE and a terminating NUL.
pub fn utf16z(s: &str) -> Vec<u8> {
    let mut out: Vec<u8> = s.encode_utf16().flat_map(u16::to_le_bytes).collect();
    out.extend_from_slice(&[0, 0]);
    out
}

/// REG_MULTI_SZ data: each string NUL-terminated, then one more NUL.
pub fn multi_sz(items: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for s in items {
        out.extend(utf16z(s));
    }
    out.extend_from_slice(&[0, 0]);
    out
}

/// Decodes REG_SZ data (up to the first NUL).
pub fn from_utf16z(data: &[u8]) -> String {
    let units: Vec<u16> = data
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0)
        .collect();
    String::from_utf16_lossy(&units)
}

impl Value {
    pub fn string(name: &str, s: &str) -> Value {
        Value {
            name: name.into(),
            kind: reg::SZ,
            data: utf16z(s),
        }
    }
    pub fn dword(name: &str, v: u32) -> Value {
        Value {
            name: name.into(),
            kind: reg::DWORD,
            data: v.to_le_bytes().to_vec(),
        }
    }
    pub fn binary(name: &str, data: Vec<u8>) -> Value {
        Value {
            name: name.into(),
            kind: reg::BINARY,
            data,
        }
    }
    pub fn multi(name: &str, items: &[&str]) -> Value {
        Value {
            name: name.into(),
            kind: reg::MULTI_SZ,
            data: multi_sz(items),
        }
    }
}

// ---- a hive from nothing ----
//
// Format facts (the "regf" format as documented publicly, e.g. in the
// Windows registry file format specification by Maxim Suhanov):
// - a 4096-byte base block: "regf", primary and secondary sequence numbers
//   (equal when the hive is consistent), last-written FILETIME, major 1 /
//   minor 3, type 0 (primary file), format 1 (direct memory load), the
//   root cell's offset (relative to the first hbin), the length of the
//   hive-bins data, clustering factor 1, a UTF-16 file name (64 bytes at
//   48), and at 508 the XOR of the 127 dwords before it;
// - hive bins of a multiple of 4096 bytes: "hbin", the bin's offset from
//   the first bin, its size, and a 32-byte header in all;
// - cells: a signed 32-bit size (negative = allocated) including itself,
//   a multiple of 8; free space is one positive-size cell;
// - a key node "nk": flags, FILETIME, parent, sub-key and value counts
//   and list offsets (0xFFFFFFFF = none), the security cell, the longest
//   names, then the name (ASCII when flag 0x20 KEY_COMP_NAME is set);
// - a security cell "sk": flink/blink (to itself when it is the only
//   one), a reference count and a self-relative security descriptor.

const REGF_BLOCK: usize = 4096;
const HBIN_HEADER: usize = 32;
const NONE: u32 = 0xFFFF_FFFF;

fn put_u16(b: &mut [u8], at: usize, v: u16) {
    if let Some(s) = b.get_mut(at..at + 2) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}
fn put_u32(b: &mut [u8], at: usize, v: u32) {
    if let Some(s) = b.get_mut(at..at + 4) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}
fn put_u64(b: &mut [u8], at: usize, v: u64) {
    if let Some(s) = b.get_mut(at..at + 8) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}

fn align8(n: usize) -> usize {
    (n + 7) & !7
}

/// The bytes of an empty hive whose root key is `root_name` (ASCII,
/// at most 255 bytes; other characters become `_`). `filetime` is the
/// last-written time of the header and the root key.
pub fn minimal_hive(root_name: &str, filetime: u64) -> Vec<u8> {
    let name: Vec<u8> = root_name
        .bytes()
        .take(255)
        .map(|b| {
            if b.is_ascii_graphic() || b == b' ' {
                b
            } else {
                b'_'
            }
        })
        .collect();
    let mut file = vec![0u8; REGF_BLOCK + REGF_BLOCK];
    let bin_at = REGF_BLOCK;

    // Cells, as offsets relative to the first hbin.
    let nk_off = HBIN_HEADER;
    let nk_len = align8(4 + 76 + name.len());
    let sk_off = nk_off + nk_len;
    // Self-relative descriptor: revision 1, control SE_SELF_RELATIVE |
    // SE_DACL_PRESENT with no DACL pointer (a NULL DACL: no restriction),
    // no owner, group or SACL.
    let sd: [u8; 20] = {
        let mut d = [0u8; 20];
        d[0] = 1;
        d[2..4].copy_from_slice(&0x8004u16.to_le_bytes());
        d
    };
    let sk_len = align8(4 + 20 + sd.len());
    let free_off = sk_off + sk_len;

    {
        let bin = &mut file[bin_at..];
        bin[0..4].copy_from_slice(b"hbin");
        put_u32(bin, 4, 0);
        put_u32(bin, 8, REGF_BLOCK as u32);
        put_u64(bin, 20, filetime);

        // nk
        let c = nk_off;
        put_u32(bin, c, (-(nk_len as i32)) as u32);
        let k = c + 4;
        bin[k..k + 2].copy_from_slice(b"nk");
        // KEY_HIVE_ENTRY (0x04) | KEY_NO_DELETE (0x08) | KEY_COMP_NAME (0x20)
        put_u16(bin, k + 2, 0x2C);
        put_u64(bin, k + 4, filetime);
        put_u32(bin, k + 16, 0); // parent: none for the root
        put_u32(bin, k + 20, 0); // sub-keys
        put_u32(bin, k + 24, 0); // volatile sub-keys
        put_u32(bin, k + 28, NONE);
        put_u32(bin, k + 32, NONE);
        put_u32(bin, k + 36, 0); // values
        put_u32(bin, k + 40, NONE);
        put_u32(bin, k + 44, sk_off as u32);
        put_u32(bin, k + 48, NONE); // class name
        put_u16(bin, k + 72, name.len() as u16);
        put_u16(bin, k + 74, 0);
        bin[k + 76..k + 76 + name.len()].copy_from_slice(&name);

        // sk
        let c = sk_off;
        put_u32(bin, c, (-(sk_len as i32)) as u32);
        let s = c + 4;
        bin[s..s + 2].copy_from_slice(b"sk");
        put_u32(bin, s + 4, sk_off as u32); // flink
        put_u32(bin, s + 8, sk_off as u32); // blink
        put_u32(bin, s + 12, 1); // references: the root key
        put_u32(bin, s + 16, sd.len() as u32);
        bin[s + 20..s + 20 + sd.len()].copy_from_slice(&sd);

        // The rest of the bin is one free cell.
        put_u32(bin, free_off, (REGF_BLOCK - free_off) as u32);
    }

    let hdr = &mut file[..REGF_BLOCK];
    hdr[0..4].copy_from_slice(b"regf");
    put_u32(hdr, 4, 1);
    put_u32(hdr, 8, 1);
    put_u64(hdr, 12, filetime);
    put_u32(hdr, 20, 1);
    put_u32(hdr, 24, 3);
    put_u32(hdr, 28, 0);
    put_u32(hdr, 32, 1);
    put_u32(hdr, 36, nk_off as u32);
    put_u32(hdr, 40, REGF_BLOCK as u32);
    put_u32(hdr, 44, 1);
    let fname: Vec<u8> = root_name
        .encode_utf16()
        .take(31)
        .flat_map(u16::to_le_bytes)
        .collect();
    hdr[48..48 + fname.len()].copy_from_slice(&fname);
    let mut sum = 0u32;
    for i in 0..127 {
        let at = i * 4;
        sum ^= u32::from_le_bytes([hdr[at], hdr[at + 1], hdr[at + 2], hdr[at + 3]]);
    }
    let sum = match sum {
        0 => 1,
        0xFFFF_FFFF => 0xFFFF_FFFE,
        s => s,
    };
    put_u32(hdr, 508, sum);
    file
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minimal_hive_opens_and_takes_keys_and_values() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("h");
        std::fs::write(&p, minimal_hive("ROOT", 0x01D0_0000_0000_0000)).unwrap();
        let mut h = Hive::open(&p, true).unwrap();
        let root = h.root();
        assert_eq!(h.name(root), "ROOT");
        assert!(h.children(root).unwrap().is_empty());
        let a = h.ensure_child(root, "Objects").unwrap();
        let b = h.ensure_child(a, "{x}").unwrap();
        h.set_values(
            b,
            &[
                Value::dword("Type", 0x1010_0002),
                Value::string("S", "héllo"),
                Value::multi("M", &["a", "b"]),
            ],
        )
        .unwrap();
        h.set_value(b, Value::binary("B", vec![1, 2, 3])).unwrap();
        let out = d.path().join("h2");
        h.commit(&out).unwrap();
        drop(h);
        let h = Hive::open(&out, false).unwrap();
        let b = h.lookup(h.root(), "objects\\{X}").unwrap().unwrap();
        let vals = h.values(b).unwrap();
        assert_eq!(vals.len(), 4);
        let t = h.value(b, "Type").unwrap().unwrap();
        assert_eq!(t.data, 0x1010_0002u32.to_le_bytes());
        assert_eq!(
            from_utf16z(&h.value(b, "S").unwrap().unwrap().data),
            "héllo"
        );
        assert_eq!(h.value(b, "B").unwrap().unwrap().data, vec![1, 2, 3]);
        assert_eq!(h.value(b, "M").unwrap().unwrap().kind, reg::MULTI_SZ);
    }

    #[test]
    fn hivex_tools_read_the_minimal_hive() {
        // Independent readers: hivexget and hivexml (libhivex-bin).
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("h");
        std::fs::write(&p, minimal_hive("SYSTEM", 0)).unwrap();
        let mut h = Hive::open(&p, true).unwrap();
        let r = h.root();
        let k = h.ensure_child(r, "Select").unwrap();
        h.set_values(k, &[Value::dword("Current", 1)]).unwrap();
        h.commit(&p).unwrap();
        drop(h);
        let out = std::process::Command::new("hivexget")
            .arg(&p)
            .arg("\\Select")
            .output()
            .expect("hivexget (libhivex-bin) is installed");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("\"Current\"=dword:00000001"), "{text}");
        let xml = std::process::Command::new("hivexml")
            .arg(&p)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&xml.stdout);
        assert!(text.contains("<node name=\"SYSTEM\""), "{text}");
        assert!(text.contains("<node name=\"Select\""), "{text}");
    }

    #[test]
    fn corrupt_hives_are_refused_not_crashed() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("h");
        let mut b = minimal_hive("R", 0);
        b[0] = b'x';
        std::fs::write(&p, &b).unwrap();
        assert!(Hive::open(&p, false).is_err());
        std::fs::write(&p, b"regf").unwrap();
        assert!(Hive::open(&p, false).is_err());
    }
}
