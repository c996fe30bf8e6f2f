//! A sample operating system: a small Windows-like tree in a host
//! directory and a WIM of it described as a Windows image, for `tasq demo`
//! and for tests of the OS deployment steps. Nothing in it runs: the boot
//! files are placeholders that say so; the registry hives are real (hivex
//! opens them) but hold only a few keys.
//!
//! The tree:
//! - `Windows\System32\config\{SYSTEM,SOFTWARE,BCD-Template}`: hives;
//!   SOFTWARE has `Microsoft\Windows NT\CurrentVersion` (product, edition,
//!   build), SYSTEM has `Select` and `ControlSet001\Control\ComputerName`,
//!   BCD-Template has the `Description` and `Objects` keys a BCD store has;
//! - `Windows\Boot\EFI\{bootmgfw.efi,bootmgr.efi,memtest.efi}`,
//!   `Windows\Boot\PCAT\{bootmgr,memtest.exe}`: what bcdboot copies;
//! - `Windows\System32\{winload.efi,winload.exe,ntoskrnl.exe}`,
//!   `Users\Public\…`, `Program Files\…`.

use crate::computer::Architecture;
use std::io;
use std::path::Path;
use tasq_hivex::{minimal_hive, Hive, Value};

/// Product facts the sample carries (in SOFTWARE and in the WIM's XML).
pub const PRODUCT_NAME: &str = "Windows 10 Enterprise";
pub const EDITION_ID: &str = "Enterprise";
pub const BUILD: u64 = 19045;
/// The image name in the sample WIM.
pub const IMAGE_NAME: &str = "Windows 10 Enterprise (tasq sample)";

/// 2024-01-01T00:00:00Z as a FILETIME, so that samples are reproducible.
const SAMPLE_FILETIME: u64 = 133_485_408_000_000_000;

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

fn placeholder(what: &str) -> Vec<u8> {
    format!("tasq sample operating system: placeholder for {what}; not an executable\r\n")
        .into_bytes()
}

/// Writes a hive at `path` with root key `root`, then lets `fill` add keys.
pub fn write_hive(
    path: &Path,
    root: &str,
    fill: impl FnOnce(&mut Hive) -> tasq_hivex::Result<()>,
) -> io::Result<()> {
    std::fs::write(path, minimal_hive(root, SAMPLE_FILETIME))?;
    let mut h = Hive::open(path, true).map_err(other)?;
    fill(&mut h).map_err(other)?;
    h.commit(path).map_err(other)
}

fn key_path(h: &mut Hive, path: &str) -> tasq_hivex::Result<tasq_hivex::Node> {
    let mut n = h.root();
    for part in path.split('\\').filter(|p| !p.is_empty()) {
        n = h.ensure_child(n, part)?;
    }
    Ok(n)
}

/// Writes the sample tree under `dir` (created when missing).
pub fn sample_os_tree(dir: &Path, arch: Architecture) -> io::Result<()> {
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("Windows/Boot/EFI/bootmgfw.efi", placeholder("bootmgfw.efi")),
        ("Windows/Boot/EFI/bootmgr.efi", placeholder("bootmgr.efi")),
        ("Windows/Boot/EFI/memtest.efi", placeholder("memtest.efi")),
        (
            "Windows/Boot/EFI/en-US/bootmgfw.efi.mui",
            placeholder("bootmgfw.efi.mui"),
        ),
        ("Windows/Boot/PCAT/bootmgr", placeholder("bootmgr (PCAT)")),
        ("Windows/Boot/PCAT/memtest.exe", placeholder("memtest.exe")),
        (
            "Windows/Boot/PCAT/en-US/bootmgr.exe.mui",
            placeholder("bootmgr.exe.mui"),
        ),
        ("Windows/System32/winload.efi", placeholder("winload.efi")),
        ("Windows/System32/winload.exe", placeholder("winload.exe")),
        ("Windows/System32/ntoskrnl.exe", placeholder("ntoskrnl.exe")),
        (
            "Windows/System32/drivers/etc/hosts",
            b"# tasq sample hosts file\r\n127.0.0.1 localhost\r\n".to_vec(),
        ),
        (
            "Windows/win.ini",
            b"; for 16-bit app support\r\n[fonts]\r\n".to_vec(),
        ),
        (
            "Users/Public/Documents/readme.txt",
            b"A sample user document.\r\n".to_vec(),
        ),
        (
            "Program Files/Contoso/app.txt",
            b"Contoso sample application\r\n".to_vec(),
        ),
    ];
    for (rel, data) in files {
        let p = dir.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&p, data)?;
    }
    if arch == Architecture::X64 {
        std::fs::create_dir_all(dir.join("Program Files (x86)"))?;
    }
    std::fs::create_dir_all(dir.join("Users/Default"))?;
    let config = dir.join("Windows/System32/config");
    std::fs::create_dir_all(&config)?;

    write_hive(&config.join("SOFTWARE"), "SOFTWARE", |h| {
        let k = key_path(h, "Microsoft\\Windows NT\\CurrentVersion")?;
        h.set_values(
            k,
            &[
                Value::string("ProductName", PRODUCT_NAME),
                Value::string("EditionID", EDITION_ID),
                Value::string("CurrentBuild", &BUILD.to_string()),
                Value::dword("CurrentMajorVersionNumber", 10),
                Value::dword("CurrentMinorVersionNumber", 0),
                Value::string("InstallationType", "Client"),
                Value::string("SystemRoot", "C:\\Windows"),
            ],
        )
    })?;
    write_hive(&config.join("SYSTEM"), "SYSTEM", |h| {
        let s = key_path(h, "Select")?;
        h.set_values(
            s,
            &[
                Value::dword("Current", 1),
                Value::dword("Default", 1),
                Value::dword("LastKnownGood", 1),
                Value::dword("Failed", 0),
            ],
        )?;
        let c = key_path(h, "ControlSet001\\Control\\ComputerName\\ComputerName")?;
        h.set_values(c, &[Value::string("ComputerName", "MINWINPC")])?;
        let a = key_path(h, "ControlSet001\\Control\\Session Manager\\Environment")?;
        h.set_values(
            a,
            &[Value::string(
                "PROCESSOR_ARCHITECTURE",
                match arch {
                    Architecture::X86 => "x86",
                    Architecture::X64 => "AMD64",
                    Architecture::Arm64 => "ARM64",
                },
            )],
        )
    })?;
    write_hive(&config.join("BCD-Template"), "NewStoreRoot", |h| {
        let d = key_path(h, "Description")?;
        h.set_values(
            d,
            &[
                Value::string("KeyName", "BCD00000000"),
                Value::dword("System", 1),
                Value::dword("TreatAsSystem", 1),
            ],
        )?;
        // {globalsettings}: an inheritable settings object, as templates carry.
        let g = key_path(
            h,
            "Objects\\{7ea2e1ac-2e61-4728-aaa3-896d9d0a9f0e}\\Description",
        )?;
        h.set_values(g, &[Value::dword("Type", 0x1000_0002)])?;
        let e = key_path(
            h,
            "Objects\\{7ea2e1ac-2e61-4728-aaa3-896d9d0a9f0e}\\Elements\\16000020",
        )?;
        // bootux disabled = false (a boolean element: one byte).
        h.set_values(e, &[Value::binary("Element", vec![0])])
    })?;
    Ok(())
}

/// `Architecture` as `PROCESSOR_ARCHITECTURE_*` (the WIM XML's `<ARCH>`).
pub fn arch_code(arch: Architecture) -> u32 {
    match arch {
        Architecture::X86 => 0,
        Architecture::X64 => 9,
        Architecture::Arm64 => 12,
    }
}

/// Captures `tree` into a new WIM at `wim_path` as one image described as
/// a Windows image (architecture, edition, version, system root).
pub fn sample_os_wim(tree: &Path, wim_path: &Path, arch: Architecture) -> io::Result<()> {
    use tasq_wim::writer::{ImageOptions, WimWriter, WriteOptions};
    use tasq_wim::xml::{WindowsInfo, WindowsVersion};
    let mut src = tasq_volume::HostDirSource::new(tree).map_err(other)?;
    let mut w = WimWriter::create(
        wim_path,
        WriteOptions {
            threads: 1,
            ..WriteOptions::default()
        },
    )
    .map_err(other)?;
    let n = w
        .add_image(
            &mut src,
            &tasq_wim::capture_config::CaptureConfig::empty(),
            &ImageOptions {
                name: Some(IMAGE_NAME.into()),
                description: Some("tasq sample operating system".into()),
                display_name: Some(PRODUCT_NAME.into()),
                ..ImageOptions::default()
            },
            &mut |_| {},
        )
        .map_err(other)?;
    w.set_windows_info(
        n,
        WindowsInfo {
            arch: Some(arch_code(arch)),
            product_name: Some(format!(
                "Microsoft® Windows® Operating System ({PRODUCT_NAME})"
            )),
            edition_id: Some(EDITION_ID.into()),
            installation_type: Some("Client".into()),
            product_type: Some("WinNT".into()),
            languages: vec!["en-US".into()],
            default_language: Some("en-US".into()),
            version: Some(WindowsVersion {
                major: Some(10),
                minor: Some(0),
                build: Some(BUILD),
                spbuild: Some(1),
                splevel: Some(0),
                ..WindowsVersion::default()
            }),
            system_root: Some("WINDOWS".into()),
            ..WindowsInfo::default()
        },
    )
    .map_err(other)?;
    w.finish().map_err(other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_tree_has_hives_hivex_reads_and_boot_files() {
        let d = tempfile::tempdir().unwrap();
        sample_os_tree(d.path(), Architecture::X64).unwrap();
        for f in [
            "Windows/Boot/EFI/bootmgfw.efi",
            "Windows/Boot/PCAT/bootmgr",
            "Windows/System32/winload.efi",
            "Windows/System32/winload.exe",
            "Program Files (x86)",
        ] {
            assert!(d.path().join(f).exists(), "{f}");
        }
        let h = Hive::open(&d.path().join("Windows/System32/config/SOFTWARE"), false).unwrap();
        let k = h
            .lookup(h.root(), "Microsoft\\Windows NT\\CurrentVersion")
            .unwrap()
            .unwrap();
        let v = h.value(k, "EditionID").unwrap().unwrap();
        assert_eq!(tasq_hivex::from_utf16z(&v.data), EDITION_ID);
        let b = Hive::open(
            &d.path().join("Windows/System32/config/BCD-Template"),
            false,
        )
        .unwrap();
        assert!(b.lookup(b.root(), "Objects").unwrap().is_some());
        let s = Hive::open(&d.path().join("Windows/System32/config/SYSTEM"), false).unwrap();
        let k = s.lookup(s.root(), "Select").unwrap().unwrap();
        assert_eq!(
            s.value(k, "Current").unwrap().unwrap().data,
            1u32.to_le_bytes()
        );
    }

    #[test]
    fn the_sample_wim_is_an_os_image_for_the_content_library() {
        let d = tempfile::tempdir().unwrap();
        let tree = d.path().join("tree");
        sample_os_tree(&tree, Architecture::Arm64).unwrap();
        let wim = d.path().join("os.wim");
        sample_os_wim(&tree, &wim, Architecture::Arm64).unwrap();
        let images = crate::content::wim_images(&wim).unwrap();
        assert_eq!(images.len(), 1);
        assert_eq!(images[0].name, IMAGE_NAME);
        assert_eq!(images[0].edition, EDITION_ID);
        assert_eq!(images[0].arch.map(|a| a.name()), Some("arm64"));
        // wimlib reads it as a Windows image too.
        let out = std::process::Command::new("wimlib-imagex")
            .arg("info")
            .arg(&wim)
            .arg("1")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        assert!(
            text.contains("Edition ID:             Enterprise"),
            "{text}"
        );
        assert!(text.contains("Build:                  19045"), "{text}");
    }
}
