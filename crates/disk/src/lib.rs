//! Disks for tasq: raw image files and block devices, their partition
//! tables, the ConfigMgr default layouts, formatting and discovery.
//!
//! - [`disk`]: open or create a disk; partitions as `Read + Write + Seek`.
//! - [`layout`]: layouts in the Format and Partition Disk step's terms and
//!   their placement ([`layout::plan`]).
//! - [`partition`]: writing tables and [`partition_and_format`].
//! - [`format`]: FAT32 (in process) and NTFS (`mkntfs`).
//! - [`table`]: reading MBR/GPT defensively.
//! - [`detect`]: file systems and labels by superblock.
//! - [`list`]: a disk's volumes and the capture rule.
//! - [`fat`]: raw FAT structures (labels, entry attributes and times).
//! - [`address`]: `disk.img:3` volume addresses.

pub mod address;
pub mod detect;
pub mod disk;
pub mod error;
pub mod fat;
pub mod format;
pub mod layout;
pub mod list;
pub mod partition;
pub mod table;

pub use address::{locate, VolumeAddress};
pub use detect::{detect, Detected, FsType};
pub use disk::{parse_size, Disk, DiskKind, DiskSlice, SECTOR_SIZE};
pub use error::{DiskError, Result};
pub use layout::{FsKind, Layout, PartKind, PartitionSpec, PlannedPartition, SizeSpec, Style};
pub use list::{capturable, list_volumes, DiskReport, VolumeInfo};
pub use partition::{partition_and_format, write_partition_table, CreatedVolume};
pub use table::{read_table, PartitionEntry, PartitionStyle, PartitionTable, PartitionType};
