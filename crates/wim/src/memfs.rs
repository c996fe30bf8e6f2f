//! An in-memory file system implementing both seams. It lets the WIM code
//! be tested (and fuzzed) without touching disks, and serves as the
//! reference of what a backend is expected to do.

use std::collections::BTreeMap;
use std::io::{Cursor, Read};
use std::sync::Arc;

use crate::apply::{ApplyEntry, ApplyTarget, WimPath};
use crate::capture::{CaptureFilter, CaptureSource, ScanProgress};
use crate::error::{Result, WimError};
use crate::image::*;

/// One file or directory of the in-memory tree.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemNode {
    pub attributes: u32,
    pub times: (u64, u64, u64),
    pub security_descriptor: Option<Vec<u8>>,
    pub short_name: String,
    /// Unnamed data (None for directories).
    pub data: Option<Vec<u8>>,
    /// Named streams.
    pub ads: BTreeMap<String, Vec<u8>>,
    /// (tag, data) for reparse points.
    pub reparse: Option<(u32, Vec<u8>)>,
    /// Files sharing a non-zero link id are hard links of each other.
    pub link_id: u64,
}

/// A tree keyed by `\`-separated path ("" is the root).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemFs {
    pub nodes: BTreeMap<String, MemNode>,
    data: Vec<Arc<Vec<u8>>>,
    pub applied_links: Vec<(String, String)>,
    /// Streams that may be open at once when applied to (0 counts as 1).
    pub max_open: usize,
    /// The open streams and the bytes written to them.
    current: Option<(Vec<OpenStream>, Vec<u8>)>,
}

/// A stream being written: file key and stream name.
type OpenStream = (String, String);

impl MemFs {
    pub fn new() -> MemFs {
        let mut fs = MemFs::default();
        fs.nodes.insert(
            String::new(),
            MemNode {
                attributes: FILE_ATTRIBUTE_DIRECTORY,
                ..Default::default()
            },
        );
        fs
    }

    pub fn add_dir(&mut self, path: &str) {
        self.nodes.insert(
            path.into(),
            MemNode {
                attributes: FILE_ATTRIBUTE_DIRECTORY,
                ..Default::default()
            },
        );
    }

    pub fn add_file(&mut self, path: &str, data: &[u8]) {
        self.nodes.insert(
            path.into(),
            MemNode {
                attributes: FILE_ATTRIBUTE_ARCHIVE,
                data: Some(data.to_vec()),
                ..Default::default()
            },
        );
    }

    fn children(&self, dir: &str) -> Vec<String> {
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}\\")
        };
        self.nodes
            .keys()
            .filter(|k| {
                !k.is_empty() && k.starts_with(&prefix) && !k[prefix.len()..].contains('\\')
            })
            .cloned()
            .collect()
    }
}

impl CaptureSource for MemFs {
    fn describe(&self) -> String {
        "in-memory tree".into()
    }

    fn scan(
        &mut self,
        filter: &dyn CaptureFilter,
        progress: &mut dyn FnMut(ScanProgress),
    ) -> Result<ImageTree> {
        let mut tree = ImageTree::new();
        let mut sds = crate::security::SecurityDescriptorSet::new();
        let mut links: BTreeMap<u64, usize> = BTreeMap::new();
        self.data.clear();
        let mut stack = vec![(String::new(), ImageTree::ROOT)];
        let mut prog = ScanProgress::default();
        while let Some((path, dentry)) = stack.pop() {
            let node = self
                .nodes
                .get(&path)
                .cloned()
                .ok_or_else(|| WimError::Capture {
                    path: path.clone(),
                    reason: "vanished".into(),
                })?;
            let make_inode = |s: &mut Self, sds: &mut crate::security::SecurityDescriptorSet| {
                let mut streams = Vec::new();
                if let Some(d) = &node.data {
                    if !d.is_empty() {
                        s.data.push(Arc::new(d.clone()));
                        streams.push(Stream {
                            kind: StreamKind::Data,
                            name: vec![],
                            hash: crate::Sha1Hash::ZERO,
                            size: d.len() as u64,
                            source: StreamSource::External(s.data.len() as u64 - 1),
                        });
                    }
                }
                for (n, d) in &node.ads {
                    s.data.push(Arc::new(d.clone()));
                    streams.push(Stream {
                        kind: StreamKind::Data,
                        name: utf16(n),
                        hash: crate::Sha1Hash::ZERO,
                        size: d.len() as u64,
                        source: StreamSource::External(s.data.len() as u64 - 1),
                    });
                }
                let (mut tag, mut attrs) = (0, node.attributes);
                if let Some((t, d)) = &node.reparse {
                    tag = *t;
                    attrs |= FILE_ATTRIBUTE_REPARSE_POINT;
                    streams.push(Stream {
                        kind: StreamKind::ReparsePoint,
                        name: vec![],
                        hash: crate::Sha1Hash::ZERO,
                        size: d.len() as u64,
                        source: StreamSource::Inline(Arc::new(d.clone())),
                    });
                }
                Inode {
                    attributes: attrs,
                    security_id: node.security_descriptor.as_ref().map(|sd| sds.add(sd)),
                    creation_time: node.times.0,
                    last_access_time: node.times.1,
                    last_write_time: node.times.2,
                    reparse_tag: tag,
                    streams,
                    ..Inode::default()
                }
            };
            let inode = if dentry == ImageTree::ROOT {
                let i = make_inode(self, &mut sds);
                tree.inodes[0] = i;
                0
            } else if node.link_id != 0 {
                match links.get(&node.link_id) {
                    Some(&i) => i,
                    None => {
                        let i = make_inode(self, &mut sds);
                        let id = tree.add_inode(i);
                        links.insert(node.link_id, id);
                        id
                    }
                }
            } else {
                let i = make_inode(self, &mut sds);
                tree.add_inode(i)
            };
            tree.dentries[dentry].inode = inode;
            if node.attributes & FILE_ATTRIBUTE_DIRECTORY != 0 {
                prog.dirs += 1;
                for child in self.children(&path) {
                    if filter.is_excluded(&format!("\\{child}")) {
                        continue;
                    }
                    let name = child.rsplit('\\').next().unwrap_or("").to_string();
                    let short = self
                        .nodes
                        .get(&child)
                        .map(|n| utf16(&n.short_name))
                        .unwrap_or_default();
                    let id = tree.add_dentry(dentry, utf16(&name), short, 0);
                    stack.push((child, id));
                }
            } else {
                prog.files += 1;
            }
            progress(prog);
        }
        tree.security = sds.descriptors;
        Ok(tree)
    }

    fn open_stream(&self, id: u64) -> Result<Box<dyn Read + Send + '_>> {
        let d = self
            .data
            .get(id as usize)
            .cloned()
            .ok_or_else(|| WimError::Capture {
                path: format!("stream {id}"),
                reason: "unknown stream".into(),
            })?;
        Ok(Box::new(Cursor::new(d.as_ref().clone())))
    }
}

fn key(p: &WimPath) -> String {
    p.components().collect::<Vec<_>>().join("\\")
}

impl ApplyTarget for MemFs {
    fn describe(&self) -> String {
        "in-memory tree".into()
    }
    fn create_directory(&mut self, e: &ApplyEntry) -> Result<()> {
        self.nodes.insert(
            key(e.path),
            MemNode {
                attributes: FILE_ATTRIBUTE_DIRECTORY,
                ..Default::default()
            },
        );
        Ok(())
    }
    fn create_file(&mut self, e: &ApplyEntry) -> Result<()> {
        let k = key(e.path);
        if self.nodes.contains_key(&k) {
            return Err(WimError::Apply {
                path: e.path.to_string(),
                reason: "created twice".into(),
            });
        }
        self.nodes.insert(
            k,
            MemNode {
                data: Some(Vec::new()),
                ..Default::default()
            },
        );
        Ok(())
    }
    fn create_hard_link(&mut self, existing: &ApplyEntry, e: &ApplyEntry) -> Result<()> {
        self.applied_links.push((key(existing.path), key(e.path)));
        self.nodes.insert(
            key(e.path),
            MemNode {
                data: Some(Vec::new()),
                ..Default::default()
            },
        );
        Ok(())
    }
    fn max_open_streams(&self, _size: u64) -> usize {
        self.max_open.max(1)
    }
    fn begin_stream(&mut self, e: &ApplyEntry, stream: &Stream) -> Result<()> {
        let err = |reason: &str| WimError::Apply {
            path: e.path.to_string(),
            reason: reason.into(),
        };
        let open = (key(e.path), stream.name_string());
        match &mut self.current {
            None => self.current = Some((vec![open], Vec::new())),
            Some((_, data)) if !data.is_empty() => return Err(err("begin after a write")),
            Some((open_now, _)) if open_now.len() >= self.max_open.max(1) => {
                return Err(err("more streams open than allowed"))
            }
            Some((open_now, _)) if open_now.contains(&open) => return Err(err("opened twice")),
            Some((open_now, _)) => open_now.push(open),
        }
        Ok(())
    }
    fn write_stream(&mut self, data: &[u8]) -> Result<()> {
        match &mut self.current {
            Some(c) => {
                c.1.extend_from_slice(data);
                Ok(())
            }
            None => Err(WimError::Apply {
                path: "?".into(),
                reason: "write without begin".into(),
            }),
        }
    }
    fn end_stream(&mut self) -> Result<()> {
        let (open, data) = self.current.take().ok_or_else(|| WimError::Apply {
            path: "?".into(),
            reason: "end without begin".into(),
        })?;
        for (k, name) in open {
            let n = self.nodes.get_mut(&k).ok_or_else(|| WimError::Apply {
                path: k.clone(),
                reason: "stream of a missing file".into(),
            })?;
            if name.is_empty() {
                n.data = Some(data.clone());
            } else {
                n.ads.insert(name.clone(), data.clone());
            }
            // Hard links share content.
            let others: Vec<String> = self
                .applied_links
                .iter()
                .filter(|(a, _)| *a == k)
                .map(|(_, b)| b.clone())
                .collect();
            for o in others {
                if let Some(n) = self.nodes.get_mut(&o) {
                    if name.is_empty() {
                        n.data = Some(data.clone());
                    } else {
                        n.ads.insert(name.clone(), data.clone());
                    }
                }
            }
        }
        Ok(())
    }
    fn set_reparse_point(&mut self, e: &ApplyEntry, data: &[u8]) -> Result<()> {
        let n = self
            .nodes
            .get_mut(&key(e.path))
            .ok_or_else(|| WimError::Apply {
                path: e.path.to_string(),
                reason: "missing".into(),
            })?;
        n.reparse = Some((e.inode.reparse_tag, data.to_vec()));
        Ok(())
    }
    fn set_metadata(&mut self, e: &ApplyEntry) -> Result<()> {
        let n = self
            .nodes
            .get_mut(&key(e.path))
            .ok_or_else(|| WimError::Apply {
                path: e.path.to_string(),
                reason: "missing".into(),
            })?;
        n.attributes = e.inode.attributes & !FILE_ATTRIBUTE_REPARSE_POINT;
        n.times = (
            e.inode.creation_time,
            e.inode.last_access_time,
            e.inode.last_write_time,
        );
        n.security_descriptor = e.security_descriptor.map(|s| s.to_vec());
        n.short_name = String::from_utf16_lossy(e.short_name);
        Ok(())
    }
}
