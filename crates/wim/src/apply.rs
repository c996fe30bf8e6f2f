//! The apply seam: an [`ApplyTarget`] receives an image, entry by entry, and
//! materialises it on some file system. The order of calls is fixed:
//!
//! 1. `create_directory` for every directory, parents first (the root,
//!    with an empty path, first of all);
//! 2. `create_file` for one name of every non-directory inode (the first
//!    with a short name, if one has; else the first), then
//!    `create_hard_link` for the other names;
//! 3. for every data stream with content, in the order blobs lie in the
//!    WIM: `begin_stream`, `write_stream` with the bytes in order,
//!    `end_stream`; an empty named stream gets `begin_stream` and
//!    `end_stream` only. Streams holding the same blob may be open
//!    together (up to [`ApplyTarget::max_open_streams`]: one `begin_stream`
//!    each, then every `write_stream` is meant for all of them, and one
//!    `end_stream` closes them all); otherwise one stream is open at a time;
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

/// A validated path inside an image: components without separators,
/// held as one string with `/` between them (no component can contain a
/// `/`), so that a path costs one allocation whatever its depth.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct WimPath {
    joined: Box<str>,
}

impl WimPath {
    pub fn root() -> WimPath {
        WimPath::default()
    }

    /// Builds a path from components, refusing any that could escape the
    /// target: empty, `.`, `..`, containing `/`, `\` or NUL.
    pub fn from_components<I, S>(comps: I) -> std::result::Result<WimPath, String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut out = String::new();
        for c in comps {
            let c = c.as_ref();
            check_component(c)?;
            if !out.is_empty() {
                out.push('/');
            }
            out.push_str(c);
        }
        Ok(WimPath {
            joined: out.into_boxed_str(),
        })
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
        let mut s = String::with_capacity(self.joined.len() + 1 + name.len());
        s.push_str(&self.joined);
        if !s.is_empty() {
            s.push('/');
        }
        s.push_str(name);
        Ok(WimPath {
            joined: s.into_boxed_str(),
        })
    }

    /// The components, outermost first.
    pub fn components(&self) -> impl DoubleEndedIterator<Item = &str> + Clone + '_ {
        // Components are never empty, so this only drops the root's "".
        self.joined.split('/').filter(|c| !c.is_empty())
    }

    /// Number of components (0 for the root).
    pub fn depth(&self) -> usize {
        self.components().count()
    }

    /// The components joined by `/` (empty for the root): the path
    /// relative to a target's root in POSIX form.
    pub fn as_slash_str(&self) -> &str {
        &self.joined
    }

    pub fn is_root(&self) -> bool {
        self.joined.is_empty()
    }

    pub fn file_name(&self) -> Option<&str> {
        self.components().next_back()
    }

    /// The directory holding this path (`None` for the root).
    pub fn parent(&self) -> Option<WimPath> {
        if self.is_root() {
            return None;
        }
        let dirs = self.joined.rsplit_once('/').map_or("", |(d, _)| d);
        Some(WimPath {
            joined: dirs.into(),
        })
    }

    /// The path relative to a target directory.
    pub fn to_relative_path(&self) -> PathBuf {
        PathBuf::from(&*self.joined)
    }
}

impl fmt::Display for WimPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_root() {
            return f.write_str("\\");
        }
        for c in self.components() {
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

/// A shortcut of [`check_component`] on UTF-16 units, for the common case:
/// true only for a name of ASCII units that `check_component` accepts (not
/// empty, not `.` or `..`, no NUL, no `/`, no `\\` unless it is an ordinary
/// character); false sends a name to the full check.
fn plainly_safe_utf16(units: &[u16], backslash_ok: bool) -> bool {
    let refused =
        |u: u16| u == 0 || u == u16::from(b'/') || (u == u16::from(b'\\') && !backslash_ok);
    let dots = units.len() <= 2 && units.iter().all(|&u| u == u16::from(b'.'));
    !units.is_empty() && !dots && units.iter().all(|&u| u < 0x80 && !refused(u))
}

/// What a target is told about one entry.
#[derive(Debug, Clone, Copy)]
pub struct ApplyEntry<'a> {
    /// The entry's number in its image (dense: below the image's entry
    /// count), the same in every call of one apply, so that a target can
    /// keep per-entry state in a vector instead of a map of paths.
    pub id: usize,
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

    /// Adds `entry.path` as another name of the file created for
    /// `existing` (the inode's first name).
    fn create_hard_link(&mut self, existing: &ApplyEntry, entry: &ApplyEntry) -> Result<()>;

    /// How many streams holding the same blob of `size` bytes may be open
    /// at once (all receiving the same bytes). A blob with more names than
    /// this is held in memory by the applier (up to a limit) and written
    /// to each name in turn, or, when larger, read again for the names
    /// beyond the first `max_open_streams`.
    fn max_open_streams(&self, size: u64) -> usize {
        let _ = size;
        1
    }

    /// Opens data stream `stream` of the file created for `entry` (its
    /// first name) for writing `stream.size` bytes.
    fn begin_stream(&mut self, entry: &ApplyEntry, stream: &Stream) -> Result<()>;

    /// Appends bytes to every stream opened by `begin_stream`.
    fn write_stream(&mut self, data: &[u8]) -> Result<()>;

    /// Closes every stream opened by `begin_stream`.
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
        assert!(WimPath::root().child("a/b").is_err());
        assert!(p.child_in("a\\b", false).is_err());
        assert_eq!(p.child_in("a\\b", true).unwrap().file_name(), Some("a\\b"));
    }

    #[test]
    fn utf16_shortcut_agrees_on_the_edge_names() {
        for name in ["", ".", "..", "...", ".a", "a", "a/b", "a\\b", "\\", "a\0"] {
            let units: Vec<u16> = name.encode_utf16().collect();
            for backslash_ok in [false, true] {
                let full = WimPath::root().child_in(name, backslash_ok).is_ok();
                assert_eq!(
                    plainly_safe_utf16(&units, backslash_ok),
                    full,
                    "{name:?} {backslash_ok}"
                );
            }
        }
    }

    proptest::proptest! {
        /// The UTF-16 shortcut accepts an ASCII name exactly when the full
        /// check does (and never a non-ASCII one).
        #[test]
        fn utf16_shortcut_agrees_with_the_full_check(
            name in "[a./\\\\\\x00\u{e9}]{0,4}",
            backslash_ok in proptest::bool::ANY,
        ) {
            let units: Vec<u16> = name.encode_utf16().collect();
            let full = WimPath::root().child_in(&name, backslash_ok).is_ok();
            let quick = plainly_safe_utf16(&units, backslash_ok);
            if name.is_ascii() {
                proptest::prop_assert_eq!(quick, full, "{:?}", name);
            } else {
                proptest::prop_assert!(!quick, "{:?}", name);
            }
        }
    }

    #[test]
    fn path_parts() {
        let root = WimPath::root();
        assert!(root.is_root());
        assert_eq!(root.depth(), 0);
        assert_eq!(root.components().count(), 0);
        assert_eq!(root.file_name(), None);
        assert_eq!(root.parent(), None);
        let a = root.child("a").unwrap();
        let abc = a.child("b").unwrap().child("c.txt").unwrap();
        assert_eq!(abc.components().collect::<Vec<_>>(), ["a", "b", "c.txt"]);
        assert_eq!(abc.depth(), 3);
        assert_eq!(abc.as_slash_str(), "a/b/c.txt");
        assert_eq!(abc.file_name(), Some("c.txt"));
        assert_eq!(abc.parent().and_then(|p| p.parent()), Some(a.clone()));
        assert_eq!(a.parent(), Some(root));
        assert_eq!(WimPath::from_components(["a", "b", "c.txt"]).unwrap(), abc);
    }
}

/// An entry of an image with its path in the target, for one call.
struct Named<'t> {
    tree: &'t crate::image::ImageTree,
    d: usize,
    path: WimPath,
}

impl Named<'_> {
    fn get(&self) -> ApplyEntry<'_> {
        let de = &self.tree.dentries[self.d];
        let inode = &self.tree.inodes[de.inode];
        ApplyEntry {
            id: self.d,
            path: &self.path,
            inode,
            short_name: &de.short_name,
            security_descriptor: inode
                .security_id
                .and_then(|i| self.tree.security.get(i as usize))
                .map(|v| v.as_slice()),
        }
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
    let tree = wim.read_image(n)?;
    apply_tree_paths(wim, n, &tree, select, target, opts, progress)
}

/// As [`apply_image`], for a caller that has read image `n`'s tree
/// already (`wim.read_image(n)`): it is not read, nor held, twice.
pub fn apply_tree(
    wim: &crate::reader::Wim,
    n: u32,
    tree: &crate::image::ImageTree,
    target: &mut dyn ApplyTarget,
    opts: &ApplyOptions,
    progress: &mut dyn FnMut(ApplyProgress),
) -> Result<()> {
    apply_tree_paths(wim, n, tree, &[], target, opts, progress)
}

fn apply_tree_paths(
    wim: &crate::reader::Wim,
    n: u32,
    tree: &crate::image::ImageTree,
    select: &[String],
    target: &mut dyn ApplyTarget,
    opts: &ApplyOptions,
    progress: &mut dyn FnMut(ApplyProgress),
) -> Result<()> {
    use crate::error::WimError;
    use crate::image::{ImageTree, StreamKind};

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
    // The selected entries: each lands at the target's top level.
    let mut is_top = vec![false; tree.dentries.len()];
    let full_order = tree.preorder();
    // Every name is checked here, before the target is touched; the paths
    // themselves are made when a call needs one (a copy of every path held
    // through the apply cost 2.9 MiB on /usr/share).
    let check_name = |d: usize| -> Result<()> {
        // Most names pass without making a string; the full check below
        // gives the message when one is refused.
        if plainly_safe_utf16(&tree.dentries[d].name, bs_ok) {
            return Ok(());
        }
        let unsafe_name = |reason: String| WimError::UnsafeName {
            image: n,
            path: tree.path_of(d),
            reason,
        };
        let name = String::from_utf16(&tree.dentries[d].name)
            .map_err(|_| unsafe_name("name is not valid UTF-16".into()))?;
        WimPath::root()
            .child_in(&name, bs_ok)
            .map(drop)
            .map_err(unsafe_name)
    };
    for &r in &roots {
        included[r] = true;
        is_top[r] = true;
        if r != ImageTree::ROOT {
            check_name(r)?;
        }
    }
    for &d in full_order.iter().skip(1) {
        let de = &tree.dentries[d];
        if is_top[d] || !included[de.parent] {
            continue;
        }
        included[d] = true;
        check_name(d)?;
    }
    // The path of entry `d` in the target: the names from its selected
    // ancestor (or the image root) down.
    let path_of = |d: usize| -> WimPath {
        let mut chain = Vec::with_capacity(16);
        let mut x = d;
        while x != ImageTree::ROOT {
            chain.push(x);
            if is_top[x] {
                break;
            }
            x = tree.dentries[x].parent;
        }
        let mut joined: Vec<u8> = Vec::with_capacity(64);
        for &c in chain.iter().rev() {
            if !joined.is_empty() {
                joined.push(b'/');
            }
            // Checked above: valid UTF-16, a safe component.
            let name = &tree.dentries[c].name;
            if name.iter().all(|&u| u < 0x80) {
                joined.extend(name.iter().map(|&u| u as u8));
            } else {
                for ch in char::decode_utf16(name.iter().copied()) {
                    let ch = ch.unwrap_or(char::REPLACEMENT_CHARACTER);
                    joined.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
                }
            }
        }
        let joined = String::from_utf8(joined)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        WimPath {
            joined: joined.into_boxed_str(),
        }
    };
    // The target's own root is only given the image root's metadata when
    // the whole image is applied.
    let order: Vec<usize> = full_order
        .into_iter()
        .filter(|&d| {
            included[d] && (whole || d != ImageTree::ROOT || roots.contains(&ImageTree::ROOT))
        })
        .collect();
    // Each applied inode's first name (usize::MAX: not applied): the file
    // is created there, its other names linked to it, and its streams
    // written through it. The first in `order` with a short name, if one
    // has (NTFS gives a short name only to a file with a single name), or
    // else the first in `order`.
    let mut first_name = vec![usize::MAX; tree.inodes.len()];
    for &d in &order {
        let f = &mut first_name[tree.dentries[d].inode];
        if *f == usize::MAX
            || (tree.dentries[*f].short_name.is_empty() && !tree.dentries[d].short_name.is_empty())
        {
            *f = d;
        }
    }
    // Every blob present?
    let mut total_bytes = 0u64;
    for (inode, &d) in tree.inodes.iter().zip(&first_name) {
        if d == usize::MAX {
            continue;
        }
        for s in &inode.streams {
            if s.hash.is_zero() {
                continue;
            }
            match wim.blob(&s.hash) {
                Some(b) => total_bytes += b.reshdr.uncompressed_size,
                None => {
                    return Err(WimError::MissingBlob {
                        hash: s.hash.to_string(),
                        needed_by: tree.path_of(d),
                    });
                }
            }
        }
    }
    // An entry for a call (its path made for it).
    let entry = |d: usize| Named {
        tree,
        d,
        path: path_of(d),
    };
    let mut prog = ApplyProgress {
        bytes_total: total_bytes,
        entries_total: tree.dentries.len() as u64,
        ..Default::default()
    };

    // 1. directories
    for &d in &order {
        if tree.inode_of(d).is_directory() {
            target.create_directory(&entry(d).get())?;
        }
    }
    // 2. files, then their other names
    for links in [false, true] {
        for &d in &order {
            let ino = tree.dentries[d].inode;
            if tree.inodes[ino].is_directory() {
                continue;
            }
            match first_name[ino] {
                first if first == d && !links => target.create_file(&entry(d).get())?,
                first if first != d && links => {
                    target.create_hard_link(&entry(first).get(), &entry(d).get())?
                }
                _ => continue,
            }
            prog.entries_done += 1;
        }
    }
    // 3. data streams (and reparse data), blobs in file order; each blob
    // read once. One (blob, first name, stream index) per stream with
    // content, sorted so that the streams sharing a blob are neighbours,
    // in inode order.
    let mut wanted: Vec<(&crate::blob_table::BlobEntry, usize, usize)> = Vec::new();
    for (ino, inode) in tree.inodes.iter().enumerate() {
        let d = first_name[ino];
        if d == usize::MAX {
            continue;
        }
        for (si, s) in inode.streams.iter().enumerate() {
            if s.kind != StreamKind::Data {
                continue;
            }
            if s.hash.is_zero() {
                if !s.name.is_empty() {
                    target.begin_stream(&entry(d).get(), s)?;
                    target.end_stream()?;
                }
                continue;
            }
            // Presence was checked above.
            if let Some(b) = wim.blob(&s.hash) {
                wanted.push((b, d, si));
            }
        }
    }
    // Reparse data is read in the same pass (marked REPARSE): a pass of
    // its own would decompress again every chunk holding one, and a solid
    // chunk is 64 MiB.
    const REPARSE: usize = usize::MAX;
    let reparse_at: Vec<usize> = order
        .iter()
        .copied()
        .filter(|&d| tree.inode_of(d).is_reparse_point() && first_name[tree.dentries[d].inode] == d)
        .collect();
    for &d in &reparse_at {
        let Some(s) = tree.inode_of(d).reparse_stream() else {
            continue;
        };
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
        wanted.push((b, d, REPARSE));
    }
    // A blob's data references first (in inode order), its reparse ones last.
    wanted.sort_by_key(|&(b, _, si)| (b.read_order(), b.hash, si == REPARSE));
    // blobs[i]'s references are wanted[starts[i]..starts[i + 1]].
    let mut blobs: Vec<&crate::blob_table::BlobEntry> = Vec::new();
    let mut starts: Vec<usize> = Vec::new();
    for (i, (b, _, _)) in wanted.iter().enumerate() {
        if blobs.last().is_none_or(|l| l.hash != b.hash) {
            blobs.push(b);
            starts.push(i);
        }
    }
    starts.push(wanted.len());
    let all_refs = |bi: usize| &wanted[starts[bi]..starts[bi + 1]];
    // The data streams a blob fills, and whether it is reparse data.
    let refs_of = |bi: usize| {
        let r = all_refs(bi);
        &r[..r.iter().position(|x| x.2 == REPARSE).unwrap_or(r.len())]
    };
    let is_reparse = |bi: usize| all_refs(bi).last().is_some_and(|x| x.2 == REPARSE);
    let mut reparse_data: crate::hash::FastMap<crate::hash::Sha1Hash, Vec<u8>> = Default::default();
    let stream_of = |d: usize, si: usize| &tree.inodes[tree.dentries[d].inode].streams[si];
    // For a target that takes one stream at a time: blobs with several
    // references up to this size are held in memory and written to each;
    // larger ones are written to the first reference and read again for
    // the others (rare: identical large files that are not hard links).
    // (Not lower: reading a blob again decodes every chunk holding it, and
    // a solid chunk is up to 64 MiB; with 1 MiB, when each such blob was
    // still read again on its own, the apply of a solid WIM of
    // /usr/share/doc was 5x slower. A buffer above BUFFER_KEEP is dropped
    // after use: kept at its largest for the rest of the apply it added to
    // the peak.)
    const BUFFER_LIMIT: u64 = 4 << 20;
    const BUFFER_KEEP: usize = 256 << 10;
    // A target that can hold several streams open gets a blob's names
    // together (no copy held, no second read), up to its limit; only a
    // blob with more names is buffered, or if too large for that, read
    // again for each further group of names.
    let open_limit = |t: &dyn ApplyTarget, bi: usize| {
        t.max_open_streams(blobs[bi].reshdr.uncompressed_size)
            .max(1)
    };
    let buffer_it = |t: &dyn ApplyTarget, bi: usize| {
        refs_of(bi).len() > open_limit(t, bi) && blobs[bi].reshdr.uncompressed_size <= BUFFER_LIMIT
    };
    // The streams of pass `g` (0: the first, which reads every blob).
    let group = |t: &dyn ApplyTarget, bi: usize, g: usize| {
        let rs = refs_of(bi);
        let m = open_limit(t, bi);
        let start = g.saturating_mul(m).min(rs.len());
        &rs[start..rs.len().min(start + m)]
    };
    {
        let mut cur: Option<usize> = None;
        let mut buffered: Vec<u8> = Vec::new();
        let mut later: Vec<usize> = Vec::new();
        let mut bytes_done = 0u64;
        let mut reader = crate::extract::BlobReader::new(wim, blobs.clone(), opts.threads);
        while let Some(ev) = reader.next_event()? {
            match ev {
                crate::extract::BlobEvent::Data(bi, data) => {
                    let b = blobs[bi];
                    if is_reparse(bi) {
                        reparse_data
                            .entry(b.hash)
                            .or_default()
                            .extend_from_slice(&data);
                    }
                    if refs_of(bi).is_empty() {
                        continue;
                    }
                    if buffer_it(&*target, bi) {
                        if buffered.is_empty() {
                            // Exactly: grown by doubling it could hold
                            // twice the blob.
                            buffered.reserve_exact(b.reshdr.uncompressed_size as usize);
                        }
                        buffered.extend_from_slice(&data);
                        continue;
                    }
                    if cur != Some(bi) {
                        for &(_, d, si) in group(&*target, bi, 0) {
                            target.begin_stream(&entry(d).get(), stream_of(d, si))?;
                        }
                        cur = Some(bi);
                    }
                    target.write_stream(&data)?;
                }
                crate::extract::BlobEvent::Done(bi) => {
                    let b = blobs[bi];
                    let rs = refs_of(bi);
                    if cur.take().is_some() {
                        target.end_stream()?;
                    }
                    if buffer_it(&*target, bi) {
                        for &(_, d, si) in rs {
                            target.begin_stream(&entry(d).get(), stream_of(d, si))?;
                            target.write_stream(&buffered)?;
                            target.end_stream()?;
                        }
                        buffered.clear();
                        // A large buffer is not kept for the rest of the
                        // apply (it would add to every later peak).
                        if buffered.capacity() > BUFFER_KEEP {
                            buffered = Vec::new();
                        }
                    } else if rs.len() > open_limit(&*target, bi) {
                        later.push(bi);
                    }
                    bytes_done += b.reshdr.uncompressed_size;
                    progress(ApplyProgress { bytes_done, ..prog });
                }
            }
        }
        // The names beyond the first pass's: one more read of those blobs
        // per group of names, all of them in one pass, so that a chunk
        // holding several of them (a 64 MiB solid chunk holds many) is
        // decoded once per pass, not once per blob.
        let mut g = 1;
        loop {
            let pass: Vec<usize> = later
                .iter()
                .copied()
                .filter(|&bi| !group(&*target, bi, g).is_empty())
                .collect();
            if pass.is_empty() {
                break;
            }
            let entries = pass.iter().map(|&bi| blobs[bi]).collect();
            let mut reader = crate::extract::BlobReader::new(wim, entries, opts.threads);
            let mut open: Option<usize> = None;
            while let Some(ev) = reader.next_event()? {
                match ev {
                    crate::extract::BlobEvent::Data(k, data) => {
                        if open != Some(k) {
                            for &(_, d, si) in group(&*target, pass[k], g) {
                                target.begin_stream(&entry(d).get(), stream_of(d, si))?;
                            }
                            open = Some(k);
                        }
                        target.write_stream(&data)?;
                    }
                    crate::extract::BlobEvent::Done(_) => {
                        if open.take().is_some() {
                            target.end_stream()?;
                        }
                    }
                }
            }
            g += 1;
        }
        prog.bytes_done = total_bytes;
    }
    // 4. reparse points (their data was read in the stream pass).
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
        target.set_reparse_point(&entry(d).get(), &data)?;
    }
    // 5. metadata, children before parents
    for &d in order.iter().rev() {
        target.set_metadata(&entry(d).get())?;
    }
    progress(ApplyProgress {
        entries_done: prog.entries_total,
        ..prog
    });
    target.finish()
}
