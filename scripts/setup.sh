#!/usr/bin/env bash
# Installs everything fastlag needs on Debian 12 or 13, idempotently: the system DPDK
# (22.11 LTS on Debian 12, 24.11 on Debian 13), what bindgen needs to read its headers, the
# test peers and tools, and a Rust toolchain with cargo-nextest when missing. Run as root.
# Safe to run again. Other distributions: see the README (DPDK 22.11, 23.11 or 24.11 and
# libclang are what the build needs).
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "setup: run as root (it installs Debian packages)" >&2
  exit 1
fi

# Supported: Debian 12 (bookworm) and 13 (trixie). Anything else is tried, with a warning.
. /etc/os-release 2>/dev/null || true
case "${ID:-}:${VERSION_ID:-}" in
  debian:12 | debian:13) ;;
  *)
    echo "setup: ${PRETTY_NAME:-this system} is not a supported distribution" \
      "(Debian 12 or 13); trying anyway" >&2
    ;;
esac

PKGS=(
  # build: system DPDK, bindgen's libclang with its headers (the distribution's default
  # LLVM: 14 on Debian 12, 19 on Debian 13), a C compiler for the shim
  dpdk libdpdk-dev pkg-config libclang-dev gcc libc6-dev make
  # tests and benchmarks: dpdk-testpmd (reference forwarder, generator), namespaces, peers, wire checks
  dpdk-dev
  iproute2 openvswitch-switch tshark tcpdump iputils-ping iperf3 procps kmod python3 python3-prometheus-client
  # a real routing daemon driving the router's FIB (tests/frr_ecmp.rs: zebra + bgpd, started
  # by the test; the packaged service stays off)
  frr
  # the Linux bonding driver as an LACP peer (tests/linux_bond.rs): a Debian kernel booted
  # under QEMU (TCG) from a busybox initramfs that the test builds from these packages
  qemu-system-x86 linux-image-amd64 busybox-static
  # the Debian 13 (DPDK 24.11) build and test root of scripts/debian13.sh
  debootstrap
  # the Debian package (scripts/package.sh, tests/package.rs): dpkg-deb/dpkg-shlibdeps,
  # strip, systemd-analyze verify for the unit, man -l for the man pages
  dpkg-dev binutils gzip systemd man-db
  # toolchain bootstrap on a machine without Rust
  curl ca-certificates
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

# Rust: Debian 12's rustc is too old; use rustup's stable toolchain when cargo is missing.
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs |
    sh -s -- -y --profile minimal --component clippy,rustfmt
  export PATH="$HOME/.cargo/bin:$PATH"
fi
if command -v rustup >/dev/null 2>&1; then
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
  rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
fi
# cargo-nextest runs every test in its own process, which DPDK needs (EAL initialises
# once per process).
if ! cargo nextest --version >/dev/null 2>&1; then
  cargo install --locked cargo-nextest
fi
