//! `verify`: checks a WIM end to end — the integrity table if there is one,
//! every image's metadata, and the SHA-1 of every blob after decompression.

use crate::error::Result;
use crate::integrity::check_integrity;
use crate::reader::Wim;
use crate::resource::read_resource;

#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    pub images: u32,
    pub blobs: u64,
    pub bytes: u64,
    /// Pieces checked against the integrity table (0 if none).
    pub integrity_chunks: usize,
}

pub fn verify(
    wim: &Wim,
    threads: usize,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<VerifyReport> {
    let mut rep = VerifyReport::default();
    if !wim.header.integrity.is_empty() {
        wim.header
            .integrity
            .validate(wim.file_size(), &"integrity table")?;
        let t = read_resource(
            wim.file(),
            &wim.header.integrity,
            tasq_codecs::CompressionFormat::None,
            0,
            false,
            "integrity table",
        )?;
        let end = wim.header.blob_table.offset_in_wim + wim.header.blob_table.size_in_wim;
        rep.integrity_chunks = check_integrity(wim.file(), &t, end)?;
    }
    for n in 1..=wim.image_count() {
        wim.read_image(n)?;
        rep.images += 1;
    }
    let mut blobs: Vec<_> = wim.blobs.iter().collect();
    blobs.sort_by_key(|b| b.read_order());
    let total: u64 = blobs.iter().map(|b| b.reshdr.uncompressed_size).sum();
    let mut done = 0u64;
    let n = blobs.len();
    let mut reader = crate::extract::BlobReader::new(wim, blobs, threads);
    while let Some(ev) = reader.next_event()? {
        if let crate::extract::BlobEvent::Data(_, d) = ev {
            done += d.len() as u64;
            progress(done, total);
        }
    }
    rep.blobs = n as u64;
    rep.bytes = total;
    Ok(rep)
}
