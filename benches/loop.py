#!/usr/bin/env python3
"""Closed-loop benchmark: fastlag's own per-packet cost next to DPDK's references, on the
same core, fed the same way, in one run. Run it through benches/loop.sh.

fastlag: `fastlag bench -s NAME` runs each scenario on the real runtime (one worker pinned
to --worker-core): loop scenarios circulate --frames frames for ever over in-process links
(xconnect, bonds back to back), pcap scenarios replay a pcap file for ever (net_pcap
infinite_rx) into the router, out to net_null. Busy cycles per packet: TSC cycles in polls
that returned packets / packets sent (the worker is never idle).

References, same core, same frame count or the same pcap file:
  testpmd-io, testpmd-mac   dpdk-testpmd over 2 self-looped net_ring ports, `start tx_first`
                            (frames/64 bursts per port), --record-core-cycles
  testpmd-bond-l34          dpdk-testpmd io through net_bonding mode 4 (l34) over 2
                            self-looped net_ring members; members carrying traffic reported
  l3fwd-lpm-v4/-v6          DPDK's l3fwd (LPM), built here from Debian's dpdk-doc examples
                            against the system DPDK (RX checksum offload request removed:
                            virtual PMDs have none), net_pcap infinite_rx in, net_null out;
                            cycles/packet = TSC / packets per second (the core never waits)

Instructions per packet (--callgrind): each fastlag scenario once more under
`valgrind --tool=callgrind`, counting only the worker (dataplane::worker::run) between the
bench's window_start and window_end markers: deterministic, so a change in cost shows on a
noisy machine. References are counted too: testpmd per thread (it is stripped), l3fwd's
lpm_main_loop between a zero and a dump of callgrind's counters, over packets counted by
telemetry in the same window.
"""

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from dpdk_env import bond_member_devarg

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FASTLAG = os.path.join(ROOT, "target/release/fastlag")
EXAMPLES = "/usr/share/dpdk/examples"

ROWS = [
    # (fastlag scenario, reference)
    ("xconnect", "testpmd-io"),
    ("bond-l34", "testpmd-bond-l34"),
    ("bond-l23", "testpmd-bond-l34"),
    ("bond-l2", "testpmd-bond-l34"),
    ("bond-l34-1", "testpmd-bond-l34"),
    ("active-backup", "bond-l34-1"),
    ("router-v4", "l3fwd-lpm-v4"),
    ("router-v6", "l3fwd-lpm-v6"),
    ("router-v4-bond-vlan", "router-v4"),
    ("router-v4-ecmp", "router-v4"),
]


class Fail(Exception):
    pass



def run(argv, timeout, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)


def cpu_model():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def fastlag(a, w, name):
    out = os.path.join(w, f"{name}.json")
    p = run([FASTLAG, "--log-level", "error", "bench", "-s", name, "--frames", str(a.frames),
             "--seconds", str(a.seconds), "--warmup", str(a.warmup),
             "--control-core", str(a.control_core), "--worker-core", str(a.worker_core),
             "--json", out], timeout=120)
    if p.returncode != 0 or not os.path.exists(out):
        raise Fail(f"fastlag bench {name}: {p.stdout}{p.stderr}")
    return json.load(open(out))


def callgrind(a, w, argv, toggle, window=True):
    """Instructions (Ir) of the function `toggle` and its callees: between the fastlag
    bench's window markers (window=True), else over the whole run."""
    cg = os.path.join(w, "cg.out")
    for f in os.listdir(w):
        if f.startswith("cg.out"):
            os.remove(os.path.join(w, f))
    vg = ["valgrind", "--tool=callgrind", "--fair-sched=yes", f"--callgrind-out-file={cg}",
          f"--toggle-collect={toggle}"]
    if window:
        vg += ["--dump-before=control::bench::window_start",
               "--dump-before=control::bench::window_end"]
    p = run(vg + argv, timeout=300)
    if p.returncode != 0:
        raise Fail(f"callgrind {' '.join(argv)}: {p.stderr[-2000:]}")
    part = cg + (".2" if window else "")
    for line in open(part):
        if line.startswith("summary:"):
            return int(line.split()[1]), p
    raise Fail(f"no summary in {part}")


def fastlag_ir(a, w, name):
    out = os.path.join(w, f"{name}.cg.json")
    argv = [FASTLAG, "--log-level", "error", "bench", "-s", name, "--frames", str(a.frames),
            "--packets", str(a.cg_packets), "--warmup", "0.2", "--converge", "120",
            "--control-core", str(a.control_core), "--worker-core", str(a.worker_core),
            "--json", out]
    ir, _ = callgrind(a, w, argv, "dataplane::worker::run")
    pk = json.load(open(out))["packets"]
    return ir / pk if pk else None


def testpmd(a, w, mode, bond=False, cg=False):
    """testpmd io/mac over 2 self-looped net_ring ports (or a mode-4 bond over them)."""
    bursts = max(1, a.frames // 64)
    pref = f"fl-loop-tp-{os.getpid()}"
    eal = ["-l", f"{a.control_core},{a.worker_core}", "--main-lcore", str(a.control_core),
           "--no-huge", "-m", "512", "--no-pci", "--file-prefix", pref, "--log-level=4",
           "--vdev", "net_ring0", "--vdev", "net_ring1"]
    app = [f"--forward-mode={mode}", "--nb-cores=1", "--record-core-cycles",
           "--total-num-mbufs=16384", "-i"]
    if bond:
        eal += ["--vdev", "net_bonding0,mode=4,{m}=net_ring0,{m}=net_ring1,xmit_policy=l34".format(m=bond_member_devarg())]
        app += ["--portmask=0x4", "--port-topology=loop"]
        # Mode 4 sends LACPDUs only inside tx_burst, which io forwarding calls only after
        # a non-empty rx: pump it with single bursts until it aggregates (PERF.md), then
        # fill the loop (one port: frames/32 bursts).
        script = []
        for _ in range(30):
            script += ["start tx_first", "sleep:0.15", "stop", "sleep:0.05"]
        script += [f"start tx_first {max(1, a.frames // 32)}", f"sleep:{a.warmup + a.seconds}",
                   "stop", "sleep:1", "show port stats 0", "show port stats 1", "sleep:0.5",
                   "quit"]
    else:
        script = [f"start tx_first {bursts}", f"sleep:{a.warmup + a.seconds}", "stop", "sleep:1",
                  "quit"]
    argv = ["dpdk-testpmd"] + eal + ["--"] + app
    if cg:
        # testpmd is stripped: no function to toggle on. Count per thread instead; the
        # forwarding lcore's thread is the one with the most instructions.
        argv = ["valgrind", "--tool=callgrind", "--fair-sched=yes", "--separate-threads=yes",
                f"--callgrind-out-file={os.path.join(w, 'tp.cg')}"] + argv
    # Output to a file, never a pipe nobody reads yet: testpmd blocks on a full pipe, and
    # its commands then run late (mode 4 needs its tx_burst pumping on time).
    log_path = os.path.join(w, f"testpmd-{mode}{'-bond' if bond else ''}.log")
    log = open(log_path, "w")
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT,
                         text=True)
    # The script's sleeps time the forwarding: send it only once testpmd reads commands
    # (its start-up, link checks included, can take longer than the measurement; "start"
    # and "stop" would then arrive together and forward almost nothing).
    ready = time.time() + (240 if cg else 30)
    while "testpmd> " not in open(log_path).read():
        if p.poll() is not None or time.time() > ready:
            p.kill()
            p.wait()
            raise Fail(f"testpmd {mode}: no prompt:\n{open(log_path).read()[-3000:]}")
        time.sleep(0.05)
    for cmd in script:
        if cmd.startswith("sleep:"):
            time.sleep(float(cmd[6:]) * (8 if cg else 1))
        else:
            p.stdin.write(cmd + "\n")
            p.stdin.flush()
    p.stdin.close()
    p.wait(timeout=120)
    log.close()
    out = open(log_path).read()
    # The last summary covers the whole session (the pumping bursts are a rounding error).
    m = re.findall(r"CPU cycles/packet=([\d.]+) \(total cycles=(\d+) / total \w+ packets=(\d+)\)"
                   r" at (\d+) MHz", out)
    if not m:
        raise Fail(f"testpmd {mode}: no cycles/packet in its output:\n{out[-3000:]}")
    cyc, total, pkts, mhz = m[-1]
    if int(pkts) < 1_000_000:
        raise Fail(f"testpmd {mode}{' bond' if bond else ''}: only {pkts} packets forwarded:\n"
                   f"{out[-3000:]}")
    res = {"busy_cycles_per_packet": float(cyc), "packets": int(pkts),
           "mpps": int(pkts) / (a.seconds + a.warmup) / 1e6, "mhz": int(mhz)}
    if bond:
        nic = out.split("NIC statistics for port 0")[-1]
        tx = [int(x) for x in re.findall(r"TX-packets:\s+(\d+)", nic)]
        res["members_sending"] = sum(1 for x in tx[:2] if x > 1000)
    if cg:
        most = 0
        for f in os.listdir(w):
            if f.startswith("tp.cg"):
                for line in open(os.path.join(w, f)):
                    if line.startswith("summary:"):
                        most = max(most, int(line.split()[1]))
        res["instr_per_packet"] = most / max(1, int(pkts))
    return res


def build_l3fwd(w):
    src = os.path.join(w, "examples")
    os.makedirs(src)
    for d in ("l3fwd", "common"):
        if not os.path.isdir(os.path.join(EXAMPLES, d)):
            raise Fail(f"{EXAMPLES}/{d} is missing: apt-get install dpdk-doc")
        shutil.copytree(os.path.join(EXAMPLES, d), os.path.join(src, d))
    main = os.path.join(src, "l3fwd", "main.c")
    text = open(main).read()
    # Virtual PMDs offer no RX checksum offload; l3fwd would refuse to start.
    patched = text.replace(".offloads = RTE_ETH_RX_OFFLOAD_CHECKSUM,", ".offloads = 0,")
    if patched == text:
        raise Fail("l3fwd main.c: the RX offload line to patch was not found")
    open(main, "w").write(patched)
    p = run(["make", "-C", os.path.join(src, "l3fwd"), "-j2"], timeout=300)
    if p.returncode != 0:
        raise Fail(f"building l3fwd: {p.stdout[-2000:]}{p.stderr[-2000:]}")
    return os.path.join(src, "l3fwd")


def telemetry(prefix, cmd):
    path = f"/var/run/dpdk/{prefix}/dpdk_telemetry.v2"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(path)
    s.recv(1024)
    s.send(cmd.encode())
    v = json.loads(s.recv(1 << 16))
    s.close()
    return v


def l3fwd(a, w, l3dir, pcap, tsc_hz):
    pref = f"fl-loop-l3-{os.getpid()}"
    argv = [os.path.join(l3dir, "build", "l3fwd"), "-l", str(a.worker_core), "--no-huge",
            "-m", "512", "--no-pci", "--file-prefix", pref, "--log-level=4",
            "--vdev", f"net_pcap0,rx_pcap={pcap},infinite_rx=1", "--vdev", "net_null1,no-rx=1",
            "--", "-p", "0x3", "-P", "--parse-ptype", "--config", "(0,0,1),(1,0,1)",
            "--rule_ipv4", os.path.join(l3dir, "lpm_default_v4.cfg"),
            "--rule_ipv6", os.path.join(l3dir, "lpm_default_v6.cfg"), "--lookup", "lpm"]
    log_path = os.path.join(w, "l3fwd.log")
    p = subprocess.Popen(argv, stdout=open(log_path, "w"), stderr=subprocess.STDOUT, text=True,
                         cwd=l3dir)
    try:
        deadline = time.time() + 20
        while not os.path.exists(f"/var/run/dpdk/{pref}/dpdk_telemetry.v2"):
            if time.time() > deadline or p.poll() is not None:
                raise Fail(f"l3fwd did not start: {open(log_path).read()[-2000:]}")
            time.sleep(0.1)
        time.sleep(a.warmup)
        s0, t0 = telemetry(pref, "/ethdev/stats,1")["/ethdev/stats"]["opackets"], time.time()
        time.sleep(a.seconds)
        s1, t1 = telemetry(pref, "/ethdev/stats,1")["/ethdev/stats"]["opackets"], time.time()
    finally:
        p.send_signal(2)
        p.wait(timeout=60)
        shutil.rmtree(f"/var/run/dpdk/{pref}", ignore_errors=True)
    pps = (s1 - s0) / (t1 - t0)
    return {"mpps": pps / 1e6, "cycles_per_packet": tsc_hz / pps if pps else None}


def l3fwd_ir(a, w, l3dir, pcap, seconds=6.0):
    """Instructions per packet of l3fwd's forwarding thread (lpm_main_loop and everything
    it calls, the PMDs included, as fastlag's rows count dataplane::worker::run) under
    callgrind: the counters are zeroed, then dumped `seconds` later (callgrind_control),
    and telemetry counts the packets sent in between. Each control command takes ~0.1 s
    under valgrind; the packet count takes the midpoint of the reads around it (error
    well under 1% over this window)."""
    pref = f"fl-loop-l3cg-{os.getpid()}"
    cg = os.path.join(w, "l3fwd.cg")
    argv = ["valgrind", "--tool=callgrind", "--fair-sched=yes", f"--callgrind-out-file={cg}",
            "--toggle-collect=lpm_main_loop",
            os.path.join(l3dir, "build", "l3fwd"), "-l", str(a.worker_core), "--no-huge",
            "-m", "512", "--no-pci", "--file-prefix", pref, "--log-level=4",
            "--vdev", f"net_pcap0,rx_pcap={pcap},infinite_rx=1", "--vdev", "net_null1,no-rx=1",
            "--", "-p", "0x3", "-P", "--parse-ptype", "--config", "(0,0,1),(1,0,1)",
            "--rule_ipv4", os.path.join(l3dir, "lpm_default_v4.cfg"),
            "--rule_ipv6", os.path.join(l3dir, "lpm_default_v6.cfg"), "--lookup", "lpm"]
    log_path = os.path.join(w, "l3fwd-cg.log")
    p = subprocess.Popen(argv, stdout=open(log_path, "w"), stderr=subprocess.STDOUT, text=True,
                         cwd=l3dir)

    def sent():
        return telemetry(pref, "/ethdev/stats,1")["/ethdev/stats"]["opackets"]

    def control(flag):
        c = run(["callgrind_control", flag, str(p.pid)], timeout=60)
        if c.returncode != 0:
            raise Fail(f"callgrind_control {flag}: {c.stdout}{c.stderr}")

    try:
        deadline = time.time() + 120
        while not os.path.exists(f"/var/run/dpdk/{pref}/dpdk_telemetry.v2"):
            if time.time() > deadline or p.poll() is not None:
                raise Fail(f"l3fwd under callgrind did not start: {open(log_path).read()[-2000:]}")
            time.sleep(0.2)
        time.sleep(1.0)
        s0 = sent()
        control("-z")
        s0 = (s0 + sent()) / 2
        time.sleep(seconds)
        s1 = sent()
        control("-d")
        s1 = (s1 + sent()) / 2
    finally:
        p.send_signal(2)
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        shutil.rmtree(f"/var/run/dpdk/{pref}", ignore_errors=True)
    dumps = sorted(f for f in os.listdir(w) if f.startswith("l3fwd.cg."))
    if not dumps:
        raise Fail("callgrind wrote no dump for l3fwd")
    for line in open(os.path.join(w, dumps[0])):
        if line.startswith("summary:"):
            return int(line.split()[1]) / max(1.0, s1 - s0)
    raise Fail(f"no summary in {dumps[0]}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=1.0, help="measured seconds per run")
    ap.add_argument("--warmup", type=float, default=0.3)
    ap.add_argument("--rounds", type=int, default=3,
                    help="runs of every row and reference, alternating; medians reported")
    ap.add_argument("--frames", type=int, default=512)
    ap.add_argument("--control-core", type=int, default=0)
    ap.add_argument("--worker-core", type=int, default=1)
    ap.add_argument("--callgrind", action="store_true", help="also count instructions per packet")
    ap.add_argument("--cg-packets", type=int, default=1_000_000)
    ap.add_argument("--only", help="comma-separated fastlag scenarios")
    ap.add_argument("--json", help="write the results here")
    a = ap.parse_args()
    if not os.path.exists(FASTLAG):
        sys.exit(f"missing {FASTLAG}: run cargo build --release")
    rows = [r for r in ROWS if not a.only or r[0] in a.only.split(",")]
    w = tempfile.mkdtemp(prefix="fastlag-loop.")
    t_start = time.time()
    result = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cpu": cpu_model(),
              "cpus": os.cpu_count(), "frames": a.frames, "seconds": a.seconds,
              "rounds": a.rounds,
              "fastlag": {}, "references": {}}
    try:
        refs = {ref for _, ref in rows}
        l3 = sorted(ref for ref in refs if ref.startswith("l3fwd"))
        l3dir, pcaps = None, {}
        if l3:
            l3dir = build_l3fwd(w)
            for ref in l3:
                v6 = ref.endswith("v6")
                pcaps[ref] = os.path.join(w, f"{ref}.pcap")
                p = run([FASTLAG, "bench", "-s", "router-v6" if v6 else "router-v4",
                         "--write-pcap", pcaps[ref]], timeout=30)
                if p.returncode != 0:
                    raise Fail(p.stderr)
        # Rounds alternate fastlag and the references, so a slow moment of a shared machine
        # hits both sides alike; each figure is the median of its rounds.
        samples = {"fastlag": {}, "references": {}}
        for rnd in range(a.rounds):
            for name, _ in rows:
                r = fastlag(a, w, name)
                samples["fastlag"].setdefault(name, []).append(r)
                print(f"  [{rnd + 1}/{a.rounds}] fastlag {name}: "
                      f"{r['busy_cycles_per_packet']:.1f} cycles/packet, {r['mpps']:.2f} Mpps",
                      file=sys.stderr, flush=True)
            tsc = samples["fastlag"][rows[0][0]][0]["tsc_hz"] if rows else 2.6e9
            got = {}
            if "testpmd-io" in refs:
                got["testpmd-io"] = testpmd(a, w, "io")
                got["testpmd-mac"] = testpmd(a, w, "mac")
            if "testpmd-bond-l34" in refs:
                got["testpmd-bond-l34"] = testpmd(a, w, "io", bond=True)
            for ref in l3:
                got[ref] = l3fwd(a, w, l3dir, pcaps[ref], tsc)
            for ref, r in got.items():
                samples["references"].setdefault(ref, []).append(r)
                c = r.get("busy_cycles_per_packet") or r.get("cycles_per_packet")
                print(f"  [{rnd + 1}/{a.rounds}] {ref}: {c:.1f} cycles/packet",
                      file=sys.stderr, flush=True)
        for side in ("fastlag", "references"):
            for key, runs in samples[side].items():
                result[side][key] = median_run(key, runs)
        if a.callgrind:
            for name, _ in rows:
                result["fastlag"][name]["instr_per_packet"] = fastlag_ir(a, w, name)
                print(f"  callgrind {name}: {result['fastlag'][name]['instr_per_packet']:.1f} "
                      "instr/packet", file=sys.stderr, flush=True)
            if "testpmd-io" in refs:
                result["references"]["testpmd-io"]["instr_per_packet"] = \
                    testpmd(a, w, "io", cg=True).get("instr_per_packet")
            for ref in l3:
                result["references"][ref]["instr_per_packet"] = l3fwd_ir(a, w, l3dir, pcaps[ref])
                print(f"  callgrind {ref}: {result['references'][ref]['instr_per_packet']:.1f} "
                      "instr/packet", file=sys.stderr, flush=True)
        result["elapsed_s"] = time.time() - t_start
    finally:
        shutil.rmtree(w, ignore_errors=True)
    table(result, rows)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")


def cycles(r):
    """A run's cycles per packet: busy cycles where counted, else TSC / rate."""
    return r.get("busy_cycles_per_packet") or r.get("cycles_per_packet") or float("inf")


def all_in(r):
    """TSC cycles per packet sent (a router row: compared all-in with l3fwd)."""
    return r["tsc_hz"] / (r["mpps"] * 1e6) if r.get("mpps") else float("inf")


def median_run(name, runs):
    """The run with the median cycles per packet (as the table compares that row), with
    every round's figure beside it."""
    key = all_in if name.startswith("router") else cycles
    ordered = sorted(runs, key=key)
    m = dict(ordered[len(ordered) // 2])
    m["rounds_cycles_per_packet"] = [round(key(r), 1) for r in runs]
    return m


def ref_cycles(result, ref):
    """A reference's cycles per packet, comparable with fastlag's busy cycles."""
    if ref in result["fastlag"]:
        return result["fastlag"][ref]["busy_cycles_per_packet"]
    r = result["references"].get(ref)
    if not r:
        return None
    return r.get("busy_cycles_per_packet") or r.get("cycles_per_packet")


def table(result, rows):
    print(f"closed loop, {result['date']}, {result['cpu']} ({result['cpus']} CPUs), "
          f"{result['frames']} frames in loops, one worker, median of "
          f"{result.get('rounds', 1)} alternating rounds")
    print(f"{'path':<22} {'fastlag cyc/pkt':>15} {'Mpps':>8} {'instr/pkt':>10}  "
          f"{'reference':<18} {'ref cyc/pkt':>11} {'ratio':>6}")
    for name, ref in rows:
        f = result["fastlag"].get(name)
        if not f:
            continue
        # Routers are compared all-in (TSC / rate): l3fwd has no busy counter, and neither
        # ever waits for frames.
        pcap = name.startswith("router")
        fc = (f["tsc_hz"] / (f["mpps"] * 1e6)) if pcap and f["mpps"] else f["busy_cycles_per_packet"]
        rc = ref_cycles(result, ref)
        if ref in result["fastlag"] and pcap:
            r = result["fastlag"][ref]
            rc = r["tsc_hz"] / (r["mpps"] * 1e6)
        ratio = f"{fc / rc:.2f}x" if rc else "-"
        ir = f.get("instr_per_packet")
        print(f"{name:<22} {fc:>15.1f} {f['mpps']:>8.2f} {(f'{ir:.1f}' if ir else '-'):>10}  "
              f"{ref:<18} {(f'{rc:.1f}' if rc else '-'):>11} {ratio:>6}")
    for ref, r in result["references"].items():
        extra = ""
        if "members_sending" in r:
            extra = f", {r['members_sending']} of 2 members sending"
        if r.get("instr_per_packet"):
            extra += f", {r['instr_per_packet']:.1f} instr/packet"
        c = r.get("busy_cycles_per_packet") or r.get("cycles_per_packet")
        print(f"  {ref}: {c:.1f} cycles/packet, {r['mpps']:.2f} Mpps{extra}")
    bonds = [n for n, _ in rows if n.startswith("bond") and n in result["fastlag"]]
    for n in bonds:
        print(f"  fastlag {n}: sending on {','.join(result['fastlag'][n]['ports_sending'])}")
    print(f"elapsed {result.get('elapsed_s', 0):.0f} s")


if __name__ == "__main__":
    try:
        main()
    except Fail as e:
        sys.exit(f"loop benchmark failed: {e}")
