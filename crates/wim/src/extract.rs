//! Reading many blobs fast: blobs are visited in the order they lie in the
//! file, each resource's raw chunks are read once, sequentially, and
//! decompressed on every core through an [`OrderedPool`]; the caller pulls
//! each blob's bytes in order, and every blob's SHA-1 is checked.

use std::collections::VecDeque;

use tasq_codecs::{new_decompressor, DecompressError};

use crate::blob_table::BlobEntry;
use crate::error::{Result, WimError};
use crate::hash::Sha1Hasher;
use crate::pool::{default_threads, OrderedPool};
use crate::reader::Wim;
use crate::resource::{chunk_locations, read_exact_at, ChunkLoc};

struct Piece {
    raw: Vec<u8>,
    usize: u32,
    compressed: bool,
}

/// Chunks travel to the workers in batches (like wimlib's messages of up to
/// 16 chunks): one hand-off per batch instead of per 32 KiB chunk keeps the
/// synchronisation cost negligible.
type Job = Vec<Piece>;
type JobResult = Vec<std::result::Result<Vec<u8>, DecompressError>>;

const BATCH_CHUNKS: usize = 16;
const BATCH_BYTES: usize = 1 << 20;

/// What [`BlobReader::next_event`] reports.
pub enum BlobEvent {
    /// The next piece of blob `i`.
    Data(usize, Vec<u8>),
    /// Blob `i` is complete and its SHA-1 verified.
    Done(usize),
}

/// Pulls the contents of a list of blobs, decompressing ahead on worker
/// threads.
pub struct BlobReader<'w> {
    wim: &'w Wim,
    blobs: Vec<&'w BlobEntry>,
    /// Worker threads; `None` for an uncompressed WIM, whose chunks are
    /// only copied: handing them to threads would cost more than it saves.
    pool: Option<OrderedPool<Job, JobResult>>,
    meta: VecDeque<(usize, bool)>,
    hasher: Option<Sha1Hasher>,
    /// Next blob / chunk to submit.
    next_blob: usize,
    chunks: Vec<ChunkLoc>,
    next_chunk: usize,
    pending_done: Option<usize>,
    /// Results of the batch being handed out.
    ready: VecDeque<std::result::Result<Vec<u8>, DecompressError>>,
    /// Chunks submitted and not yet handed out.
    outstanding: usize,
}

impl<'w> BlobReader<'w> {
    pub fn new(wim: &'w Wim, blobs: Vec<&'w BlobEntry>, threads: usize) -> Self {
        let threads = if threads == 0 {
            default_threads()
        } else {
            threads
        };
        let format = wim.compression();
        let cs = (wim.header.chunk_size as usize).max(1);
        let pool = (format != tasq_codecs::CompressionFormat::None).then(|| {
            OrderedPool::new(threads, || {
                let mut dec = new_decompressor(format, cs);
                move |job: Job| -> JobResult {
                    job.into_iter()
                        .map(|p| {
                            if !p.compressed || p.raw.len() == p.usize as usize {
                                return Ok(p.raw);
                            }
                            let mut out = vec![0u8; p.usize as usize];
                            match dec.as_mut() {
                                Some(d) => d.decompress(&p.raw, &mut out).map(|_| out),
                                None => Err(DecompressError::Corrupt {
                                    format,
                                    reason: "no decompressor for this format",
                                }),
                            }
                        })
                        .collect()
                }
            })
        });
        BlobReader {
            wim,
            blobs,
            pool,
            meta: VecDeque::new(),
            hasher: None,
            next_blob: 0,
            chunks: Vec::new(),
            next_chunk: 0,
            pending_done: None,
            ready: VecDeque::new(),
            outstanding: 0,
        }
    }

    pub fn blob(&self, i: usize) -> &'w BlobEntry {
        self.blobs[i]
    }

    /// Submits batches of chunks until the pool is full or everything is
    /// submitted.
    fn fill(&mut self) -> Result<()> {
        while !self.pool.as_ref().is_some_and(|p| p.is_full()) {
            let mut batch: Job = Vec::new();
            let mut bytes = 0usize;
            while batch.len() < BATCH_CHUNKS && bytes < BATCH_BYTES {
                if self.next_chunk >= self.chunks.len() {
                    if self.next_blob >= self.blobs.len() {
                        break;
                    }
                    let e = self.blobs[self.next_blob];
                    let what = format!("blob {}", e.hash);
                    let rh = &e.reshdr;
                    self.chunks = if rh.is_compressed() {
                        chunk_locations(self.wim.file(), rh, self.wim.header.chunk_size, &what)?
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
                    if self.chunks.is_empty() {
                        return Err(WimError::resource(
                            what,
                            "empty resource for a non-empty blob",
                        ));
                    }
                    self.next_chunk = 0;
                    self.next_blob += 1;
                }
                let bi = self.next_blob - 1;
                let e = self.blobs[bi];
                let c = self.chunks[self.next_chunk];
                let mut raw = vec![0u8; c.stored_size as usize];
                read_exact_at(
                    self.wim.file(),
                    &mut raw,
                    c.offset,
                    &format!("blob {}", e.hash),
                )?;
                self.next_chunk += 1;
                self.meta
                    .push_back((bi, self.next_chunk == self.chunks.len()));
                bytes += raw.len();
                batch.push(Piece {
                    raw,
                    usize: c.uncompressed_size,
                    compressed: e.reshdr.is_compressed(),
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
        if let Some(bi) = self.pending_done.take() {
            return Ok(Some(BlobEvent::Done(bi)));
        }
        if self.ready.is_empty() {
            self.fill()?;
            if self.outstanding == 0 {
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
        let Some(res) = self.ready.pop_front() else {
            return Err(WimError::InvalidArgument(
                "chunk bookkeeping out of step".into(),
            ));
        };
        self.outstanding -= 1;
        let Some((bi, last)) = self.meta.pop_front() else {
            return Err(WimError::InvalidArgument(
                "chunk bookkeeping out of step".into(),
            ));
        };
        let e = self.blobs[bi];
        let data = res.map_err(|err| WimError::Decompress {
            what: format!("blob {}", e.hash),
            source: err,
        })?;
        self.hasher
            .get_or_insert_with(Sha1Hasher::new)
            .update(&data);
        if last {
            let h = self.hasher.take().unwrap_or_default().finish();
            if h != e.hash {
                return Err(WimError::HashMismatch {
                    what: format!("blob {}", e.hash),
                    expected: e.hash.to_string(),
                    actual: h.to_string(),
                });
            }
            self.pending_done = Some(bi);
        }
        Ok(Some(BlobEvent::Data(bi, data)))
    }
}
