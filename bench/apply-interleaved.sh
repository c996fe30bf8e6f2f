#!/usr/bin/env bash
# Apply one WIM with tasq and with wimlib-imagex, alternately, ROUNDS times,
# into the same (ideally tmpfs) directory, and print each round and the
# median wall and CPU (user+sys) ratios tasq/wimlib. Not a test: a
# measurement, meant for a loaded machine (interleaving spreads the load
# over both tools; CPU time moves less than wall time).
#
#   bench/apply-interleaved.sh WIM DEST_DIR [ROUNDS]
#   e.g. wimlib-imagex capture /usr/share/doc /tmp/x.wim --solid
#        mount -t tmpfs tmpfs /mnt/t; bench/apply-interleaved.sh /tmp/x.wim /mnt/t/a 5
# TASQ=path measures that binary instead of building one; THREADS (default
# nproc) is passed to tasq (wimlib decompresses on one thread whatever it
# is told).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
WIM=${1:?usage: apply-interleaved.sh WIM DEST_DIR [ROUNDS]}
DEST=${2:?usage: apply-interleaved.sh WIM DEST_DIR [ROUNDS]}
ROUNDS=${3:-5}
THREADS=${THREADS:-$(nproc)}
bench_tasq
LOG=$(mktemp -d)
trap 'rm -rf "$LOG" "${DEST:?}"' EXIT
echo "# $WIM ($(stat -c %s "$WIM") bytes) -> $DEST; $ROUNDS rounds; threads $THREADS"
echo "# machine: $(machine_line)"
cat "$WIM" >/dev/null
printf "%-5s %8s %8s %8s %8s %8s %8s %9s %9s\n" round w_wall w_cpu w_MiB t_wall t_cpu t_MiB r_wall r_cpu
rw=() rc=()
for i in $(seq "$ROUNDS"); do
    rm -rf "$DEST"
    read -r we wu ws wm < <(measure "$LOG" w wimlib-imagex apply "$WIM" 1 "$DEST")
    rm -rf "$DEST"
    read -r te tu ts tm < <(measure "$LOG" t "$TASQ" wim apply "$WIM" 1 "$DEST" --threads "$THREADS")
    wc=$(awk -v a="$wu" -v b="$ws" 'BEGIN { print a + b }')
    tc=$(awk -v a="$tu" -v b="$ts" 'BEGIN { print a + b }')
    rw+=("$(ratio "$te" "$we")") rc+=("$(ratio "$tc" "$wc")")
    printf "%-5s %8s %8s %8d %8s %8s %8d %9s %9s\n" "$i" "$we" "$wc" $((wm / 1024)) "$te" "$tc" $((tm / 1024)) \
        "${rw[-1]}" "${rc[-1]}"
done
echo "# median ratio tasq/wimlib: wall $(median "${rw[@]}"), cpu $(median "${rc[@]}"); load average now $(cut -d' ' -f1-3 /proc/loadavg)"
