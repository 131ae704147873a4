#!/usr/bin/env bash
# Forwarding through a 2-member 802.3ad (LACP) bond on each side: fastlag vs dpdk-testpmd io
# forwarding through DPDK's bonding PMD (mode 4), same links, same generator, same cores,
# in one invocation.
#
#   generator (CPU 0)                         forwarder (worker on CPU 1)
#   bond 4 = memif0 + memif1  <== m0, m1 ==>  bondA  ┐ xconnect
#   bond 5 = memif2 + memif3  <== m2, m3 ==>  bondB  ┘
#
# Four memif links; the forwarder owns the memif servers and starts first.
# - reference: dpdk-testpmd -i, io forwarding, --vdev net_bonding0/1 mode=4 xmit_policy=l34
#   over its four memif servers, --portmask for the bond ports, --record-core-cycles
#   --record-burst-stats, --rxq=1 --txq=2 (the memif rule below).
# - fastlag: ports m0..m3, [[bond]] bondA = [m0, m1], bondB = [m2, m3] (802.3ad,
#   hash = "layer3+4"), [forward] xconnect bondA <-> bondB, --status and --report files.
# Generator (GEN, the same for both forwarders):
# - GEN=testpmd (default): dpdk-testpmd -i flowgen (64-byte frames, 1024 flows) over two
#   mode-4 bonds (xmit_policy=l34) of memif clients, --rxq=2 --txq=1. It is interactive
#   and starts its ports in stages (members, then each bond): started all at once, the
#   bonding PMD restarts each member a few ms after it connected, and a memif server caught
#   mid-handshake may drop the link for good or crash (seen with fastlag as the server).
#   LIMITATION: testpmd makes min(rxq, txq) streams per port, so with --txq=1 it polls
#   only RX queue 0. fastlag sends its LACPDUs from TX queue 1, which memif delivers to
#   the generator's RX queue 1, so testpmd's bonds never hear fastlag and fastlag never
#   aggregates; --txq=2 is refused by fastlag's memif server ("Invalid ring index": a
#   client may not have more TX queues than the server has RX queues). The script detects
#   this and reports fastlag as "not converged" with both sides' view.
# - GEN=peer: two fastlag-bond-peer processes (DPDK's bonding PMD in mode 4, l34, one bond
#   each, polling both RX queues of every member, sending 256 UDP flows of 60-byte frames at
#   PEER_RATE frames/s each), both pinned to the generator CPU. It aggregates with both
#   forwarders. The rate is capped (default 500000 per peer) because the two peers take
#   turns on one CPU: unthrottled, a descheduled peer cannot drain its RX rings and ~85% of
#   what the forwarder sends is dropped at its TX; offered load, not a forwarder, then sets
#   Mpps, and cycles/packet are at small bursts (higher than at full load).
#
# Per run and forwarder: start the forwarder, then the generator; wait until LACP has
# every member distributing as the generator sees it (actor and partner DISTRIBUTING on
# all four members; for fastlag also its --status); kick the bonded testpmd forwarder with
# `stop` / `start tx_first` meanwhile (its io engine calls tx_burst, where the bonding PMD
# sends LACPDUs, only after a non-empty rx: it deadlocks otherwise). Then 1 s warm-up and
# a SECONDS_PER_RUN window: the generator's received packets per second (back through the
# forwarder) sampled every second; the forwarder's busy TSC cycles over the window (testpmd
# --record-core-cycles from a stop/start around the window; fastlag from --status
# snapshots) per forwarded packet, its drops, its share of empty RX polls (which side
# limited), and how each bond's members split the traffic. A window with a second without
# traffic is reported as stalled and left out of the medians. The forwarder stops first
# (its counters go when the memif peer disconnects), then the generator.
#
# Usage: benches/bond.sh [SECONDS_PER_RUN=8] [RUNS=3]     (root; after scripts/setup.sh)
# Environment: GEN=testpmd|peer, GEN_CPU=0, FWD_CPU=1, CONVERGE_S=20 (LACP wait per run),
#   PEER_RATE=500000 (GEN=peer, frames/s per peer), FORWARDERS="testpmd fastlag" (which to run),
#   KEEP=1 (keep the work directory and logs).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-8}
RUNS=${2:-3}
GEN=${GEN:-testpmd}
GEN_CPU=${GEN_CPU:-0}
FWD_CPU=${FWD_CPU:-1}
CONVERGE_S=${CONVERGE_S:-20}
PEER_RATE=${PEER_RATE:-500000}
FORWARDERS=${FORWARDERS:-testpmd fastlag}
case "$SECS$RUNS$CONVERGE_S$PEER_RATE" in *[!0-9]*) echo "usage: $0 [SECONDS_PER_RUN] [RUNS]" >&2; exit 2 ;; esac
[ "$SECS" -ge 3 ] && [ "$RUNS" -ge 1 ] || { echo "SECONDS_PER_RUN >= 3, RUNS >= 1" >&2; exit 2; }
case "$GEN" in testpmd | peer) ;; *) echo "GEN must be testpmd or peer" >&2; exit 2 ;; esac
command -v dpdk-testpmd >/dev/null || { echo "dpdk-testpmd missing: run scripts/setup.sh" >&2; exit 1; }

FASTLAG=$PWD/target/release/fastlag
PEER=$PWD/target/release/fastlag-bond-peer
if [ ! -x "$FASTLAG" ] || [ ! -x "$PEER" ] || ! "$FASTLAG" run --help 2>/dev/null | grep -q -- --status; then
  cargo build --release --quiet
fi

W=$(mktemp -d /tmp/fastlag-bond.XXXXXX)
PIDS=()
FDS=()
# Every process this script starts has $W in its command line: a PID that was reused by
# somebody else's process after ours exited is left alone.
ours() { grep -qaF "$W" "/proc/$1/cmdline" 2>/dev/null; }
cleanup() {
  local fd p
  for fd in "${FDS[@]}"; do eval "exec $fd>&-" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do ours "$p" && kill -INT "$p" 2>/dev/null || true; done
  sleep 1
  for p in "${PIDS[@]}"; do ours "$p" && kill -KILL "$p" 2>/dev/null || true; done
  if [ -n "${KEEP:-}" ]; then echo "kept $W" >&2; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM # bash would otherwise go on after a child that ignored the signal
trap '' PIPE # a testpmd that died must not take the script with it; it is noticed below

MF="socket-abstract=no"
vdevs() { # role
  local i
  for i in 0 1 2 3; do printf -- '--vdev=net_memif%s,role=%s,id=0,socket=%s/m%s.sock,%s ' "$i" "$1" "$W" "$i" "$MF"; done
}
# net_bonding's member devarg: `slave` on DPDK 22.11, `member` from 23.11.
M=slave
pkg-config --atleast-version 23.11 libdpdk 2>/dev/null && M=member
BONDS="--vdev=net_bonding0,mode=4,$M=net_memif0,$M=net_memif1,xmit_policy=l34 --vdev=net_bonding1,mode=4,$M=net_memif2,$M=net_memif3,xmit_policy=l34"

# ---- helpers (parsing testpmd text and fastlag / peer JSON) ----
cat >"$W/h.py" <<'PY'
import json, re, sys

def tp_lacp(text):
    """`show bonding lacp info 4` + `5`: every member's actor and partner DISTRIBUTING."""
    members, cur, who = [], None, None
    for line in text.splitlines():
        m = re.search(r"Slave Port: (\d+)", line)
        if m:
            cur = {"port": m.group(1)}
            members.append(cur)
        elif "Actor detail info" in line:
            who = "actor"
        elif "Partner detail info" in line:
            who = "partner"
        elif "port state:" in line and cur is not None and who:
            cur[who] = line.split("port state:", 1)[1].strip()
    done = [m for m in members if "partner" in m]
    ok = len(done) == 4 and all("DISTRIBUTING" in m["actor"] and "DISTRIBUTING" in m["partner"] for m in done)
    desc = "; ".join("member %s actor %s, partner %s" % (m["port"], m.get("actor", "?"), m.get("partner", "?")) for m in done)
    return ok, desc or "no bonding lacp info"

def tp_pps(text):
    """Per-second `show port stats 4` / `5`: one summed Rx-pps per second."""
    per, port = {}, None
    for line in text.splitlines():
        m = re.search(r"NIC statistics for port (\d+)", line)
        if m:
            port = m.group(1)
        m = re.search(r"Rx-pps:\s+(\d+)", line)
        if m and port is not None:
            per.setdefault(port, []).append(int(m.group(1)))
            port = None
    a, b = per.get("4", []), per.get("5", [])
    return [x + y for x, y in zip(a, b)]

def tp_fwd(text):
    """Forwarder end of window: `show port stats all` then `stop`."""
    st, port = {}, None
    for line in text.splitlines():
        m = re.search(r"NIC statistics for port (\d+)", line)
        if m:
            port = int(m.group(1)); st[port] = {}
            continue
        m = re.search(r"^\s*RX-packets:\s+(\d+)\s+RX-missed", line)
        if m and port is not None:
            st[port]["rx"] = int(m.group(1))
        m = re.search(r"^\s*TX-packets:\s+(\d+)\s+TX-errors", line)
        if m and port is not None:
            st[port]["tx"] = int(m.group(1))
    cyc = re.findall(r"CPU cycles/packet=([\d.]+) \(total cycles=(\d+) / total \w+ packets=(\d+)\)", text)
    acc = text.split("Accumulated forward statistics")[-1] if "Accumulated forward statistics" in text else ""
    rx = re.search(r"RX-packets:\s+(\d+)", acc)
    tx = re.search(r"TX-packets:\s+(\d+)\s+TX-dropped:\s+(\d+)", acc)
    empty = [int(x) for x in re.findall(r"RX-bursts : \d+ \[(\d+)% of 0 pkts", text)]
    r = {"cyc_fwd": "nan", "cyc_rx": "nan", "drop": "nan", "empty": "nan"}
    if cyc and tx and rx:
        own, cycles, pk = cyc[-1]
        rxp, txp, txd = int(rx.group(1)), int(tx.group(1)), int(tx.group(2))
        r["cyc_rx"] = "%.1f" % float(own)
        if txp:
            r["cyc_fwd"] = "%.1f" % (int(cycles) / txp)
        if rxp:
            r["drop"] = "%.2f" % (100.0 * (rxp - txp) / rxp)
    if empty:
        r["empty"] = "%.0f" % (sum(empty[-2:]) / len(empty[-2:]))
    r["split"] = split([st.get(i, {}) for i in range(4)])
    return r

def split(ms):
    """Members 0/1 belong to one bond, 2/3 to the other: each member's share, in / out."""
    def pair(a, b):
        t = a + b
        return "%d/%d" % (round(100.0 * a / t), 100 - round(100.0 * a / t)) if t else "-/-"
    g = lambda i, k: ms[i].get(k, 0)
    return "in:%s,%s;out:%s,%s" % (pair(g(0, "rx"), g(1, "rx")), pair(g(2, "rx"), g(3, "rx")),
                                   pair(g(0, "tx"), g(1, "tx")), pair(g(2, "tx"), g(3, "tx")))

def fl_converged(path):
    try:
        s = json.load(open(path))
    except Exception:
        return False, "no status yet"
    ms = [(b["name"], m) for b in s.get("bonds", []) for m in b["members"]]
    ok = len(ms) == 4 and all(m["distributing"] for _, m in ms)
    desc = "; ".join("%s %s: %s" % (b, m["name"], "distributing" if m["distributing"] else m.get("reason") or "not distributing") for b, m in ms)
    return ok, desc

def fl_window(p0, p1):
    s0, s1 = json.load(open(p0)), json.load(open(p1))
    w0, w1 = s0["workers"][0], s1["workers"][0]
    d = {k: w1[k] - w0[k] for k in ("busy_cycles", "rx", "tx", "busy_polls", "idle_polls")}
    r = {"cyc_fwd": "nan", "cyc_rx": "nan", "drop": "nan", "empty": "nan"}
    if d["tx"] > 0:
        r["cyc_fwd"] = "%.1f" % (d["busy_cycles"] / d["tx"])
    if d["rx"] > 0:
        r["cyc_rx"] = "%.1f" % (d["busy_cycles"] / d["rx"])
        r["drop"] = "%.2f" % (100.0 * (d["rx"] - d["tx"]) / d["rx"])
    polls = d["busy_polls"] + d["idle_polls"]
    if polls:
        r["empty"] = "%.0f" % (100.0 * d["idle_polls"] / polls)
    p0 = {p["name"]: p["pmd"] for p in s0["ports"]}
    ms = []
    for n in ("m0", "m1", "m2", "m3"):
        a = next(p["pmd"] for p in s1["ports"] if p["name"] == n)
        ms.append({"rx": a["rx_packets"] - p0[n]["rx_packets"], "tx": a["tx_packets"] - p0[n]["tx_packets"]})
    r["split"] = split(ms)
    return r

def peer_converged(paths):
    ok, desc = True, []
    for p in paths:
        try:
            s = json.load(open(p))
        except Exception:
            return False, "no peer status yet"
        ms = s.get("members", [])
        if len(ms) != 2:
            ok = False
        for m in ms:
            l = m.get("lacp") or {}
            good = l.get("actor", {}).get("distributing") and l.get("partner", {}).get("distributing")
            ok = ok and bool(good)
            desc.append("%s actor %s, partner %s" % (m["name"], l.get("actor", {}).get("state_names", l.get("error", "?")),
                                                     l.get("partner", {}).get("state_names", "?")))
    return ok, "; ".join(desc)

def peer_pps(path):
    """Lines 'uptime_ms_a frames_a uptime_ms_b frames_b', one per second: summed rates."""
    rows = [list(map(int, l.split())) for l in open(path) if len(l.split()) == 4]
    out, a = [], rows[0] if rows else None
    for b in rows[1:]:
        # A status file not rewritten since the last sample (its writer starved) merges
        # into the next interval instead of reading as a second without traffic.
        if b[0] <= a[0] or b[2] <= a[2]:
            continue
        ra = (b[1] - a[1]) / (b[0] - a[0]) * 1000
        rb = (b[3] - a[3]) / (b[2] - a[2]) * 1000
        out.append(int(ra + rb))
        a = b
    return out

def peer_sample(paths):
    vals = []
    for p in paths:
        s = json.load(open(p))
        vals += [s["uptime_ms"], s["traffic"]["rx_flow_frames"]]
    return " ".join(map(str, vals))

def window_line(name, samples, r):
    """One result line: name status mpps cyc_fwd cyc_rx drop% empty% stalled_s split."""
    # A second below 10% of the run's best second had (next to) no traffic: a stall.
    peak = max(samples) if samples else 0
    zero = sum(1 for x in samples if x < 0.1 * peak) if peak > 0 else len(samples)
    status = "ok" if samples and zero == 0 else "stalled"
    mpps = "nan"
    if samples:
        v = sorted(samples)
        mpps = "%.3f" % (v[(len(v) - 1) // 2] / 1e6)
    return "%s %s %s %s %s %s %s %d/%d %s" % (name, status, mpps, r["cyc_fwd"], r["cyc_rx"], r["drop"], r["empty"],
                                             zero, len(samples), r.get("split", "-"))

cmd = sys.argv[1]
if cmd == "tp-lacp":
    ok, desc = tp_lacp(sys.stdin.read()); print(desc); sys.exit(0 if ok else 1)
elif cmd == "fl-converged":
    ok, desc = fl_converged(sys.argv[2]); print(desc); sys.exit(0 if ok else 1)
elif cmd == "peer-converged":
    ok, desc = peer_converged(sys.argv[2:]); print(desc); sys.exit(0 if ok else 1)
elif cmd == "peer-sample":
    print(peer_sample(sys.argv[2:]))
elif cmd == "line":
    # line NAME GEN_KIND SAMPLES_SOURCE FWD_KIND FWD_ARGS...
    name, gk, src, fk = sys.argv[2:6]
    # testpmd: the first `show port stats` pair covers the time before the window
    samples = tp_pps(open(src).read())[1:] if gk == "testpmd" else peer_pps(src)
    r = tp_fwd(open(sys.argv[6]).read()) if fk == "testpmd" else fl_window(sys.argv[6], sys.argv[7])
    print(window_line(name, samples, r))
PY
H() { python3 "$W/h.py" "$@"; }

# ---- interactive testpmd over a FIFO ----
tp_launch() { # NAME LOG ARGS... ; sets NAME_PID, NAME_FD
  local name=$1 log=$2 fd pid
  shift 2
  rm -f "$W/$name.in"
  mkfifo "$W/$name.in"
  stdbuf -oL -eL dpdk-testpmd "$@" <"$W/$name.in" >"$log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  disown "$pid" # testpmd sometimes crashes when its memif peer goes away first; not our concern
  exec {fd}>"$W/$name.in"
  FDS+=("$fd")
  printf -v "${name}_PID" %s "$pid"
  printf -v "${name}_FD" %s "$fd"
}
tp() { # FD COMMAND...
  local fd=$1 c
  shift
  for c; do printf '%s\n' "$c" >&"$fd" 2>/dev/null || true; done
}
log_size() { stat -c %s "$1"; }
since() { tail -c +$(($2 + 1)) "$1"; } # LOG OFFSET
wait_for() { # SECONDS COMMAND... : poll every 0.1 s
  local n=$(($1 * 10))
  shift
  while [ "$n" -gt 0 ]; do "$@" && return 0; sleep 0.1; n=$((n - 1)); done
  return 1
}
alive() { ours "$1"; }
stop_pid() { # PID [SECONDS]: SIGINT, then SIGKILL
  ours "$1" || return 0
  kill -INT "$1" 2>/dev/null || true
  wait_for "${2:-10}" eval "! ours $1" || kill -KILL "$1" 2>/dev/null || true
}
tp_quit() { # NAME
  local pid fd
  pid=${1}_PID
  fd=${1}_FD
  tp "${!fd}" "stop" "quit"
  wait_for 10 eval "! ours ${!pid}" || stop_pid "${!pid}" 5
  eval "exec ${!fd}>&-" 2>/dev/null || true
}

# ---- generator ----
gen_start() { # RUN-TAG
  GLOG=$W/gen-$1.log
  if [ "$GEN" = testpmd ]; then
    # shellcheck disable=SC2046,SC2086
    tp_launch G "$GLOG" --lcores "0@$GEN_CPU,1@$GEN_CPU" --main-lcore 0 --no-pci --no-huge -m 1024 --no-shconf \
      --file-prefix=flbond-gen-$$ $(vdevs client) $BONDS -- -i --disable-device-start \
      --forward-mode=flowgen --nb-cores=1 --rxq=2 --txq=1 --portmask=0x30
    # Members first (each connects once), then each bond (it restarts its members: a clean
    # reconnect after the handshake), then traffic.
    tp "$G_FD" "port start 0" "port start 1" "port start 2" "port start 3"
    sleep 2
    tp "$G_FD" "port start 4"
    sleep 1
    tp "$G_FD" "port start 5"
    sleep 1
    tp "$G_FD" "start"
  else
    local side
    for side in A B; do
      local a=0 b=1 n=0 fp
      [ "$side" = B ] && a=2 b=3 n=1
      fp=flbond-peer$side-$$
      "$PEER" --member "net_memif$a,role=client,id=0,socket=$W/m$a.sock,$MF" \
        --member "net_memif$b,role=client,id=0,socket=$W/m$b.sock,$MF" --bond-name "net_bonding$n" \
        --xmit-policy l34 --rx-queues 2 --tx-queues 1 --send-flows 256 --rate "$PEER_RATE" --poll-us 1 \
        --lcores "0@$GEN_CPU" --file-prefix "$fp" --status "$W/peer$side.json" --status-interval-ms 20 \
        >"$W/gen-$1-$side.log" 2>&1 </dev/null &
      local pid=$!
      PIDS+=("$pid")
      disown "$pid"
      printf -v "PEER_${side}_PID" %s "$pid"
    done
  fi
}
gen_alive() {
  if [ "$GEN" = testpmd ]; then alive "$G_PID"; else alive "$PEER_A_PID" && alive "$PEER_B_PID"; fi
}
gen_lacp() { # prints the generator's view; status 0 when every member distributes both ways
  if [ "$GEN" = testpmd ]; then
    local off
    off=$(log_size "$GLOG")
    tp "$G_FD" "show bonding lacp info 4" "show bonding lacp info 5"
    sleep 0.4
    since "$GLOG" "$off" | H tp-lacp
  else
    H peer-converged "$W/peerA.json" "$W/peerB.json"
  fi
}
SAMPLES=""
gen_window_begin() {
  if [ "$GEN" = testpmd ]; then
    SAMPLES=$W/samples-$RUN_TAG.txt
    GOFF=$(log_size "$GLOG")
    tp_sample
  else
    SAMPLES=$W/samples-$RUN_TAG.txt
    H peer-sample "$W/peerA.json" "$W/peerB.json" >"$SAMPLES"
  fi
}
# One sample, synchronously: testpmd computes Rx-pps over the time since the previous
# `show port stats`, so commands must not queue up while its main thread is starved (two
# processed back to back would read as a second without traffic).
tp_sample() {
  local n
  n=$(since "$GLOG" "$GOFF" | grep -c "NIC statistics for port 5" || true)
  tp "$G_FD" "show port stats 4" "show port stats 5"
  wait_for 10 eval "[ \$(since '$GLOG' '$GOFF' | grep -A8 'NIC statistics for port 5' | grep -c 'Rx-pps') -gt $n ]" || true
}
gen_window_tick() {
  if [ "$GEN" = testpmd ]; then
    tp_sample
  else
    H peer-sample "$W/peerA.json" "$W/peerB.json" >>"$SAMPLES" || true
  fi
}
gen_window_end() {
  if [ "$GEN" = testpmd ]; then
    sleep 0.3
    since "$GLOG" "$GOFF" >"$SAMPLES"
  fi
}
gen_stop() {
  if [ "$GEN" = testpmd ]; then tp_quit G; else
    stop_pid "$PEER_A_PID"
    stop_pid "$PEER_B_PID"
  fi
}

# Waits until LACP has every member distributing; KICK is run before each check (the
# bonded testpmd forwarder needs it). Returns 1 on timeout, with WHY set.
converge() { # KICK-FUNCTION EXTRA-CHECK-FUNCTION
  local end=$((SECONDS + CONVERGE_S)) g="" f=""
  while [ "$SECONDS" -lt "$end" ]; do
    "$1"
    if ! gen_alive; then WHY="generator exited (see its log)"; return 1; fi
    if ! fwd_alive; then WHY="forwarder exited (see its log)"; return 1; fi
    local gok=1 fok=1
    g=$(gen_lacp) || gok=0
    f=$("$2") || fok=0
    [ "$gok" = 1 ] && [ "$fok" = 1 ] && return 0
    sleep 0.5
  done
  WHY="generator: ${g:-?}${f:+ | forwarder: $f}"
  return 1
}
no_kick() { :; }

measure_window() { # fills the generator samples; runs BEGIN/END hooks of the forwarder
  sleep 1 # warm-up
  "$1"
  gen_window_begin
  local i
  for i in $(seq "$SECS"); do
    sleep 1
    gen_window_tick
  done
  "$2"
  gen_window_end
}

wait_sockets() {
  wait_for 20 eval "[ -S '$W/m0.sock' ] && [ -S '$W/m1.sock' ] && [ -S '$W/m2.sock' ] && [ -S '$W/m3.sock' ]" || {
    echo "forwarder did not create its sockets" >&2
    return 1
  }
}

# ---- reference: testpmd io through net_bonding mode 4 ----
ref_kick() { tp "$F_FD" "stop" "start tx_first"; }
ref_lacp() {
  local off
  off=$(log_size "$FLOG")
  tp "$F_FD" "show bonding lacp info 4" "show bonding lacp info 5"
  sleep 0.4
  since "$FLOG" "$off" | H tp-lacp >/dev/null || { echo "testpmd bonds not distributing"; return 1; }
}
ref_begin() { tp "$F_FD" "stop" "clear port stats all" "start"; }
ref_end() {
  FOFF=$(log_size "$FLOG")
  tp "$F_FD" "show port stats all" "stop"
}
fwd_alive() { alive "$FWD_PID"; }

run_testpmd() { # run
  RUN_TAG=testpmd-$1
  rm -f "$W"/*.sock
  FLOG=$W/fwd-$RUN_TAG.log
  # shellcheck disable=SC2046,SC2086
  tp_launch F "$FLOG" --lcores "0@$GEN_CPU,1@$FWD_CPU" --main-lcore 0 --no-pci --no-huge -m 1024 --no-shconf \
    --file-prefix=flbond-fwd-$$ $(vdevs server) $BONDS -- -i --forward-mode=io --nb-cores=1 \
    --rxq=1 --txq=2 --portmask=0x30 --record-core-cycles --record-burst-stats
  FWD_PID=$F_PID
  wait_sockets
  wait_for 30 grep -q "testpmd>" "$FLOG" || { echo "reference forwarder did not start" >&2; tail -20 "$FLOG" >&2; return 1; }
  gen_start "$RUN_TAG"
  local line
  if converge ref_kick ref_lacp; then
    measure_window ref_begin ref_end
    # the stop summary ends with "Done."
    wait_for 15 eval "since '$FLOG' '$FOFF' | grep -A30 'Accumulated forward statistics' | grep -q '^Done'" || true
    since "$FLOG" "$FOFF" >"$W/fwdend-$RUN_TAG.txt"
    line=$(H line testpmd "$GEN" "$SAMPLES" testpmd "$W/fwdend-$RUN_TAG.txt")
  else
    line="testpmd noconv nan nan nan nan nan 0/0 - $WHY"
  fi
  tp_quit F # forwarder first
  gen_stop
  echo "$line"
}

# ---- fastlag ----
fl_check() { H fl-converged "$W/status.json"; }
fl_begin() { cp "$W/status.json" "$W/s0.json"; }
fl_end() { cp "$W/status.json" "$W/s1.json"; }

run_fastlag() { # run
  RUN_TAG=fastlag-$1
  rm -f "$W"/*.sock "$W/status.json"
  {
    echo "[dataplane]"
    echo "control_core = $GEN_CPU"
    echo "worker_cores = [$FWD_CPU]"
    echo "hugepages = false"
    echo "memory_mb = 512"
    echo "file_prefix = \"flbond-fl-$$\""
    for i in 0 1 2 3; do
      printf '[[port]]\nname = "m%s"\ndevice = "net_memif%s,role=server,id=0,socket=%s/m%s.sock,%s"\n' "$i" "$i" "$W" "$i" "$MF"
    done
    printf '[[bond]]\nname = "bondA"\nmembers = ["m0", "m1"]\nhash = "layer3+4"\n'
    printf '[[bond]]\nname = "bondB"\nmembers = ["m2", "m3"]\nhash = "layer3+4"\n'
    printf '[forward]\nmode = "xconnect"\npairs = [["bondA", "bondB"]]\n'
  } >"$W/fastlag.toml"
  "$FASTLAG" --log-level info run --config "$W/fastlag.toml" --status "$W/status.json" \
    --report "$W/report-$RUN_TAG.json" >"$W/fwd-$RUN_TAG.log" 2>&1 </dev/null &
  FWD_PID=$!
  PIDS+=("$FWD_PID")
  disown "$FWD_PID"
  wait_sockets
  wait_for 20 test -s "$W/status.json" || { echo "fastlag did not start" >&2; tail -20 "$W/fwd-$RUN_TAG.log" >&2; return 1; }
  gen_start "$RUN_TAG"
  local line
  if converge no_kick fl_check; then
    measure_window fl_begin fl_end
    line=$(H line fastlag "$GEN" "$SAMPLES" fastlag "$W/s0.json" "$W/s1.json")
  else
    line="fastlag noconv nan nan nan nan nan 0/0 - $WHY"
  fi
  stop_pid "$FWD_PID" 15 # forwarder first: SIGINT writes the report
  gen_stop
  if [ ! -s "$W/report-$RUN_TAG.json" ]; then
    line="$line [no --report: fastlag did not exit cleanly, see fwd-$RUN_TAG.log]"
  elif ! python3 -c "import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if r['pool']['available']==r['pool']['size'] else 1)" "$W/report-$RUN_TAG.json"; then
    line="$line [report: mbufs missing from the pool]"
  fi
  echo "$line"
}

case "$GEN" in
  testpmd) GDESC="testpmd flowgen over 2 net_bonding mode-4 bonds (l34), 64-byte frames" ;;
  peer) GDESC="2x fastlag-bond-peer (net_bonding mode 4, l34, 256 UDP flows), 60-byte frames, $PEER_RATE/s each" ;;
esac
echo "# bond: 2x 802.3ad bond of 2 memif members each side, 1 forwarding core (CPU $FWD_CPU)"
echo "# generator: $GDESC (CPU $GEN_CPU); $SECS s x $RUNS runs"
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(uname -n) $(nproc) CPUs, DPDK $(pkg-config --modversion libdpdk 2>/dev/null || echo '?')"
echo "# per run: forwarder status Mpps cycles/fwd-pkt cycles/rx-pkt drop% empty-polls% zero-seconds member-split [why]"
RES=$W/results
: >"$RES"
for r in $(seq "$RUNS"); do
  for fwd in $FORWARDERS; do
    # Not in a pipeline: the processes a run starts must be known to this shell's cleanup.
    "run_$fwd" "$r" >"$W/line"
    tee -a "$RES" <"$W/line"
  done
done
GEN="$GEN" python3 - "$RES" <<'PY'
import os, sys, statistics as st
rows = [l.split(None, 9) for l in open(sys.argv[1]) if l.strip()]
def ok(name):
    return [r for r in rows if r[0] == name and r[1] == "ok"]
def col(name, i):
    return [float(r[i]) for r in ok(name) if r[i] != "nan"]
def fmt(v, p=2):
    return ("%.*f (%.*f-%.*f)" % (p, st.median(v), p, min(v), p, max(v))) if v else "n/a"
def limited(name):
    e = col(name, 6)
    if not e:
        return "n/a"
    m = st.median(e)
    return ("generator (forwarder RX polls %.0f%% empty)" if m >= 20 else "forwarder (RX polls %.0f%% empty)") % m
def runs(name):
    all_ = [r for r in rows if r[0] == name]
    n = {s: sum(1 for r in all_ if r[1] == s) for s in ("ok", "stalled", "noconv")}
    s = "%d/%d ok" % (n["ok"], len(all_))
    if n["stalled"]:
        s += ", %d stalled" % n["stalled"]
    if n["noconv"]:
        s += ", %d LACP not converged" % n["noconv"]
    return s
label = {"testpmd": "dpdk-testpmd io + net_bonding mode 4", "fastlag": "fastlag 802.3ad xconnect"}
print()
print("| forwarder | Mpps at generator, median (min-max) | busy cycles/packet, median (min-max) | drops % | runs | limited by |")
print("|---|---|---|---|---|---|")
for n in ("testpmd", "fastlag"):
    d = col(n, 5)
    print("| %s | %s | %s | %s | %s | %s |" % (label[n], fmt(col(n, 2), 3), fmt(col(n, 3), 1),
                                            "%.2f" % st.median(d) if d else "n/a", runs(n), limited(n)))
t, f = col("testpmd", 2), col("fastlag", 2)
tc, fc = col("testpmd", 3), col("fastlag", 3)
print()
if t and f and tc and fc:
    print("ratio fastlag/reference: Mpps %.2f, cycles/packet %.2f (below 1 = fastlag spends fewer cycles per packet)" % (
        st.median(f) / st.median(t), st.median(fc) / st.median(tc)))
else:
    print("ratio fastlag/reference: n/a (a side has no clean run)")
for r in rows:
    if r[1] == "noconv":
        print("\n%s did not converge: %s" % (r[0], r[9] if len(r) > 9 else "?"))
        if r[0] == "fastlag" and os.environ.get("GEN") == "testpmd" and "DEFAULTED" in (r[9] if len(r) > 9 else ""):
            print("  (testpmd with --txq=1 polls only RX queue 0; fastlag's LACPDUs leave from its TX queue 1 and "
                  "arrive on the generator's RX queue 1, so its bonds never hear fastlag. GEN=peer polls both.)")
        break
for r in rows:
    if r[1] == "stalled":
        print("%s run stalled (left out of the medians): in %s of the window's seconds the generator got "
              "less than 10%% of the run's best second (%s Mpps median)" % (r[0], r[7], r[2]))
print("cycles/packet: busy TSC cycles of the forwarding core in the window / packets it forwarded "
      "(testpmd: --record-core-cycles; fastlag: its worker counters)")
print("(with 2 CPUs the generator's core limits Mpps; cycles/packet compares the forwarders; machine shared, numbers noisy)")
PY
