#!/usr/bin/env bash
# Capture and apply benchmark: tasq against wimlib-imagex on the same tree,
# in the same run, for none / XPRESS / LZX / LZMS / LZMS solid (ESD-style).
# Prints time, size and peak
# memory of each tool and the ratios tasq/wimlib. Not a test: a measurement.
#
#   bench/wim-bench.sh [SOURCE_DIR]     (default /usr; BENCH_OUT=dir for the scratch space)
#   COMPRESS="xpress lzx lzms solid" bench/wim-bench.sh /usr/share
# For all inputs, levels and thread counts in one run, with correctness
# checks and Markdown/CSV output, see bench/suite.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
SRC=${1:-/usr}
OUT=${BENCH_OUT:-bench/out}
COMPRESS=${COMPRESS:-"none xpress lzx"}
THREADS=${THREADS:-$(nproc)}
./scripts/setup.sh >/dev/null
bench_tasq
mkdir -p "$OUT"
rm -rf "${OUT:?}"/*

echo "# source: $SRC ($(du -sh --apparent-size "$SRC" 2>/dev/null | cut -f1), $(find "$SRC" | wc -l) entries)"
echo "# machine: $(machine_line); threads $THREADS"
echo "# warming the page cache"
tar -cf - "$SRC" 2>/dev/null | cat >/dev/null
printf "%-7s %-8s %10s %10s %9s %9s %14s %14s %8s %8s\n" mode op wimlib_s tasq_s ratio_t mem_ratio wimlib_bytes tasq_bytes ratio_sz peakMiB
for c in $COMPRESS; do
    case $c in
        solid) wargs=(--solid); targs=(--solid) ;;
        *) wargs=(--compress="$c"); targs=(--compress "$c") ;;
    esac
    read -r wt _ _ wm < <(measure "$OUT" "w-cap-$c" wimlib-imagex capture "$SRC" "$OUT/w-$c.wim" bench "${wargs[@]}" --threads="$THREADS")
    read -r tt _ _ tm < <(measure "$OUT" "t-cap-$c" "$TASQ" wim capture "$SRC" "$OUT/t-$c.wim" bench "${targs[@]}" --threads "$THREADS")
    ws=$(stat -c %s "$OUT/w-$c.wim"); ts=$(stat -c %s "$OUT/t-$c.wim")
    printf "%-7s %-8s %10s %10s %9.3f %9.3f %14s %14s %8.4f %8d\n" "$c" capture "$wt" "$tt" \
        "$(echo "$tt / $wt" | bc -l)" "$(echo "$tm / $wm" | bc -l)" "$ws" "$ts" "$(echo "$ts / $ws" | bc -l)" $((tm / 1024))
    # Apply each tool's own WIM (the same content) into a fresh directory.
    # Both into the same path: ext4 places a new top-level directory by its
    # own rules, and two names gave one tool 0.6 s and the other 2.1 s for
    # the same files (both ~5 s into the same name).
    read -r wt _ _ wm < <(measure "$OUT" "w-app-$c" wimlib-imagex apply "$OUT/w-$c.wim" 1 "$OUT/apply")
    rm -rf "$OUT/apply"; sync
    read -r tt _ _ tm < <(measure "$OUT" "t-app-$c" "$TASQ" wim apply "$OUT/t-$c.wim" 1 "$OUT/apply" --threads "$THREADS")
    rm -rf "$OUT/apply"; sync
    printf "%-7s %-8s %10s %10s %9.3f %9.3f %14s %14s %8s %8d\n" "$c" apply "$wt" "$tt" \
        "$(echo "$tt / $wt" | bc -l)" "$(echo "$tm / $wm" | bc -l)" - - - $((tm / 1024))
    rm -f "$OUT/w-$c.wim" "$OUT/t-$c.wim"
done
