#!/usr/bin/env bash
# The end-to-end benchmark in one command: fastlag against dpdk-testpmd (io and mac
# forwarding, and through DPDK's net_bonding in mode 4) over memif, with fastlag-gen as
# generator and sink, for xconnect, a 2-member LACP bond (both directions) and the router
# (IPv4 and IPv6), 64-byte and IMIX frames. Prints one table; see benches/e2e.py and the
# README's benchmark section.
#
# Usage: benches/e2e.sh [--quick] [--cores GEN,WORKER[,WORKER...]] [--runs N] [--seconds S]
#                       [--scenarios xconnect,xconnect-imix,bond,router4,router6,...,scaling]
# (root; after scripts/setup.sh). The default (3 runs of 4 s, five scenarios) takes about
# 5 minutes on 2 CPUs; --quick (1 run of 3 s) about 2. With more CPUs, `--cores 0,2,3,4,5
# --scenarios scaling` runs xconnect with 1, 2 and 4 workers (the generator spreads flows
# over as many memif queues: memif has no RSS, queue q reaches worker q).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet -p fastlag -p fastlag-gen --bins
exec python3 benches/e2e.py "$@"
