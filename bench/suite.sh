#!/usr/bin/env bash
# Benchmark suite: tasq against wimlib-imagex in one run, on three inputs
#   tree  a directory tree (SRC, default /usr)
#   big   one large file of mixed data (BIG_SIZE, default 1G; bench/mkbigfile.py)
#   ntfs  an NTFS volume image filled from a tree (NTFS_SRC, default /usr/share)
# for each compression mode of MODES and thread count of THREADS_LIST:
# capture and apply time (elapsed and user+sys CPU), WIM size, peak RSS.
# Each tool captures the input and applies its own WIM to a fresh target.
# Correctness on the way (any failure stops the run): `wimlib-imagex verify`
# of every tasq WIM, and every tasq apply compared with wimlib's apply of
# the same mode (file list, types, sizes, link counts, symlink targets and
# the SHA-1 of a sample of files; for NTFS volumes every stream's hash).
# Prints one Markdown table per input and writes RESULTS.md and RESULTS.csv.
# Not a test: a measurement.
#
#   bench/suite.sh                 the full suite (hours: see docs/performance.md)
#   QUICK=1 bench/suite.sh         tiny inputs, three modes: a smoke test
#
# Environment (defaults in brackets):
#   SRC [/usr]  NTFS_SRC [/usr/share]  BIG_SIZE [1G] (bytes, K/M/G suffixes)
#   INPUTS ["tree big ntfs"]
#   MODES ["none xpress lzx:20 lzx:50 lzx:100 lzms solid"]: TYPE[:LEVEL], or
#         solid (LZMS solid resources, wimlib's --solid)
#   THREADS_LIST ["1 $(nproc)"]  (wimlib-imagex apply has no thread option:
#         for apply the count is tasq's only)
#   REPEAT [1]: runs of each measure, interleaved (wimlib first on odd runs,
#         tasq first on even ones); the tables show the medians
#   APPLY_TMPFS [0]: 1 = apply onto a tmpfs mounted for the run (root), so
#         that apply times leave out the disk's writeback
#   CHECK [sample]: full = hash every applied file, not SAMPLE [200] of them
#   BENCH_OUT [/var/tmp]: where the scratch directory is made (removed at exit)
#   RESULTS [bench/out/suite-DATE]: prefix of the .md and .csv written
#   TASQ: measure this tasq binary instead of building one
#   RPFIX [1]: 1 = both tools capture with their default reparse-point
#         fix-ups (absolute symlinks into the tree stored relative to its
#         root, re-rooted at apply); 0 = both capture with --norpfix
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh

if [ "${QUICK:-0}" = 1 ]; then
    SRC=${SRC:-/usr/share/zoneinfo} # 1.5 MB, 1,300 entries, 365 symlinks
    NTFS_SRC=${NTFS_SRC:-$SRC}
    BIG_SIZE=${BIG_SIZE:-8M}
    MODES=${MODES:-none lzx:20 solid}
fi
SRC=${SRC:-/usr}
NTFS_SRC=${NTFS_SRC:-/usr/share}
BIG_SIZE=$(numfmt --from=iec "${BIG_SIZE:-1G}") || bench_die "BIG_SIZE: not a size"
INPUTS=${INPUTS:-tree big ntfs}
MODES=${MODES:-none xpress lzx:20 lzx:50 lzx:100 lzms solid}
THREADS_LIST=${THREADS_LIST:-1 $(nproc)}
REPEAT=${REPEAT:-1}
APPLY_TMPFS=${APPLY_TMPFS:-0}
CHECK=${CHECK:-sample}
SAMPLE=${SAMPLE:-200}
BENCH_OUT=${BENCH_OUT:-/var/tmp}
RPFIX=${RPFIX:-1}
W_CAPTURE_ARGS=()
T_CAPTURE_ARGS=()
if [ "$RPFIX" != 1 ]; then
    W_CAPTURE_ARGS=(--norpfix)
    T_CAPTURE_ARGS=(--norpfix)
fi
RESULTS=${RESULTS:-bench/out/suite-$(date +%Y%m%d-%H%M%S)}

# ---- arguments of each tool for a mode ----

# mode_args MODE: sets W_ARGS (wimlib-imagex) and T_ARGS (tasq).
mode_args() {
    local t=${1%%:*} level=
    case $1 in *:*) level=${1#*:} ;; esac
    case $level in '' | [1-9] | [1-9][0-9] | 100) ;; *) bench_die "mode $1: level must be 1..100" ;; esac
    case $t in
        none | xpress | lzx | lzms)
            W_ARGS=("--compress=${t^^}${level:+:$level}")
            T_ARGS=(--compress "$1")
            ;;
        solid)
            [ -z "$level" ] || bench_die "mode $1: solid takes no level (tasq's --solid-compress has none)"
            W_ARGS=(--solid)
            T_ARGS=(--solid)
            ;;
        *) bench_die "mode $1: not one of none, xpress, lzx, lzms, solid" ;;
    esac
}

# ---- checks before anything runs ----

for m in $MODES; do mode_args "$m"; done
for t in $THREADS_LIST; do
    case $t in '' | *[!0-9]* | 0) bench_die "THREADS_LIST: $t is not a thread count" ;; esac
done
case $REPEAT in '' | *[!0-9]* | 0) bench_die "REPEAT=$REPEAT: not a count" ;; esac
for i in $INPUTS; do
    case $i in tree | big | ntfs) ;; *) bench_die "INPUTS: $i is not one of tree, big, ntfs" ;; esac
done
for tool in wimlib-imagex /usr/bin/time awk numfmt sha1sum; do
    command -v "$tool" >/dev/null || bench_die "$tool is missing (scripts/setup.sh installs it)"
done
case " $INPUTS " in *" ntfs "*) command -v mkntfs >/dev/null || bench_die "mkntfs is missing (package ntfs-3g)" ;; esac
case " $INPUTS " in *" big "*) command -v python3 >/dev/null || bench_die "python3 is missing" ;; esac
[ -d "$SRC" ] || bench_die "SRC=$SRC is not a directory"
[ -d "$NTFS_SRC" ] || bench_die "NTFS_SRC=$NTFS_SRC is not a directory"

bytes_of() { du -sb "$1" | cut -f1; }
entries_of() { find "$1" | wc -l; }
gib() { awk -v b="$1" 'BEGIN { if (b >= 2^30) printf "%.2f GiB", b / 2^30; else printf "%.1f MiB", b / 2^20 }'; }

# Free space: each input is measured and removed before the next, so the
# largest one counts: tree = 2 WIMs + 1 applied copy; big = the file + 2
# WIMs + 1 copy; ntfs = the volume, 2 WIMs, 1 applied volume and one
# uncompressed check WIM of it (for the comparison). WIMs are counted at
# the input's size (uncompressed mode). Applies on a tmpfs move one copy
# to memory.
disk_need=0 ram_need=0
for i in $INPUTS; do
    case $i in
        tree) n=$(bytes_of "$SRC") d=$((2 * n)) ;;
        big) n=$BIG_SIZE d=$((3 * n)) ;;
        ntfs) n=$(bytes_of "$NTFS_SRC") d=$((4 * n)) ;;
    esac
    if [ "$APPLY_TMPFS" = 1 ]; then
        ((n > ram_need)) && ram_need=$n
    else
        d=$((d + n))
    fi
    ((d > disk_need)) && disk_need=$d
done
disk_need=$((disk_need + disk_need / 20 + (1 << 30)))
mkdir -p "$BENCH_OUT"
avail=$(df -B1 --output=avail "$BENCH_OUT" | tail -n 1)
((avail >= disk_need)) || bench_die "not enough free space in $BENCH_OUT: $(gib "$avail") free, $(gib "$disk_need") needed (set BENCH_OUT, or fewer/smaller INPUTS)"
if [ "$APPLY_TMPFS" = 1 ]; then
    [ "$(id -u)" = 0 ] || bench_die "APPLY_TMPFS=1 mounts a tmpfs: run as root"
    ram_need=$((ram_need + ram_need / 10 + (256 << 20)))
    mem=$(($(awk '/MemAvailable/ { print $2 }' /proc/meminfo) * 1024))
    ((mem >= ram_need + (1 << 30))) || bench_die "APPLY_TMPFS=1: $(gib "$mem") of memory available, $(gib "$ram_need") + 1 GiB needed"
fi

# ---- scratch space, removed on every exit ----

OUT=$(mktemp -d "$BENCH_OUT/tasq-bench.XXXXXX")
cleanup() {
    if mountpoint -q "$OUT/tmpfs" 2>/dev/null; then umount "$OUT/tmpfs" || true; fi
    rm -rf "$OUT"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
if [ "$APPLY_TMPFS" = 1 ]; then
    mkdir "$OUT/tmpfs"
    mount -t tmpfs -o "size=$ram_need" tasq-bench "$OUT/tmpfs" || bench_die "mounting a tmpfs failed"
    A=$OUT/tmpfs
else
    A=$OUT/apply
    mkdir "$A"
fi

bench_tasq
mkdir -p "$(dirname "$RESULTS")"
MD=$RESULTS.md CSV=$RESULTS.csv
echo "input,mode,threads,op,runs,wimlib_s,tasq_s,wimlib_cpu_s,tasq_cpu_s,wimlib_user_s,wimlib_sys_s,tasq_user_s,tasq_sys_s,wimlib_bytes,tasq_bytes,wimlib_peak_kib,tasq_peak_kib,load1" >"$CSV"
: >"$MD"
md() { echo "$*" | tee -a "$MD"; }

# ---- the inputs ----

# prepare_input NAME: sets IN (a directory, or an NTFS image file), IN_KIND
# (dir or vol) and IN_DESC.
prepare_input() {
    case $1 in
        tree)
            IN=$SRC IN_KIND=dir
            IN_DESC="directory tree $SRC ($(gib "$(bytes_of "$SRC")"), $(entries_of "$SRC") entries)"
            ;;
        big)
            mkdir "$OUT/big"
            python3 bench/mkbigfile.py "$OUT/big/mixed.bin" "$BIG_SIZE" || bench_die "bench/mkbigfile.py failed"
            IN=$OUT/big IN_KIND=dir
            IN_DESC="one file of mixed data, $(gib "$BIG_SIZE") (bench/mkbigfile.py, SHA-1 $(sha1sum "$IN/mixed.bin" | cut -c1-12))"
            ;;
        ntfs)
            local n
            n=$(bytes_of "$NTFS_SRC")
            VOL_MIB=$((n * 2 / (1 << 20) + 256))
            measure "$OUT" seed wimlib-imagex capture "$NTFS_SRC" "$OUT/seed.wim" seed --compress=none "${W_CAPTURE_ARGS[@]}" >/dev/null ||
                bench_die "capturing NTFS_SRC=$NTFS_SRC for the volume failed"
            new_volume "$OUT/vol.img"
            measure "$OUT" fill wimlib-imagex apply "$OUT/seed.wim" 1 "$OUT/vol.img" >/dev/null ||
                bench_die "filling the NTFS volume failed"
            rm -f "$OUT/seed.wim"
            IN=$OUT/vol.img IN_KIND=vol
            IN_DESC="NTFS volume image, $VOL_MIB MiB, filled by wimlib-imagex from $NTFS_SRC ($(gib "$n"), $(entries_of "$NTFS_SRC") entries)"
            ;;
    esac
}

new_volume() { # PATH: a fresh sparse NTFS volume of VOL_MIB MiB
    rm -f "$1"
    truncate -s "${VOL_MIB}M" "$1"
    mkntfs -F -f -q -L tasqbench "$1" >/dev/null 2>&1 || bench_die "mkntfs $1 failed"
}

# ---- correctness checks ----

# manifest TOOL: describes the tree TOOL (w or t) applied, into
# $OUT/manifest.TOOL. The files hashed are chosen once, from wimlib's tree.
manifest() {
    local tool=$1 out=$OUT/manifest.$1
    if [ "$IN_KIND" = vol ]; then
        # Every path, attribute, link count and stream hash, as wimlib
        # reads the volume back (uncompressed capture, then its listing).
        wimlib-imagex capture "$A/$tool.img" "$OUT/check.wim" check --compress=none >"$OUT/check.log" 2>&1 ||
            bench_die "reading back the volume applied by $(tool_name "$tool") failed: $(tail -n 5 "$OUT/check.log")"
        wimlib-imagex dir "$OUT/check.wim" 1 --detailed |
            grep -E '^(Full Path|Short Name|Attributes|Reparse Tag|Link Count|Hash|Uncompressed size)|stream' >"$out"
        rm -f "$OUT/check.wim"
        return
    fi
    local d=$A/$tool real
    real=$(cd "$d" && pwd -P)
    # Fix-ups point absolute links into each tool's own target: compare
    # them with that root written as <ROOT>.
    (cd "$d" && {
        find . ! -type f -printf '%y %p -> %l\n' | awk -v r="$real" '{
            i = index($0, " -> " r); j = i + 4 + length(r)
            if (i && (j > length($0) || substr($0, j, 1) == "/"))
                $0 = substr($0, 1, i + 3) "<ROOT>" substr($0, j)
            print }'
        find . -type f -printf 'f %s %n %p\n'
    } | LC_ALL=C sort) >"$out"
    if [ ! -s "$OUT/sample" ]; then
        (cd "$d" && find . -type f -printf '%p\n' | LC_ALL=C sort) >"$OUT/files"
        local k=1 n
        n=$(wc -l <"$OUT/files")
        [ "$CHECK" = full ] || k=$((n / SAMPLE > 1 ? n / SAMPLE : 1))
        awk -v k="$k" '(NR - 1) % k == 0' "$OUT/files" >"$OUT/sample"
        [ -s "$OUT/sample" ] || echo "(no regular files)" >"$OUT/sample"
    fi
    # A file missing from the tree is a difference too: sha1sum's message
    # goes into the manifest.
    (
        cd "$d" || exit 0
        xargs -d '\n' -r sha1sum -- <"$OUT/sample" 2>&1
    ) >>"$out" || true
}

compare_manifests() { # LABEL
    if ! diff -q "$OUT/manifest.w" "$OUT/manifest.t" >/dev/null; then
        {
            echo "bench: FAILED: tasq's apply differs from wimlib's ($1); first differences (< wimlib, > tasq):"
            diff "$OUT/manifest.w" "$OUT/manifest.t" | head -n 20
        } >&2
        exit 1
    fi
}

tool_name() { if [ "$1" = w ]; then echo wimlib-imagex; else echo tasq; fi; }

# ---- one measure: both tools, REPEAT times, interleaved ----

# run_tool OP TOOL RUN: one measured run; results appended to $OUT/runs.OP.TOOL.
run_tool() {
    local op=$1 tool=$2 r=$3 line target
    local -a cmd
    if [ "$op" = capture ]; then
        rm -f "$OUT/$tool.wim"
        if [ "$tool" = w ]; then
            cmd=(wimlib-imagex capture "$IN" "$OUT/w.wim" bench "${W_ARGS[@]}" "${W_CAPTURE_ARGS[@]}" --threads="$T")
        else
            target=$IN
            [ "$IN_KIND" = vol ] && target=$IN:0 # tasq names a volume DISK:PARTITION
            cmd=("$TASQ" wim capture "$target" "$OUT/t.wim" bench "${T_ARGS[@]}" "${T_CAPTURE_ARGS[@]}" --threads "$T")
        fi
    else
        if [ "$IN_KIND" = vol ]; then
            new_volume "$A/$tool.img"
            target=$A/$tool.img
            [ "$tool" = t ] && target=$target:0
        else
            rm -rf "${A:?}/$tool"
            target=$A/$tool
        fi
        if [ "$tool" = w ]; then
            cmd=(wimlib-imagex apply "$OUT/w.wim" 1 "$target")
        else
            cmd=("$TASQ" wim apply "$OUT/t.wim" 1 "$target" --threads "$T")
        fi
    fi
    line=$(measure "$OUT" "$op-$tool" "${cmd[@]}") ||
        bench_die "$op by $(tool_name "$tool") ($INPUT, $MODE, $T threads)"
    echo "$line" >>"$OUT/runs.$op.$tool"
    if [ "$op" = apply ]; then
        [ "$r" = 1 ] && manifest "$tool"
        rm -rf "${A:?}/$tool" "$A/$tool.img"
    fi
}

run_pair() { # OP
    rm -f "$OUT/runs.$1".*
    local r
    for ((r = 1; r <= REPEAT; r++)); do
        if ((r % 2)); then
            run_tool "$1" w $r
            run_tool "$1" t $r
        else
            run_tool "$1" t $r
            run_tool "$1" w $r
        fi
    done
}

# stat_of FILE: "elapsed cpu user sys peak_kib", each the median over the runs.
stat_of() {
    local col
    local -a v=()
    # shellcheck disable=SC2016 # awk expressions, not shell ones
    for col in '$1' '$2 + $3' '$2' '$3' '$4'; do
        # shellcheck disable=SC2046
        v+=("$(printf '%.2f' "$(median $(awk "{ print $col }" "$1"))")")
    done
    v[4]=$(printf '%.0f' "${v[4]}") # KiB, whole (a median of two may end in .5)
    echo "${v[@]}"
}

# emit OP WIMLIB_BYTES TASQ_BYTES: one table row and one CSV line.
emit() {
    local op=$1 wb=$2 tb=$3 we wc wu ws wm te tc tu ts tm load
    read -r we wc wu ws wm < <(stat_of "$OUT/runs.$op.w")
    read -r te tc tu ts tm < <(stat_of "$OUT/runs.$op.t")
    load=$(cut -d' ' -f1 /proc/loadavg)
    md "| $MODE | $T | $op | $we | $te | $(ratio "$te" "$we") | $wc | $tc | $(ratio "$tc" "$wc") | $(ratio "$tb" "$wb" 4) | $((wm / 1024)) | $((tm / 1024)) | $(ratio "$tm" "$wm") |"
    echo "$INPUT,$MODE,$T,$op,$REPEAT,$we,$te,$wc,$tc,$wu,$ws,$tu,$ts,$wb,$tb,$wm,$tm,$load" >>"$CSV"
}

# ---- the run ----

# The run is one function, so that an error bash recovers from by
# dropping the rest of a command (an arithmetic one does) cannot skip to
# the success line: COMPLETED is set only by the last line of main.
main() {
echo "bench: scratch $OUT; results $MD, $CSV" >&2
for INPUT in $INPUTS; do
    prepare_input "$INPUT"
    # Warm the page cache for both tools alike.
    if [ "$IN_KIND" = dir ]; then tar -cf - "$IN" 2>/dev/null | cat >/dev/null; else cat "$IN" >/dev/null; fi
    md ""
    md "### $INPUT: $IN_DESC"
    md ""
    md "$(machine_line); $REPEAT run(s) per figure (median); apply onto $([ "$APPLY_TMPFS" = 1 ] && echo tmpfs || echo "disk ($BENCH_OUT)")."
    md ""
    md "| mode | threads | op | wimlib s | tasq s | time tasq/wimlib | wimlib CPU s | tasq CPU s | CPU tasq/wimlib | size tasq/wimlib | wimlib peak MiB | tasq peak MiB | peak tasq/wimlib |"
    md "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    for MODE in $MODES; do
        mode_args "$MODE"
        for T in $THREADS_LIST; do
            run_pair capture
            wimlib-imagex verify "$OUT/t.wim" >"$OUT/verify.log" 2>&1 ||
                bench_die "wimlib-imagex verify rejects tasq's WIM ($INPUT, $MODE, $T threads): $(tail -n 5 "$OUT/verify.log")"
            emit capture "$(stat -c %s "$OUT/w.wim")" "$(stat -c %s "$OUT/t.wim")"
            rm -f "$OUT/sample"
            run_pair apply
            compare_manifests "$INPUT, $MODE, $T threads"
            emit apply - -
            rm -f "$OUT/w.wim" "$OUT/t.wim"
        done
    done
    md ""
    md "Load average after this input: $(cut -d' ' -f1-3 /proc/loadavg). Apply: threads are tasq's (wimlib-imagex apply has no thread option)."
    rm -rf "${OUT:?}/big" "$OUT/vol.img"
done
COMPLETED=1
}
COMPLETED=0
main
[ "$COMPLETED" = 1 ] || bench_die "the run stopped early (see the error above)"
echo >&2
echo "bench: all checks passed; tables in $MD, figures in $CSV" >&2
