#!/usr/bin/env bash
# Runs the whole Ringcast test suite on a fresh machine:
#   1. installs what the end-to-end tests need (scripts/install-test-deps.sh and, for the
#      side-by-side benchmark's smoke test, scripts/install-bench-deps.sh; both idempotent),
#   2. builds the release server the end-to-end tests drive (`cargo build --release -p signaling`),
#   3. runs `cargo test --workspace --no-fail-fast` (every test binary runs even after a failure;
#      extra arguments are passed on, e.g. `-- --nocapture`).
# Exits non-zero on any failure. A missing dependency fails tests; nothing is skipped.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

echo "== installing test dependencies"
bash "$ROOT/scripts/install-test-deps.sh"
bash "$ROOT/scripts/install-bench-deps.sh"

echo "== building the release server (end-to-end tests measure real frame rates)"
cargo build --release -p signaling --bin signaling

echo "== cargo test --workspace"
cargo test --workspace --no-fail-fast "$@"
