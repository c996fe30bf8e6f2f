//! The wizard's output for the example answers file has exactly the structure
//! of mission.md §6; every answer check fails on a bad value and passes on a
//! good one, naming the field.

use tasq_tasksequence::steps::{self, StepKind};
use tasq_tasksequence::validate;
use tasq_tasksequence::wiminfo::{Arch, WimImage};
use tasq_tasksequence::wizard::{build, Answers, AnswersError, Template};
use tasq_tasksequence::{export, import_str, ExportOptions, Item};

fn example_file() -> Answers {
    let p = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/build-and-capture.answers.toml"
    );
    let text = std::fs::read_to_string(p).expect("examples/build-and-capture.answers.toml");
    Answers::from_toml(&text).expect("the example answers parse")
}

/// The example file, joined to a domain so that the domain fields are checked too.
fn example() -> Answers {
    let mut a = example_file();
    a.configure_network.join = "domain".into();
    a.configure_network.domain = "corp.example.com".into();
    a.configure_network.domain_ou =
        "LDAP://OU=Reference,OU=Computers,DC=corp,DC=example,DC=com".into();
    a.configure_network.domain_account = "CORP\\svc-osdjoin".into();
    a.configure_network.domain_password = "Example-Only-2".into();
    a
}

#[test]
fn example_file_output_passes_validation() {
    let (seq, pkg) = build(&example_file(), Some(&images())).unwrap();
    let ctx = validate::Context {
        boot_image_id: Some(pkg.boot_image_id),
        ..Default::default()
    };
    let problems = validate::validate(&seq, &ctx);
    assert!(problems.is_empty(), "{problems:?}");
    // Joined to a domain, the capture preparation is reported.
    let (seq, _) = build(&example(), Some(&images())).unwrap();
    let rules: Vec<&str> = validate::validate(&seq, &validate::Context::default())
        .iter()
        .map(|p| p.rule)
        .collect();
    assert_eq!(rules, vec!["domain-before-capture"]);
}

fn images() -> Vec<WimImage> {
    (1..=4)
        .map(|i| WimImage {
            index: i,
            name: format!("Windows 11 edition {i}"),
            edition: "Enterprise".into(),
            arch: Some(Arch::X64),
        })
        .collect()
}

#[test]
fn example_answers_give_the_mission_structure() {
    let (seq, pkg) = build(&example(), Some(&images())).unwrap();
    assert_eq!(pkg.name, "Build and capture Windows 11");
    assert_eq!(pkg.boot_image_id, "PS100005");
    type Row = (String, String, String, bool);
    let groups: Vec<(&str, Vec<Row>)> = seq
        .items
        .iter()
        .map(|it| match it {
            Item::Group(g) => (
                g.name.as_str(),
                g.items
                    .iter()
                    .map(|s| match s {
                        Item::Step(s) => (
                            s.name.clone(),
                            s.type_name().to_string(),
                            s.condition
                                .as_ref()
                                .map(|c| c.to_string())
                                .unwrap_or_default(),
                            s.is_disabled(),
                        ),
                        _ => panic!("only steps in the template's groups"),
                    })
                    .collect(),
            ),
            _ => panic!("only groups at the top"),
        })
        .collect();
    let no = String::new;
    let s = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string(), false);
    let partition = |uefi: &str| {
        format!("_SMSTSClientCache notExists and _SMSTSMediaType notEquals \"OEMMedia\" and _SMSTSBootUEFI {uefi} \"true\"")
    };
    let media = "_SMSTSMediaType notEquals \"FullMedia\"";
    assert_eq!(
        groups,
        vec![
            (
                "Build the Reference Machine",
                vec![
                    s(
                        "Restart in Windows PE",
                        steps::RESTART,
                        "_SMSTSInWinPE equals \"false\""
                    ),
                    s(
                        "Partition Disk 0 - BIOS",
                        steps::PARTITION_DISK,
                        &partition("notEquals")
                    ),
                    s(
                        "Partition Disk 0 - UEFI",
                        steps::PARTITION_DISK,
                        &partition("equals")
                    ),
                    s("Apply Operating System", steps::APPLY_OS, &no()),
                    s(
                        "Apply Windows Settings",
                        steps::APPLY_WINDOWS_SETTINGS,
                        &no()
                    ),
                    s(
                        "Apply Network Settings",
                        steps::APPLY_NETWORK_SETTINGS,
                        &no()
                    ),
                    s("Apply Device Drivers", steps::AUTO_APPLY_DRIVERS, media),
                    s(
                        "Setup Windows and Configuration Manager",
                        steps::SETUP_WINDOWS,
                        &no()
                    ),
                    s("Install Updates", steps::INSTALL_UPDATES, media),
                    s("Install Applications", steps::INSTALL_APPLICATION, &no()),
                ]
            ),
            (
                "Capture the Reference Machine",
                vec![
                    s(
                        "Prepare Configuration Manager Client",
                        steps::PREPARE_CLIENT,
                        &no()
                    ),
                    s("Prepare OS", steps::PREPARE_OS, &no()),
                    s("Capture the Reference Machine", steps::CAPTURE_OS, &no()),
                ]
            ),
        ]
    );

    // The answers reached the steps' variables.
    let find = |name: &str| {
        seq.walk_steps()
            .into_iter()
            .find(|(_, s)| s.name == name)
            .unwrap()
            .1
    };
    let restart = steps::RestartComputer::read(find("Restart in Windows PE")).unwrap();
    assert_eq!(restart.target, steps::RebootTarget::WinPE);
    let os = steps::ApplyOsImage::read(find("Apply Operating System")).unwrap();
    assert_eq!(
        (os.image_package_id.as_str(), os.image_index),
        ("PS100010", 3)
    );
    let w = steps::ApplyWindowsSettings::read(find("Apply Windows Settings")).unwrap();
    assert_eq!(w.product_key, "VK7JG-NPHTM-C97JM-9MPGT-3V66T");
    assert_eq!(
        w.server_license,
        Some(steps::ServerLicense::PerServer {
            max_connections: 25
        })
    );
    assert!(!w.random_admin_password);
    let n = steps::ApplyNetworkSettings::read(find("Apply Network Settings")).unwrap();
    assert!(
        matches!(n.join, steps::NetworkJoin::Domain { ref account, .. } if account == "CORP\\svc-osdjoin")
    );
    let c = steps::SetupWindows::read(find("Setup Windows and Configuration Manager")).unwrap();
    assert_eq!(c.client_package_id, "PS100003");
    assert!(c.install_properties.contains("SMSMP="));
    let u = steps::InstallUpdates::read(find("Install Updates")).unwrap();
    assert_eq!(u.target, steps::UpdateTarget::Mandatory);
    let apps = steps::InstallApplication::read(find("Install Applications")).unwrap();
    assert_eq!(apps.applications.len(), 2);
    assert!(apps.continue_on_install_error);
    let cap = steps::CaptureOsImage::read(find("Capture the Reference Machine")).unwrap();
    assert_eq!(
        cap.destination,
        "\\\\fs01.corp.example.com\\captures\\win11-ref.wim"
    );
    assert_eq!(cap.image_version, "2026.11");
    for (_, st) in seq.walk_steps() {
        let k = StepKind::of(st).unwrap();
        assert_eq!(st.run_in(), Some(k.run_in()), "{}", st.name);
    }
    // References: OS image, client, both applications.
    let refs: Vec<&str> = seq
        .references
        .as_ref()
        .unwrap()
        .iter()
        .filter_map(|r| r.content_id())
        .collect();
    assert_eq!(refs.len(), 4);
    assert!(refs.contains(&"PS100010") && refs.contains(&"PS100003"));

    // The XML reads back to the same sequence; secrets are blanked by default.
    let keep = ExportOptions {
        keep_secrets: true,
        ..Default::default()
    };
    let xml = export(&seq, keep);
    assert_eq!(
        import_str(&xml).unwrap(),
        import_str(&export(&import_str(&xml).unwrap(), keep)).unwrap()
    );
    let public = export(&seq, ExportOptions::default());
    for secret in [
        "Example-Only-1",
        "Example-Only-2",
        "Example-Only-3",
        "VK7JG",
    ] {
        assert!(xml.contains(secret));
        assert!(!public.contains(secret), "{secret} leaked");
    }
}

#[test]
fn updates_none_and_no_applications_keep_the_structure_disabled() {
    let mut a = example();
    a.include_updates.mode = "none".into();
    a.install_applications.applications.clear();
    let (seq, _) = build(&a, None).unwrap();
    let names: Vec<(String, bool)> = seq
        .walk_steps()
        .iter()
        .map(|(_, s)| (s.name.clone(), s.is_disabled()))
        .collect();
    assert_eq!(names.len(), 13);
    assert!(names.contains(&("Install Updates".to_string(), true)));
    assert!(names.contains(&("Install Applications".to_string(), true)));
}

#[test]
fn custom_template_is_empty_with_package_properties() {
    let a = Answers::from_toml(
        "template = \"custom\"\n[task_sequence]\nname = \"Capture\"\ndescription = \"d\"\nboot_image = \"PS100005\"\nboot_image_architecture = \"x64\"\n",
    )
    .unwrap();
    assert_eq!(a.template, Template::Custom);
    let (seq, pkg) = build(&a, None).unwrap();
    assert!(seq.items.is_empty());
    assert_eq!(
        export(&seq, ExportOptions::default()),
        "<sequence version=\"3.10\"/>"
    );
    assert_eq!(
        (
            pkg.name.as_str(),
            pkg.description.as_str(),
            pkg.boot_image_id.as_str()
        ),
        ("Capture", "d", "PS100005")
    );
    let missing = Answers::from_toml("template = \"custom\"\n").unwrap();
    let fields = errors(build(&missing, None).unwrap_err());
    assert!(
        fields.contains(&"task_sequence.name".to_string())
            && fields.contains(&"task_sequence.boot_image".to_string())
    );
}

fn errors(e: AnswersError) -> Vec<String> {
    match e {
        AnswersError::Invalid(v) => v.into_iter().map(|f| f.field).collect(),
        AnswersError::Toml(t) => panic!("toml: {t}"),
    }
}

/// Each check: a change that breaks it (the field must be reported) and one
/// that satisfies it (the build must succeed).
#[test]
fn every_answer_check_fails_and_passes() {
    type Edit = fn(&mut Answers);
    let cases: Vec<(&str, Edit, Edit)> = vec![
        (
            "task_sequence.name",
            |a| a.task_sequence.name.clear(),
            |a| a.task_sequence.name = "B&C".into(),
        ),
        (
            "task_sequence.name",
            |a| a.task_sequence.name = "x".repeat(51),
            |a| a.task_sequence.name = "x".repeat(50),
        ),
        (
            "task_sequence.description",
            |a| a.task_sequence.description = "d".repeat(257),
            |a| a.task_sequence.description.clear(),
        ),
        (
            "task_sequence.boot_image",
            |a| a.task_sequence.boot_image.clear(),
            |a| a.task_sequence.boot_image = "PS100006".into(),
        ),
        (
            "task_sequence.boot_image",
            |a| a.task_sequence.boot_image = "PS1/../x".into(),
            |a| a.task_sequence.boot_image = "PS100006".into(),
        ),
        (
            "task_sequence.boot_image_architecture",
            |a| a.task_sequence.boot_image_architecture = "sparc".into(),
            |a| a.task_sequence.boot_image_architecture = "amd64".into(),
        ),
        (
            "task_sequence.boot_image_architecture",
            |a| a.task_sequence.boot_image_architecture = "arm64".into(),
            |a| a.task_sequence.boot_image_architecture = "x86".into(),
        ),
        (
            "task_sequence.target_architecture",
            |a| a.task_sequence.target_architecture = "x86".into(),
            |a| a.task_sequence.target_architecture = String::new(),
        ),
        (
            "install_windows.image_package",
            |a| a.install_windows.image_package.clear(),
            |a| a.install_windows.image_package = "PS100011".into(),
        ),
        (
            "install_windows.image_index",
            |a| a.install_windows.image_index = 0,
            |a| a.install_windows.image_index = 1,
        ),
        (
            "install_windows.image_index",
            |a| a.install_windows.image_index = 9,
            |a| a.install_windows.image_index = 4,
        ),
        (
            "install_windows.product_key",
            |a| a.install_windows.product_key = "ABCDE-12345".into(),
            |a| a.install_windows.product_key.clear(),
        ),
        (
            "install_windows.product_key",
            |a| a.install_windows.product_key = "AAAAA-BBBBB-CCCCC-DDDDD-EEEEE".into(),
            |a| a.install_windows.product_key = "BBBBB-CCCCC-DDDDD-FFFFF-GGGGG".into(),
        ),
        (
            "install_windows.server_licensing",
            |a| a.install_windows.server_licensing = "per-cpu".into(),
            |a| {
                a.install_windows.server_licensing = "per-seat".into();
            },
        ),
        (
            "install_windows.max_server_connections",
            |a| a.install_windows.max_server_connections = Some(4),
            |a| a.install_windows.max_server_connections = Some(5),
        ),
        (
            "install_windows.max_server_connections",
            |a| a.install_windows.max_server_connections = Some(10000),
            |a| a.install_windows.max_server_connections = Some(9999),
        ),
        (
            "install_windows.max_server_connections",
            |a| a.install_windows.max_server_connections = None,
            |a| a.install_windows.max_server_connections = Some(50),
        ),
        (
            "install_windows.max_server_connections",
            |a| {
                a.install_windows.server_licensing = "none".into();
            },
            |a| {
                a.install_windows.server_licensing = "none".into();
                a.install_windows.max_server_connections = None;
            },
        ),
        (
            "install_windows.local_admin",
            |a| a.install_windows.local_admin = "maybe".into(),
            |a| a.install_windows.local_admin = "specify".into(),
        ),
        (
            "install_windows.admin_password",
            |a| a.install_windows.admin_password.clear(),
            |a| a.install_windows.admin_password = "p".into(),
        ),
        (
            "install_windows.admin_password",
            |a| a.install_windows.local_admin = "random".into(),
            |a| {
                a.install_windows.local_admin = "random".into();
                a.install_windows.admin_password.clear();
            },
        ),
        (
            "configure_network.join",
            |a| a.configure_network.join = "both".into(),
            |a| a.configure_network.join = "workgroup".into(),
        ),
        (
            "configure_network.workgroup",
            |a| {
                a.configure_network.join = "workgroup".into();
                a.configure_network.workgroup = "BAD:NAME".into();
            },
            |a| {
                a.configure_network.join = "workgroup".into();
                a.configure_network.workgroup = "LAB".into();
            },
        ),
        (
            "configure_network.workgroup",
            |a| {
                a.configure_network.join = "workgroup".into();
                a.configure_network.workgroup = "W".repeat(16);
            },
            |a| {
                a.configure_network.join = "workgroup".into();
                a.configure_network.workgroup = "W".repeat(15);
            },
        ),
        (
            "configure_network.domain",
            |a| a.configure_network.domain.clear(),
            |a| a.configure_network.domain = "lab.example".into(),
        ),
        (
            "configure_network.domain_ou",
            |a| a.configure_network.domain_ou = "Computers/Reference".into(),
            |a| a.configure_network.domain_ou.clear(),
        ),
        (
            "configure_network.domain_account",
            |a| a.configure_network.domain_account = "joiner".into(),
            |a| a.configure_network.domain_account = "%OSDJoinAccount%".into(),
        ),
        (
            "configure_network.domain_account",
            |a| a.configure_network.domain_account.clear(),
            |a| a.configure_network.domain_account = "LAB\\join".into(),
        ),
        (
            "configure_network.domain_password",
            |a| a.configure_network.domain_password.clear(),
            |a| a.configure_network.domain_password = "x".into(),
        ),
        (
            "install_configmgr.client_package",
            |a| a.install_configmgr.client_package.clear(),
            |a| a.install_configmgr.client_package = "PS100004".into(),
        ),
        (
            "include_updates.mode",
            |a| a.include_updates.mode = "some".into(),
            |a| a.include_updates.mode = "all".into(),
        ),
        (
            "install_applications.applications[1]",
            |a| a.install_applications.applications[1] = "a,b".into(),
            |a| a.install_applications.applications.truncate(1),
        ),
        (
            "image_properties.version",
            |a| a.image_properties.version = "v".repeat(33),
            |a| a.image_properties.version = "v".repeat(32),
        ),
        (
            "image_properties.created_by",
            |a| a.image_properties.created_by = "c".repeat(256),
            |a| a.image_properties.created_by = "me".into(),
        ),
        (
            "image_properties.description",
            |a| a.image_properties.description = "c".repeat(256),
            |a| a.image_properties.description.clear(),
        ),
        (
            "capture_image.path",
            |a| a.capture_image.path.clear(),
            |a| a.capture_image.path = "smb://fs/captures/ref.wim".into(),
        ),
        (
            "capture_image.path",
            |a| a.capture_image.path = "C:\\captures\\ref.wim".into(),
            |a| a.capture_image.path = "\\\\fs\\captures\\ref.wim".into(),
        ),
        (
            "capture_image.path",
            |a| a.capture_image.path = "\\\\fs\\captures\\ref.iso".into(),
            |a| a.capture_image.path = "\\\\fs\\captures\\ref.wim".into(),
        ),
        (
            "capture_image.account",
            |a| a.capture_image.account.clear(),
            |a| {
                a.capture_image.path = "file:///srv/ref.wim".into();
                a.capture_image.account.clear();
                a.capture_image.password.clear();
            },
        ),
        (
            "capture_image.account",
            |a| a.capture_image.account = "capture".into(),
            |a| a.capture_image.account = "LAB\\capture".into(),
        ),
        (
            "capture_image.password",
            |a| a.capture_image.password.clear(),
            |a| a.capture_image.password = "pw".into(),
        ),
    ];
    let imgs = images();
    for (field, bad, good) in cases {
        let mut a = example();
        bad(&mut a);
        let fields = errors(build(&a, Some(&imgs)).expect_err(field));
        assert!(
            fields.contains(&field.to_string()),
            "{field}: got {fields:?}"
        );
        let mut a = example();
        good(&mut a);
        if let Err(e) = build(&a, Some(&imgs)) {
            panic!("{field}: the passing case failed: {e}");
        }
    }
}

#[test]
fn answers_file_typos_are_errors() {
    let e = Answers::from_toml("[task_sequence]\nnmae = \"x\"\n").unwrap_err();
    assert!(e.to_string().contains("nmae"), "{e}");
    let e = Answers::from_toml("template = \"bogus\"").unwrap_err();
    assert!(e.to_string().contains("bogus"), "{e}");
    // Answers survive a TOML round trip (the CLI writes what the prompts gathered).
    let a = example();
    assert_eq!(Answers::from_toml(&a.to_toml()).unwrap(), a);
}
