//! The parser on every real INF sample in `shared/samples/inf` (virtio-win),
//! with hand-checked values, and the same files re-encoded.

use std::path::{Path, PathBuf};
use tasq_drivers::catalog::{Catalog, Package, Target};
use tasq_drivers::driver::{Arch, DriverInf, OsVersion};
use tasq_drivers::inf::Inf;
use tasq_drivers::pnp::device_ids;
use tasq_drivers::MatchKind;

/// The shared samples live beside the checkout (`../shared` of the
/// workspace, or of a worktree's parent).
fn samples_dir() -> PathBuf {
    // Where CI puts them (as the tasksequence tests expect), else beside
    // the checkout or a worktree's parent.
    let fixed = PathBuf::from("/work/shared/samples/inf");
    if fixed.is_dir() {
        return fixed;
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|a| a.join("shared/samples/inf"))
        .find(|p| p.is_dir())
        .expect("shared/samples/inf: /work/shared/samples or next to the checkout")
}

fn sample(name: &str) -> Vec<u8> {
    std::fs::read(samples_dir().join(name)).expect("sample INF present")
}

fn all_samples() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(samples_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let e = p
                .extension()
                .unwrap()
                .to_string_lossy()
                .to_ascii_lowercase();
            e == "inf" || e == "inx"
        })
        .collect();
    v.sort();
    v
}

const AMD64_W10: Target = Target {
    arch: Arch::Amd64,
    os: Some(OsVersion {
        major: 10,
        minor: 0,
        build: 19045,
    }),
};

#[test]
fn every_sample_parses_as_a_driver_inf() {
    let files = all_samples();
    assert_eq!(files.len(), 5);
    for f in files {
        let inf = Inf::read(&f).unwrap_or_else(|e| panic!("{e}"));
        // The parser skips nothing in these well-formed files.
        assert!(
            inf.warnings.is_empty(),
            "{}: {:?}",
            f.display(),
            inf.warnings
        );
        let d = DriverInf::from_inf(&inf).unwrap();
        assert!(
            !d.class.is_empty() && d.class_guid.starts_with('{'),
            "{}",
            f.display()
        );
        assert_eq!(d.manufacturers.len(), 1, "{}", f.display());
        assert!(d.driver_ver.date.0 >= 2008);
    }
}

#[test]
fn smbus_by_hand() {
    let d = DriverInf::parse("smbus.inf", &sample("virtio-win_Q35_SMBus_smbus.inf")).unwrap();
    assert_eq!(d.class, "System");
    assert_eq!(d.class_guid, "{4D36E97D-E325-11CE-BFC1-08002BE10318}");
    // `Provider = %RedHat%` with `RedHat = "Red Hat, Inc."`: the comma stays in.
    assert_eq!(d.provider, "Red Hat, Inc.");
    assert_eq!(d.driver_ver.date, (2017, 4, 27));
    assert_eq!(d.driver_ver.version, [100, 0, 0, 0]);
    assert_eq!(d.catalog_for(Arch::Amd64, None), Some("smbus.cat"));
    let m = &d.manufacturers[0];
    assert_eq!(m.name, "Red Hat Q35 SM Bus driver");
    let names: Vec<&str> = m.sections.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["Models", "Models.NTamd64"]);
    assert_eq!(
        m.section_for(Arch::Amd64, None).unwrap().name,
        "Models.NTamd64"
    );
    // x86 has no decorated section here: the undecorated one serves it.
    assert_eq!(m.section_for(Arch::X86, None).unwrap().name, "Models");
    let models = &m.sections[1].models;
    assert_eq!(models.len(), 3);
    assert_eq!(models[0].install_section, "NullInstallSection");
    assert_eq!(models[0].ids, ["PCI\\VEN_8086&DEV_2930&SUBSYS_11001AF4"]);
    assert_eq!(models[2].ids, ["PCI\\VEN_8086&CC_0C05"]);
    assert_eq!(models[2].line, 40);
}

#[test]
fn qemupciserial_by_hand() {
    let inf = Inf::parse("q.inf", &sample("virtio-win_pciserial_qemupciserial.inf")).unwrap();
    assert_eq!(
        inf.string("qemu-pci_serial_2_port"),
        Some("2x QEMU PCI Serial Card")
    );
    // Keyless registry lines keep every field, empty ones included.
    let reg = inf.section("ComPort_inst2.RegHW").unwrap();
    assert_eq!(reg.lines.len(), 6);
    assert_eq!(reg.lines[1].key, None);
    assert_eq!(
        reg.lines[1].values,
        [
            "HKR",
            "Child0000",
            "VaryingResourceMap",
            "1",
            "00",
            "00",
            "00",
            "00",
            "00",
            "08",
            "00",
            "00",
            "00"
        ]
    );
    assert_eq!(inf.value("ControlFlags", "ExcludeFromSelect"), Some("*"));
    let d = DriverInf::from_inf(&inf).unwrap();
    assert_eq!(
        (d.class.as_str(), d.provider.as_str()),
        ("MultiFunction", "QEMU")
    );
    assert_eq!(d.driver_ver.version, [100, 90, 104, 22100]);
    let m = &d.manufacturers[0];
    assert_eq!(m.section_for(Arch::X86, None).unwrap().name, "QEMU.NTx86");
    assert_eq!(
        m.section_for(Arch::Amd64, None).unwrap().name,
        "QEMU.NTAMD64"
    );
    // No arm64 section and no undecorated one: nothing for arm64.
    assert!(m.section_for(Arch::Arm64, None).is_none());
    let s = m.section_for(Arch::Amd64, None).unwrap();
    assert_eq!(s.models[1].description, "2x QEMU PCI Serial Card");
    assert_eq!(s.models[1].ids, ["PCI\\VEN_1B36&DEV_0003"]);
}

#[test]
fn templates_with_stampinf_tokens() {
    // `NT$ARCH$` is a build-time token: the section is not usable, with a warning.
    let d = DriverInf::parse("fwcfg.inf", &sample("virtio-win_fwcfg64_fwcfg.inf")).unwrap();
    assert!(d.manufacturers[0].sections.is_empty());
    assert!(
        d.warnings
            .iter()
            .any(|w| w.line == 44 && w.message.contains("$arch$")),
        "{:?}",
        d.warnings
    );
    // `DriverVer=01/01/2008,0.0.0.1 ; comment` reads without the comment.
    assert_eq!(d.driver_ver.version, [0, 0, 0, 1]);
    assert_eq!(d.provider, "INX_COMPANY");
    // Stamped the way the build does, it matches its ACPI device.
    let stamped = String::from_utf8(sample("virtio-win_fwcfg64_fwcfg.inf"))
        .unwrap()
        .replace("$ARCH$", "amd64");
    let d = DriverInf::parse("fwcfg.inf", stamped.as_bytes()).unwrap();
    let s = d.manufacturers[0].section_for(Arch::Amd64, None).unwrap();
    assert_eq!(s.name, "FwCfg.NTamd64");
    assert_eq!(s.models[0].ids, ["ACPI\\QEMU0002"]);

    let rng = String::from_utf8(sample("virtio-win_viorng_viorng_viorng.inf")).unwrap();
    let inf = Inf::parse("viorng.inf", rng.as_bytes()).unwrap();
    assert_eq!(
        inf.value("VirtRng_wdfsect", "KmdfLibraryVersion"),
        Some("$KMDFVERSION$")
    );
    assert_eq!(
        inf.value("VirtRng_Service_Install", "ServiceBinary"),
        Some("%INX_PLATFORM_DRIVERS_DIR%\\viorng.sys")
    );
    assert_eq!(
        inf.section("VirtRng_Device.NT")
            .unwrap()
            .entries("CopyFiles")
            .count(),
        2
    );
    let d = DriverInf::parse("viorng.inf", rng.replace("$ARCH$", "amd64").as_bytes()).unwrap();
    let s = d.manufacturers[0].section_for(Arch::Amd64, None).unwrap();
    assert_eq!(
        s.models[0].ids,
        [
            "PCI\\VEN_1AF4&DEV_1005&SUBSYS_0004_INX_SUBSYS_VENDOR_ID&REV_00",
            "PCI\\VEN_1AF4&DEV_1005"
        ]
    );
    let scsi = DriverInf::parse("vioscsi.inx", &sample("virtio-win_vioscsi_vioscsi.inx")).unwrap();
    assert_eq!(scsi.class, "SCSIAdapter");
    assert_eq!(scsi.catalog_for(Arch::Amd64, None), Some("vioscsi.cat"));
}

fn utf16le_bom(s: &str) -> Vec<u8> {
    let mut v = vec![0xFF, 0xFE];
    for u in s.encode_utf16() {
        v.extend_from_slice(&u.to_le_bytes());
    }
    v
}

#[test]
fn re_encoded_samples_parse_the_same() {
    for f in all_samples() {
        let bytes = std::fs::read(&f).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        let base = Inf::parse("x", &bytes).unwrap();
        let crlf = text.replace('\n', "\r\n");
        let mut utf8bom = vec![0xEF, 0xBB, 0xBF];
        utf8bom.extend_from_slice(crlf.as_bytes());
        for variant in [utf16le_bom(&crlf), utf8bom, utf16le_bom(&text)] {
            let other = Inf::parse("x", &variant).unwrap();
            assert_eq!(other.sections(), base.sections(), "{}", f.display());
        }
    }
}

#[test]
fn smbus_matches_its_device_in_a_catalog() {
    let dir = tempfile::tempdir().unwrap();
    let pkg = dir.path().join("smbus");
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::write(
        pkg.join("smbus.inf"),
        sample("virtio-win_Q35_SMBus_smbus.inf"),
    )
    .unwrap();
    std::fs::write(pkg.join("smbus.cat"), b"cat").unwrap();
    let mut cat = Catalog::new();
    let n = cat
        .add_package(
            Package {
                id: "TSQ00001".into(),
                name: "smbus".into(),
                categories: vec![],
                dir: pkg.clone(),
            },
            true,
        )
        .unwrap();
    assert_eq!(n, 1);
    let dev =
        device_ids("PCI\\VEN_8086&DEV_2930&SUBSYS_11001AF4&REV_02&CC_0C0500\\3&267A616A&0&FB");
    let c = cat.candidates(&dev, AMD64_W10);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].kind, MatchKind::HardwareId);
    assert_eq!(c[0].device_index, 1, "the SUBSYS-without-REV hardware ID");
    assert_eq!(c[0].rank(), 0x0100);
    assert!(c[0].signed);
    assert_eq!(c[0].section, "Models.NTamd64");
    // Another Intel SMBus controller only matches the class-code compatible ID.
    let other = device_ids("PCI\\VEN_8086&DEV_A123&SUBSYS_00000000&REV_01&CC_0C0500");
    let c = cat.candidates(&other, AMD64_W10);
    assert_eq!(
        (c[0].kind, c[0].matched_id.as_str()),
        (MatchKind::CompatibleId, "PCI\\VEN_8086&CC_0C0500")
    );
    assert_eq!(c[0].rank(), 0x2200);
    assert!(cat
        .candidates(&device_ids("PCI\\VEN_10EC&DEV_8139"), AMD64_W10)
        .is_empty());
}
