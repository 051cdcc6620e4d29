#!/usr/bin/env bash
# Installs what building and testing rkube needs on Debian (run as root; idempotent):
# - protobuf-compiler + libprotobuf-dev: etcd-client's build script runs protoc and imports
#   google/protobuf/*.proto;
# - etcd-server: a real etcd for the etcd datastore's tests and benchmarks;
# - curl: the wire-level API tests speak HTTP/2 through it;
# - tzdata: CronJob `timeZone` names (the CronJob tests use Asia/Kolkata);
# - the `kubernetes` Python package (PyPI): the client-compatibility tests.
set -euo pipefail
need=()
command -v protoc >/dev/null || need+=(protobuf-compiler)
[ -f /usr/include/google/protobuf/descriptor.proto ] || need+=(libprotobuf-dev)
command -v etcd >/dev/null || need+=(etcd-server)
command -v curl >/dev/null || need+=(curl)
# CronJob timeZone names resolve through the system zone database (jiff reads it).
[ -f /usr/share/zoneinfo/Asia/Kolkata ] || need+=(tzdata)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
# The official Python client, for the client-compatibility tests.
python3 -c "import kubernetes" 2>/dev/null || python3 -m pip install -q kubernetes
command -v kubectl >/dev/null || echo "warning: kubectl is not on PATH; the end-to-end tests need it" >&2
