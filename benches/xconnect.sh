#!/usr/bin/env bash
# xconnect forwarding: fastlag vs dpdk-testpmd io forwarding, same links, same generator,
# same cores, in one invocation. Two memif links; the forwarder (memif server) runs its
# single worker on CPU 1, the generator (testpmd flowgen, 64-byte frames, memif client) on
# CPU 0. Prints Mpps seen by the generator (median of per-second samples) and the
# forwarder's busy cycles per packet (testpmd --record-core-cycles; fastlag's own count,
# measured the same way), median and min-max over RUNS runs, and fastlag/testpmd ratios.
#
# Usage: benches/xconnect.sh [SECONDS_PER_RUN=8] [RUNS=3]     (root; after scripts/setup.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-8}
RUNS=${2:-3}
GEN_CPU=${GEN_CPU:-0}
FWD_CPU=${FWD_CPU:-1}
cargo build --release --quiet --workspace --bins
FASTLAG=$PWD/target/release/fastlag
W=$(mktemp -d /tmp/fastlag-bench.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  sleep 1
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  [ -n "${KEEP:-}" ] && echo "kept $W" >&2 || rm -rf "$W"
}
trap cleanup EXIT

MF="socket-abstract=no"
vdevs() { # role
  echo "--vdev=net_memif0,role=$1,id=0,socket=$W/m0.sock,$MF --vdev=net_memif1,role=$1,id=0,socket=$W/m1.sock,$MF"
}

wait_sockets() {
  for _ in $(seq 200); do [ -S "$W/m0.sock" ] && [ -S "$W/m1.sock" ] && return 0; sleep 0.05; done
  echo "forwarder did not create its sockets" >&2; return 1
}

start_gen() { # log
  # shellcheck disable=SC2046
  dpdk-testpmd --lcores "0@$GEN_CPU,1@$GEN_CPU" --main-lcore 0 --no-pci --no-huge -m 1024 --no-shconf \
    --file-prefix=flbench-gen $(vdevs client) -- --forward-mode=flowgen --nb-cores=1 \
    --stats-period 1 >"$1" 2>&1 </dev/null &
  GEN=$!; PIDS+=("$GEN")
  # testpmd as a memif client sometimes crashes when its server goes away first; that is
  # after the measurement, so keep bash from reporting it.
  disown "$GEN"
  # Measure from the first second in which frames came back.
  for _ in $(seq 600); do
    awk '/Rx-pps:/ && $2 > 0 { f = 1 } END { exit !f }' "$1" && return 0
    sleep 0.05
  done
  echo "generator did not get frames back:" >&2; tail -20 "$1" >&2; return 1
}

stop() { # pid
  kill -INT "$1" 2>/dev/null || true
  for _ in $(seq 200); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.05; done
  kill -KILL "$1" 2>/dev/null || true
}

# Median of per-second Rx-pps sums (two ports), skipping the first and last second.
gen_mpps() {
  awk '/Rx-pps:/ { s += $2; n++; if (n % 2 == 0) { if (s > 0) print s; s = 0 } }' "$1" | tail -n +2 | head -n -1 |
    sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else printf "%.3f\n", v[int((NR + 1) / 2)] / 1e6 }'
}

run_testpmd() { # run
  rm -f "$W"/*.sock
  # shellcheck disable=SC2046
  dpdk-testpmd --lcores "0@$GEN_CPU,1@$FWD_CPU" --main-lcore 0 --no-pci --no-huge -m 1024 --no-shconf \
    --file-prefix=flbench-fwd $(vdevs server) -- --forward-mode=io --nb-cores=1 --stats-period 100 \
    --record-core-cycles --record-burst-stats >"$W/fwd-testpmd-$1.log" 2>&1 </dev/null &
  local fwd=$!; PIDS+=("$fwd"); disown "$fwd"
  wait_sockets
  start_gen "$W/gen-testpmd-$1.log"
  sleep "$SECS"
  stop "$fwd"   # forwarder first: its counters are lost once the memif peer disconnects
  stop "$GEN"
  local cyc
  cyc=$(grep -o 'CPU cycles/packet=[0-9.]*' "$W/fwd-testpmd-$1.log" | tail -1 | cut -d= -f2)
  echo "testpmd $(gen_mpps "$W/gen-testpmd-$1.log") ${cyc:-nan}"
}

run_fastlag() { # run
  rm -f "$W"/*.sock
  cat >"$W/fastlag.toml" <<CFG
[dataplane]
control_core = $GEN_CPU
worker_cores = [$FWD_CPU]
hugepages = false
memory_mb = 512
[[port]]
name = "p0"
device = "net_memif0,role=server,id=0,socket=$W/m0.sock,$MF"
[[port]]
name = "p1"
device = "net_memif1,role=server,id=0,socket=$W/m1.sock,$MF"
[forward]
mode = "xconnect"
pairs = [["p0", "p1"]]
CFG
  "$FASTLAG" --log-level warn run --config "$W/fastlag.toml" --report "$W/report-$1.json" \
    >"$W/fwd-fastlag-$1.log" 2>&1 </dev/null &
  local fwd=$!; PIDS+=("$fwd"); disown "$fwd"
  wait_sockets
  start_gen "$W/gen-fastlag-$1.log"
  sleep "$SECS"
  stop "$fwd"
  stop "$GEN"
  local cyc
  cyc=$(python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print('%.2f' % r['stats']['workers'][0]['cycles_per_packet'])" "$W/report-$1.json" 2>/dev/null || echo nan)
  echo "fastlag $(gen_mpps "$W/gen-fastlag-$1.log") $cyc"
}

echo "# xconnect, 64-byte frames, 2x memif, 1 forwarding core (CPU $FWD_CPU), generator testpmd flowgen (CPU $GEN_CPU)"
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(uname -n) $(nproc) CPUs, DPDK $(pkg-config --modversion libdpdk)"
RES=$W/results
: >"$RES"
for r in $(seq "$RUNS"); do
  run_testpmd "$r" | tee -a "$RES"
  run_fastlag "$r" | tee -a "$RES"
done
python3 - "$RES" <<'PY'
import sys, statistics as st
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
def col(name, i):
    return [float(r[i]) for r in rows if r[0] == name and r[i] != "nan"]
def fmt(v):
    return "%.2f (%.2f-%.2f)" % (st.median(v), min(v), max(v)) if v else "n/a"
print()
print("| forwarder | Mpps at generator, median (min-max) | busy cycles/packet, median (min-max) |")
print("|---|---|---|")
for n in ("testpmd", "fastlag"):
    print("| %s | %s | %s |" % ("dpdk-testpmd io" if n == "testpmd" else "fastlag xconnect", fmt(col(n, 1)), fmt(col(n, 2))))
t, f = col("testpmd", 1), col("fastlag", 1)
tc, fc = col("testpmd", 2), col("fastlag", 2)
if t and f:
    print("\nratio fastlag/testpmd: Mpps %.2f, cycles/packet %.2f (below 1 = fastlag spends fewer cycles)" % (
        st.median(f) / st.median(t), st.median(fc) / st.median(tc) if tc and fc else float("nan")))
print("(with 2 CPUs the generator's core limits Mpps; cycles/packet compares the forwarders)")
PY
