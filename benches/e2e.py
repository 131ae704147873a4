#!/usr/bin/env python3
"""End-to-end forwarding benchmark: fastlag against dpdk-testpmd on the same links, the
same generator and the same cores, in one invocation. Run it through benches/e2e.sh.

Generator/sink: fastlag-gen (memif clients; per-flow sequence numbers, loss, reordering,
latency). Forwarder under test (memif servers): fastlag, or the reference testpmd. Per run:
start the forwarder, start the generator; when the generator prints "window start" (its
warm-up, counted from the first frame that came back, is over) take the forwarder's
counters; again at "window end". Mpps/Gbit/s/loss/latency come from the generator's JSON;
busy cycles per packet from the forwarder over the same window (testpmd:
--record-core-cycles, fastlag: its worker counters; both count TSC cycles of polls that
returned packets) divided by the packets it forwarded. "Limited by": the forwarder's busy
share, its busy cycles over the window's TSC cycles (per worker): a forwarder busy 90% of
the time or more is the limit; one that is busy less waited for the generator.
"""

import argparse
import json
import os
import re
import shutil
import signal
import statistics as st
import subprocess
import sys
import tempfile
import threading
import time

from dpdk_env import bond_member_devarg

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FASTLAG = os.path.join(ROOT, "target/release/fastlag")
GEN = os.path.join(ROOT, "target/release/fastlag-gen")
MF = "socket-abstract=no"
# fastlag's port MACs (memif devarg) and the generator's addresses.
FL_MAC = ["02:fa:00:00:00:01", "02:fa:00:00:00:02"]
GEN_IP4 = ["10.1.0.2", "10.2.0.2"]
GEN_IP6 = ["2001:db8:1::2", "2001:db8:2::2"]


class Fail(Exception):
    pass


class Ctx:
    def __init__(self, a):
        self.a = a
        self.w = tempfile.mkdtemp(prefix="fastlag-e2e.")
        self.procs = []
        self.netns = None
        self.afpacket = False
        self.veths = []
        self.log = open(os.path.join(self.w, "harness.log"), "w")

    def note(self, *m):
        print(*m, file=self.log, flush=True)

    def spawn(self, argv, log, stdin=None, stderr=None):
        self.note("spawn:", " ".join(argv))
        p = subprocess.Popen(argv, stdin=stdin, stdout=open(log, "w"),
                             stderr=stderr if stderr is not None else subprocess.STDOUT,
                             start_new_session=True, text=True)
        self.procs.append(p)
        return p

    def stop(self, p, sig=signal.SIGINT, wait=10):
        if p.poll() is None:
            try:
                p.send_signal(sig)
                p.wait(wait)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def veth(self, i, role):
        """The end of veth pair i for `role` (client: generator, server: forwarder); the
        pairs are ours (created here, deleted at cleanup)."""
        base = "fle%d%d" % (os.getpid() % 10000, i)
        if base not in self.veths:
            subprocess.run(["ip", "link", "add", base + "g", "type", "veth", "peer", "name", base + "f"], check=True)
            self.veths.append(base)
            for end in ("g", "f"):
                subprocess.run(["ip", "link", "set", base + end, "up"], check=True)
        return base + ("g" if role == "client" else "f")

    def cleanup(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for v in self.veths:
            subprocess.run(["ip", "link", "del", v + "g"], stderr=subprocess.DEVNULL)
        if self.netns:
            subprocess.run(["ip", "netns", "del", self.netns], stderr=subprocess.DEVNULL)
        if os.environ.get("KEEP"):
            print("kept", self.w, file=sys.stderr)
        else:
            shutil.rmtree(self.w, ignore_errors=True)



def wait_for(cond, secs, what):
    end = time.time() + secs
    while time.time() < end:
        if cond():
            return
        time.sleep(0.05)
    raise Fail("timed out waiting for " + what)


def threads(pid):
    """Per thread of process `pid`: name, CPUs it may run on, CPU time (clock ticks) and
    context switches, voluntary (it slept: a wake-up later) and not (it was preempted)."""
    r = {}
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return r
    for tid in tids:
        base = "/proc/%d/task/%s/" % (pid, tid)
        try:
            stat = open(base + "stat").read()
            status = dict(l.split(":", 1) for l in open(base + "status").read().splitlines() if ":" in l)
        except OSError:
            continue
        f = stat[stat.rindex(")") + 2:].split()
        r[int(tid)] = {"name": status["Name"].strip(), "cpus": status["Cpus_allowed_list"].strip(),
                       "ticks": int(f[11]) + int(f[12]),
                       "vcs": int(status["voluntary_ctxt_switches"]),
                       "nvcs": int(status["nonvoluntary_ctxt_switches"])}
    return r


def threads_delta(t0, t1):
    """What each thread that lived through both samples did in between."""
    return [dict(t1[k], ticks=t1[k]["ticks"] - t0[k]["ticks"], vcs=t1[k]["vcs"] - t0[k]["vcs"],
                 nvcs=t1[k]["nvcs"] - t0[k]["nvcs"]) for k in sorted(t1) if k in t0]


def deltas(a, b):
    """b - a for every numeric key of two flat dicts."""
    return {k: b[k] - a.get(k, 0) for k in b if isinstance(b[k], (int, float)) and not isinstance(b[k], bool)}


# ---------------------------------------------------------------- scenarios

class Scenario:
    """name, links (memif pairs), forwarders, generator options."""

    def __init__(self, name, kind, forwarders, family="v4", imix=False, workers=1, afpacket=False):
        self.name, self.kind, self.forwarders = name, kind, forwarders
        self.family, self.imix, self.workers = family, imix, workers
        self.afpacket = afpacket

    @property
    def links(self):
        return 4 if self.kind == "bond" else 2

    def label(self):
        size = "IMIX" if self.imix else ("82B" if self.family == "v6" else "64B")
        fam = "IPv6" if self.family == "v6" else "IPv4"
        w = " %dw" % self.workers if self.workers > 1 else ""
        link = " af_packet/veth" if self.afpacket else ""
        return "%s%s %s %s%s" % (self.name, link, fam, size, w)


def control_queue(sc):
    """1 when fastlag's control thread has a TX queue of its own on the links (after the
    workers' queues: LACPDUs, the kernel's ARP/ND through the TAPs), which the generator
    must then poll as well."""
    return 0 if sc.kind == "xconnect" else 1


def sock(ctx, i):
    return os.path.join(ctx.w, "m%d.sock" % i)


def memif(ctx, i, role, mac=None):
    if ctx.afpacket:
        # veth pair i: the generator on one end, the forwarder on the other.
        return "net_af_packet%d,iface=%s" % (i, ctx.veth(i, role))
    s = "net_memif%d,role=%s,id=0,socket=%s,%s" % (i, role, sock(ctx, i), MF)
    return s + (",mac=" + mac if mac else "")


# ---------------------------------------------------------------- forwarders

class Testpmd:
    """dpdk-testpmd, interactive on a pipe: io or mac forwarding, optionally through two
    net_bonding mode-4 bonds (kicked with stop / start tx_first until traffic flows: its io
    engine only transmits, and so only sends LACPDUs, after a non-empty receive)."""

    def __init__(self, ctx, sc, mode):
        self.ctx, self.sc, self.mode = ctx, sc, mode
        self.bond = sc.kind == "bond"
        a = ctx.a
        vdevs = ["--vdev=" + memif(ctx, i, "server") for i in range(sc.links)]
        extra = []
        if self.bond:
            vdevs += ["--vdev=net_bonding0,mode=4,{m}=net_memif0,{m}=net_memif1,xmit_policy=l34".format(m=bond_member_devarg()),
                      "--vdev=net_bonding1,mode=4,{m}=net_memif2,{m}=net_memif3,xmit_policy=l34".format(m=bond_member_devarg())]
            extra = ["--portmask=0x30"]
        cores = a.fwd_cores[:sc.workers]
        lcores = "0@%d,%s" % (a.gen_cpu, ",".join("%d@%d" % (i + 1, c) for i, c in enumerate(cores)))
        q = sc.workers
        # The same queues as fastlag's memif servers: the generator (client) may not have
        # more RX queues than the server has TX queues.
        # Line-buffered stdout: its log is a file, and what `show port stats` prints would
        # otherwise wait in stdio's buffer.
        argv = ["stdbuf", "-oL", "dpdk-testpmd", "--lcores", lcores, "--main-lcore", "0", "--no-pci", "--no-huge",
                "-m", "1024", "--no-shconf", "--file-prefix=fle2e-fwd-%d" % os.getpid()] + vdevs + [
            "--", "-i", "--forward-mode=" + mode, "--nb-cores=%d" % sc.workers,
            "--rxq=%d" % q, "--txq=%d" % (q + control_queue(sc)), "--record-core-cycles", "--record-burst-stats"] + extra
        self.ports = sc.links + (2 if self.bond else 0)
        self.logp = os.path.join(ctx.w, "fwd-testpmd.log")
        self.p = ctx.spawn(argv, self.logp, stdin=subprocess.PIPE)
        if not sc.afpacket:
            wait_for(lambda: all(os.path.exists(sock(ctx, i)) for i in range(sc.links)), 20, "testpmd's memif sockets")
        wait_for(lambda: "testpmd>" in self.text(), 30, "testpmd's prompt")
        self.cmd("start")
        self.last_kick = time.time()

    def text(self):
        return open(self.logp, errors="replace").read()

    def cmd(self, *cs):
        for c in cs:
            self.p.stdin.write(c + "\n")
        self.p.stdin.flush()

    def waiting(self):
        if self.bond and time.time() - self.last_kick > 0.5:
            self.cmd("stop", "start tx_first")
            self.last_kick = time.time()

    def begin(self):
        self.cmd("stop", "clear port stats all", "start")
        self.off = len(self.text())
        self.t0 = time.time()

    def end(self):
        self.cmd("stop")
        dt = time.time() - self.t0
        wait_for(lambda: "Accumulated forward statistics" in self.text()[self.off:], 10, "testpmd's stop")
        # The PMDs' counters of every port (bonds and members), cleared at the window start.
        self.cmd("show port stats all")
        stats = r"#+ NIC statistics for port (\d+)\s+#+\n(.*?)\n\s+#{20,}\n"
        wait_for(lambda: len(re.findall(stats, self.text()[self.off:], re.S)) >= self.ports, 10,
                 "testpmd's port stats")
        time.sleep(0.2)
        t = self.text()[self.off:]
        r = {"ports": {}}
        # Per forwarding port: what its stream could not send (TX-dropped: tx_burst took fewer).
        for port, body in re.findall(r"Forward statistics for port (\d+)\s+-+\n(.*?)\n\s+-{20,}", t, re.S):
            for k, v in re.findall(r"(RX-packets|TX-dropped):\s+(\d+)", body):
                r["ports"].setdefault(port, {})["fwd_" + k.lower().replace("-", "_")] = int(v)
        for port, body in re.findall(stats, t, re.S):
            for k, v in re.findall(r"(RX-packets|RX-missed|RX-errors|RX-nombuf|TX-packets|TX-errors):\s+(\d+)", body):
                r["ports"].setdefault(port, {})[k.lower().replace("-", "_")] = int(v)
        fwd = [p for p in r["ports"].values() if "fwd_rx_packets" in p]
        # "start" first drains and frees what waits in the RX queues (unless --no-flush-rx):
        # the bond ports received those (counted since "clear"), the streams never saw them.
        r["drops"] = {"tx_dropped": sum(p.get("fwd_tx_dropped", 0) for p in fwd),
                      "flushed_at_start": sum(p.get("rx_packets", 0) - p["fwd_rx_packets"] for p in fwd)}
        # Members only (a bond's own counters sum its members'): the PMDs' RX drops.
        members = [p for k, p in r["ports"].items() if int(k) < self.sc.links]
        r["pmd"] = {k: sum(p.get(k, 0) for p in members) for k in ("rx_missed", "rx_nombuf", "rx_errors", "tx_errors")}
        cyc = re.findall(r"CPU cycles/packet=([\d.]+) \(total cycles=(\d+) / total \w+ packets=(\d+)\)", t)
        acc = t.split("Accumulated forward statistics")[-1]
        tx = re.search(r"TX-packets:\s+(\d+)\s+TX-dropped:\s+(\d+)", acc)
        rx = re.search(r"RX-packets:\s+(\d+)", acc)
        if cyc and tx and int(tx.group(1)):
            r["cycles"] = sum(int(c[1]) for c in cyc) / int(tx.group(1))
        mhz = re.findall(r"at (\d+) MHz", t)
        if cyc and mhz:
            # Busy cycles of all streams over the window's TSC cycles on every worker.
            r["busy"] = 100.0 * sum(int(c[1]) for c in cyc) / (int(mhz[-1]) * 1e6 * dt * self.sc.workers)
        if rx and tx:
            r["fwd_drop"] = int(tx.group(2))
        # --record-burst-stats: "RX-bursts : N [E% of 0 pkts + ...]" per stream.
        empty = [int(x) for x in re.findall(r"RX-bursts : \d+ \[(\d+)% of 0 pkts", t)]
        if empty:
            r["empty"] = sum(empty) / len(empty)
        return r

    def close(self):
        try:
            self.cmd("quit")
        except OSError:
            pass
        self.ctx.stop(self.p, sig=signal.SIGINT, wait=10)


class Fastlag:
    def __init__(self, ctx, sc):
        self.ctx, self.sc = ctx, sc
        a = ctx.a
        cores = a.fwd_cores[:sc.workers]
        # Enough mbufs for every queue's descriptor ring (one RX and one TX queue per port
        # and worker, 1024 each), the workers' bursts and headroom, as a 2^n - 1 pool.
        need = sc.links * len(cores) * 2048 + 128 * len(cores) + 1024
        mbufs = 16383
        while mbufs < need:
            mbufs = mbufs * 2 + 1
        cfg = ["[dataplane]", "control_core = %d" % a.gen_cpu,
               "worker_cores = [%s]" % ", ".join(map(str, cores)),
               # Without hugepages each mbuf takes a 4 KiB page (check-config's estimate).
               "hugepages = false", "memory_mb = %d" % max(1024, (mbufs + 1) // 256 + 64),
               "mbufs = %d" % mbufs,
               "stats_interval_s = 0", ""]
        names = ["m%d" % i for i in range(sc.links)]
        for i, n in enumerate(names):
            mac = FL_MAC[i] if sc.kind == "router" else None
            cfg += ["[[port]]", 'name = "%s"' % n, 'device = "%s"' % memif(ctx, i, "server", mac), ""]
        if sc.kind == "bond":
            for b, ms in (("bondA", names[:2]), ("bondB", names[2:])):
                cfg += ["[[bond]]", 'name = "%s"' % b, 'members = ["%s", "%s"]' % tuple(ms),
                        'hash = "layer3+4"', ""]
            cfg += ["[forward]", 'mode = "xconnect"', 'pairs = [["bondA", "bondB"]]']
        elif sc.kind == "router":
            for i in range(2):
                cfg += ["[[interface]]", 'name = "i%d"' % i, 'on = "m%d"' % i,
                        'addresses = ["10.%d.0.1/24", "2001:db8:%d::1/64"]' % (i + 1, i + 1),
                        'tap_name = "fle2e%d"' % i, ""]
            cfg += ["[forward]", 'mode = "router"']
        else:
            cfg += ["[forward]", 'mode = "xconnect"', 'pairs = [["m0", "m1"]]']
        path = os.path.join(ctx.w, "fastlag.toml")
        open(path, "w").write("\n".join(cfg) + "\n")
        self.status = os.path.join(ctx.w, "fastlag-status.json")
        if os.path.exists(self.status):
            os.unlink(self.status)
        argv = [FASTLAG, "--log-level", "warn", "run", "--config", path, "--status", self.status]
        if sc.kind == "router":
            # Its TAPs (and the kernel neighbours it mirrors) live in a namespace of ours.
            if not ctx.netns:
                ctx.netns = "fle2e-%d" % os.getpid()
                subprocess.run(["ip", "netns", "add", ctx.netns], check=True)
                # The first frames to an unresolved next hop go to the kernel, which
                # forwards them and so resolves the generator (ARP / neighbour discovery).
                for k in ("net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"):
                    subprocess.run(["ip", "netns", "exec", ctx.netns, "sysctl", "-qw", k], check=True)
            argv = ["ip", "netns", "exec", ctx.netns] + argv
        self.p = ctx.spawn(argv, os.path.join(ctx.w, "fwd-fastlag.log"))
        if sc.afpacket:
            wait_for(lambda: os.path.exists(self.status) or self.p.poll() is not None, 20, "fastlag's status file")
        else:
            wait_for(lambda: all(os.path.exists(sock(ctx, i)) for i in range(sc.links)) or self.p.poll() is not None,
                     20, "fastlag's memif sockets")
        if self.p.poll() is not None:
            raise Fail("fastlag exited: " + open(os.path.join(ctx.w, "fwd-fastlag.log")).read()[-2000:])

    def snap(self):
        for _ in range(20):
            try:
                return json.load(open(self.status))
            except (OSError, ValueError):
                time.sleep(0.02)
        raise Fail("no fastlag status file")

    def waiting(self):
        if self.p.poll() is not None:
            raise Fail("fastlag exited")

    def begin(self):
        # The status file is rewritten every 50 ms: take the next one.
        t = os.stat(self.status).st_mtime if os.path.exists(self.status) else 0
        wait_for(lambda: os.path.exists(self.status) and os.stat(self.status).st_mtime > t, 2, "status")
        self.s0 = self.snap()
        self.t0 = time.time()

    def end(self):
        t = os.stat(self.status).st_mtime
        wait_for(lambda: os.stat(self.status).st_mtime > t, 2, "status")
        s1 = self.snap()
        dt = time.time() - self.t0
        d = {k: sum(w[k] for w in s1["workers"]) - sum(w[k] for w in self.s0["workers"])
             for k in ("busy_cycles", "rx", "tx", "busy_polls", "idle_polls")}
        r = {"per_worker": []}
        if d["tx"]:
            r["cycles"] = d["busy_cycles"] / d["tx"]
        polls = d["busy_polls"] + d["idle_polls"]
        if polls:
            r["empty"] = 100.0 * d["idle_polls"] / polls
        hz = s1.get("tsc_hz")
        if hz and dt > 0:
            r["busy"] = 100.0 * d["busy_cycles"] / (hz * dt * len(s1["workers"]))
        r["fwd_drop"] = d["rx"] - d["tx"]
        # Per port over the window: the PMD's counters and the workers' (drops by reason).
        p0 = {p["name"]: p for p in self.s0["ports"]}
        r["ports"] = {p["name"]: {"pmd": deltas(p0[p["name"]]["pmd"], p["pmd"]),
                                  "workers": deltas(p0[p["name"]]["workers"], p["workers"])}
                      for p in s1["ports"] if p["name"] in p0}
        r["drops"] = {}
        for p in r["ports"].values():
            for k, v in p["workers"].items():
                if k.startswith("drop_"):
                    r["drops"][k] = r["drops"].get(k, 0) + v
        # What the workers offered each port (sent + refused by a full TX ring): a bond's
        # split of the generator's flows, next to where the drops were.
        r["offered"] = {n: p["workers"].get("tx", 0) + p["workers"].get("drop_tx_full", 0)
                        for n, p in r["ports"].items()}
        r["pmd"] = {k: sum(p["pmd"].get(k, 0) for p in r["ports"].values())
                    for k in ("rx_missed", "rx_nombuf", "rx_errors", "tx_errors")}
        # A table version that moved: LACP changed a bond's distribution in the window.
        v0 = {b["name"]: b.get("table_version") for b in self.s0.get("bonds", [])}
        r["bond_table_versions"] = {b["name"]: [v0.get(b["name"]), b.get("table_version")]
                                    for b in s1.get("bonds", [])}
        if s1.get("interfaces"):
            # Router counters (forwarded, exceptions, drops by reason) for the JSON output.
            r["interfaces"] = s1["interfaces"]
        for w0, w1 in zip(self.s0["workers"], s1["workers"]):
            tx = w1["tx"] - w0["tx"]
            r["per_worker"].append((tx, (w1["busy_cycles"] - w0["busy_cycles"]) / tx if tx else None))
        return r

    def close(self):
        self.ctx.stop(self.p, sig=signal.SIGINT, wait=15)


# ---------------------------------------------------------------- generator

def gen_argv(ctx, sc, fwd_kind):
    a = ctx.a
    argv = [GEN, "--cpu", str(a.gen_cpu), "--seconds", str(a.seconds), "--flows", str(a.flows),
            "--warmup", "2" if sc.kind in ("bond", "router") else "1", "--family", sc.family,
            "--json", os.path.join(ctx.w, "gen.json"), "--ready-timeout", "40",
            # Ports stay open, unpolled, until the forwarder stopped (memif teardown race
            # in DPDK 22.11, see fastlag-gen --help).
            "--hold"]
    if sc.imix:
        argv.append("--imix")
    q = sc.workers
    argv += ["--rxq", str(q + control_queue(sc)), "--txq", str(q)]
    if sc.kind == "bond":
        for i in range(4):
            argv += ["--vdev", memif(ctx, i, "client")]
        argv += ["--port", "net_bonding0,mode=4,{m}=net_memif0,{m}=net_memif1,xmit_policy=l34".format(m=bond_member_devarg()),
                 "--port", "net_bonding1,mode=4,{m}=net_memif2,{m}=net_memif3,xmit_policy=l34".format(m=bond_member_devarg())]
    else:
        for i in range(2):
            argv += ["--port", memif(ctx, i, "client")]
    if sc.kind == "router":
        for i in range(2):
            argv += ["--ip4", GEN_IP4[i], "--ip6", GEN_IP6[i], "--dst-mac", FL_MAC[i]]
    return argv


def one_run(ctx, sc, fwd_kind):
    ctx.afpacket = sc.afpacket
    for i in range(sc.links):
        if os.path.exists(sock(ctx, i)):
            os.unlink(sock(ctx, i))
    gj = os.path.join(ctx.w, "gen.json")
    if os.path.exists(gj):
        os.unlink(gj)
    fwd = Fastlag(ctx, sc) if fwd_kind == "fastlag" else Testpmd(ctx, sc, fwd_kind.split("-")[1])
    gen = None
    try:
        gen = ctx.spawn(gen_argv(ctx, sc, fwd_kind), os.path.join(ctx.w, "gen.out"), stderr=subprocess.PIPE)
        events = []

        def reader():
            for line in gen.stderr:
                ctx.note("gen:", line.rstrip())
                events.append(line)
        th = threading.Thread(target=reader, daemon=True)
        th.start()

        def seen(s):
            return any(s in e for e in events)
        deadline = time.time() + 60
        while not seen("window start"):
            if gen.poll() is not None:
                th.join(1)
                raise Fail("generator exited: " + "".join(events[-5:]).strip())
            if time.time() > deadline:
                raise Fail("generator never started its window")
            fwd.waiting()
            time.sleep(0.05)
        fwd.begin()
        th0 = (threads(gen.pid), threads(fwd.p.pid), time.time())
        wait_for(lambda: seen("window end") or gen.poll() is not None, ctx.a.seconds + 30, "window end")
        th1 = (threads(gen.pid), threads(fwd.p.pid), time.time())
        f = fwd.end()
        # Who shared the generator's CPU in the window: the generator's preemptions (it never
        # sleeps, so each is another thread taking its CPU, and frames waiting for it in the
        # forwarder's TX rings meanwhile), and the forwarder's threads that may run there.
        gcpu = str(ctx.a.gen_cpu)
        f["window_threads_s"] = round(th1[2] - th0[2], 3)
        f["gen_threads"] = threads_delta(th0[0], th1[0])
        f["gen_preempted"] = sum(t["nvcs"] for t in f["gen_threads"] if t["cpus"] == gcpu)
        f["fwd_threads"] = threads_delta(th0[1], th1[1])
        f["fwd_wakeups_on_gen_cpu"] = sum(t["vcs"] + t["nvcs"] for t in f["fwd_threads"] if t["cpus"] == gcpu)
        wait_for(lambda: os.path.exists(gj) or gen.poll() is not None, 30, "generator summary")
        if not os.path.exists(gj):
            th.join(2)
            raise Fail("generator failed: " + "".join(events[-5:]).strip())
        g = json.load(open(gj))
    finally:
        fwd.close()
        if gen is not None:
            ctx.stop(gen)
    return g, f


# ---------------------------------------------------------------- table

def fmt(v, p=2):
    v = [x for x in v if x is not None]
    if not v:
        return "n/a"
    if len(v) == 1:
        return "%.*f" % (p, v[0])
    return "%.*f (%.*f–%.*f)" % (p, st.median(v), p, min(v), p, max(v))


def med(v):
    v = [x for x in v if x is not None]
    return st.median(v) if v else None


def stalled(g):
    """A run with a second in its window below 10% of its best second: traffic stopped (on
    this shared machine: another process on the worker's or the generator's CPU). Left out
    of the medians and counted apart."""
    v = g.get("rx_mpps_per_second") or []
    return bool(v) and min(v) < 0.1 * max(v) or (bool(v) and max(v) == 0)


LABEL = {"fastlag": "fastlag", "testpmd-io": "testpmd io", "testpmd-mac": "testpmd mac"}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="1 run of 3 s per scenario and forwarder")
    ap.add_argument("--cores", default="0,1", help="generator CPU, then worker CPUs (default 0,1)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=4)
    ap.add_argument("--flows", type=int, default=1024, help="flows per direction")
    ap.add_argument("--scenarios", default="xconnect,xconnect-imix,bond,router4,router6",
                    help="comma-separated: xconnect, xconnect-imix, xconnect-afpacket, bond, bond-imix, router4, router6, "
                         "router4-imix, scaling")
    ap.add_argument("--json", help="write all results here")
    ap.add_argument("--from-json", metavar="FILE", help="print the table of an earlier run's --json file; run nothing")
    a = ap.parse_args()
    if a.from_json:
        render(load(a.from_json))
        return
    cores = [int(c) for c in a.cores.split(",")]
    if len(cores) < 2:
        sys.exit("--cores needs the generator CPU and at least one worker CPU")
    a.gen_cpu, a.fwd_cores = cores[0], cores[1:]
    if a.quick:
        a.runs, a.seconds = 1, 3
    for b in (FASTLAG, GEN):
        if not os.access(b, os.X_OK):
            sys.exit("missing %s: run cargo build --release --workspace --bins" % b)
    if not shutil.which("dpdk-testpmd"):
        sys.exit("dpdk-testpmd missing: run scripts/setup.sh")
    if os.geteuid() != 0:
        sys.exit("run as root (memif sockets, the router's TAPs in a namespace)")

    ref_xc = ["testpmd-io", "testpmd-mac", "fastlag"]
    table = {
        "xconnect": [Scenario("xconnect", "xconnect", ref_xc)],
        "xconnect-imix": [Scenario("xconnect", "xconnect", ["testpmd-io", "fastlag"], imix=True)],
        "bond": [Scenario("bond 2x2 LACP", "bond", ["testpmd-io", "fastlag"])],
        "bond-imix": [Scenario("bond 2x2 LACP", "bond", ["testpmd-io", "fastlag"], imix=True)],
        "router4": [Scenario("router", "router", ["testpmd-mac", "fastlag"])],
        "router6": [Scenario("router", "router", ["testpmd-mac", "fastlag"], family="v6")],
        "xconnect-afpacket": [Scenario("xconnect", "xconnect", ["testpmd-io", "fastlag"], afpacket=True)],
        "router4-imix": [Scenario("router", "router", ["testpmd-mac", "fastlag"], imix=True)],
        "scaling": [Scenario("xconnect", "xconnect", ["testpmd-io", "fastlag"], workers=w)
                    for w in (1, 2, 4, 8) if w <= len(a.fwd_cores)],
    }
    scs = []
    for s in a.scenarios.split(","):
        if s not in table:
            sys.exit("unknown scenario %r (known: %s)" % (s, ", ".join(table)))
        if s == "scaling" and len(a.fwd_cores) < 2:
            print("# scaling: skipped, --cores gives only %d worker CPU" % len(a.fwd_cores), file=sys.stderr)
        scs += table[s]
    ctx = Ctx(a)
    results = []
    t0 = time.time()
    try:
        for sc in scs:
            rows = {f: [] for f in sc.forwarders}
            for r in range(a.runs):
                # Alternate the order so drift on a shared machine hits both sides.
                order = sc.forwarders if r % 2 == 0 else list(reversed(sc.forwarders))
                for f in order:
                    try:
                        g, fw = one_run(ctx, sc, f)
                        rows[f].append((g, fw))
                        print("# %-24s %-12s run %d: %.3f Mpps, %s cycles/pkt, loss %.3f%%, reordered %d" % (
                            sc.label(), f, r + 1, g["rx"]["mpps"],
                            "%.1f" % fw["cycles"] if fw.get("cycles") else "n/a",
                            g["window_loss_pct"], g["total"]["reordered"]), file=sys.stderr, flush=True)
                        print("#   window: %d sent, forwarder drops %s, PMD %s; generator preempted %d times, "
                              "forwarder threads woke %d times on its CPU" % (
                                  g["tx"]["packets"],
                                  ", ".join("%s %d" % kv for kv in fw.get("drops", {}).items() if kv[1]) or "none",
                                  ", ".join("%s %d" % kv for kv in fw.get("pmd", {}).items() if kv[1]) or "clean",
                                  fw.get("gen_preempted", 0), fw.get("fwd_wakeups_on_gen_cpu", 0)),
                              file=sys.stderr, flush=True)
                        if fw.get("offered") and len(fw["offered"]) > 2:
                            print("#   offered per port: " + ", ".join(
                                "%s %d (%d dropped)" % (n, o, fw["ports"][n]["workers"].get("drop_tx_full", 0))
                                for n, o in fw["offered"].items()), file=sys.stderr, flush=True)
                    except Fail as e:
                        print("# %-24s %-12s run %d FAILED: %s" % (sc.label(), f, r + 1, e), file=sys.stderr, flush=True)
                        rows[f].append(None)
            results.append((sc, rows))
    finally:
        ctx.cleanup()
    elapsed = time.time() - t0

    doc = {"meta": {"runs": a.runs, "seconds": a.seconds, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                    "cpus": os.cpu_count(), "gen_cpu": a.gen_cpu, "worker_cpus": a.fwd_cores, "elapsed_s": round(elapsed)},
           "scenarios": [{"label": sc.label(), "kind": sc.kind, "workers": sc.workers, "forwarders": sc.forwarders,
                          "rows": {f: [None if x is None else {"gen": x[0], "forwarder": x[1]} for x in rows[f]]
                                   for f in sc.forwarders}} for sc, rows in results]}
    render(doc)
    if a.json:
        json.dump(doc, open(a.json, "w"), indent=1)


def load(path):
    """A --json file of this harness (older files: a flat list of scenario/forwarder rows)."""
    d = json.load(open(path))
    if isinstance(d, dict):
        return d
    scs = {}
    for r in d:
        lab = r["scenario"]
        sc = scs.setdefault(lab, {"label": lab, "forwarders": [], "rows": {},
                                  "kind": "bond" if "bond" in lab else ("router" if lab.startswith("router") else "xconnect"),
                                  "workers": int(re.search(r" (\d+)w$", lab).group(1)) if re.search(r" (\d+)w$", lab) else 1})
        sc["forwarders"].append(r["forwarder"])
        sc["rows"][r["forwarder"]] = r["runs"]
    return {"meta": None, "scenarios": list(scs.values())}


def render(doc):
    print()
    print("| scenario | forwarder | Mpps | Gbit/s | loss % | reordered | latency p50/p99 µs | busy cycles/pkt "
          "| limited by | best run: Mpps @ cycles/pkt | fastlag/ref: Mpps, cycles/pkt (median; best run) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for sc in doc["scenarios"]:
        runs = {f: [(x["gen"], x["forwarder"]) if x else None for x in sc["rows"][f]] for f in sc["forwarders"]}
        ok = {f: [x for x in runs[f] if x and not stalled(x[0])] for f in sc["forwarders"]}
        ref, best = {}, {}
        for f in sc["forwarders"]:
            ref[f] = (med([g["rx"]["mpps"] for g, _ in ok[f]]), med([fw.get("cycles") for _, fw in ok[f]]))
            # The least disturbed run on a shared machine: the one with the most Mpps.
            b = max(ok[f], key=lambda x: x[0]["rx"]["mpps"], default=None)
            best[f] = (b[0]["rx"]["mpps"], b[1].get("cycles")) if b else (None, None)
        for f in sc["forwarders"]:
            okf = ok[f]
            failed = sum(1 for x in runs[f] if not x)
            nstalled = sum(1 for x in runs[f] if x and stalled(x[0]))
            mpps = [g["rx"]["mpps"] for g, _ in okf]
            gbps = [g["rx"]["gbps"] for g, _ in okf]
            loss = [g["window_loss_pct"] for g, _ in okf]
            reord = sum(g["total"]["reordered"] for g, _ in okf)
            p50 = med([g["latency_ns"]["p50"] / 1000 for g, _ in okf])
            p99 = med([g["latency_ns"]["p99"] / 1000 for g, _ in okf])
            cyc = [fw.get("cycles") for _, fw in okf]
            busy = med([fw.get("busy") for _, fw in okf])
            empty = med([fw.get("empty") for _, fw in okf])
            lim = "n/a" if busy is None else (
                "forwarder (busy %.0f%%)" % busy if busy >= 90 else "generator (forwarder busy %.0f%%%s)" % (
                    busy, ", %.0f%% empty polls" % empty if empty is not None else ""))
            bm, bc = best[f]
            bests = "n/a" if bm is None else "%.2f @ %s" % (bm, "%.1f" % bc if bc else "n/a")
            ratio = ""
            if f == "fastlag":
                parts = []
                for rf in sc["forwarders"]:
                    if rf == "fastlag" or not ref[rf][0] or not ref["fastlag"][0]:
                        continue
                    q = lambda x, y: "%.2f" % (x / y) if x and y else "n/a"
                    parts.append("vs %s: %s, %s; %s, %s" % (
                        LABEL[rf], q(ref["fastlag"][0], ref[rf][0]), q(ref["fastlag"][1], ref[rf][1]),
                        q(best["fastlag"][0], best[rf][0]), q(best["fastlag"][1], best[rf][1])))
                ratio = " / ".join(parts)
            name = LABEL[f] + (" + bonding" if sc["kind"] == "bond" and f != "fastlag" else "")
            print("| %s | %s%s | %s | %s | %s | %d | %s | %s | %s | %s | %s |" % (
                sc["label"], name, (" (%d failed)" % failed if failed else "") + (
                    " (%d stalled)" % nstalled if nstalled else ""), fmt(mpps, 3), fmt(gbps), fmt(loss, 3), reord,
                "%.0f/%.0f" % (p50, p99) if p50 is not None else "n/a", fmt(cyc, 1), lim, bests, ratio))
            if sc["workers"] > 1 and f == "fastlag":
                for _, fw in okf:
                    print("|  | per worker (tx packets: cycles/pkt) | %s | | | | | | | | |" % ", ".join(
                        "%d: %.1f" % (t, c) if c else "%d: n/a" % t for t, c in fw["per_worker"]))
    print()
    print("Mpps/Gbit/s: received back at the generator in the measurement window, both directions; Gbit/s "
          "counts frames with FCS (no preamble/IFG). busy cycles/pkt: forwarder TSC cycles in RX polls that "
          "returned packets / packets it forwarded, same window. Median of runs (min–max); best run: the run "
          "with the most Mpps (the least disturbed on a shared machine; cycles/pkt depend on burst fill, so "
          "compare forwarders at similar Mpps). IPv6 frames are 82 bytes (the smallest that holds headers and "
          "the generator's stamp). Stalled: a run with a second below 10% of its best (traffic stopped: another "
          "process on a CPU of ours), left out of the medians.")
    m = doc.get("meta")
    if m:
        print("# %d runs of %g s each, %s, %d CPUs, generator CPU %d, worker CPUs %s, %d s in all" % (
            m["runs"], m["seconds"], m["date"], m["cpus"], m["gen_cpu"], ",".join(map(str, m["worker_cpus"])),
            m["elapsed_s"]))

if __name__ == "__main__":
    main()
