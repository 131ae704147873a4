#!/usr/bin/env bash
# The whole test suite, as CI runs it. Installs what it needs first. Run as root (tests
# create network namespaces, veth pairs and Open vSwitch daemons, and remove them).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
. scripts/env.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
# The tools the integration tests start (fastlag-gen, fastlag-bond-peer) are binaries of
# other packages: cargo test builds only the tested package's own.
cargo build --workspace --release --bins --quiet
cargo nextest run --workspace --release --profile ci "$@"
