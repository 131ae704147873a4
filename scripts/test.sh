#!/usr/bin/env bash
# The whole test suite, as CI runs it. Installs what it needs first. Run as root (tests
# create network namespaces, veth pairs and Open vSwitch daemons, and remove them).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
. scripts/env.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet
# The minimum supported Rust version (rust-version in Cargo.toml): the workspace, with its
# locked dependencies, must compile with it.
msrv=$(sed -n 's/^rust-version = "\(.*\)"$/\1/p' Cargo.toml)
if command -v rustup >/dev/null 2>&1 && rustup toolchain install "$msrv" --profile minimal >/dev/null 2>&1; then
  cargo +"$msrv" check --workspace --all-targets --quiet
else
  echo "test.sh: Rust $msrv (rust-version) cannot be installed here: MSRV check skipped" >&2
fi
# The tools the integration tests start (fastlag-gen, fastlag-bond-peer) are binaries of
# other packages: cargo test builds only the tested package's own.
cargo build --workspace --release --bins --quiet
cargo nextest run --workspace --release --profile ci "$@"
# Bounded coverage-guided fuzzing of the parsers (conf, LACP wire, LACP engine input):
# 20 s per target; execution counts in target/fuzz/summary.txt.
./scripts/fuzz.sh
# DPDK 24.11: on Debian 12, build and run the DPDK-only tests and the demo again in a
# Debian 13 root (cached in /var/cache/fastlag/debian13; scripts/debian13.sh). On Debian 13
# the suite above already ran against 24.11.
. /etc/os-release 2>/dev/null || true
if [ "${ID:-}:${VERSION_ID:-}" = "debian:12" ]; then
  ./scripts/debian13.sh
fi
