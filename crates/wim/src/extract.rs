//! Reading many blobs fast: blobs are visited in the order they lie in the
//! file, each resource's raw chunks are read once, sequentially, and
//! decompressed on every core through an [`OrderedPool`]; the caller pulls
//! each blob's bytes in order, and every blob's SHA-1 is checked (on a
//! thread of its own, [`crate::hashstage`]).
//!
//! The unit of work is a chunk and a list of slices saying which blob each
//! part of its output belongs to: a chunk of an ordinary resource feeds one
//! blob, a chunk of a solid resource may feed many (and a blob may span
//! many chunks). Only the chunks that hold wanted blobs are decompressed,
//! each once for a run of blobs visited in offset order.

use std::collections::VecDeque;
use std::ops::Deref;
use std::sync::{Arc, Mutex};

use tasq_codecs::{new_decompressor, CompressionFormat, DecompressError, Decompressor};

use crate::blob_table::BlobEntry;
use crate::error::{Result, WimError};
use crate::hash::Sha1Hash;
use crate::hashstage::HashStage;
use crate::pool::{default_threads, OrderedPool};
use crate::reader::Wim;
use crate::resource::{chunk_locations, read_exact_at, ChunkLoc};

/// Bytes `start..end` of a chunk's output belong to blob `blob`; `last`
/// marks the blob's final piece.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slice {
    pub blob: usize,
    pub start: u32,
    pub end: u32,
    pub last: bool,
}

/// Names a blob in errors, formatted only when an error is made.
struct BlobName(Sha1Hash);

impl std::fmt::Display for BlobName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "blob {}", self.0)
    }
}

/// One chunk to read and decompress, and where its bytes go.
#[derive(Debug)]
pub(crate) struct PlannedChunk {
    pub part: u16,
    pub loc: ChunkLoc,
    pub format: CompressionFormat,
    /// Chunk size the resource was compressed with (for the decompressor).
    pub max_chunk: u32,
    pub slices: Vec<Slice>,
}

/// Plans the chunks for `blobs[first..]`: one ordinary blob, or the run of
/// blobs that follow each other, in offset order, in one solid resource.
/// Returns the plan and the index of the first blob not covered.
pub(crate) fn plan_next(
    wim: &Wim,
    blobs: &[&BlobEntry],
    first: usize,
) -> Result<(Vec<PlannedChunk>, usize)> {
    let Some(e) = blobs.get(first) else {
        return Ok((Vec::new(), first));
    };
    let what = BlobName(e.hash);
    let rh = &e.reshdr;
    let Some(sl) = e.solid else {
        let compressed = rh.is_compressed();
        let chunks = if compressed {
            chunk_locations(
                wim.part_file(e.part_number)?,
                rh,
                wim.header.chunk_size,
                wim.header.pipable,
                &what,
            )?
        } else {
            let mut v = Vec::new();
            let mut pos = 0u64;
            while pos < rh.uncompressed_size {
                let n = (rh.uncompressed_size - pos).min(1 << 20) as u32;
                v.push(ChunkLoc {
                    offset: rh.offset_in_wim + pos,
                    stored_size: n,
                    uncompressed_size: n,
                });
                pos += n as u64;
            }
            v
        };
        if chunks.is_empty() {
            return Err(WimError::resource(
                what.to_string(),
                "empty resource for a non-empty blob",
            ));
        }
        let n = chunks.len();
        let plan = chunks
            .into_iter()
            .enumerate()
            .map(|(i, loc)| PlannedChunk {
                part: e.part_number,
                loc,
                format: if compressed {
                    wim.compression()
                } else {
                    CompressionFormat::None
                },
                max_chunk: wim.header.chunk_size,
                slices: vec![Slice {
                    blob: first,
                    start: 0,
                    end: loc.uncompressed_size,
                    last: i + 1 == n,
                }],
            })
            .collect();
        return Ok((plan, first + 1));
    };
    let res = wim
        .solid
        .get(sl.resource)
        .ok_or_else(|| WimError::resource(what.to_string(), "unknown solid resource"))?;
    let cs = res.chunk_size as u64;
    let mut plan: Vec<PlannedChunk> = Vec::new();
    let mut next = first;
    let mut prev_end = 0u64;
    while let Some(b) = blobs.get(next) {
        let Some(bl) = b.solid.filter(|s| s.resource == sl.resource) else {
            break;
        };
        let (start, end) = (bl.offset, bl.offset + b.reshdr.uncompressed_size);
        // The reader checked that blobs lie inside the resource; a blob
        // before the previous one's end starts a new run (its chunks are
        // read again) rather than going back in the output.
        if next > first && start < prev_end {
            break;
        }
        if end > res.uncompressed_size || start >= end {
            return Err(WimError::resource(
                format!("blob {}", b.hash),
                "lies outside its solid resource",
            ));
        }
        let span = res.chunk_span(start, end);
        let last_chunk = *span.end();
        for c in span {
            let loc = *res.chunks.get(c).ok_or_else(|| {
                WimError::resource(
                    format!("blob {}", b.hash),
                    "chunk missing in solid resource",
                )
            })?;
            let c0 = c as u64 * cs;
            let s = Slice {
                blob: next,
                start: (start.max(c0) - c0) as u32,
                end: (end.min(c0 + loc.uncompressed_size as u64) - c0) as u32,
                last: c == last_chunk,
            };
            match plan.last_mut() {
                Some(p) if p.loc.offset == loc.offset => p.slices.push(s),
                _ => plan.push(PlannedChunk {
                    part: res.part,
                    loc,
                    format: res.format,
                    max_chunk: res.chunk_size,
                    slices: vec![s],
                }),
            }
        }
        prev_end = end;
        next += 1;
    }
    Ok((plan, next))
}

/// Decompressors by (format, chunk size), made on first use: one WIM can
/// hold resources of several formats (solid ones carry their own).
#[derive(Default)]
pub(crate) struct Decoders(Vec<(CompressionFormat, u32, MaybeDecoder)>);

type MaybeDecoder = Option<Box<dyn Decompressor>>;

impl Decoders {
    /// Decodes `raw` into a chunk of `usize` bytes (raw chunks are copied).
    pub fn decode(
        &mut self,
        format: CompressionFormat,
        max_chunk: u32,
        raw: Vec<u8>,
        usize: u32,
        bufs: &BufPool,
    ) -> std::result::Result<Vec<u8>, DecompressError> {
        if raw.len() == usize as usize {
            return Ok(raw);
        }
        let out = bufs.take(usize as usize);
        let r = self.decode_into(format, max_chunk, &raw, out);
        bufs.put(raw);
        r
    }

    fn decode_into(
        &mut self,
        format: CompressionFormat,
        max_chunk: u32,
        raw: &[u8],
        mut out: Vec<u8>,
    ) -> std::result::Result<Vec<u8>, DecompressError> {
        if format == CompressionFormat::None {
            return Err(DecompressError::Corrupt {
                format,
                reason: "stored chunk is shorter than its size",
            });
        }
        let i = match self
            .0
            .iter()
            .position(|(f, c, _)| *f == format && *c == max_chunk)
        {
            Some(i) => i,
            None => {
                self.0.push((
                    format,
                    max_chunk,
                    new_decompressor(format, max_chunk as usize),
                ));
                self.0.len() - 1
            }
        };
        match self.0.get_mut(i).and_then(|d| d.2.as_mut()) {
            Some(d) => d.decompress(raw, &mut out).map(|_| out),
            None => Err(DecompressError::Corrupt {
                format,
                reason: "no decompressor for this format in this build",
            }),
        }
    }
}

/// Recycled chunk buffers. A solid chunk is up to 64 MiB: allocating each
/// afresh costs a page fault and a zeroed page for every 4 KiB of it (most of
/// the system time of a solid apply), so buffers whose data has been
/// handed out come back here for the next chunk.
#[derive(Default)]
pub(crate) struct BufPool {
    free: Mutex<Vec<Vec<u8>>>,
}

/// Buffers kept for reuse, and the largest total they may hold.
const POOL_BUFFERS: usize = 16;
const POOL_BYTES: usize = 160 << 20;

impl BufPool {
    /// A buffer of exactly `len` bytes (contents unspecified: callers
    /// overwrite all of it).
    pub(crate) fn take(&self, len: usize) -> Vec<u8> {
        let reuse = self.free.lock().ok().and_then(|mut f| {
            // The smallest free buffer that is large enough, preferring one
            // that already holds `len` bytes (nothing to zero).
            // Not one far larger: a 64 MiB solid chunk's buffer lent for
            // its 20 MiB of compressed input keeps all 64 resident. But a
            // buffer of up to 1 MiB serves any request: blobs stored
            // uncompressed are read in 1 MiB pieces, and when those
            // buffers sat here unused while 32 KiB chunks took new memory,
            // an LZX apply's peak grew by 2-3 MiB.
            let fits = |cap: usize| cap >= len && cap <= (2 * len + (64 << 10)).max(1 << 20);
            let i = f
                .iter()
                .enumerate()
                .filter(|(_, b)| fits(b.capacity()))
                .min_by_key(|(_, b)| (b.len() < len, b.capacity()))
                .map(|(i, _)| i)?;
            Some(f.swap_remove(i))
        });
        let mut v = reuse.unwrap_or_default();
        // A recycled buffer keeps its old bytes (its length is kept by
        // `put`): only bytes beyond them are zeroed.
        if v.len() >= len {
            v.truncate(len);
        } else {
            v.resize(len, 0);
        }
        v
    }

    pub(crate) fn put(&self, v: Vec<u8>) {
        if v.capacity() < 4096 {
            return;
        }
        if let Ok(mut f) = self.free.lock() {
            let held: usize = f.iter().map(|b| b.capacity()).sum();
            if f.len() < POOL_BUFFERS && held + v.capacity() <= POOL_BYTES {
                f.push(v);
            }
        }
    }
}

/// A decompressed chunk, shared by the pieces of it handed out; it goes
/// back to the pool when the last piece is dropped.
struct ChunkBuf {
    data: Vec<u8>,
    pool: Arc<BufPool>,
}

impl Drop for ChunkBuf {
    fn drop(&mut self) {
        self.pool.put(std::mem::take(&mut self.data));
    }
}

/// Bytes of one blob out of a decompressed chunk: a view, not a copy (a
/// solid chunk holds thousands of small blobs).
#[derive(Clone)]
pub struct BlobData {
    chunk: Arc<ChunkBuf>,
    start: usize,
    end: usize,
}

impl BlobData {
    /// The address and length of the chunk this piece views (to tell
    /// pieces of one chunk from pieces of another).
    pub(crate) fn chunk_identity(&self) -> (usize, usize) {
        (Arc::as_ptr(&self.chunk) as usize, self.chunk.data.len())
    }
}

impl Deref for BlobData {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.chunk.data.get(self.start..self.end).unwrap_or(&[])
    }
}

struct Piece {
    raw: Vec<u8>,
    usize: u32,
    format: CompressionFormat,
    max_chunk: u32,
}

/// Chunks travel to the workers in batches (like wimlib's messages of up to
/// 16 chunks): one hand-off per batch instead of per 32 KiB chunk keeps the
/// synchronisation cost negligible.
type Job = Vec<Piece>;
type JobResult = Vec<std::result::Result<Vec<u8>, DecompressError>>;

const BATCH_CHUNKS: usize = 16;
/// Batches per decompressing thread submitted and not yet handed out.
const READ_DEPTH: usize = 3;
const BATCH_BYTES: usize = 1 << 20;
/// Decompressed bytes allowed in flight (at least a chunk per thread, so
/// solid resources with 64 MiB chunks still decompress in parallel).
const INFLIGHT_BYTES: u64 = 64 << 20;

/// What [`BlobReader::next_event`] reports.
pub enum BlobEvent {
    /// The next piece of blob `i`.
    Data(usize, BlobData),
    /// Blob `i` is complete. Its SHA-1 is checked on another thread: a
    /// mismatch is reported by a later call, at the latest the one that
    /// would return `None`.
    Done(usize),
}

/// Pulls the contents of a list of blobs, decompressing ahead on worker
/// threads.
pub struct BlobReader<'w> {
    wim: &'w Wim,
    blobs: Vec<&'w BlobEntry>,
    threads: usize,
    /// Worker threads; `None` when nothing is compressed, whose chunks are
    /// only copied: handing them to threads would cost more than it saves.
    pool: Option<OrderedPool<Job, JobResult>>,
    /// Chunks planned and not yet submitted.
    plan: VecDeque<PlannedChunk>,
    /// Next blob to plan.
    next_blob: usize,
    /// Slices of each submitted chunk, in submission order.
    meta: VecDeque<(Vec<Slice>, u32)>,
    /// Results of the batch being handed out.
    ready: VecDeque<std::result::Result<Vec<u8>, DecompressError>>,
    /// Chunks submitted and not yet handed out, and their output bytes.
    outstanding: usize,
    inflight_bytes: u64,
    events: VecDeque<BlobEvent>,
    /// The SHA-1 check, on its own thread.
    hash: HashStage,
    bufs: Arc<BufPool>,
}

impl<'w> BlobReader<'w> {
    pub fn new(wim: &'w Wim, blobs: Vec<&'w BlobEntry>, threads: usize) -> Self {
        let threads = if threads == 0 {
            default_threads()
        } else {
            threads
        };
        let compressed = wim.compression() != CompressionFormat::None
            || wim
                .solid
                .iter()
                .any(|s| s.format != CompressionFormat::None);
        let bufs = Arc::new(BufPool::default());
        let pool = compressed.then(|| {
            OrderedPool::with_depth(threads, READ_DEPTH, || {
                let mut dec = Decoders::default();
                let bufs = Arc::clone(&bufs);
                move |job: Job| -> JobResult {
                    job.into_iter()
                        .map(|p| dec.decode(p.format, p.max_chunk, p.raw, p.usize, &bufs))
                        .collect()
                }
            })
        });
        BlobReader {
            wim,
            blobs,
            threads,
            pool,
            plan: VecDeque::new(),
            next_blob: 0,
            meta: VecDeque::new(),
            ready: VecDeque::new(),
            outstanding: 0,
            inflight_bytes: 0,
            events: VecDeque::new(),
            hash: HashStage::new(),
            bufs,
        }
    }

    pub fn blob(&self, i: usize) -> &'w BlobEntry {
        self.blobs[i]
    }

    /// Submits batches of chunks until the pool is full, the in-flight
    /// byte budget is spent, or everything is submitted.
    fn fill(&mut self) -> Result<()> {
        while !self.pool.as_ref().is_some_and(|p| p.is_full()) {
            let mut batch: Job = Vec::new();
            let mut bytes = 0usize;
            while batch.len() < BATCH_CHUNKS && bytes < BATCH_BYTES {
                if self.plan.is_empty() {
                    if self.next_blob >= self.blobs.len() {
                        break;
                    }
                    let (plan, next) = plan_next(self.wim, &self.blobs, self.next_blob)?;
                    self.plan.extend(plan);
                    self.next_blob = next;
                    continue;
                }
                let Some(c) = self.plan.front() else { break };
                let usz = c.loc.uncompressed_size as u64;
                let budget = INFLIGHT_BYTES.max(self.threads as u64 * usz);
                if self.outstanding + batch.len() > 0 && self.inflight_bytes + usz > budget {
                    break;
                }
                let Some(c) = self.plan.pop_front() else {
                    break;
                };
                let what = BlobName(
                    c.slices
                        .first()
                        .and_then(|s| self.blobs.get(s.blob))
                        .map_or(Sha1Hash::ZERO, |b| b.hash),
                );
                let mut raw = self.bufs.take(c.loc.stored_size as usize);
                read_exact_at(self.wim.part_file(c.part)?, &mut raw, c.loc.offset, &what)?;
                self.wim.count_chunk_read(raw.len() as u64);
                self.meta.push_back((c.slices, c.loc.uncompressed_size));
                self.inflight_bytes += usz;
                bytes += raw.len();
                batch.push(Piece {
                    raw,
                    usize: c.loc.uncompressed_size,
                    format: c.format,
                    max_chunk: c.max_chunk,
                });
            }
            if batch.is_empty() {
                return Ok(());
            }
            self.outstanding += batch.len();
            match self.pool.as_mut() {
                Some(p) => p.submit(batch),
                None => {
                    // Inline: the pieces are the data.
                    self.ready.extend(batch.into_iter().map(|p| Ok(p.raw)));
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// The next event, or `None` when every blob has been delivered.
    pub fn next_event(&mut self) -> Result<Option<BlobEvent>> {
        if let Some(ev) = self.events.pop_front() {
            return Ok(Some(ev));
        }
        self.hash.check()?;
        if self.ready.is_empty() {
            self.fill()?;
            if self.outstanding == 0 {
                // Every blob was handed out: the last ones must be hashed
                // before the caller is told so.
                self.hash.finish()?;
                return Ok(None);
            }
            // Without a pool, fill() put the data straight into `ready`.
            if let Some(pool) = self.pool.as_mut() {
                let Some(batch) = pool.next_result() else {
                    return Err(WimError::InvalidArgument(
                        "a decompressor thread failed".into(),
                    ));
                };
                self.ready.extend(batch);
            }
        }
        let out_of_step = || WimError::InvalidArgument("chunk bookkeeping out of step".into());
        let res = self.ready.pop_front().ok_or_else(out_of_step)?;
        let (slices, usz) = self.meta.pop_front().ok_or_else(out_of_step)?;
        self.outstanding -= 1;
        self.inflight_bytes -= usz as u64;
        let first = slices.first().ok_or_else(out_of_step)?;
        let what = |bi: usize| {
            self.blobs
                .get(bi)
                .map(|e| format!("blob {}", e.hash))
                .unwrap_or_default()
        };
        let data = res.map_err(|err| WimError::Decompress {
            what: what(first.blob),
            source: err,
        })?;
        let len = data.len();
        let chunk = Arc::new(ChunkBuf {
            data,
            pool: Arc::clone(&self.bufs),
        });
        for s in slices {
            let (start, end) = (s.start as usize, s.end as usize);
            if start > end || end > len {
                return Err(out_of_step());
            }
            let piece = BlobData {
                chunk: Arc::clone(&chunk),
                start,
                end,
            };
            self.hash.piece(&piece)?;
            self.events.push_back(BlobEvent::Data(s.blob, piece));
            if s.last {
                let e = self.blobs.get(s.blob).ok_or_else(out_of_step)?;
                self.hash.end(e.hash)?;
                self.events.push_back(BlobEvent::Done(s.blob));
            }
        }
        self.events.pop_front().map(Some).ok_or_else(out_of_step)
    }
}

#[cfg(test)]
mod tests {
    use super::BufPool;

    #[test]
    fn pool_lends_a_buffer_only_to_a_request_of_similar_size() {
        let pool = BufPool::default();
        pool.put(vec![7u8; 4 << 20]);
        // A quarter of the size: a fresh buffer (the large one would keep
        // all its pages resident for a small use).
        let small = pool.take(1 << 20);
        assert_eq!(small.len(), 1 << 20);
        assert!(small.capacity() < 4 << 20);
        // Above half of it: the pooled buffer, its bytes kept (not zeroed).
        let big = pool.take(2500 << 10);
        assert_eq!(big.capacity(), 4 << 20);
        assert_eq!(big.len(), 2500 << 10);
        assert!(big.iter().all(|&b| b == 7));
        // The pool is empty now.
        assert!(pool.take(2500 << 10).iter().all(|&b| b == 0));
        // Buffers up to 1 MiB serve any request (32 KiB chunks reuse the
        // 1 MiB pieces of blobs stored uncompressed).
        pool.put(vec![5u8; 1 << 20]);
        let chunk = pool.take(32 << 10);
        assert_eq!(chunk.capacity(), 1 << 20);
        assert!(chunk.iter().all(|&b| b == 5));
    }
}
