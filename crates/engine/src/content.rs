//! The content library (the distribution point on disk).
//!
//! Each package gets an ID (`TSQ00001`, …), a folder with its files under
//! `content/`, and `manifest.json` with kind, name, properties and the size and
//! SHA-256 of every file; `verify` compares the files against it. The engine
//! only sees the `ContentLibrary` trait, so a remote distribution point can
//! implement it later.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use tasq_tasksequence::model::Sequence;

#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("package {0} is not in the library")]
    NotFound(String),
    #[error("{path}: bad manifest: {message}")]
    Manifest { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> ContentError + '_ {
    move |e| ContentError::Io {
        path: path.to_path_buf(),
        source: e,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Relative, `/`-separated.
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub id: String,
    /// boot-image | os-image | driver | application | update | client | package
    pub kind: String,
    pub name: String,
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    pub files: Vec<FileEntry>,
}

impl Manifest {
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

pub const KINDS: [&str; 7] = [
    "boot-image",
    "os-image",
    "driver",
    "application",
    "update",
    "client",
    "package",
];

/// A problem `verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    Missing(String),
    Changed(String),
    Extra(String),
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Missing(p) => write!(f, "missing file {p}"),
            Problem::Changed(p) => write!(f, "changed file {p}"),
            Problem::Extra(p) => write!(f, "unexpected file {p}"),
        }
    }
}

pub trait ContentLibrary {
    fn list(&self) -> Result<Vec<Manifest>, ContentError>;
    fn manifest(&self, id: &str) -> Result<Manifest, ContentError>;
    /// Empty when the package's files match its manifest.
    fn verify(&self, id: &str) -> Result<Vec<Problem>, ContentError>;
    /// Where the package's files are, for steps that run from them.
    fn content_dir(&self, id: &str) -> Result<PathBuf, ContentError>;
}

/// A library in a local folder.
pub struct LocalLibrary {
    root: PathBuf,
}

fn valid_id(id: &str) -> bool {
    id.len() == 8 && id.starts_with("TSQ") && id.bytes().skip(3).all(|b| b.is_ascii_digit())
}

fn sha256_file(p: &Path) -> Result<(u64, String), ContentError> {
    let mut f = std::fs::File::open(p).map_err(io(p))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf).map_err(io(p))?;
        if k == 0 {
            break;
        }
        h.update(buf.get(..k).unwrap_or(&[]));
        n += k as u64;
    }
    Ok((n, h.finalize().iter().map(|b| format!("{b:02x}")).collect()))
}

/// Every regular file under `dir`, relative and sorted. Symbolic links are refused:
/// content must be self-contained.
fn walk(dir: &Path) -> Result<Vec<String>, ContentError> {
    fn go(base: &Path, rel: &str, out: &mut Vec<String>) -> Result<(), ContentError> {
        let here = if rel.is_empty() {
            base.to_path_buf()
        } else {
            base.join(rel)
        };
        for e in std::fs::read_dir(&here).map_err(io(&here))? {
            let e = e.map_err(io(&here))?;
            let name = e.file_name().to_string_lossy().to_string();
            let r = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let t = e.file_type().map_err(io(&here))?;
            if t.is_dir() {
                go(base, &r, out)?;
            } else if t.is_file() {
                out.push(r);
            } else {
                return Err(ContentError::Invalid(format!(
                    "{}: only files and folders can be content",
                    base.join(&r).display()
                )));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    if dir.exists() {
        go(dir, "", &mut out)?;
    }
    out.sort();
    Ok(out)
}

/// Reads a WIM's XML description (images, editions, architecture).
pub fn wim_images(path: &Path) -> Result<Vec<tasq_tasksequence::wiminfo::WimImage>, ContentError> {
    use std::io::{Seek, SeekFrom};
    use tasq_tasksequence::wiminfo;
    let mut f = std::fs::File::open(path).map_err(io(path))?;
    let mut header = vec![0u8; wiminfo::HEADER_LEN];
    f.read_exact(&mut header).map_err(io(path))?;
    let bad = |e: wiminfo::WimInfoError| ContentError::Invalid(format!("{}: {e}", path.display()));
    let loc = wiminfo::xml_location(&header).map_err(bad)?;
    if loc.size > wiminfo::MAX_XML {
        return Err(bad(wiminfo::WimInfoError::UnsupportedXml(loc.size)));
    }
    f.seek(SeekFrom::Start(loc.offset)).map_err(io(path))?;
    let mut xml = Vec::new();
    (&mut f)
        .take(loc.size)
        .read_to_end(&mut xml)
        .map_err(io(path))?;
    if xml.len() as u64 != loc.size {
        return Err(bad(wiminfo::WimInfoError::Truncated));
    }
    wiminfo::parse_xml(&xml).map_err(bad)
}

/// Boot and OS images: records every WIM's images (index, name, edition,
/// architecture) in the properties; a package without a readable WIM is refused.
fn describe_wims(content: &Path, props: &mut BTreeMap<String, String>) -> Result<(), ContentError> {
    let wims: Vec<String> = walk(content)?
        .into_iter()
        .filter(|p| p.to_ascii_lowercase().ends_with(".wim"))
        .collect();
    if wims.is_empty() {
        return Err(ContentError::Invalid(
            "an image package needs a .wim file".into(),
        ));
    }
    let mut archs = Vec::new();
    for w in &wims {
        let images = wim_images(&content.join(w))?;
        let list: Vec<String> = images
            .iter()
            .map(|i| {
                if let Some(a) = i.arch {
                    archs.push(a.name().to_string());
                }
                format!(
                    "{}: {}{}{}",
                    i.index,
                    i.name,
                    if i.edition.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", i.edition)
                    },
                    i.arch
                        .map(|a| format!(" [{}]", a.name()))
                        .unwrap_or_default()
                )
            })
            .collect();
        props.insert(format!("images:{w}"), list.join("; "));
    }
    archs.sort();
    archs.dedup();
    if !archs.is_empty() {
        props.insert("architecture".into(), archs.join(","));
    }
    Ok(())
}

/// Driver packages: every INF is read (an unreadable one is refused, naming
/// the file and line); the number of INFs, their classes, providers and the
/// architectures their Models sections are decorated for go into the
/// properties. A package without an INF is refused.
fn describe_drivers(
    content: &Path,
    props: &mut BTreeMap<String, String>,
) -> Result<(), ContentError> {
    let infs = tasq_drivers::catalog::find_infs(content, true).map_err(ContentError::Invalid)?;
    if infs.is_empty() {
        return Err(ContentError::Invalid(
            "a driver package needs at least one .inf file".into(),
        ));
    }
    let mut classes = Vec::new();
    let mut providers = Vec::new();
    let mut archs = Vec::new();
    for p in &infs {
        let d =
            tasq_drivers::DriverInf::read(p).map_err(|e| ContentError::Invalid(e.to_string()))?;
        classes.push(d.class.clone());
        providers.push(d.provider.clone());
        for a in d.architectures() {
            archs.push(a.map(|a| a.name()).unwrap_or("any").to_string());
        }
    }
    let list = |mut v: Vec<String>| {
        v.retain(|s| !s.is_empty());
        v.sort();
        v.dedup();
        v.join(",")
    };
    props.insert("infs".into(), infs.len().to_string());
    props.insert("classes".into(), list(classes));
    props.insert("providers".into(), list(providers));
    props.insert("architectures".into(), list(archs));
    Ok(())
}

impl LocalLibrary {
    pub fn new(root: &Path) -> LocalLibrary {
        LocalLibrary {
            root: root.to_path_buf(),
        }
    }

    fn pkg_dir(&self, id: &str) -> Result<PathBuf, ContentError> {
        if !valid_id(id) {
            return Err(ContentError::NotFound(id.to_string()));
        }
        let d = self.root.join(id);
        if !d.join("manifest.json").exists() {
            return Err(ContentError::NotFound(id.to_string()));
        }
        Ok(d)
    }

    fn next_id(&self) -> Result<String, ContentError> {
        let mut max = 0u32;
        if self.root.exists() {
            for e in std::fs::read_dir(&self.root).map_err(io(&self.root))? {
                let n = e
                    .map_err(io(&self.root))?
                    .file_name()
                    .to_string_lossy()
                    .to_string();
                if valid_id(&n) {
                    max = max.max(n.get(3..).and_then(|d| d.parse().ok()).unwrap_or(0));
                }
            }
        }
        if max >= 99_999 {
            return Err(ContentError::Invalid(
                "the library is full (TSQ99999)".into(),
            ));
        }
        Ok(format!("TSQ{:05}", max + 1))
    }

    /// Copies `source` (a file or a folder) in as a new package.
    pub fn add(
        &self,
        kind: &str,
        name: &str,
        source: &Path,
        properties: BTreeMap<String, String>,
    ) -> Result<Manifest, ContentError> {
        if !KINDS.contains(&kind) {
            return Err(ContentError::Invalid(format!(
                "unknown kind {kind:?} (one of {})",
                KINDS.join(", ")
            )));
        }
        std::fs::create_dir_all(&self.root).map_err(io(&self.root))?;
        let id = self.next_id()?;
        let dir = self.root.join(&id);
        let content = dir.join("content");
        std::fs::create_dir_all(&content).map_err(io(&content))?;
        let meta = std::fs::metadata(source).map_err(io(source))?;
        let result = (|| {
            if meta.is_dir() {
                for rel in walk(source)? {
                    let to = content.join(&rel);
                    if let Some(p) = to.parent() {
                        std::fs::create_dir_all(p).map_err(io(p))?;
                    }
                    std::fs::copy(source.join(&rel), &to).map_err(io(&to))?;
                }
            } else {
                let fname = source
                    .file_name()
                    .ok_or_else(|| ContentError::Invalid("source has no file name".into()))?;
                let to = content.join(fname);
                std::fs::copy(source, &to).map_err(io(&to))?;
            }
            let mut properties = properties;
            if kind == "boot-image" || kind == "os-image" {
                describe_wims(&content, &mut properties)?;
            }
            if kind == "driver" {
                describe_drivers(&content, &mut properties)?;
            }
            let mut files = Vec::new();
            for rel in walk(&content)? {
                let (size, sha256) = sha256_file(&content.join(&rel))?;
                files.push(FileEntry {
                    path: rel,
                    size,
                    sha256,
                });
            }
            let m = Manifest {
                id: id.clone(),
                kind: kind.to_string(),
                name: name.to_string(),
                properties,
                files,
            };
            let data =
                serde_json::to_vec_pretty(&m).map_err(|e| ContentError::Invalid(e.to_string()))?;
            crate::journal::write_durably(&dir.join("manifest.json"), &data)
                .map_err(|e| ContentError::Invalid(e.to_string()))?;
            Ok(m)
        })();
        if result.is_err() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        result
    }

    pub fn remove(&self, id: &str) -> Result<(), ContentError> {
        let d = self.pkg_dir(id)?;
        std::fs::remove_dir_all(&d).map_err(io(&d))
    }
}

impl ContentLibrary for LocalLibrary {
    fn list(&self) -> Result<Vec<Manifest>, ContentError> {
        let mut out = Vec::new();
        if !self.root.exists() {
            return Ok(out);
        }
        let mut ids: Vec<String> = std::fs::read_dir(&self.root)
            .map_err(io(&self.root))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| valid_id(n))
            .collect();
        ids.sort();
        for id in ids {
            if let Ok(m) = self.manifest(&id) {
                out.push(m);
            }
        }
        Ok(out)
    }

    fn manifest(&self, id: &str) -> Result<Manifest, ContentError> {
        let p = self.pkg_dir(id)?.join("manifest.json");
        let len = std::fs::metadata(&p).map_err(io(&p))?.len();
        if len > 64 << 20 {
            return Err(ContentError::Manifest {
                path: p,
                message: "too large".into(),
            });
        }
        let data = std::fs::read(&p).map_err(io(&p))?;
        let m: Manifest = serde_json::from_slice(&data).map_err(|e| ContentError::Manifest {
            path: p.clone(),
            message: e.to_string(),
        })?;
        if m.id != id {
            return Err(ContentError::Manifest {
                path: p,
                message: format!("manifest says {}", m.id),
            });
        }
        Ok(m)
    }

    fn verify(&self, id: &str) -> Result<Vec<Problem>, ContentError> {
        let m = self.manifest(id)?;
        let content = self.pkg_dir(id)?.join("content");
        let present = walk(&content)?;
        let mut problems = Vec::new();
        for f in &m.files {
            let p = content.join(&f.path);
            if !present.contains(&f.path) {
                problems.push(Problem::Missing(f.path.clone()));
                continue;
            }
            let (size, sha) = sha256_file(&p)?;
            if size != f.size || sha != f.sha256 {
                problems.push(Problem::Changed(f.path.clone()));
            }
        }
        for p in present {
            if !m.files.iter().any(|f| f.path == p) {
                problems.push(Problem::Extra(p));
            }
        }
        Ok(problems)
    }

    fn content_dir(&self, id: &str) -> Result<PathBuf, ContentError> {
        Ok(self.pkg_dir(id)?.join("content"))
    }
}

/// The package IDs a sequence references: its reference list and the steps'
/// `…PackageID` settings (unexpanded `%VAR%` values are left out).
pub fn referenced_packages(seq: &Sequence) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for r in seq.references.iter().flatten() {
        if let Some(id) = r.content_id() {
            ids.push(id.to_string());
        }
    }
    for (_, s) in seq.walk_steps() {
        if s.is_disabled() {
            continue;
        }
        for v in s.variables.iter().flatten() {
            let n = v.name.to_ascii_lowercase();
            let val = v.value.trim();
            if n.ends_with("packageid") && !val.is_empty() && !val.contains('%') {
                ids.push(val.to_string());
            }
        }
    }
    ids.sort();
    ids.dedup();
    ids
}

/// One line per referenced package that is missing or damaged; empty when all is there.
pub fn check_content(seq: &Sequence, lib: &dyn ContentLibrary) -> Vec<String> {
    let mut out = Vec::new();
    for id in referenced_packages(seq) {
        match lib.verify(&id) {
            Ok(p) if p.is_empty() => {}
            Ok(p) => out.push(format!(
                "package {id} is damaged: {}",
                p.iter()
                    .map(|x| x.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            Err(ContentError::NotFound(_)) => {
                out.push(format!("package {id} is missing from the content library"))
            }
            Err(e) => out.push(format!("package {id}: {e}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_list_verify_remove() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src");
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::write(src.join("setup.sh"), "echo hi").unwrap();
        std::fs::write(src.join("sub/data.bin"), [1u8, 2, 3]).unwrap();
        let lib = LocalLibrary::new(&d.path().join("lib"));
        let m = lib
            .add("application", "App", &src, BTreeMap::new())
            .unwrap();
        assert_eq!(m.id, "TSQ00001");
        assert_eq!(m.files.len(), 2);
        assert_eq!(m.files[0].path, "setup.sh");
        assert_eq!(
            m.files[0].sha256,
            sha256_file(&src.join("setup.sh")).unwrap().1
        );
        let m2 = lib
            .add(
                "package",
                "One file",
                &src.join("setup.sh"),
                BTreeMap::new(),
            )
            .unwrap();
        assert_eq!(m2.id, "TSQ00002");
        assert_eq!(lib.list().unwrap().len(), 2);
        assert!(lib.verify("TSQ00001").unwrap().is_empty());
        let c = lib.content_dir("TSQ00001").unwrap();
        std::fs::write(c.join("sub/data.bin"), [1u8, 2, 4]).unwrap();
        std::fs::write(c.join("new.txt"), "x").unwrap();
        std::fs::remove_file(c.join("setup.sh")).unwrap();
        let p = lib.verify("TSQ00001").unwrap();
        assert!(p.contains(&Problem::Changed("sub/data.bin".into())));
        assert!(p.contains(&Problem::Extra("new.txt".into())));
        assert!(p.contains(&Problem::Missing("setup.sh".into())));
        lib.remove("TSQ00002").unwrap();
        assert!(matches!(
            lib.verify("TSQ00002"),
            Err(ContentError::NotFound(_))
        ));
        assert!(matches!(
            lib.verify("../etc"),
            Err(ContentError::NotFound(_))
        ));
        assert!(lib.add("bogus", "x", &src, BTreeMap::new()).is_err());
    }

    #[test]
    fn known_sha256() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("abc");
        std::fs::write(&p, "abc").unwrap();
        assert_eq!(
            sha256_file(&p).unwrap(),
            (
                3,
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".to_string()
            )
        );
    }
}

#[cfg(test)]
mod reference_tests {
    use super::*;

    #[test]
    fn image_packages_list_their_wim_images() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("tree");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("a.txt"), "hello").unwrap();
        let wimdir = d.path().join("img");
        std::fs::create_dir_all(&wimdir).unwrap();
        let wim = wimdir.join("install.wim");
        let st = std::process::Command::new("wimlib-imagex")
            .arg("capture")
            .arg(&src)
            .arg(&wim)
            .arg("Reference Image")
            .stdout(std::process::Stdio::null())
            .status();
        let Ok(st) = st else {
            eprintln!("wimlib-imagex not installed; skipped");
            return;
        };
        assert!(st.success());
        let lib = LocalLibrary::new(&d.path().join("lib"));
        let m = lib
            .add("os-image", "Ref", &wimdir, BTreeMap::new())
            .unwrap();
        let imgs = m.properties.get("images:install.wim").unwrap();
        assert!(imgs.starts_with("1: Reference Image"), "{imgs}");
        // Not a WIM: refused.
        std::fs::write(wimdir.join("install.wim"), vec![0u8; 300]).unwrap();
        assert!(lib
            .add("os-image", "Bad", &wimdir, BTreeMap::new())
            .is_err());
        assert!(lib
            .add("boot-image", "None", &src, BTreeMap::new())
            .is_err());
        assert_eq!(
            lib.list().unwrap().len(),
            1,
            "failed adds leave nothing behind"
        );
    }

    #[test]
    fn run_refuses_naming_each_missing_or_damaged_package() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("s");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("f"), "1").unwrap();
        let lib = LocalLibrary::new(&d.path().join("lib"));
        let good = lib
            .add("package", "good", &src, BTreeMap::new())
            .unwrap()
            .id;
        let bad = lib.add("package", "bad", &src, BTreeMap::new()).unwrap().id;
        std::fs::write(lib.content_dir(&bad).unwrap().join("f"), "2").unwrap();
        let xml = format!(
            "<sequence version=\"3.10\"><referenceList><reference package=\"{good}\"/><reference package=\"TSQ00077\"/></referenceList><step type=\"SMS_TaskSequence_RunCommandLineAction\" name=\"r\"><defaultVarList><variable name=\"PackageID\" property=\"PackageID\" hidden=\"true\">{bad}</variable><variable name=\"CommandLine\" property=\"CommandLine\" hidden=\"true\">true</variable></defaultVarList></step></sequence>"
        );
        let seq = tasq_tasksequence::import_str(&xml).unwrap();
        assert_eq!(
            referenced_packages(&seq),
            vec![good.clone(), bad.clone(), "TSQ00077".to_string()]
        );
        let p = check_content(&seq, &lib);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p
            .iter()
            .any(|x| x.contains(&bad) && x.contains("changed file f")));
        assert!(p
            .iter()
            .any(|x| x.contains("TSQ00077") && x.contains("missing")));
    }
}
