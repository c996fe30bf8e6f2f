//! [`VolumeFs`] over a host directory: the installed OS's volume when the
//! engine runs inside it, and a stand-in volume in tests. Every component
//! of a path is checked with `lstat` before use, so a symlink planted in
//! the tree is refused instead of followed out of the root.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::fs::{EntryKind, FsEntry, FsError, FsResult, VolPath, VolumeFs};

pub struct HostDirFs {
    root: PathBuf,
}

impl HostDirFs {
    /// The directory must exist.
    pub fn new(root: impl Into<PathBuf>) -> FsResult<HostDirFs> {
        let root = root.into();
        match std::fs::symlink_metadata(&root) {
            Ok(m) if m.is_dir() => Ok(HostDirFs { root }),
            Ok(_) => Err(FsError::new(
                root.display().to_string(),
                "opening",
                "\\",
                "not a directory",
            )),
            Err(e) => Err(FsError::new(
                root.display().to_string(),
                "opening",
                "\\",
                e.to_string(),
            )),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn err(&self, op: &'static str, path: &VolPath, reason: impl ToString) -> FsError {
        FsError::new(self.describe(), op, path, reason.to_string())
    }

    /// The host path of `path`, refusing any existing component (the last
    /// included) that is not a directory, except the last one being a file.
    fn resolve(&self, op: &'static str, path: &VolPath) -> FsResult<PathBuf> {
        self.resolve_with(op, path, false)
    }

    /// As `resolve`; with `last_link_ok` the last component may be a link
    /// (to remove the link itself, or report it as `Other`).
    fn resolve_with(
        &self,
        op: &'static str,
        path: &VolPath,
        last_link_ok: bool,
    ) -> FsResult<PathBuf> {
        let mut p = self.root.clone();
        let n = path.components().len();
        for (i, c) in path.components().iter().enumerate() {
            p.push(c);
            match std::fs::symlink_metadata(&p) {
                Ok(m) if m.file_type().is_symlink() && !(last_link_ok && i + 1 == n) => {
                    return Err(self.err(op, path, format!("{c:?} is a symbolic link")))
                }
                Ok(m) if !m.is_dir() && i + 1 < n => {
                    return Err(self.err(op, path, format!("{c:?} is not a directory")))
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(self.err(op, path, e)),
            }
        }
        Ok(p)
    }
}

fn entry_of(name: String, m: &std::fs::Metadata) -> FsEntry {
    let ft = m.file_type();
    let kind = if ft.is_symlink() {
        EntryKind::Other
    } else if ft.is_dir() {
        EntryKind::Dir
    } else if ft.is_file() {
        EntryKind::File
    } else {
        EntryKind::Other
    };
    FsEntry {
        name,
        kind,
        size: if kind == EntryKind::File { m.len() } else { 0 },
    }
}

impl VolumeFs for HostDirFs {
    fn describe(&self) -> String {
        format!("directory {}", self.root.display())
    }

    fn metadata(&mut self, path: &VolPath) -> FsResult<Option<FsEntry>> {
        let p = self.resolve_with("reading", path, true)?;
        match std::fs::symlink_metadata(&p) {
            Ok(m) => Ok(Some(entry_of(
                path.file_name().unwrap_or("").to_string(),
                &m,
            ))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.err("reading", path, e)),
        }
    }

    fn read_dir(&mut self, path: &VolPath) -> FsResult<Vec<FsEntry>> {
        let p = self.resolve("listing", path)?;
        let mut out = Vec::new();
        for e in std::fs::read_dir(&p).map_err(|e| self.err("listing", path, e))? {
            let e = e.map_err(|e| self.err("listing", path, e))?;
            let Some(name) = e.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let m = e.metadata().map_err(|e| self.err("listing", path, e))?;
            out.push(entry_of(name, &m));
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn create_dir_all(&mut self, path: &VolPath) -> FsResult<()> {
        let p = self.resolve("creating", path)?;
        std::fs::create_dir_all(&p).map_err(|e| self.err("creating", path, e))
    }

    fn write_file(&mut self, path: &VolPath, data: &mut dyn Read) -> FsResult<u64> {
        if let Some(parent) = path.parent() {
            self.create_dir_all(&parent)?;
        }
        let p = self.resolve("writing", path)?;
        if std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) {
            return Err(self.err("writing", path, "a directory is in the way"));
        }
        // Written beside the destination and renamed over it, so a failed
        // write leaves the old file (or none), never a half-written one.
        // The temporary file has a random name and is created with O_EXCL:
        // a link planted under any name in the volume is never followed.
        let res = (|| -> std::io::Result<u64> {
            let mut tmp = tasq_wim::writer::temp_file_beside(&p)?;
            let n = std::io::copy(data, &mut tmp)?;
            tmp.flush()?;
            // On failure the error's temporary path is dropped: removed.
            tmp.persist(&p).map_err(|e| e.error)?;
            Ok(n)
        })();
        res.map_err(|e| self.err("writing", path, e))
    }

    fn read_file(&mut self, path: &VolPath, limit: u64) -> FsResult<Vec<u8>> {
        let p = self.resolve("reading", path)?;
        let f = std::fs::File::open(&p).map_err(|e| self.err("reading", path, e))?;
        let len = f
            .metadata()
            .map_err(|e| self.err("reading", path, e))?
            .len();
        if len > limit {
            return Err(self.err(
                "reading",
                path,
                format!("{len} bytes, more than the {limit} allowed"),
            ));
        }
        let mut out = Vec::with_capacity(len as usize);
        f.take(limit.saturating_add(1))
            .read_to_end(&mut out)
            .map_err(|e| self.err("reading", path, e))?;
        if out.len() as u64 > limit {
            return Err(self.err("reading", path, "the file grew past the limit"));
        }
        Ok(out)
    }

    fn remove(&mut self, path: &VolPath) -> FsResult<()> {
        if path.is_root() {
            return Err(self.err("removing", path, "the root cannot be removed"));
        }
        let p = self.resolve_with("removing", path, true)?;
        match std::fs::symlink_metadata(&p) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.err("removing", path, e)),
            // remove_dir_all does not follow symlinks inside the tree.
            Ok(m) if m.is_dir() => {
                std::fs::remove_dir_all(&p).map_err(|e| self.err("removing", path, e))
            }
            Ok(_) => std::fs::remove_file(&p).map_err(|e| self.err("removing", path, e)),
        }
    }

    fn free_space(&mut self) -> FsResult<u64> {
        let st = rustix::fs::statvfs(&self.root)
            .map_err(|e| self.err("measuring", &VolPath::root(), e))?;
        Ok(st.f_bavail.saturating_mul(st.f_frsize))
    }

    fn flush(&mut self) -> FsResult<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::{copy_host_tree, wipe_except};

    fn vp(s: &str) -> VolPath {
        VolPath::parse(s).unwrap()
    }

    #[test]
    fn write_read_list_remove() {
        let d = tempfile::tempdir().unwrap();
        let mut fs = HostDirFs::new(d.path()).unwrap();
        let p = vp("Windows\\Panther\\Unattend\\unattend.xml");
        assert_eq!(fs.write_file(&p, &mut &b"<x/>"[..]).unwrap(), 4);
        assert_eq!(fs.read_file(&p, 100).unwrap(), b"<x/>");
        assert!(fs.read_file(&p, 3).is_err());
        let e = fs.metadata(&p).unwrap().unwrap();
        assert_eq!((e.kind, e.size), (EntryKind::File, 4));
        assert_eq!(fs.metadata(&vp("nope")).unwrap(), None);
        let names: Vec<_> = fs
            .read_dir(&vp("Windows\\Panther\\Unattend"))
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names, ["unattend.xml"]);
        fs.write_file(&p, &mut &b"new"[..]).unwrap();
        assert_eq!(fs.read_file(&p, 100).unwrap(), b"new");
        fs.remove(&vp("Windows")).unwrap();
        assert_eq!(fs.metadata(&vp("Windows")).unwrap(), None);
        fs.remove(&vp("Windows")).unwrap();
        assert!(fs.remove(&VolPath::root()).is_err());
        assert!(fs.free_space().unwrap() > 0);
    }

    #[test]
    fn symlinks_are_refused_not_followed() {
        let d = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), d.path().join("Windows")).unwrap();
        let mut fs = HostDirFs::new(d.path()).unwrap();
        let err = fs
            .write_file(&vp("Windows\\evil.txt"), &mut &b"x"[..])
            .unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert!(std::fs::read_dir(outside.path()).unwrap().next().is_none());
        fs.remove(&vp("Windows")).unwrap();
        assert!(outside.path().exists());
    }

    #[test]
    fn a_link_planted_beside_the_file_is_not_followed() {
        // The old temporary name of a write was fixed; a link planted under
        // it sent the write outside the volume.
        let d = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        std::os::unix::fs::symlink(&victim, d.path().join(".f.txt.tasq-tmp")).unwrap();
        let mut fs = HostDirFs::new(d.path()).unwrap();
        fs.write_file(&vp("f.txt"), &mut &b"new"[..]).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        assert_eq!(fs.read_file(&vp("f.txt"), 10).unwrap(), b"new");
        // No temporary file is left beside it.
        let mut names: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, [".f.txt.tasq-tmp", "f.txt"]);
    }

    #[test]
    fn tree_copy_and_wipe() {
        let src = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(src.path().join("a/b")).unwrap();
        std::fs::write(src.path().join("a/b/f.inf"), b"[Version]").unwrap();
        std::fs::write(src.path().join("top.txt"), b"hi").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", src.path().join("link")).unwrap();
        let d = tempfile::tempdir().unwrap();
        let mut fs = HostDirFs::new(d.path()).unwrap();
        let st = copy_host_tree(&mut fs, src.path(), &vp("Drivers\\1")).unwrap();
        assert_eq!((st.files, st.dirs, st.bytes), (2, 2, 11));
        assert_eq!(st.skipped.len(), 1);
        assert_eq!(
            std::fs::read(d.path().join("Drivers/1/a/b/f.inf")).unwrap(),
            b"[Version]"
        );
        fs.create_dir_all(&vp("_SMSTaskSequence\\Logs")).unwrap();
        let removed = wipe_except(&mut fs, &["_smstasksequence"]).unwrap();
        assert_eq!(removed, ["Drivers"]);
        assert!(d.path().join("_SMSTaskSequence/Logs").is_dir());
    }
}
