//! The main job, `tasq demo`, end to end: the wizard's build-and-capture
//! sequence on a fresh UEFI disk image up to the hand-off into Windows,
//! then the custom capture sequence writing `reference.wim`, checked with
//! wimlib-imagex (verify, image count, contents) and for secrets.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

fn tasq(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tasq"))
        .args(args)
        .output()
        .unwrap()
}

fn wimlib(args: &[&str]) -> String {
    let o = Command::new("wimlib-imagex").args(args).output().unwrap();
    assert!(
        o.status.success(),
        "wimlib-imagex {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
fn the_main_job_builds_hands_off_and_captures_every_volume() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("demo");
    let o_path = out.to_str().unwrap();
    // Twice: a second run starts again from a fresh computer.
    for _ in 0..2 {
        let o = tasq(&["demo", "--out", o_path]);
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(
            o.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(text.contains("waiting for the installed OS"), "{text}");
        for s in ["Install Updates", "Install Applications", "Prepare OS"] {
            assert!(text.contains(s), "{s} not listed as waiting: {text}");
        }
    }
    let wim = out.join("reference.wim");
    let w = wim.to_str().unwrap();
    assert!(wimlib(&["verify", w]).contains("successfully verified"));
    let info = wimlib(&["info", w]);
    assert!(info.contains("Image Count:    3"), "{info}");
    let esp = wimlib(&["dir", w, "1"]);
    assert!(esp.contains("/EFI/Microsoft/Boot/BCD"), "{esp}");
    assert!(esp.contains("/EFI/Boot/bootx64.efi"), "{esp}");
    let win = wimlib(&["dir", w, "2"]);
    for p in [
        "/Windows/Panther/Unattend/unattend.xml",
        "/Windows/Setup/Scripts/SetupComplete.cmd",
        "/Windows/CCM/tasq-client.json",
        "/Windows/System32/config/SYSTEM",
    ] {
        assert!(win.contains(p), "{p} missing from the Windows image");
    }
    assert!(!win.contains("_SMSTaskSequence"), "{win}");
    // The staged driver was chosen for the computer's network adapter.
    let log = fs::read_to_string(out.join("state-build/logs/smsts.log")).unwrap();
    assert!(
        log.contains("PCI\\VEN_8086&DEV_100E"),
        "no driver match logged"
    );
    assert!(log.contains("Setup Windows and Configuration Manager"));
    // The example answers' passwords never appear in clear text in what
    // the demo leaves behind outside the disk image.
    let mut all = Vec::new();
    files(&out, &mut all);
    for f in all {
        if f.extension().is_some_and(|e| e == "img" || e == "wim") {
            continue;
        }
        let b = fs::read(&f).unwrap();
        let t = String::from_utf8_lossy(&b);
        for secret in ["Example-Only-1", "Example-Only-3"] {
            assert!(!t.contains(secret), "{secret} in {}", f.display());
        }
    }
}
