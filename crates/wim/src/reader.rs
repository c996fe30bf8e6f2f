//! Opening a WIM file: header, blob table, XML data and, on demand, each
//! image's metadata. Every size read from the file is checked against the
//! file's length before anything is allocated.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::blob_table::{parse_blob_table, BlobEntry, SolidLoc};
use crate::error::{IoContext, Result, WimError};
use crate::hash::{Sha1Hash, Sha1Hasher};
use crate::header::{Header, HDR_FLAG_SPANNED, HEADER_SIZE, WIM_VERSION_SOLID};
use crate::image::ImageTree;
use crate::metadata::parse_metadata;
use crate::reshdr::{RESHDR_FLAG_COMPRESSED, RESHDR_FLAG_SOLID};
use crate::resource::{read_exact_at, read_resource, SolidResource, SOLID_RESOURCE_MAGIC};
use crate::xml::WimInfo;
use tasq_codecs::CompressionFormat;

/// Largest blob table or XML data we accept (wimlib's limits are similar).
const MAX_TABLE_SIZE: u64 = 1 << 30;

/// One file of a WIM: the only one, or one part of a split set.
struct Part {
    path: PathBuf,
    file: File,
    size: u64,
    header: Header,
}

/// An open WIM file (or split set).
pub struct Wim {
    path: PathBuf,
    /// Part 1 first, then parts 2..N in order.
    parts: Vec<Part>,
    pub header: Header,
    /// Non-metadata blob table entries (file data), in table order.
    pub blobs: Vec<BlobEntry>,
    /// One metadata entry per image, in image order.
    pub metadata: Vec<BlobEntry>,
    /// Solid resources, referred to by [`BlobEntry::solid`].
    pub solid: Vec<SolidResource>,
    index: crate::hash::FastMap<Sha1Hash, usize>,
    pub info: WimInfo,
    /// Stored bytes of chunks read by blob readers (see
    /// [`chunk_bytes_read`](Self::chunk_bytes_read)).
    chunk_reads: std::sync::atomic::AtomicU64,
}

fn open_part(path: &Path) -> Result<Part> {
    let path = path.to_path_buf();
    let file = File::open(&path).ctx(|| format!("opening {}", path.display()))?;
    let meta = file
        .metadata()
        .ctx(|| format!("reading {}", path.display()))?;
    // Opening a directory succeeds on Linux; reading it would fail
    // with an error that does not say which path was wrong.
    if meta.is_dir() {
        return Err(WimError::NotAWim {
            path,
            reason: "it is a directory".into(),
        });
    }
    let size = meta.len();
    if size < HEADER_SIZE as u64 {
        return Err(WimError::NotAWim {
            path,
            reason: format!("only {size} bytes, shorter than a WIM header"),
        });
    }
    let mut hb = [0u8; HEADER_SIZE];
    read_exact_at(&file, &mut hb, 0, &"header")?;
    let header = Header::parse(&hb).map_err(|e| match e {
        WimError::InvalidHeader(r) => WimError::NotAWim {
            path: path.clone(),
            reason: r,
        },
        e => e,
    })?;
    // A pipable WIM (wimlib's WLPWM) starts with a header whose table
    // locations are zero (they were not known when it was streamed out);
    // the complete header is the last 208 bytes of the file.
    let header = if header.pipable {
        if size < 2 * HEADER_SIZE as u64 {
            return Err(WimError::NotAWim {
                path,
                reason: "pipable WIM too short to hold its final header".into(),
            });
        }
        read_exact_at(
            &file,
            &mut hb,
            size - HEADER_SIZE as u64,
            &"final header of a pipable WIM",
        )?;
        let fin = Header::parse(&hb).map_err(|e| WimError::NotAWim {
            path: path.clone(),
            reason: format!("final header of the pipable WIM: {e}"),
        })?;
        if !fin.pipable || fin.guid != header.guid {
            return Err(WimError::NotAWim {
                path,
                reason:
                    "pipable WIM whose last 208 bytes are not its final header (incomplete stream?)"
                        .into(),
            });
        }
        fin
    } else {
        header
    };
    Ok(Part {
        path,
        file,
        size,
        header,
    })
}

fn guid_hex(g: &[u8; 16]) -> String {
    g.iter().map(|b| format!("{b:02x}")).collect()
}

/// Orders the parts of a split set: `first` must be part 1; `refs` (in
/// any order, possibly including `first` again) must supply every other
/// part, all with the same GUID and part count.
fn assemble_parts(first: Part, refs: &[PathBuf]) -> Result<Vec<Part>> {
    let total = first.header.total_parts;
    let split_err = |path: &Path, reason: String| WimError::SplitSet {
        path: path.to_path_buf(),
        reason,
    };
    if total == 1 && first.header.flags & HDR_FLAG_SPANNED == 0 {
        if let Some(r) = refs.first() {
            return Err(split_err(
                r,
                format!(
                    "given as another part, but {} is not a split WIM",
                    first.path.display()
                ),
            ));
        }
        return Ok(vec![first]);
    }
    if first.header.part_number != 1 {
        return Err(split_err(
            &first.path,
            format!(
                "is part {} of {}; open part 1 and give the others with --ref",
                first.header.part_number, total
            ),
        ));
    }
    let mut slots: Vec<Option<Part>> = (0..total).map(|_| None).collect();
    let first_canon = first.path.canonicalize().ok();
    let guid = first.header.guid;
    slots[0] = Some(first);
    for r in refs {
        if first_canon.is_some() && r.canonicalize().ok() == first_canon {
            continue;
        }
        let p = open_part(r)?;
        if p.header.guid != guid {
            return Err(split_err(
                r,
                format!(
                    "not part of this split WIM (GUID {} instead of {})",
                    guid_hex(&p.header.guid),
                    guid_hex(&guid)
                ),
            ));
        }
        if p.header.total_parts != total {
            return Err(split_err(
                r,
                format!(
                    "says the set has {} parts, part 1 says {total}",
                    p.header.total_parts
                ),
            ));
        }
        let k = p.header.part_number as usize;
        match slots.get_mut(k - 1) {
            Some(Some(other)) => {
                return Err(split_err(
                    r,
                    format!("is part {k}, and so is {}", other.path.display()),
                ))
            }
            Some(slot) => *slot = Some(p),
            None => return Err(split_err(r, format!("invalid part number {k}"))),
        }
    }
    let missing: Vec<String> = slots
        .iter()
        .enumerate()
        .filter(|(_, s)| s.is_none())
        .map(|(i, _)| (i + 1).to_string())
        .collect();
    if !missing.is_empty() {
        let p0 = slots[0]
            .as_ref()
            .map(|p| p.path.clone())
            .unwrap_or_default();
        return Err(split_err(
            &p0,
            format!(
                "split WIM of {total} parts: part(s) {} missing (give them with --ref \"GLOB\")",
                missing.join(", ")
            ),
        ));
    }
    Ok(slots.into_iter().flatten().collect())
}

impl Wim {
    /// Stored (compressed) bytes of the chunks that blob readers
    /// ([`crate::extract::BlobReader`], used by apply, extract, verify)
    /// have read from this WIM so far: a pass that reads each resource once
    /// reads at most the resources' stored sizes.
    pub fn chunk_bytes_read(&self) -> u64 {
        self.chunk_reads.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn count_chunk_read(&self, n: u64) {
        self.chunk_reads
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }
    pub fn open(path: impl AsRef<Path>) -> Result<Wim> {
        Self::open_with_refs(path, &[])
    }

    /// Opens a WIM; for a split WIM, `path` is part 1 and `refs` the
    /// other parts (extra copies of part 1 among them are ignored).
    pub fn open_with_refs(path: impl AsRef<Path>, refs: &[PathBuf]) -> Result<Wim> {
        let first = open_part(path.as_ref())?;
        let path = first.path.clone();
        let header = first.header.clone();
        let parts = assemble_parts(first, refs)?;
        let mut wim = Wim {
            path,
            parts: Vec::new(),
            header,
            blobs: Vec::new(),
            metadata: Vec::new(),
            solid: Vec::new(),
            index: Default::default(),
            info: WimInfo::default(),
            chunk_reads: Default::default(),
        };
        for p in &parts {
            wim.load_blob_table(p)?;
        }
        if wim.metadata.len() != wim.header.image_count as usize {
            return Err(WimError::InvalidBlobTable(format!(
                "header says {} images but the blob table has {} metadata resources",
                wim.header.image_count,
                wim.metadata.len()
            )));
        }
        let Some(p1) = parts.first() else {
            return Err(WimError::InvalidArgument("no parts".into()));
        };
        let (format, cs) = (p1.header.compression(), p1.header.chunk_size);
        if !wim.header.xml_data.is_empty() {
            wim.header.xml_data.validate(p1.size, &"XML data")?;
            if wim.header.xml_data.uncompressed_size > MAX_TABLE_SIZE {
                return Err(WimError::InvalidXml("larger than 1 GiB".into()));
            }
            let x = read_resource(
                &p1.file,
                &wim.header.xml_data,
                format,
                cs,
                p1.header.pipable,
                "XML data",
            )?;
            wim.info = WimInfo::parse(&x).map_err(|e| WimError::InvalidXml(e.to_string()))?;
        }
        wim.parts = parts;
        Ok(wim)
    }

    /// Reads one part's blob table into `self`: its metadata entries (part
    /// 1 only), stand-alone blobs, and solid runs (see `load_solid_run`).
    fn load_blob_table(&mut self, p: &Part) -> Result<()> {
        let h = &p.header;
        let part_no = h.part_number;
        let split = self.header.total_parts > 1;
        // Names for errors, formatted only when one occurs.
        let part = if split {
            format!(" (part {part_no})")
        } else {
            String::new()
        };
        h.blob_table
            .validate(p.size, &format_args!("blob table{part}"))?;
        if h.blob_table.uncompressed_size > MAX_TABLE_SIZE {
            return Err(WimError::InvalidBlobTable("larger than 1 GiB".into()));
        }
        let bt = read_resource(
            &p.file,
            &h.blob_table,
            h.compression(),
            h.chunk_size,
            h.pipable,
            &format!("blob table{part}"),
        )?;
        let entries = parse_blob_table(&bt)?;
        drop(bt);
        // Sized once: growing by doubling would hold up to twice the table.
        self.blobs.reserve(entries.len());
        self.index.reserve(entries.len());
        // Solid flags mean nothing in a version 0x10D00 WIM (wimlib ignores
        // them there too).
        let solid_ok = h.version == WIM_VERSION_SOLID;
        let mut run: Option<Vec<usize>> = None;
        for (i, mut e) in entries.iter().cloned().enumerate() {
            let is_solid = solid_ok && e.reshdr.is_solid();
            if !is_solid {
                e.reshdr.flags &= !RESHDR_FLAG_SOLID;
                if let Some(r) = run.take() {
                    self.check_solid_overlap(&r)?;
                }
            } else if run.is_none() {
                run = Some(self.load_solid_run(p, &entries[i..])?);
            }
            if is_solid && e.reshdr.uncompressed_size == SOLID_RESOURCE_MAGIC {
                continue;
            }
            if e.hash.is_zero() {
                continue;
            }
            if e.part_number != part_no {
                // As wimlib: an entry for another part is not ours to use.
                continue;
            }
            if e.reshdr.is_metadata() {
                if e.refcnt == 0 || part_no != 1 {
                    continue;
                }
                if is_solid {
                    return Err(WimError::Unsupported(format!(
                        "{}: image metadata in a solid resource",
                        p.path.display()
                    )));
                }
                e.reshdr.validate(
                    p.size,
                    &format_args!("metadata resource of image {}", self.metadata.len() + 1),
                )?;
                self.metadata.push(e);
                continue;
            }
            if let Some(r) = &run {
                // A blob inside the run: its offset counts from the start
                // of the run's resources taken as one stream.
                let size = e.reshdr.size_in_wim;
                if size == 0 {
                    continue;
                }
                let mut off = e.reshdr.offset_in_wim;
                let mut loc = None;
                for &ri in r {
                    let u = self.solid[ri].uncompressed_size;
                    if off.checked_add(size).is_some_and(|end| end <= u) {
                        loc = Some((ri, off));
                        break;
                    }
                    if off < u {
                        break; // straddles two resources
                    }
                    off -= u;
                }
                let Some((ri, off)) = loc else {
                    return Err(WimError::InvalidBlobTable(format!(
                        "blob {} (entry {i}): {size} bytes at offset {} lie outside its solid resources",
                        e.hash, e.reshdr.offset_in_wim
                    )));
                };
                e.reshdr.offset_in_wim = self.solid[ri].offset_in_wim;
                e.reshdr.uncompressed_size = size;
                e.solid = Some(SolidLoc {
                    resource: ri,
                    offset: off,
                });
            } else {
                if e.reshdr.uncompressed_size == 0 {
                    continue;
                }
                e.reshdr.validate(
                    p.size,
                    &format_args!("blob {} (table entry {i}){part}", e.hash),
                )?;
            }
            if self.index.contains_key(&e.hash) {
                continue;
            }
            self.index.insert(e.hash, self.blobs.len());
            self.blobs.push(e);
        }
        if let Some(r) = run.take() {
            self.check_solid_overlap(&r)?;
        }
        Ok(())
    }

    /// Loads every solid resource of the run starting at `entries[0]`
    /// (the consecutive entries with the SOLID flag); returns their indices
    /// in `self.solid`.
    fn load_solid_run(&mut self, p: &Part, entries: &[BlobEntry]) -> Result<Vec<usize>> {
        let mut v = Vec::new();
        for e in entries.iter().take_while(|e| e.reshdr.is_solid()) {
            if e.reshdr.uncompressed_size != SOLID_RESOURCE_MAGIC {
                continue;
            }
            let what = format!(
                "solid resource at offset {} of {}",
                e.reshdr.offset_in_wim,
                p.path.display()
            );
            let mut rh = e.reshdr;
            // Its sizes come from its own header; only the stored extent
            // is checked against the file here.
            rh.uncompressed_size = rh.size_in_wim;
            rh.flags |= RESHDR_FLAG_COMPRESSED;
            rh.validate(p.size, &what)?;
            v.push(self.solid.len());
            self.solid.push(SolidResource::read(
                &p.file,
                &rh,
                p.header.part_number,
                &what,
            )?);
        }
        Ok(v)
    }

    /// Blobs of one solid resource must not overlap (the reader hands
    /// each decompressed byte to one blob).
    fn check_solid_overlap(&self, run: &[usize]) -> Result<()> {
        let mut spans: Vec<(usize, u64, u64)> = self
            .blobs
            .iter()
            .filter_map(|b| {
                let s = b.solid?;
                run.contains(&s.resource).then_some((
                    s.resource,
                    s.offset,
                    s.offset + b.reshdr.uncompressed_size,
                ))
            })
            .collect();
        spans.sort_unstable();
        for w in spans.windows(2) {
            if w[0].0 == w[1].0 && w[1].1 < w[0].2 {
                return Err(WimError::InvalidBlobTable(format!(
                    "blobs in a solid resource overlap (at offset {})",
                    w[1].1
                )));
            }
        }
        Ok(())
    }

    /// The file holding part `n` (1-based) of this WIM.
    pub fn part_file(&self, n: u16) -> Result<&File> {
        self.parts
            .get((n as usize).wrapping_sub(1))
            .map(|p| &p.file)
            .ok_or_else(|| WimError::InvalidBlobTable(format!("no part {n} in this WIM")))
    }

    /// Paths of the parts, part 1 first.
    pub fn part_paths(&self) -> Vec<&Path> {
        self.parts.iter().map(|p| p.path.as_path()).collect()
    }

    /// True if any blob lives in a solid resource.
    pub fn has_solid(&self) -> bool {
        !self.solid.is_empty()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Part 1's file (the only one unless split).
    pub fn file(&self) -> &File {
        &self.parts[0].file
    }

    /// Size of part 1's file.
    pub fn file_size(&self) -> u64 {
        self.parts[0].size
    }

    pub fn image_count(&self) -> u32 {
        self.metadata.len() as u32
    }

    pub fn compression(&self) -> CompressionFormat {
        self.header.compression()
    }

    pub fn blob(&self, hash: &Sha1Hash) -> Option<&BlobEntry> {
        self.index.get(hash).map(|&i| &self.blobs[i])
    }

    /// Resolves an image given as a 1-based index or a name.
    pub fn resolve_image(&self, spec: &str) -> Result<u32> {
        if let Ok(n) = spec.parse::<u32>() {
            if n >= 1 && n <= self.image_count() {
                return Ok(n);
            }
            return Err(WimError::ImageNotFound(format!(
                "{n} (the WIM has {} images)",
                self.image_count()
            )));
        }
        let found: Vec<u32> = self
            .info
            .images
            .iter()
            .enumerate()
            .filter(|(_, im)| im.name.as_deref() == Some(spec))
            .map(|(i, _)| i as u32 + 1)
            .collect();
        match found.as_slice() {
            [n] => Ok(*n),
            [] => Err(WimError::ImageNotFound(format!("named {spec:?}"))),
            _ => Err(WimError::ImageNotFound(format!(
                "{spec:?}: several images have that name; use the index"
            ))),
        }
    }

    /// Reads, checks (SHA-1) and parses the metadata of image `n` (1-based).
    pub fn read_image(&self, n: u32) -> Result<ImageTree> {
        let e = self
            .metadata
            .get((n as usize).wrapping_sub(1))
            .ok_or_else(|| WimError::ImageNotFound(n.to_string()))?;
        let what = format!("metadata resource of image {n}");
        // A metadata resource can legitimately be far larger than the file
        // (many empty files), but not without bound: wimlib's 512x guard.
        if e.reshdr.uncompressed_size / 512 > self.file_size() {
            return Err(WimError::InvalidMetadata {
                image: n,
                reason: "implausibly large metadata resource".into(),
            });
        }
        let buf = read_resource(
            self.file(),
            &e.reshdr,
            self.compression(),
            self.header.chunk_size,
            self.header.pipable,
            &what,
        )?;
        let actual = Sha1Hash::of(&buf);
        if actual != e.hash {
            return Err(WimError::HashMismatch {
                what,
                expected: e.hash.to_string(),
                actual: actual.to_string(),
            });
        }
        let mut tree = parse_metadata(&buf, n)?;
        for inode in &mut tree.inodes {
            for s in &mut inode.streams {
                if !s.hash.is_zero() {
                    s.size = self
                        .blob(&s.hash)
                        .map(|b| b.reshdr.uncompressed_size)
                        .unwrap_or(0);
                }
            }
        }
        Ok(tree)
    }

    /// Streams the content of a blob to `sink`, chunk by chunk, checking
    /// its SHA-1 at the end.
    pub fn read_blob(
        &self,
        entry: &BlobEntry,
        sink: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        let what = format!("blob {}", entry.hash);
        let mut h = Sha1Hasher::new();
        let (plan, _) = crate::extract::plan_next(self, &[entry], 0)?;
        let mut dec = crate::extract::Decoders::default();
        let bufs = crate::extract::BufPool::default();
        for c in plan {
            let mut raw = bufs.take(c.loc.stored_size as usize);
            read_exact_at(self.part_file(c.part)?, &mut raw, c.loc.offset, &what)?;
            self.count_chunk_read(raw.len() as u64);
            let out = dec
                .decode(c.format, c.max_chunk, raw, c.loc.uncompressed_size, &bufs)
                .map_err(|e| WimError::Decompress {
                    what: what.clone(),
                    source: e,
                })?;
            for s in c.slices {
                let piece = out
                    .get(s.start as usize..s.end as usize)
                    .ok_or_else(|| WimError::resource(&what, "chunk slice out of range"))?;
                h.update(piece);
                sink(piece)?;
            }
            bufs.put(out);
        }
        let actual = h.finish();
        if actual != entry.hash {
            return Err(WimError::HashMismatch {
                what,
                expected: entry.hash.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(())
    }

    /// Reads a whole blob into memory (for small blobs: reparse data).
    pub fn read_blob_to_vec(&self, entry: &BlobEntry, limit: u64) -> Result<Vec<u8>> {
        if entry.reshdr.uncompressed_size > limit {
            return Err(WimError::resource(
                format!("blob {}", entry.hash),
                format!(
                    "{} bytes, more than the {limit} expected",
                    entry.reshdr.uncompressed_size
                ),
            ));
        }
        let mut v = Vec::with_capacity(entry.reshdr.uncompressed_size as usize);
        self.read_blob(entry, &mut |c| {
            v.extend_from_slice(c);
            Ok(())
        })?;
        Ok(v)
    }

    /// Reads the raw stored bytes of a resource (to copy it unchanged into
    /// another WIM of the same compression).
    pub fn read_raw(&self, part: u16, offset: u64, buf: &mut [u8], what: &str) -> Result<()> {
        read_exact_at(self.part_file(part)?, buf, offset, &what)
    }
}
