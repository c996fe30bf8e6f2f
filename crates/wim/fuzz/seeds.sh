#!/bin/sh
# Writes seed inputs for the wim_open and metadata_parse fuzz targets into
# corpus/ (git-ignored): small WIMs written by wimlib-imagex in each
# compression (with and without an integrity table, two images), and the
# metadata resources of the uncompressed ones.
# Needs wimlib-imagex (apt-get install wimtools) and python3; TASQ=path
# to a built tasq adds WIMs in tasq's layout.
set -eu
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/src/sub/deeper" "$tmp/src2" corpus/wim_open corpus/metadata_parse
printf 'hello\n' > "$tmp/src/a.txt"
: > "$tmp/src/empty"
i=0; while [ $i -lt 300 ]; do printf 'line %d of some text\n' $i; i=$((i+1)); done > "$tmp/src/sub/text.txt"
cp "$tmp/src/sub/text.txt" "$tmp/src/sub/deeper/copy.txt"
ln "$tmp/src/a.txt" "$tmp/src/sub/hardlink"
ln -s a.txt "$tmp/src/rel_link"
ln -s sub "$tmp/src/dir_link"
printf 'x' > "$tmp/src2/x"
for c in none xpress lzx; do
    for check in "" "--check"; do
        w="corpus/wim_open/wimlib-$c${check:+-check}.wim"
        wimlib-imagex capture "$tmp/src" "$w" one --compress=$c $check >/dev/null
        wimlib-imagex append "$tmp/src2" "$w" two $check >/dev/null
    done
done
# Pipable WIMs (wimlib's WLPWM): compressed, written to a file and to a pipe.
for c in none lzx; do
    wimlib-imagex capture "$tmp/src" "corpus/wim_open/wimlib-pipable-$c.wim" one --pipable --compress=$c >/dev/null 2>&1
done
wimlib-imagex capture "$tmp/src" - streamed --compress=xpress 2>/dev/null > corpus/wim_open/wimlib-pipable-stream.wim
# Solid resources (version 0xE00; two resources in one run) in LZX and
# XPRESS (metadata in the same format: LZMS is not readable yet), and part
# 1 of a split WIM (opening it alone must fail cleanly).
for c in lzx xpress; do
    w="corpus/wim_open/wimlib-solid-$c.wim"
    wimlib-imagex capture "$tmp/src" "$w" one --solid --compress=$c --solid-compress=$c >/dev/null
    wimlib-imagex append "$tmp/src2" "$w" two --solid --compress=$c --solid-compress=$c >/dev/null
done
wimlib-imagex split corpus/wim_open/wimlib-lzx.wim "$tmp/part.swm" 0.001 >/dev/null
cp "$tmp/part.swm" corpus/wim_open/wimlib-split-part1.swm
# And tasq's own layout, when a built tasq is given (TASQ=path/to/tasq).
if [ -n "${TASQ:-}" ]; then
    for c in none xpress lzx; do
        "$TASQ" wim capture "$tmp/src" "corpus/wim_open/tasq-$c.wim" --compress $c --check 2>/dev/null
        "$TASQ" wim append "$tmp/src2" "corpus/wim_open/tasq-$c.wim" --name two 2>/dev/null
    done
    "$TASQ" wim capture "$tmp/src" corpus/wim_open/tasq-solid-lzx.wim --solid --solid-compress lzx 2>/dev/null
fi
# The metadata resources of the uncompressed WIMs (header at 0; blob table
# reshdr at 0x30; 50-byte entries; flag 2 = metadata).
python3 - corpus/wim_open/wimlib-none.wim corpus/metadata_parse <<'PY'
import struct, sys
data = open(sys.argv[1], 'rb').read()
size = int.from_bytes(data[0x30:0x37], 'little')
off = struct.unpack_from('<Q', data, 0x38)[0]
n = 0
for e in range(off, off + size, 50):
    rsize = int.from_bytes(data[e:e+7], 'little')
    flags, roff = data[e+7], struct.unpack_from('<Q', data, e+8)[0]
    if flags & 2:
        n += 1
        open(f'{sys.argv[2]}/wimlib-image{n}.bin', 'wb').write(data[roff:roff+rsize])
PY
ls -l corpus/wim_open corpus/metadata_parse
