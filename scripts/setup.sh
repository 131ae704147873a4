#!/usr/bin/env bash
# Installs every system package fastlag needs on Debian 12, idempotently.
# Usage (as root): scripts/setup.sh
set -euo pipefail

PKGS=(
  # build: system DPDK 22.11 LTS and what bindgen needs to read its headers
  dpdk libdpdk-dev pkg-config libclang1-14 libclang-common-14-dev clang-14 gcc
  # tests: namespaces, peers and wire checks
  iproute2 openvswitch-switch tshark tcpdump iputils-ping iperf3 procps
)

need=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  # tshark asks whether non-root users may capture; answer for it.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${need[@]}"
fi

# Rust tools: cargo-nextest runs each test in its own process (EAL initialises once per process).
if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found; install Rust (https://rustup.rs) and rerun" >&2
  exit 1
fi
if ! cargo nextest --version >/dev/null 2>&1; then
  cargo install --locked cargo-nextest
fi
