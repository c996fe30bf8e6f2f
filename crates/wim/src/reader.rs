//! Opening a WIM file: header, blob table, XML data and, on demand, each
//! image's metadata. Every size read from the file is checked against the
//! file's length before anything is allocated.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use crate::blob_table::{parse_blob_table, BlobEntry};
use crate::error::{IoContext, Result, WimError};
use crate::hash::{Sha1Hash, Sha1Hasher};
use crate::header::{Header, HDR_FLAG_SPANNED, HEADER_SIZE};
use crate::image::ImageTree;
use crate::metadata::parse_metadata;
use crate::resource::{chunk_locations, decode_chunk, read_exact_at, read_resource};
use crate::xml::WimInfo;
use tasq_codecs::{new_decompressor, CompressionFormat};

/// Largest blob table or XML data we accept (wimlib's limits are similar).
const MAX_TABLE_SIZE: u64 = 1 << 30;

/// An open WIM file.
pub struct Wim {
    path: PathBuf,
    file: File,
    file_size: u64,
    pub header: Header,
    /// Non-metadata blob table entries (file data), in table order.
    pub blobs: Vec<BlobEntry>,
    /// One metadata entry per image, in image order.
    pub metadata: Vec<BlobEntry>,
    index: HashMap<Sha1Hash, usize>,
    pub info: WimInfo,
}

impl Wim {
    pub fn open(path: impl AsRef<Path>) -> Result<Wim> {
        let path = path.as_ref().to_path_buf();
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
        let file_size = meta.len();
        if file_size < HEADER_SIZE as u64 {
            return Err(WimError::NotAWim {
                path,
                reason: format!("only {file_size} bytes, shorter than a WIM header"),
            });
        }
        let mut hb = [0u8; HEADER_SIZE];
        read_exact_at(&file, &mut hb, 0, "header")?;
        let header = Header::parse(&hb).map_err(|e| match e {
            WimError::InvalidHeader(r) => WimError::NotAWim {
                path: path.clone(),
                reason: r,
            },
            e => e,
        })?;
        if header.pipable {
            return Err(WimError::Unsupported(format!(
                "{}: pipable WIMs (wimlib's WLPWM format) are not supported yet",
                path.display()
            )));
        }
        if header.flags & HDR_FLAG_SPANNED != 0 || header.total_parts != 1 {
            return Err(WimError::Unsupported(format!(
                "{}: part {} of a {}-part split WIM (.swm) is not supported yet",
                path.display(),
                header.part_number,
                header.total_parts
            )));
        }
        let format = header.compression();
        let cs = header.chunk_size;

        header.blob_table.validate(file_size, "blob table")?;
        if header.blob_table.uncompressed_size > MAX_TABLE_SIZE {
            return Err(WimError::InvalidBlobTable("larger than 1 GiB".into()));
        }
        let bt = read_resource(&file, &header.blob_table, format, cs, "blob table")?;
        let entries = parse_blob_table(&bt)?;

        let mut blobs = Vec::new();
        let mut metadata = Vec::new();
        let mut index = HashMap::new();
        for (i, e) in entries.into_iter().enumerate() {
            if e.reshdr.is_solid() {
                return Err(WimError::Unsupported(format!(
                    "{}: solid resources (ESD/LZMS) are not supported yet",
                    path.display()
                )));
            }
            if e.reshdr.is_metadata() {
                if e.refcnt == 0 {
                    continue;
                }
                e.reshdr.validate(
                    file_size,
                    &format!("metadata resource of image {}", metadata.len() + 1),
                )?;
                metadata.push(e);
                continue;
            }
            if e.hash.is_zero() || e.reshdr.uncompressed_size == 0 {
                continue;
            }
            e.reshdr
                .validate(file_size, &format!("blob {} (table entry {i})", e.hash))?;
            if index.contains_key(&e.hash) {
                continue;
            }
            index.insert(e.hash, blobs.len());
            blobs.push(e);
        }
        if metadata.len() != header.image_count as usize {
            return Err(WimError::InvalidBlobTable(format!(
                "header says {} images but the blob table has {} metadata resources",
                header.image_count,
                metadata.len()
            )));
        }

        let info = if header.xml_data.is_empty() {
            WimInfo::default()
        } else {
            header.xml_data.validate(file_size, "XML data")?;
            if header.xml_data.uncompressed_size > MAX_TABLE_SIZE {
                return Err(WimError::InvalidXml("larger than 1 GiB".into()));
            }
            let x = read_resource(&file, &header.xml_data, format, cs, "XML data")?;
            WimInfo::parse(&x).map_err(|e| WimError::InvalidXml(e.to_string()))?
        };
        Ok(Wim {
            path,
            file,
            file_size,
            header,
            blobs,
            metadata,
            index,
            info,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn file(&self) -> &File {
        &self.file
    }

    pub fn file_size(&self) -> u64 {
        self.file_size
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
        if e.reshdr.uncompressed_size / 512 > self.file_size {
            return Err(WimError::InvalidMetadata {
                image: n,
                reason: "implausibly large metadata resource".into(),
            });
        }
        let buf = read_resource(
            &self.file,
            &e.reshdr,
            self.compression(),
            self.header.chunk_size,
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
        let rh = &entry.reshdr;
        if !rh.is_compressed() {
            let mut buf = vec![0u8; (1 << 20).min(rh.uncompressed_size as usize)];
            let mut pos = 0u64;
            while pos < rh.uncompressed_size {
                let n = ((rh.uncompressed_size - pos) as usize).min(buf.len());
                read_exact_at(&self.file, &mut buf[..n], rh.offset_in_wim + pos, &what)?;
                h.update(&buf[..n]);
                sink(&buf[..n])?;
                pos += n as u64;
            }
        } else {
            let cs = self.header.chunk_size;
            let chunks = chunk_locations(&self.file, rh, cs, &what)?;
            let mut dec = new_decompressor(self.compression(), cs as usize);
            let mut raw = Vec::new();
            let mut out = Vec::new();
            for c in chunks {
                raw.resize(c.stored_size as usize, 0);
                out.resize(c.uncompressed_size as usize, 0);
                read_exact_at(&self.file, &mut raw, c.offset, &what)?;
                decode_chunk(&mut dec, &raw, &mut out, &what)?;
                h.update(&out);
                sink(&out)?;
            }
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
    pub fn read_raw(&self, offset: u64, buf: &mut [u8], what: &str) -> Result<()> {
        read_exact_at(&self.file, buf, offset, what)
    }
}
