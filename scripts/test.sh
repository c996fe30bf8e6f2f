#!/usr/bin/env bash
# The whole test suite: installs what it needs, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
# The benchmark scripts: syntax and settings only (no benchmark runs).
bench/check.sh
cargo test --workspace --all-targets 2>&1
