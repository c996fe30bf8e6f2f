#!/usr/bin/env bash
# Installs the system packages tasq's tests and tools use (Debian/Ubuntu).
#   wimtools, libwim-dev: wimlib-imagex and libwim, the peer that our WIMs are
#                         checked against (tests only; tasq never links it)
#   ntfs-3g, ntfs-3g-dev, gcc: mkntfs, libntfs-3g and the C shim for NTFS volumes
#   e2fsprogs, util-linux: mkfs.ext4, mkswap, sfdisk, chattr, prlimit (tests)
#   time, bc:             /usr/bin/time and arithmetic for the benchmark script
#   libhivex-dev, libhivex-bin: hivex (the BCD store of the boot step) and its
#                         tools that read it back in tests
#   syslinux-common:      a generic MBR boot code for BIOS disks (optional at run time)
#   libsmbclient:         the SMB client the capture step writes to shares with
#                         (opened at run time with dlopen; no -dev package needed)
#   samba, smbclient:     a private Samba server the capture tests start (root)
#   dosfstools, mtools, gdisk, fdisk, exfatprogs: independent checks of the
#                         partition tables and FAT volumes tasq writes (tests)
#   python3:              an independent XML parser for the generated unattend.xml (tests)
set -euo pipefail
pkgs=(wimtools libwim-dev ntfs-3g ntfs-3g-dev gcc time bc pkg-config dosfstools mtools gdisk fdisk exfatprogs e2fsprogs util-linux python3 libhivex-dev libhivex-bin syslinux-common samba smbclient libsmbclient)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
