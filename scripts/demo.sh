#!/usr/bin/env bash
# fastlag's main job on its embedded default configuration: virtual devices only, no NIC,
# no hugepages. Installs what it needs first. Extra arguments go to `fastlag demo`
# (e.g. --seconds 30). Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
. scripts/env.sh
cargo build --release --quiet
exec ./target/release/fastlag demo "$@"
