//! The apply seam: an [`ApplyTarget`] receives an image, entry by entry, and
//! materialises it on some file system. The order of calls is fixed:
//!
//! 1. `create_directory` for every directory, parents first (the root,
//!    with an empty path, first of all);
//! 2. `create_file` for the first name of every non-directory inode and
//!    `create_hard_link` for its other names;
//! 3. for every data stream with content, in the order blobs lie in the
//!    WIM: `begin_stream`, `write_stream` with the bytes in order,
//!    `end_stream`; an empty named stream gets `begin_stream` and
//!    `end_stream` only; at most one stream is open at a time;
//! 4. `set_reparse_point` for reparse-point inodes;
//! 5. `set_metadata` for every entry, children before parents (so that
//!    directory times survive the creation of their contents);
//! 6. `finish`.
//!
//! Names are checked before any call: a target never sees `..`, `.`, an
//! empty name, a separator or a NUL in a component.

use std::fmt;
use std::path::PathBuf;

use crate::error::Result;
use crate::image::{Inode, Stream};

/// A validated path inside an image: components without separators.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct WimPath {
    comps: Vec<String>,
}

impl WimPath {
    pub fn root() -> WimPath {
        WimPath { comps: Vec::new() }
    }

    /// Builds a path from components, refusing any that could escape the
    /// target: empty, `.`, `..`, containing `/`, `\` or NUL.
    pub fn from_components<I, S>(comps: I) -> std::result::Result<WimPath, String>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut out = Vec::new();
        for c in comps {
            let c = c.into();
            check_component(&c)?;
            out.push(c);
        }
        Ok(WimPath { comps: out })
    }

    pub fn child(&self, name: &str) -> std::result::Result<WimPath, String> {
        self.child_in(name, false)
    }

    /// As [`child`](Self::child); with `backslash_ok` a `\` in the name is
    /// an ordinary character (a Linux directory target, where it cannot
    /// separate anything — wimlib extracts such names there too).
    pub fn child_in(&self, name: &str, backslash_ok: bool) -> std::result::Result<WimPath, String> {
        if backslash_ok {
            check_component(&name.replace('\\', "_"))?;
        } else {
            check_component(name)?;
        }
        let mut comps = self.comps.clone();
        comps.push(name.to_string());
        Ok(WimPath { comps })
    }

    pub fn components(&self) -> &[String] {
        &self.comps
    }

    pub fn is_root(&self) -> bool {
        self.comps.is_empty()
    }

    pub fn file_name(&self) -> Option<&str> {
        self.comps.last().map(|s| s.as_str())
    }

    /// The path relative to a target directory.
    pub fn to_relative_path(&self) -> PathBuf {
        self.comps.iter().collect()
    }
}

impl fmt::Display for WimPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.comps.is_empty() {
            return f.write_str("\\");
        }
        for c in &self.comps {
            write!(f, "\\{c}")?;
        }
        Ok(())
    }
}

/// Why a name cannot be applied, or Ok.
pub fn check_component(c: &str) -> std::result::Result<(), String> {
    if c.is_empty() {
        return Err("empty file name".into());
    }
    if c == "." || c == ".." {
        return Err(format!("file name {c:?} would escape the target"));
    }
    if c.contains(['/', '\\']) {
        return Err(format!("file name {c:?} contains a path separator"));
    }
    if c.contains('\0') {
        return Err(format!("file name {c:?} contains a NUL character"));
    }
    Ok(())
}

/// What a target is told about one entry.
#[derive(Debug, Clone, Copy)]
pub struct ApplyEntry<'a> {
    pub path: &'a WimPath,
    pub inode: &'a Inode,
    /// UTF-16 DOS name, empty if none.
    pub short_name: &'a [u16],
    /// The inode's security descriptor, if it has one.
    pub security_descriptor: Option<&'a [u8]>,
}

/// A file system that an image can be applied to.
pub trait ApplyTarget {
    /// What is being written, for messages ("directory /mnt/x").
    fn describe(&self) -> String;

    /// Whether `\` is an ordinary character in this target's file names
    /// (true for a Linux directory; on NTFS and FAT it separates paths, so
    /// a name holding one is refused).
    fn backslash_is_ordinary(&self) -> bool {
        false
    }

    /// The absolute host path of the target's root, for reparse-point
    /// fixups (absolute links stored relative to the image root are
    /// re-rooted there). `None`: no fixups (a volume of its own).
    fn link_root(&self) -> Option<String> {
        None
    }

    fn create_directory(&mut self, entry: &ApplyEntry) -> Result<()>;

    /// Creates the first name of a non-directory inode (a reparse-point
    /// inode may be created here or in `set_reparse_point`, as the file
    /// system requires).
    fn create_file(&mut self, entry: &ApplyEntry) -> Result<()>;

    /// Adds `entry.path` as another name of the file created at `existing`.
    fn create_hard_link(&mut self, existing: &WimPath, entry: &ApplyEntry) -> Result<()>;

    /// Opens a data stream of a created file for writing `stream.size` bytes.
    fn begin_stream(&mut self, path: &WimPath, stream: &Stream) -> Result<()>;

    /// Appends bytes to the stream opened by `begin_stream`.
    fn write_stream(&mut self, data: &[u8]) -> Result<()>;

    /// Closes the stream opened by `begin_stream`.
    fn end_stream(&mut self) -> Result<()>;

    /// Sets the reparse data (without the 8-byte header) of an entry.
    fn set_reparse_point(&mut self, entry: &ApplyEntry, data: &[u8]) -> Result<()>;

    /// Sets attributes, times, security descriptor and short name.
    fn set_metadata(&mut self, entry: &ApplyEntry) -> Result<()>;

    /// Called once at the end.
    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_components_are_refused() {
        for bad in ["", ".", "..", "a/b", "a\\b", "nul\0x"] {
            assert!(check_component(bad).is_err(), "{bad:?}");
            assert!(WimPath::from_components([bad]).is_err());
        }
        let p = WimPath::from_components(["Windows", "System32"]).unwrap();
        assert_eq!(p.to_string(), "\\Windows\\System32");
        assert_eq!(p.to_relative_path(), PathBuf::from("Windows/System32"));
        assert_eq!(WimPath::root().to_string(), "\\");
    }
}

/// Options of [`apply_image`].
#[derive(Debug, Clone, Default)]
pub struct ApplyOptions {
    /// Decompression threads; 0 = one per core.
    pub threads: usize,
    /// Reparse-point fixups (wimlib's `--rpfix`/`--norpfix`): `None`
    /// follows the WIM header's RP_FIX flag, as wimlib does.
    pub rpfix: Option<bool>,
}

/// Progress of an apply.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApplyProgress {
    pub bytes_done: u64,
    pub bytes_total: u64,
    pub entries_done: u64,
    pub entries_total: u64,
}

/// Applies image `n` (1-based) of `wim` to `target`.
///
/// Everything that can be checked is checked before the target is touched:
/// the metadata (SHA-1, structure), every name (no `..`, separators, NUL,
/// names that are not valid UTF-16) and the presence of every blob.
pub fn apply_image(
    wim: &crate::reader::Wim,
    n: u32,
    target: &mut dyn ApplyTarget,
    opts: &ApplyOptions,
    progress: &mut dyn FnMut(ApplyProgress),
) -> Result<()> {
    apply_paths(wim, n, &[], target, opts, progress)
}

/// Extracts the given paths of image `n` (files or directories, `\` or `/`
/// separated) into the target: each lands at the target's top level under
/// its own name, directories with their contents. An empty list means the
/// whole image, applied onto the target's root.
pub fn apply_paths(
    wim: &crate::reader::Wim,
    n: u32,
    select: &[String],
    target: &mut dyn ApplyTarget,
    opts: &ApplyOptions,
    progress: &mut dyn FnMut(ApplyProgress),
) -> Result<()> {
    use crate::error::WimError;
    use crate::image::{ImageTree, StreamKind};
    use std::collections::HashMap;

    let tree = wim.read_image(n)?;
    let bs_ok = target.backslash_is_ordinary();
    // Which entries, and their paths in the target (validated).
    let whole = select.is_empty();
    let mut roots = Vec::new();
    for p in select {
        let d = tree
            .find(p)
            .ok_or_else(|| WimError::InvalidArgument(format!("no path {p:?} in image {n}")))?;
        roots.push(d);
    }
    let mut included = vec![whole; tree.dentries.len()];
    let mut paths: Vec<WimPath> = vec![WimPath::root(); tree.dentries.len()];
    let full_order = tree.preorder();
    let name_of = |d: usize| -> Result<String> {
        String::from_utf16(&tree.dentries[d].name).map_err(|_| WimError::UnsafeName {
            image: n,
            path: tree.path_of(d),
            reason: "name is not valid UTF-16".into(),
        })
    };
    for &r in &roots {
        included[r] = true;
        if r != ImageTree::ROOT {
            paths[r] = WimPath::root()
                .child_in(&name_of(r)?, bs_ok)
                .map_err(|reason| WimError::UnsafeName {
                    image: n,
                    path: tree.path_of(r),
                    reason,
                })?;
        }
    }
    for &d in full_order.iter().skip(1) {
        let de = &tree.dentries[d];
        if roots.contains(&d) {
            continue;
        }
        if !included[de.parent] {
            continue;
        }
        included[d] = true;
        let name = name_of(d)?;
        paths[d] =
            paths[de.parent]
                .child_in(&name, bs_ok)
                .map_err(|reason| WimError::UnsafeName {
                    image: n,
                    path: tree.path_of(d),
                    reason,
                })?;
    }
    // The target's own root is only given the image root's metadata when
    // the whole image is applied.
    let order: Vec<usize> = full_order
        .into_iter()
        .filter(|&d| {
            included[d] && (whole || d != ImageTree::ROOT || roots.contains(&ImageTree::ROOT))
        })
        .collect();
    // Every blob present?
    let mut total_bytes = 0u64;
    let mut inode_included = vec![false; tree.inodes.len()];
    for &d in &order {
        inode_included[tree.dentries[d].inode] = true;
    }
    for (i, inode) in tree.inodes.iter().enumerate() {
        if !inode_included[i] {
            continue;
        }
        for s in &inode.streams {
            if s.hash.is_zero() {
                continue;
            }
            match wim.blob(&s.hash) {
                Some(b) => total_bytes += b.reshdr.uncompressed_size,
                None => {
                    let d = tree.dentries.iter().position(|d| d.inode == i).unwrap_or(0);
                    return Err(WimError::MissingBlob {
                        hash: s.hash.to_string(),
                        needed_by: tree.path_of(d),
                    });
                }
            }
        }
    }
    let sd = |inode: &crate::image::Inode| -> Option<&[u8]> {
        inode
            .security_id
            .and_then(|i| tree.security.get(i as usize))
            .map(|v| v.as_slice())
    };
    let entry = |d: usize| -> ApplyEntry {
        let de = &tree.dentries[d];
        let inode = &tree.inodes[de.inode];
        ApplyEntry {
            path: &paths[d],
            inode,
            short_name: &de.short_name,
            security_descriptor: sd(inode),
        }
    };
    let mut prog = ApplyProgress {
        bytes_total: total_bytes,
        entries_total: tree.dentries.len() as u64,
        ..Default::default()
    };

    // 1. directories
    for &d in &order {
        if tree.inode_of(d).is_directory() {
            target.create_directory(&entry(d))?;
        }
    }
    // 2. files and hard links
    let mut first_name: HashMap<usize, usize> = HashMap::new();
    for &d in &order {
        let ino = tree.dentries[d].inode;
        if tree.inodes[ino].is_directory() {
            continue;
        }
        match first_name.get(&ino) {
            Some(&first) => target.create_hard_link(&paths[first], &entry(d))?,
            None => {
                first_name.insert(ino, d);
                target.create_file(&entry(d))?;
            }
        }
        prog.entries_done += 1;
    }
    // 3. data streams, blobs in file order; each blob read once.
    let mut refs: HashMap<crate::hash::Sha1Hash, Vec<(usize, usize)>> = HashMap::new(); // hash -> (dentry, stream idx)
                                                                                        // Streams are written through each inode's first name in order (for a
                                                                                        // file that is the name `create_file` got).
    let mut first_dentry: HashMap<usize, usize> = HashMap::new();
    for &d in &order {
        first_dentry.entry(tree.dentries[d].inode).or_insert(d);
    }
    for (ino, inode) in tree.inodes.iter().enumerate() {
        let Some(&d) = first_dentry.get(&ino) else {
            continue;
        };
        if !inode_included[ino] {
            continue;
        }
        for (si, s) in inode.streams.iter().enumerate() {
            if s.kind != StreamKind::Data {
                continue;
            }
            if s.hash.is_zero() {
                if !s.name.is_empty() {
                    target.begin_stream(&paths[d], s)?;
                    target.end_stream()?;
                }
                continue;
            }
            refs.entry(s.hash).or_default().push((d, si));
        }
    }
    let mut blobs: Vec<&crate::blob_table::BlobEntry> =
        refs.keys().filter_map(|h| wim.blob(h)).collect();
    blobs.sort_by_key(|b| b.read_order());
    const BUFFER_LIMIT: u64 = 64 << 20;
    {
        // Per blob: single reference -> stream straight into the target;
        // several -> buffer (up to 64 MiB) and write each; larger blobs with
        // several references are written to the first and copied by reading
        // the blob again for the others.
        let mut cur: Option<usize> = None;
        let mut buffered: Vec<u8> = Vec::new();
        let mut second_pass: Vec<usize> = Vec::new();
        let mut bytes_done = 0u64;
        let mut reader = crate::extract::BlobReader::new(wim, blobs.clone(), opts.threads);
        while let Some(ev) = reader.next_event()? {
            match ev {
                crate::extract::BlobEvent::Data(bi, data) => {
                    let b = blobs[bi];
                    let rs = &refs[&b.hash];
                    if rs.len() > 1 && b.reshdr.uncompressed_size <= BUFFER_LIMIT {
                        buffered.extend_from_slice(&data);
                        continue;
                    }
                    if cur != Some(bi) {
                        let (d, si) = rs[0];
                        let s = &tree.inodes[tree.dentries[d].inode].streams[si];
                        target.begin_stream(&paths[d], s)?;
                        cur = Some(bi);
                    }
                    target.write_stream(&data)?;
                }
                crate::extract::BlobEvent::Done(bi) => {
                    let b = blobs[bi];
                    let rs = &refs[&b.hash];
                    if cur.take().is_some() {
                        target.end_stream()?;
                    }
                    if rs.len() > 1 && b.reshdr.uncompressed_size <= BUFFER_LIMIT {
                        for &(d, si) in rs {
                            let s = &tree.inodes[tree.dentries[d].inode].streams[si];
                            target.begin_stream(&paths[d], s)?;
                            target.write_stream(&buffered)?;
                            target.end_stream()?;
                        }
                        buffered.clear();
                    } else if rs.len() > 1 {
                        second_pass.push(bi);
                    }
                    bytes_done += b.reshdr.uncompressed_size;
                    progress(ApplyProgress { bytes_done, ..prog });
                }
            }
        }
        for bi in second_pass {
            let b = blobs[bi];
            for &(d, si) in &refs[&b.hash][1..] {
                let s = &tree.inodes[tree.dentries[d].inode].streams[si];
                target.begin_stream(&paths[d], s)?;
                wim.read_blob(b, &mut |c| target.write_stream(c))?;
                target.end_stream()?;
            }
        }
        prog.bytes_done = total_bytes;
    }
    // 4. reparse points. Their data is read in one pass in file order, like
    // the streams: read one by one, each would decompress its whole chunk
    // again, and a solid chunk can be 64 MiB.
    let reparse_at: Vec<usize> = order
        .iter()
        .copied()
        .filter(|&d| {
            tree.inode_of(d).is_reparse_point()
                && first_name
                    .get(&tree.dentries[d].inode)
                    .is_none_or(|&f| f == d)
        })
        .collect();
    let mut wanted: Vec<&crate::blob_table::BlobEntry> = Vec::new();
    for &d in &reparse_at {
        if let Some(s) = tree.inode_of(d).reparse_stream() {
            if s.hash.is_zero() {
                continue;
            }
            let b = wim.blob(&s.hash).ok_or_else(|| WimError::MissingBlob {
                hash: s.hash.to_string(),
                needed_by: tree.path_of(d),
            })?;
            if b.reshdr.uncompressed_size > crate::reparse::REPARSE_POINT_MAX_SIZE as u64 {
                return Err(WimError::resource(
                    format!("blob {}", b.hash),
                    format!(
                        "{} bytes of reparse data, more than the {} a reparse point holds",
                        b.reshdr.uncompressed_size,
                        crate::reparse::REPARSE_POINT_MAX_SIZE
                    ),
                ));
            }
            wanted.push(b);
        }
    }
    wanted.sort_by_key(|b| b.read_order());
    wanted.dedup_by_key(|b| b.hash);
    let mut reparse_data: HashMap<crate::hash::Sha1Hash, Vec<u8>> = HashMap::new();
    if !wanted.is_empty() {
        let mut reader = crate::extract::BlobReader::new(wim, wanted.clone(), opts.threads);
        while let Some(ev) = reader.next_event()? {
            if let crate::extract::BlobEvent::Data(bi, data) = ev {
                reparse_data
                    .entry(wanted[bi].hash)
                    .or_default()
                    .extend_from_slice(&data);
            }
        }
    }
    // Fixups: an absolute link that capture made relative to the image
    // root (its inode without NOT_FIXED) points into the applied tree.
    let rpfix = opts
        .rpfix
        .unwrap_or(wim.header.flags & crate::header::HDR_FLAG_RP_FIX != 0);
    let link_root = if rpfix { target.link_root() } else { None };
    for &d in &reparse_at {
        let inode = tree.inode_of(d);
        let mut data = match inode.reparse_stream() {
            Some(s) if !s.hash.is_zero() => reparse_data.get(&s.hash).cloned().unwrap_or_default(),
            _ => Vec::new(),
        };
        if let Some(root) = &link_root {
            if inode.rp_flags & crate::image::WIM_RP_FLAG_NOT_FIXED == 0
                && inode.reparse_tag == crate::image::IO_REPARSE_TAG_SYMLINK
            {
                // Data that does not parse is left for the target to report.
                if let Ok(link) = crate::reparse::parse_link_reparse(inode.reparse_tag, &data) {
                    if let Some(fixed) = crate::reparse::rerooted_link(&link, root)? {
                        data = fixed;
                    }
                }
            }
        }
        target.set_reparse_point(&entry(d), &data)?;
    }
    // 5. metadata, children before parents
    for &d in order.iter().rev() {
        target.set_metadata(&entry(d))?;
    }
    progress(ApplyProgress {
        entries_done: prog.entries_total,
        ..prog
    });
    target.finish()
}
