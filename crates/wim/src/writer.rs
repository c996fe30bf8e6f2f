//! Writing WIM files: new ones (into a temporary file beside the
//! destination, renamed into place only when complete), appends in place
//! (new data after the old end, the header rewritten last, so an
//! interrupted append leaves the old WIM intact), and rebuilds.
//!
//! File data goes through [`ResourceWriter`], which cuts each blob into
//! chunks, compresses them on every core through an [`OrderedPool`] and
//! writes them in order with their chunk tables.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tasq_codecs::{new_compressor, CompressionFormat};

use crate::blob_table::{serialize_blob_table, BlobEntry};
use crate::capture::{CaptureFilter, CaptureSource, ScanProgress};
use crate::error::{IoContext, Result, WimError};
use crate::extract::{BlobEvent, BlobReader};
use crate::hash::{FastMap, FastSet, Sha1Hash, Sha1Hasher};
use crate::header::{Header, HDR_FLAG_RP_FIX, HDR_FLAG_WRITE_IN_PROGRESS, WIM_VERSION_SOLID};
use crate::image::{ImageTree, StreamSource};
use crate::integrity::build_integrity_table;
use crate::metadata::MetadataLayout;
use crate::pool::{default_threads, OrderedPool};
use crate::reader::Wim;
use crate::reshdr::{
    ResHdr, MAX_SIZE_IN_WIM, RESHDR_FLAG_COMPRESSED, RESHDR_FLAG_METADATA, RESHDR_FLAG_SOLID,
};
use crate::resource::{
    chunk_size_range, solid_format_to_u32, SOLID_HEADER_SIZE, SOLID_RESOURCE_MAGIC,
};
use crate::xml::{filetime_now, ImageInfo, WimInfo};

/// How to write.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    pub compression: CompressionFormat,
    pub chunk_size: u32,
    /// Compression level on wimlib's scale (20 fast, 50 default, 100 slow).
    pub level: u32,
    /// Compressor threads; 0 = one per core.
    pub threads: usize,
    /// Write an integrity table.
    pub integrity: bool,
    /// Put file data in solid resources (a version 0xE00 WIM); metadata
    /// stays in ordinary resources of `compression`.
    pub solid: Option<SolidOptions>,
}

/// How solid resources are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SolidOptions {
    pub compression: CompressionFormat,
    pub chunk_size: u32,
}

impl SolidOptions {
    /// wimlib's defaults: 64 MiB chunks for LZMS, 32 KiB otherwise.
    pub fn with_default_chunk(compression: CompressionFormat) -> SolidOptions {
        let chunk_size = match compression {
            CompressionFormat::Lzms => 64 << 20,
            _ => 32768,
        };
        SolidOptions {
            compression,
            chunk_size,
        }
    }
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            compression: CompressionFormat::Lzx,
            chunk_size: 32768,
            level: 50,
            threads: 0,
            integrity: false,
            solid: None,
        }
    }
}

/// Progress of writing, for displays.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteProgress {
    /// Bytes of file data processed (read and hashed, written or deduplicated).
    pub bytes_done: u64,
    pub bytes_total: u64,
    pub files_done: u64,
    pub files_total: u64,
}

/// What the new image's XML entry says.
#[derive(Debug, Clone, Default)]
pub struct ImageOptions {
    pub name: Option<String>,
    pub description: Option<String>,
    pub display_name: Option<String>,
    pub display_description: Option<String>,
    pub flags: Option<String>,
    /// Make this image the bootable one.
    pub boot: bool,
    /// Further `<IMAGE>` elements as (element name, text), kept in order;
    /// e.g. the version and author a ConfigMgr capture records.
    pub properties: Vec<(String, String)>,
    /// The image was captured with reparse-point fixups: the WIM header
    /// gets the RP_FIX flag (kept once set, as wimlib does).
    pub rpfix: bool,
}

const OUT_BUF: usize = 1 << 20;
/// Chunks handed to a compressor thread at once.
const WRITE_BATCH: usize = 8;
/// Batches per compressor thread submitted and not yet written: one being
/// compressed, one waiting. Eight (the pool's default) held 2.5 MiB more
/// chunks in flight for no measurable speed.
const COMPRESS_DEPTH: usize = 2;
/// Bytes of an image's metadata resource made at a time.
const METADATA_PIECE: usize = 64 << 10;

/// Buffered output that knows its position and can patch bytes already
/// written (chunk tables, the header).
struct Output {
    file: File,
    buf: Vec<u8>,
    /// File offset of buf[0].
    base: u64,
    what: String,
}

impl Output {
    fn pos(&self) -> u64 {
        self.base + self.buf.len() as u64
    }
    fn write(&mut self, data: &[u8]) -> Result<()> {
        if self.buf.len() + data.len() > OUT_BUF {
            self.flush()?;
        }
        if data.len() >= OUT_BUF {
            self.file
                .write_all_at(data, self.base)
                .ctx(|| format!("writing {}", self.what))?;
            self.base += data.len() as u64;
        } else {
            self.buf.extend_from_slice(data);
        }
        Ok(())
    }
    fn flush(&mut self) -> Result<()> {
        if !self.buf.is_empty() {
            self.file
                .write_all_at(&self.buf, self.base)
                .ctx(|| format!("writing {}", self.what))?;
            self.base += self.buf.len() as u64;
            self.buf.clear();
        }
        Ok(())
    }
    /// Overwrites bytes at an earlier offset.
    fn patch(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        let end = offset + data.len() as u64;
        if offset >= self.base {
            let s = (offset - self.base) as usize;
            self.buf[s..s + data.len()].copy_from_slice(data);
        } else if end <= self.base {
            self.file
                .write_all_at(data, offset)
                .ctx(|| format!("writing {}", self.what))?;
        } else {
            self.flush()?;
            self.file
                .write_all_at(data, offset)
                .ctx(|| format!("writing {}", self.what))?;
        }
        Ok(())
    }
}

type CompressPool = OrderedPool<Vec<ChunkJob>, Vec<ChunkDone>>;

/// Workers that compress batches of chunks, each with its own compressor;
/// a chunk that does not shrink comes back as it was, to be stored raw.
fn compress_pool(
    format: CompressionFormat,
    chunk_size: u32,
    level: u32,
    threads: usize,
) -> CompressPool {
    let cs = chunk_size as usize;
    OrderedPool::with_depth(threads, COMPRESS_DEPTH, move || {
        let mut c = new_compressor(format, cs, level);
        let mut out = vec![0u8; cs];
        move |jobs: Vec<ChunkJob>| {
            jobs.into_iter()
                .map(|mut job| {
                    let n = job.data.len();
                    let res = c.as_mut().and_then(|c| {
                        if out.len() < n {
                            out.resize(n, 0);
                        }
                        // In place: no copy of the chunk inside the
                        // compressor (64 MiB per thread for solid LZMS).
                        c.compress_in_place(&mut job.data, &mut out[..n])
                    });
                    match res {
                        Some(k) if k < n => ChunkDone {
                            data: out[..k].to_vec(),
                            raw: false,
                        },
                        _ => ChunkDone {
                            data: job.data,
                            raw: true,
                        },
                    }
                })
                .collect::<Vec<_>>()
        }
    })
}

struct ChunkJob {
    data: Vec<u8>,
}

struct ChunkDone {
    /// Compressed bytes, or the input back when it did not shrink.
    data: Vec<u8>,
    raw: bool,
}

/// One resource being written on the emit side.
struct OpenResource {
    id: usize,
    start: u64,
    usize: u64,
    nchunks: u64,
    entry_size: u64,
    sizes: Vec<u32>,
    single_raw: bool,
    metadata: bool,
}

/// Writes resources (blobs, metadata) as chunked, compressed data.
pub struct ResourceWriter {
    chunk_size: u32,
    pool: Option<CompressPool>,
    /// Chunks waiting to be sent to the workers as one batch.
    batch: Vec<ChunkJob>,
    /// Results received and not yet written.
    ready: std::collections::VecDeque<ChunkDone>,
    /// Per submitted chunk: (resource id, chunk index) in submission order.
    pending: std::collections::VecDeque<(usize, u64)>,
    /// Resources begun but not fully emitted: id -> (usize, nchunks, metadata).
    declared: HashMap<usize, (u64, u64, bool)>,
    open: Option<OpenResource>,
    /// Finished reshdrs by resource id.
    done: HashMap<usize, ResHdr>,
    next_id: usize,
    cur: Option<(usize, u64, u64)>, // (id, chunks submitted, bytes submitted)
    partial: Vec<u8>,
}

impl ResourceWriter {
    fn new(format: CompressionFormat, chunk_size: u32, level: u32, threads: usize) -> Self {
        let pool = if format == CompressionFormat::None {
            None
        } else {
            let threads = if threads == 0 {
                default_threads()
            } else {
                threads
            };
            Some(compress_pool(format, chunk_size, level, threads))
        };
        ResourceWriter {
            batch: Vec::new(),
            ready: Default::default(),
            chunk_size,
            pool,
            pending: Default::default(),
            declared: HashMap::new(),
            open: None,
            done: HashMap::new(),
            next_id: 0,
            cur: None,
            partial: Vec::new(),
        }
    }

    /// Starts a resource of `size` bytes; returns its id.
    fn begin(&mut self, out: &mut Output, size: u64, metadata: bool) -> Result<usize> {
        let id = self.next_id;
        self.next_id += 1;
        let nchunks = size.div_ceil(self.chunk_size as u64).max(1);
        if self.pool.is_none() {
            // Uncompressed: written straight through.
            self.open = Some(OpenResource {
                id,
                start: out.pos(),
                usize: size,
                nchunks,
                entry_size: 0,
                sizes: Vec::new(),
                single_raw: true,
                metadata,
            });
        } else {
            self.declared.insert(id, (size, nchunks, metadata));
        }
        self.cur = Some((id, 0, 0));
        Ok(id)
    }

    /// Adds data to the current resource.
    fn push(&mut self, out: &mut Output, mut data: &[u8]) -> Result<()> {
        if self.pool.is_none() {
            if let Some(c) = &mut self.cur {
                c.2 += data.len() as u64;
            }
            return out.write(data);
        }
        let cs = self.chunk_size as usize;
        while !data.is_empty() {
            let take = (cs - self.partial.len()).min(data.len());
            self.partial.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.partial.len() == cs {
                let chunk = std::mem::replace(&mut self.partial, Vec::with_capacity(cs));
                self.submit(out, chunk)?;
            }
        }
        Ok(())
    }

    fn submit(&mut self, out: &mut Output, chunk: Vec<u8>) -> Result<()> {
        let Some((id, idx, bytes)) = self.cur.as_mut() else {
            return Err(WimError::InvalidArgument(
                "data pushed outside a resource".into(),
            ));
        };
        *bytes += chunk.len() as u64;
        self.pending.push_back((*id, *idx));
        *idx += 1;
        self.batch.push(ChunkJob { data: chunk });
        if self.batch.len() >= WRITE_BATCH {
            self.send_batch();
            // Write results until a batch's worth of room is free: emit_one
            // hands out buffered results first, so loop until a result batch
            // has actually been taken off the pool (bounds memory).
            while self.pool.as_ref().is_some_and(|p| p.is_full()) {
                self.emit_one(out)?;
            }
        }
        Ok(())
    }

    /// Hands the batched chunks to the workers.
    fn send_batch(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        if let Some(pool) = self.pool.as_mut() {
            pool.submit(std::mem::take(&mut self.batch));
        }
    }

    /// Ends the current resource; checks that exactly the declared size came.
    fn end(&mut self, out: &mut Output) -> Result<()> {
        if self.pool.is_some() && !self.partial.is_empty() {
            let chunk = std::mem::take(&mut self.partial);
            self.submit(out, chunk)?;
        }
        let Some((id, _, bytes)) = self.cur.take() else {
            return Ok(());
        };
        if self.pool.is_none() {
            if let Some(r) = self.open.take() {
                if bytes != r.usize {
                    return Err(WimError::InvalidArgument(format!(
                        "resource got {bytes} bytes, {} declared",
                        r.usize
                    )));
                }
                let flags = if r.metadata { RESHDR_FLAG_METADATA } else { 0 };
                self.done.insert(
                    id,
                    ResHdr {
                        size_in_wim: r.usize,
                        flags,
                        offset_in_wim: r.start,
                        uncompressed_size: r.usize,
                    },
                );
            }
        } else if let Some(&(size, _, _)) = self.declared.get(&id) {
            if bytes != size {
                return Err(WimError::InvalidArgument(format!(
                    "resource got {bytes} bytes, {size} declared"
                )));
            }
        }
        Ok(())
    }

    fn emit_one(&mut self, out: &mut Output) -> Result<()> {
        let Some(pool) = self.pool.as_mut() else {
            return Ok(());
        };
        if self.ready.is_empty() {
            if pool.in_flight() == 0 {
                self.send_batch();
            }
            let Some(pool) = self.pool.as_mut() else {
                return Ok(());
            };
            let Some(batch) = pool.next_result() else {
                return Err(WimError::InvalidArgument(
                    "a compressor thread failed".into(),
                ));
            };
            self.ready.extend(batch);
        }
        let Some(done) = self.ready.pop_front() else {
            return Err(WimError::InvalidArgument(
                "chunk bookkeeping out of step".into(),
            ));
        };
        let Some((id, idx)) = self.pending.pop_front() else {
            return Err(WimError::InvalidArgument(
                "chunk bookkeeping out of step".into(),
            ));
        };
        if idx == 0 {
            let (usize, nchunks, metadata) = self
                .declared
                .remove(&id)
                .ok_or_else(|| WimError::InvalidArgument("undeclared resource".into()))?;
            let entry_size = if usize > u32::MAX as u64 { 8 } else { 4 };
            let start = out.pos();
            if nchunks > 1 {
                let table = vec![0u8; ((nchunks - 1) * entry_size) as usize];
                out.write(&table)?;
            }
            self.open = Some(OpenResource {
                id,
                start,
                usize,
                nchunks,
                entry_size,
                sizes: Vec::with_capacity(nchunks as usize),
                single_raw: false,
                metadata,
            });
        }
        let r = self
            .open
            .as_mut()
            .ok_or_else(|| WimError::InvalidArgument("no open resource".into()))?;
        out.write(&done.data)?;
        r.sizes.push(done.data.len() as u32);
        if r.nchunks == 1 {
            r.single_raw = done.raw;
        }
        if r.sizes.len() as u64 == r.nchunks {
            let r = self
                .open
                .take()
                .ok_or_else(|| WimError::InvalidArgument("no open resource".into()))?;
            let mut flags = if r.metadata { RESHDR_FLAG_METADATA } else { 0 };
            let table_len = (r.nchunks - 1) * r.entry_size;
            let stored: u64 = r.sizes.iter().map(|&s| s as u64).sum::<u64>() + table_len;
            if r.nchunks > 1 {
                let mut table = Vec::with_capacity(table_len as usize);
                let mut acc = 0u64;
                for s in &r.sizes[..r.sizes.len() - 1] {
                    acc += *s as u64;
                    if r.entry_size == 4 {
                        table.extend_from_slice(&(acc as u32).to_le_bytes());
                    } else {
                        table.extend_from_slice(&acc.to_le_bytes());
                    }
                }
                out.patch(r.start, &table)?;
                flags |= RESHDR_FLAG_COMPRESSED;
            } else if !r.single_raw {
                flags |= RESHDR_FLAG_COMPRESSED;
            }
            self.done.insert(
                r.id,
                ResHdr {
                    size_in_wim: stored,
                    flags,
                    offset_in_wim: r.start,
                    uncompressed_size: r.usize,
                },
            );
        }
        Ok(())
    }

    /// Waits for every chunk in flight and writes it.
    fn drain(&mut self, out: &mut Output) -> Result<()> {
        self.send_batch();
        while !self.pending.is_empty() {
            self.emit_one(out)?;
        }
        Ok(())
    }

    fn take_done(&mut self, id: usize) -> Option<ResHdr> {
        self.done.remove(&id)
    }
}

/// Finished resource headers waiting in the resource writer before they
/// are moved to their blobs.
const COLLECT_DONE_AT: usize = 1024;

/// A solid resource written by this writer (or, on append, already in
/// the WIM).
#[derive(Debug, Clone, Copy)]
struct SolidOut {
    offset_in_wim: u64,
    size_in_wim: u64,
    uncompressed_size: u64,
}

/// Writes one solid resource: the blobs pushed into it form one stream,
/// cut into `chunk_size` chunks compressed on every core. The chunk table
/// precedes the chunks but its length is only known at the end, so room
/// for the largest possible table is reserved first (from the most bytes
/// the caller may push) and the header and table are written at the end of
/// that room, just before the chunks; the unused front of the reservation
/// is dead space, as in wimlib.
struct SolidWriter {
    format: CompressionFormat,
    chunk_size: u32,
    threads: usize,
    pool: CompressPool,
    max_bytes: u64,
    /// Offset where the chunks start, once the first byte is pushed.
    data_start: Option<u64>,
    reserved_chunks: u64,
    partial: Vec<u8>,
    batch: Vec<ChunkJob>,
    batch_bytes: usize,
    ready: std::collections::VecDeque<ChunkDone>,
    /// Stored size of each chunk written so far.
    sizes: Vec<u32>,
    /// Bytes pushed: the offset the next blob will have.
    pushed: u64,
    /// Chunks submitted and not yet written, and their input bytes.
    inflight: usize,
    inflight_bytes: u64,
}

/// Input bytes allowed in flight while writing a solid resource (at least
/// a chunk per thread, so 64 MiB chunks still compress in parallel).
const SOLID_INFLIGHT_BYTES: u64 = 64 << 20;

impl SolidWriter {
    fn new(opts: SolidOptions, level: u32, threads: usize, max_bytes: u64) -> SolidWriter {
        let threads = if threads == 0 {
            default_threads()
        } else {
            threads
        };
        SolidWriter {
            format: opts.compression,
            chunk_size: opts.chunk_size,
            threads,
            pool: compress_pool(opts.compression, opts.chunk_size, level, threads),
            max_bytes,
            data_start: None,
            reserved_chunks: 0,
            partial: Vec::new(),
            batch: Vec::new(),
            batch_bytes: 0,
            ready: Default::default(),
            sizes: Vec::new(),
            pushed: 0,
            inflight: 0,
            inflight_bytes: 0,
        }
    }

    fn push(&mut self, out: &mut Output, mut data: &[u8]) -> Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        if self.pushed + data.len() as u64 > self.max_bytes {
            return Err(WimError::InvalidArgument(format!(
                "solid resource: more than the {} bytes reserved for",
                self.max_bytes
            )));
        }
        if self.data_start.is_none() {
            self.reserved_chunks = self.max_bytes.div_ceil(self.chunk_size as u64);
            let room = SOLID_HEADER_SIZE + 4 * self.reserved_chunks;
            let zeros = vec![0u8; (room as usize).min(OUT_BUF)];
            let mut left = room;
            while left > 0 {
                let n = left.min(zeros.len() as u64) as usize;
                out.write(&zeros[..n])?;
                left -= n as u64;
            }
            self.data_start = Some(out.pos());
        }
        self.pushed += data.len() as u64;
        let cs = self.chunk_size as usize;
        while !data.is_empty() {
            if self.partial.capacity() == 0 {
                // Compressed in place (no copy in the compressor), so
                // backed by huge pages like the match finder's own buffers.
                self.partial = tasq_codecs::lzms::chunk_buffer(cs.min(self.max_bytes as usize));
            }
            let take = (cs - self.partial.len()).min(data.len());
            self.partial.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.partial.len() == cs {
                let chunk = std::mem::take(&mut self.partial);
                self.submit(out, chunk)?;
            }
        }
        Ok(())
    }

    fn submit(&mut self, out: &mut Output, chunk: Vec<u8>) -> Result<()> {
        let n = chunk.len();
        self.inflight += 1;
        self.inflight_bytes += n as u64;
        self.batch_bytes += n;
        self.batch.push(ChunkJob { data: chunk });
        if self.batch.len() >= WRITE_BATCH || self.batch_bytes >= OUT_BUF {
            self.send_batch();
        }
        let budget = SOLID_INFLIGHT_BYTES.max((self.threads as u64 + 1) * self.chunk_size as u64);
        while self.inflight > 0 && (self.pool.is_full() || self.inflight_bytes > budget) {
            self.emit_one(out)?;
        }
        Ok(())
    }

    fn send_batch(&mut self) {
        if !self.batch.is_empty() {
            self.batch_bytes = 0;
            self.pool.submit(std::mem::take(&mut self.batch));
        }
    }

    /// Writes the next compressed chunk, in order.
    fn emit_one(&mut self, out: &mut Output) -> Result<()> {
        if self.ready.is_empty() {
            if self.pool.in_flight() == 0 {
                self.send_batch();
            }
            let batch = self
                .pool
                .next_result()
                .ok_or_else(|| WimError::InvalidArgument("a compressor thread failed".into()))?;
            self.ready.extend(batch);
        }
        let done = self
            .ready
            .pop_front()
            .ok_or_else(|| WimError::InvalidArgument("chunk bookkeeping out of step".into()))?;
        // A chunk that did not shrink is stored raw: its stored size then
        // equals its uncompressed size, which is how readers recognise it.
        out.write(&done.data)?;
        self.sizes.push(done.data.len() as u32);
        self.inflight -= 1;
        self.inflight_bytes = self.inflight_bytes.saturating_sub(self.chunk_size as u64);
        Ok(())
    }

    /// Writes the remaining chunks, then the header and chunk table; the
    /// resource's extent, or `None` if nothing was pushed.
    fn finish(mut self, out: &mut Output) -> Result<Option<SolidOut>> {
        if !self.partial.is_empty() {
            let chunk = std::mem::take(&mut self.partial);
            self.inflight += 1;
            self.inflight_bytes += chunk.len() as u64;
            self.batch.push(ChunkJob { data: chunk });
        }
        self.send_batch();
        while self.inflight > 0 {
            self.emit_one(out)?;
        }
        let Some(data_start) = self.data_start else {
            return Ok(None);
        };
        let n = self.sizes.len() as u64;
        if n > self.reserved_chunks {
            return Err(WimError::InvalidArgument(
                "solid resource: more chunks than reserved".into(),
            ));
        }
        let start = data_start - 4 * n - SOLID_HEADER_SIZE;
        let mut head = Vec::with_capacity((SOLID_HEADER_SIZE + 4 * n) as usize);
        head.extend_from_slice(&self.pushed.to_le_bytes());
        head.extend_from_slice(&self.chunk_size.to_le_bytes());
        head.extend_from_slice(&solid_format_to_u32(self.format).to_le_bytes());
        for sz in &self.sizes {
            head.extend_from_slice(&sz.to_le_bytes());
        }
        out.patch(start, &head)?;
        Ok(Some(SolidOut {
            offset_in_wim: start,
            size_in_wim: out.pos() - start,
            uncompressed_size: self.pushed,
        }))
    }
}

/// Where a blob being written goes.
#[derive(Debug, Clone, Copy)]
enum BlobSlot {
    /// An ordinary resource, by [`ResourceWriter`] id.
    Resource(usize),
    /// The open solid resource, at this offset.
    Solid(u64),
}

/// A blob known to the WIM being written (one per distinct content of
/// the image: 56 bytes, where spelling out a resource header and three
/// options took 112).
#[derive(Debug, Clone)]
struct BlobRec {
    hash: Sha1Hash,
    refcnt: u32,
    /// Uncompressed size.
    size: u64,
    place: Place,
}

// The blob records are the writer's largest per-blob cost.
const _: () = assert!(std::mem::size_of::<BlobRec>() <= 56);

/// Where a blob is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// In a resource still being written (the resource writer's id).
    Pending(usize),
    /// In a resource of its own, at `offset`; `stored` is the resource
    /// header's stored size and flags packed as the file does
    /// ([`ResHdr::size_flags`]). Its uncompressed size is the blob's.
    Own { offset: u64, stored: u64 },
    /// In solid resource `res` of `WimWriter::solid_out` (`usize::MAX`
    /// while that resource is still open), at `offset` of its data.
    Solid { res: usize, offset: u64 },
}

impl Place {
    /// The place of a blob of `size` bytes in the resource `rh`.
    fn own(rh: ResHdr, size: u64) -> Place {
        debug_assert_eq!(rh.uncompressed_size, size);
        debug_assert!(rh.size_in_wim <= MAX_SIZE_IN_WIM);
        Place::Own {
            offset: rh.offset_in_wim,
            stored: rh.size_flags(),
        }
    }
}

impl BlobRec {
    /// The header of the blob's own resource, once written.
    fn reshdr(&self) -> Option<ResHdr> {
        match self.place {
            Place::Own { offset, stored } => {
                let (size_in_wim, flags) = ResHdr::unpack_size_flags(stored);
                Some(ResHdr {
                    size_in_wim,
                    flags,
                    offset_in_wim: offset,
                    uncompressed_size: self.size,
                })
            }
            _ => None,
        }
    }

    /// (solid resource, offset) of a blob in a solid resource.
    fn solid(&self) -> Option<(usize, u64)> {
        match self.place {
            Place::Solid { res, offset } => Some((res, offset)),
            _ => None,
        }
    }
}

struct ImageRec {
    metadata_hash: Sha1Hash,
    reshdr: Option<ResHdr>,
    pending_id: Option<usize>,
}

/// Writes a WIM file.
pub struct WimWriter {
    out: Output,
    dest: PathBuf,
    /// The temporary file of a new WIM (removed when dropped).
    temp: Option<tempfile::TempPath>,
    header: Header,
    opts: WriteOptions,
    rw: ResourceWriter,
    blobs: Vec<BlobRec>,
    by_hash: FastMap<Sha1Hash, usize>,
    /// Every blob below this index has its resource header (see
    /// `collect_done`).
    resolved_upto: usize,
    images: Vec<ImageRec>,
    info: WimInfo,
    finished: bool,
    /// For an append: the old file length to cut back to on failure.
    append_old_len: Option<u64>,
    /// Solid resources of the WIM, in file order.
    solid_out: Vec<SolidOut>,
    /// The solid resource being written, if any.
    solid_cur: Option<SolidWriter>,
    /// Output a function of the input only (see [`WimWriter::set_deterministic`]).
    deterministic: bool,
    /// Never copy stored resources as they are (see [`WimWriter::set_recompress`]).
    recompress: bool,
}

pub(crate) fn random_guid() -> [u8; 16] {
    let mut g = [0u8; 16];
    if let Ok(mut f) = File::open("/dev/urandom") {
        let _ = f.read_exact(&mut g);
    }
    if g == [0; 16] {
        let t = filetime_now();
        g[..8].copy_from_slice(&t.to_le_bytes());
        g[8..12].copy_from_slice(&std::process::id().to_le_bytes());
    }
    g
}

/// A new temporary file beside `dest` for its future contents, named
/// `.NAME.XXXXXX.tasq-tmp`: a random name created with O_EXCL (nothing
/// planted there is followed), mode 0666 less the umask like any file
/// created here, removed when dropped unless persisted over `dest`. Every
/// write of tasq that replaces a file whole goes through it.
pub fn temp_file_beside(dest: &Path) -> std::io::Result<tempfile::NamedTempFile> {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let dir = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tasq-tmp")
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)
}

/// [`temp_file_beside`] as the writer's file and path.
pub(crate) fn temp_beside(dest: &Path) -> Result<(File, tempfile::TempPath)> {
    let file = temp_file_beside(dest)
        .ctx(|| format!("creating a temporary file beside {}", dest.display()))?;
    Ok(file.into_parts())
}

/// Renames the finished temporary file `temp` over `dest` (on failure the
/// temporary file is removed) and makes the rename durable.
pub(crate) fn persist_temp(temp: tempfile::TempPath, dest: &Path) -> Result<()> {
    let shown = temp.display().to_string();
    temp.persist(dest)
        .map_err(|e| WimError::io(format!("renaming {shown} to {}", dest.display()), e.error))?;
    if let Some(dir) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

impl WimWriter {
    /// Starts a new WIM that will replace `dest` when [`finish`](Self::finish)
    /// succeeds; until then `dest` is untouched.
    pub fn create(dest: impl AsRef<Path>, opts: WriteOptions) -> Result<WimWriter> {
        let dest = dest.as_ref().to_path_buf();
        validate_options(&opts)?;
        let (file, temp) = temp_beside(&dest)?;
        let mut header = Header::new(opts.compression, opts.chunk_size, random_guid());
        header.flags |= HDR_FLAG_WRITE_IN_PROGRESS;
        if opts.solid.is_some() {
            header.version = WIM_VERSION_SOLID;
        }
        let mut out = Output {
            file,
            buf: Vec::with_capacity(OUT_BUF),
            base: 0,
            what: temp.display().to_string(),
        };
        out.write(&header.to_bytes())?;
        let rw = ResourceWriter::new(opts.compression, opts.chunk_size, opts.level, opts.threads);
        Ok(WimWriter {
            out,
            dest,
            temp: Some(temp),
            header,
            opts,
            rw,
            blobs: Vec::new(),
            by_hash: Default::default(),
            resolved_upto: 0,
            images: Vec::new(),
            info: WimInfo::default(),
            finished: false,
            append_old_len: None,
            solid_out: Vec::new(),
            solid_cur: None,
            deterministic: false,
            recompress: false,
        })
    }

    /// Opens an existing WIM to append images in place. New data goes after
    /// the current end of the file; the header is rewritten only at the
    /// very end, so until then the file still reads as the old WIM.
    pub fn append(path: impl AsRef<Path>, mut opts: WriteOptions) -> Result<WimWriter> {
        let path = path.as_ref().to_path_buf();
        let wim = Wim::open(&path)?;
        opts.compression = wim.compression();
        if opts.compression != CompressionFormat::None {
            opts.chunk_size = wim.header.chunk_size;
        }
        validate_options(&opts)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .ctx(|| format!("opening {} for writing", path.display()))?;
        let end = wim.file_size();
        if wim.header.total_parts > 1 {
            return Err(WimError::Unsupported(format!(
                "{}: cannot append to a split WIM (join it first)",
                path.display()
            )));
        }
        if wim.header.pipable {
            return Err(WimError::Unsupported(format!(
                "{}: cannot append to a pipable WIM (tasq reads pipable WIMs; \
                 `tasq wim export` it to a normal WIM first)",
                path.display()
            )));
        }
        let mut header = wim.header.clone();
        header.flags &= !HDR_FLAG_WRITE_IN_PROGRESS;
        if opts.solid.is_some() {
            header.version = WIM_VERSION_SOLID;
        }
        let mut w = WimWriter {
            out: Output {
                file,
                buf: Vec::with_capacity(OUT_BUF),
                base: end,
                what: path.display().to_string(),
            },
            dest: path,
            temp: None,
            header,
            rw: ResourceWriter::new(opts.compression, opts.chunk_size, opts.level, opts.threads),
            opts,
            blobs: Vec::new(),
            by_hash: Default::default(),
            resolved_upto: 0,
            images: Vec::new(),
            info: wim.info.clone(),
            finished: false,
            append_old_len: Some(end),
            solid_out: wim
                .solid
                .iter()
                .map(|r| SolidOut {
                    offset_in_wim: r.offset_in_wim,
                    size_in_wim: r.size_in_wim,
                    uncompressed_size: r.uncompressed_size,
                })
                .collect(),
            solid_cur: None,
            deterministic: false,
            recompress: false,
        };
        for b in &wim.blobs {
            w.by_hash.insert(b.hash, w.blobs.len());
            let size = b.reshdr.uncompressed_size;
            w.blobs.push(BlobRec {
                hash: b.hash,
                refcnt: b.refcnt,
                size,
                place: match b.solid {
                    Some(s) => Place::Solid {
                        res: s.resource,
                        offset: s.offset,
                    },
                    None => Place::own(b.reshdr, size),
                },
            });
        }
        for m in &wim.metadata {
            w.images.push(ImageRec {
                metadata_hash: m.hash,
                reshdr: Some(m.reshdr),
                pending_id: None,
            });
        }
        // Keep the info list in step with the images actually present.
        w.info.images.resize(w.images.len(), ImageInfo::default());
        Ok(w)
    }

    pub fn image_count(&self) -> usize {
        self.images.len()
    }

    /// Deterministic output: the WIM becomes a function of what is written
    /// into it. Each image added from now on gets, as its XML creation and
    /// last modification time, the newest creation or last-write time in
    /// its tree (0 for a tree without one; last-access times are left out
    /// because reading a tree changes them), and the header GUID is the
    /// first 16 bytes of the SHA-1 of the blob table and XML data (which
    /// hold every image's metadata hash), instead of random.
    pub fn set_deterministic(&mut self, on: bool) {
        self.deterministic = on;
    }

    /// Whether the header has the RP_FIX flag (an earlier image of an
    /// appended WIM was captured with reparse-point fixups): wimlib then
    /// fixes the links of appended images too by default.
    pub fn has_rpfix(&self) -> bool {
        self.header.flags & HDR_FLAG_RP_FIX != 0
    }

    /// Recompresses every blob copied from another WIM instead of copying
    /// stored resources as they are (wimlib's `--recompress`).
    pub fn set_recompress(&mut self, on: bool) {
        self.recompress = on;
    }

    /// Takes the XML data (every image's description, counts and times, and
    /// the WIM-wide elements) and the reparse-point-fix header flag of
    /// `src`, whose images this writer holds one for one (a rebuild); an
    /// image the source's XML does not describe keeps what this writer
    /// made. In deterministic mode the times this writer chose are kept.
    pub fn keep_descriptive_data_of(&mut self, src: &Wim) {
        let mut info = src.info.clone();
        info.images.truncate(self.info.images.len());
        let made = std::mem::take(&mut self.info.images);
        for (i, mine) in made.into_iter().enumerate() {
            match info.images.get_mut(i) {
                Some(kept) if self.deterministic => {
                    kept.creation_time = mine.creation_time;
                    kept.last_modification_time = mine.last_modification_time;
                }
                Some(_) => {}
                None => info.images.push(mine),
            }
        }
        self.info = info;
        self.header.flags |= src.header.flags & HDR_FLAG_RP_FIX;
    }

    fn check_name(&self, name: &Option<String>) -> Result<()> {
        if let Some(n) = name {
            if self
                .info
                .images
                .iter()
                .any(|i| i.name.as_deref() == Some(n.as_str()))
            {
                return Err(WimError::InvalidArgument(format!(
                    "the WIM already has an image named {n:?}"
                )));
            }
        }
        Ok(())
    }

    /// Writes one blob from memory, unless a blob with this hash exists.
    fn add_blob_bytes(&mut self, data: &[u8]) -> Result<Sha1Hash> {
        let hash = Sha1Hash::of(data);
        if !self.by_hash.contains_key(&hash) {
            let slot = self.blob_begin(data.len() as u64)?;
            self.blob_push(data)?;
            self.blob_end()?;
            self.register_new(hash, data.len() as u64, slot);
        }
        Ok(hash)
    }

    /// Starts writing a blob of `size` bytes: into the open solid resource
    /// if there is one, else as its own resource.
    fn blob_begin(&mut self, size: u64) -> Result<BlobSlot> {
        match &self.solid_cur {
            Some(sw) => Ok(BlobSlot::Solid(sw.pushed)),
            None => Ok(BlobSlot::Resource(self.rw.begin(
                &mut self.out,
                size,
                false,
            )?)),
        }
    }

    fn blob_push(&mut self, data: &[u8]) -> Result<()> {
        match &mut self.solid_cur {
            Some(sw) => sw.push(&mut self.out, data),
            None => self.rw.push(&mut self.out, data),
        }
    }

    fn blob_end(&mut self) -> Result<()> {
        if self.solid_cur.is_none() {
            self.rw.end(&mut self.out)?;
            // Finished headers move to their blobs as they come: left in
            // the writer's map until the end, they were a second table of
            // every blob (2.7 MiB at a /usr/share capture's peak).
            if self.rw.done.len() >= COLLECT_DONE_AT {
                self.collect_done();
            }
        }
        Ok(())
    }

    /// In solid mode, opens a solid resource that will take at most
    /// `max_bytes` of blob data (until [`close_solid`](Self::close_solid)).
    fn open_solid(&mut self, max_bytes: u64) -> Result<()> {
        if let Some(so) = self.opts.solid {
            self.close_solid()?;
            // Ordinary resources in flight must land before the solid
            // resource's reserved room.
            self.rw.drain(&mut self.out)?;
            self.collect_done();
            self.solid_cur = Some(SolidWriter::new(
                so,
                self.opts.level,
                self.opts.threads,
                max_bytes,
            ));
        }
        Ok(())
    }

    fn close_solid(&mut self) -> Result<()> {
        let Some(sw) = self.solid_cur.take() else {
            return Ok(());
        };
        let idx = self.solid_out.len();
        if let Some(r) = sw.finish(&mut self.out)? {
            self.solid_out.push(r);
        }
        for b in &mut self.blobs {
            if let Place::Solid { res, .. } = &mut b.place {
                if *res == usize::MAX {
                    *res = idx;
                }
            }
        }
        Ok(())
    }

    fn register_new(&mut self, hash: Sha1Hash, size: u64, slot: BlobSlot) {
        self.by_hash.insert(hash, self.blobs.len());
        let place = match slot {
            BlobSlot::Resource(id) => Place::Pending(id),
            // The resource's index is known when it is closed.
            BlobSlot::Solid(offset) => Place::Solid {
                res: usize::MAX,
                offset,
            },
        };
        self.blobs.push(BlobRec {
            hash,
            refcnt: 0,
            size,
            place,
        });
    }

    /// Captures `source` as a new image.
    pub fn add_image(
        &mut self,
        source: &mut dyn CaptureSource,
        filter: &dyn CaptureFilter,
        image: &ImageOptions,
        progress: &mut dyn FnMut(ProgressEvent),
    ) -> Result<u32> {
        self.check_name(&image.name)?;
        let mut tree = source.scan(filter, &mut |p| progress(ProgressEvent::Scan(p)))?;
        if image.rpfix {
            self.header.flags |= HDR_FLAG_RP_FIX;
        }
        tree.shrink_to_fit();
        self.write_tree_streams(&mut tree, source, progress)?;
        self.add_tree(tree, image, None)
    }

    /// Adds an image whose streams already carry their hashes and whose
    /// blobs are all present in this WIM (used by export and rebuild).
    fn add_tree(
        &mut self,
        tree: ImageTree,
        image: &ImageOptions,
        template: Option<&ImageInfo>,
    ) -> Result<u32> {
        let links = tree.link_counts();
        for (i, inode) in tree.inodes.iter().enumerate() {
            for s in &inode.streams {
                if s.hash.is_zero() {
                    continue;
                }
                let Some(&b) = self.by_hash.get(&s.hash) else {
                    return Err(WimError::MissingBlob {
                        hash: s.hash.to_string(),
                        needed_by: "new image".into(),
                    });
                };
                self.blobs[b].refcnt += links[i];
            }
        }
        // Written in pieces: the whole resource is never in memory.
        let layout = MetadataLayout::of(&tree);
        let id = self.rw.begin(&mut self.out, layout.size(), true)?;
        let mut hasher = Sha1Hasher::new();
        let (rw, out) = (&mut self.rw, &mut self.out);
        layout.write(&tree, METADATA_PIECE, &mut |piece| {
            hasher.update(piece);
            rw.push(out, piece)
        })?;
        let mhash = hasher.finish();
        self.rw.end(&mut self.out)?;
        self.images.push(ImageRec {
            metadata_hash: mhash,
            reshdr: None,
            pending_id: Some(id),
        });
        let stats = tree.stats();
        let now = if self.deterministic {
            newest_time(&tree)
        } else {
            filetime_now()
        };
        let mut info = template.cloned().unwrap_or_default();
        info.name = image.name.clone().or(info.name);
        info.description = image.description.clone().or(info.description);
        info.display_name = image.display_name.clone().or(info.display_name);
        info.display_description = image
            .display_description
            .clone()
            .or(info.display_description);
        info.flags = image.flags.clone().or(info.flags);
        for (name, text) in &image.properties {
            info.extra.retain(|n| &n.name != name);
            info.extra.push(crate::xml::XmlNode {
                name: name.clone(),
                attributes: Vec::new(),
                children: Vec::new(),
                text: Some(text.clone()),
            });
        }
        info.dir_count = stats.dir_count;
        info.file_count = stats.file_count;
        info.total_bytes = stats.total_bytes;
        info.hard_link_bytes = stats.hard_link_bytes;
        if template.is_none() || self.deterministic {
            info.creation_time = now;
        }
        info.last_modification_time = now;
        self.info.images.push(info);
        let n = self.images.len() as u32;
        if image.boot {
            self.header.boot_index = n;
        }
        Ok(n)
    }

    fn write_tree_streams(
        &mut self,
        tree: &mut ImageTree,
        source: &dyn CaptureSource,
        progress: &mut dyn FnMut(ProgressEvent),
    ) -> Result<()> {
        // Which sizes occur more than once (counting blobs already in the
        // WIM): only streams of such sizes can be duplicates, so only they
        // are hashed before being written (wimlib's "unhashed blobs" idea).
        let mut size_count: HashMap<u64, u32> = HashMap::new();
        for b in &self.blobs {
            *size_count.entry(b.size).or_default() += 1;
        }
        let mut total = WriteProgress::default();
        // Sources named by more than one stream: only their hashes are
        // remembered through the loop below (not one per file).
        let mut shared_sources: FastSet<u64> = FastSet::default();
        let mut seen_sources: FastSet<u64> = FastSet::default();
        for inode in &tree.inodes {
            for s in &inode.streams {
                if s.size > 0 {
                    if let StreamSource::External(id) = s.source {
                        if !seen_sources.insert(id) {
                            shared_sources.insert(id);
                            continue;
                        }
                    }
                    *size_count.entry(s.size).or_default() += 1;
                    total.bytes_total += s.size;
                    total.files_total += 1;
                }
            }
        }
        drop(seen_sources);
        // At most one new blob per stream counted: room for them now,
        // instead of growing (and briefly holding twice) as they come.
        self.blobs.reserve_exact(total.files_total as usize);
        self.by_hash.reserve(total.files_total as usize);
        // Walk inodes in tree order for locality.
        let mut order: Vec<usize> = Vec::with_capacity(tree.inodes.len());
        let mut first_name: Vec<Option<usize>> = vec![None; tree.inodes.len()];
        for d in tree.preorder() {
            let i = tree.dentries[d].inode;
            if let Some(slot) = first_name.get_mut(i).filter(|s| s.is_none()) {
                *slot = Some(d);
                order.push(i);
            }
        }
        if self.opts.solid.is_some() {
            // In a solid resource, similar data side by side compresses
            // better: group by file name extension, then name (wimlib sorts
            // the same way); stable, so tree order breaks ties.
            let key = |i: &usize| {
                let name = first_name
                    .get(*i)
                    .copied()
                    .flatten()
                    .and_then(|d| tree.dentries.get(d))
                    .map(|d| d.name_string().to_lowercase())
                    .unwrap_or_default();
                let ext = match name.rfind('.') {
                    Some(p) if p > 0 => name[p + 1..].to_string(),
                    _ => String::new(),
                };
                (ext, name)
            };
            order.sort_by_cached_key(key);
        }
        drop(first_name);
        self.open_solid(total.bytes_total)?;
        let cs = self.opts.chunk_size.max(65536) as usize;
        let mut buf = vec![0u8; cs.max(1 << 20)];
        let mut done_ids: FastMap<u64, Sha1Hash> = FastMap::default();
        for i in order {
            for si in 0..tree.inodes[i].streams.len() {
                let (size, src) = {
                    let s = &tree.inodes[i].streams[si];
                    (s.size, s.source.clone())
                };
                if size == 0 {
                    tree.inodes[i].streams[si].hash = Sha1Hash::ZERO;
                    continue;
                }
                let hash = match src {
                    StreamSource::None => tree.inodes[i].streams[si].hash,
                    StreamSource::Inline(data) => {
                        total.bytes_done += size;
                        total.files_done += 1;
                        self.add_blob_bytes(&data)?
                    }
                    StreamSource::External(id) => {
                        if let Some(h) = done_ids.get(&id) {
                            *h
                        } else {
                            let h = self.write_external(
                                source,
                                id,
                                size,
                                size_count.get(&size).copied().unwrap_or(0) > 1,
                                &mut buf,
                            )?;
                            if shared_sources.contains(&id) {
                                done_ids.insert(id, h);
                            }
                            total.bytes_done += size;
                            total.files_done += 1;
                            progress(ProgressEvent::Write(total));
                            h
                        }
                    }
                };
                if hash.is_zero() || !self.by_hash.contains_key(&hash) {
                    return Err(WimError::Capture {
                        path: tree
                            .path_of(tree.dentries.iter().position(|d| d.inode == i).unwrap_or(0)),
                        reason: "stream has no data source".into(),
                    });
                }
                let s = &mut tree.inodes[i].streams[si];
                s.hash = hash;
                s.source = StreamSource::None;
            }
        }
        self.close_solid()?;
        progress(ProgressEvent::Write(total));
        Ok(())
    }

    fn write_external(
        &mut self,
        source: &dyn CaptureSource,
        id: u64,
        size: u64,
        prehash: bool,
        buf: &mut [u8],
    ) -> Result<Sha1Hash> {
        if prehash {
            let mut r = source.open_stream(id)?;
            let mut h = Sha1Hasher::new();
            let got = read_all(&mut *r, buf, &mut |c| {
                h.update(c);
                Ok(())
            })?;
            check_size(got, size, id)?;
            let hash = h.finish();
            if self.by_hash.contains_key(&hash) {
                return Ok(hash);
            }
            let written = self.stream_into_resource(source, id, size, buf)?;
            if written.0 != hash {
                return Err(WimError::Capture {
                    path: format!("stream {id}"),
                    reason: "file changed while it was being captured".into(),
                });
            }
            self.register_new(hash, size, written.1);
            return Ok(hash);
        }
        let (hash, slot) = self.stream_into_resource(source, id, size, buf)?;
        if self.by_hash.contains_key(&hash) {
            // Cannot happen for a unique size; keep the first copy and
            // leave this one as unreferenced space.
            return Ok(hash);
        }
        self.register_new(hash, size, slot);
        Ok(hash)
    }

    fn stream_into_resource(
        &mut self,
        source: &dyn CaptureSource,
        id: u64,
        size: u64,
        buf: &mut [u8],
    ) -> Result<(Sha1Hash, BlobSlot)> {
        let mut r = source.open_stream(id)?;
        let slot = self.blob_begin(size)?;
        let mut h = Sha1Hasher::new();
        let got = read_all(&mut *r, buf, &mut |c| {
            h.update(c);
            self.blob_push(c)
        })?;
        check_size(got, size, id)?;
        self.blob_end()?;
        Ok((h.finish(), slot))
    }

    /// Copies image `n` of `src` into this WIM, copying stored blobs as they
    /// are when compression matches and recompressing otherwise.
    pub fn add_image_from(&mut self, src: &Wim, n: u32, image: &ImageOptions) -> Result<u32> {
        let k = self.add_images_from(src, &[(n, image.clone())])?;
        k.first()
            .copied()
            .ok_or_else(|| WimError::InvalidArgument("no image was added".into()))
    }

    /// Copies images of `src` into this WIM, in the order given; returns
    /// their new indexes. Blobs are taken as wimlib takes them (unless
    /// [`set_recompress`](Self::set_recompress)):
    /// - an ordinary resource is copied byte for byte when this WIM is not
    ///   solid and uses the same compression and chunk size;
    /// - a solid resource is copied byte for byte when this WIM is solid
    ///   and more than two thirds of its data belong to the images copied
    ///   (its other blobs then stay in it as dead space, out of the table);
    /// - every other blob is decompressed (its SHA-1 checked) and
    ///   compressed again, into a solid resource when writing solid.
    pub fn add_images_from(
        &mut self,
        src: &Wim,
        images: &[(u32, ImageOptions)],
    ) -> Result<Vec<u32>> {
        let trees = images
            .iter()
            .map(|(n, _)| src.read_image(*n))
            .collect::<Result<Vec<_>>>()?;
        let raw_solid = self.solid_resources_to_copy(src, &trees);
        let mut copied = vec![false; src.solid.len()];
        // A pipable WIM's compressed resources have their own chunk layout,
        // so they are never copied as they are into a normal WIM.
        let same_format = !self.recompress
            && self.opts.solid.is_none()
            && (!src.header.pipable || src.compression() == CompressionFormat::None)
            && src.compression() == self.opts.compression
            && (self.opts.compression == CompressionFormat::None
                || src.header.chunk_size == self.opts.chunk_size);
        let mut recompress: Vec<&BlobEntry> = Vec::new();
        let mut queued: crate::hash::FastSet<Sha1Hash> = Default::default();
        let mut described = Vec::with_capacity(images.len());
        for ((n, image), tree) in images.iter().zip(&trees) {
            let template = src.info.images.get(*n as usize - 1).cloned();
            let mut opts = image.clone();
            if opts.name.is_none() {
                opts.name = template.as_ref().and_then(|t| t.name.clone());
            }
            self.check_name(&opts.name)?;
            if opts.name.is_some()
                && described
                    .iter()
                    .any(|(o, _): &(ImageOptions, _)| o.name == opts.name)
            {
                return Err(WimError::InvalidArgument(format!(
                    "two images named {:?}",
                    opts.name.unwrap_or_default()
                )));
            }
            described.push((opts, template));
            for s in tree.inodes.iter().flat_map(|i| &i.streams) {
                if s.hash.is_zero() || self.by_hash.contains_key(&s.hash) {
                    continue;
                }
                let entry = src.blob(&s.hash).ok_or_else(|| WimError::MissingBlob {
                    hash: s.hash.to_string(),
                    needed_by: format!("image {n}"),
                })?;
                match entry.solid {
                    None if same_format => self.copy_raw(src, entry)?,
                    Some(loc) if raw_solid.get(loc.resource) == Some(&true) => {
                        if let Some(c) = copied.get_mut(loc.resource).filter(|c| !**c) {
                            *c = true;
                            self.copy_solid_raw(src, loc.resource)?;
                        }
                    }
                    _ => {
                        if queued.insert(entry.hash) {
                            recompress.push(entry);
                        }
                    }
                }
            }
        }
        self.recompress_from(src, recompress)?;
        let mut out = Vec::with_capacity(images.len());
        for (mut tree, (opts, template)) in trees.into_iter().zip(described) {
            tree.warnings.clear();
            out.push(self.add_tree(tree, &opts, template.as_ref())?);
        }
        Ok(out)
    }

    /// Which solid resources of `src` to copy as they are for `trees`.
    fn solid_resources_to_copy(&self, src: &Wim, trees: &[ImageTree]) -> Vec<bool> {
        let mut raw = vec![false; src.solid.len()];
        if self.recompress || self.opts.solid.is_none() {
            return raw;
        }
        let mut kept = vec![0u64; src.solid.len()];
        let mut seen: crate::hash::FastSet<Sha1Hash> = Default::default();
        for s in trees
            .iter()
            .flat_map(|t| &t.inodes)
            .flat_map(|i| &i.streams)
        {
            if s.hash.is_zero() || !seen.insert(s.hash) {
                continue;
            }
            if let Some((e, loc)) = src.blob(&s.hash).and_then(|e| Some((e, e.solid?))) {
                if let Some(k) = kept.get_mut(loc.resource) {
                    *k += e.reshdr.uncompressed_size;
                }
            }
        }
        for (i, r) in src.solid.iter().enumerate() {
            // wimlib's rule: copy when more than 2/3 of it is wanted.
            raw[i] = kept[i] as u128 * 3 > r.uncompressed_size as u128 * 2;
        }
        raw
    }

    /// Decompresses `blobs` of `src` (in file order, on every core, each
    /// SHA-1 checked) and writes them again: into one solid resource when
    /// writing solid, else each as its own resource.
    fn recompress_from(&mut self, src: &Wim, mut blobs: Vec<&BlobEntry>) -> Result<()> {
        if blobs.is_empty() {
            return Ok(());
        }
        blobs.sort_by_key(|b| b.read_order());
        let total: u64 = blobs.iter().map(|b| b.reshdr.uncompressed_size).sum();
        self.open_solid(total)?;
        let mut reader = BlobReader::new(src, blobs.clone(), self.opts.threads);
        let mut cur: Option<BlobSlot> = None;
        while let Some(ev) = reader.next_event()? {
            match ev {
                BlobEvent::Data(bi, d) => {
                    if cur.is_none() {
                        let size = blobs.get(bi).map_or(0, |b| b.reshdr.uncompressed_size);
                        cur = Some(self.blob_begin(size)?);
                    }
                    self.blob_push(&d)?;
                }
                BlobEvent::Done(bi) => {
                    let (Some(slot), Some(b)) = (cur.take(), blobs.get(bi)) else {
                        return Err(WimError::InvalidArgument("blob reader out of step".into()));
                    };
                    self.blob_end()?;
                    self.register_new(b.hash, b.reshdr.uncompressed_size, slot);
                }
            }
        }
        self.close_solid()
    }

    /// Copies `size` stored bytes of `src` (part `part`, at `offset`) to
    /// the end of the output; returns where they now start. Whatever is in
    /// flight is written first.
    fn copy_stored(
        &mut self,
        src: &Wim,
        part: u16,
        offset: u64,
        size: u64,
        what: &str,
    ) -> Result<u64> {
        self.close_solid()?;
        self.rw.drain(&mut self.out)?;
        self.collect_done();
        let start = self.out.pos();
        // In pieces: a stored resource can be as large as the file.
        let mut buf = vec![0u8; (size as usize).min(OUT_BUF)];
        let mut pos = 0u64;
        while pos < size {
            let k = ((size - pos) as usize).min(buf.len());
            src.read_raw(part, offset + pos, &mut buf[..k], what)?;
            self.out.write(&buf[..k])?;
            pos += k as u64;
        }
        Ok(start)
    }

    /// Copies a stored (non-solid) resource byte for byte.
    fn copy_raw(&mut self, src: &Wim, entry: &BlobEntry) -> Result<()> {
        let what = format!("blob {}", entry.hash);
        let mut rh = entry.reshdr;
        rh.offset_in_wim = self.copy_stored(
            src,
            entry.part_number,
            entry.reshdr.offset_in_wim,
            entry.reshdr.size_in_wim,
            &what,
        )?;
        self.by_hash.insert(entry.hash, self.blobs.len());
        self.blobs.push(BlobRec {
            hash: entry.hash,
            refcnt: 0,
            size: rh.uncompressed_size,
            place: Place::own(rh, rh.uncompressed_size),
        });
        Ok(())
    }

    /// Copies solid resource `r` of `src` byte for byte and makes each of
    /// its blobs (not already here) available at its place in it.
    fn copy_solid_raw(&mut self, src: &Wim, r: usize) -> Result<()> {
        let Some(res) = src.solid.get(r) else {
            return Err(WimError::InvalidArgument(format!(
                "no solid resource {r} in the source"
            )));
        };
        let what = format!("solid resource at offset {}", res.offset_in_wim);
        let start = self.copy_stored(src, res.part, res.offset_in_wim, res.size_in_wim, &what)?;
        let idx = self.solid_out.len();
        self.solid_out.push(SolidOut {
            offset_in_wim: start,
            size_in_wim: res.size_in_wim,
            uncompressed_size: res.uncompressed_size,
        });
        let mut inside: Vec<&BlobEntry> = src
            .blobs
            .iter()
            .filter(|b| b.solid.is_some_and(|l| l.resource == r))
            .collect();
        inside.sort_by_key(|b| b.read_order());
        for b in inside {
            if self.by_hash.contains_key(&b.hash) {
                continue;
            }
            let Some(l) = b.solid else { continue };
            self.by_hash.insert(b.hash, self.blobs.len());
            self.blobs.push(BlobRec {
                hash: b.hash,
                refcnt: 0,
                size: b.reshdr.uncompressed_size,
                place: Place::Solid {
                    res: idx,
                    offset: l.offset,
                },
            });
        }
        Ok(())
    }

    /// Removes image `n` (1-based) from what will be written.
    pub fn remove_image(&mut self, n: u32) -> Result<()> {
        let idx = (n as usize)
            .checked_sub(1)
            .filter(|&i| i < self.images.len())
            .ok_or_else(|| WimError::ImageNotFound(n.to_string()))?;
        self.images.remove(idx);
        if idx < self.info.images.len() {
            self.info.images.remove(idx);
        }
        if self.header.boot_index == n {
            self.header.boot_index = 0;
        } else if self.header.boot_index > n {
            self.header.boot_index -= 1;
        }
        Ok(())
    }

    /// Sets the `<WINDOWS>` description of image `n` (1-based): what
    /// wimlib fills in from the image's registry, given here by a caller
    /// that knows it (architecture, edition, version), so that readers see
    /// an operating-system image.
    pub fn set_windows_info(&mut self, n: u32, windows: crate::xml::WindowsInfo) -> Result<()> {
        let info = n
            .checked_sub(1)
            .and_then(|i| self.info.images.get_mut(i as usize))
            .ok_or_else(|| WimError::ImageNotFound(n.to_string()))?;
        info.windows = Some(windows);
        Ok(())
    }

    pub fn set_boot_index(&mut self, n: u32) -> Result<()> {
        if n as usize > self.images.len() {
            return Err(WimError::ImageNotFound(n.to_string()));
        }
        self.header.boot_index = n;
        Ok(())
    }

    fn collect_done(&mut self) {
        // Blobs before `resolved_upto` have all been placed.
        let start = self.resolved_upto.min(self.blobs.len());
        let mut all_placed = true;
        for (i, b) in self.blobs.iter_mut().enumerate().skip(start) {
            if let Place::Pending(id) = b.place {
                if let Some(rh) = self.rw.take_done(id) {
                    b.place = Place::own(rh, b.size);
                } else {
                    all_placed = false;
                }
            }
            if all_placed {
                self.resolved_upto = i + 1;
            }
        }
        for im in &mut self.images {
            if let Some(id) = im.pending_id {
                if let Some(rh) = self.rw.take_done(id) {
                    im.reshdr = Some(rh);
                    im.pending_id = None;
                }
            }
        }
    }

    /// Appends the solid run to the blob table: each solid resource's
    /// entry followed by its blobs, whose offsets count from the start of
    /// the run's resources taken as one stream (what WIMGAPI expects).
    /// Resources left with no referenced blob are dropped from the table.
    fn solid_entries(&self, entries: &mut Vec<BlobEntry>) {
        let mut logical = 0u64;
        for (ri, r) in self.solid_out.iter().enumerate() {
            let mut blobs: Vec<&BlobRec> = self
                .blobs
                .iter()
                .filter(|b| b.refcnt > 0 && b.solid().is_some_and(|s| s.0 == ri))
                .collect();
            if blobs.is_empty() {
                continue;
            }
            blobs.sort_by_key(|b| b.solid().map_or(0, |s| s.1));
            entries.push(BlobEntry {
                reshdr: ResHdr {
                    size_in_wim: r.size_in_wim,
                    flags: RESHDR_FLAG_SOLID,
                    offset_in_wim: r.offset_in_wim,
                    uncompressed_size: SOLID_RESOURCE_MAGIC,
                },
                part_number: 1,
                refcnt: 1,
                hash: Sha1Hash::ZERO,
                solid: None,
            });
            for b in blobs {
                entries.push(BlobEntry {
                    reshdr: ResHdr {
                        size_in_wim: b.size,
                        flags: RESHDR_FLAG_SOLID | RESHDR_FLAG_COMPRESSED,
                        offset_in_wim: logical + b.solid().map_or(0, |s| s.1),
                        uncompressed_size: 0,
                    },
                    part_number: 1,
                    refcnt: b.refcnt,
                    hash: b.hash,
                    solid: None,
                });
            }
            logical += r.uncompressed_size;
        }
    }

    /// Writes the blob table, XML data, integrity table and header, then
    /// makes the file durable and (for a new WIM) renames it over the
    /// destination.
    pub fn finish(mut self) -> Result<()> {
        self.close_solid()?;
        self.rw.drain(&mut self.out)?;
        self.collect_done();
        if self.blobs.iter().any(|b| match b.place {
            Place::Pending(_) => true,
            Place::Own { .. } => false,
            Place::Solid { res, .. } => res >= self.solid_out.len(),
        }) || self.images.iter().any(|i| i.reshdr.is_none())
        {
            return Err(WimError::InvalidArgument(
                "a resource was not completely written".into(),
            ));
        }
        let mut entries = Vec::with_capacity(self.images.len() + self.blobs.len());
        for im in &self.images {
            let mut rh = im.reshdr.unwrap_or_default();
            rh.flags |= RESHDR_FLAG_METADATA;
            entries.push(BlobEntry {
                reshdr: rh,
                part_number: 1,
                refcnt: 1,
                hash: im.metadata_hash,
                solid: None,
            });
        }
        for b in &self.blobs {
            // Unreferenced (a deleted image's data): dropped.
            let Some(reshdr) = b.reshdr().filter(|_| b.refcnt > 0) else {
                continue;
            };
            entries.push(BlobEntry {
                reshdr,
                part_number: 1,
                refcnt: b.refcnt,
                hash: b.hash,
                solid: None,
            });
        }
        self.solid_entries(&mut entries);
        let table = serialize_blob_table(&entries);
        let bt_off = self.out.pos();
        self.out.write(&table)?;
        self.header.blob_table = ResHdr {
            size_in_wim: table.len() as u64,
            flags: RESHDR_FLAG_METADATA,
            offset_in_wim: bt_off,
            uncompressed_size: table.len() as u64,
        };
        let xml_off = self.out.pos();
        self.info.total_bytes = Some(xml_off);
        let xml = self.info.to_bytes();
        self.out.write(&xml)?;
        self.header.xml_data = ResHdr {
            size_in_wim: xml.len() as u64,
            flags: RESHDR_FLAG_METADATA,
            offset_in_wim: xml_off,
            uncompressed_size: xml.len() as u64,
        };
        if self.deterministic {
            let mut h = Sha1Hasher::new();
            h.update(&table);
            h.update(&xml);
            self.header.guid.copy_from_slice(&h.finish().0[..16]);
        }
        self.out.flush()?;
        if self.opts.integrity {
            let t = build_integrity_table(&self.out.file, bt_off + table.len() as u64)?;
            let off = self.out.pos();
            self.out.write(&t)?;
            self.out.flush()?;
            self.header.integrity = ResHdr {
                size_in_wim: t.len() as u64,
                flags: 0,
                offset_in_wim: off,
                uncompressed_size: t.len() as u64,
            };
        } else {
            self.header.integrity = ResHdr::default();
        }
        let end = self.out.pos();
        self.header.image_count = self.images.len() as u32;
        if self.header.boot_index as usize > self.images.len() {
            self.header.boot_index = 0;
        }
        self.header.boot_metadata = if self.header.boot_index > 0 {
            entries[self.header.boot_index as usize - 1].reshdr
        } else {
            ResHdr::default()
        };
        self.header.flags &= !HDR_FLAG_WRITE_IN_PROGRESS;
        // Data first, durably; then the header that makes it live.
        self.out
            .file
            .set_len(end)
            .ctx(|| format!("writing {}", self.out.what))?;
        self.out
            .file
            .sync_data()
            .ctx(|| format!("syncing {}", self.out.what))?;
        self.out
            .file
            .write_all_at(&self.header.to_bytes(), 0)
            .ctx(|| format!("writing header of {}", self.out.what))?;
        self.out
            .file
            .sync_all()
            .ctx(|| format!("syncing {}", self.out.what))?;
        if let Some(temp) = self.temp.take() {
            persist_temp(temp, &self.dest)?;
        }
        self.finished = true;
        Ok(())
    }
}

impl Drop for WimWriter {
    fn drop(&mut self) {
        if !self.finished {
            // Dropping the temporary path removes the file.
            self.temp = None;
            // An unfinished append leaves data after the old end; the header
            // still describes the old WIM, so cut the file back.
            if let Some(len) = self.append_old_len {
                let _ = self.out.file.set_len(len);
            }
        }
    }
}

/// The newest creation or last-write time in `tree` (0 if none): what a
/// deterministic writer records as the image's times. Last-access times
/// are left out: reading the tree to capture it may change them.
fn newest_time(tree: &ImageTree) -> u64 {
    tree.inodes
        .iter()
        .map(|i| i.creation_time.max(i.last_write_time))
        .max()
        .unwrap_or(0)
}

/// Events for progress displays.
#[derive(Debug, Clone, Copy)]
pub enum ProgressEvent {
    Scan(ScanProgress),
    Write(WriteProgress),
}

fn read_all(
    r: &mut dyn Read,
    buf: &mut [u8],
    sink: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Result<u64> {
    let mut total = 0u64;
    loop {
        let n = match r.read(buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(WimError::io("reading captured data", e)),
        };
        total += n as u64;
        sink(&buf[..n])?;
    }
}

fn check_size(got: u64, want: u64, id: u64) -> Result<()> {
    if got != want {
        return Err(WimError::Capture {
            path: format!("stream {id}"),
            reason: format!("read {got} bytes but the file had {want} bytes when scanned (changed during capture?)"),
        });
    }
    Ok(())
}

fn validate_options(o: &WriteOptions) -> Result<()> {
    let check = |f: CompressionFormat, cs: u32, what: &str| -> Result<()> {
        if f == CompressionFormat::None {
            return Ok(());
        }
        let (min, max) = chunk_size_range(f);
        if !cs.is_power_of_two() || cs < min || cs > max {
            return Err(WimError::InvalidArgument(format!(
                "{what}chunk size {cs} is not valid for {f} (powers of two from {min} to {max})"
            )));
        }
        if new_compressor(f, cs as usize, o.level).is_none() {
            return Err(WimError::Unsupported(format!(
                "writing {f} is not supported yet"
            )));
        }
        Ok(())
    };
    check(o.compression, o.chunk_size, "")?;
    if let Some(so) = o.solid {
        if so.compression == CompressionFormat::None {
            return Err(WimError::InvalidArgument(
                "solid resources must be compressed (xpress, lzx or lzms)".into(),
            ));
        }
        check(so.compression, so.chunk_size, "solid ")?;
    }
    Ok(())
}
