//! `tasq wim apply IMG:N` and `tasq wim capture-disk` on a real disk image
//! with the UEFI layout: every NTFS/FAT32 volume becomes its own image,
//! the MSR partition (no file system) is skipped with its reason, a USB
//! disk yields nothing, and wimlib-imagex verifies and applies the result.

use std::path::Path;
use std::process::{Command, Output};

fn tasq(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tasq"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn capture_disk_takes_every_capturable_volume() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    std::fs::create_dir_all(d.join("src/Windows/System32")).unwrap();
    std::fs::write(
        d.join("src/Windows/System32/a.txt"),
        b"hello from the Windows volume",
    )
    .unwrap();
    std::fs::write(d.join("src/boot.txt"), vec![7u8; 100_000]).unwrap();
    ok(tasq(d, &["disk", "create", "d.img", "--size", "2G"]));
    ok(tasq(d, &["disk", "partition", "d.img", "--layout", "uefi"]));
    ok(tasq(d, &["wim", "capture", "src", "os.wim", "OS"]));
    ok(tasq(d, &["wim", "apply", "os.wim", "1", "d.img:3"]));
    ok(tasq(d, &["wim", "apply", "os.wim", "1", "d.img:1"]));
    // A volume without a file system cannot be a target.
    assert!(!tasq(d, &["wim", "apply", "os.wim", "1", "d.img:2"])
        .status
        .success());

    let log = ok(tasq(
        d,
        &["wim", "capture-disk", "d.img", "ref.wim", "--check"],
    ));
    assert!(log.contains("Skipped volume 2"), "{log}");
    assert!(log.contains("Microsoft reserved"), "{log}");
    let v = Command::new("wimlib-imagex")
        .arg("verify")
        .arg(d.join("ref.wim"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&v.stdout).contains("successfully verified"));
    let info = ok(tasq(d, &["wim", "info", "ref.wim", "--json"]));
    let j: serde_json::Value =
        serde_json::from_str(info.trim_end_matches(|c: char| c != '}')).unwrap();
    assert_eq!(j["image_count"], 3);
    let names: Vec<String> = j["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(names, ["d.img:1", "d.img:3", "d.img:4"]);
    assert!(j["images"][1]["description"]
        .as_str()
        .unwrap()
        .contains("NTFS, label Windows"));
    // The NTFS volume's image holds what was applied to it.
    let out = d.join("out");
    let a = Command::new("wimlib-imagex")
        .arg("apply")
        .arg(d.join("ref.wim"))
        .arg("2")
        .arg(&out)
        .output()
        .unwrap();
    assert!(a.status.success());
    assert_eq!(
        std::fs::read(out.join("Windows/System32/a.txt")).unwrap(),
        b"hello from the Windows volume"
    );
    assert_eq!(
        std::fs::read(out.join("boot.txt")).unwrap(),
        vec![7u8; 100_000]
    );

    // On a USB disk every volume is skipped: nothing to capture, an error.
    let usb = tasq(d, &["wim", "capture-disk", "d.img", "usb.wim", "--usb"]);
    assert!(!usb.status.success());
    let err = String::from_utf8_lossy(&usb.stderr);
    assert!(err.contains("no capturable volume"), "{err}");
    assert!(!d.join("usb.wim").exists());
}
