//! The two templates of the "Create Task Sequence" wizard.
//!
//! `build_and_capture` produces the sequence of mission.md §6 with the
//! wizard's step names (research §1.5): group "Build the Reference Machine"
//! (Restart in Windows PE … Install Applications) and group "Capture the
//! Reference Machine" (Prepare Configuration Manager Client, Prepare OS,
//! Capture the Reference Machine), with the conditions the product exports.
//! `custom` produces an empty sequence. Name, description and boot image are
//! package properties, not part of the sequence XML; they come back in
//! `PackageInfo` and go into the export package.

use crate::condition::{CmpOp, Condition, Expression};
use crate::model::{Group, Item, Reference, Sequence, Variable};
use crate::steps::{
    ApplyNetworkSettings, ApplyOsImage, ApplyWindowsSettings, AutoApplyDrivers, CaptureOsImage,
    InstallApplication, InstallUpdates, PartitionDisk, PrepareWindows, RebootTarget,
    RestartComputer, SetupWindows, StepKind, UpdateTarget, DEFAULT_REBOOT_MESSAGE,
};

pub const BUILD_GROUP: &str = "Build the Reference Machine";
pub const CAPTURE_GROUP: &str = "Capture the Reference Machine";

/// Package-level properties the wizard collects.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PackageInfo {
    pub name: String,
    pub description: String,
    pub boot_image_id: String,
}

/// Everything the build-and-capture template needs, already validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildAndCapture {
    pub package: PackageInfo,
    pub apply_os: ApplyOsImage,
    pub windows: ApplyWindowsSettings,
    pub network: ApplyNetworkSettings,
    pub client: SetupWindows,
    /// `None`: the wizard's "do not install any software updates".
    pub updates: Option<UpdateTarget>,
    pub applications: InstallApplication,
    pub capture: CaptureOsImage,
}

fn cond(exprs: Vec<Expression>) -> Option<Condition> {
    Some(Condition::all(exprs))
}

fn not_full_media() -> Option<Condition> {
    cond(vec![Expression::variable(
        "_SMSTSMediaType",
        CmpOp::NotEquals,
        "FullMedia",
    )])
}

fn partition_condition(uefi: bool) -> Option<Condition> {
    cond(vec![
        Expression::variable("_SMSTSClientCache", CmpOp::NotExists, ""),
        Expression::variable("_SMSTSMediaType", CmpOp::NotEquals, "OEMMedia"),
        Expression::variable(
            "_SMSTSBootUEFI",
            if uefi {
                CmpOp::Equals
            } else {
                CmpOp::NotEquals
            },
            "true",
        ),
    ])
}

/// The build-and-capture sequence.
pub fn build_and_capture(a: &BuildAndCapture) -> (Sequence, PackageInfo) {
    let mut build = Group::new(BUILD_GROUP);

    let mut s = StepKind::RestartComputer.new_step("Restart in Windows PE");
    RestartComputer {
        target: RebootTarget::WinPE,
        message: DEFAULT_REBOOT_MESSAGE.into(),
        message_timeout: 60,
    }
    .write(&mut s);
    s.condition = cond(vec![Expression::variable(
        "_SMSTSInWinPE",
        CmpOp::Equals,
        "false",
    )]);
    build.items.push(Item::Step(s));

    for (name, layout, uefi) in [
        (
            "Partition Disk 0 - BIOS",
            PartitionDisk::bios_default(),
            false,
        ),
        (
            "Partition Disk 0 - UEFI",
            PartitionDisk::uefi_default(),
            true,
        ),
    ] {
        let mut s = StepKind::FormatAndPartitionDisk.new_step(name);
        layout.write(&mut s);
        s.condition = partition_condition(uefi);
        build.items.push(Item::Step(s));
    }

    let mut s = StepKind::ApplyOperatingSystemImage.new_step("Apply Operating System");
    a.apply_os.write(&mut s);
    build.items.push(Item::Step(s));

    let mut s = StepKind::ApplyWindowsSettings.new_step("Apply Windows Settings");
    a.windows.write(&mut s);
    build.items.push(Item::Step(s));

    let mut s = StepKind::ApplyNetworkSettings.new_step("Apply Network Settings");
    a.network.write(&mut s);
    build.items.push(Item::Step(s));

    let mut s = StepKind::AutoApplyDrivers.new_step("Apply Device Drivers");
    AutoApplyDrivers::default().write(&mut s);
    s.condition = not_full_media();
    build.items.push(Item::Step(s));

    let mut s =
        StepKind::SetupWindowsAndConfigMgr.new_step("Setup Windows and Configuration Manager");
    a.client.write(&mut s);
    build.items.push(Item::Step(s));

    let mut s = StepKind::InstallSoftwareUpdates.new_step("Install Updates");
    InstallUpdates {
        target: a.updates.unwrap_or(UpdateTarget::Mandatory),
        use_cache: true,
    }
    .write(&mut s);
    s.condition = not_full_media();
    // "No updates" keeps the step (the structure stays that of the wizard) but disabled.
    if a.updates.is_none() {
        s.disable = Some(crate::model::Spelled::new(true));
    }
    build.items.push(Item::Step(s));

    let mut s = StepKind::InstallApplication.new_step("Install Applications");
    a.applications.write(&mut s);
    if a.applications.applications.is_empty() {
        s.disable = Some(crate::model::Spelled::new(true));
    }
    build.items.push(Item::Step(s));

    let mut capture = Group::new(CAPTURE_GROUP);
    capture.items.push(Item::Step(
        StepKind::PrepareConfigMgrClientForCapture.new_step("Prepare Configuration Manager Client"),
    ));
    let mut s = StepKind::PrepareWindowsForCapture.new_step("Prepare OS");
    PrepareWindows::default().write(&mut s);
    capture.items.push(Item::Step(s));
    let mut s = StepKind::CaptureOperatingSystemImage.new_step("Capture the Reference Machine");
    a.capture.write(&mut s);
    capture.items.push(Item::Step(s));

    // Content the sequence references (the boot image is a package property).
    let mut refs = Vec::new();
    if !a.apply_os.image_package_id.is_empty() {
        refs.push(Reference::package(&a.apply_os.image_package_id));
    }
    if !a.client.client_package_id.is_empty() {
        refs.push(Reference::package(&a.client.client_package_id));
    }
    for app in &a.applications.applications {
        refs.push(Reference::application(app));
    }

    let seq = Sequence {
        references: if refs.is_empty() { None } else { Some(refs) },
        // Apply Network Settings' global properties, as in a console export.
        global_variables: Some(vec![
            Variable::new(
                "OSDEnableTCPIPFiltering",
                Some("EnableTCPIPFiltering"),
                "false",
            ),
            Variable::new("OSDAdapterCount", Some("NumAdapters"), "0"),
        ]),
        items: vec![Item::Group(build), Item::Group(capture)],
        ..Sequence::default()
    };
    (seq, a.package.clone())
}

/// The custom template: an empty sequence.
pub fn custom(package: &PackageInfo) -> (Sequence, PackageInfo) {
    (Sequence::default(), package.clone())
}
