#!/usr/bin/env bash
# The test command: installs the system packages the tests need, then runs every test
# (unit, store conformance on memory/sqlite/etcd, API and kubectl end-to-end).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo test --workspace --locked "$@"
