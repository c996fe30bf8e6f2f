//! Apply Windows Settings, Apply Network Settings and Setup Windows and
//! ConfigMgr: the answer file they write (checked against the real samples
//! in shared/samples/unattend), and a run of the three steps on a target
//! volume that ends with the restart into the installed OS.

mod common;

use common::{config, Shared};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use tasq_engine::content::{ContentLibrary, LocalLibrary};
use tasq_engine::runner::{Engine, MediaType, RestartTarget, RunOutcome, Status};
use tasq_engine::steps::Registry;
use tasq_engine::unattend::{self, decode_password, value, Element, ImageArch, Settings};
use tasq_engine::volumes::VolumeRef;
use tasq_engine::Environment;
use tasq_tasksequence::model::{Item, Sequence};
use tasq_tasksequence::steps::{
    ApplyNetworkSettings, ApplyWindowsSettings, NetworkJoin, ServerLicense, SetupWindows, StepKind,
};

const ADMIN_PW: &str = "Adm1n-Secret!x";
const JOIN_PW: &str = "J0in-Secret?y";
const PRODUCT_KEY: &str = "NPPR9-FWDCX-D2C8J-H872K-2YT43";

fn env(pairs: &[(&str, &str)]) -> Environment {
    let mut e = Environment::new();
    for (n, v) in pairs {
        e.set(n, v);
    }
    e
}

fn samples_dir() -> PathBuf {
    // crates/engine → /work/shared/samples/unattend (the shared folder sits
    // beside the worktrees); SAMPLES_UNATTEND overrides.
    if let Ok(p) = std::env::var("SAMPLES_UNATTEND") {
        return PathBuf::from(p);
    }
    PathBuf::from("/work/shared/samples/unattend")
}

fn samples() -> Vec<(String, Element)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(samples_dir()).expect("the unattend samples") {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "xml") {
            let text = std::fs::read_to_string(&p).unwrap();
            let doc = unattend::parse(&text)
                .unwrap_or_else(|e| panic!("{} does not parse: {e}", p.display()));
            out.push((p.file_name().unwrap().to_string_lossy().into(), doc));
        }
    }
    assert_eq!(out.len(), 3, "three samples expected");
    out
}

/// Every element path under a component, with the attribute names each carries.
fn paths(e: &Element, prefix: &str, out: &mut BTreeMap<String, BTreeSet<String>>) {
    for c in &e.children {
        let p = format!("{prefix}/{}", c.name);
        let attrs = out.entry(p.clone()).or_default();
        for (n, _) in &c.attrs {
            attrs.insert(n.clone());
        }
        paths(c, &p, out);
    }
}

fn components(doc: &Element) -> Vec<(String, &Element)> {
    doc.children
        .iter()
        .filter(|s| s.name == "settings")
        .flat_map(|s| {
            let pass = s.get_attr("pass").unwrap_or("").to_string();
            s.children
                .iter()
                .filter(|c| c.name == "component")
                .map(move |c| (pass.clone(), c))
        })
        .collect()
}

fn full_settings_env(domain: bool, random: bool) -> Environment {
    let mut e = env(&[
        ("OSDComputerName", "REF-W11"),
        ("OSDRegisteredUserName", "Build Team"),
        ("OSDRegisteredOrgName", "Contoso & Partners"),
        ("OSDProductKey", PRODUCT_KEY),
        ("OSDTimeZone", "W. Europe Standard Time"),
        ("OSDWindowsSettingsInputLocale", "0409:00000409"),
        ("OSDWindowsSettingsSystemLocale", "en-US"),
        ("OSDWindowsSettingsUILanguage", "en-US"),
        ("OSDWindowsSettingsUILanguageFallback", "en-US"),
        ("OSDWindowsSettingsUserLocale", "de-DE"),
        ("OSDServerLicenseMode", "PerServer"),
        ("OSDServerLicenseConnectionLimit", "25"),
        (
            "OSDRandomAdminPassword",
            if random { "true" } else { "false" },
        ),
        ("OSDLocalAdminPassword", ADMIN_PW),
        ("OSDDNSDomain", "corp.contoso.com"),
        ("OSDDNSSuffixSearchOrder", "corp.contoso.com,contoso.com"),
        ("_TSQDriverPaths", "C:\\Drivers\\1;C:\\Drivers\\2"),
        ("OSDAdapterCount", "1"),
        ("OSDAdapter0MacAddress", "00:15:5d:01:02:03"),
        ("OSDAdapter0EnableDHCP", "false"),
        ("OSDAdapter0IPAddressList", "10.0.0.5"),
        ("OSDAdapter0SubnetMask", "255.255.255.0"),
        ("OSDAdapter0Gateways", "10.0.0.1"),
        ("OSDAdapter0DNSServerList", "10.0.0.2,10.0.0.3"),
    ]);
    if domain {
        for (n, v) in [
            ("OSDNetworkJoinType", "0"),
            ("OSDDomainName", "corp.contoso.com"),
            (
                "OSDDomainOUName",
                "LDAP://OU=Reference,DC=corp,DC=contoso,DC=com",
            ),
            ("OSDJoinAccount", "CORP\\svc-join"),
            ("OSDJoinPassword", JOIN_PW),
        ] {
            e.set(n, v);
        }
    } else {
        e.set("OSDNetworkJoinType", "1");
        e.set("OSDWorkgroupName", "BUILDLAB");
    }
    e
}

#[test]
fn every_sample_parses_with_the_reader() {
    for (name, doc) in samples() {
        assert!(!components(&doc).is_empty(), "{name}");
    }
    // And a value reads back from one.
    let docs = samples();
    let (_, hk) = docs
        .iter()
        .find(|(n, _)| n.starts_with("HydrationKit"))
        .unwrap();
    assert_eq!(
        value(
            hk,
            "specialize",
            "Microsoft-Windows-Shell-Setup",
            "TimeZone"
        ),
        Some("Pacific Standard Time")
    );
    let v = value(
        hk,
        "oobeSystem",
        "Microsoft-Windows-Shell-Setup",
        "UserAccounts/AdministratorPassword/Value",
    )
    .unwrap();
    assert_eq!(
        decode_password(v, "AdministratorPassword").as_deref(),
        Some("")
    );
}

#[test]
fn generated_file_has_the_structure_of_the_real_samples() {
    let docs = samples();
    // What the samples show per component name: element paths with their
    // attribute names, and the component's own attributes.
    let mut known: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    let mut comp_attrs: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for (_, d) in &docs {
        assert_eq!(d.get_attr("xmlns"), Some(unattend::NS_UNATTEND));
        for (_, c) in components(d) {
            let name = c.get_attr("name").unwrap().to_string();
            paths(c, "", known.entry(name.clone()).or_default());
            comp_attrs.insert(name, c.attrs.clone());
        }
    }
    for (domain, random) in [(false, true), (true, false)] {
        let s = Settings::from_env(&full_settings_env(domain, random), ImageArch::Amd64).unwrap();
        let xml = s.render();
        let doc = unattend::parse(&xml).unwrap();
        assert_eq!(doc.get_attr("xmlns"), Some(unattend::NS_UNATTEND));
        let passes: Vec<&str> = doc
            .children
            .iter()
            .map(|s| s.get_attr("pass").unwrap())
            .collect();
        assert_eq!(passes, ["offlineServicing", "specialize", "oobeSystem"]);
        let mut checked = 0;
        for (pass, c) in components(&doc) {
            let name = c.get_attr("name").unwrap();
            // Same attributes (names and fixed values) as the samples' component.
            let mine: BTreeMap<_, _> = c.attrs.iter().cloned().collect();
            for k in [
                "name",
                "processorArchitecture",
                "publicKeyToken",
                "language",
                "versionScope",
                "xmlns:wcm",
                "xmlns:xsi",
            ] {
                assert!(mine.contains_key(k), "{pass}/{name} lacks {k}");
            }
            assert_eq!(mine["processorArchitecture"], "amd64");
            assert_eq!(mine["publicKeyToken"], "31bf3856ad364e35");
            assert_eq!(mine["language"], "neutral");
            assert_eq!(mine["versionScope"], "nonSxS");
            assert_eq!(mine["xmlns:wcm"], unattend::NS_WCM);
            let Some(sample_paths) = known.get(name) else {
                // TCPIP, DNS-Client and TerminalServices are not in the samples.
                assert!(
                    [
                        "Microsoft-Windows-TCPIP",
                        "Microsoft-Windows-DNS-Client",
                        "Microsoft-Windows-TerminalServices-RemoteConnectionManager"
                    ]
                    .contains(&name),
                    "{name}"
                );
                continue;
            };
            for (k, v) in &comp_attrs[name] {
                if k != "processorArchitecture" && k != "xmlns:xsi" {
                    assert_eq!(mine.get(k), Some(v), "{pass}/{name} attribute {k}");
                }
            }
            let mut my_paths = BTreeMap::new();
            paths(c, "", &mut my_paths);
            for (p, attrs) in &my_paths {
                // UILanguageFallback is a documented International-Core
                // setting that none of the samples happens to use.
                if p == "/UILanguageFallback" {
                    continue;
                }
                let want = sample_paths
                    .get(p)
                    .unwrap_or_else(|| panic!("{pass}/{name}{p} is in no sample"));
                assert_eq!(attrs, want, "{pass}/{name}{p}: attributes");
                checked += 1;
            }
        }
        assert!(checked >= 12, "{checked}");
    }
}

#[test]
fn well_formed_for_an_independent_parser() {
    let s = Settings::from_env(&full_settings_env(true, false), ImageArch::Arm64).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("unattend.xml");
    std::fs::write(&f, s.render()).unwrap();
    // Python's expat parser: a different implementation than ours.
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import sys, xml.etree.ElementTree as ET\n\
             ns={'u':'urn:schemas-microsoft-com:unattend'}\n\
             r=ET.parse(sys.argv[1]).getroot()\n\
             for s in r.findall('u:settings', ns):\n\
             \x20 for c in s.findall('u:component', ns):\n\
             \x20\x20 print(s.get('pass'), c.get('name'), c.get('processorArchitecture'))\n\
             print(r.find(\"u:settings[@pass='specialize']/u:component[@name='Microsoft-Windows-UnattendedJoin']/u:Identification/u:Credentials/u:Username\", ns).text)",
        )
        .arg(&f)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("specialize Microsoft-Windows-UnattendedJoin arm64"),
        "{text}"
    );
    assert!(text.contains("oobeSystem Microsoft-Windows-International-Core arm64"));
    assert!(text.contains("offlineServicing Microsoft-Windows-PnpCustomizationsNonWinPE arm64"));
    assert!(text.trim_end().ends_with("svc-join"));
}

#[test]
fn workgroup_variant_with_random_password() {
    let e = full_settings_env(false, true);
    let mut s = Settings::from_env(&e, ImageArch::Amd64).unwrap();
    let doc = unattend::parse(&s.render()).unwrap();
    let join = "Microsoft-Windows-UnattendedJoin";
    assert_eq!(
        value(&doc, "specialize", join, "Identification/JoinWorkgroup"),
        Some("BUILDLAB")
    );
    assert!(value(&doc, "specialize", join, "Identification/JoinDomain").is_none());
    assert!(value(
        &doc,
        "specialize",
        join,
        "Identification/Credentials/Password"
    )
    .is_none());
    let v = value(
        &doc,
        "oobeSystem",
        "Microsoft-Windows-Shell-Setup",
        "UserAccounts/AdministratorPassword/Value",
    )
    .unwrap();
    let pw = decode_password(v, "AdministratorPassword").unwrap();
    assert_ne!(pw, ADMIN_PW, "random, not the given one");
    assert!(pw.len() >= 20);
    assert_eq!(
        value(
            &doc,
            "oobeSystem",
            "Microsoft-Windows-Shell-Setup",
            "UserAccounts/AdministratorPassword/PlainText"
        ),
        Some("false")
    );
    // The account is disabled at specialize.
    assert_eq!(
        value(
            &doc,
            "specialize",
            "Microsoft-Windows-Deployment",
            "RunSynchronous/RunSynchronousCommand/Path"
        ),
        Some("cmd /c net user Administrator /active:no")
    );
    let xml = s.render();
    assert!(!xml.contains(ADMIN_PW) && !xml.contains(&pw));
    // Same settings twice: a second random password differs unless kept
    // in _TSQRandomAdminPassword (which the steps do).
    let mut e2 = e.clone();
    e2.set_with(unattend::VAR_RANDOM_ADMIN_PASSWORD, &pw, true);
    s = Settings::from_env(&e2, ImageArch::Amd64).unwrap();
    assert_eq!(s.admin, unattend::AdminPassword::Random(pw));
}

#[test]
fn domain_variant_with_given_password_licensing_network_and_drivers() {
    let s = Settings::from_env(&full_settings_env(true, false), ImageArch::X86).unwrap();
    let doc = unattend::parse(&s.render()).unwrap();
    let join = "Microsoft-Windows-UnattendedJoin";
    let shell = "Microsoft-Windows-Shell-Setup";
    for (path, want) in [
        ("Identification/JoinDomain", "corp.contoso.com"),
        (
            "Identification/MachineObjectOU",
            "OU=Reference,DC=corp,DC=contoso,DC=com",
        ),
        ("Identification/Credentials/Domain", "CORP"),
        ("Identification/Credentials/Username", "svc-join"),
        ("Identification/Credentials/Password", JOIN_PW),
    ] {
        assert_eq!(value(&doc, "specialize", join, path), Some(want), "{path}");
    }
    assert!(value(&doc, "specialize", join, "Identification/JoinWorkgroup").is_none());
    for (path, want) in [
        ("ComputerName", "REF-W11"),
        ("ProductKey", PRODUCT_KEY),
        ("RegisteredOwner", "Build Team"),
        ("RegisteredOrganization", "Contoso & Partners"),
        ("TimeZone", "W. Europe Standard Time"),
    ] {
        assert_eq!(value(&doc, "specialize", shell, path), Some(want), "{path}");
    }
    let v = value(
        &doc,
        "oobeSystem",
        shell,
        "UserAccounts/AdministratorPassword/Value",
    )
    .unwrap();
    assert_eq!(
        decode_password(v, "AdministratorPassword").as_deref(),
        Some(ADMIN_PW)
    );
    assert!(!s.render().contains(ADMIN_PW), "never in clear");
    assert_eq!(
        value(
            &doc,
            "specialize",
            "Microsoft-Windows-Deployment",
            "RunSynchronous/RunSynchronousCommand/Path"
        ),
        Some("cmd /c net user Administrator /active:yes")
    );
    let intl = "Microsoft-Windows-International-Core";
    assert_eq!(
        value(&doc, "oobeSystem", intl, "InputLocale"),
        Some("0409:00000409")
    );
    assert_eq!(value(&doc, "oobeSystem", intl, "UserLocale"), Some("de-DE"));
    assert_eq!(
        value(&doc, "oobeSystem", intl, "UILanguageFallback"),
        Some("en-US")
    );
    assert_eq!(
        value(
            &doc,
            "specialize",
            "Microsoft-Windows-TerminalServices-RemoteConnectionManager",
            "LicensingMode"
        ),
        Some("4")
    );
    let c = unattend::component(&doc, "specialize", "Microsoft-Windows-TCPIP").unwrap();
    assert_eq!(c.get_attr("processorArchitecture"), Some("x86"));
    let iface = c.path("Interfaces/Interface").unwrap();
    assert_eq!(iface.get_attr("wcm:action"), Some("add"));
    assert_eq!(iface.find("Identifier").unwrap().text, "00-15-5D-01-02-03");
    assert_eq!(
        iface.path("UnicastIpAddresses/IpAddress").unwrap().text,
        "10.0.0.5/24"
    );
    assert_eq!(
        iface.path("Routes/Route/NextHopAddress").unwrap().text,
        "10.0.0.1"
    );
    let dns = "Microsoft-Windows-DNS-Client";
    assert_eq!(
        value(&doc, "specialize", dns, "DNSDomain"),
        Some("corp.contoso.com")
    );
    let order = unattend::component(&doc, "specialize", dns)
        .unwrap()
        .path("DNSSuffixSearchOrder")
        .unwrap();
    let suffixes: Vec<(&str, Option<&str>)> = order
        .children
        .iter()
        .map(|d| (d.text.as_str(), d.get_attr("wcm:keyValue")))
        .collect();
    assert_eq!(
        suffixes,
        [("corp.contoso.com", Some("1")), ("contoso.com", Some("2"))]
    );
    let servers: Vec<&str> = unattend::component(&doc, "specialize", dns)
        .unwrap()
        .path("Interfaces/Interface/DNSServerSearchOrder")
        .unwrap()
        .children
        .iter()
        .map(|d| d.text.as_str())
        .collect();
    assert_eq!(servers, ["10.0.0.2", "10.0.0.3"]);
    let pnp = unattend::component(
        &doc,
        "offlineServicing",
        "Microsoft-Windows-PnpCustomizationsNonWinPE",
    )
    .unwrap();
    let drivers: Vec<(&str, Option<&str>, Option<&str>)> = pnp
        .find("DriverPaths")
        .unwrap()
        .children
        .iter()
        .map(|p| {
            (
                p.find("Path").unwrap().text.as_str(),
                p.get_attr("wcm:keyValue"),
                p.get_attr("wcm:action"),
            )
        })
        .collect();
    assert_eq!(
        drivers,
        [
            ("C:\\Drivers\\1", Some("1"), Some("add")),
            ("C:\\Drivers\\2", Some("2"), Some("add"))
        ]
    );
}

#[test]
fn per_seat_licensing_and_unset_parts_are_left_out() {
    let s = Settings::from_env(
        &env(&[
            ("OSDComputerName", "PC1"),
            ("OSDServerLicenseMode", "PerSeat"),
        ]),
        ImageArch::Amd64,
    )
    .unwrap();
    let doc = unattend::parse(&s.render()).unwrap();
    assert_eq!(
        value(
            &doc,
            "specialize",
            "Microsoft-Windows-TerminalServices-RemoteConnectionManager",
            "LicensingMode"
        ),
        Some("2")
    );
    let passes: Vec<&str> = doc
        .children
        .iter()
        .map(|s| s.get_attr("pass").unwrap())
        .collect();
    assert_eq!(
        passes,
        ["specialize"],
        "no drivers, locales or password: no other pass"
    );
}

#[test]
fn bad_settings_name_their_variable() {
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![("OSDComputerName", "THIS-NAME-IS-TOO-LONG")],
            "OSDComputerName",
        ),
        (vec![("OSDProductKey", "ABCDE-12345")], "OSDProductKey"),
        (vec![("OSDTimeZone", "Mars Standard Time")], "OSDTimeZone"),
        (
            vec![("OSDServerLicenseMode", "PerCore")],
            "OSDServerLicenseMode",
        ),
        (
            vec![
                ("OSDServerLicenseMode", "PerServer"),
                ("OSDServerLicenseConnectionLimit", "2"),
            ],
            "OSDServerLicenseConnectionLimit",
        ),
        (
            vec![("OSDRandomAdminPassword", "false")],
            "OSDLocalAdminPassword",
        ),
        (
            vec![("OSDRandomAdminPassword", "maybe")],
            "OSDRandomAdminPassword",
        ),
        (
            vec![("OSDWindowsSettingsSystemLocale", "English")],
            "OSDWindowsSettingsSystemLocale",
        ),
        (vec![("OSDNetworkJoinType", "2")], "OSDNetworkJoinType"),
        (vec![("OSDNetworkJoinType", "1")], "OSDWorkgroupName"),
        (vec![("OSDNetworkJoinType", "0")], "OSDDomainName"),
        (
            vec![
                ("OSDNetworkJoinType", "0"),
                ("OSDDomainName", "contoso.com"),
            ],
            "OSDJoinAccount",
        ),
        (
            vec![
                ("OSDNetworkJoinType", "0"),
                ("OSDDomainName", "contoso.com"),
                ("OSDJoinAccount", "CONTOSO\\svc"),
            ],
            "OSDJoinPassword",
        ),
        (
            vec![
                ("OSDNetworkJoinType", "0"),
                ("OSDDomainName", "contoso.com"),
                ("OSDJoinAccount", "CONTOSO\\svc"),
                ("OSDJoinPassword", "x"),
                ("OSDDomainOUName", "Computers"),
            ],
            "OSDDomainOUName",
        ),
        (vec![("OSDAdapterCount", "1")], "OSDAdapter0MacAddress"),
        (
            vec![
                ("OSDAdapterCount", "1"),
                ("OSDAdapter0MacAddress", "00-11-22-33-44-55"),
                ("OSDAdapter0EnableDHCP", "false"),
            ],
            "OSDAdapter0IPAddressList",
        ),
        (
            vec![("_TSQImageArchitecture", "sparc")],
            "_TSQImageArchitecture",
        ),
    ];
    for (vars, var) in cases {
        let e = Settings::from_env(&env(&vars), ImageArch::Amd64).unwrap_err();
        assert_eq!(e.variable.as_deref(), Some(var), "{vars:?}: {e}");
        assert!(e.to_string().starts_with(var));
    }
}

// ---- the steps in a run ----

fn step_item(kind: StepKind, name: &str, f: impl FnOnce(&mut tasq_tasksequence::Step)) -> Item {
    let mut s = kind.new_step(name);
    f(&mut s);
    Item::Step(s)
}

fn sequence(client_pkg: &str, domain: bool) -> String {
    let mut seq = Sequence {
        version: Some("3.10".into()),
        ..Default::default()
    };
    seq.items.push(step_item(
        StepKind::ApplyWindowsSettings,
        "Apply Windows Settings",
        |s| {
            ApplyWindowsSettings {
                computer_name: "REF-%_SMSTSMachineName%".into(),
                registered_user: "Build Team".into(),
                registered_org: "Contoso".into(),
                product_key: PRODUCT_KEY.into(),
                server_license: Some(ServerLicense::PerServer {
                    max_connections: 10,
                }),
                random_admin_password: false,
                admin_password: ADMIN_PW.into(),
                time_zone: "Pacific Standard Time".into(),
            }
            .write(s)
        },
    ));
    seq.items.push(step_item(
        StepKind::ApplyNetworkSettings,
        "Apply Network Settings",
        |s| {
            ApplyNetworkSettings {
                join: if domain {
                    NetworkJoin::Domain {
                        domain: "contoso.com".into(),
                        ou: "LDAP://OU=Ref,DC=contoso,DC=com".into(),
                        account: "CONTOSO\\svc-join".into(),
                        password: JOIN_PW.into(),
                    }
                } else {
                    NetworkJoin::Workgroup { name: "LAB".into() }
                },
            }
            .write(s)
        },
    ));
    seq.items.push(step_item(
        StepKind::SetupWindowsAndConfigMgr,
        "Setup Windows and Configuration Manager",
        |s| {
            SetupWindows {
                client_package_id: client_pkg.into(),
                install_properties: "SMSSITECODE=P01 SMSMP=mp01.contoso.com".into(),
            }
            .write(s)
        },
    ));
    tasq_tasksequence::export(
        &seq,
        tasq_tasksequence::ExportOptions {
            keep_secrets: true,
            ..Default::default()
        },
    )
}

struct Lab {
    dir: tempfile::TempDir,
    client: String,
}

fn lab() -> Lab {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("client-src");
    std::fs::create_dir_all(src.join("x64")).unwrap();
    std::fs::write(src.join("ccmsetup.exe"), b"MZ fake ccmsetup").unwrap();
    std::fs::write(src.join("x64/client.msi"), vec![7u8; 3000]).unwrap();
    let lib = LocalLibrary::new(&dir.path().join("library"));
    let m = lib
        .add("client", "ConfigMgr Client", &src, BTreeMap::new())
        .unwrap();
    Lab { dir, client: m.id }
}

struct Outcome {
    outcome: RunOutcome,
    status: Status,
    log: String,
    journal: String,
    vars: BTreeMap<String, String>,
}

/// Runs `xml` with drive C: mapped to `volume` and extra variables.
fn run_on(
    lab: &Lab,
    xml: &str,
    volume: VolumeRef,
    computer: Option<tasq_engine::Computer>,
    vars: &[(&str, &str)],
) -> Outcome {
    let state = lab.dir.path().join(format!("state-{}", rand_suffix()));
    let s = tasq_tasksequence::import_str(xml).unwrap();
    let sink = Shared::default();
    let mut cfg = config(&state, MediaType::Boot, sink);
    cfg.registry = Registry::standard();
    cfg.content = Some(Box::new(LocalLibrary::new(&lab.dir.path().join("library"))));
    if let Some(c) = computer {
        cfg.computer = c;
    }
    cfg.sinks.push(Box::new(tasq_engine::log::LogSink::new(
        &state.join("logs"),
        1 << 20,
    )));
    let vars: Vec<(String, String, bool)> = vars
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string(), false))
        .collect();
    let mut e = Engine::start(&s, xml.as_bytes(), &vars, cfg).unwrap();
    e.state.drives.insert('C', volume);
    let outcome = e.run("Test", false).unwrap();
    let log = std::fs::read_to_string(state.join("logs/smsts.log")).unwrap();
    let journal = std::fs::read_to_string(state.join("journal.json")).unwrap_or_default();
    Outcome {
        outcome,
        status: e.state.status.clone(),
        log,
        journal,
        vars: e.env.to_map(),
    }
}

fn rand_suffix() -> String {
    tasq_engine::steps::setup::new_uuid().unwrap()
}

fn host_c(lab: &Lab) -> (PathBuf, VolumeRef) {
    let c = lab.dir.path().join(format!("C-{}", rand_suffix()));
    std::fs::create_dir_all(&c).unwrap();
    (c.clone(), VolumeRef::HostDir { path: c })
}

/// Checks what the three steps left on the Windows volume (read through
/// `read`, which takes a path with `/`).
fn check_volume(read: &dyn Fn(&str) -> Option<Vec<u8>>, client: &str, domain: bool) {
    let xml =
        String::from_utf8(read("Windows/Panther/Unattend/unattend.xml").expect("unattend.xml"))
            .unwrap();
    let doc = unattend::parse(&xml).unwrap();
    let shell = "Microsoft-Windows-Shell-Setup";
    // Apply Windows Settings' settings survived the later regenerations.
    assert_eq!(
        value(&doc, "specialize", shell, "ComputerName"),
        Some("REF-REF01")
    );
    assert_eq!(
        value(&doc, "specialize", shell, "TimeZone"),
        Some("Pacific Standard Time")
    );
    assert_eq!(
        value(&doc, "specialize", shell, "ProductKey"),
        Some(PRODUCT_KEY)
    );
    let v = value(
        &doc,
        "oobeSystem",
        shell,
        "UserAccounts/AdministratorPassword/Value",
    )
    .unwrap();
    assert_eq!(
        decode_password(v, "AdministratorPassword").as_deref(),
        Some(ADMIN_PW)
    );
    assert!(!xml.contains(ADMIN_PW));
    // Apply Network Settings'.
    let join = "Microsoft-Windows-UnattendedJoin";
    if domain {
        assert_eq!(
            value(&doc, "specialize", join, "Identification/JoinDomain"),
            Some("contoso.com")
        );
        assert_eq!(
            value(
                &doc,
                "specialize",
                join,
                "Identification/Credentials/Username"
            ),
            Some("svc-join")
        );
    } else {
        assert_eq!(
            value(&doc, "specialize", join, "Identification/JoinWorkgroup"),
            Some("LAB")
        );
    }
    // Setup Windows': the driver folders.
    assert_eq!(
        value(
            &doc,
            "offlineServicing",
            "Microsoft-Windows-PnpCustomizationsNonWinPE",
            "DriverPaths/PathAndCredentials/Path"
        ),
        Some("C:\\_SMSTaskSequence\\Drivers\\1")
    );
    // The staged client package.
    assert_eq!(
        read(&format!("_SMSTaskSequence/Packages/{client}/ccmsetup.exe")).as_deref(),
        Some(&b"MZ fake ccmsetup"[..])
    );
    assert_eq!(
        read(&format!(
            "_SMSTaskSequence/Packages/{client}/x64/client.msi"
        ))
        .map(|d| d.len()),
        Some(3000)
    );
    assert_eq!(
        read("_SMSTaskSequence/ClientInstallProperties.txt").as_deref(),
        Some(&b"SMSSITECODE=P01 SMSMP=mp01.contoso.com\r\n"[..])
    );
    // The client identity.
    let id: serde_json::Value =
        serde_json::from_slice(&read("Windows/CCM/tasq-client.json").unwrap()).unwrap();
    assert_eq!(id["installed_by"], "tasq");
    assert_eq!(id["site_code"], "P01");
    let guid = id["client_guid"].as_str().unwrap();
    assert!(guid.starts_with("GUID:") && guid.len() == 41, "{guid}");
    assert_eq!(id["install_id"].as_str().unwrap().len(), 36);
    let t = id["installed"].as_str().unwrap();
    assert!(
        t.len() == 20 && t.ends_with('Z') && t.as_bytes()[10] == b'T',
        "{t}"
    );
    // The first-boot hook, CRLF only.
    let cmd = String::from_utf8(read("Windows/Setup/Scripts/SetupComplete.cmd").unwrap()).unwrap();
    assert_eq!(cmd.matches('\n').count(), cmd.matches("\r\n").count());
    assert!(cmd.lines().count() >= 8);
    assert!(cmd.contains(&format!("_SMSTaskSequence\\Packages\\{client}")));
    assert!(cmd.contains("\\ccmsetup.exe\" SMSSITECODE=P01 SMSMP=mp01.contoso.com\r\n"));
    assert!(cmd.contains("tasq.exe\" run --resume"));
}

fn check_run(o: &Outcome) {
    assert!(
        matches!(&o.outcome, RunOutcome::RestartRequired { message } if message.contains("--resume")),
        "{:?}\n{}",
        o.outcome,
        o.log
    );
    assert_eq!(
        o.status,
        Status::Restarting {
            target: RestartTarget::InstalledOs
        }
    );
    // The journal on disk says the installed OS comes next.
    assert!(
        o.journal.contains("\"Restarting\"") || o.journal.contains("restarting"),
        "{}",
        o.journal
    );
    assert!(o.journal.contains("InstalledOs"), "{}", o.journal);
    assert!(o.log.contains(
        "Writing configuration information to C:\\Windows\\Panther\\Unattend\\unattend.xml"
    ));
    assert!(
        o.log.contains("initiated a reboot request (target HD)"),
        "{}",
        o.log
    );
    for secret in [ADMIN_PW, JOIN_PW, PRODUCT_KEY] {
        assert!(!o.log.contains(secret), "the log holds a secret");
        assert!(!o.journal.contains(secret), "the journal holds a secret");
    }
    assert_eq!(
        o.vars.get("OSDComputerName").map(String::as_str),
        Some("REF-REF01")
    );
}

#[test]
fn three_steps_on_a_host_directory_volume() {
    let lab = lab();
    for domain in [false, true] {
        let (c, vol) = host_c(&lab);
        let o = run_on(
            &lab,
            &sequence(&lab.client, domain),
            vol,
            None,
            &[
                ("OSDTargetSystemDrive", "C:"),
                (
                    "_TSQDriverPaths",
                    "C:\\_SMSTaskSequence\\Drivers\\1;C:\\_SMSTaskSequence\\Drivers\\2",
                ),
            ],
        );
        check_run(&o);
        let read = |p: &str| std::fs::read(c.join(p)).ok();
        check_volume(&read, &lab.client, domain);
    }
}

#[test]
fn the_later_file_keeps_the_earlier_settings_step_by_step() {
    // Only the first two steps: the network step's file still has the
    // Windows settings, and no driver pass yet.
    let lab = lab();
    let (c, vol) = host_c(&lab);
    let full = tasq_tasksequence::import_str(&sequence(&lab.client, false)).unwrap();
    let mut seq = full.clone();
    seq.items.truncate(2);
    let xml = tasq_tasksequence::export(
        &seq,
        tasq_tasksequence::ExportOptions {
            keep_secrets: true,
            ..Default::default()
        },
    );
    let o = run_on(&lab, &xml, vol, None, &[("OSDisk", "C:")]);
    assert_eq!(o.outcome, RunOutcome::Succeeded, "{}", o.log);
    let doc = unattend::parse(
        &std::fs::read_to_string(c.join("Windows/Panther/Unattend/unattend.xml")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        value(
            &doc,
            "specialize",
            "Microsoft-Windows-Shell-Setup",
            "ComputerName"
        ),
        Some("REF-REF01")
    );
    assert_eq!(
        value(
            &doc,
            "specialize",
            "Microsoft-Windows-UnattendedJoin",
            "Identification/JoinWorkgroup"
        ),
        Some("LAB")
    );
    assert!(unattend::component(
        &doc,
        "offlineServicing",
        "Microsoft-Windows-PnpCustomizationsNonWinPE"
    )
    .is_none());
    assert!(!c.join("Windows/Setup").exists());
}

#[test]
fn missing_client_package_fails_before_writing_anything() {
    let lab = lab();
    let (c, vol) = host_c(&lab);
    let full = tasq_tasksequence::import_str(&sequence("TSQ09999", false)).unwrap();
    let mut seq = full.clone();
    seq.items.drain(..2);
    let xml = tasq_tasksequence::export(&seq, Default::default());
    let o = run_on(&lab, &xml, vol, None, &[("OSDTargetSystemDrive", "C:")]);
    assert!(
        matches!(o.outcome, RunOutcome::Failed { .. }),
        "{:?}",
        o.outcome
    );
    assert!(o.log.contains("TSQ09999"), "{}", o.log);
    assert_eq!(std::fs::read_dir(&c).unwrap().count(), 0, "nothing written");
}

#[test]
fn missing_target_volume_names_both_variables() {
    let lab = lab();
    let (c, vol) = host_c(&lab);
    let o = run_on(&lab, &sequence(&lab.client, false), vol, None, &[]);
    assert!(matches!(o.outcome, RunOutcome::Failed { .. }));
    assert!(
        o.log.contains("OSDTargetSystemDrive") && o.log.contains("OSDisk"),
        "{}",
        o.log
    );
    assert_eq!(std::fs::read_dir(&c).unwrap().count(), 0);
}

#[test]
fn domain_join_without_password_fails_naming_it_and_logs_no_secret() {
    let lab = lab();
    let (c, vol) = host_c(&lab);
    let full = tasq_tasksequence::import_str(&sequence(&lab.client, true)).unwrap();
    let mut seq = full.clone();
    seq.items.truncate(2);
    let xml = tasq_tasksequence::export(&seq, Default::default()); // secrets blanked
    let o = run_on(
        &lab,
        &xml,
        vol,
        None,
        &[
            ("OSDTargetSystemDrive", "C:"),
            ("OSDLocalAdminPassword", ADMIN_PW),
        ],
    );
    assert!(
        matches!(&o.outcome, RunOutcome::Failed { step, .. } if step == "Apply Network Settings"),
        "{:?}",
        o.outcome
    );
    assert!(o.log.contains("OSDJoinPassword: must be set"), "{}", o.log);
    assert!(!o.log.contains(ADMIN_PW));
    // The Windows settings step had written its file; the failed network
    // step did not touch it.
    let doc = unattend::parse(
        &std::fs::read_to_string(c.join("Windows/Panther/Unattend/unattend.xml")).unwrap(),
    )
    .unwrap();
    assert!(unattend::component(&doc, "specialize", "Microsoft-Windows-UnattendedJoin").is_none());
}

#[test]
fn client_package_without_ccmsetup_is_refused() {
    let lab = lab();
    let lib = LocalLibrary::new(&lab.dir.path().join("library"));
    let src = lab.dir.path().join("not-client");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("readme.txt"), b"x").unwrap();
    let m = lib
        .add("client", "Broken client", &src, BTreeMap::new())
        .unwrap();
    assert!(lib.content_dir(&m.id).is_ok());
    let (c, vol) = host_c(&lab);
    let full = tasq_tasksequence::import_str(&sequence(&m.id, false)).unwrap();
    let mut seq = full.clone();
    seq.items.drain(..2);
    let xml = tasq_tasksequence::export(&seq, Default::default());
    let o = run_on(&lab, &xml, vol, None, &[("OSDTargetSystemDrive", "C:")]);
    assert!(matches!(o.outcome, RunOutcome::Failed { .. }));
    assert!(
        o.log.contains(&format!(
            "client package {} (Broken client) has no ccmsetup.exe",
            m.id
        )),
        "{}",
        o.log
    );
    assert_eq!(std::fs::read_dir(&c).unwrap().count(), 0);
}

// ---- on a real NTFS volume of a disk image ----

/// Copies `len` bytes at `off` of `img` to a sparse file (holes for zero
/// MiBs), so ntfs-3g's tools can read the partition.
fn extract_sparse(img: &std::path::Path, off: u64, len: u64, to: &std::path::Path) {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut f = std::fs::File::open(img).unwrap();
    f.seek(SeekFrom::Start(off)).unwrap();
    let mut out = std::fs::File::create(to).unwrap();
    out.set_len(len).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    while done < len {
        let n = (len - done).min(buf.len() as u64) as usize;
        f.read_exact(&mut buf[..n]).unwrap();
        if buf[..n].iter().any(|&b| b != 0) {
            out.seek(SeekFrom::Start(done)).unwrap();
            out.write_all(&buf[..n]).unwrap();
        }
        done += n as u64;
    }
}

fn ntfscat(part: &std::path::Path, path: &str) -> Option<Vec<u8>> {
    let out = std::process::Command::new("ntfscat")
        .arg("-f")
        .arg(part)
        .arg(format!("/{path}"))
        .output()
        .expect("ntfscat (ntfs-3g) must be installed");
    out.status.success().then_some(out.stdout)
}

/// The three steps on the Windows (NTFS) partition of a disk partitioned
/// like the wizard's UEFI or BIOS layout; read back with ntfs-3g's ntfscat
/// and checked with ntfsfix.
fn on_disk_image(layout: tasq_disk::Layout, style: &str) {
    let lab = lab();
    let img = lab.dir.path().join("disk0.img");
    let disk = tasq_disk::Disk::create(&img, 1 << 30).unwrap();
    let vols = tasq_disk::partition_and_format(&disk, &layout).unwrap();
    drop(disk);
    let win = vols
        .iter()
        .find(|v| v.letter_variable.as_deref() == Some("OSDisk"))
        .unwrap();
    let computer = tasq_engine::Computer::from_toml(
        &format!(
            "name = \"REF01\"\nfirmware = \"{}\"\n[[disks]]\npath = {:?}\nsize = {}\n",
            if style == "gpt" { "uefi" } else { "bios" },
            img.display().to_string(),
            1u64 << 30
        ),
        std::path::Path::new("computer.toml"),
    )
    .unwrap();
    let vol = VolumeRef::Partition {
        disk: 0,
        partition: win.index,
        offset: win.offset,
        len: win.size,
        fs: "NTFS".into(),
        label: Some(win.label.clone()),
    };
    let o = run_on(
        &lab,
        &sequence(&lab.client, true),
        vol,
        Some(computer),
        &[
            ("OSDisk", "C:"),
            ("_TSQDriverPaths", "C:\\_SMSTaskSequence\\Drivers\\1"),
        ],
    );
    check_run(&o);
    let part = lab.dir.path().join("windows-partition.img");
    extract_sparse(&img, win.offset, win.size, &part);
    let read = |p: &str| ntfscat(&part, p);
    check_volume(&read, &lab.client, true);
    // ntfs-3g finds the volume consistent after our writes.
    let fix = std::process::Command::new("ntfsfix")
        .arg("-n")
        .arg(&part)
        .output()
        .expect("ntfsfix");
    assert!(
        fix.status.success(),
        "{}{}",
        String::from_utf8_lossy(&fix.stdout),
        String::from_utf8_lossy(&fix.stderr)
    );
}

#[test]
fn three_steps_on_ntfs_in_a_gpt_disk_image() {
    on_disk_image(tasq_disk::Layout::uefi(), "gpt");
}

#[test]
fn three_steps_on_ntfs_in_an_mbr_disk_image() {
    on_disk_image(tasq_disk::Layout::bios(), "mbr");
}

#[test]
fn random_admin_password_is_made_once_kept_across_rewrites_and_never_logged() {
    let lab = lab();
    let (c, vol) = host_c(&lab);
    let mut seq = tasq_tasksequence::import_str(&sequence(&lab.client, false)).unwrap();
    if let Some(Item::Step(s)) = seq.items.first_mut() {
        let mut w = ApplyWindowsSettings::read(s).unwrap();
        w.random_admin_password = true;
        w.write(s);
    }
    // A copy of the first step's file, taken before the later steps rewrite it.
    let snap = lab.dir.path().join("after-first-step.xml");
    let copy = format!(
        "cp '{}' '{}'",
        c.join("Windows/Panther/Unattend/unattend.xml").display(),
        snap.display()
    );
    let mut snap_step = StepKind::RunCommandLine.new_step("snapshot");
    snap_step.set_var("CommandLine", Some("CommandLine"), &copy);
    seq.items.insert(1, Item::Step(snap_step));
    let xml = tasq_tasksequence::export(
        &seq,
        tasq_tasksequence::ExportOptions {
            keep_secrets: true,
            ..Default::default()
        },
    );
    let o = run_on(&lab, &xml, vol, None, &[("OSDTargetSystemDrive", "C:")]);
    check_run(&o);
    let kept = o
        .vars
        .get(unattend::VAR_RANDOM_ADMIN_PASSWORD)
        .unwrap()
        .clone();
    let text = std::fs::read_to_string(c.join("Windows/Panther/Unattend/unattend.xml")).unwrap();
    let doc = unattend::parse(&text).unwrap();
    let v = value(
        &doc,
        "oobeSystem",
        "Microsoft-Windows-Shell-Setup",
        "UserAccounts/AdministratorPassword/Value",
    )
    .unwrap();
    // The file written by the last step holds the password kept in the
    // secret engine variable (the one a later rewrite reuses).
    assert_eq!(
        decode_password(v, "AdministratorPassword").as_deref(),
        Some(kept.as_str())
    );
    assert!(!text.contains(&kept));
    let first = unattend::parse(&std::fs::read_to_string(&snap).unwrap()).unwrap();
    let v1 = value(
        &first,
        "oobeSystem",
        "Microsoft-Windows-Shell-Setup",
        "UserAccounts/AdministratorPassword/Value",
    )
    .unwrap();
    assert_eq!(v1, v, "the rewrites kept the first step's random password");
    assert!(!o.log.contains(&kept) && !o.journal.contains(&kept));
    assert!(o
        .log
        .contains("randomly generated local administrator password"));
    assert_eq!(
        value(
            &doc,
            "specialize",
            "Microsoft-Windows-Deployment",
            "RunSynchronous/RunSynchronousCommand/Path"
        ),
        Some("cmd /c net user Administrator /active:no")
    );
}
