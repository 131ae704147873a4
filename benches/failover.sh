#!/usr/bin/env bash
# Failover and convergence timing against Open vSwitch, as a benchmark: runs the interop
# tests that measure it (tests/ovs_interop.rs: real OVS in its own namespace, fastlag on
# af_packet over veth, UDP flows from namespaces) RUNS times and tabulates the numbers they
# print on their MEASURE lines: median (min-max) over the runs.
#
#   start -> distributing   every test that starts a rig (3 per run): from "fastlag running" to every member
#                           distributing, in fastlag's status and in OVS's lacp/show
#   link down               traffic_spreads_over_members_and_fails_over: vb1 down in OVS's
#                           namespace; time until m1 leaves fastlag's table, and the loss
#                           window (blackout) of the flows that were on m1, both directions
#   LACP timeout            silent_partner_times_out_with_reason: OVS's LACPDUs to m1 dropped
#                           (tc); time until m1 leaves distribution, blackout both ways
#   member drain            tests/ops_ctl.rs ovs_drain_moves_traffic_without_loss_and_undrain_brings_it_back:
#                           `fastlag ctl member drain` under 2,000 datagrams/s each way; datagrams
#                           lost each way (the loss window is lost / 2,000 s)
#
# Usage: benches/failover.sh [RUNS=3]    (root; after scripts/setup.sh; about 40 s a run)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
case "$RUNS" in '' | *[!0-9]*) echo "usage: $0 [RUNS]" >&2; exit 2 ;; esac
. scripts/env.sh 2>/dev/null || true
OUT=$(mktemp /tmp/fastlag-failover.XXXXXX)
trap 'rm -f "$OUT"' EXIT
for r in $(seq "$RUNS"); do
  echo "# run $r/$RUNS" >&2
  cargo nextest run --release -p fastlag --test ovs_interop --no-capture --no-fail-fast \
    -E 'test(ovs_active_fast) | test(traffic_spreads_over_members_and_fails_over) | test(silent_partner_times_out_with_reason)' \
    2>&1 | grep '^MEASURE' >>"$OUT" || true
  cargo nextest run --release -p fastlag --test ops_ctl --no-capture --no-fail-fast \
    -E 'test(ovs_drain_moves_traffic_without_loss_and_undrain_brings_it_back)' \
    2>&1 | grep '^MEASURE' >>"$OUT" || true
done
python3 - "$OUT" "$RUNS" <<'PY'
import re, statistics as st, sys
lines = open(sys.argv[1]).read().splitlines()
def grab(prefix, pattern):
    v = []
    for l in lines:
        if re.match(prefix, l):
            m = re.search(pattern, l)
            if m and m.group(1) not in ("never", None):
                v.append(float(m.group(1)))
    return v
def fmt(v, unit="ms"):
    if not v:
        return "n/a (no run measured it)"
    return "%.1f %s (%.1f-%.1f, %d runs)" % (st.median(v), unit, min(v), max(v), len(v))
rows = [
    ("start -> all members distributing, fastlag's view", grab(r"MEASURE \w+: fastlag up", r"fastlag status (\w+) ms")),
    ("start -> all members distributing, OVS's view", grab(r"MEASURE \w+: fastlag up", r"OVS lacp/show .*? (\w+) ms \(")),
    ("link down -> member out of fastlag's table", grab("MEASURE traffic: link down", r"after (\d+) ms")),
    ("link down: loss window, fastlag -> OVS (flows on the member)", grab("MEASURE traffic: link down", r"flows of m1: ([\d.]+) ms blackout")),
    ("link down: loss window, OVS -> fastlag", grab("MEASURE traffic: link down", r"reverse .*?blackout ([\d.]+) ms")),
    ("LACP timeout (partner silent) -> member out of distribution", grab("MEASURE silent_partner: LACPDUs dropped", r"after (\d+) ms")),
    ("LACP timeout: loss window, fastlag -> OVS", grab("MEASURE silent_partner: loss", r"forward .*?blackout ([\d.]+) ms")),
    ("LACP timeout: loss window, OVS -> fastlag", grab("MEASURE silent_partner: loss", r"reverse .*?blackout ([\d.]+) ms")),
]
print("| event | median (min-max) |")
print("|---|---|")
for name, v in rows:
    print("| %s | %s |" % (name, fmt(v)))
def lost(i):
    v = []
    for l in lines:
        m = re.search(r"MEASURE drain: .*forward (\d+)/(\d+) and reverse (\d+)/(\d+) datagrams delivered", l)
        if m:
            g = [int(x) for x in m.groups()]
            v.append(g[2 * i + 1] - g[2 * i])
    return v
print("| member drain: datagrams lost, fastlag -> OVS (2,000/s) | %s |" % fmt(lost(0), "datagrams"))
print("| member drain: datagrams lost, OVS -> fastlag (2,000/s) | %s |" % fmt(lost(1), "datagrams"))
print("\n%d runs requested; raw MEASURE lines:" % int(sys.argv[2]))
for l in lines:
    print("  " + l)
PY
