#!/usr/bin/env python3
"""Suite `failover` driver: a 3-node mabeamd cluster on loopback
(scripts/cluster.sh) with 2,000 counter cluster agents, 1,000 on node 3 and
1,000 on node 2, each with its own count replicated in a checkpoint.

Per run (a fresh cluster each time):
  1. kill -9 of node 3 (a follower): time until all 1,000 of its agents are
     placed elsewhere (moved) and until every agent of the cluster reports
     running again (running); a sample of the moved agents must have kept
     its count (state from the replicated checkpoint).
  2. node 3 restarts and is marked up again; then node 2 (1,000 agents) is
     drained: time of POST /v1/nodes/2/drain until it answers (every agent
     runs elsewhere), and the drained counts are checked.
Prints one JSON object per run on stdout; progress on stderr."""
import base64
import concurrent.futures
import json
import os
import re
import random
import signal
import struct
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
CLUSTER = os.path.join(ROOT, "scripts", "cluster.sh")
DIR = os.environ["MABEAM_CLUSTER_DIR"]
BASE = int(os.environ.get("MABEAM_CLUSTER_PORT", "27700"))
PER_NODE = int(os.environ.get("MB_FAILOVER_AGENTS", "1000"))


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def url(node, path):
    return "http://127.0.0.1:%d%s" % (BASE + 10 * (node - 1), path)


def call(node, method, path, body=None, timeout=30):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url(node, path), data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read() or b"{}")


def wait(cond, secs, what):
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        try:
            if cond():
                return
        except Exception:
            pass
        time.sleep(0.05)
    raise SystemExit("failover bench: timed out waiting for " + what)


def checkpoint_rounds(node):
    """mb_placement_checkpoint_rounds_total of a node (its /metrics)."""
    with urllib.request.urlopen(url(node, "/metrics"), timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("mb_placement_checkpoint_rounds_total "):
                return float(line.split()[1])
    raise SystemExit("failover bench: no mb_placement_checkpoint_rounds_total on node %d" % node)


# Only the bench's own counters: every node also places its study evaluators.
def counts(node, query=""):
    j = call(node, "GET", "/v1/cluster/agents?limit=1&kind=counter" + query, timeout=5)
    return j["total"], j["by_status"]


def ckpt(node, name):
    j = call(node, "GET", "/v1/cluster/agents/%s/checkpoint" % name, timeout=5)
    return struct.unpack("<q", base64.b64decode(j["data_b64"]))[0]


def spawn_all(pool):
    names = []
    for node in (3, 2):
        for i in range(PER_NODE):
            names.append(("n%d-%04d" % (node, i), node))
    def one(x):
        call(1, "POST", "/v1/agents",
             {"kind": "counter", "name": x[0], "placement": "node:%d" % x[1]})
    list(pool.map(one, names))
    return names


def add_all(pool, names):
    def one(x):
        name, node = x
        delta = int(name.split("-")[1]) + 1
        call(node, "POST", "/v1/agents/%s/messages?namespace=cluster" % name,
             {"tag": 1, "data_b64": base64.b64encode(struct.pack("<q", delta)).decode()})
    list(pool.map(one, names))


def all_checkpointed(total):
    j = call(1, "GET", "/v1/cluster/agents?kind=counter&limit=%d" % total, timeout=10)
    return all(a["checkpoint_bytes"] is not None for a in j["agents"])


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime


def sent_bytes(pids):
    """TCP payload bytes sent by each pid's established sockets (raft + mesh)."""
    out = subprocess.run(["ss", "-tinpH", "state", "established"], capture_output=True,
                         text=True).stdout
    tot = {p: 0 for p in pids}
    mine = None
    for line in out.splitlines():
        if not line.startswith(("\t", " ")):
            mine = next((p for p in pids if ("pid=%d," % p) in line), None)
        elif mine is not None:
            m = re.search(r"bytes_sent:(\d+)", line)
            tot[mine] += int(m.group(1)) if m else 0
    return tot


def idle(seconds):
    """CPU % and bytes sent per second of each node over `seconds` of idle."""
    pids = [int(open(os.path.join(DIR, "n%d.pid" % i)).read()) for i in (1, 2, 3)]
    hz = os.sysconf("SC_CLK_TCK")
    c0, b0, t0 = {p: cpu_ticks(p) for p in pids}, sent_bytes(pids), time.time()
    time.sleep(seconds)  # a measurement window, not synchronisation
    dt = time.time() - t0
    c1, b1 = {p: cpu_ticks(p) for p in pids}, sent_bytes(pids)
    return ([round(100.0 * (c1[p] - c0[p]) / hz / dt, 2) for p in pids],
            [int((b1[p] - b0[p]) / dt) for p in pids])


def one_run(run, flags):
    subprocess.run([CLUSTER, "down"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run(["rm", "-rf", DIR], check=True)
    env = dict(os.environ, MABEAM_CLUSTER_FLAGS=flags)
    subprocess.run([CLUSTER, "up", "3"], check=True, env=env, stdout=subprocess.DEVNULL)
    total = 2 * PER_NODE
    idle_s = int(os.environ.get("MB_FAILOVER_IDLE_S", "10"))
    extra = {}
    if run == 1 and idle_s > 0:
        cpu, bps = idle(idle_s)
        log("run %d: idle %d s, no agents: cpu %% %s, bytes sent/s %s" % (run, idle_s, cpu, bps))
        extra = {"idle0_cpu_pct": cpu, "idle0_bytes_sent_per_s": bps}
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        t = time.monotonic()
        names = spawn_all(pool)
        wait(lambda: counts(1)[1]["running"] == total, 120, "all agents running")
        log("run %d: %d agents running (%.1f s)" % (run, total, time.monotonic() - t))
        add_all(pool, names)
    wait(lambda: all_checkpointed(total), 60, "checkpoints replicated")
    if run == 1 and idle_s > 0:
        # Past one periodic checkpoint round on every node (it checkpoints
        # the agents the adds woke), so the idle window measures idle.
        r0 = {i: checkpoint_rounds(i) for i in (1, 2, 3)}
        wait(lambda: all(checkpoint_rounds(i) > r0[i] for i in r0), 30,
             "a periodic checkpoint round on every node")
        cpu, bps = idle(idle_s)
        log("run %d: idle %d s with %d agents: cpu %% %s, bytes sent/s %s" %
            (run, idle_s, total, cpu, bps))
        extra.update({"idle_cpu_pct": cpu, "idle_bytes_sent_per_s": bps})
    leader = call(1, "GET", "/v1/cluster")["leader_id"]
    if leader == 3:
        raise SystemExit("failover bench: node 3 leads; the bench kills a follower")

    # 1. kill -9 of node 3
    pid = int(open(os.path.join(DIR, "n3.pid")).read())
    os.kill(pid, signal.SIGKILL)
    t0 = time.monotonic()
    moved = running = None
    while time.monotonic() - t0 < 60:
        left, _ = counts(1, "&node=3")
        now = time.monotonic()
        if left == 0 and moved is None:
            moved = now - t0
        if moved is not None and counts(1)[1]["running"] == total:
            running = time.monotonic() - t0
            break
        time.sleep(0.01)
    if running is None:
        raise SystemExit("failover bench: agents of node 3 not running elsewhere in 60 s")
    sample = random.sample([n for n, node in names if node == 3], 50)
    lost = [n for n in sample if ckpt(1, n) != int(n.split("-")[1]) + 1]
    log("run %d: kill -9 -> moved %.0f ms, all running %.0f ms, %d/50 sampled counts lost" %
        (run, moved * 1000, running * 1000, len(lost)))

    # 2. node 3 back (once the killed process is gone), then drain node 2
    def gone():
        try:
            os.kill(pid, 0)
            return False
        except ProcessLookupError:
            return True
    wait(gone, 10, "the killed node 3 to exit")
    subprocess.run([CLUSTER, "restart", "3"], check=True, env=env, stdout=subprocess.DEVNULL)
    wait(lambda: call(1, "GET", "/v1/nodes/3/drain")["status"] == "up", 60, "node 3 up again")
    t1 = time.monotonic()
    j = call(1, "POST", "/v1/nodes/2/drain?timeout_ms=60000", {}, timeout=70)
    drain = time.monotonic() - t1
    if not j.get("done"):
        raise SystemExit("failover bench: drain did not finish: %r" % j)
    sample2 = random.sample([n for n, node in names if node == 2], 50)
    lost2 = [n for n in sample2 if ckpt(1, n) != int(n.split("-")[1]) + 1]
    log("run %d: drain of node 2 (%d agents) %.0f ms, %d/50 sampled counts lost" %
        (run, PER_NODE, drain * 1000, len(lost2)))
    return {"moved_ms": round(moved * 1000), "running_ms": round(running * 1000),
            "drain_ms": round(drain * 1000), "lost": len(lost) + len(lost2), **extra}


def main():
    runs = int(os.environ.get("MB_FAILOVER_RUNS", "5"))
    flags = os.environ.get("MB_FAILOVER_FLAGS", "")
    try:
        for r in range(runs):
            print(json.dumps(one_run(r + 1, flags)), flush=True)
    finally:
        subprocess.run([CLUSTER, "down"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


if __name__ == "__main__":
    main()
