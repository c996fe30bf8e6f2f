//! `tasq disk ...`: create sparse disk images, partition and format them
//! with the ConfigMgr default layouts (or a TOML list), and list a disk's
//! volumes with the capture verdict for each.

use std::path::PathBuf;

use anyhow::{Context, Result};
use tasq_disk::{
    list_volumes, parse_size, partition_and_format, Disk, DiskReport, Layout, PartitionStyle,
};

#[derive(clap::Subcommand, Debug)]
pub enum DiskCommand {
    /// Create a sparse disk image file of the given size.
    Create {
        image: PathBuf,
        /// Size with a binary unit: 8G, 512M, 1T (or bytes).
        #[arg(long)]
        size: String,
    },
    /// Partition and format a disk: `bios` (MBR: System Reserved, Windows,
    /// Recovery), `uefi` (GPT: EFI, MSR, Windows, Recovery) or a TOML file.
    Partition {
        image: PathBuf,
        #[arg(long)]
        layout: String,
        /// Print the created volumes as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the volumes of a disk image or block device.
    List {
        disk: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Treat an image file as a USB disk (the computer profile's flag).
        #[arg(long)]
        usb: bool,
    },
}

pub fn run(cmd: DiskCommand) -> Result<i32> {
    match cmd {
        DiskCommand::Create { image, size } => {
            let bytes = parse_size(&size)?;
            let d = Disk::create(&image, bytes)?;
            println!(
                "{}: created, {} ({} bytes, sparse)",
                d.name(),
                human(bytes),
                bytes
            );
            Ok(0)
        }
        DiskCommand::Partition {
            image,
            layout,
            json,
        } => {
            let l = match layout.to_ascii_lowercase().as_str() {
                "bios" => Layout::bios(),
                "uefi" => Layout::uefi(),
                _ => {
                    let text = std::fs::read_to_string(&layout)
                        .with_context(|| format!("read layout file {layout}"))?;
                    Layout::from_toml(&text, &layout)?
                }
            };
            let d = Disk::open(&image, true)?;
            let vols = partition_and_format(&d, &l)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&vols)?);
            } else {
                let style = match l.style {
                    tasq_disk::Style::Mbr => "MBR",
                    tasq_disk::Style::Gpt => "GPT",
                };
                println!("{}: {style} layout written", d.name());
                for v in &vols {
                    println!(
                        "  {}  offset {:>14}  {:>10}  {:<6} {:<16} {}",
                        v.index,
                        v.offset,
                        human(v.size),
                        v.file_system
                            .map(|f| f.to_string())
                            .unwrap_or_else(|| "-".into()),
                        format!("{:?}", v.label),
                        v.letter_variable
                            .as_deref()
                            .map(|l| format!("letter variable {l}"))
                            .unwrap_or_default()
                    );
                }
            }
            Ok(0)
        }
        DiskCommand::List { disk, json, usb } => {
            let mut d = Disk::open(&disk, false)?;
            if usb {
                d.set_usb_flag(true);
            }
            let report = list_volumes(&d)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", table(&report));
            }
            Ok(0)
        }
    }
}

/// Binary-unit size for people ("500.0 MiB").
fn human(n: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

/// The `tasq disk list` table.
fn table(r: &DiskReport) -> String {
    let mut s = format!(
        "{}: {}, {}, {} ({})\n",
        r.disk,
        human(r.size),
        match r.style {
            PartitionStyle::Mbr => "MBR",
            PartitionStyle::Gpt => "GPT",
            PartitionStyle::Whole => "no partition table (file system on the whole disk)",
            PartitionStyle::None => "no partition table",
        },
        if r.usb { "USB/removable" } else { "not USB" },
        r.usb_source
    );
    s.push_str(&format!(
        "{:>3}  {:>14}  {:>10}  {:<18}  {:<8}  {:<16}  {:<3}  CAPTURABLE\n",
        "#", "OFFSET", "SIZE", "TYPE", "FS", "LABEL", "USB"
    ));
    for v in &r.volumes {
        s.push_str(&format!(
            "{:>3}  {:>14}  {:>10}  {:<18}  {:<8}  {:<16}  {:<3}  {}\n",
            v.index,
            v.offset,
            human(v.size),
            v.partition_type,
            v.fs.to_string(),
            v.label.as_deref().unwrap_or("-"),
            if v.usb { "yes" } else { "no" },
            match &v.reason {
                None => "yes".to_string(),
                Some(why) => format!("no: {why}"),
            }
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_partition_list() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("d.img");
        assert_eq!(
            run(DiskCommand::Create {
                image: img.clone(),
                size: "1G".into()
            })
            .unwrap(),
            0
        );
        assert_eq!(std::fs::metadata(&img).unwrap().len(), 1 << 30);
        run(DiskCommand::Partition {
            image: img.clone(),
            layout: "uefi".into(),
            json: false,
        })
        .unwrap();
        let d = Disk::open(&img, false).unwrap();
        let r = list_volumes(&d).unwrap();
        let t = table(&r);
        assert!(t.contains("FAT32") && t.contains("EFI"), "{t}");
        assert!(t.contains("no: Microsoft reserved"), "{t}");
        assert!(t.lines().next().unwrap().contains("GPT"), "{t}");
        assert_eq!(t.lines().count(), 2 + 4, "{t}");
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["volumes"][2]["fs"], "NTFS");
        assert_eq!(json["volumes"][2]["label"], "Windows");
        assert_eq!(json["volumes"][2]["capturable"], true);
        // A bad layout file names itself.
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "style = \"gpt\"\n").unwrap();
        let e = run(DiskCommand::Partition {
            image: img.clone(),
            layout: bad.to_string_lossy().into_owned(),
            json: false,
        })
        .unwrap_err();
        assert!(e.to_string().contains("bad.toml"), "{e}");
        assert_eq!(human(500 << 20), "500.0 MiB");
    }
}
