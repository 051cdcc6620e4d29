#!/usr/bin/env bash
# Makes this machine a node (run as root; idempotent): installs containerd, runc, the CNI
# plugins and iptables (Debian packages), writes containerd's CRI config and the pod
# network (bridge cni0, 10.42.0.0/24), starts containerd unless one answers already (its
# PID in /run/containerd.pid), and builds and imports the local images
# localhost/busybox:latest (also tagged docker.io/library/busybox:latest) and
# localhost/pause:3.9 (from Debian's busybox-static, no network). The archives stay in target/node-images/ for agents that start their own
# containerd (`rkube server --agent-images DIR`).
set -euo pipefail
cd "$(dirname "$0")/.."
pkgs=(containerd runc containernetworking-plugins iptables busybox-static)
if ! dpkg -s "${pkgs[@]}" >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
fi
mkdir -p /etc/containerd /etc/cni/net.d /var/log/containerd /run/containerd
cp scripts/node/containerd.toml /etc/containerd/rkube-node.toml
cp scripts/node/10-rkube.conflist /etc/cni/net.d/10-rkube.conflist

sysctl -qw net.ipv4.ip_forward=1
if [ ! -e /proc/sys/net/bridge/bridge-nf-call-iptables ]; then
  modprobe br_netfilter 2>/dev/null || echo "warning: no br_netfilter module" >&2
fi
[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ] && sysctl -qw net.bridge.bridge-nf-call-iptables=1

if ! ctr version >/dev/null 2>&1; then
  nohup setsid containerd --config /etc/containerd/rkube-node.toml \
    >>/var/log/containerd/containerd.log 2>&1 </dev/null &
  echo $! >/run/containerd.pid
  for _ in $(seq 100); do ctr version >/dev/null 2>&1 && break; sleep 0.1; done
  ctr version >/dev/null 2>&1 || { tail -20 /var/log/containerd/containerd.log >&2; exit 1; }
fi

images=target/node-images
if [ ! -f $images/busybox.tar ] || [ ! -f $images/pause.tar ]; then
  OUT=$PWD/$images scripts/node/build-images.sh >/dev/null
fi
for img in pause busybox; do
  ctr -n k8s.io images import --platform linux/amd64 $images/$img.tar >/dev/null
done
# Preloaded as an air-gapped node would be: manifests that say `image: busybox` run too.
ctr -n k8s.io images tag --force localhost/busybox:latest docker.io/library/busybox:latest >/dev/null
echo "node ready: containerd at unix:///run/containerd/containerd.sock"
