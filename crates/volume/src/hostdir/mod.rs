//! The host-directory backend: capture from, and apply to, a directory tree
//! of the running Linux system.
//!
//! The mapping follows wimlib's UNIX mode without `--unix-data`, so the two
//! tools make and accept the same images: directories, regular files
//! (sparse when they occupy fewer blocks than their size) and symbolic
//! links (stored as Windows symlink reparse points); hard links share one
//! inode; times are mtime/atime at 100 ns precision; no security
//! descriptors, owners or modes. FIFOs, sockets and devices are skipped.
//!
//! - [`capture`]: [`HostDirSource`], a [`CaptureSource`](tasq_wim::capture::CaptureSource).
//! - [`apply`]: [`HostDirTarget`], an [`ApplyTarget`](tasq_wim::apply::ApplyTarget)
//!   that never writes outside its root, even when the target already
//!   holds links planted there.

pub mod apply;
pub mod capture;
pub mod fs;
mod writebehind;

pub use apply::HostDirTarget;
pub use capture::HostDirSource;
pub use fs::HostDirFs;

use tasq_wim::image::{Inode, IO_REPARSE_TAG_MOUNT_POINT, IO_REPARSE_TAG_SYMLINK};

/// Seconds from 1601-01-01 (the FILETIME epoch) to 1970-01-01.
const EPOCH_DIFF_SECS: i64 = 11_644_473_600;
const TICKS_PER_SEC: i64 = 10_000_000;

/// A UNIX time (seconds, and nanoseconds in `0..1e9`, as `stat` gives them,
/// so a pre-1970 instant has negative seconds and positive nanoseconds) as
/// a Windows FILETIME: 100 ns ticks since 1601-01-01. Instants before 1601
/// cannot be represented and become 0; instants past the FILETIME range
/// saturate.
pub fn unix_to_filetime(secs: i64, nsecs: i64) -> u64 {
    let ticks = (secs as i128 + EPOCH_DIFF_SECS as i128) * TICKS_PER_SEC as i128
        + (nsecs as i128).div_euclid(100);
    ticks.clamp(0, u64::MAX as i128) as u64
}

/// A Windows FILETIME as UNIX (seconds, nanoseconds in `0..1e9`).
pub fn filetime_to_unix(ft: u64) -> (i64, u32) {
    // u64::MAX / 1e7 fits in i64, so neither step can overflow.
    let secs = (ft / TICKS_PER_SEC as u64) as i64 - EPOCH_DIFF_SECS;
    let nsecs = (ft % TICKS_PER_SEC as u64) as u32 * 100;
    (secs, nsecs)
}

/// Whether an inode is a link that becomes a UNIX symlink (a symlink or a
/// junction reparse point), exactly as wimlib decides it.
pub fn is_link_inode(inode: &Inode) -> bool {
    inode.is_reparse_point()
        && matches!(
            inode.reparse_tag,
            IO_REPARSE_TAG_SYMLINK | IO_REPARSE_TAG_MOUNT_POINT
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filetime_conversions() {
        // The UNIX epoch is 116444736000000000 ticks after 1601.
        assert_eq!(unix_to_filetime(0, 0), 116_444_736_000_000_000);
        assert_eq!(unix_to_filetime(0, 199), 116_444_736_000_000_001);
        // One second and a half before 1970.
        assert_eq!(
            unix_to_filetime(-2, 500_000_000),
            116_444_736_000_000_000 - 15_000_000
        );
        assert_eq!(
            filetime_to_unix(116_444_736_000_000_000 - 15_000_000),
            (-2, 500_000_000)
        );
        assert_eq!(unix_to_filetime(-EPOCH_DIFF_SECS, 0), 0);
        assert_eq!(unix_to_filetime(-EPOCH_DIFF_SECS - 1, 0), 0);
        assert_eq!(unix_to_filetime(i64::MAX, 999_999_999), u64::MAX);
        assert_eq!(filetime_to_unix(0), (-EPOCH_DIFF_SECS, 0));
        for (s, ns) in [
            (1_700_000_000i64, 123_456_700i64),
            (-1_000_000_000, 900),
            (0, 999_999_900),
        ] {
            let (s2, ns2) = filetime_to_unix(unix_to_filetime(s, ns));
            assert_eq!((s2, ns2 as i64), (s, ns));
        }
    }
}
