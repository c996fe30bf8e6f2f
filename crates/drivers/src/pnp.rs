//! The hardware and compatible IDs Windows builds for a device, most
//! specific first, from the device's PnP ID as the computer lists it
//! (`Win32_PnPEntity.PNPDeviceID`, whose instance part after the second
//! `\` is dropped).
//!
//! PCI ("Identifiers for PCI Devices"): from
//! `PCI\VEN_v&DEV_d&SUBSYS_s&REV_r` (and, if the computer lists it, the
//! class code as an extra `&CC_ccsspp` field):
//! hardware IDs `…&SUBSYS_s&REV_r`, `…&SUBSYS_s`, `PCI\VEN_v&DEV_d&CC_ccsspp`,
//! `PCI\VEN_v&DEV_d&CC_ccss`; compatible IDs `PCI\VEN_v&DEV_d&REV_r`,
//! `PCI\VEN_v&DEV_d`, `PCI\VEN_v&CC_ccsspp`, `PCI\VEN_v&CC_ccss`, `PCI\VEN_v`,
//! `PCI\CC_ccsspp`, `PCI\CC_ccss`.
//! USB: `USB\VID_v&PID_p&REV_r` → hardware IDs with and without REV;
//! compatible `USB\Class_cc&SubClass_ss&Prot_pp`, `…&SubClass_ss`, `USB\Class_cc`
//! when the class fields are listed. ACPI: `ACPI\X` and `*X`. Any other
//! bus: the ID itself.

/// A device's IDs, upper-cased (INF matching ignores case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceIds {
    /// The PnP ID as the computer lists it.
    pub pnp_id: String,
    pub hardware_ids: Vec<String>,
    pub compatible_ids: Vec<String>,
}

/// Longest PnP ID looked at (Windows' MAX_DEVICE_ID_LEN is 200).
const MAX_ID: usize = 512;

pub fn device_ids(pnp_id: &str) -> DeviceIds {
    let trimmed = pnp_id.trim();
    let up = trimmed
        .get(..trimmed.len().min(MAX_ID))
        .unwrap_or("")
        .to_ascii_uppercase();
    // `BUS\ID\INSTANCE`: only BUS\ID identifies the hardware.
    let mut parts = up.splitn(3, '\\');
    let bus = parts.next().unwrap_or("").to_string();
    let id = parts.next().unwrap_or("").to_string();
    let fields: Vec<(String, String)> = id
        .split('&')
        .map(|f| match f.split_once('_') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (f.to_string(), String::new()),
        })
        .collect();
    let get = |k: &str| {
        fields
            .iter()
            .find(|(fk, _)| fk == k)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let mut hw = Vec::new();
    let mut compat = Vec::new();
    match bus.as_str() {
        "PCI" if get("VEN").is_some() => {
            let ven = get("VEN").unwrap_or("");
            let dev = get("DEV");
            let sub = get("SUBSYS");
            let rev = get("REV");
            let cc = get("CC");
            let (cc6, cc4) = match cc {
                Some(c) if c.len() >= 6 => (Some(c.get(..6).unwrap_or(c)), c.get(..4)),
                Some(c) if c.len() >= 4 => (None, c.get(..4)),
                _ => (None, None),
            };
            let vd = dev.map(|d| format!("PCI\\VEN_{ven}&DEV_{d}"));
            if let (Some(vd), Some(s)) = (&vd, sub) {
                if let Some(r) = rev {
                    hw.push(format!("{vd}&SUBSYS_{s}&REV_{r}"));
                }
                hw.push(format!("{vd}&SUBSYS_{s}"));
            }
            if let Some(vd) = &vd {
                for c in [cc6, cc4].into_iter().flatten() {
                    hw.push(format!("{vd}&CC_{c}"));
                }
                if let Some(r) = rev {
                    compat.push(format!("{vd}&REV_{r}"));
                }
                compat.push(vd.clone());
            }
            for c in [cc6, cc4].into_iter().flatten() {
                compat.push(format!("PCI\\VEN_{ven}&CC_{c}"));
            }
            compat.push(format!("PCI\\VEN_{ven}"));
            for c in [cc6, cc4].into_iter().flatten() {
                compat.push(format!("PCI\\CC_{c}"));
            }
            // Without SUBSYS the plain VEN&DEV is the device's hardware ID.
            if hw.is_empty() {
                if let Some(first) = compat.first().cloned() {
                    hw.push(first);
                    compat.remove(0);
                }
            }
        }
        "USB" if get("VID").is_some() && get("PID").is_some() => {
            let vp = format!(
                "USB\\VID_{}&PID_{}",
                get("VID").unwrap_or(""),
                get("PID").unwrap_or("")
            );
            if let Some(r) = get("REV") {
                hw.push(format!("{vp}&REV_{r}"));
            }
            hw.push(vp);
            if let Some(c) = get("CLASS") {
                let cls = format!("USB\\CLASS_{c}");
                if let Some(s) = get("SUBCLASS") {
                    let sc = format!("{cls}&SUBCLASS_{s}");
                    if let Some(p) = get("PROT") {
                        compat.push(format!("{sc}&PROT_{p}"));
                    }
                    compat.push(sc);
                }
                compat.push(cls);
            }
        }
        "ACPI" if !id.is_empty() => {
            hw.push(format!("ACPI\\{id}"));
            hw.push(format!("*{id}"));
        }
        _ => {
            if !up.is_empty() {
                let base = if id.is_empty() {
                    bus.clone()
                } else {
                    format!("{bus}\\{id}")
                };
                hw.push(base);
            }
        }
    }
    DeviceIds {
        pnp_id: trimmed.to_string(),
        hardware_ids: hw,
        compatible_ids: compat,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pci_ids_as_windows_lists_them() {
        let d =
            device_ids("PCI\\VEN_8086&DEV_15B8&SUBSYS_86721043&REV_10&CC_020000\\3&11583659&0&FE");
        assert_eq!(
            d.hardware_ids,
            [
                "PCI\\VEN_8086&DEV_15B8&SUBSYS_86721043&REV_10",
                "PCI\\VEN_8086&DEV_15B8&SUBSYS_86721043",
                "PCI\\VEN_8086&DEV_15B8&CC_020000",
                "PCI\\VEN_8086&DEV_15B8&CC_0200",
            ]
        );
        assert_eq!(
            d.compatible_ids,
            [
                "PCI\\VEN_8086&DEV_15B8&REV_10",
                "PCI\\VEN_8086&DEV_15B8",
                "PCI\\VEN_8086&CC_020000",
                "PCI\\VEN_8086&CC_0200",
                "PCI\\VEN_8086",
                "PCI\\CC_020000",
                "PCI\\CC_0200",
            ]
        );
        // Lower case in, upper case out; no class code: no CC IDs.
        let d = device_ids("pci\\ven_1af4&dev_1005&subsys_00041af4&rev_00");
        assert_eq!(d.hardware_ids.len(), 2);
        assert_eq!(
            d.compatible_ids,
            [
                "PCI\\VEN_1AF4&DEV_1005&REV_00",
                "PCI\\VEN_1AF4&DEV_1005",
                "PCI\\VEN_1AF4"
            ]
        );
        let d = device_ids("PCI\\VEN_1B36&DEV_0002");
        assert_eq!(d.hardware_ids, ["PCI\\VEN_1B36&DEV_0002"]);
    }

    #[test]
    fn other_buses() {
        let d = device_ids("USB\\VID_046D&PID_C52B&REV_1211&Class_03&SubClass_01&Prot_01");
        assert_eq!(
            d.hardware_ids,
            ["USB\\VID_046D&PID_C52B&REV_1211", "USB\\VID_046D&PID_C52B"]
        );
        assert_eq!(
            d.compatible_ids,
            [
                "USB\\CLASS_03&SUBCLASS_01&PROT_01",
                "USB\\CLASS_03&SUBCLASS_01",
                "USB\\CLASS_03"
            ]
        );
        assert_eq!(
            device_ids("ACPI\\QEMU0002\\0").hardware_ids,
            ["ACPI\\QEMU0002", "*QEMU0002"]
        );
        assert_eq!(device_ids("ROOT\\X").hardware_ids, ["ROOT\\X"]);
        assert!(device_ids("").hardware_ids.is_empty());
    }
}
