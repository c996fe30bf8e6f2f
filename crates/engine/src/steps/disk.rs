//! Format and Partition Disk (`SMS_TaskSequence_PartitionDiskAction`).
//!
//! The step's settings are ConfigMgr's variables: `OSDDiskIndex`,
//! `OSDDiskType` (BASIC), `OSDPartitionStyle` (GPT/MBR), `OSDGPTBootDisk`,
//! `OSDPartitions` (count) and per partition `OSDPartitions<i>Type`
//! (Primary, EFI, MSR, Recovery; Extended, Logical and Hidden are refused),
//! `…FileSystem` (NTFS, FAT32, none), `…Size` (empty = the rest) with
//! `…SizeUnits` (MB, GB, Percent of the remaining space), `…QuickFormat`,
//! `…Bootable` (MBR active flag), `…VolumeName` and
//! `…VolumeLetterVariable`. A collection or sequence variable of the same
//! name overrides the step's value, as for every step setting.
//!
//! Everything is checked before the disk is touched; an error names the
//! variable. Then the disk crate writes the table and formats, and drive
//! letters are assigned the way this engine's WinPE does (see
//! [`assign_letters`]): the OS partition (the one whose letter variable is
//! `OSDisk`, else the first Primary NTFS one) gets C:, the other formatted
//! partitions the next free letters in partition order; EFI, MSR and
//! Recovery partitions get none unless they carry a letter variable. Each
//! letter variable is set (`OSDisk=C:`), and `_SMSTSMDataPath` becomes
//! `<OS drive>\_SMSTaskSequence`, where the runner keeps a copy of the
//! journal and logs from then on.

use super::{Registry, StepAction, StepContext, StepError, StepOutcome};
use crate::events::Level;
use crate::runner::E_FAIL;
use crate::volumes::{Drives, VolumeRef};
use tasq_disk::{FsKind, Layout, PartKind, PartitionSpec, SizeSpec, Style};
use tasq_tasksequence::model::Step;
use tasq_tasksequence::steps::{self as types, PartitionDisk};

pub fn register(r: &mut Registry) {
    r.register(types::PARTITION_DISK, Box::new(FormatAndPartitionDisk));
}

/// The variable ConfigMgr's wizard gives the Windows partition's letter.
pub const OS_DISK_VARIABLE: &str = "OSDisk";
/// The folder on the OS volume that holds the sequence's state.
pub const STATE_FOLDER: &str = "_SMSTaskSequence";

pub struct FormatAndPartitionDisk;

fn bad(msg: String) -> StepError {
    StepError::new(E_FAIL, format!("Format and Partition Disk: {msg}"))
}

/// The step with each setting replaced by its effective value (an
/// environment variable of the same name wins over the step's own).
pub(crate) fn effective_step(ctx: &StepContext) -> Step {
    let mut step = ctx.step.clone();
    if let Some(vars) = step.variables.as_mut() {
        for v in vars.iter_mut() {
            if let Some(val) = ctx.param(&v.name) {
                v.value = val;
            }
        }
    }
    step
}

/// One partition of the request, checked, with its letter variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub disk: usize,
    pub layout: Layout,
}

/// Reads and checks the step's variables (no disk is touched).
pub fn parse(step: &Step) -> Result<Request, String> {
    let pd = PartitionDisk::read(step).map_err(|e| e.to_string())?;
    let style = match pd.partition_style.trim().to_ascii_uppercase().as_str() {
        "GPT" => Style::Gpt,
        "MBR" => Style::Mbr,
        other => return Err(format!("OSDPartitionStyle={other:?}: expected GPT or MBR")),
    };
    match pd.disk_type.trim().to_ascii_uppercase().as_str() {
        "" | "BASIC" => {}
        t => {
            return Err(format!(
                "OSDDiskType={t:?}: only basic disks can be partitioned here (dynamic disks are a Windows-only feature)"
            ))
        }
    }
    if pd.partitions.is_empty() {
        return Err("OSDPartitions=0: the step creates no partition".into());
    }
    let mut partitions = Vec::new();
    for (i, p) in pd.partitions.iter().enumerate() {
        let var = |f: &str| format!("OSDPartitions{i}{f}");
        let kind = match p.partition_type.trim().to_ascii_lowercase().as_str() {
            "primary" => PartKind::Primary,
            "efi" => PartKind::Efi,
            "msr" => PartKind::Msr,
            "recovery" => PartKind::Recovery,
            t @ ("extended" | "logical" | "hidden") => {
                return Err(format!(
                    "{}={t:?}: extended, logical and hidden partitions are not supported (Primary, EFI, MSR or Recovery)",
                    var("Type")
                ))
            }
            t => {
                return Err(format!(
                    "{}={t:?}: expected Primary, EFI, MSR or Recovery",
                    var("Type")
                ))
            }
        };
        if kind == PartKind::Msr && style == Style::Mbr {
            return Err(format!(
                "{}=MSR: an MSR partition needs the GPT style (OSDPartitionStyle=MBR)",
                var("Type")
            ));
        }
        let fs = FsKind::parse_name(p.file_system.trim()).map_err(|()| {
            format!(
                "{}={:?}: expected NTFS, FAT32 or nothing",
                var("FileSystem"),
                p.file_system.trim().to_ascii_uppercase()
            )
        })?;
        let fs = match (kind, fs) {
            // An MSR is never formatted, whatever the XML says.
            (PartKind::Msr, _) => None,
            (PartKind::Efi, Some(FsKind::Ntfs)) => {
                return Err(format!(
                    "{}=NTFS: an EFI system partition must be FAT32",
                    var("FileSystem")
                ))
            }
            (_, fs) => fs,
        };
        let units = p.size_units.trim().to_ascii_lowercase();
        let size_text = p.size.trim();
        let size = if size_text.is_empty() {
            SizeSpec::Percent(100)
        } else {
            let n: u64 = size_text
                .parse()
                .map_err(|_| format!("{}={size_text:?} is not a whole number", var("Size")))?;
            match units.as_str() {
                "" | "mb" => SizeSpec::Mb(n),
                "gb" => SizeSpec::Gb(n),
                "percent" | "%" => {
                    if !(1..=100).contains(&n) {
                        return Err(format!(
                            "{}={n}: a percentage must be within 1..=100",
                            var("Size")
                        ));
                    }
                    SizeSpec::Percent(n as u8)
                }
                u => {
                    return Err(format!(
                        "{}={u:?}: expected MB, GB or Percent",
                        var("SizeUnits")
                    ))
                }
            }
        };
        if matches!(size, SizeSpec::Mb(0) | SizeSpec::Gb(0)) {
            return Err(format!("{}=0: a partition needs a size", var("Size")));
        }
        let name = p.volume_name.trim().to_string();
        let max_label = match fs {
            Some(FsKind::Fat32) => 11,
            Some(FsKind::Ntfs) => 32,
            None => 36, // the GPT name field
        };
        if name.chars().count() > max_label {
            return Err(format!(
                "{}={name:?}: longer than {max_label} characters",
                var("VolumeName")
            ));
        }
        let letter_var = p.volume_letter_variable.trim().to_string();
        if !letter_var.is_empty() {
            tasq_tasksequence::variables::check_settable(&letter_var)
                .map_err(|e| format!("{}: {e}", var("VolumeLetterVariable")))?;
        }
        partitions.push(PartitionSpec {
            kind,
            file_system: fs,
            size,
            quick_format: p.quick_format,
            bootable: p.bootable,
            volume_name: name,
            letter_variable: (!letter_var.is_empty()).then_some(letter_var),
        });
    }
    // Only the last partition can take "the rest" of a 100 % share
    // meaningfully; the disk crate's plan checks the arithmetic.
    Ok(Request {
        disk: pd.disk_index as usize,
        layout: Layout { style, partitions },
    })
}

/// Drive letters WinPE hands out (X: is WinPE's own drive).
pub fn next_free_letter(drives: &Drives) -> Option<char> {
    ('C'..='Z').find(|l| *l != 'X' && !drives.contains_key(l))
}

/// Index (into `created`) of the OS partition: the one whose letter
/// variable is `OSDisk`, else the first Primary NTFS one.
fn os_partition(created: &[tasq_disk::CreatedVolume]) -> Option<usize> {
    created
        .iter()
        .position(|v| {
            v.letter_variable
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(OS_DISK_VARIABLE))
        })
        .or_else(|| {
            created
                .iter()
                .position(|v| v.kind == PartKind::Primary && v.file_system == Some(FsKind::Ntfs))
        })
}

/// Gives letters to the volumes just made on disk `disk`; returns
/// (partition index, letter) in partition order. Old letters of that disk
/// are dropped first (its volumes are gone).
pub fn assign_letters(
    drives: &mut Drives,
    disk: usize,
    created: &[tasq_disk::CreatedVolume],
) -> Vec<(u32, char)> {
    drives.retain(|_, v| !matches!(v, VolumeRef::Partition { disk: d, .. } if *d == disk));
    let vref = |v: &tasq_disk::CreatedVolume| VolumeRef::Partition {
        disk,
        partition: v.index,
        offset: v.offset,
        len: v.size,
        fs: v.file_system.map(|f| f.to_string()).unwrap_or_default(),
        label: (!v.label.is_empty()).then(|| v.label.clone()),
    };
    let mut out = Vec::new();
    let os = os_partition(created);
    if let Some(i) = os {
        if let (Some(v), Some(l)) = (created.get(i), next_free_letter(drives)) {
            drives.insert(l, vref(v));
            out.push((v.index, l));
        }
    }
    for (i, v) in created.iter().enumerate() {
        if Some(i) == os || v.file_system.is_none() {
            continue;
        }
        let wants = v.letter_variable.is_some()
            || !matches!(v.kind, PartKind::Efi | PartKind::Msr | PartKind::Recovery);
        if !wants {
            continue;
        }
        if let Some(l) = next_free_letter(drives) {
            drives.insert(l, vref(v));
            out.push((v.index, l));
        }
    }
    out.sort();
    out
}

impl StepAction for FormatAndPartitionDisk {
    fn run(&self, ctx: &mut StepContext) -> Result<StepOutcome, StepError> {
        let step = effective_step(ctx);
        let req = parse(&step).map_err(bad)?;
        let cdisk = ctx.computer.disks.get(req.disk).ok_or_else(|| {
            bad(format!(
                "OSDDiskIndex={}: the computer has {} disk(s)",
                req.disk,
                ctx.computer.disks.len()
            ))
        })?;
        let disk = tasq_disk::Disk::open(&cdisk.path, true)
            .map_err(|e| bad(format!("OSDDiskIndex={}: {e}", req.disk)))?;
        if cdisk.usb || disk.removability().usb {
            return Err(bad(format!(
                "OSDDiskIndex={}: disk {} ({}) is a USB disk; Format and Partition Disk does not target USB disks",
                req.disk,
                req.disk,
                cdisk.path.display()
            )));
        }
        // The arithmetic (sizes, MBR limits) before anything is written.
        tasq_disk::layout::plan(&req.layout, disk.sectors(), &disk.name())
            .map_err(|e| bad(format!("OSDPartitions: {e}")))?;
        if step
            .var("OSDGPTBootDisk")
            .and_then(tasq_tasksequence::model::parse_bool)
            == Some(true)
            && !req
                .layout
                .partitions
                .iter()
                .any(|p| p.kind == PartKind::Efi)
        {
            ctx.log(
                Level::Warning,
                "OSDGPTBootDisk is true but the layout has no EFI partition: the disk will not start a UEFI computer",
            );
        }
        ctx.log(
            Level::Info,
            format!(
                "Partitioning disk {} ({}, {} bytes) as {} with {} partition(s)",
                req.disk,
                cdisk.path.display(),
                disk.size(),
                match req.layout.style {
                    Style::Gpt => "GPT",
                    Style::Mbr => "MBR",
                },
                req.layout.partitions.len()
            ),
        );
        let created = tasq_disk::partition_and_format(&disk, &req.layout)
            .map_err(|e| bad(format!("disk {}: {e}", req.disk)))?;
        drop(disk);
        let letters = assign_letters(ctx.drives, req.disk, &created);
        for v in &created {
            let letter = letters.iter().find(|(p, _)| *p == v.index).map(|x| x.1);
            ctx.log(
                Level::Info,
                format!(
                    "Partition {}: {:?} {} {} bytes{}{}",
                    v.index,
                    v.kind,
                    v.file_system
                        .map(|f| f.to_string())
                        .unwrap_or("unformatted".into()),
                    v.size,
                    letter.map(|l| format!(", drive {l}:")).unwrap_or_default(),
                    if v.label.is_empty() {
                        String::new()
                    } else {
                        format!(", label {:?}", v.label)
                    }
                ),
            );
            if let Some(var) = &v.letter_variable {
                match letter {
                    Some(l) => {
                        ctx.env.set(var, &format!("{l}:"));
                        ctx.log(Level::Info, format!("Set {var}={l}:"));
                    }
                    None => {
                        return Err(bad(format!(
                            "OSDPartitions{}VolumeLetterVariable={var}: no drive letter is free for partition {}",
                            v.index - 1,
                            v.index
                        )))
                    }
                }
            }
        }
        // The state folder goes on the OS volume (else the first NTFS one).
        let state_letter = os_partition(&created)
            .and_then(|i| created.get(i))
            .and_then(|v| letters.iter().find(|(p, _)| *p == v.index))
            .or_else(|| {
                created
                    .iter()
                    .filter(|v| v.file_system == Some(FsKind::Ntfs))
                    .find_map(|v| letters.iter().find(|(p, _)| *p == v.index))
            })
            .map(|x| x.1);
        if let Some(l) = state_letter {
            let path = format!("{l}:\\{STATE_FOLDER}");
            ctx.env.set("_SMSTSMDataPath", &path);
            ctx.log(
                Level::Info,
                format!("The task sequence keeps its state in {path} from now on"),
            );
        }
        Ok(StepOutcome::code(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tasq_tasksequence::steps::{Partition, StepKind};

    fn step_of(pd: &PartitionDisk) -> Step {
        let mut s = StepKind::FormatAndPartitionDisk.new_step("P");
        pd.write(&mut s);
        s
    }

    #[test]
    fn the_wizard_layouts_parse_to_the_disk_crates_defaults() {
        let r = parse(&step_of(&PartitionDisk::uefi_default())).unwrap();
        assert_eq!(r.layout, Layout::uefi());
        let r = parse(&step_of(&PartitionDisk::bios_default())).unwrap();
        assert_eq!(r.layout, Layout::bios());
        assert_eq!(r.disk, 0);
    }

    #[test]
    fn bad_values_name_their_variable() {
        type Edit = Box<dyn Fn(&mut PartitionDisk)>;
        let cases: Vec<(Edit, &str)> = vec![
            (
                Box::new(|p| p.partition_style = "APM".into()),
                "OSDPartitionStyle",
            ),
            (Box::new(|p| p.disk_type = "DYNAMIC".into()), "OSDDiskType"),
            (
                Box::new(|p| p.partitions[1].partition_type = "Logical".into()),
                "OSDPartitions1Type",
            ),
            (
                Box::new(|p| p.partitions[2].file_system = "exFAT".into()),
                "OSDPartitions2FileSystem",
            ),
            (
                Box::new(|p| p.partitions[2].size = "12x".into()),
                "OSDPartitions2Size",
            ),
            (
                Box::new(|p| p.partitions[2].size = "101".into()),
                "OSDPartitions2Size",
            ),
            (
                Box::new(|p| p.partitions[0].size_units = "TB".into()),
                "OSDPartitions0SizeUnits",
            ),
            (
                Box::new(|p| p.partitions[0].file_system = "NTFS".into()),
                "OSDPartitions0FileSystem",
            ),
            (
                Box::new(|p| p.partitions[0].volume_name = "A VERY LONG LABEL".into()),
                "OSDPartitions0VolumeName",
            ),
            (
                Box::new(|p| p.partitions[2].volume_letter_variable = "_SMSTSX".into()),
                "OSDPartitions2VolumeLetterVariable",
            ),
            (Box::new(|p| p.partitions.clear()), "OSDPartitions"),
        ];
        for (f, var) in cases {
            let mut pd = PartitionDisk::uefi_default();
            f(&mut pd);
            let e = parse(&step_of(&pd)).unwrap_err();
            assert!(e.contains(var), "{var}: {e}");
        }
        let mut pd = PartitionDisk::bios_default();
        pd.partitions
            .push(Partition::new("M", "MSR", "", "16", "MB"));
        let e = parse(&step_of(&pd)).unwrap_err();
        assert!(e.contains("OSDPartitions3Type"), "{e}");
        // A boolean that is not one names its variable (the typed reader).
        let mut s = step_of(&PartitionDisk::uefi_default());
        s.set_var("OSDPartitions0QuickFormat", None, "maybe");
        let e = parse(&s).unwrap_err();
        assert!(e.contains("OSDPartitions0QuickFormat"), "{e}");
    }

    #[test]
    fn letters_follow_the_os_partition_then_partition_order() {
        let mk = |index, kind, fs, var: Option<&str>| tasq_disk::CreatedVolume {
            index,
            offset: u64::from(index) << 20,
            size: 1 << 20,
            kind,
            file_system: fs,
            label: String::new(),
            bootable: false,
            letter_variable: var.map(str::to_string),
        };
        let created = vec![
            mk(1, PartKind::Efi, Some(FsKind::Fat32), None),
            mk(2, PartKind::Msr, None, None),
            mk(3, PartKind::Primary, Some(FsKind::Ntfs), None),
            mk(4, PartKind::Primary, Some(FsKind::Ntfs), Some("OSDisk")),
            mk(5, PartKind::Recovery, Some(FsKind::Ntfs), None),
            mk(
                6,
                PartKind::Recovery,
                Some(FsKind::Ntfs),
                Some("RecoveryDrive"),
            ),
        ];
        let mut drives = Drives::new();
        // A letter of another disk stays; an old letter of this disk goes.
        drives.insert('C', VolumeRef::HostDir { path: "/x".into() });
        drives.insert(
            'E',
            VolumeRef::Partition {
                disk: 0,
                partition: 9,
                offset: 0,
                len: 0,
                fs: "NTFS".into(),
                label: None,
            },
        );
        let got = assign_letters(&mut drives, 0, &created);
        assert_eq!(got, vec![(3, 'E'), (4, 'D'), (6, 'F')]);
        let mut drives = Drives::new();
        let got = assign_letters(&mut drives, 0, &created);
        assert_eq!(got, vec![(3, 'D'), (4, 'C'), (6, 'E')]);
    }
}
