//! `tasq run` end to end through the binary: a run that succeeds and
//! leaves a CMTrace log, JSON events, `--what-if`, content refused before
//! the start, a restart into the installed OS (exit 3) continued with
//! `--resume`, a refused second start over an unfinished run, a secret
//! that never reaches the log, and `--computer host`.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

fn tasq(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tasq"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn step(kind: &str, name: &str, vars: &[(&str, &str)]) -> String {
    let v: String = vars
        .iter()
        .map(|(n, v)| format!("<variable name=\"{n}\" property=\"{n}\">{v}</variable>"))
        .collect();
    format!("<step type=\"{kind}\" name=\"{name}\"><defaultVarList>{v}</defaultVarList></step>")
}

fn seq(steps: &[String]) -> String {
    format!(
        "<sequence version=\"3.10\"><group name=\"Main\">{}</group></sequence>",
        steps.concat()
    )
}

const COMPUTER: &str = "name = \"REF01\"\nmake = \"Contoso\"\nmodel = \"Virtual 9\"\n";

#[test]
fn a_run_succeeds_with_a_cmtrace_log_and_json_events() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    fs::write(p.join("ref.toml"), COMPUTER).unwrap();
    let out = p.join("out.txt");
    fs::write(
        p.join("ts.xml"),
        seq(&[
            step(
                "SMS_TaskSequence_SetVariableAction",
                "Set greeting",
                &[
                    ("VariableName", "Greeting"),
                    ("VariableValue", "hello %_SMSTSModel%"),
                ],
            ),
            step(
                "SMS_TaskSequence_RunCommandLineAction",
                "Write it",
                &[(
                    "CommandLine",
                    &format!("echo %Greeting% &gt; {}", out.display()),
                )],
            ),
        ]),
    )
    .unwrap();
    let o = tasq(p, &["run", "ts.xml", "--computer", "ref.toml", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(fs::read_to_string(&out).unwrap(), "hello Virtual 9\n");
    // One JSON object per line, ending with the finish event.
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let last = lines.last().unwrap().to_string();
    assert!(last.contains("success"), "{last}");
    let log = fs::read_to_string(p.join(".tasq-state-REF01/logs/smsts.log")).unwrap();
    assert!(log.contains("<![LOG[") && log.contains("Write it"), "{log}");
    // A finished run does not block a new one.
    let o = tasq(p, &["run", "ts.xml", "--computer", "ref.toml"]);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn what_if_lists_steps_and_runs_nothing() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    fs::write(p.join("ref.toml"), COMPUTER).unwrap();
    fs::write(
        p.join("ts.xml"),
        seq(&[step(
            "SMS_TaskSequence_RunCommandLineAction",
            "Touch",
            &[("CommandLine", "touch touched")],
        )]),
    )
    .unwrap();
    let o = tasq(p, &["run", "ts.xml", "--computer", "ref.toml", "--what-if"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("Touch"));
    assert!(!p.join("touched").exists());
    // The same on the machine itself.
    let o = tasq(p, &["run", "ts.xml", "--computer", "host", "--what-if"]);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn missing_content_is_refused_naming_the_package() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    fs::write(p.join("ref.toml"), COMPUTER).unwrap();
    fs::write(
        p.join("ts.xml"),
        seq(&[step(
            "SMS_TaskSequence_RunCommandLineAction",
            "From package",
            &[("CommandLine", "touch ran"), ("PackageID", "TSQ00042")],
        )]),
    )
    .unwrap();
    fs::create_dir(p.join("lib")).unwrap();
    let o = tasq(
        p,
        &[
            "run",
            "ts.xml",
            "--computer",
            "ref.toml",
            "--content",
            "lib",
        ],
    );
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(text(&o).contains("TSQ00042"), "{}", text(&o));
    assert!(!p.join("ran").exists());
    let o = tasq(p, &["run", "ts.xml", "--computer", "ref.toml"]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(text(&o).contains("--content"), "{}", text(&o));
}

#[test]
fn a_restart_into_the_os_ends_the_run_and_resume_continues() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    fs::write(p.join("ref.toml"), COMPUTER).unwrap();
    fs::write(
        p.join("vars.toml"),
        "[secret]\nJoinPw = \"Sup3r-S3cret!\"\n",
    )
    .unwrap();
    fs::write(
        p.join("ts.xml"),
        seq(&[
            step(
                "SMS_TaskSequence_RunCommandLineAction",
                "Before",
                &[("CommandLine", "echo before %JoinPw% &gt;&gt; trail")],
            ),
            step(
                "SMS_TaskSequence_RebootAction",
                "Restart into the OS",
                &[("SMSRebootTarget", "HD")],
            ),
            step(
                "SMS_TaskSequence_RunCommandLineAction",
                "After",
                &[("CommandLine", "echo after %_SMSTSInWinPE% &gt;&gt; trail")],
            ),
        ]),
    )
    .unwrap();
    let args = [
        "run",
        "ts.xml",
        "--computer",
        "ref.toml",
        "--variables",
        "vars.toml",
    ];
    let o = tasq(p, &args);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("--resume"), "{}", text(&o));
    assert_eq!(
        fs::read_to_string(p.join("trail")).unwrap(),
        "before Sup3r-S3cret!\n"
    );
    // Starting again over the unfinished run is refused.
    let o = tasq(p, &args);
    assert!(!o.status.success());
    assert!(text(&o).contains("--resume"), "{}", text(&o));
    let o = tasq(p, &["run", "--resume", "--computer", "ref.toml"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        fs::read_to_string(p.join("trail")).unwrap(),
        "before Sup3r-S3cret!\nafter false\n"
    );
    // The secret never reached the log or the journal in the clear.
    let state = p.join(".tasq-state-REF01");
    for e in walk(&state) {
        let bytes = fs::read(&e).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains("Sup3r-S3cret!"),
            "secret in {}",
            e.display()
        );
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn content_add_indexes_driver_packages_and_refuses_one_without_an_inf() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    fs::create_dir_all(p.join("drv/amd64")).unwrap();
    fs::write(
        p.join("drv/amd64/nic.inf"),
        "[Version]\r\nSignature=\"$Windows NT$\"\r\nClass=Net\r\nDriverVer=01/02/2024,1.0.0.0\r\n[Manufacturer]\r\n%M%=M,NTamd64\r\n[M.NTamd64]\r\n%M%=I,PCI\\VEN_8086&DEV_100E\r\n[Strings]\r\nM=\"Contoso\"\r\n",
    )
    .unwrap();
    let o = tasq(
        p,
        &[
            "content",
            "add",
            "driver",
            "NIC",
            "drv",
            "--library",
            "lib",
            "--property",
            "categories=Network",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "TSQ00001");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("1 INF(s), classes Net, architectures amd64"),
        "{err}"
    );
    let o = tasq(p, &["content", "show", "TSQ00001", "--library", "lib"]);
    assert!(text(&o).contains("\"infs\": \"1\""), "{}", text(&o));
    fs::create_dir_all(p.join("empty")).unwrap();
    fs::write(p.join("empty/readme.txt"), "no driver").unwrap();
    let o = tasq(
        p,
        &[
            "content",
            "add",
            "driver",
            "Empty",
            "empty",
            "--library",
            "lib",
        ],
    );
    assert!(!o.status.success());
    assert!(text(&o).contains("at least one .inf"), "{}", text(&o));
}

/// In the installed OS the system volume is C: (`--system-drive`), and
/// `_SMSTSClientCache` exists only when the client is installed there.
#[test]
fn in_the_full_os_c_is_the_system_drive_and_the_client_cache_follows_the_client() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    fs::write(p.join("ref.toml"), COMPUTER).unwrap();
    let sys = p.join("sysroot");
    fs::create_dir_all(sys.join("Windows/CCM")).unwrap();
    fs::write(
        p.join("ts.xml"),
        seq(&[step(
            "SMS_TaskSequence_RunCommandLineAction",
            "Show",
            &[(
                "CommandLine",
                // coreutils echo: no backslash escapes (dash's echo has them).
                "/bin/echo '[%_SMSTSClientCache%][%_SMSTSInWinPE%]' &gt;&gt; seen",
            )],
        )]),
    )
    .unwrap();
    let run = |state: &str| {
        tasq(
            p,
            &[
                "run",
                "ts.xml",
                "--computer",
                "ref.toml",
                "--media",
                "none",
                "--system-drive",
                sys.to_str().unwrap(),
                "--state",
                state,
            ],
        )
    };
    let o = run("s1");
    assert!(o.status.success(), "{}", text(&o));
    fs::write(sys.join("Windows/CCM/tasq-client.json"), b"{}").unwrap();
    let o = run("s2");
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        fs::read_to_string(p.join("seen")).unwrap(),
        "[%_SMSTSClientCache%][false]\n[C:\\Windows\\ccmcache][false]\n"
    );
}
