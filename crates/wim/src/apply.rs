//! The apply seam: an [`ApplyTarget`] receives an image, entry by entry, and
//! materialises it on some file system. The order of calls is fixed:
//!
//! 1. `create_directory` for every directory, parents first (the root,
//!    with an empty path, first of all);
//! 2. `create_file` for the first name of every non-directory inode and
//!    `create_hard_link` for its other names;
//! 3. `open_stream` for every non-empty data stream, in the order blobs
//!    lie in the WIM (each stream's bytes written in order, then the writer
//!    dropped); empty named streams are opened and dropped with no data;
//! 4. `set_reparse_point` for reparse-point inodes;
//! 5. `set_metadata` for every entry, children before parents (so that
//!    directory times survive the creation of their contents);
//! 6. `finish`.
//!
//! Names are checked before any call: a target never sees `..`, `.`, an
//! empty name, a separator or a NUL in a component.

use std::fmt;
use std::io::Write;
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
        check_component(name)?;
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

    fn create_directory(&mut self, entry: &ApplyEntry) -> Result<()>;

    /// Creates the first name of a non-directory inode (a reparse-point
    /// inode may be created here or in `set_reparse_point`, as the file
    /// system requires).
    fn create_file(&mut self, entry: &ApplyEntry) -> Result<()>;

    /// Adds `entry.path` as another name of the file created at `existing`.
    fn create_hard_link(&mut self, existing: &WimPath, entry: &ApplyEntry) -> Result<()>;

    /// Opens a data stream of a created file for writing `stream.size` bytes.
    fn open_stream<'s>(&'s mut self, path: &WimPath, stream: &Stream) -> Result<Box<dyn Write + 's>>;

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
