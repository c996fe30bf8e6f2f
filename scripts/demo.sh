#!/usr/bin/env bash
# The main job on the built-in example: installs what it needs, builds tasq
# and runs `tasq demo`, writing everything under ./demo-out (or $1).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo build --release -q -p tasq
exec ./target/release/tasq demo --out "${1:-demo-out}"
