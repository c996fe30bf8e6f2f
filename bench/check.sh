#!/usr/bin/env bash
# Cheap checks of the benchmark scripts, safe for CI (runs no benchmark):
# syntax, shellcheck when installed, the helpers' arithmetic, and the
# suite's refusal of bad settings before it builds or writes anything.
set -euo pipefail
cd "$(dirname "$0")/.."
fail() {
    echo "bench/check.sh: $*" >&2
    exit 1
}

for f in bench/*.sh; do bash -n "$f" || fail "syntax error in $f"; done
python3 -m py_compile bench/mkbigfile.py || fail "bench/mkbigfile.py does not compile"
if command -v shellcheck >/dev/null; then
    shellcheck -x bench/*.sh || fail "shellcheck"
else
    echo "bench/check.sh: shellcheck not installed, skipped" >&2
fi

# shellcheck source=bench/lib.sh
. bench/lib.sh
expect() { [ "$2" = "$3" ] || fail "$1: got '$2', expected '$3'"; }
expect "ratio" "$(ratio 3 2)" 1.500
expect "ratio, 4 decimals" "$(ratio 10001 10000 4)" 1.0001
expect "ratio by zero" "$(ratio 1 0)" -
expect "ratio of nothing" "$(ratio - 5)" -
expect "median, odd count" "$(median 3 10 1)" 3
expect "median, even count" "$(median 4 1 3 2)" 2.50

# Bad settings stop the suite with a message, before any work.
refuses() { # WHAT_THE_MESSAGE_SAYS ENV...
    local want=$1 out
    shift
    if out=$(env "$@" TASQ=/bin/false bench/suite.sh 2>&1); then
        fail "suite.sh accepted $*"
    fi
    case $out in *"$want"*) ;; *) fail "suite.sh with $*: message '$out' does not say '$want'" ;; esac
}
refuses "not one of none" MODES=gzip INPUTS=big
refuses "level must be 1..100" MODES=lzx:500 INPUTS=big
refuses "solid takes no level" MODES=solid:50 INPUTS=big
refuses "not a thread count" THREADS_LIST=x INPUTS=big
refuses "not one of tree, big, ntfs" INPUTS=disk
refuses "not a directory" SRC=/nonexistent INPUTS=big
refuses "not enough free space" BIG_SIZE=1000000G INPUTS=big MODES=none
echo "bench/check.sh: ok"
