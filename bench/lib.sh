# shellcheck shell=bash
# Shared by the benchmark scripts (sourced, not run): building tasq,
# measuring one command, arithmetic. Needs bash, GNU time, awk.

# Sets TASQ to the release binary, building it unless TASQ is already set
# to an executable (then that binary is measured as it is).
bench_tasq() {
    if [ -n "${TASQ:-}" ]; then
        [ -x "$TASQ" ] || bench_die "TASQ=$TASQ is not an executable"
        return
    fi
    cargo build --release -q -p tasq || bench_die "cargo build of tasq failed"
    TASQ=${CARGO_TARGET_DIR:-$PWD/target}/release/tasq
    case $TASQ in /*) ;; *) TASQ=$PWD/$TASQ ;; esac
    [ -x "$TASQ" ] || bench_die "no tasq binary at $TASQ"
}

bench_die() {
    echo "bench: FAILED: $*" >&2
    exit 1
}

# measure LOGDIR LABEL COMMAND... -> prints "elapsed_s user_s sys_s peak_kib".
# Flushes dirty pages first so that no run pays for the previous run's
# writeback (it moved apply ratios between 1.0 and 2.6 before). On failure
# prints the command's output and returns 1.
measure() {
    local dir=$1 label=$2
    shift 2
    sync
    if ! /usr/bin/time -f "%e %U %S %M" -o "$dir/time.$label" "$@" >"$dir/out.$label" 2>&1; then
        {
            echo "bench: command failed: $*"
            tail -n 30 "$dir/out.$label"
        } >&2
        return 1
    fi
    # GNU time writes "Command exited with non-zero status" lines first on
    # failure; on success the last line is ours.
    tail -n 1 "$dir/time.$label"
}

# ratio A B [DECIMALS] -> A / B with 3 (or DECIMALS) decimals; "-" when B
# is 0 or either is "-".
ratio() {
    awk -v a="$1" -v b="$2" -v d="${3:-3}" 'BEGIN { if (a == "-" || b == "-" || b + 0 == 0) print "-"; else printf "%.*f\n", d, a / b }'
}

# median NUMBER... -> the median (mean of the middle two for an even count).
median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# The machine line printed above every result.
machine_line() {
    echo "$(nproc) cores ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), $(free -g | awk '/Mem:/ { print $2 }') GiB RAM; $(wimlib-imagex --version | head -1); tasq $(git rev-parse --short HEAD 2>/dev/null || echo '?'); load average $(cut -d' ' -f1-3 /proc/loadavg)"
}
