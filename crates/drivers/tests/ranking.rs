//! Ranking cases: which driver wins for a device, and why.

use std::path::Path;
use tasq_drivers::catalog::{Catalog, Package, SelectOptions, Target};
use tasq_drivers::driver::{Arch, OsVersion};
use tasq_drivers::pnp::device_ids;
use tasq_drivers::MatchKind;

const NIC: &str = "PCI\\VEN_8086&DEV_15B8&SUBSYS_86721043&REV_10&CC_020000\\3&11583659&0&FE";

fn inf(driver_ver: &str, manufacturer: &str, sections: &[(&str, &str)]) -> String {
    let mut s = format!(
        "[Version]\r\nSignature=\"$Windows NT$\"\r\nClass=Net\r\nClassGuid={{4d36e972-e325-11ce-bfc1-08002be10318}}\r\nProvider=%P%\r\nDriverVer={driver_ver}\r\nCatalogFile=d.cat\r\n\r\n[Manufacturer]\r\n%P%={manufacturer}\r\n"
    );
    for (name, ids) in sections {
        s.push_str(&format!("\r\n[{name}]\r\n%Desc% = Install, {ids}\r\n"));
    }
    s.push_str("\r\n[Install]\r\nCopyFiles=x\r\n\r\n[Strings]\r\nP=\"Contoso\"\r\nDesc=\"Contoso NIC\"\r\n");
    s
}

/// Writes each (folder, inf text) as `folder/d.inf` + `folder/d.cat` in one package.
fn package(root: &Path, id: &str, categories: &[&str], drivers: &[(&str, String)]) -> Package {
    let dir = root.join(id);
    for (folder, text) in drivers {
        let d = dir.join(folder);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("d.inf"), text).unwrap();
        std::fs::write(d.join("d.cat"), b"catalog").unwrap();
    }
    Package {
        id: id.into(),
        name: id.into(),
        categories: categories.iter().map(|s| s.to_string()).collect(),
        dir,
    }
}

fn w10(build: u32) -> Target {
    Target {
        arch: Arch::Amd64,
        os: Some(OsVersion {
            major: 10,
            minor: 0,
            build,
        }),
    }
}

fn winner(cat: &Catalog, target: Target) -> (String, tasq_drivers::Candidate) {
    let c = cat.candidates(&device_ids(NIC), target);
    let first = c.first().expect("a candidate").clone();
    (cat.drivers[first.driver].rel_path.clone(), first)
}

#[test]
fn hardware_id_beats_compatible_id_even_when_older() {
    let d = tempfile::tempdir().unwrap();
    let mut cat = Catalog::new();
    cat.add_package(
        package(
            d.path(),
            "P1",
            &[],
            &[
                (
                    "old-hw",
                    inf(
                        "01/01/2015,1.0.0.0",
                        "M,NTamd64",
                        &[("M.NTamd64", "PCI\\VEN_8086&DEV_15B8&SUBSYS_86721043")],
                    ),
                ),
                (
                    "new-compat",
                    inf(
                        "01/01/2024,9.0.0.0",
                        "M,NTamd64",
                        &[("M.NTamd64", "PCI\\VEN_8086&DEV_15B8")],
                    ),
                ),
                (
                    "class",
                    inf(
                        "01/01/2025,9.0.0.0",
                        "M,NTamd64",
                        &[("M.NTamd64", "PCI\\VEN_8086&CC_0200")],
                    ),
                ),
            ],
        ),
        true,
    )
    .unwrap();
    let c = cat.candidates(&device_ids(NIC), w10(19045));
    let order: Vec<&str> = c
        .iter()
        .map(|c| cat.drivers[c.driver].rel_path.as_str())
        .collect();
    assert_eq!(order, ["old-hw/d.inf", "new-compat/d.inf", "class/d.inf"]);
    assert_eq!(
        (c[0].kind, c[0].device_index, c[0].rank()),
        (MatchKind::HardwareId, 1, 0x0100)
    );
    assert_eq!(
        (c[1].kind, c[1].device_index, c[1].rank()),
        (MatchKind::CompatibleId, 1, 0x2100)
    );
    assert_eq!((c[2].kind, c[2].device_index), (MatchKind::CompatibleId, 3));
    assert!(
        c[0].explain(&cat)
            .contains("hardware ID PCI\\VEN_8086&DEV_15B8&SUBSYS_86721043 matched"),
        "{}",
        c[0].explain(&cat)
    );
}

#[test]
fn earlier_device_id_beats_later_and_inf_hardware_id_beats_inf_compatible_id() {
    let d = tempfile::tempdir().unwrap();
    let mut cat = Catalog::new();
    cat.add_package(
        package(
            d.path(),
            "P1",
            &[],
            &[
                // Matches the device's most specific ID, but only as the INF line's compatible ID.
                (
                    "inf-compat",
                    inf(
                        "01/01/2024,1.0.0.0",
                        "M,NTamd64",
                        &[(
                            "M.NTamd64",
                            "PCI\\VEN_8086&DEV_FFFF, PCI\\VEN_8086&DEV_15B8&SUBSYS_86721043&REV_10",
                        )],
                    ),
                ),
                // The INF line's hardware ID, device list position 2.
                (
                    "cc",
                    inf(
                        "01/01/2010,1.0.0.0",
                        "M,NTamd64",
                        &[("M.NTamd64", "PCI\\VEN_8086&DEV_15B8&CC_020000")],
                    ),
                ),
            ],
        ),
        true,
    )
    .unwrap();
    let (w, c) = winner(&cat, w10(19045));
    assert_eq!(w, "cc/d.inf");
    assert_eq!(c.rank(), 0x0200);
    let all = cat.candidates(&device_ids(NIC), w10(19045));
    assert_eq!(all[1].rank(), 0x1001);
}

#[test]
fn a_decoration_for_another_architecture_never_matches() {
    let d = tempfile::tempdir().unwrap();
    let mut cat = Catalog::new();
    cat.add_package(
        package(
            d.path(),
            "P1",
            &[],
            &[
                (
                    "x86",
                    inf(
                        "01/01/2024,1.0.0.0",
                        "M,NTx86",
                        &[("M.NTx86", "PCI\\VEN_8086&DEV_15B8&SUBSYS_86721043&REV_10")],
                    ),
                ),
                (
                    "arm64",
                    inf(
                        "01/01/2024,1.0.0.0",
                        "M,NTarm64",
                        &[("M.NTarm64", "PCI\\VEN_8086&DEV_15B8&SUBSYS_86721043&REV_10")],
                    ),
                ),
            ],
        ),
        true,
    )
    .unwrap();
    assert!(cat.candidates(&device_ids(NIC), w10(19045)).is_empty());
    let arm = Target {
        arch: Arch::Arm64,
        os: None,
    };
    let c = cat.candidates(&device_ids(NIC), arm);
    assert_eq!(c.len(), 1);
    assert_eq!(cat.drivers[c[0].driver].rel_path, "arm64/d.inf");
}

#[test]
fn architecture_specific_beats_neutral_and_undecorated() {
    let d = tempfile::tempdir().unwrap();
    let mut cat = Catalog::new();
    let id = "PCI\\VEN_8086&DEV_15B8&SUBSYS_86721043&REV_10";
    cat.add_package(
        package(
            d.path(),
            "P1",
            &[],
            &[
                ("undecorated", inf("01/01/2025,1.0.0.0", "M", &[("M", id)])),
                (
                    "neutral",
                    inf("01/01/2024,1.0.0.0", "M,NT.10.0", &[("M.NT.10.0", id)]),
                ),
                (
                    "amd64",
                    inf("01/01/2015,1.0.0.0", "M,NTamd64", &[("M.NTamd64", id)]),
                ),
            ],
        ),
        true,
    )
    .unwrap();
    let c = cat.candidates(&device_ids(NIC), w10(19045));
    let order: Vec<&str> = c
        .iter()
        .map(|c| cat.drivers[c.driver].rel_path.as_str())
        .collect();
    assert_eq!(order, ["amd64/d.inf", "neutral/d.inf", "undecorated/d.inf"]);
}

#[test]
fn os_version_decorations() {
    let d = tempfile::tempdir().unwrap();
    let mut cat = Catalog::new();
    let id = "PCI\\VEN_8086&DEV_15B8&SUBSYS_86721043&REV_10";
    cat.add_package(
        package(
            d.path(),
            "P1",
            &[],
            &[
                // Only the 19041+ section lists the device; older builds get the plain section.
                (
                    "new-only",
                    inf(
                        "01/01/2020,1.0.0.0",
                        "M,NTamd64,NTamd64.10.0...19041",
                        &[
                            ("M.NTamd64", "PCI\\VEN_8086&DEV_0000"),
                            ("M.NTamd64.10.0...19041", id),
                        ],
                    ),
                ),
                (
                    "plain",
                    inf("01/01/2024,1.0.0.0", "M,NTamd64", &[("M.NTamd64", id)]),
                ),
            ],
        ),
        true,
    )
    .unwrap();
    // On 1809 (17763) the 19041 section does not apply: only "plain" serves.
    let c = cat.candidates(&device_ids(NIC), w10(17763));
    assert_eq!(c.len(), 1);
    assert_eq!(cat.drivers[c[0].driver].rel_path, "plain/d.inf");
    // On 22H2 both serve and the closer decoration wins over the newer date.
    let (w, c) = winner(&cat, w10(19045));
    assert_eq!(w, "new-only/d.inf");
    assert_eq!(c.section, "M.NTamd64.10.0...19041");
    // Unknown OS version: every version decoration applies.
    let (w, _) = winner(
        &cat,
        Target {
            arch: Arch::Amd64,
            os: None,
        },
    );
    assert_eq!(w, "new-only/d.inf");
}

#[test]
fn newer_driver_ver_wins_then_version() {
    let d = tempfile::tempdir().unwrap();
    let id = "PCI\\VEN_8086&DEV_15B8&SUBSYS_86721043&REV_10";
    let mut cat = Catalog::new();
    cat.add_package(
        package(
            d.path(),
            "P1",
            &[],
            &[
                (
                    "a",
                    inf("03/01/2022,5.0.0.0", "M,NTamd64", &[("M.NTamd64", id)]),
                ),
                (
                    "b",
                    inf("03/02/2022,1.0.0.0", "M,NTamd64", &[("M.NTamd64", id)]),
                ),
                (
                    "c",
                    inf("03/02/2022,1.0.0.1", "M,NTamd64", &[("M.NTamd64", id)]),
                ),
            ],
        ),
        true,
    )
    .unwrap();
    let c = cat.candidates(&device_ids(NIC), w10(19045));
    let order: Vec<&str> = c
        .iter()
        .map(|c| cat.drivers[c.driver].rel_path.as_str())
        .collect();
    assert_eq!(order, ["c/d.inf", "b/d.inf", "a/d.inf"]);
}

#[test]
fn best_match_all_compatible_categories_and_unsigned() {
    let d = tempfile::tempdir().unwrap();
    let id = "PCI\\VEN_8086&DEV_15B8&SUBSYS_86721043&REV_10";
    let mut cat = Catalog::new();
    cat.add_package(
        package(
            d.path(),
            "NET",
            &["Network"],
            &[
                (
                    "n1",
                    inf("01/01/2024,1.0.0.0", "M,NTamd64", &[("M.NTamd64", id)]),
                ),
                (
                    "n2",
                    inf(
                        "01/01/2023,1.0.0.0",
                        "M,NTamd64",
                        &[("M.NTamd64", "PCI\\VEN_8086&DEV_15B8")],
                    ),
                ),
            ],
        ),
        true,
    )
    .unwrap();
    cat.add_package(
        package(
            d.path(),
            "STO",
            &["Storage", "Lab"],
            &[(
                "s1",
                inf("01/01/2025,1.0.0.0", "M,NTamd64", &[("M.NTamd64", id)]),
            )],
        ),
        true,
    )
    .unwrap();
    let pnp = vec![NIC.to_string(), "PCI\\VEN_1234&DEV_1111".to_string()];
    let rel = |sel: &tasq_drivers::Selection| -> Vec<String> {
        sel.drivers()
            .iter()
            .map(|&i| cat.drivers[i].rel_path.clone())
            .collect()
    };
    let best = SelectOptions {
        best_match: true,
        allow_unsigned: false,
        categories: vec![],
    };
    let sel = cat.select(&pnp, w10(19045), &best);
    assert_eq!(rel(&sel), ["s1/d.inf"]);
    assert!(
        sel.devices[1].chosen.is_empty(),
        "the second device has no driver"
    );
    let all = SelectOptions {
        best_match: false,
        ..best.clone()
    };
    assert_eq!(
        rel(&cat.select(&pnp, w10(19045), &all)),
        ["s1/d.inf", "n1/d.inf", "n2/d.inf"]
    );
    let net = SelectOptions {
        categories: vec!["network".into()],
        ..best.clone()
    };
    let sel = cat.select(&pnp, w10(19045), &net);
    assert_eq!(rel(&sel), ["n1/d.inf"]);
    assert!(
        sel.devices[0]
            .excluded
            .iter()
            .any(|(c, why)| cat.drivers[c.driver].rel_path == "s1/d.inf"
                && why.contains("categories"))
    );
    // Without its catalog file the winner is unsigned: skipped unless allowed.
    std::fs::remove_file(d.path().join("STO/s1/d.cat")).unwrap();
    let mut cat2 = Catalog::new();
    cat2.add_package(
        Package {
            id: "STO".into(),
            name: "STO".into(),
            categories: vec![],
            dir: d.path().join("STO"),
        },
        true,
    )
    .unwrap();
    cat2.add_package(
        Package {
            id: "NET".into(),
            name: "NET".into(),
            categories: vec![],
            dir: d.path().join("NET"),
        },
        true,
    )
    .unwrap();
    let rel2 = |sel: &tasq_drivers::Selection| -> Vec<String> {
        sel.drivers()
            .iter()
            .map(|&i| cat2.drivers[i].rel_path.clone())
            .collect()
    };
    assert_eq!(rel2(&cat2.select(&pnp, w10(19045), &best)), ["n1/d.inf"]);
    // Allowed, it is a candidate but ranks after the signed ones.
    let unsigned_ok = SelectOptions {
        allow_unsigned: true,
        ..best
    };
    assert_eq!(
        rel2(&cat2.select(&pnp, w10(19045), &unsigned_ok)),
        ["n1/d.inf"]
    );
    let all_unsigned_ok = SelectOptions {
        best_match: false,
        ..unsigned_ok
    };
    assert_eq!(
        rel2(&cat2.select(&pnp, w10(19045), &all_unsigned_ok)),
        ["n1/d.inf", "s1/d.inf", "n2/d.inf"]
    );
}

#[test]
fn unreadable_inf_is_an_error_naming_file_and_line() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("P");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    let mut bad = vec![0xFF, 0xFE];
    for u in "[Version]\r\nSignature=\"$Windows NT$\"\r\n".encode_utf16() {
        bad.extend_from_slice(&u.to_le_bytes());
    }
    bad.extend_from_slice(&0xDC00u16.to_le_bytes());
    std::fs::write(dir.join("sub/bad.INF"), bad).unwrap();
    let mut cat = Catalog::new();
    let e = cat
        .add_package(
            Package {
                id: "P".into(),
                name: "P".into(),
                categories: vec![],
                dir: dir.clone(),
            },
            true,
        )
        .unwrap_err();
    assert!(e.file.ends_with("bad.INF") && e.line == 3, "{e}");
    assert!(cat.packages.is_empty() && cat.drivers.is_empty());
    // Not recursing, the subfolder's INF is not read.
    assert_eq!(
        cat.add_package(
            Package {
                id: "P".into(),
                name: "P".into(),
                categories: vec![],
                dir
            },
            false
        )
        .unwrap(),
        0
    );
    // A wrong signature names its line.
    let e =
        tasq_drivers::DriverInf::parse("w.inf", b"; x\n[Version]\nSignature=\"$Windows 95$\"\n")
            .unwrap_err();
    assert_eq!((e.line, e.file.as_str()), (3, "w.inf"));
    assert!(tasq_drivers::DriverInf::parse("n.inf", b"[Strings]\na=b\n").is_err());
}
