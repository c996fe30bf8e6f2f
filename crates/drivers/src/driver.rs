//! What driver matching needs from a parsed INF: the `[Version]` facts
//! (class, provider, DriverVer, catalog files), the `[Manufacturer]` entries
//! with their TargetOSVersion decorations
//! (`nt[Architecture][.[OSMajorVersion][.[OSMinorVersion][.[ProductType][.[SuiteMask][.[BuildNumber]]]]]]`),
//! and the Models sections: each device's description, install section and
//! its hardware ID followed by compatible IDs.
//!
//! Which Models section of a manufacturer applies to a target follows the
//! "Combining platform extensions with operating system versions" rules:
//! a decoration for another architecture never applies, one naming a newer
//! OS version or build than the target does not apply, and among those left
//! the most specific wins (an architecture-specific decoration before an
//! architecture-neutral `NT…` one or the undecorated section, then the
//! highest OS version).

use crate::inf::{Inf, InfError, Warning};

/// Processor architecture of a decoration or a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Arch {
    X86,
    Amd64,
    Arm,
    Arm64,
    Ia64,
}

impl Arch {
    /// `x86`, `amd64`/`x64`, `arm`, `arm64`, `ia64`, without case.
    pub fn parse(s: &str) -> Option<Arch> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "x86" | "i386" => Arch::X86,
            "amd64" | "x64" | "x86_64" => Arch::Amd64,
            "arm" => Arch::Arm,
            "arm64" | "aarch64" => Arch::Arm64,
            "ia64" => Arch::Ia64,
            _ => return None,
        })
    }
    /// The name INF decorations use.
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86 => "x86",
            Arch::Amd64 => "amd64",
            Arch::Arm => "arm",
            Arch::Arm64 => "arm64",
            Arch::Ia64 => "ia64",
        }
    }
}

/// A Windows version to match decorations against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct OsVersion {
    pub major: u32,
    pub minor: u32,
    pub build: u32,
}

impl OsVersion {
    /// `10.0`, `10.0.19041`, `6.1.7601` (a fourth part is ignored).
    pub fn parse(s: &str) -> Option<OsVersion> {
        let mut it = s.trim().split('.');
        let major = it.next()?.trim().parse().ok()?;
        let minor = match it.next() {
            Some(m) => m.trim().parse().ok()?,
            None => 0,
        };
        let build = match it.next() {
            Some(b) => b.trim().parse().ok()?,
            None => 0,
        };
        Some(OsVersion {
            major,
            minor,
            build,
        })
    }
}

/// A parsed TargetOSVersion decoration.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Decoration {
    /// As written (`NTamd64.10.0...16299`); also the Models section suffix.
    pub text: String,
    pub arch: Option<Arch>,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub product_type: Option<u32>,
    pub suite_mask: Option<u32>,
    pub build: Option<u32>,
}

fn number(s: &str) -> Option<u32> {
    let t = s.trim();
    match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16).ok(),
        None => t.parse().ok(),
    }
}

impl Decoration {
    /// Parses `NT`, `NTamd64`, `NTx86.6.1`, `NTamd64.10.0...16299`, `NTarm64.10.0.1`.
    pub fn parse(text: &str) -> Result<Decoration, String> {
        let t = text.trim();
        let lower = t.to_ascii_lowercase();
        let rest = lower
            .strip_prefix("nt")
            .ok_or_else(|| format!("decoration {t:?} does not start with NT"))?;
        let mut parts = rest.split('.');
        let arch_text = parts.next().unwrap_or("");
        let arch =
            if arch_text.is_empty() {
                None
            } else {
                Some(Arch::parse(arch_text).ok_or_else(|| {
                    format!("decoration {t:?}: unknown architecture {arch_text:?}")
                })?)
            };
        let mut fields: [Option<u32>; 5] = [None; 5];
        for (i, p) in parts.enumerate() {
            let slot = fields
                .get_mut(i)
                .ok_or_else(|| format!("decoration {t:?} has too many fields"))?;
            if !p.trim().is_empty() {
                *slot = Some(
                    number(p).ok_or_else(|| format!("decoration {t:?}: {p:?} is not a number"))?,
                );
            }
        }
        let [major, minor, product_type, suite_mask, build] = fields;
        Ok(Decoration {
            text: t.to_string(),
            arch,
            major,
            minor,
            product_type,
            suite_mask,
            build,
        })
    }

    /// Whether this decoration's Models section applies to `target`
    /// (`os`: `None` when the target version is unknown, so any version applies).
    pub fn applies(&self, arch: Arch, os: Option<OsVersion>) -> bool {
        if self.arch.is_some_and(|a| a != arch) {
            return false;
        }
        let Some(os) = os else { return true };
        let want = (
            self.major.unwrap_or(0),
            self.minor.unwrap_or(0),
            self.build.unwrap_or(0),
        );
        want <= (os.major, os.minor, os.build)
    }

    /// How well it fits (higher is better): architecture-specific first,
    /// then the OS version and build it names, then a product type.
    pub fn fit(&self) -> Fit {
        Fit {
            arch_specific: self.arch.is_some(),
            decorated: true,
            version: (
                self.major.unwrap_or(0),
                self.minor.unwrap_or(0),
                self.build.unwrap_or(0),
            ),
            product_type: self.product_type.is_some(),
        }
    }
}

/// Decoration fit of a Models section; compares better-is-greater.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Fit {
    pub arch_specific: bool,
    /// False for the undecorated section (the fallback).
    pub decorated: bool,
    pub version: (u32, u32, u32),
    pub product_type: bool,
}

/// `DriverVer = MM/DD/YYYY[,a.b.c.d]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct DriverVer {
    /// (year, month, day); (0,0,0) when absent.
    pub date: (u16, u8, u8),
    pub version: [u16; 4],
}

impl DriverVer {
    pub fn parse(date: &str, version: Option<&str>) -> Result<DriverVer, String> {
        let d: Vec<&str> = date.trim().split(['/', '-']).collect();
        let [m, dd, y] = d.as_slice() else {
            return Err(format!("DriverVer date {date:?} is not MM/DD/YYYY"));
        };
        let (Ok(m), Ok(dd), Ok(y)) = (
            m.trim().parse::<u8>(),
            dd.trim().parse::<u8>(),
            y.trim().parse::<u16>(),
        ) else {
            return Err(format!("DriverVer date {date:?} is not MM/DD/YYYY"));
        };
        if !(1..=12).contains(&m) || !(1..=31).contains(&dd) || y < 1980 {
            return Err(format!("DriverVer date {date:?} is out of range"));
        }
        let mut v = [0u16; 4];
        if let Some(vs) = version.map(str::trim).filter(|s| !s.is_empty()) {
            let parts: Vec<&str> = vs.split('.').collect();
            if parts.len() > 4 {
                return Err(format!("DriverVer version {vs:?} has more than four parts"));
            }
            for (slot, p) in v.iter_mut().zip(parts) {
                *slot = p
                    .trim()
                    .parse()
                    .map_err(|_| format!("DriverVer version {vs:?}: {p:?} is not 0..65535"))?;
            }
        }
        Ok(DriverVer {
            date: (y, m, dd),
            version: v,
        })
    }
    pub fn date_text(&self) -> String {
        format!("{:02}/{:02}/{:04}", self.date.1, self.date.2, self.date.0)
    }
    pub fn version_text(&self) -> String {
        let [a, b, c, d] = self.version;
        format!("{a}.{b}.{c}.{d}")
    }
}

/// One device line of a Models section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Model {
    pub description: String,
    pub install_section: String,
    /// The hardware ID first, then the compatible IDs, as written.
    pub ids: Vec<String>,
    pub line: usize,
}

/// A Models section reachable from `[Manufacturer]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelsSection {
    /// Full section name (`QEMU.NTamd64`).
    pub name: String,
    /// `None` for the undecorated section.
    pub decoration: Option<Decoration>,
    pub models: Vec<Model>,
}

impl ModelsSection {
    pub fn fit(&self) -> Fit {
        self.decoration
            .as_ref()
            .map(Decoration::fit)
            .unwrap_or_default()
    }
    fn applies(&self, arch: Arch, os: Option<OsVersion>) -> bool {
        self.decoration.as_ref().is_none_or(|d| d.applies(arch, os))
    }
}

/// One `[Manufacturer]` entry and the Models sections its decorations name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manufacturer {
    pub name: String,
    pub line: usize,
    /// The undecorated section (when the INF has it) and one per usable decoration.
    pub sections: Vec<ModelsSection>,
}

impl Manufacturer {
    /// The Models section Windows would use for this target, if any.
    pub fn section_for(&self, arch: Arch, os: Option<OsVersion>) -> Option<&ModelsSection> {
        self.sections
            .iter()
            .filter(|s| s.applies(arch, os))
            .max_by_key(|s| s.fit())
    }
}

/// A driver INF read for matching.
#[derive(Debug, Clone)]
pub struct DriverInf {
    pub file: String,
    pub class: String,
    pub class_guid: String,
    pub provider: String,
    pub driver_ver: DriverVer,
    /// `CatalogFile` and decorated `CatalogFile.NT…` entries: (decoration, file).
    pub catalogs: Vec<(Option<Decoration>, String)>,
    pub manufacturers: Vec<Manufacturer>,
    /// Parser warnings and INF-level problems (unusable decorations, missing sections).
    pub warnings: Vec<Warning>,
}

impl DriverInf {
    /// Reads a parsed INF; an INF without `[Version]` or with a wrong
    /// `Signature` is not a Windows NT INF and is an error.
    pub fn from_inf(inf: &Inf) -> Result<DriverInf, InfError> {
        let err = |line: usize, reason: String| InfError {
            file: inf.file.clone(),
            line,
            reason,
        };
        let version = inf
            .section("Version")
            .ok_or_else(|| err(0, "no [Version] section: not an INF".into()))?;
        let sig_line = version.entries("Signature").next();
        let sig = sig_line.and_then(|l| l.value(0)).unwrap_or("");
        if !sig.eq_ignore_ascii_case("$Windows NT$") && !sig.eq_ignore_ascii_case("$Chicago$") {
            return Err(err(
                sig_line.map(|l| l.line).unwrap_or(version.line),
                format!("Signature {sig:?} is not \"$Windows NT$\" or \"$Chicago$\""),
            ));
        }
        let mut warnings = inf.warnings.clone();
        let driver_ver = match version.entries("DriverVer").next() {
            Some(l) => match DriverVer::parse(l.value(0).unwrap_or(""), l.value(1)) {
                Ok(v) => v,
                Err(m) => {
                    warnings.push(Warning {
                        line: l.line,
                        message: format!("{m}; taken as the oldest"),
                    });
                    DriverVer::default()
                }
            },
            None => DriverVer::default(),
        };
        let mut catalogs = Vec::new();
        for l in &version.lines {
            let Some(k) = l.key.as_deref() else { continue };
            let lower = k.to_ascii_lowercase();
            let Some(rest) = lower.strip_prefix("catalogfile") else {
                continue;
            };
            let file = l.value(0).unwrap_or("").to_string();
            if rest.is_empty() {
                catalogs.push((None, file));
            } else if let Some(dec) = rest.strip_prefix('.') {
                match Decoration::parse(k.get(k.len() - dec.len()..).unwrap_or(dec)) {
                    Ok(d) => catalogs.push((Some(d), file)),
                    Err(m) => warnings.push(Warning {
                        line: l.line,
                        message: m,
                    }),
                }
            }
        }
        let mut manufacturers = Vec::new();
        if let Some(mfg) = inf.section("Manufacturer") {
            for l in &mfg.lines {
                // `%Mfg% = Models, NTamd64, …` or a bare `Models` name.
                let (name, base, decos) = match &l.key {
                    Some(k) => (k.clone(), l.value(0).unwrap_or(""), l.values.get(1..)),
                    None => {
                        let v = l.value(0).unwrap_or("");
                        (v.to_string(), v, l.values.get(1..))
                    }
                };
                if base.is_empty() {
                    warnings.push(Warning {
                        line: l.line,
                        message: "manufacturer entry without a Models section name".into(),
                    });
                    continue;
                }
                let mut sections = Vec::new();
                if let Some(s) = inf.section(base) {
                    sections.push(ModelsSection {
                        name: s.name.clone(),
                        decoration: None,
                        models: models(s, &mut warnings),
                    });
                }
                for d in decos.unwrap_or(&[]) {
                    if d.trim().is_empty() {
                        continue;
                    }
                    let dec = match Decoration::parse(d) {
                        Ok(dec) => dec,
                        Err(m) => {
                            warnings.push(Warning {
                                line: l.line,
                                message: format!("{m}; that Models section is not used"),
                            });
                            continue;
                        }
                    };
                    let full = format!("{base}.{}", dec.text);
                    match inf.section(&full) {
                        Some(s) => sections.push(ModelsSection {
                            name: s.name.clone(),
                            decoration: Some(dec),
                            models: models(s, &mut warnings),
                        }),
                        None => warnings.push(Warning {
                            line: l.line,
                            message: format!("Models section [{full}] is missing"),
                        }),
                    }
                }
                manufacturers.push(Manufacturer {
                    name,
                    line: l.line,
                    sections,
                });
            }
        }
        Ok(DriverInf {
            file: inf.file.clone(),
            class: version.value("Class").unwrap_or("").to_string(),
            class_guid: version.value("ClassGuid").unwrap_or("").to_string(),
            provider: version.value("Provider").unwrap_or("").to_string(),
            driver_ver,
            catalogs,
            manufacturers,
            warnings,
        })
    }

    /// Parses bytes straight to a driver INF.
    pub fn parse(file: &str, bytes: &[u8]) -> Result<DriverInf, InfError> {
        DriverInf::from_inf(&Inf::parse(file, bytes)?)
    }

    /// Reads a file straight to a driver INF.
    pub fn read(path: &std::path::Path) -> Result<DriverInf, InfError> {
        DriverInf::from_inf(&Inf::read(path)?)
    }

    /// The catalog file for `arch`: the best-fitting decorated
    /// `CatalogFile.NT…` that applies, else the undecorated one.
    pub fn catalog_for(&self, arch: Arch, os: Option<OsVersion>) -> Option<&str> {
        let decorated = self
            .catalogs
            .iter()
            .filter_map(|(d, f)| d.as_ref().map(|d| (d, f)))
            .filter(|(d, _)| d.applies(arch, os))
            .max_by_key(|(d, _)| d.fit())
            .map(|(_, f)| f.as_str());
        decorated
            .or_else(|| {
                self.catalogs
                    .iter()
                    .find(|(d, _)| d.is_none())
                    .map(|(_, f)| f.as_str())
            })
            .filter(|f| !f.is_empty())
    }

    /// Architectures the INF's decorated Models sections name (`None`
    /// entries stand for architecture-neutral sections).
    pub fn architectures(&self) -> Vec<Option<Arch>> {
        let mut v: Vec<Option<Arch>> = self
            .manufacturers
            .iter()
            .flat_map(|m| &m.sections)
            .map(|s| s.decoration.as_ref().and_then(|d| d.arch))
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

fn models(s: &crate::inf::Section, warnings: &mut Vec<Warning>) -> Vec<Model> {
    let mut out = Vec::new();
    for l in &s.lines {
        let install = l.value(0).unwrap_or("").trim();
        let ids: Vec<String> = l
            .values
            .get(1..)
            .unwrap_or(&[])
            .iter()
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect();
        if l.key.is_none() || install.is_empty() || ids.is_empty() {
            warnings.push(Warning {
                line: l.line,
                message: format!(
                    "[{}]: a device line needs `description = install-section, hardware-id[, compatible-id…]`",
                    s.name
                ),
            });
            continue;
        }
        out.push(Model {
            description: l.key.clone().unwrap_or_default(),
            install_section: install.to_string(),
            ids,
            line: l.line,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decorations_parse() {
        let d = Decoration::parse("NTamd64.10.0...16299").unwrap();
        assert_eq!(d.arch, Some(Arch::Amd64));
        assert_eq!(
            (d.major, d.minor, d.product_type, d.suite_mask, d.build),
            (Some(10), Some(0), None, None, Some(16299))
        );
        let d = Decoration::parse("NT.6.1").unwrap();
        assert_eq!((d.arch, d.major, d.minor), (None, Some(6), Some(1)));
        let d = Decoration::parse("ntx86.5.1.0x1").unwrap();
        assert_eq!((d.arch, d.product_type), (Some(Arch::X86), Some(1)));
        assert_eq!(
            Decoration::parse("NTARM64").unwrap().arch,
            Some(Arch::Arm64)
        );
        assert!(Decoration::parse("NT$ARCH$").is_err());
        assert!(Decoration::parse("Win98").is_err());
        assert!(Decoration::parse("NTamd64.1.2.3.4.5.6").is_err());
        assert!(Decoration::parse("NTamd64.x").is_err());
    }

    #[test]
    fn decorations_apply_by_arch_and_version() {
        let w10_1709 = Some(OsVersion {
            major: 10,
            minor: 0,
            build: 16299,
        });
        let w10_1607 = Some(OsVersion {
            major: 10,
            minor: 0,
            build: 14393,
        });
        let d = Decoration::parse("NTamd64.10.0...16299").unwrap();
        assert!(d.applies(Arch::Amd64, w10_1709));
        assert!(!d.applies(Arch::Amd64, w10_1607));
        assert!(!d.applies(Arch::X86, w10_1709));
        assert!(d.applies(Arch::Amd64, None));
        let w7 = Some(OsVersion {
            major: 6,
            minor: 1,
            build: 7601,
        });
        assert!(!Decoration::parse("NTamd64.10.0")
            .unwrap()
            .applies(Arch::Amd64, w7));
        assert!(Decoration::parse("NT.6.1")
            .unwrap()
            .applies(Arch::Arm64, w7));
        assert!(
            Decoration::parse("NTamd64.6.1").unwrap().fit()
                > Decoration::parse("NTamd64").unwrap().fit()
        );
        assert!(
            Decoration::parse("NTamd64").unwrap().fit()
                > Decoration::parse("NT.10.0").unwrap().fit()
        );
        assert!(Decoration::parse("NT").unwrap().fit() > Fit::default());
    }

    #[test]
    fn driver_ver_parses_and_orders() {
        let a = DriverVer::parse("05/21/2022", Some("100.90.104.22100")).unwrap();
        assert_eq!(a.date, (2022, 5, 21));
        assert_eq!(a.version, [100, 90, 104, 22100]);
        assert_eq!(a.date_text(), "05/21/2022");
        let b = DriverVer::parse("1/2/2023", None).unwrap();
        assert!(b > a);
        assert!(DriverVer::parse("13/01/2020", None).is_err());
        assert!(DriverVer::parse("2020-01-01", None).is_err());
        assert!(DriverVer::parse("01/01/2020", Some("1.2.3.70000")).is_err());
        assert!(DriverVer::parse("01/01/2020", Some("1.2.3.4.5")).is_err());
    }
}
