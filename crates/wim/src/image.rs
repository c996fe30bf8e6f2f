//! The in-memory model of one image: a tree of directory entries (names)
//! pointing at inodes (attributes, times, security descriptor, streams).
//! Hard links are several entries sharing one inode. This is what the
//! metadata resource serialises, what a capture source builds and what an
//! apply target receives.

use std::cmp::Ordering;

use crate::hash::Sha1Hash;

pub const FILE_ATTRIBUTE_READONLY: u32 = 0x0000_0001;
pub const FILE_ATTRIBUTE_HIDDEN: u32 = 0x0000_0002;
pub const FILE_ATTRIBUTE_SYSTEM: u32 = 0x0000_0004;
pub const FILE_ATTRIBUTE_DIRECTORY: u32 = 0x0000_0010;
pub const FILE_ATTRIBUTE_ARCHIVE: u32 = 0x0000_0020;
pub const FILE_ATTRIBUTE_DEVICE: u32 = 0x0000_0040;
pub const FILE_ATTRIBUTE_NORMAL: u32 = 0x0000_0080;
pub const FILE_ATTRIBUTE_TEMPORARY: u32 = 0x0000_0100;
pub const FILE_ATTRIBUTE_SPARSE_FILE: u32 = 0x0000_0200;
pub const FILE_ATTRIBUTE_REPARSE_POINT: u32 = 0x0000_0400;
pub const FILE_ATTRIBUTE_COMPRESSED: u32 = 0x0000_0800;
pub const FILE_ATTRIBUTE_OFFLINE: u32 = 0x0000_1000;
pub const FILE_ATTRIBUTE_NOT_CONTENT_INDEXED: u32 = 0x0000_2000;
pub const FILE_ATTRIBUTE_ENCRYPTED: u32 = 0x0000_4000;

pub const IO_REPARSE_TAG_MOUNT_POINT: u32 = 0xA000_0003;
pub const IO_REPARSE_TAG_SYMLINK: u32 = 0xA000_000C;
/// rp_flags bit: an absolute link target was not rewritten at capture.
pub const WIM_RP_FLAG_NOT_FIXED: u16 = 0x0001;

/// Which kind of content a stream holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// File data: the unnamed stream or a named alternate data stream.
    Data,
    /// Reparse data (without the 8-byte tag/length header).
    ReparsePoint,
    /// Raw encrypted file data (EFSRPC format).
    EfsRaw,
}

/// Where a captured stream's bytes come from (only meaningful while capturing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamSource {
    /// Already in a WIM (or empty): identified by its hash.
    None,
    /// An opaque id the capture source gave; read through `CaptureSource::open_stream`.
    External(u64),
    /// Small content held in memory (reparse data, for instance).
    Inline(std::sync::Arc<Vec<u8>>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stream {
    pub kind: StreamKind,
    /// UTF-16 name; empty for the unnamed stream.
    pub name: Vec<u16>,
    /// SHA-1 of the content; zero for an empty stream.
    pub hash: Sha1Hash,
    /// Uncompressed size (from the blob table when read from a WIM).
    pub size: u64,
    /// Origin of the bytes during capture.
    pub source: StreamSource,
}

impl Stream {
    pub fn is_unnamed_data(&self) -> bool {
        self.kind == StreamKind::Data && self.name.is_empty()
    }
    pub fn name_string(&self) -> String {
        String::from_utf16_lossy(&self.name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Inode {
    pub attributes: u32,
    /// Index into the image's security descriptor table.
    pub security_id: Option<u32>,
    pub creation_time: u64,
    pub last_access_time: u64,
    pub last_write_time: u64,
    pub unknown_0x54: u32,
    pub reparse_tag: u32,
    pub rp_reserved: u16,
    pub rp_flags: u16,
    pub streams: Vec<Stream>,
    /// Tagged items after the names (object id, EAs, UNIX data), kept verbatim.
    pub extra: Vec<u8>,
}

impl Inode {
    pub fn is_directory(&self) -> bool {
        self.attributes & FILE_ATTRIBUTE_DIRECTORY != 0
    }
    /// A directory that can hold entries: a directory that is not also a
    /// reparse point (a symlink or junction to a directory has no children
    /// in a WIM, and wimlib and DISM count it as a file).
    pub fn is_plain_directory(&self) -> bool {
        self.attributes & (FILE_ATTRIBUTE_DIRECTORY | FILE_ATTRIBUTE_REPARSE_POINT)
            == FILE_ATTRIBUTE_DIRECTORY
    }
    pub fn is_reparse_point(&self) -> bool {
        self.attributes & FILE_ATTRIBUTE_REPARSE_POINT != 0
    }
    pub fn unnamed_data(&self) -> Option<&Stream> {
        self.streams.iter().find(|s| s.is_unnamed_data())
    }
    pub fn reparse_stream(&self) -> Option<&Stream> {
        self.streams
            .iter()
            .find(|s| s.kind == StreamKind::ReparsePoint)
    }
    /// Sum of the sizes of the inode's data streams (what TOTALBYTES counts).
    pub fn data_size(&self) -> u64 {
        self.streams.iter().map(|s| s.size).sum()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dentry {
    /// UTF-16 long name; empty only for the root.
    pub name: Vec<u16>,
    /// UTF-16 DOS (8.3) name, empty if none.
    pub short_name: Vec<u16>,
    pub inode: usize,
    pub parent: usize,
    pub children: Vec<usize>,
}

impl Dentry {
    pub fn name_string(&self) -> String {
        String::from_utf16_lossy(&self.name)
    }
}

/// Counts of an image as the XML data records them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImageStats {
    pub dir_count: u64,
    pub file_count: u64,
    pub total_bytes: u64,
    pub hard_link_bytes: u64,
}

/// One image: dentry 0 is the root directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageTree {
    pub dentries: Vec<Dentry>,
    pub inodes: Vec<Inode>,
    pub security: Vec<Vec<u8>>,
    /// Non-fatal oddities met while reading (ignored duplicate names, ...).
    pub warnings: Vec<String>,
}

impl Default for ImageTree {
    fn default() -> Self {
        Self::new()
    }
}

impl ImageTree {
    /// An image holding only an empty root directory.
    pub fn new() -> ImageTree {
        ImageTree {
            dentries: vec![Dentry {
                name: Vec::new(),
                short_name: Vec::new(),
                inode: 0,
                parent: 0,
                children: Vec::new(),
            }],
            inodes: vec![Inode {
                attributes: FILE_ATTRIBUTE_DIRECTORY,
                ..Inode::default()
            }],
            security: Vec::new(),
            warnings: Vec::new(),
        }
    }

    pub const ROOT: usize = 0;

    pub fn root_inode_mut(&mut self) -> &mut Inode {
        let i = self.dentries[0].inode;
        &mut self.inodes[i]
    }

    pub fn add_inode(&mut self, inode: Inode) -> usize {
        self.inodes.push(inode);
        self.inodes.len() - 1
    }

    /// Adds a dentry named `name` under `parent` for `inode`.
    pub fn add_dentry(
        &mut self,
        parent: usize,
        name: Vec<u16>,
        short_name: Vec<u16>,
        inode: usize,
    ) -> usize {
        let id = self.dentries.len();
        self.dentries.push(Dentry {
            name,
            short_name,
            inode,
            parent,
            children: Vec::new(),
        });
        self.dentries[parent].children.push(id);
        id
    }

    /// Gives back the room that growing vectors reserved (a tree of a
    /// whole system volume is held through a capture or an apply).
    pub fn shrink_to_fit(&mut self) {
        self.dentries.shrink_to_fit();
        self.inodes.shrink_to_fit();
        for d in &mut self.dentries {
            d.children.shrink_to_fit();
        }
        for i in &mut self.inodes {
            i.streams.shrink_to_fit();
        }
    }

    pub fn inode_of(&self, dentry: usize) -> &Inode {
        &self.inodes[self.dentries[dentry].inode]
    }

    /// Number of dentries referring to each inode.
    pub fn link_counts(&self) -> Vec<u32> {
        let mut n = vec![0u32; self.inodes.len()];
        for d in &self.dentries {
            if let Some(c) = n.get_mut(d.inode) {
                *c += 1;
            }
        }
        n
    }

    /// Dentry ids in pre-order (parents before children, children in
    /// collation order), root first.
    pub fn preorder(&self) -> Vec<usize> {
        let mut out = Vec::with_capacity(self.dentries.len());
        let mut stack = vec![Self::ROOT];
        while let Some(d) = stack.pop() {
            out.push(d);
            let mut kids = self.sorted_children(d);
            kids.reverse();
            stack.extend(kids);
        }
        out
    }

    /// Children of `d` in WIM collation order.
    pub fn sorted_children(&self, d: usize) -> Vec<usize> {
        let mut kids = self.dentries[d].children.clone();
        kids.sort_by(|&a, &b| collate(&self.dentries[a].name, &self.dentries[b].name));
        kids
    }

    /// Path of a dentry in the image, `\`-separated, `\` for the root.
    pub fn path_of(&self, mut d: usize) -> String {
        let mut parts = Vec::new();
        while d != Self::ROOT {
            parts.push(self.dentries[d].name_string());
            d = self.dentries[d].parent;
        }
        parts.reverse();
        format!("\\{}", parts.join("\\"))
    }

    /// Finds a dentry by path (`\` or `/` separated, case-sensitive).
    pub fn find(&self, path: &str) -> Option<usize> {
        let mut cur = Self::ROOT;
        for comp in path.split(['\\', '/']).filter(|c| !c.is_empty()) {
            let want: Vec<u16> = comp.encode_utf16().collect();
            cur = *self.dentries[cur]
                .children
                .iter()
                .find(|&&c| self.dentries[c].name == want)?;
        }
        Some(cur)
    }

    /// The XML counts, computed as wimlib does: per inode, directories (not
    /// reparse points) add
    /// their link count to DIRCOUNT, others to FILECOUNT; TOTALBYTES adds
    /// size × links; HARDLINKBYTES adds size × (links − 1).
    pub fn stats(&self) -> ImageStats {
        let links = self.link_counts();
        let mut s = ImageStats::default();
        for (i, inode) in self.inodes.iter().enumerate() {
            let n = links[i] as u64;
            if n == 0 {
                continue;
            }
            if inode.is_plain_directory() {
                s.dir_count += n;
            } else {
                s.file_count += n;
            }
            let size = inode.data_size();
            s.total_bytes += size * n;
            s.hard_link_bytes += size * (n - 1);
        }
        s
    }
}

/// WIM/NTFS collation of names: case-insensitive comparison of UTF-16 code
/// units, then case-sensitive as the tie-break.
pub fn collate(a: &[u16], b: &[u16]) -> Ordering {
    let ia = a.iter().map(|&c| upcase(c));
    let ib = b.iter().map(|&c| upcase(c));
    ia.cmp(ib).then_with(|| a.cmp(b))
}

/// Upper-cases one UTF-16 code unit when it maps to exactly one BMP unit.
pub fn upcase(c: u16) -> u16 {
    if c < 0x80 {
        return (c as u8).to_ascii_uppercase() as u16;
    }
    match char::from_u32(c as u32) {
        Some(ch) => {
            let mut up = ch.to_uppercase();
            match (up.next(), up.next()) {
                (Some(u), None) if (u as u32) < 0x10000 => u as u32 as u16,
                _ => c,
            }
        }
        None => c,
    }
}

/// Encodes a Rust string as UTF-16 units.
pub fn utf16(s: &str) -> Vec<u16> {
    s.encode_utf16().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collation_is_case_insensitive_with_tiebreak() {
        let mut names: Vec<Vec<u16>> = ["b", "A", "a", "B", "_x", "ä", "Ä"]
            .iter()
            .map(|s| utf16(s))
            .collect();
        names.sort_by(|a, b| collate(a, b));
        let out: Vec<String> = names.iter().map(|n| String::from_utf16_lossy(n)).collect();
        assert_eq!(out, ["A", "a", "B", "b", "_x", "Ä", "ä"]);
    }

    #[test]
    fn stats_count_hard_links() {
        let mut t = ImageTree::new();
        let f = t.add_inode(Inode {
            attributes: FILE_ATTRIBUTE_NORMAL,
            streams: vec![Stream {
                kind: StreamKind::Data,
                name: vec![],
                hash: Sha1Hash([1; 20]),
                size: 100,
                source: StreamSource::None,
            }],
            ..Inode::default()
        });
        let d = t.add_inode(Inode {
            attributes: FILE_ATTRIBUTE_DIRECTORY,
            ..Inode::default()
        });
        let dd = t.add_dentry(0, utf16("dir"), vec![], d);
        t.add_dentry(0, utf16("a"), vec![], f);
        t.add_dentry(dd, utf16("b"), vec![], f);
        let s = t.stats();
        assert_eq!(
            s,
            ImageStats {
                dir_count: 2,
                file_count: 2,
                total_bytes: 200,
                hard_link_bytes: 100
            }
        );
        assert_eq!(t.path_of(t.find("dir/b").unwrap()), "\\dir\\b");
        assert_eq!(t.preorder().len(), 4);
    }
}
