//! The metadata resource of an image: security data, then the directory
//! entry tree (root dentry, end marker, then each directory's child list
//! in pre-order). Reading rebuilds inodes from hard-link group ids and
//! assigns stream types with the same rules DISM and wimlib use; writing
//! follows DISM's stream layout so Windows setup reads our images.

use crate::hash::{FastMap, FastSet};

use crate::error::{Result, WimError};
use crate::hash::Sha1Hash;
use crate::image::*;
use crate::reshdr::{le16, le32, le64};
use crate::security::{parse_security_data, security_data_len, serialize_security_data};

const DENTRY_FIXED: usize = 102;
const STREAM_FIXED: usize = 38;
const MAX_DEPTH: usize = 16384;

fn align8(x: usize) -> usize {
    (x + 7) & !7
}

struct RawDentry {
    attributes: u32,
    security_id: u32,
    subdir_offset: u64,
    creation_time: u64,
    last_access_time: u64,
    last_write_time: u64,
    main_hash: Sha1Hash,
    unknown_0x54: u32,
    reparse_tag: u32,
    rp_reserved: u16,
    rp_flags: u16,
    link_group: u64,
    name: Vec<u16>,
    short_name: Vec<u16>,
    extra: Vec<u8>,
    /// (name, hash) of the extra stream entries.
    extra_streams: Vec<(Vec<u16>, Sha1Hash)>,
}

fn utf16_at(b: &[u8]) -> Vec<u16> {
    b.chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect()
}

/// Reads the dentry at `*off`; `None` at an end-of-directory marker.
fn read_dentry(buf: &[u8], off: &mut usize, image: u32) -> Result<Option<RawDentry>> {
    let bad = |reason: String| WimError::InvalidMetadata { image, reason };
    let start = *off;
    if start.checked_add(8).is_none_or(|e| e > buf.len()) {
        return Err(bad(format!(
            "directory entry at offset {start} runs past the end of the metadata"
        )));
    }
    let length = align8(le64(&buf[start..]).min(u32::MAX as u64 * 16) as usize);
    if length <= 8 {
        *off = start + 8;
        return Ok(None);
    }
    if length < DENTRY_FIXED || start + length > buf.len() {
        return Err(bad(format!(
            "directory entry at offset {start} has invalid length {length}"
        )));
    }
    let d = &buf[start..start + length];
    let attributes = le32(&d[8..]);
    let short_nb = le16(&d[98..]) as usize;
    let name_nb = le16(&d[100..]) as usize;
    if short_nb % 2 != 0 || name_nb % 2 != 0 {
        return Err(bad(format!(
            "directory entry at offset {start} has an odd name length"
        )));
    }
    let mut need = DENTRY_FIXED;
    if name_nb > 0 {
        need += name_nb + 2;
    }
    if short_nb > 0 {
        need += short_nb + 2;
    }
    if need > length {
        return Err(bad(format!(
            "directory entry at offset {start}: names overrun the entry"
        )));
    }
    let mut p = DENTRY_FIXED;
    let name = utf16_at(&d[p..p + name_nb]);
    if name_nb > 0 {
        p += name_nb + 2;
    }
    let short_name = utf16_at(&d[p..p + short_nb]);
    if short_nb > 0 {
        p += short_nb + 2;
    }
    let p = align8(p).min(length);
    let extra = d[p..length].to_vec();
    let mut main_hash = [0u8; 20];
    main_hash.copy_from_slice(&d[64..84]);
    let is_reparse = attributes & FILE_ATTRIBUTE_REPARSE_POINT != 0;
    let num_extra = le16(&d[96..]) as usize;
    let mut pos = start + length;
    let mut extra_streams = Vec::with_capacity(num_extra.min(64));
    for i in 0..num_extra {
        if pos + STREAM_FIXED > buf.len() {
            return Err(bad(format!(
                "stream entry {i} of entry at offset {start} runs past the end"
            )));
        }
        let s = &buf[pos..];
        let slen = align8(le64(s).min(u32::MAX as u64) as usize);
        if slen < STREAM_FIXED || pos + slen > buf.len() {
            return Err(bad(format!(
                "stream entry {i} of entry at offset {start} has invalid length {slen}"
            )));
        }
        let nb = le16(&s[36..]) as usize;
        if nb % 2 != 0 || STREAM_FIXED + nb > slen {
            return Err(bad(format!(
                "stream entry {i} of entry at offset {start} has a bad name length"
            )));
        }
        let mut h = [0u8; 20];
        h.copy_from_slice(&s[16..36]);
        extra_streams.push((utf16_at(&s[STREAM_FIXED..STREAM_FIXED + nb]), Sha1Hash(h)));
        pos += slen;
    }
    *off = pos;
    Ok(Some(RawDentry {
        attributes,
        security_id: le32(&d[12..]),
        subdir_offset: le64(&d[16..]),
        creation_time: le64(&d[40..]),
        last_access_time: le64(&d[48..]),
        last_write_time: le64(&d[56..]),
        main_hash: Sha1Hash(main_hash),
        unknown_0x54: le32(&d[84..]),
        reparse_tag: if is_reparse { le32(&d[88..]) } else { 0 },
        rp_reserved: if is_reparse { le16(&d[92..]) } else { 0 },
        rp_flags: if is_reparse { le16(&d[94..]) } else { 0 },
        link_group: if is_reparse { 0 } else { le64(&d[88..]) },
        name,
        short_name,
        extra,
        extra_streams,
    }))
}

/// Assigns stream kinds the way DISM/wimlib readers do.
fn build_streams(raw: &RawDentry) -> Vec<Stream> {
    let is_reparse = raw.attributes & FILE_ATTRIBUTE_REPARSE_POINT != 0;
    let encrypted = raw.attributes & FILE_ATTRIBUTE_ENCRYPTED != 0;
    let mut all: Vec<(Vec<u16>, Sha1Hash)> = Vec::with_capacity(1 + raw.extra_streams.len());
    all.push((Vec::new(), raw.main_hash));
    all.extend(raw.extra_streams.iter().cloned());
    let mk = |kind, name: Vec<u16>, hash| Stream {
        kind,
        name,
        hash,
        size: 0,
        source: StreamSource::None,
    };
    // Exact capacity: a parsed image holds one of these per inode, and a
    // growing Vec would reserve room for four streams.
    let mut out = Vec::with_capacity(all.len());
    if encrypted {
        // Only one stream: the raw encrypted data (first non-zero unnamed).
        let h = all
            .iter()
            .find(|(n, h)| n.is_empty() && !h.is_zero())
            .map(|(_, h)| *h)
            .unwrap_or(Sha1Hash::ZERO);
        out.push(mk(StreamKind::EfsRaw, Vec::new(), h));
        return out;
    }
    let mut found_reparse = false;
    let mut found_data = false;
    for (i, (name, hash)) in all.iter().enumerate() {
        if !name.is_empty() {
            out.push(mk(StreamKind::Data, name.clone(), *hash));
        } else if i != 0 || !hash.is_zero() {
            if is_reparse && !found_reparse {
                found_reparse = true;
                out.push(mk(StreamKind::ReparsePoint, Vec::new(), *hash));
            } else if !found_data {
                found_data = true;
                out.push(mk(StreamKind::Data, Vec::new(), *hash));
            }
        }
    }
    if !found_reparse && !found_data {
        let kind = if is_reparse {
            StreamKind::ReparsePoint
        } else {
            StreamKind::Data
        };
        out.push(mk(kind, Vec::new(), Sha1Hash::ZERO));
    }
    // An empty unnamed data stream is represented by its absence.
    out.retain(|s| !(s.is_unnamed_data() && s.hash.is_zero()));
    out.shrink_to_fit();
    out
}

/// Parses a metadata resource (already decompressed and SHA-1-checked).
pub fn parse_metadata(buf: &[u8], image: u32) -> Result<ImageTree> {
    let bad = |reason: String| WimError::InvalidMetadata { image, reason };
    let (security, sd_len) = parse_security_data(buf, image)?;
    let mut off = sd_len;
    let root =
        read_dentry(buf, &mut off, image)?.ok_or_else(|| bad("no root directory entry".into()))?;
    // A directory reparse point has no child list (the writer drops one):
    // a root like that would lose the whole tree on the next rewrite.
    if root.attributes & (FILE_ATTRIBUTE_DIRECTORY | FILE_ATTRIBUTE_REPARSE_POINT)
        != FILE_ATTRIBUTE_DIRECTORY
    {
        return Err(bad(
            "the root entry is not a directory (or is a reparse point)".into(),
        ));
    }
    // Every entry takes at least MIN_DENTRY bytes of the buffer, so this
    // bounds the count (and the reservation by the buffer's size): one
    // allocation instead of vectors doubling through the parse.
    const MIN_DENTRY: usize = 112;
    let bound = buf.len().saturating_sub(sd_len) / MIN_DENTRY + 1;
    let mut tree = ImageTree {
        dentries: Vec::with_capacity(bound),
        inodes: Vec::with_capacity(bound),
        security,
        warnings: Vec::new(),
    };
    // Hard-link groups: id -> inode index.
    let mut groups: FastMap<u64, usize> = FastMap::default();
    let nsd = tree.security.len() as u32;
    let add = |tree: &mut ImageTree,
               raw: &RawDentry,
               parent: usize,
               groups: &mut FastMap<u64, usize>|
     -> usize {
        let is_dir = raw.attributes & FILE_ATTRIBUTE_DIRECTORY != 0;
        let inode_idx = match (raw.link_group, is_dir) {
            (g, false) if g != 0 => *groups.entry(g).or_insert_with(|| {
                tree.inodes.push(make_inode(raw, nsd));
                tree.inodes.len() - 1
            }),
            _ => {
                tree.inodes.push(make_inode(raw, nsd));
                tree.inodes.len() - 1
            }
        };
        tree.dentries.push(Dentry {
            name: raw.name.clone(),
            short_name: raw.short_name.clone(),
            inode: inode_idx,
            parent,
            children: Vec::new(),
        });
        let id = tree.dentries.len() - 1;
        if id != parent {
            tree.dentries[parent].children.push(id);
        }
        id
    };
    let root_id = add(&mut tree, &root, 0, &mut groups);
    tree.dentries[root_id].name.clear();
    tree.dentries[root_id].short_name.clear();
    let mut visited: FastSet<u64> = FastSet::default();
    // (dentry id, subdir offset, depth)
    let mut stack = vec![(root_id, root.subdir_offset, 0usize)];
    while let Some((dir, sub, depth)) = stack.pop() {
        if sub == 0 {
            continue;
        }
        if depth >= MAX_DEPTH {
            return Err(bad("directory tree too deep".into()));
        }
        if !visited.insert(sub) {
            return Err(bad(format!(
                "directory cycle: the children of {} were already read at offset {sub}",
                tree.path_of(dir)
            )));
        }
        if sub as usize >= buf.len() || (sub as usize) < sd_len {
            return Err(bad(format!(
                "child list of {} at invalid offset {sub}",
                tree.path_of(dir)
            )));
        }
        let mut off = sub as usize;
        let mut names: FastSet<Vec<u16>> = FastSet::default();
        while let Some(raw) = read_dentry(buf, &mut off, image)? {
            if raw.name.is_empty() {
                return Err(bad(format!(
                    "an entry in {} has an empty name",
                    tree.path_of(dir)
                )));
            }
            if !names.insert(raw.name.clone()) {
                tree.warnings.push(format!(
                    "ignored duplicate entry {}\\{}",
                    tree.path_of(dir).trim_end_matches('\\'),
                    String::from_utf16_lossy(&raw.name)
                ));
                continue;
            }
            let id = add(&mut tree, &raw, dir, &mut groups);
            if raw.subdir_offset != 0 {
                if raw.attributes & (FILE_ATTRIBUTE_DIRECTORY | FILE_ATTRIBUTE_REPARSE_POINT)
                    == FILE_ATTRIBUTE_DIRECTORY
                {
                    stack.push((id, raw.subdir_offset, depth + 1));
                } else {
                    tree.warnings.push(format!(
                        "ignored children of non-directory {}",
                        tree.path_of(id)
                    ));
                }
            }
        }
    }
    // The tree lives through a whole apply.
    tree.shrink_to_fit();
    Ok(tree)
}

fn make_inode(raw: &RawDentry, nsd: u32) -> Inode {
    Inode {
        attributes: raw.attributes,
        security_id: if raw.security_id < nsd {
            Some(raw.security_id)
        } else {
            None
        },
        creation_time: raw.creation_time,
        last_access_time: raw.last_access_time,
        last_write_time: raw.last_write_time,
        unknown_0x54: raw.unknown_0x54,
        reparse_tag: raw.reparse_tag,
        rp_reserved: raw.rp_reserved,
        rp_flags: raw.rp_flags,
        streams: build_streams(raw),
        extra: raw.extra.clone(),
    }
}

/// The stream entries to write for an inode: (main_hash, extra entries).
fn layout_streams(inode: &Inode) -> (Sha1Hash, Vec<(Vec<u16>, Sha1Hash)>) {
    let find = |k: StreamKind| {
        inode
            .streams
            .iter()
            .find(|s| s.kind == k && s.name.is_empty())
            .map(|s| s.hash)
            .unwrap_or(Sha1Hash::ZERO)
    };
    let mut unnamed = Vec::new();
    let mut named = Vec::new();
    if inode.attributes & FILE_ATTRIBUTE_ENCRYPTED != 0 {
        unnamed.push(find(StreamKind::EfsRaw));
    } else {
        if inode.is_reparse_point() {
            unnamed.push(find(StreamKind::ReparsePoint));
        }
        if !inode.is_directory() {
            unnamed.push(find(StreamKind::Data));
        }
        for s in &inode.streams {
            if s.kind == StreamKind::Data && !s.name.is_empty() {
                named.push((s.name.clone(), s.hash));
            }
        }
    }
    if unnamed.len() <= 1 && named.is_empty() {
        return (
            unnamed.first().copied().unwrap_or(Sha1Hash::ZERO),
            Vec::new(),
        );
    }
    let mut extra: Vec<(Vec<u16>, Sha1Hash)> =
        unnamed.into_iter().map(|h| (Vec::new(), h)).collect();
    extra.extend(named);
    (Sha1Hash::ZERO, extra)
}

fn dentry_len(d: &Dentry, inode: &Inode) -> usize {
    let mut len = DENTRY_FIXED;
    if !d.name.is_empty() {
        len += d.name.len() * 2 + 2;
    }
    if !d.short_name.is_empty() {
        len += d.short_name.len() * 2 + 2;
    }
    len = align8(len);
    len += align8(inode.extra.len());
    len
}

fn stream_entries_len(extra: &[(Vec<u16>, Sha1Hash)]) -> usize {
    extra
        .iter()
        .map(|(n, _)| align8(STREAM_FIXED + if n.is_empty() { 0 } else { n.len() * 2 + 2 }))
        .sum()
}

fn put_u16s(out: &mut Vec<u8>, s: &[u16]) {
    for c in s {
        out.extend_from_slice(&c.to_le_bytes());
    }
}

fn write_dentry(out: &mut Vec<u8>, d: &Dentry, inode: &Inode, subdir_offset: u64, link_id: u64) {
    let start = out.len();
    let (main_hash, extra) = layout_streams(inode);
    let len = dentry_len(d, inode);
    out.extend_from_slice(&(len as u64).to_le_bytes());
    out.extend_from_slice(&inode.attributes.to_le_bytes());
    out.extend_from_slice(
        &inode
            .security_id
            .map(|x| x as i32)
            .unwrap_or(-1)
            .to_le_bytes(),
    );
    out.extend_from_slice(&subdir_offset.to_le_bytes());
    out.extend_from_slice(&[0u8; 16]);
    out.extend_from_slice(&inode.creation_time.to_le_bytes());
    out.extend_from_slice(&inode.last_access_time.to_le_bytes());
    out.extend_from_slice(&inode.last_write_time.to_le_bytes());
    out.extend_from_slice(&main_hash.0);
    out.extend_from_slice(&inode.unknown_0x54.to_le_bytes());
    if inode.is_reparse_point() {
        out.extend_from_slice(&inode.reparse_tag.to_le_bytes());
        out.extend_from_slice(&inode.rp_reserved.to_le_bytes());
        out.extend_from_slice(&inode.rp_flags.to_le_bytes());
    } else {
        out.extend_from_slice(&link_id.to_le_bytes());
    }
    out.extend_from_slice(&(extra.len() as u16).to_le_bytes());
    out.extend_from_slice(&((d.short_name.len() * 2) as u16).to_le_bytes());
    out.extend_from_slice(&((d.name.len() * 2) as u16).to_le_bytes());
    if !d.name.is_empty() {
        put_u16s(out, &d.name);
        out.extend_from_slice(&[0, 0]);
    }
    if !d.short_name.is_empty() {
        put_u16s(out, &d.short_name);
        out.extend_from_slice(&[0, 0]);
    }
    out.resize(start + align8(out.len() - start), 0);
    if !inode.extra.is_empty() {
        out.extend_from_slice(&inode.extra);
        out.resize(start + align8(out.len() - start), 0);
    }
    debug_assert_eq!(out.len() - start, len);
    for (name, hash) in &extra {
        let s = out.len();
        let slen = align8(
            STREAM_FIXED
                + if name.is_empty() {
                    0
                } else {
                    name.len() * 2 + 2
                },
        );
        out.extend_from_slice(&(slen as u64).to_le_bytes());
        out.extend_from_slice(&[0u8; 8]);
        out.extend_from_slice(&hash.0);
        out.extend_from_slice(&((name.len() * 2) as u16).to_le_bytes());
        if !name.is_empty() {
            put_u16s(out, name);
            out.extend_from_slice(&[0, 0]);
        }
        out.resize(s + slen, 0);
    }
}

/// Where each directory's child list goes in an image's metadata resource,
/// and the resource's size: worked out before a byte is written, so that
/// the resource can be written in pieces instead of built whole in memory
/// (8.5 MiB for /usr/share's 51,000 entries, tens of MiB for Windows).
pub struct MetadataLayout {
    /// Plain directories, in the order their child lists are written.
    dirs: Vec<usize>,
    /// Offset of each dentry's child list (0 for none).
    subdir: Vec<u64>,
    size: u64,
}

impl MetadataLayout {
    pub fn of(tree: &ImageTree) -> MetadataLayout {
        let full_len = |d: usize| {
            let de = &tree.dentries[d];
            let inode = &tree.inodes[de.inode];
            (dentry_len(de, inode) + stream_entries_len(&layout_streams(inode).1)) as u64
        };
        // Directory order: pre-order; each directory's child list is placed
        // in that order after the root entry and its end marker.
        let dirs: Vec<usize> = tree
            .preorder()
            .into_iter()
            .filter(|&d| tree.inode_of(d).is_plain_directory())
            .collect();
        let mut subdir = vec![0u64; tree.dentries.len()];
        let mut pos = security_data_len(&tree.security) as u64 + full_len(ImageTree::ROOT) + 8;
        for &d in &dirs {
            subdir[d] = pos;
            // The list's length does not depend on its order.
            pos += tree.dentries[d]
                .children
                .iter()
                .map(|&k| full_len(k))
                .sum::<u64>()
                + 8;
        }
        MetadataLayout {
            dirs,
            subdir,
            size: pos,
        }
    }

    /// The resource's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Writes the resource to `sink` in pieces of at least `piece` bytes
    /// (the last may be shorter). `tree` must be the tree the layout was
    /// made of.
    pub fn write<E>(
        &self,
        tree: &ImageTree,
        piece: usize,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut buf = Vec::with_capacity(piece.saturating_add(4096).min(1 << 20));
        self.emit(tree, &mut buf, piece, &mut |b: &mut Vec<u8>| {
            sink(b)?;
            b.clear();
            Ok(())
        })
    }

    /// Appends the resource to `out`, calling `flush` whenever `out` holds
    /// `piece` bytes or more, and at the end; `flush` may take the bytes
    /// out (the offsets count what it took).
    fn emit<E>(
        &self,
        tree: &ImageTree,
        out: &mut Vec<u8>,
        piece: usize,
        flush: &mut dyn FnMut(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<(), E> {
        let links = tree.link_counts();
        let link_id = |inode: usize| -> u64 {
            if links[inode] > 1 && !tree.inodes[inode].is_directory() {
                inode as u64 + 1
            } else {
                0
            }
        };
        // Bytes taken out by `flush` so far.
        let mut taken = 0u64;
        let mut flush_if_full = |out: &mut Vec<u8>, taken: &mut u64| -> Result<(), E> {
            if out.len() >= piece {
                let len = out.len() as u64;
                flush(out)?;
                *taken += len - out.len() as u64;
            }
            Ok(())
        };
        serialize_security_data(&tree.security, out);
        let root = &tree.dentries[ImageTree::ROOT];
        write_dentry(
            out,
            root,
            &tree.inodes[root.inode],
            self.subdir[ImageTree::ROOT],
            0,
        );
        out.extend_from_slice(&[0u8; 8]);
        flush_if_full(out, &mut taken)?;
        for &d in &self.dirs {
            debug_assert_eq!(taken + out.len() as u64, self.subdir[d]);
            for k in tree.sorted_children(d) {
                let de = &tree.dentries[k];
                write_dentry(
                    out,
                    de,
                    &tree.inodes[de.inode],
                    self.subdir[k],
                    link_id(de.inode),
                );
                flush_if_full(out, &mut taken)?;
            }
            out.extend_from_slice(&[0u8; 8]);
        }
        debug_assert_eq!(taken + out.len() as u64, self.size);
        flush(out)
    }
}

/// Serialises an image into a metadata resource, whole (see
/// [`MetadataLayout::write`] to write it in pieces).
pub fn serialize_metadata(tree: &ImageTree) -> Vec<u8> {
    let layout = MetadataLayout::of(tree);
    // One allocation, not a doubling buffer.
    let mut out = Vec::with_capacity(usize::try_from(layout.size).unwrap_or(0));
    let done: Result<(), std::convert::Infallible> =
        layout.emit(tree, &mut out, usize::MAX, &mut |_| Ok(()));
    match done {
        Ok(()) => out,
        Err(never) => match never {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data_stream(name: &str, b: u8, size: u64) -> Stream {
        Stream {
            kind: StreamKind::Data,
            name: utf16(name),
            hash: Sha1Hash([b; 20]),
            size,
            source: StreamSource::None,
        }
    }

    pub(crate) fn sample_tree() -> ImageTree {
        let mut t = ImageTree::new();
        t.security = vec![vec![
            1, 0, 4, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ]];
        t.root_inode_mut().security_id = Some(0);
        let dir = t.add_inode(Inode {
            attributes: FILE_ATTRIBUTE_DIRECTORY,
            creation_time: 5,
            ..Inode::default()
        });
        let file = t.add_inode(Inode {
            attributes: FILE_ATTRIBUTE_NORMAL,
            last_write_time: 123456789,
            streams: vec![data_stream("", 1, 10)],
            ..Inode::default()
        });
        let ads = t.add_inode(Inode {
            attributes: FILE_ATTRIBUTE_ARCHIVE,
            streams: vec![data_stream("", 2, 5), data_stream("zone", 3, 7)],
            ..Inode::default()
        });
        let link = t.add_inode(Inode {
            attributes: FILE_ATTRIBUTE_REPARSE_POINT,
            reparse_tag: IO_REPARSE_TAG_SYMLINK,
            rp_flags: WIM_RP_FLAG_NOT_FIXED,
            streams: vec![Stream {
                kind: StreamKind::ReparsePoint,
                name: vec![],
                hash: Sha1Hash([4; 20]),
                size: 30,
                source: StreamSource::None,
            }],
            ..Inode::default()
        });
        let empty = t.add_inode(Inode {
            attributes: FILE_ATTRIBUTE_NORMAL,
            ..Inode::default()
        });
        let d = t.add_dentry(0, utf16("Windows"), utf16("WINDOWS"), dir);
        t.add_dentry(d, utf16("notepad.exe"), vec![], file);
        t.add_dentry(
            0,
            utf16("hard-link-to-notepad.exe"),
            utf16("HARD-L~1.EXE"),
            file,
        );
        t.add_dentry(d, utf16("ads.txt"), vec![], ads);
        t.add_dentry(0, utf16("link"), vec![], link);
        t.add_dentry(d, utf16("empty"), vec![], empty);
        let sub = t.add_inode(Inode {
            attributes: FILE_ATTRIBUTE_DIRECTORY,
            ..Inode::default()
        });
        t.add_dentry(d, utf16("System32"), vec![], sub);
        t
    }

    /// Trees compare equal up to dentry/inode numbering and sizes.
    fn canonical(t: &ImageTree) -> Vec<String> {
        let links = t.link_counts();
        t.preorder()
            .into_iter()
            .map(|d| {
                let de = &t.dentries[d];
                let i = &t.inodes[de.inode];
                let streams: Vec<String> = i.streams.iter().map(|s| format!("{:?}:{}:{}", s.kind, s.name_string(), s.hash)).collect();
                format!(
                    "{} short={} attr={:x} sd={:?} t={},{},{} rp={:x}/{} links={} streams={:?} extra={:?}",
                    t.path_of(d),
                    String::from_utf16_lossy(&de.short_name),
                    i.attributes,
                    i.security_id,
                    i.creation_time,
                    i.last_access_time,
                    i.last_write_time,
                    i.reparse_tag,
                    i.rp_flags,
                    links[de.inode],
                    streams,
                    i.extra
                )
            })
            .collect()
    }

    #[test]
    fn round_trip() {
        let t = sample_tree();
        let bytes = serialize_metadata(&t);
        let back = parse_metadata(&bytes, 1).unwrap();
        assert_eq!(canonical(&back), canonical(&t));
        assert_eq!(back.security, t.security);
        // Once normalised (inode numbering), serialising is a fixed point.
        let again = serialize_metadata(&back);
        assert_eq!(again.len(), bytes.len());
        assert_eq!(
            serialize_metadata(&parse_metadata(&again, 1).unwrap()),
            again
        );
    }

    #[test]
    fn truncated_or_garbage_metadata_is_an_error() {
        let bytes = serialize_metadata(&sample_tree());
        for cut in [0, 5, 8, 40, 100, bytes.len() / 2, bytes.len() - 1] {
            assert!(parse_metadata(&bytes[..cut], 1).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn cycle_is_detected() {
        let mut t = ImageTree::new();
        let dir = t.add_inode(Inode {
            attributes: FILE_ATTRIBUTE_DIRECTORY,
            ..Inode::default()
        });
        t.add_dentry(0, utf16("a"), vec![], dir);
        let mut bytes = serialize_metadata(&t);
        // Point the child directory's subdir offset back at the root's child list.
        let root_list = le64(&bytes[8 + 16..]) as usize;
        let child_off = root_list;
        let root_sub = bytes[8 + 16..8 + 24].to_vec();
        bytes[child_off + 16..child_off + 24].copy_from_slice(&root_sub);
        let err = parse_metadata(&bytes, 3).unwrap_err().to_string();
        assert!(err.contains("cycle"), "{err}");
        assert!(err.contains("image 3"), "{err}");
    }

    #[test]
    fn duplicate_names_keep_the_first() {
        let mut t = ImageTree::new();
        let a = t.add_inode(Inode {
            attributes: FILE_ATTRIBUTE_NORMAL,
            creation_time: 1,
            ..Inode::default()
        });
        let b = t.add_inode(Inode {
            attributes: FILE_ATTRIBUTE_NORMAL,
            creation_time: 2,
            ..Inode::default()
        });
        t.add_dentry(0, utf16("x"), vec![], a);
        t.add_dentry(0, utf16("x"), vec![], b);
        let back = parse_metadata(&serialize_metadata(&t), 1).unwrap();
        assert_eq!(back.dentries.len(), 2);
        assert_eq!(back.warnings.len(), 1);
    }

    /// A tree of `spec.len()` entries: entry `i` goes under an earlier
    /// directory picked by `spec[i].0`, is a directory when `spec[i].1`,
    /// and has a name that sorts differently from the insertion order.
    fn tree_of(spec: &[(usize, bool)]) -> ImageTree {
        let mut t = sample_tree();
        let mut dirs = vec![ImageTree::ROOT];
        for (i, &(pick, is_dir)) in spec.iter().enumerate() {
            let parent = dirs[pick % dirs.len()];
            let inode = t.add_inode(Inode {
                attributes: if is_dir {
                    FILE_ATTRIBUTE_DIRECTORY
                } else {
                    FILE_ATTRIBUTE_NORMAL
                },
                streams: if is_dir {
                    vec![]
                } else {
                    vec![data_stream("", (i % 255) as u8 + 1, i as u64 + 1)]
                },
                ..Inode::default()
            });
            let name = format!("{}-{i}", (b'z' - (i % 26) as u8) as char);
            let d = t.add_dentry(parent, utf16(&name), vec![], inode);
            if is_dir {
                dirs.push(d);
            }
        }
        t
    }

    /// Writes `t` through [`MetadataLayout::write`] in pieces of `piece`
    /// bytes; checks every piece but the last is at least that long.
    fn written_in_pieces(t: &ImageTree, piece: usize) -> Vec<u8> {
        let layout = MetadataLayout::of(t);
        let mut pieces: Vec<Vec<u8>> = Vec::new();
        let done: std::result::Result<(), ()> = layout.write(t, piece, &mut |p| {
            pieces.push(p.to_vec());
            Ok(())
        });
        done.unwrap();
        if let Some((_, rest)) = pieces.split_last() {
            assert!(rest.iter().all(|p| p.len() >= piece));
        }
        let all = pieces.concat();
        assert_eq!(all.len() as u64, layout.size());
        all
    }

    #[test]
    fn written_in_pieces_equals_written_whole() {
        let spec: Vec<(usize, bool)> = (0..400).map(|i| (i * 7 + i / 3, i % 5 == 0)).collect();
        let t = tree_of(&spec);
        let whole = serialize_metadata(&t);
        assert_eq!(
            canonical(&parse_metadata(&whole, 1).unwrap()),
            canonical(&t)
        );
        for piece in [1, 7, 100, 4096, 1 << 20, usize::MAX] {
            assert_eq!(written_in_pieces(&t, piece), whole, "piece {piece}");
        }
    }

    #[test]
    fn a_failing_sink_stops_the_write() {
        let t = tree_of(&[(0, true), (1, false), (0, false)]);
        let layout = MetadataLayout::of(&t);
        let mut calls = 0;
        let err = layout
            .write(&t, 8, &mut |_| {
                calls += 1;
                if calls == 2 {
                    Err("disk full")
                } else {
                    Ok(())
                }
            })
            .unwrap_err();
        assert_eq!((err, calls), ("disk full", 2));
    }

    proptest::proptest! {
        #[test]
        fn garbage_never_panics(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2000)) {
            let _ = parse_metadata(&data, 1);
        }

        #[test]
        fn any_tree_written_in_pieces_parses_back(
            spec in proptest::collection::vec((0usize..64, proptest::prelude::any::<bool>()), 0..120),
            piece in 1usize..3000,
        ) {
            let t = tree_of(&spec);
            let bytes = written_in_pieces(&t, piece);
            proptest::prop_assert_eq!(&bytes, &serialize_metadata(&t));
            proptest::prop_assert_eq!(canonical(&parse_metadata(&bytes, 1).unwrap()), canonical(&t));
        }

        #[test]
        fn mutated_metadata_never_panics(pos in 0usize..1000, val: u8) {
            let mut bytes = serialize_metadata(&sample_tree());
            let p = pos % bytes.len();
            bytes[p] = val;
            let _ = parse_metadata(&bytes, 1);
        }
    }
}
