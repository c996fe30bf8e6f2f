//! Writes that fail midway: a capture source whose data stops with an
//! I/O error after megabytes have been written, or yields fewer or more
//! bytes than it announced (a file that changed during capture). A new
//! WIM must leave the destination byte-identical and no temporary file; an
//! append must leave the old WIM byte-identical (cut back to its length)
//! and valid.

use std::io::{self, Read};
use std::path::Path;

use tasq_wim::capture::{CaptureFilter, CaptureSource, NoFilter, ScanProgress};
use tasq_wim::image::*;
use tasq_wim::memfs::MemFs;
use tasq_wim::reader::Wim;
use tasq_wim::verify::verify;
use tasq_wim::writer::{ImageOptions, WimWriter, WriteOptions};
use tasq_wim::{CompressionFormat, Sha1Hash};

/// How the stream of the last file misbehaves.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// An I/O error after this many bytes.
    ErrorAfter(u64),
    /// Ends early: this many bytes short.
    Short(u64),
    /// Yields this many bytes more than announced.
    Long(u64),
}

/// Three files of 600 KiB of noise (which compressors give up on quickly
/// and store raw, so more than the writer's 1 MiB buffer reaches the file
/// before the fault); the last one's stream misbehaves.
struct Faulty {
    fault: Fault,
}

const FILE: u64 = 1024 * 1024;
// Enough data that some of it has left the writer's in-flight window
// (up to ~4 MiB of chunks with the compressor threads) before the fault.
const FILES: u64 = 10; // f0..f9: the faulty last one is also last in name order

fn content(id: u64, pos: u64) -> u8 {
    // splitmix64 of the position: noise.
    let mut z = (pos ^ (id << 40)).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) as u8
}

struct Gen {
    id: u64,
    pos: u64,
    end: u64,
    fail_at: Option<u64>,
}

impl Read for Gen {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.fail_at.is_some_and(|f| self.pos >= f) {
            return Err(io::Error::other("device went away"));
        }
        let limit = self.fail_at.unwrap_or(self.end).min(self.end);
        let n = ((limit - self.pos) as usize).min(buf.len());
        for (i, b) in buf[..n].iter_mut().enumerate() {
            *b = content(self.id, self.pos + i as u64);
        }
        self.pos += n as u64;
        Ok(n)
    }
}

impl CaptureSource for Faulty {
    fn describe(&self) -> String {
        "faulty".into()
    }
    fn scan(
        &mut self,
        _: &dyn CaptureFilter,
        _: &mut dyn FnMut(ScanProgress),
    ) -> tasq_wim::Result<ImageTree> {
        let mut t = ImageTree::new();
        for id in 0..FILES {
            let ino = t.add_inode(Inode {
                attributes: FILE_ATTRIBUTE_NORMAL,
                streams: vec![Stream {
                    kind: StreamKind::Data,
                    name: vec![],
                    hash: Sha1Hash::ZERO,
                    // Distinct sizes: no pre-hashing, data goes straight out.
                    size: FILE + id,
                    source: StreamSource::External(id),
                }],
                ..Inode::default()
            });
            t.add_dentry(ImageTree::ROOT, utf16(&format!("f{id}")), vec![], ino);
        }
        Ok(t)
    }
    fn open_stream(&self, id: u64) -> tasq_wim::Result<Box<dyn Read + Send + '_>> {
        let size = FILE + id;
        let last = id == FILES - 1;
        let (end, fail_at) = match (last, self.fault) {
            (false, _) => (size, None),
            (true, Fault::ErrorAfter(n)) => (size, Some(n)),
            (true, Fault::Short(n)) => (size - n, None),
            (true, Fault::Long(n)) => (size + n, None),
        };
        Ok(Box::new(Gen {
            id,
            pos: 0,
            end,
            fail_at,
        }))
    }
}

const FAULTS: [Fault; 4] = [
    Fault::ErrorAfter(0),
    Fault::ErrorAfter(500_000),
    Fault::Short(1),
    Fault::Long(1),
];
const FORMATS: [CompressionFormat; 3] = [
    CompressionFormat::None,
    CompressionFormat::Xpress,
    CompressionFormat::Lzx,
];

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

/// A valid one-image WIM to be replaced or appended to.
fn existing_wim(path: &Path, c: CompressionFormat) {
    let mut fs = MemFs::new();
    fs.add_file("old.txt", &[b'o'; 50_000]);
    let mut w = WimWriter::create(
        path,
        WriteOptions {
            compression: c,
            threads: 2,
            ..Default::default()
        },
    )
    .unwrap();
    w.add_image(
        &mut fs,
        &NoFilter,
        &ImageOptions {
            name: Some("old".into()),
            ..Default::default()
        },
        &mut |_| {},
    )
    .unwrap();
    w.finish().unwrap();
}

#[test]
fn failed_capture_over_an_existing_wim() {
    let dir = tempfile::tempdir().unwrap();
    for c in FORMATS {
        let path = dir.path().join("w.wim");
        existing_wim(&path, c);
        let orig = std::fs::read(&path).unwrap();
        for fault in FAULTS {
            let mut w = WimWriter::create(
                &path,
                WriteOptions {
                    compression: c,
                    threads: 2,
                    ..Default::default()
                },
            )
            .unwrap();
            let r = w.add_image(
                &mut Faulty { fault },
                &NoFilter,
                &ImageOptions::default(),
                &mut |_| {},
            );
            let err = r
                .expect_err("a faulty source must fail the capture")
                .to_string();
            assert!(!err.is_empty());
            if let Fault::ErrorAfter(500_000) = fault {
                let temp: u64 = std::fs::read_dir(dir.path())
                    .unwrap()
                    .map(|e| e.unwrap())
                    .filter(|e| e.file_name() != "w.wim")
                    .map(|e| e.metadata().unwrap().len())
                    .sum();
                assert!(
                    temp > 1_000_000,
                    "{c}: only {temp} bytes in the temporary file before the fault"
                );
            }
            drop(w);
            assert!(
                std::fs::read(&path).unwrap() == orig,
                "{c} {fault:?}: the existing WIM changed"
            );
            assert_eq!(
                names_in(dir.path()),
                ["w.wim"],
                "{c} {fault:?}: temporary file left behind ({err})"
            );
        }
        // The same source without a fault captures fine (the faults, not
        // the source, made the captures above fail).
        let ok = dir.path().join("ok.wim");
        let mut w = WimWriter::create(
            &ok,
            WriteOptions {
                compression: c,
                threads: 2,
                ..Default::default()
            },
        )
        .unwrap();
        w.add_image(
            &mut Faulty {
                fault: Fault::Short(0),
            },
            &NoFilter,
            &ImageOptions::default(),
            &mut |_| {},
        )
        .unwrap();
        w.finish().unwrap();
        verify(&Wim::open(&ok).unwrap(), 1, &mut |_, _| {}).unwrap();
        std::fs::remove_file(&ok).unwrap();
    }
}

#[test]
fn failed_append_restores_the_old_wim() {
    let dir = tempfile::tempdir().unwrap();
    for c in FORMATS {
        let path = dir.path().join("a.wim");
        existing_wim(&path, c);
        let orig = std::fs::read(&path).unwrap();
        for fault in FAULTS {
            let mut w = WimWriter::append(
                &path,
                WriteOptions {
                    threads: 2,
                    ..Default::default()
                },
            )
            .unwrap();
            let r = w.add_image(
                &mut Faulty { fault },
                &NoFilter,
                &ImageOptions::default(),
                &mut |_| {},
            );
            assert!(
                r.is_err(),
                "{c} {fault:?}: a faulty source must fail the append"
            );
            if let Fault::ErrorAfter(500_000) = fault {
                // The failure came after data reached the file: the
                // rollback below is really exercised.
                let len = std::fs::metadata(&path).unwrap().len();
                assert!(
                    len > orig.len() as u64 + 1_000_000,
                    "{c}: only {len} bytes written before the fault"
                );
            }
            drop(w);
            let now = std::fs::read(&path).unwrap();
            assert!(
                now == orig,
                "{c} {fault:?}: the old WIM changed ({} -> {} bytes)",
                orig.len(),
                now.len()
            );
            let wim = Wim::open(&path).unwrap();
            assert_eq!(wim.image_count(), 1);
            verify(&wim, 1, &mut |_, _| {}).unwrap();
            assert_eq!(names_in(dir.path()), ["a.wim"]);
        }
        // An append that completes its image but is abandoned before
        // finish() (an error later on, a panic) is rolled back too.
        let mut w = WimWriter::append(
            &path,
            WriteOptions {
                threads: 2,
                ..Default::default()
            },
        )
        .unwrap();
        w.add_image(
            &mut Faulty {
                fault: Fault::Short(0),
            },
            &NoFilter,
            &ImageOptions::default(),
            &mut |_| {},
        )
        .unwrap();
        drop(w);
        assert!(
            std::fs::read(&path).unwrap() == orig,
            "{c}: an abandoned append changed the WIM"
        );
    }
}
