//! `tasq demo`: the built-in example. It builds a small Windows-like
//! reference tree, captures it into a WIM (with the default Windows
//! exclusions), appends a second image that shares most of its data,
//! verifies the WIM, applies the first image back and checks that what was
//! applied equals what was captured. Everything lands under `--out`.
//!
//! The task-sequence part of the main job (the wizard's build-and-capture
//! sequence on a disk-image reference computer) arrives with the engine.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use tasq_volume::hostdir::{HostDirSource, HostDirTarget};
use tasq_wim::apply::{apply_image, ApplyOptions};
use tasq_wim::capture_config::CaptureConfig;
use tasq_wim::reader::Wim;
use tasq_wim::writer::{ImageOptions, WimWriter, WriteOptions};
use tasq_wim::CompressionFormat;

/// Writes the example reference tree: a few directories and files the way
/// a Windows volume lays them out, a hard link, a symlink, and files the
/// default capture exclusions leave out.
pub fn write_reference_tree(root: &Path) -> Result<()> {
    let w = |rel: &str, data: &[u8]| -> Result<()> {
        let p = root.join(rel);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d)?;
        }
        std::fs::write(&p, data).with_context(|| format!("writing {}", p.display()))
    };
    let mut dll = Vec::new();
    for i in 0..40_000u32 {
        dll.extend_from_slice(b"\x4d\x5a\x90\x00\xe8");
        dll.extend_from_slice(&i.to_le_bytes());
        dll.extend_from_slice(b"kernel32.dll GetProcAddress LoadLibraryW ");
    }
    w("Windows/System32/kernel32.dll", &dll)?;
    w(
        "Windows/System32/drivers/etc/hosts",
        b"127.0.0.1 localhost\r\n",
    )?;
    w("Windows/System32/config/SOFTWARE", &vec![0u8; 65536])?;
    w(
        "Windows/win.ini",
        b"; for 16-bit app support\r\n[fonts]\r\n[extensions]\r\n",
    )?;
    w("Program Files/Contoso/app.exe", &dll[..100_000])?;
    w("Users/Default/NTUSER.DAT", b"regf")?;
    w(
        "Users/Public/Documents/readme.txt",
        "Reference computer built by tasq.\r\n"
            .repeat(50)
            .as_bytes(),
    )?;
    w("pagefile.sys", &vec![0xAA; 4096])?;
    w("hiberfil.sys", &vec![0xBB; 4096])?;
    w("System Volume Information/tracking.log", b"excluded")?;
    std::fs::create_dir_all(root.join("Windows/Temp"))?;
    let link = root.join("Windows/System32/kernel32-hardlink.dll");
    if !link.exists() {
        std::fs::hard_link(root.join("Windows/System32/kernel32.dll"), &link)?;
    }
    let sym = root.join("Documents");
    if sym.symlink_metadata().is_err() {
        std::os::unix::fs::symlink("Users/Public/Documents", &sym)?;
    }
    Ok(())
}

/// Every regular file under `root` with its content, and every symlink
/// with its target, keyed by relative path (for the comparison).
fn snapshot(root: &Path) -> Result<std::collections::BTreeMap<String, Vec<u8>>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
            let e = e?;
            let p = e.path();
            let rel = p.strip_prefix(root)?.to_string_lossy().into_owned();
            let ft = e.file_type()?;
            if ft.is_symlink() {
                out.insert(
                    rel,
                    std::fs::read_link(&p)?
                        .to_string_lossy()
                        .into_owned()
                        .into_bytes(),
                );
            } else if ft.is_dir() {
                out.insert(format!("{rel}/"), Vec::new());
                stack.push(p);
            } else {
                out.insert(rel, std::fs::read(&p)?);
            }
        }
    }
    Ok(out)
}

pub fn run(out: &Path) -> Result<i32> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let tree = out.join("reference-tree");
    let wim_path = out.join("reference.wim");
    let applied = out.join("applied");
    write_reference_tree(&tree)?;
    println!("1. Reference tree:   {}", tree.display());

    let opts = WriteOptions {
        compression: CompressionFormat::Lzx,
        integrity: true,
        ..WriteOptions::default()
    };
    let config = CaptureConfig::windows_default();
    let mut w = WimWriter::create(&wim_path, opts.clone())?;
    let mut src = HostDirSource::new(&tree)?;
    w.add_image(
        &mut src,
        &config,
        &ImageOptions {
            name: Some("Reference".into()),
            description: Some("Captured by tasq demo".into()),
            ..Default::default()
        },
        &mut |_| {},
    )?;
    w.finish()?;
    println!(
        "2. Captured (LZX, integrity table, default Windows exclusions): {}",
        wim_path.display()
    );

    // A second image: the same computer after an application install.
    std::fs::write(tree.join("Program Files/Contoso/update.txt"), b"patched")?;
    let mut w = WimWriter::append(&wim_path, opts)?;
    let mut src = HostDirSource::new(&tree)?;
    w.add_image(
        &mut src,
        &config,
        &ImageOptions {
            name: Some("Reference + update".into()),
            ..Default::default()
        },
        &mut |_| {},
    )?;
    w.finish()?;
    std::fs::remove_file(tree.join("Program Files/Contoso/update.txt"))?;

    let wim = Wim::open(&wim_path)?;
    let rep = tasq_wim::verify::verify(&wim, 0, &mut |_, _| {})?;
    println!(
        "3. Appended image 2 sharing its data with image 1; verified {} images, {} distinct blobs, {} bytes",
        rep.images, rep.blobs, rep.bytes
    );

    if applied.exists() {
        std::fs::remove_dir_all(&applied)?;
    }
    let mut target = HostDirTarget::new(&applied)?;
    apply_image(&wim, 1, &mut target, &ApplyOptions::default(), &mut |_| {})?;
    let mut want = snapshot(&tree)?;
    want.retain(|k, _| {
        !(k == "pagefile.sys" || k == "hiberfil.sys" || k.starts_with("System Volume Information"))
    });
    let got = snapshot(&applied)?;
    if got != want {
        let missing: Vec<_> = want
            .keys()
            .filter(|k| got.get(*k) != want.get(*k))
            .take(5)
            .collect();
        bail!("applied tree differs from the captured one at {missing:?}");
    }
    println!(
        "4. Applied image 1:  {} ({} entries, identical to the source minus the excluded files)",
        applied.display(),
        got.len()
    );
    println!(
        "\nInspect with:  tasq wim info {}   (or wimlib-imagex info)",
        wim_path.display()
    );
    Ok(0)
}

pub fn default_out() -> PathBuf {
    PathBuf::from("demo-out")
}
