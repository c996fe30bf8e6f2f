//! Helpers for the disk integration tests: running the independent tools
//! and copying a partition out into a file of its own (ntfs-3g's tools and
//! fsck.fat take no offset).
#![allow(dead_code)]

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::process::Command;

pub const MIB: u64 = 1 << 20;

/// Runs a tool; returns (success, stdout + stderr).
pub fn run(prog: &str, args: &[&str]) -> (bool, String) {
    let path = tasq_disk::format::find_program(prog)
        .unwrap_or_else(|| panic!("{prog} is not installed (scripts/setup.sh)"));
    let out = Command::new(path).args(args).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

pub fn have(prog: &str) -> bool {
    tasq_disk::format::find_program(prog).is_some()
}

/// Copies `len` bytes at `offset` of `img` into a new sparse file `out`
/// (all-zero 64 KiB blocks are left as holes).
pub fn extract(img: &Path, offset: u64, len: u64, out: &Path) {
    let mut src = File::open(img).unwrap();
    src.seek(SeekFrom::Start(offset)).unwrap();
    let mut dst = File::create(out).unwrap();
    dst.set_len(len).unwrap();
    let mut buf = vec![0u8; 1 << 16];
    let mut done = 0u64;
    while done < len {
        // Jump over holes of the (sparse) image.
        match rustix::fs::seek(&src, rustix::fs::SeekFrom::Data(offset + done)) {
            Ok(d) if d >= offset + len => break,
            Ok(d) if d > offset + done => {
                done = (d - offset) / (1 << 16) * (1 << 16);
                src.seek(SeekFrom::Start(offset + done)).unwrap();
            }
            Ok(_) => {}
            Err(_) => break,
        }
        let n = (len - done).min(buf.len() as u64) as usize;
        src.read_exact(&mut buf[..n]).unwrap();
        if buf[..n].iter().any(|&b| b != 0) {
            dst.seek(SeekFrom::Start(done)).unwrap();
            dst.write_all(&buf[..n]).unwrap();
        }
        done += n as u64;
    }
}

/// Writes the whole of file `src` into `img` at `offset`.
pub fn implant(img: &Path, offset: u64, src: &Path) {
    let data = std::fs::read(src).unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(img).unwrap();
    use std::os::unix::fs::FileExt;
    // Skip zero blocks so that sparse images stay sparse.
    for (i, c) in data.chunks(1 << 16).enumerate() {
        if c.iter().any(|&b| b != 0) {
            f.write_all_at(c, offset + (i as u64) * (1 << 16)).unwrap();
        }
    }
}
