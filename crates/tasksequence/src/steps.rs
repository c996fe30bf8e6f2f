//! Typed views of the mission's steps over the generic `Step`.
//!
//! A step's settings live in its `defaultVarList` (variable name ↔ WMI property)
//! and, for a few, in its `<action>` command line. Each typed struct here reads
//! those variables (`read`, errors name the step and the variable) and writes
//! them back (`write`, which also rebuilds the command line the way the
//! ConfigMgr editor does). Steps of other types stay generic data.
//! Variable names, properties and command lines are those of a real console
//! export (see research notes §1.4).

use crate::error::Error;
use crate::model::{parse_bool, RunIn, Spelled, Step};

pub const RESTART: &str = "SMS_TaskSequence_RebootAction";
pub const PARTITION_DISK: &str = "SMS_TaskSequence_PartitionDiskAction";
pub const APPLY_OS: &str = "SMS_TaskSequence_ApplyOperatingSystemAction";
pub const APPLY_WINDOWS_SETTINGS: &str = "SMS_TaskSequence_ApplyWindowsSettingsAction";
pub const APPLY_NETWORK_SETTINGS: &str = "SMS_TaskSequence_ApplyNetworkSettingsAction";
pub const AUTO_APPLY_DRIVERS: &str = "SMS_TaskSequence_AutoApplyAction";
pub const APPLY_DRIVER_PACKAGE: &str = "SMS_TaskSequence_ApplyDriverPackageAction";
pub const SETUP_WINDOWS: &str = "SMS_TaskSequence_SetupWindowsAndSMSAction";
pub const INSTALL_UPDATES: &str = "SMS_TaskSequence_InstallUpdateAction";
pub const INSTALL_APPLICATION: &str = "SMS_TaskSequence_InstallApplicationAction";
pub const PREPARE_CLIENT: &str = "SMS_TaskSequence_PrepareSMSClientAction";
pub const PREPARE_OS: &str = "SMS_TaskSequence_PrepareOSAction";
pub const CAPTURE_OS: &str = "SMS_TaskSequence_CaptureSystemImageAction";
pub const RUN_COMMAND_LINE: &str = "SMS_TaskSequence_RunCommandLineAction";
pub const SET_VARIABLE: &str = "SMS_TaskSequence_SetVariableAction";
pub const JOIN_DOMAIN: &str = "SMS_TaskSequence_JoinDomainWorkgroupAction";
pub const SUB_TASK_SEQUENCE: &str = "SMS_TaskSequence_SubTasksequence";

/// The step types this crate knows by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StepKind {
    RestartComputer,
    FormatAndPartitionDisk,
    ApplyOperatingSystemImage,
    ApplyWindowsSettings,
    ApplyNetworkSettings,
    AutoApplyDrivers,
    ApplyDriverPackage,
    SetupWindowsAndConfigMgr,
    InstallSoftwareUpdates,
    InstallApplication,
    PrepareConfigMgrClientForCapture,
    PrepareWindowsForCapture,
    CaptureOperatingSystemImage,
    RunCommandLine,
    SetTaskSequenceVariable,
}

impl StepKind {
    pub const ALL: [StepKind; 15] = [
        StepKind::RestartComputer,
        StepKind::FormatAndPartitionDisk,
        StepKind::ApplyOperatingSystemImage,
        StepKind::ApplyWindowsSettings,
        StepKind::ApplyNetworkSettings,
        StepKind::AutoApplyDrivers,
        StepKind::ApplyDriverPackage,
        StepKind::SetupWindowsAndConfigMgr,
        StepKind::InstallSoftwareUpdates,
        StepKind::InstallApplication,
        StepKind::PrepareConfigMgrClientForCapture,
        StepKind::PrepareWindowsForCapture,
        StepKind::CaptureOperatingSystemImage,
        StepKind::RunCommandLine,
        StepKind::SetTaskSequenceVariable,
    ];

    /// The ConfigMgr action class.
    pub fn type_name(self) -> &'static str {
        match self {
            StepKind::RestartComputer => RESTART,
            StepKind::FormatAndPartitionDisk => PARTITION_DISK,
            StepKind::ApplyOperatingSystemImage => APPLY_OS,
            StepKind::ApplyWindowsSettings => APPLY_WINDOWS_SETTINGS,
            StepKind::ApplyNetworkSettings => APPLY_NETWORK_SETTINGS,
            StepKind::AutoApplyDrivers => AUTO_APPLY_DRIVERS,
            StepKind::ApplyDriverPackage => APPLY_DRIVER_PACKAGE,
            StepKind::SetupWindowsAndConfigMgr => SETUP_WINDOWS,
            StepKind::InstallSoftwareUpdates => INSTALL_UPDATES,
            StepKind::InstallApplication => INSTALL_APPLICATION,
            StepKind::PrepareConfigMgrClientForCapture => PREPARE_CLIENT,
            StepKind::PrepareWindowsForCapture => PREPARE_OS,
            StepKind::CaptureOperatingSystemImage => CAPTURE_OS,
            StepKind::RunCommandLine => RUN_COMMAND_LINE,
            StepKind::SetTaskSequenceVariable => SET_VARIABLE,
        }
    }

    /// The name the editor gives a new step of this type.
    pub fn editor_name(self) -> &'static str {
        match self {
            StepKind::RestartComputer => "Restart Computer",
            StepKind::FormatAndPartitionDisk => "Format and Partition Disk",
            StepKind::ApplyOperatingSystemImage => "Apply Operating System Image",
            StepKind::ApplyWindowsSettings => "Apply Windows Settings",
            StepKind::ApplyNetworkSettings => "Apply Network Settings",
            StepKind::AutoApplyDrivers => "Auto Apply Drivers",
            StepKind::ApplyDriverPackage => "Apply Driver Package",
            StepKind::SetupWindowsAndConfigMgr => "Setup Windows and ConfigMgr",
            StepKind::InstallSoftwareUpdates => "Install Software Updates",
            StepKind::InstallApplication => "Install Application",
            StepKind::PrepareConfigMgrClientForCapture => "Prepare ConfigMgr Client for Capture",
            StepKind::PrepareWindowsForCapture => "Prepare Windows for Capture",
            StepKind::CaptureOperatingSystemImage => "Capture Operating System Image",
            StepKind::RunCommandLine => "Run Command Line",
            StepKind::SetTaskSequenceVariable => "Set Task Sequence Variable",
        }
    }

    /// A short name for the command line (`restart-computer`).
    pub fn cli_name(self) -> String {
        self.editor_name().to_ascii_lowercase().replace(' ', "-")
    }

    /// Finds a kind by action class, editor name or CLI name (case-insensitive).
    pub fn find(s: &str) -> Option<StepKind> {
        StepKind::ALL.into_iter().find(|k| {
            k.type_name().eq_ignore_ascii_case(s)
                || k.editor_name().eq_ignore_ascii_case(s)
                || k.cli_name().eq_ignore_ascii_case(s)
        })
    }

    pub fn of(step: &Step) -> Option<StepKind> {
        let t = step.step_type.as_deref()?;
        StepKind::ALL
            .into_iter()
            .find(|k| k.type_name().eq_ignore_ascii_case(t))
    }

    /// Where the step may run.
    pub fn run_in(self) -> RunIn {
        match self {
            StepKind::FormatAndPartitionDisk
            | StepKind::ApplyOperatingSystemImage
            | StepKind::ApplyWindowsSettings
            | StepKind::ApplyNetworkSettings
            | StepKind::AutoApplyDrivers
            | StepKind::ApplyDriverPackage
            | StepKind::CaptureOperatingSystemImage => RunIn::WinPE,
            StepKind::InstallSoftwareUpdates
            | StepKind::InstallApplication
            | StepKind::PrepareConfigMgrClientForCapture
            | StepKind::PrepareWindowsForCapture => RunIn::FullOS,
            StepKind::RestartComputer
            | StepKind::SetupWindowsAndConfigMgr
            | StepKind::RunCommandLine
            | StepKind::SetTaskSequenceVariable => RunIn::WinPEandFullOS,
        }
    }

    /// A new step of this kind with the editor's defaults.
    pub fn new_step(self, name: &str) -> Step {
        let mut s = Step::new(self.type_name(), name);
        s.run_in = Some(Spelled::new(self.run_in()));
        s.success_codes = Some(Spelled::new(if self == StepKind::RunCommandLine {
            vec![0, 3010]
        } else {
            vec![0]
        }));
        let retry = matches!(
            self,
            StepKind::InstallSoftwareUpdates | StepKind::InstallApplication
        );
        s.retry_count = Some(Spelled::new(if retry { 2 } else { 0 }));
        s.run_from_net = Some(Spelled::new(false));
        match self {
            StepKind::RestartComputer => RestartComputer::default().write(&mut s),
            StepKind::FormatAndPartitionDisk => PartitionDisk::bios_default().write(&mut s),
            StepKind::ApplyOperatingSystemImage => ApplyOsImage::default().write(&mut s),
            StepKind::ApplyWindowsSettings => ApplyWindowsSettings::default().write(&mut s),
            StepKind::ApplyNetworkSettings => ApplyNetworkSettings::default().write(&mut s),
            StepKind::AutoApplyDrivers => AutoApplyDrivers::default().write(&mut s),
            StepKind::ApplyDriverPackage => ApplyDriverPackage::default().write(&mut s),
            StepKind::SetupWindowsAndConfigMgr => SetupWindows::default().write(&mut s),
            StepKind::InstallSoftwareUpdates => InstallUpdates::default().write(&mut s),
            StepKind::InstallApplication => InstallApplication::default().write(&mut s),
            StepKind::PrepareConfigMgrClientForCapture => {
                s.action = Some("osdpreparesmsclient.exe".into());
            }
            StepKind::PrepareWindowsForCapture => PrepareWindows::default().write(&mut s),
            StepKind::CaptureOperatingSystemImage => CaptureOsImage::default().write(&mut s),
            StepKind::RunCommandLine => RunCommandLine::default().write(&mut s),
            StepKind::SetTaskSequenceVariable => SetVariable::default().write(&mut s),
        }
        s
    }
}

// ---- reading helpers ----

fn check_type(step: &Step, kind: StepKind) -> Result<(), Error> {
    if StepKind::of(step) == Some(kind) {
        Ok(())
    } else {
        Err(Error::invalid(
            step.pos,
            format!(
                "step \"{}\" is {}, not {}",
                step.name,
                step.step_type.as_deref().unwrap_or("untyped"),
                kind.type_name()
            ),
        ))
    }
}

fn text(step: &Step, var: &str) -> String {
    step.var(var).unwrap_or("").to_string()
}

fn boolean(step: &Step, var: &str, default: bool) -> Result<bool, Error> {
    match step.variable(var) {
        None => Ok(default),
        Some(v) if v.value.trim().is_empty() => Ok(default),
        Some(v) => parse_bool(&v.value).ok_or_else(|| {
            Error::invalid(
                v.pos,
                format!(
                    "step \"{}\": {var}=\"{}\" is not true or false",
                    step.name, v.value
                ),
            )
        }),
    }
}

fn number(step: &Step, var: &str, default: u32) -> Result<u32, Error> {
    match step.variable(var) {
        None => Ok(default),
        Some(v) if v.value.trim().is_empty() => Ok(default),
        Some(v) => v.value.trim().parse().map_err(|_| {
            Error::invalid(
                v.pos,
                format!(
                    "step \"{}\": {var}=\"{}\" is not a whole number",
                    step.name, v.value
                ),
            )
        }),
    }
}

fn tf(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

/// ConfigMgr writes booleans in command lines capitalized (`/runfromnet:False`).
fn cap(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

// ---- Restart Computer ----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebootTarget {
    /// The boot image assigned to the sequence.
    WinPE,
    /// The default operating system on the hard disk.
    HardDisk,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartComputer {
    pub target: RebootTarget,
    pub message: String,
    /// Seconds the notification is shown; 0 for none.
    pub message_timeout: u32,
}

pub const DEFAULT_REBOOT_MESSAGE: &str =
    "A new Microsoft Windows operating system is being installed. The computer must restart to continue.";

impl Default for RestartComputer {
    fn default() -> Self {
        RestartComputer {
            target: RebootTarget::HardDisk,
            message: String::new(),
            message_timeout: 60,
        }
    }
}

impl RestartComputer {
    pub fn read(step: &Step) -> Result<Self, Error> {
        check_type(step, StepKind::RestartComputer)?;
        let raw = text(step, "SMSRebootTarget");
        let target = match raw.to_ascii_lowercase().as_str() {
            "winpe" => RebootTarget::WinPE,
            "hd" | "" => RebootTarget::HardDisk,
            _ => {
                return Err(Error::invalid(
                    step.pos,
                    format!(
                        "step \"{}\": SMSRebootTarget=\"{raw}\" is not WinPE or HD",
                        step.name
                    ),
                ))
            }
        };
        Ok(RestartComputer {
            target,
            message: text(step, "SMSRebootMessage"),
            message_timeout: number(step, "SMSRebootTimeout", 60)?,
        })
    }
    pub fn write(&self, step: &mut Step) {
        let t = match self.target {
            RebootTarget::WinPE => "WinPE",
            RebootTarget::HardDisk => "HD",
        };
        step.action = Some(format!("smsboot.exe /target:{t}"));
        step.set_var("SMSRebootMessage", Some("Message"), &self.message);
        step.set_var(
            "SMSRebootTimeout",
            Some("MessageTimeout"),
            &self.message_timeout.to_string(),
        );
        step.set_hidden_var("SMSRebootTarget", "Target", t);
    }
}

// ---- Format and Partition Disk ----

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    pub volume_name: String,
    /// Primary, Extended, Logical, Hidden, EFI, MSR, Recovery (spelling kept).
    pub partition_type: String,
    pub file_system: String,
    pub bootable: bool,
    pub quick_format: bool,
    /// Empty: all remaining space.
    pub size: String,
    /// MB, GB, or Percent (of the remaining space); `%` and `PERCENT` are read too.
    pub size_units: String,
    pub volume_letter_variable: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionDisk {
    pub disk_index: u32,
    pub disk_type: String,
    /// MBR or GPT.
    pub partition_style: String,
    pub gpt_boot_disk: bool,
    pub bios_compatibility_mode: bool,
    pub partitions: Vec<Partition>,
}

impl Partition {
    pub fn new(name: &str, ptype: &str, fs: &str, size: &str, units: &str) -> Self {
        Partition {
            volume_name: name.into(),
            partition_type: ptype.into(),
            file_system: fs.into(),
            bootable: false,
            quick_format: true,
            size: size.into(),
            size_units: units.into(),
            volume_letter_variable: String::new(),
        }
    }
}

impl PartitionDisk {
    /// The wizard's BIOS layout: System Reserved 350 MB (active), Windows 99 %
    /// (letter saved in `OSDisk`), Recovery on the rest. Sizes are the common
    /// console defaults, not taken from a verified export (research §3).
    pub fn bios_default() -> Self {
        let mut sys = Partition::new("System Reserved", "Primary", "NTFS", "350", "MB");
        sys.bootable = true;
        let mut win = Partition::new("Windows", "Primary", "NTFS", "99", "Percent");
        win.volume_letter_variable = "OSDisk".into();
        PartitionDisk {
            disk_index: 0,
            disk_type: "BASIC".into(),
            partition_style: "MBR".into(),
            gpt_boot_disk: false,
            bios_compatibility_mode: false,
            partitions: vec![
                sys,
                win,
                Partition::new("Recovery", "Recovery", "NTFS", "100", "Percent"),
            ],
        }
    }

    /// The wizard's UEFI layout: EFI 500 MB FAT32, MSR 128 MB, Windows 99 %
    /// (`OSDisk`), Recovery on the rest (New-CMTSStepPartitionDisk example).
    pub fn uefi_default() -> Self {
        let mut win = Partition::new("Windows", "Primary", "NTFS", "99", "Percent");
        win.volume_letter_variable = "OSDisk".into();
        PartitionDisk {
            disk_index: 0,
            disk_type: "BASIC".into(),
            partition_style: "GPT".into(),
            gpt_boot_disk: true,
            bios_compatibility_mode: false,
            partitions: vec![
                Partition::new("EFI", "EFI", "FAT32", "500", "MB"),
                Partition::new("MSR", "MSR", "", "128", "MB"),
                win,
                Partition::new("Recovery", "Recovery", "NTFS", "100", "Percent"),
            ],
        }
    }

    pub fn read(step: &Step) -> Result<Self, Error> {
        check_type(step, StepKind::FormatAndPartitionDisk)?;
        let count = number(step, "OSDPartitions", 0)?;
        // Every partition needs several variables: a count beyond what the
        // step holds is a lie, and must not drive an allocation.
        let present = step.variables.as_ref().map_or(0, Vec::len) as u32;
        if count > present {
            return Err(Error::invalid(
                step.pos,
                format!(
                    "step \"{}\": OSDPartitions={count} but the step has only {present} variables",
                    step.name
                ),
            ));
        }
        let mut partitions = Vec::new();
        for i in 0..count {
            let p = |f: &str| format!("OSDPartitions{i}{f}");
            partitions.push(Partition {
                volume_name: text(step, &p("VolumeName")),
                partition_type: text(step, &p("Type")),
                file_system: text(step, &p("FileSystem")),
                bootable: boolean(step, &p("Bootable"), false)?,
                quick_format: boolean(step, &p("QuickFormat"), true)?,
                size: text(step, &p("Size")),
                size_units: text(step, &p("SizeUnits")),
                volume_letter_variable: text(step, &p("VolumeLetterVariable")),
            });
        }
        Ok(PartitionDisk {
            disk_index: number(step, "OSDDiskIndex", 0)?,
            disk_type: text(step, "OSDDiskType"),
            partition_style: text(step, "OSDPartitionStyle"),
            gpt_boot_disk: boolean(step, "OSDGPTBootDisk", false)?,
            bios_compatibility_mode: boolean(step, "OSDDiskpartBiosCompatibilityMode", false)?,
            partitions,
        })
    }

    pub fn write(&self, step: &mut Step) {
        step.action = Some("osddiskpart.exe".into());
        // Old partition variables go first so that a shorter layout leaves none behind.
        if let Some(vars) = step.variables.as_mut() {
            vars.retain(|v| {
                crate::variables::split_array_element(&v.name, "OSDPartitions").is_none()
            });
        }
        step.set_var(
            "OSDDiskIndex",
            Some("DiskIndex"),
            &self.disk_index.to_string(),
        );
        step.set_var("OSDDiskType", Some("DiskType"), &self.disk_type);
        step.set_var(
            "OSDDiskpartBiosCompatibilityMode",
            Some("DiskpartBiosCompatibilityMode"),
            tf(self.bios_compatibility_mode),
        );
        step.set_var(
            "OSDGPTBootDisk",
            Some("GPTBootDisk"),
            tf(self.gpt_boot_disk),
        );
        step.set_var(
            "OSDPartitionStyle",
            Some("PartitionStyle"),
            &self.partition_style,
        );
        step.set_hidden_var(
            "OSDPartitions",
            "Partitions",
            &self.partitions.len().to_string(),
        );
        for (i, p) in self.partitions.iter().enumerate() {
            let mut set = |field: &str, value: &str| {
                step.set_var(
                    &format!("OSDPartitions{i}{field}"),
                    Some(&format!("Partitions{i}{field}")),
                    value,
                );
            };
            set("AssignVolumeLetter", "false");
            set("Bootable", tf(p.bootable));
            set("FileSystem", &p.file_system);
            set("QuickFormat", tf(p.quick_format));
            set("Size", &p.size);
            set("SizeUnits", &p.size_units);
            set("Type", &p.partition_type);
            set("VolumeLetterVariable", &p.volume_letter_variable);
            set("VolumeName", &p.volume_name);
        }
    }
}

// ---- Apply Operating System Image ----

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyOsImage {
    /// The OS image package (`ImagePackageID`).
    pub image_package_id: String,
    /// 1-based image index in the WIM (`OSDImageIndex`).
    pub image_index: u32,
    pub run_from_net: bool,
}

impl Default for ApplyOsImage {
    fn default() -> Self {
        ApplyOsImage {
            image_package_id: String::new(),
            image_index: 1,
            run_from_net: false,
        }
    }
}

impl ApplyOsImage {
    pub fn read(step: &Step) -> Result<Self, Error> {
        check_type(step, StepKind::ApplyOperatingSystemImage)?;
        Ok(ApplyOsImage {
            image_package_id: text(step, "ImagePackageID"),
            image_index: number(step, "OSDImageIndex", 1)?,
            run_from_net: boolean(step, "RunFromNet", false)?,
        })
    }
    pub fn write(&self, step: &mut Step) {
        step.action = Some(format!(
            "OSDApplyOS.exe /image:{},%OSDImageIndex% /runfromnet:{}",
            self.image_package_id,
            cap(self.run_from_net)
        ));
        step.set_var(
            "OSDImageIndex",
            Some("ImageIndex"),
            &self.image_index.to_string(),
        );
        step.set_hidden_var("ImagePackageID", "ImagePackageID", &self.image_package_id);
        step.set_hidden_var("RunFromNet", "RunFromNet", tf(self.run_from_net));
    }
}

// ---- Apply Windows Settings ----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerLicense {
    PerSeat,
    PerServer { max_connections: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyWindowsSettings {
    pub computer_name: String,
    pub registered_user: String,
    pub registered_org: String,
    pub product_key: String,
    pub server_license: Option<ServerLicense>,
    /// Randomly generate the local administrator password and disable the account.
    pub random_admin_password: bool,
    pub admin_password: String,
    pub time_zone: String,
}

impl Default for ApplyWindowsSettings {
    fn default() -> Self {
        ApplyWindowsSettings {
            computer_name: "%_SMSTSMachineName%".into(),
            registered_user: "User".into(),
            registered_org: "Organization".into(),
            product_key: String::new(),
            server_license: None,
            random_admin_password: true,
            admin_password: String::new(),
            time_zone: String::new(),
        }
    }
}

impl ApplyWindowsSettings {
    pub fn read(step: &Step) -> Result<Self, Error> {
        check_type(step, StepKind::ApplyWindowsSettings)?;
        let mode = text(step, "OSDServerLicenseMode");
        let server_license = match mode.to_ascii_lowercase().as_str() {
            "" => None,
            "perseat" => Some(ServerLicense::PerSeat),
            "perserver" => Some(ServerLicense::PerServer {
                max_connections: number(step, "OSDServerLicenseConnectionLimit", 5)?,
            }),
            _ => {
                return Err(Error::invalid(
                    step.pos,
                    format!(
                        "step \"{}\": OSDServerLicenseMode=\"{mode}\" is not PerSeat or PerServer",
                        step.name
                    ),
                ))
            }
        };
        Ok(ApplyWindowsSettings {
            computer_name: text(step, "OSDComputerName"),
            registered_user: text(step, "OSDRegisteredUserName"),
            registered_org: text(step, "OSDRegisteredOrgName"),
            product_key: text(step, "OSDProductKey"),
            server_license,
            random_admin_password: boolean(step, "OSDRandomAdminPassword", true)?,
            admin_password: text(step, "OSDLocalAdminPassword"),
            time_zone: text(step, "OSDTimeZone"),
        })
    }
    pub fn write(&self, step: &mut Step) {
        step.action = Some("osdwinsettings.exe /config".into());
        step.set_var("OSDComputerName", Some("ComputerName"), &self.computer_name);
        step.set_var("OSDProductKey", Some("ProductKey"), &self.product_key);
        step.set_var(
            "OSDRandomAdminPassword",
            Some("RandomAdminPassword"),
            tf(self.random_admin_password),
        );
        if self.random_admin_password {
            step.remove_var("OSDLocalAdminPassword");
        } else {
            step.set_var(
                "OSDLocalAdminPassword",
                Some("AdminPassword"),
                &self.admin_password,
            );
        }
        step.set_var(
            "OSDRegisteredOrgName",
            Some("RegisteredOrgName"),
            &self.registered_org,
        );
        step.set_var(
            "OSDRegisteredUserName",
            Some("RegisteredUserName"),
            &self.registered_user,
        );
        match self.server_license {
            None => {
                step.remove_var("OSDServerLicenseMode");
                step.remove_var("OSDServerLicenseConnectionLimit");
            }
            Some(ServerLicense::PerSeat) => {
                step.set_var("OSDServerLicenseMode", Some("ServerLicenseMode"), "PerSeat");
                step.remove_var("OSDServerLicenseConnectionLimit");
            }
            Some(ServerLicense::PerServer { max_connections }) => {
                step.set_var(
                    "OSDServerLicenseMode",
                    Some("ServerLicenseMode"),
                    "PerServer",
                );
                step.set_var(
                    "OSDServerLicenseConnectionLimit",
                    Some("ServerLicenseConnectionLimit"),
                    &max_connections.to_string(),
                );
            }
        }
        step.set_var("OSDTimeZone", Some("TimeZone"), &self.time_zone);
    }
}

// ---- Apply Network Settings ----

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkJoin {
    Workgroup {
        name: String,
    },
    Domain {
        domain: String,
        /// LDAP distinguished name of the OU, or empty.
        ou: String,
        /// `domain\user` or a `%variable%`.
        account: String,
        password: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyNetworkSettings {
    pub join: NetworkJoin,
}

impl Default for ApplyNetworkSettings {
    fn default() -> Self {
        ApplyNetworkSettings {
            join: NetworkJoin::Workgroup {
                name: "WORKGROUP".into(),
            },
        }
    }
}

impl ApplyNetworkSettings {
    pub fn read(step: &Step) -> Result<Self, Error> {
        check_type(step, StepKind::ApplyNetworkSettings)?;
        let join = match number(step, "OSDNetworkJoinType", 1)? {
            0 => NetworkJoin::Domain {
                domain: text(step, "OSDDomainName"),
                ou: text(step, "OSDDomainOUName"),
                account: text(step, "OSDJoinAccount"),
                password: text(step, "OSDJoinPassword"),
            },
            1 => NetworkJoin::Workgroup {
                name: text(step, "OSDWorkgroupName"),
            },
            n => {
                return Err(Error::invalid(
                    step.pos,
                    format!(
                        "step \"{}\": OSDNetworkJoinType={n} is not 0 (domain) or 1 (workgroup)",
                        step.name
                    ),
                ))
            }
        };
        Ok(ApplyNetworkSettings { join })
    }
    pub fn write(&self, step: &mut Step) {
        step.action = Some("osdnetsettings.exe configure".into());
        for v in [
            "OSDWorkgroupName",
            "OSDDomainName",
            "OSDDomainOUName",
            "OSDJoinAccount",
            "OSDJoinPassword",
        ] {
            step.remove_var(v);
        }
        match &self.join {
            NetworkJoin::Workgroup { name } => {
                step.set_var("OSDNetworkJoinType", Some("NetworkJoinType"), "1");
                step.set_var("OSDWorkgroupName", Some("WorkgroupName"), name);
            }
            NetworkJoin::Domain {
                domain,
                ou,
                account,
                password,
            } => {
                step.set_var("OSDNetworkJoinType", Some("NetworkJoinType"), "0");
                step.set_var("OSDDomainName", Some("DomainName"), domain);
                step.set_var("OSDDomainOUName", Some("DomainOUName"), ou);
                step.set_var("OSDJoinAccount", Some("DomainUsername"), account);
                step.set_var("OSDJoinPassword", Some("DomainPassword"), password);
            }
        }
        step.set_hidden_var("OSDEnableTCPIPFiltering", "EnableTCPIPFiltering", "false");
        step.set_hidden_var("OSDAdapterCount", "NumAdapters", "0");
    }
}

// ---- Auto Apply Drivers / Apply Driver Package ----

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoApplyDrivers {
    pub best_match: bool,
    pub allow_unsigned: bool,
    /// Category unique IDs; empty for all categories.
    pub categories: Vec<String>,
}

impl Default for AutoApplyDrivers {
    fn default() -> Self {
        AutoApplyDrivers {
            best_match: true,
            allow_unsigned: false,
            categories: Vec::new(),
        }
    }
}

impl AutoApplyDrivers {
    pub fn read(step: &Step) -> Result<Self, Error> {
        check_type(step, StepKind::AutoApplyDrivers)?;
        Ok(AutoApplyDrivers {
            best_match: boolean(step, "OSDAutoApplyDriverBestMatch", true)?,
            allow_unsigned: boolean(step, "OSDAllowUnsignedDriver", false)?,
            categories: text(step, "OSDAutoApplyDriverCategoryList")
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
        })
    }
    pub fn write(&self, step: &mut Step) {
        step.action = Some(
            "osddriverclient.exe /auto /bestmatch:%OSDAutoApplyDriverBestMatch% /unsigned:%OSDAllowUnsignedDriver%".into(),
        );
        step.set_var(
            "OSDAutoApplyDriverBestMatch",
            Some("BestMatch"),
            tf(self.best_match),
        );
        step.set_var(
            "OSDAllowUnsignedDriver",
            Some("UnsignedDriver"),
            tf(self.allow_unsigned),
        );
        if self.categories.is_empty() {
            step.remove_var("OSDAutoApplyDriverCategoryList");
        } else {
            step.set_var(
                "OSDAutoApplyDriverCategoryList",
                Some("CategoryList"),
                &self.categories.join(","),
            );
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApplyDriverPackage {
    pub package_id: String,
    pub recurse: bool,
    pub allow_unsigned: bool,
}

impl ApplyDriverPackage {
    pub fn read(step: &Step) -> Result<Self, Error> {
        check_type(step, StepKind::ApplyDriverPackage)?;
        Ok(ApplyDriverPackage {
            package_id: text(step, "OSDApplyDriverDriverPackageID"),
            recurse: boolean(step, "OSDRecurse", false)?,
            allow_unsigned: boolean(step, "OSDAllowUnsignedDriver", false)?,
        })
    }
    pub fn write(&self, step: &mut Step) {
        // Two spaces after the package ID, as the console writes it.
        step.action = Some(format!(
            "osddriverclient.exe /install:{}  /unsigned:%OSDAllowUnsignedDriver% /recurse:%OSDRecurse%",
            self.package_id
        ));
        step.set_hidden_var(
            "OSDApplyDriverDriverPackageID",
            "DriverPackageID",
            &self.package_id,
        );
        step.set_var("OSDRecurse", Some("Recurse"), tf(self.recurse));
        step.set_var(
            "OSDAllowUnsignedDriver",
            Some("UnsignedDriver"),
            tf(self.allow_unsigned),
        );
    }
}

// ---- Setup Windows and ConfigMgr ----

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SetupWindows {
    pub client_package_id: String,
    /// Extra client installation properties (ccmsetup command line).
    pub install_properties: String,
}

impl SetupWindows {
    pub fn read(step: &Step) -> Result<Self, Error> {
        check_type(step, StepKind::SetupWindowsAndConfigMgr)?;
        Ok(SetupWindows {
            client_package_id: text(step, "_SMSClientPackageID"),
            install_properties: text(step, "SMSClientInstallProperties"),
        })
    }
    pub fn write(&self, step: &mut Step) {
        step.action = Some("OSDSetupWindows.exe".into());
        step.set_var(
            "SMSClientInstallProperties",
            Some("ClientInstallProperties"),
            &self.install_properties,
        );
        step.set_var(
            "_SMSClientPackageID",
            Some("ClientPackageID"),
            &self.client_package_id,
        );
    }
}

// ---- Install Software Updates ----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateTarget {
    /// Required (mandatory) updates only.
    Mandatory,
    /// All available updates.
    All,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallUpdates {
    pub target: UpdateTarget,
    pub use_cache: bool,
}

impl Default for InstallUpdates {
    fn default() -> Self {
        InstallUpdates {
            target: UpdateTarget::Mandatory,
            use_cache: true,
        }
    }
}

impl InstallUpdates {
    pub fn read(step: &Step) -> Result<Self, Error> {
        check_type(step, StepKind::InstallSoftwareUpdates)?;
        let raw = text(step, "SMSInstallUpdateTarget");
        let target = match raw.to_ascii_lowercase().as_str() {
            "mandatory" | "" => UpdateTarget::Mandatory,
            "all" => UpdateTarget::All,
            _ => {
                return Err(Error::invalid(
                    step.pos,
                    format!(
                        "step \"{}\": SMSInstallUpdateTarget=\"{raw}\" is not Mandatory or All",
                        step.name
                    ),
                ))
            }
        };
        Ok(InstallUpdates {
            target,
            use_cache: boolean(step, "SMSTSSoftwareUpdateScanUseCache", true)?,
        })
    }
    pub fn write(&self, step: &mut Step) {
        step.action = Some("TSInstallSWUpdate.exe /target:%SMSInstallUpdateTarget%".into());
        step.set_hidden_var("RetryCount", "RetryCount", "2");
        step.set_var(
            "SMSInstallUpdateTarget",
            Some("Target"),
            match self.target {
                UpdateTarget::Mandatory => "Mandatory",
                UpdateTarget::All => "All",
            },
        );
        step.set_var(
            "SMSTSSoftwareUpdateScanUseCache",
            Some("UseCache"),
            tf(self.use_cache),
        );
    }
}

// ---- Install Application ----

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InstallApplication {
    /// Application model IDs (`ScopeId_…/Application_…`), installed in order.
    pub applications: Vec<String>,
    /// Install the applications listed in `<base>01`, `<base>02`, … instead.
    pub base_variable: String,
    /// Continue with the others when one application fails.
    pub continue_on_install_error: bool,
    pub clear_cache: bool,
}

impl InstallApplication {
    pub fn read(step: &Step) -> Result<Self, Error> {
        check_type(step, StepKind::InstallApplication)?;
        Ok(InstallApplication {
            applications: text(step, "ApplicationName")
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            base_variable: text(step, "BaseVariableName"),
            continue_on_install_error: boolean(step, "ContinueOnInstallError", false)?,
            clear_cache: boolean(step, "OSDAppClearCache", false)?,
        })
    }
    pub fn write(&self, step: &mut Step) {
        let list = self.applications.join(",");
        step.action = Some(format!(
            "smsappinstall.exe /app:{list} /basevar:{} /continueOnError:{}",
            self.base_variable,
            cap(self.continue_on_install_error)
        ));
        step.set_hidden_var("ApplicationName", "ApplicationName", &list);
        step.set_hidden_var("BaseVariableName", "BaseVariableName", &self.base_variable);
        step.set_var("OSDAppClearCache", Some("ClearCache"), tf(self.clear_cache));
        step.set_hidden_var(
            "ContinueOnInstallError",
            "ContinueOnInstallError",
            tf(self.continue_on_install_error),
        );
        step.set_hidden_var("RetryCount", "RetryCount", "2");
    }
}

// ---- Prepare Windows for Capture ----

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PrepareWindows {
    pub build_mass_storage_driver_list: bool,
    pub keep_activation: bool,
    /// Shut down after Sysprep instead of restarting into the boot image.
    pub shutdown: bool,
}

impl PrepareWindows {
    pub fn read(step: &Step) -> Result<Self, Error> {
        check_type(step, StepKind::PrepareWindowsForCapture)?;
        Ok(PrepareWindows {
            build_mass_storage_driver_list: boolean(step, "OSDBuildStorageDriverList", false)?,
            keep_activation: boolean(step, "OSDKeepActivation", false)?,
            shutdown: boolean(step, "OSDShutdownPreparedOs", false)?,
        })
    }
    pub fn write(&self, step: &mut Step) {
        step.action = Some(
            "osdprepareos.exe /activate:%OSDKeepActivation% /bmsd:%OSDBuildStorageDriverList% /shutdown:%OSDShutdownPreparedOs%".into(),
        );
        step.set_var(
            "OSDBuildStorageDriverList",
            Some("BuildStorageDriverList"),
            tf(self.build_mass_storage_driver_list),
        );
        step.set_var(
            "OSDKeepActivation",
            Some("KeepActivation"),
            tf(self.keep_activation),
        );
        step.set_var(
            "OSDShutdownPreparedOs",
            Some("ShutdownPreparedOs"),
            tf(self.shutdown),
        );
    }
}

// ---- Capture Operating System Image ----

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CaptureOsImage {
    /// UNC path (or URL) of the `.wim` to write; an existing file is overwritten.
    pub destination: String,
    pub account: String,
    pub password: String,
    pub image_creator: String,
    pub image_description: String,
    pub image_version: String,
}

impl CaptureOsImage {
    pub fn read(step: &Step) -> Result<Self, Error> {
        check_type(step, StepKind::CaptureOperatingSystemImage)?;
        Ok(CaptureOsImage {
            destination: text(step, "OSDCaptureDestination"),
            account: text(step, "OSDCaptureAccount"),
            password: text(step, "OSDCaptureAccountPassword"),
            image_creator: text(step, "OSDImageCreator"),
            image_description: text(step, "OSDImageDescription"),
            image_version: text(step, "OSDImageVersion"),
        })
    }
    pub fn write(&self, step: &mut Step) {
        step.action = Some("osdcapturesystemimage.exe".into());
        step.set_var(
            "OSDCaptureDestination",
            Some("CaptureDestination"),
            &self.destination,
        );
        step.set_var("OSDCaptureAccount", Some("CaptureUsername"), &self.account);
        step.set_var(
            "OSDCaptureAccountPassword",
            Some("CapturePassword"),
            &self.password,
        );
        step.set_var("OSDImageCreator", Some("ImageCreator"), &self.image_creator);
        step.set_var(
            "OSDImageDescription",
            Some("ImageDescription"),
            &self.image_description,
        );
        step.set_var("OSDImageVersion", Some("ImageVersion"), &self.image_version);
    }
}

// ---- Run Command Line ----

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RunCommandLine {
    pub command_line: String,
    /// Package whose content is the working folder, or empty.
    pub package_id: String,
    pub working_directory: String,
    pub disable_wow64_redirection: bool,
    pub run_as_user: bool,
    pub user_name: String,
    pub user_password: String,
    pub output_variable: String,
}

impl RunCommandLine {
    pub fn read(step: &Step) -> Result<Self, Error> {
        check_type(step, StepKind::RunCommandLine)?;
        Ok(RunCommandLine {
            command_line: text(step, "CommandLine"),
            package_id: text(step, "PackageID"),
            working_directory: text(step, "WorkingDirectory"),
            disable_wow64_redirection: boolean(step, "SMSTSDisableWow64Redirection", false)?,
            run_as_user: boolean(step, "_SMSTSRunCommandLineAsUser", false)?,
            user_name: text(step, "SMSTSRunCommandLineUserName"),
            user_password: text(step, "SMSTSRunCommandLineUserPassword"),
            output_variable: text(step, "SMSTSRunCommandLineOutputVariableName"),
        })
    }
    pub fn write(&self, step: &mut Step) {
        step.action = Some(if self.package_id.is_empty() {
            format!("smsswd.exe /run: {}", self.command_line)
        } else {
            format!("smsswd.exe /run:{} {}", self.package_id, self.command_line)
        });
        step.set_hidden_var("CommandLine", "CommandLine", &self.command_line);
        step.set_var(
            "SMSTSDisableWow64Redirection",
            Some("DisableWow64Redirection"),
            tf(self.disable_wow64_redirection),
        );
        if !self.output_variable.is_empty() {
            step.set_var(
                "SMSTSRunCommandLineOutputVariableName",
                Some("OutputVariableName"),
                &self.output_variable,
            );
        }
        if self.package_id.is_empty() {
            step.remove_var("PackageID");
        } else {
            step.set_hidden_var("PackageID", "PackageID", &self.package_id);
        }
        step.set_var(
            "_SMSTSRunCommandLineAsUser",
            Some("RunAsUser"),
            tf(self.run_as_user),
        );
        let codes = step
            .success_codes
            .as_ref()
            .map(|c| c.raw.clone())
            .unwrap_or_else(|| "0 3010".into());
        step.set_hidden_var("SuccessCodes", "SuccessCodes", &codes);
        if self.run_as_user {
            step.set_var(
                "SMSTSRunCommandLineUserName",
                Some("UserName"),
                &self.user_name,
            );
            step.set_var(
                "SMSTSRunCommandLineUserPassword",
                Some("UserPassword"),
                &self.user_password,
            );
        }
        if !self.working_directory.is_empty() {
            step.set_var(
                "WorkingDirectory",
                Some("WorkingDirectory"),
                &self.working_directory,
            );
        }
    }
}

// ---- Set Task Sequence Variable ----

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SetVariable {
    pub name: String,
    pub value: String,
    /// "Do not display this value" (the value is a secret).
    pub hide_value: bool,
}

/// The command line of a Set Task Sequence Variable step.
pub fn set_variable_command(name: &str, value: &str, hidden: bool) -> String {
    format!("tsenv.exe \"{name}={value}\" /hiddenflag:{}", cap(hidden))
}

impl SetVariable {
    pub fn read(step: &Step) -> Result<Self, Error> {
        check_type(step, StepKind::SetTaskSequenceVariable)?;
        Ok(SetVariable {
            name: text(step, "VariableName"),
            value: text(step, "VariableValue"),
            hide_value: boolean(step, "DoNotShowVariableValue", false)?,
        })
    }
    pub fn write(&self, step: &mut Step) {
        step.action = Some(set_variable_command(
            &self.name,
            &self.value,
            self.hide_value,
        ));
        step.set_hidden_var(
            "DoNotShowVariableValue",
            "DoNotShowVariableValue",
            tf(self.hide_value),
        );
        step.set_hidden_var("VariableName", "VariableName", &self.name);
        step.set_hidden_var("VariableValue", "VariableValue", &self.value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_builds_a_step_that_reads_back() {
        for k in StepKind::ALL {
            let s = k.new_step(k.editor_name());
            assert_eq!(StepKind::of(&s), Some(k));
            assert_eq!(StepKind::find(&k.cli_name()), Some(k));
            assert_eq!(s.run_in(), Some(k.run_in()));
            let ok = match k {
                StepKind::RestartComputer => RestartComputer::read(&s).is_ok(),
                StepKind::FormatAndPartitionDisk => {
                    PartitionDisk::read(&s).unwrap() == PartitionDisk::bios_default()
                }
                StepKind::ApplyOperatingSystemImage => ApplyOsImage::read(&s).is_ok(),
                StepKind::ApplyWindowsSettings => ApplyWindowsSettings::read(&s).is_ok(),
                StepKind::ApplyNetworkSettings => ApplyNetworkSettings::read(&s).is_ok(),
                StepKind::AutoApplyDrivers => AutoApplyDrivers::read(&s).is_ok(),
                StepKind::ApplyDriverPackage => ApplyDriverPackage::read(&s).is_ok(),
                StepKind::SetupWindowsAndConfigMgr => SetupWindows::read(&s).is_ok(),
                StepKind::InstallSoftwareUpdates => InstallUpdates::read(&s).is_ok(),
                StepKind::InstallApplication => InstallApplication::read(&s).is_ok(),
                StepKind::PrepareConfigMgrClientForCapture => {
                    s.action.as_deref() == Some("osdpreparesmsclient.exe")
                }
                StepKind::PrepareWindowsForCapture => PrepareWindows::read(&s).is_ok(),
                StepKind::CaptureOperatingSystemImage => CaptureOsImage::read(&s).is_ok(),
                StepKind::RunCommandLine => RunCommandLine::read(&s).is_ok(),
                StepKind::SetTaskSequenceVariable => SetVariable::read(&s).is_ok(),
            };
            assert!(ok, "{k:?}");
        }
    }

    #[test]
    fn typed_write_then_read_is_identity() {
        let mut s = StepKind::ApplyWindowsSettings.new_step("w");
        let w = ApplyWindowsSettings {
            computer_name: "REF01".into(),
            registered_user: "u".into(),
            registered_org: "o".into(),
            product_key: "AAAAA-BBBBB-CCCCC-DDDDD-EEEEE".into(),
            server_license: Some(ServerLicense::PerServer {
                max_connections: 10,
            }),
            random_admin_password: false,
            admin_password: "pw".into(),
            time_zone: "UTC".into(),
        };
        w.write(&mut s);
        assert_eq!(ApplyWindowsSettings::read(&s).unwrap(), w);

        let mut s = StepKind::FormatAndPartitionDisk.new_step("p");
        PartitionDisk::uefi_default().write(&mut s);
        assert_eq!(
            PartitionDisk::read(&s).unwrap(),
            PartitionDisk::uefi_default()
        );
        // Going back to the shorter layout leaves no stale partition variables.
        PartitionDisk::bios_default().write(&mut s);
        assert!(s.var("OSDPartitions3Type").is_none());

        let mut s = StepKind::ApplyNetworkSettings.new_step("n");
        let n = ApplyNetworkSettings {
            join: NetworkJoin::Domain {
                domain: "corp.example".into(),
                ou: "LDAP://OU=Ref,DC=corp,DC=example".into(),
                account: "CORP\\join".into(),
                password: "x".into(),
            },
        };
        n.write(&mut s);
        assert_eq!(ApplyNetworkSettings::read(&s).unwrap(), n);
        assert_eq!(s.var("OSDNetworkJoinType"), Some("0"));

        let mut s = StepKind::SetTaskSequenceVariable.new_step("v");
        SetVariable {
            name: "A".into(),
            value: "b c".into(),
            hide_value: false,
        }
        .write(&mut s);
        assert_eq!(
            s.action.as_deref(),
            Some("tsenv.exe \"A=b c\" /hiddenflag:False")
        );
    }

    #[test]
    fn wrong_type_and_bad_values_are_errors_naming_the_step() {
        let s = StepKind::RestartComputer.new_step("r");
        let e = ApplyOsImage::read(&s).unwrap_err();
        assert!(e.to_string().contains("\"r\""), "{e}");
        let mut s = StepKind::ApplyOperatingSystemImage.new_step("a");
        s.set_var("OSDImageIndex", None, "two");
        let e = ApplyOsImage::read(&s).unwrap_err();
        assert!(e.to_string().contains("OSDImageIndex"), "{e}");
        let mut s = StepKind::FormatAndPartitionDisk.new_step("p");
        s.set_var("OSDPartitions", None, "4000000000");
        assert!(PartitionDisk::read(&s).is_err());
        // Names from a file may hold any character: no slicing inside one.
        s.set_var("OSDPartitionéé0Type", None, "x");
        PartitionDisk::bios_default().write(&mut s);
        assert_eq!(s.var("OSDPartitionéé0Type"), Some("x"));
    }
}
