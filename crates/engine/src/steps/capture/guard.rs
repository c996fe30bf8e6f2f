//! The capture guard (mission §7): once an image has been captured from a
//! reference computer, a second capture from it is refused, unless the
//! ConfigMgr client was reinstalled in between.
//!
//! Setup Windows and ConfigMgr records the client it installs in
//! `Windows\CCM\tasq-client.json` (a fresh `install_id` at every install).
//! After a successful capture this module writes
//! `Windows\CCM\tasq-captured.json` on the captured Windows volume with
//! that `install_id`; a later capture whose client has the same
//! `install_id` is refused before any work.

use serde::{Deserialize, Serialize};
use tasq_volume::{VolPath, VolumeFs};

pub const CLIENT_FILE: &str = "\\Windows\\CCM\\tasq-client.json";
pub const MARKER_FILE: &str = "\\Windows\\CCM\\tasq-captured.json";
/// Both files are a few hundred bytes; anything past this is not ours.
const READ_LIMIT: u64 = 64 * 1024;

/// The part of the client record the guard needs.
#[derive(Debug, Clone, Deserialize)]
struct ClientRecord {
    install_id: Option<String>,
}

/// What a capture leaves on the reference computer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    /// The client's install id at capture time (`None`: no client).
    pub install_id: Option<String>,
    /// UTC, `YYYY-MM-DDTHH:MM:SSZ`.
    pub captured: String,
    /// Where the WIM went (no credentials).
    pub destination: String,
}

/// The guard's view of a Windows volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardState {
    /// The installed client's install id (`None`: no client record).
    pub install_id: Option<String>,
    pub marker: Option<Marker>,
}

fn path(p: &str) -> Result<VolPath, String> {
    VolPath::parse(p).map_err(|e| format!("{p}: {e}"))
}

fn read_json<T: serde::de::DeserializeOwned>(
    fs: &mut dyn VolumeFs,
    p: &str,
) -> Result<Option<T>, String> {
    let vp = path(p)?;
    let exists = fs
        .metadata(&vp)
        .map_err(|e| format!("checking {p} on {}: {e}", fs.describe()))?
        .is_some();
    if !exists {
        return Ok(None);
    }
    let bytes = fs
        .read_file(&vp, READ_LIMIT)
        .map_err(|e| format!("reading {p} on {}: {e}", fs.describe()))?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| format!("{p} on {} is not valid: {e}", fs.describe()))
}

/// Reads the client record and the capture marker of a Windows volume.
pub fn read_state(fs: &mut dyn VolumeFs) -> Result<GuardState, String> {
    let client: Option<ClientRecord> = read_json(fs, CLIENT_FILE)?;
    let marker: Option<Marker> = read_json(fs, MARKER_FILE)?;
    Ok(GuardState {
        install_id: client.and_then(|c| c.install_id).filter(|s| !s.is_empty()),
        marker,
    })
}

/// `Err(reason)` when this computer must not be captured again.
pub fn check(state: &GuardState) -> Result<(), String> {
    match &state.marker {
        Some(m) if m.install_id == state.install_id => Err(format!(
            "this reference computer was already captured on {} (to {}); a second capture from it is refused: build a new reference computer, or remove and reinstall the ConfigMgr client before capturing again",
            m.captured, m.destination
        )),
        _ => Ok(()),
    }
}

/// Writes the marker onto the Windows volume.
pub fn mark(fs: &mut dyn VolumeFs, marker: &Marker) -> Result<(), String> {
    let vp = path(MARKER_FILE)?;
    if let Some(dir) = vp.parent() {
        fs.create_dir_all(&dir)
            .map_err(|e| format!("creating {dir} on {}: {e}", fs.describe()))?;
    }
    let json = serde_json::to_vec_pretty(marker).map_err(|e| e.to_string())?;
    fs.write_file(&vp, &mut json.as_slice())
        .map_err(|e| format!("writing {MARKER_FILE} on {}: {e}", fs.describe()))?;
    fs.flush()
        .map_err(|e| format!("writing {MARKER_FILE} on {}: {e}", fs.describe()))
}

/// Seconds since 1970 → `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc_stamp(secs: i64) -> String {
    let (y, mo, d, h, mi, s) = crate::log::civil(secs);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tasq_volume::HostDirFs;

    fn client(dir: &std::path::Path, id: &str) {
        std::fs::create_dir_all(dir.join("Windows/CCM")).unwrap();
        std::fs::write(
            dir.join("Windows/CCM/tasq-client.json"),
            format!(
                "{{\"install_id\":\"{id}\",\"client_guid\":\"GUID:1\",\"site_code\":\"PS1\",\"installed_by\":\"x\",\"installed\":\"2026-01-01T00:00:00Z\"}}"
            ),
        )
        .unwrap();
    }

    #[test]
    fn same_install_refused_reinstalled_allowed() {
        let d = tempfile::tempdir().unwrap();
        client(d.path(), "id-1");
        let mut fs = HostDirFs::new(d.path()).unwrap();
        let st = read_state(&mut fs).unwrap();
        assert_eq!(st.install_id.as_deref(), Some("id-1"));
        assert!(check(&st).is_ok(), "first capture allowed");
        mark(
            &mut fs,
            &Marker {
                install_id: st.install_id.clone(),
                captured: utc_stamp(1_790_000_000),
                destination: "\\\\srv\\share\\ref.wim".into(),
            },
        )
        .unwrap();
        let st = read_state(&mut fs).unwrap();
        let why = check(&st).unwrap_err();
        assert!(why.contains("already captured on 2026-09-21T"), "{why}");
        assert!(why.contains("reinstall"), "{why}");
        // The client was reinstalled: a new install id.
        client(d.path(), "id-2");
        assert!(check(&read_state(&mut fs).unwrap()).is_ok());
    }

    #[test]
    fn broken_records_are_errors_naming_the_file() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("Windows/CCM")).unwrap();
        std::fs::write(d.path().join("Windows/CCM/tasq-captured.json"), b"{nope").unwrap();
        let mut fs = HostDirFs::new(d.path()).unwrap();
        let e = read_state(&mut fs).unwrap_err();
        assert!(e.contains("tasq-captured.json"), "{e}");
    }

    #[test]
    fn stamps() {
        assert_eq!(utc_stamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_stamp(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
