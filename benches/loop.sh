#!/usr/bin/env bash
# The closed-loop benchmark in one command: fastlag's own per-packet cost (one pinned
# worker, frames circulating for ever, or a pcap replayed for ever into the router) next to
# dpdk-testpmd (io, mac, net_bonding mode 4) and DPDK's l3fwd (LPM, IPv4 and IPv6; built
# here from Debian's dpdk-doc examples, never committed) on the same core, plus
# instructions per packet under callgrind. Prints one table; see benches/loop.py and the
# README's benchmark section.
#
# Usage: benches/loop.sh [--no-callgrind] [--seconds S] [--only xconnect,bond-l34,...]
#                        [--json FILE] [--worker-core N --control-core N]
# (root; after scripts/setup.sh). About 4 minutes on 2 CPUs with callgrind.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
for p in dpdk-doc valgrind make; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi
. scripts/env.sh
cargo build --release --quiet -p fastlag
args=(--callgrind)
for a in "$@"; do
  if [ "$a" = "--no-callgrind" ]; then args=(); else args+=("$a"); fi
done
exec python3 benches/loop.py "${args[@]}"
