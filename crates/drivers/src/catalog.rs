//! The driver catalog: every INF of a set of driver packages, indexed for
//! matching against a computer's devices, and the ranking Windows uses to
//! pick among candidates ("How Windows ranks drivers"):
//!
//! 1. which IDs matched: a device *hardware* ID before a device *compatible*
//!    ID, and on the INF side the line's first ID (its hardware ID) before
//!    the compatible IDs after it — Windows' rank ranges 0x0000, 0x1000,
//!    0x2000, 0x3000;
//! 2. the position of the matched ID in the device's list, then in the INF line;
//! 3. decoration fit of the Models section the match came from
//!    (architecture-specific before neutral, then the highest OS version);
//! 4. signed (catalog present) before unsigned;
//! 5. newest DriverVer date, then highest DriverVer version;
//! 6. the INF path, so the choice is stable.
//!
//! "Signed" here means the INF names a catalog file for the target and that
//! file is in the INF's folder; the Authenticode signature inside the
//! catalog is not checked (Windows Setup checks it when it installs).

use crate::driver::{Arch, DriverInf, DriverVer, Fit, OsVersion};
use crate::inf::InfError;
use crate::pnp::{device_ids, DeviceIds};
use std::cmp::Reverse;
use std::path::{Path, PathBuf};

/// Deepest folder nesting walked inside a package.
const MAX_DEPTH: usize = 32;
/// Most INFs indexed per package.
pub const MAX_INFS_PER_PACKAGE: usize = 10_000;

/// What the drivers are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub arch: Arch,
    /// `None`: the OS version is unknown and every version decoration applies.
    pub os: Option<OsVersion>,
}

/// A driver package of the content library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    pub id: String,
    pub name: String,
    pub categories: Vec<String>,
    pub dir: PathBuf,
}

/// One INF in the catalog.
#[derive(Debug, Clone)]
pub struct Driver {
    /// Index into [`Catalog::packages`].
    pub package: usize,
    pub path: PathBuf,
    /// Path inside the package, `/`-separated.
    pub rel_path: String,
    pub inf: DriverInf,
    /// Lower-cased names of the files next to the INF (for its catalog file).
    siblings: Vec<String>,
}

impl Driver {
    /// The folder holding the INF (what gets staged).
    pub fn folder(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }
    /// Whether the INF's catalog file for `target` is present next to it.
    pub fn signed(&self, target: Target) -> bool {
        self.inf
            .catalog_for(target.arch, target.os)
            .is_some_and(|c| self.siblings.contains(&c.to_ascii_lowercase()))
    }
}

/// Which of the device's lists the matched ID came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MatchKind {
    HardwareId,
    CompatibleId,
}

/// A driver that can serve a device, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Index into [`Catalog::drivers`].
    pub driver: usize,
    pub section: String,
    pub description: String,
    /// INF line of the device entry.
    pub line: usize,
    /// The ID that matched (as the device lists it).
    pub matched_id: String,
    pub kind: MatchKind,
    /// Position of the matched ID in the device's hardware or compatible list.
    pub device_index: usize,
    /// Position in the INF line's IDs (0 = the line's hardware ID).
    pub inf_index: usize,
    pub fit: Fit,
    pub signed: bool,
    pub driver_ver: DriverVer,
}

impl Candidate {
    /// Windows' rank number for the ID match (lower is better).
    pub fn rank(&self) -> u32 {
        let range = match (self.kind, self.inf_index == 0) {
            (MatchKind::HardwareId, true) => 0,
            (MatchKind::HardwareId, false) => 1,
            (MatchKind::CompatibleId, true) => 2,
            (MatchKind::CompatibleId, false) => 3,
        };
        let dev = self.device_index.min(0xF) as u32;
        let inf = self.inf_index.min(0xFF) as u32;
        (range << 12) | (dev << 8) | inf
    }
    fn order_key(&self) -> impl Ord {
        (
            self.kind,
            self.inf_index != 0,
            self.device_index,
            self.inf_index,
            Reverse(self.fit),
            !self.signed,
            Reverse(self.driver_ver.date),
            Reverse(self.driver_ver.version),
        )
    }
    /// One line for the log: why this driver ranks where it does.
    pub fn explain(&self, catalog: &Catalog) -> String {
        let d = catalog.drivers.get(self.driver);
        let pkg = d
            .and_then(|d| catalog.packages.get(d.package))
            .map(|p| p.id.as_str())
            .unwrap_or("?");
        format!(
            "{pkg}:{} [{}] \"{}\": {} {} matched (device list position {}, INF position {}; rank {:#06x}), decoration {}, {}, DriverVer {} {}",
            d.map(|d| d.rel_path.as_str()).unwrap_or("?"),
            self.section,
            self.description,
            match self.kind {
                MatchKind::HardwareId => "hardware ID",
                MatchKind::CompatibleId => "compatible ID",
            },
            self.matched_id,
            self.device_index,
            self.inf_index,
            self.rank(),
            if !self.fit.decorated {
                "none".to_string()
            } else if self.fit.arch_specific {
                format!("architecture-specific {}.{}.{}", self.fit.version.0, self.fit.version.1, self.fit.version.2)
            } else {
                format!("architecture-neutral {}.{}.{}", self.fit.version.0, self.fit.version.1, self.fit.version.2)
            },
            if self.signed { "signed" } else { "unsigned" },
            self.driver_ver.date_text(),
            self.driver_ver.version_text(),
        )
    }
}

#[derive(Debug, Clone, Default)]
pub struct SelectOptions {
    /// Only the best driver per device (else every compatible one).
    pub best_match: bool,
    pub allow_unsigned: bool,
    /// Package categories to use (any of them, without case); empty for all.
    pub categories: Vec<String>,
}

/// The drivers chosen for one device.
#[derive(Debug, Clone)]
pub struct DeviceChoice {
    pub device: DeviceIds,
    /// Best first; empty when nothing fits.
    pub chosen: Vec<Candidate>,
    /// Candidates left out by the options, with the reason.
    pub excluded: Vec<(Candidate, String)>,
}

#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub devices: Vec<DeviceChoice>,
}

impl Selection {
    /// Driver indexes to stage, each once, in the order first chosen.
    pub fn drivers(&self) -> Vec<usize> {
        let mut out: Vec<usize> = Vec::new();
        for c in self.devices.iter().flat_map(|d| &d.chosen) {
            if !out.contains(&c.driver) {
                out.push(c.driver);
            }
        }
        out
    }
}

#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub packages: Vec<Package>,
    pub drivers: Vec<Driver>,
}

impl Catalog {
    pub fn new() -> Catalog {
        Catalog::default()
    }

    /// Indexes every `*.inf` under `package.dir` (`recurse`: in subfolders
    /// too). An INF that cannot be read is an error naming it and the line.
    /// Returns how many INFs were added.
    pub fn add_package(&mut self, package: Package, recurse: bool) -> Result<usize, InfError> {
        let infs = find_infs(&package.dir, recurse).map_err(|e| InfError {
            file: package.dir.display().to_string(),
            line: 0,
            reason: e,
        })?;
        let idx = self.packages.len();
        let dir = package.dir.clone();
        self.packages.push(package);
        let mut parsed = Vec::with_capacity(infs.len());
        for path in &infs {
            let inf = match DriverInf::read(path) {
                Ok(i) => i,
                Err(e) => {
                    self.packages.pop();
                    return Err(e);
                }
            };
            let siblings = path
                .parent()
                .and_then(|p| std::fs::read_dir(p).ok())
                .map(|rd| {
                    rd.filter_map(|e| e.ok())
                        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                        .map(|e| e.file_name().to_string_lossy().to_ascii_lowercase())
                        .collect()
                })
                .unwrap_or_default();
            let rel_path = path
                .strip_prefix(&dir)
                .unwrap_or(path)
                .to_string_lossy()
                .replace('\\', "/");
            parsed.push(Driver {
                package: idx,
                path: path.clone(),
                rel_path,
                inf,
                siblings,
            });
        }
        let n = parsed.len();
        self.drivers.extend(parsed);
        Ok(n)
    }

    /// Every driver that can serve the device on `target`, best first (one
    /// candidate per INF: its best-matching device line).
    pub fn candidates(&self, device: &DeviceIds, target: Target) -> Vec<Candidate> {
        let mut out = Vec::new();
        for (di, d) in self.drivers.iter().enumerate() {
            let signed = d.signed(target);
            let mut best: Option<Candidate> = None;
            for m in &d.inf.manufacturers {
                let Some(section) = m.section_for(target.arch, target.os) else {
                    continue;
                };
                for model in &section.models {
                    for (inf_index, id) in model.ids.iter().enumerate() {
                        let lists = [
                            (MatchKind::HardwareId, &device.hardware_ids),
                            (MatchKind::CompatibleId, &device.compatible_ids),
                        ];
                        for (kind, list) in lists {
                            let Some(pos) = list.iter().position(|x| x.eq_ignore_ascii_case(id))
                            else {
                                continue;
                            };
                            let c = Candidate {
                                driver: di,
                                section: section.name.clone(),
                                description: model.description.clone(),
                                line: model.line,
                                matched_id: list.get(pos).cloned().unwrap_or_default(),
                                kind,
                                device_index: pos,
                                inf_index,
                                fit: section.fit(),
                                signed,
                                driver_ver: d.inf.driver_ver,
                            };
                            if best.as_ref().is_none_or(|b| c.order_key() < b.order_key()) {
                                best = Some(c);
                            }
                        }
                    }
                }
            }
            out.extend(best);
        }
        out.sort_by(|a, b| {
            a.order_key().cmp(&b.order_key()).then_with(|| {
                let pa = self.drivers.get(a.driver).map(|d| &d.path);
                let pb = self.drivers.get(b.driver).map(|d| &d.path);
                pa.cmp(&pb)
            })
        });
        out
    }

    fn in_categories(&self, c: &Candidate, wanted: &[String]) -> bool {
        if wanted.is_empty() {
            return true;
        }
        self.drivers
            .get(c.driver)
            .and_then(|d| self.packages.get(d.package))
            .is_some_and(|p| {
                p.categories.iter().any(|pc| {
                    wanted
                        .iter()
                        .any(|w| w.trim().eq_ignore_ascii_case(pc.trim()))
                })
            })
    }

    /// Chooses drivers for each PnP ID.
    pub fn select(&self, pnp_ids: &[String], target: Target, opts: &SelectOptions) -> Selection {
        let mut devices = Vec::new();
        for p in pnp_ids {
            let device = device_ids(p);
            let mut chosen = Vec::new();
            let mut excluded = Vec::new();
            for c in self.candidates(&device, target) {
                if !self.in_categories(&c, &opts.categories) {
                    excluded.push((c, "its package is in none of the step's categories".into()));
                } else if !c.signed && !opts.allow_unsigned {
                    excluded.push((
                        c,
                        "unsigned (no catalog file for this architecture next to the INF) and the step does not allow unsigned drivers".into(),
                    ));
                } else if opts.best_match && !chosen.is_empty() {
                    excluded.push((c, "not the best match".into()));
                } else {
                    chosen.push(c);
                }
            }
            devices.push(DeviceChoice {
                device,
                chosen,
                excluded,
            });
        }
        Selection { devices }
    }
}

/// `*.inf` files under `dir` (subfolders too when `recurse`), sorted.
/// Symbolic links are not followed.
pub fn find_infs(dir: &Path, recurse: bool) -> Result<Vec<PathBuf>, String> {
    fn go(dir: &Path, recurse: bool, depth: usize, out: &mut Vec<PathBuf>) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!("{}: folders nested too deep", dir.display()));
        }
        let rd = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut entries: Vec<_> = rd.filter_map(|e| e.ok()).collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let Ok(t) = e.file_type() else { continue };
            let p = e.path();
            if t.is_dir() && recurse {
                go(&p, recurse, depth + 1, out)?;
            } else if t.is_file()
                && p.extension()
                    .is_some_and(|x| x.to_string_lossy().eq_ignore_ascii_case("inf"))
            {
                if out.len() >= MAX_INFS_PER_PACKAGE {
                    return Err(format!("more than {MAX_INFS_PER_PACKAGE} INF files"));
                }
                out.push(p);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    go(dir, recurse, 0, &mut out)?;
    Ok(out)
}
