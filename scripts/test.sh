#!/usr/bin/env bash
# The test command: installs the system packages the tests need, then runs every test
# (unit, store conformance on memory/sqlite/etcd, API and kubectl end-to-end, pods as
# real containers through containerd).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# containerd, runc, CNI and the local images for the node agent's tests.
scripts/node-setup.sh
cargo test --workspace --locked "$@"
