#!/usr/bin/env python3
"""Suite `cluster`, part "Agents and watches": run against a live 3-node
mabeamd cluster (scripts/bench.d/cluster.sh calls it at its end).

1. Watch fan-out: AGENTS agents of kind "fanout" (tests/bench/cluster/
   kind_fanout.c) spread round-robin over the nodes watch one float
   variable; once every node is quiet (under 3 % CPU for 2 s: spawns
   and the suite's earlier phases done; "settled_s" says how long that
   took), CHANGES times a client takes CLOCK_REALTIME in microseconds and
   PUTs it as the new value on the leader's HTTP API (RawSetter: the clock
   is read just before the request's bytes go out); each agent records
   (its var_changed time - that value). Percentiles over every (agent,
   change) sample; a missing delivery is counted, never hidden.
2. Idle cluster with those agents: CPU per node from /proc/<pid>/stat
   (utime+stime) over IDLE seconds, and TCP payload bytes sent per node
   (bytes_sent of its established sockets, `ss -ti`).

JSON lines on stdout ({"suite":"cluster","metric":..,"value":..,"unit":..}),
progress on stderr.
"""
import argparse
import base64
import http.client
import json
import os
import re
import socket
import struct
import subprocess
import sys
import time


def log(msg):
    sys.stderr.write("cluster/agents: %s\n" % msg)
    sys.stderr.flush()


def emit(metric, value, unit, **extra):
    d = {"suite": "cluster", "metric": metric, "value": value, "unit": unit}
    d.update(extra)
    print(json.dumps(d, separators=(",", ":")), flush=True)


class Node:
    def __init__(self, addr):
        self.addr = addr
        host, port = addr.rsplit(":", 1)
        self.conn = http.client.HTTPConnection(host, int(port), timeout=30)

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        hdrs = {"Content-Type": "application/json"} if data is not None else {}
        for attempt in range(3):
            try:
                self.conn.request(method, path, body=data, headers=hdrs)
                r = self.conn.getresponse()
                text = r.read()
                return r.status, (json.loads(text) if text else {})
            except (http.client.HTTPException, ConnectionError, OSError):
                self.conn.close()
                if attempt == 2:
                    raise
        raise RuntimeError("unreachable")


class RawSetter:
    """The fan-out's writer: PUT /v1/vars/NAME {"value": TS} on one
    keep-alive connection, as the load generator of the write rounds (wrk)
    does it, with the clock read just before the request's bytes go out.

    Python's http.client (Node.call), back cold from the 30 ms pause
    between changes, spent 0.25-0.45 ms at the median building and sending
    a request after the timestamp was taken; that time is the client's,
    not the cluster's, and it landed in every sample (docs/BENCHMARKS.md,
    session 10). Here the request is one preformatted byte string and one
    sendall(); the answer, read after the agents' clock started, is parsed
    by http.client as usual."""

    def __init__(self, addr, var):
        host, port = addr.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.head = ("PUT /v1/vars/%s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: " % (var, addr)).encode()

    def set_now(self):
        """Set the variable to now (µs, CLOCK_REALTIME); (the raw answer,
        µs the request took). The answer is only received here, with
        plain recv() calls: parse() reads it later, after the pause.

        This client shares the cluster's two cores. Parsing the answer with
        http.client as it arrived cost 0.4 ms of CPU in the middle of the
        fan-out, and building the response object after the send kept the
        leader waiting for the core (perf sched, docs/BENCHMARKS.md, session
        14): both delayed the deliveries being measured."""
        ts = time.time_ns() // 1000
        body = b'{"value":%d}' % ts
        self.sock.sendall(self.head + b"%d\r\n\r\n" % len(body) + body)
        buf = b""
        while True:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the leader closed the connection")
            buf += chunk
            he = buf.find(b"\r\n\r\n")
            if he < 0:
                continue
            m = re.search(rb"(?im)^content-length:\s*(\d+)", buf[:he])
            if m is None or len(buf) >= he + 4 + int(m.group(1)):
                break
        return buf, time.time_ns() // 1000 - ts

    @staticmethod
    def parse(raw):
        """(status, body text) of an answer set_now() received."""
        head, _, body = raw.partition(b"\r\n\r\n")
        status_line = head.split(b"\r\n", 1)[0].split()
        status = int(status_line[1]) if len(status_line) > 1 and status_line[1].isdigit() else 0
        return status, body.decode("utf-8", "replace")

    def close(self):
        self.sock.close()


def pct(sorted_vals, p):
    if not sorted_vals:
        return -1
    k = max(0, min(len(sorted_vals) - 1, int(round(p / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[k]


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)


def wait_quiet(pids, pct=3.0, window_s=1.0, windows=2, timeout_s=60.0):
    """Wait until start-up work (joins, placement, spawns) has settled:
    `windows` windows of window_s in a row in which every process used
    under pct % of a CPU. True when it did, False at the deadline (the
    caller says so)."""
    hz = os.sysconf("SC_CLK_TCK")
    deadline = time.time() + timeout_s
    quiet = 0
    while time.time() < deadline:
        c0 = {p: cpu_ticks(p) for p in pids}
        t0 = time.time()
        time.sleep(window_s)  # the measurement window, not a settling guess
        dt = time.time() - t0
        if all(100.0 * (cpu_ticks(p) - c0[p]) / hz / dt < pct for p in pids):
            quiet += 1
            if quiet == windows:
                return True
        else:
            quiet = 0
    return False


def thread_ticks(pid):
    """utime+stime per thread group name of one process: the loop (the main
    thread), mb-worker-N, nng:*, rocksdb:*, libuv's pool (named like the
    process)... so the idle figure says where its CPU went."""
    tot = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                name = f.read().strip()
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the thread ended
        if int(tid) == pid:
            name = "loop"
        name = re.sub(r"[-:]?\d+$", "", name)
        tot[name] = tot.get(name, 0) + int(fields[11]) + int(fields[12])
    return tot


def ctx_switches(pid, main_only=False):
    """Context switches of a process: voluntary and involuntary ones of all
    its threads, or (main_only) the voluntary ones of its main thread, that
    is the event loop's wake-ups. Also used by tests/bench/cluster/
    idle_round.sh and idle_ab.sh."""
    tids = [str(pid)] if main_only else os.listdir("/proc/%d/task" % pid)
    keys = ("voluntary_ctxt_switches",) if main_only else \
        ("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")
    t = 0
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                t += sum(int(l.split()[1]) for l in f if l.split(":")[0] in keys)
        except OSError:
            pass  # the thread ended
    return t


def sent_bytes(pids):
    out = subprocess.run(["ss", "-tinpH", "state", "established"], capture_output=True,
                         text=True).stdout
    tot = {p: 0 for p in pids}
    mine = None
    for line in out.splitlines():
        if not line.startswith(("\t", " ")):
            mine = None
            for p in pids:
                if ("pid=%d," % p) in line:
                    mine = p
        elif mine is not None:
            m = re.search(r"bytes_sent:(\d+)", line)
            tot[mine] += int(m.group(1)) if m else 0
    return tot


def disk_counts():
    """The machine's physical disks (those in /sys/block that are not
    virtual), summed: writes, cache flushes and KiB written so far
    (/proc/diskstats), and the page cache's dirty and writeback KiB. The
    changes' figure then says how much else the disk was doing meanwhile:
    writeback a process's CPU does not show."""
    disks = {d for d in os.listdir("/sys/block")
             if "/virtual/" not in os.path.realpath("/sys/block/" + d)}
    c = {"writes": 0, "flushes": 0, "kib": 0}
    with open("/proc/diskstats") as f:
        for line in f:
            x = line.split()
            if len(x) >= 14 and x[2] in disks:
                c["writes"] += int(x[7])
                c["kib"] += int(x[9]) // 2  # 512-byte sectors
                c["flushes"] += int(x[18]) if len(x) >= 20 else 0
    with open("/proc/meminfo") as f:
        for line in f:
            k, v = line.split(":", 1)
            if k in ("Dirty", "Writeback"):
                c[k.lower() + "_kib"] = int(v.split()[0])
    return c


def host_ticks():
    """The machine's CPU ticks so far (/proc/stat, all cores): busy (user,
    nice, system, irq, softirq), stolen by the hypervisor, and in all."""
    with open("/proc/stat") as f:
        x = [int(v) for v in f.readline().split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = x
    return {"busy": user + nice + system + irq + softirq, "steal": steal, "all": sum(x)}


def wait_watches(leader, agents, var, timeout_s=120):
    """Wait until every agent's watch has reached its node's loop (an agent
    registers it from init, through a queue): set one probe value and wait,
    bounded, until each agent's checkpoint holds a sample. That first sample
    is the probe's and is left out at collection."""
    st, body = leader.call("PUT", "/v1/vars/%s" % var, {"value": time.time_ns() // 1000})
    if st != 200:
        sys.exit("probe set: %s %s" % (st, body))
    deadline = time.time() + timeout_s
    for n, aid in agents:
        asked = 0.0
        while True:
            if time.time() - asked > 0.2:  # a checkpoint taken before the probe arrived
                n.call("POST", "/v1/agents/%s/messages" % aid, {"tag": 1})
                asked = time.time()
            st, body = n.call("GET", "/v1/agents/%s/checkpoint" % aid)
            if st == 200 and body.get("bytes", 0) >= 8:
                break
            if time.time() > deadline:
                sys.exit("agent %s on %s never saw the probe change" % (aid, n.addr))
            time.sleep(0.02)  # polling interval of the condition above
    log("every watch registered (probe change seen by %d agents)" % len(agents))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--http", required=True, help="comma-separated HTTP addresses of the nodes")
    ap.add_argument("--pids", required=True, help="comma-separated pids, same order")
    ap.add_argument("--kind", required=True, help="absolute path of libbench_kind_fanout.so")
    ap.add_argument("--agents", type=int, default=1000)
    ap.add_argument("--changes", type=int, default=300)
    ap.add_argument("--gap-ms", type=int, default=30, help="pause between changes")
    ap.add_argument("--idle", type=int, default=30, help="idle measurement, seconds")
    ap.add_argument("--set-client", choices=("raw", "http.client"), default="raw",
                    help="how the fan-out's changes are sent (see RawSetter)")
    a = ap.parse_args()
    nodes = [Node(x) for x in a.http.split(",")]
    pids = [int(x) for x in a.pids.split(",")]

    st, j = nodes[0].call("GET", "/v1/cluster")
    leader_id = j["leader_id"]
    leader = None
    for n in j["nodes"]:
        if n["id"] == leader_id:
            for x in nodes:
                if x.addr == n.get("api"):
                    leader = x
    leader = leader or nodes[0]
    log("leader %s at %s" % (leader_id, leader.addr))

    var = "fanout_ts_us"
    st, body = leader.call("POST", "/v1/vars", {"name": var, "type": "float", "min": 0,
                                                 "max": 1e17, "value": 0})
    if st not in (200, 201, 409):
        sys.exit("define %s: %s %s" % (var, st, body))
    deadline = time.time() + 30
    for n in nodes:
        while n.call("GET", "/v1/vars/%s?consistency=stale" % var)[0] != 200:
            if time.time() > deadline:
                sys.exit("variable not applied on %s" % n.addr)
            time.sleep(0.05)
        st, body = n.call("POST", "/v1/kinds", {"path": a.kind})
        if st not in (200, 201) and "already" not in json.dumps(body):
            sys.exit("kind load on %s: %s %s" % (n.addr, st, body))

    log("spawning %d agents" % a.agents)
    agents = []  # (node, id)
    t0 = time.time()
    for i in range(a.agents):
        n = nodes[i % len(nodes)]
        st, body = n.call("POST", "/v1/agents", {"kind": "fanout", "config": var})
        if st not in (200, 201):
            sys.exit("spawn on %s: %s %s" % (n.addr, st, body))
        agents.append((n, body["id"]))
    log("spawned in %.1f s" % (time.time() - t0))
    wait_watches(leader, agents, var)
    # Measure the steady state: the spawns, and the suite's earlier phases
    # (a failover's catch-up, compactions after the write rounds), first
    # finish their work.
    t0 = time.time()
    quiet = wait_quiet(pids)
    settle_s = round(time.time() - t0, 1)
    log("nodes quiet after %.1f s" % settle_s if quiet else
        "the nodes never went quiet (3 %% CPU over 2 s) in %.0f s: measuring anyway" % settle_s)

    log("%d changes, %d ms apart, set on the leader" % (a.changes, a.gap_ms))
    put_ms = []
    sent_us = []  # when each change was sent (MB_FANOUT_TRACE)
    setter = RawSetter(leader.addr, var) if a.set_client == "raw" else None
    ticks0 = sum(cpu_ticks(p) for p in pids)
    disk0 = disk_counts()
    host0, me0 = host_ticks(), cpu_ticks(os.getpid())
    debug = bool(os.environ.get("MB_FANOUT_DEBUG"))
    roles0 = {p: thread_ticks(p) for p in pids} if debug else {}
    for k in range(a.changes):
        sent_us.append(time.time_ns() // 1000)
        if setter is not None:
            raw, us = setter.set_now()
            time.sleep(a.gap_ms / 1000.0)  # the pause first: see set_now
            st, body = setter.parse(raw)
        else:  # the client used before session 10, for comparison
            ts = time.time_ns() // 1000
            st, body = leader.call("PUT", "/v1/vars/%s" % var, {"value": ts})
            us = time.time_ns() // 1000 - ts
            time.sleep(a.gap_ms / 1000.0)
        put_ms.append(us / 1000.0)
        if st != 200:
            sys.exit("set: %s %s" % (st, body))
    if setter is not None:
        setter.close()
    time.sleep(1.0)

    # CPU of the three nodes over the changes (commits, deliveries and the
    # idle work of 30 ms gaps), per delivery: a figure the machine's
    # noise moves less than the latency.
    nodes_ticks = sum(cpu_ticks(p) for p in pids) - ticks0
    change_cpu_s = nodes_ticks / os.sysconf("SC_CLK_TCK")
    # The rest of the machine meanwhile, in % of all its cores: the CPU of
    # other processes (the nodes' and this client's taken out), and the
    # time the hypervisor gave to other guests.
    host1, me1 = host_ticks(), cpu_ticks(os.getpid())
    span = max(host1["all"] - host0["all"], 1)
    others = host1["busy"] - host0["busy"] - nodes_ticks - (me1 - me0)
    host = {"others_cpu_pct": round(100.0 * max(others, 0) / span, 1),
            "steal_pct": round(100.0 * (host1["steal"] - host0["steal"]) / span, 1)}
    disk1 = disk_counts()
    disk = {"%s_per_change" % k: round((disk1[k] - disk0[k]) / a.changes, 2)
            for k in ("writes", "flushes", "kib")}
    disk["dirty_kib_at_start"] = disk0.get("dirty_kib", -1)
    disk["writeback_kib_at_start"] = disk0.get("writeback_kib", -1)
    if debug:
        # Where the changes' CPU went, per thread role over the 3 nodes
        # (ms per change; the 30 ms gaps' idle work included).
        hz, per = os.sysconf("SC_CLK_TCK"), {}
        for p in pids:
            for k, v in thread_ticks(p).items():
                d = (v - roles0[p].get(k, 0)) * 1000.0 / hz / a.changes
                per[k] = per.get(k, 0) + d
        log("CPU per change by thread role (ms, 3 nodes): %s" %
            ", ".join("%s %.2f" % (k, v) for k, v in sorted(per.items(), key=lambda x: -x[1])
                      if v > 0.005))
    log("collecting")
    for n, aid in agents:
        n.call("POST", "/v1/agents/%s/messages" % aid, {"tag": 1})
    lat = []
    per_node = {n.addr: [] for n in nodes}
    missing = 0
    deadline = time.time() + 60
    for n, aid in agents:
        got = None
        while got is None:
            st, body = n.call("GET", "/v1/agents/%s/checkpoint" % aid)
            if st == 200 and body.get("bytes", 0) >= 8 * (a.changes + 1):
                got = body
            elif time.time() > deadline:
                got = body if st == 200 else {"data_b64": ""}
            else:
                time.sleep(0.02)
        raw = base64.b64decode(got.get("data_b64", ""))
        vals = list(struct.unpack("<%dq" % (len(raw) // 8), raw[: len(raw) // 8 * 8]))[1:]
        missing += max(0, a.changes - len(vals))
        lat.extend(vals)
        per_node[n.addr].extend(vals)
    # Each node's samples by change (an agent's samples are in change
    # order), for the two diagnostics below.
    by_change = {addr: {} for addr in per_node}
    if os.environ.get("MB_FANOUT_DEBUG") or os.environ.get("MB_FANOUT_TRACE"):
        for addr, v in per_node.items():
            for i, x in enumerate(v):
                by_change[addr].setdefault(i % a.changes, []).append(x)
    if os.environ.get("MB_FANOUT_DEBUG"):
        # Per node: the five slowest changes; the first agent's latency per
        # change (the commit's share) and the spread from the first to the
        # last agent (the delivery's share); and the p99 of every sample
        # if each agent had seen its change as early as its node's first.
        first_only = []
        for addr, per_change in by_change.items():
            slow = sorted((max(x), k) for k, x in per_change.items())[-5:]
            log("%s slowest changes (max us, change#): %s" % (addr, slow))
            firsts = sorted(min(x) for x in per_change.values())
            spreads = sorted(max(x) - min(x) for x in per_change.values())
            log("%s first agent p50/p99 %d/%d us; spread to the last p50/p90/p99 %d/%d/%d us" %
                (addr, pct(firsts, 50), pct(firsts, 99), pct(spreads, 50), pct(spreads, 90),
                 pct(spreads, 99)))
            for x in per_change.values():
                first_only.extend([min(x)] * len(x))
        log("p99 of all samples if none came later than its node's first: %.3f ms" %
            (pct(sorted(first_only), 99) / 1000.0))
    if os.environ.get("MB_FANOUT_TRACE"):
        # One JSON line per change: when it was sent (CLOCK_REALTIME µs),
        # the round trip of its PUT (the leader answers after its own
        # apply) and its slowest delivery on each node, to lay over a
        # trace of the host's scheduler.
        with open(os.environ["MB_FANOUT_TRACE"], "w") as f:
            for k in range(a.changes):
                slowest = {addr: max(pc[k]) for addr, pc in by_change.items() if k in pc}
                f.write(json.dumps({"change": k, "sent_us": sent_us[k],
                                    "put_us": round(put_ms[k] * 1000),
                                    "slowest_us": slowest}) + "\n")
    lat.sort()
    ms = [v / 1000.0 for v in lat]
    emit("watch_fanout_p99_ms", round(pct(ms, 99), 3), "ms", p50_ms=round(pct(ms, 50), 3),
         p90_ms=round(pct(ms, 90), 3), max_ms=round(ms[-1], 3) if ms else -1,
         agents=a.agents, nodes=len(nodes), changes=a.changes, samples=len(ms),
         missing=missing, set_http_p50_ms=round(pct(sorted(put_ms), 50), 3), target=5,
         settled_s=settle_s, settled=quiet, set_client=a.set_client,
         cpu_us_per_delivery=round(change_cpu_s * 1e6 / max(a.changes * a.agents, 1), 2),
         disk=disk, host=host,
         per_node_p50_p99_ms={k + (" (leader)" if k == leader.addr else ""):
                              [round(pct(sorted(v), 50) / 1000.0, 3),
                               round(pct(sorted(v), 99) / 1000.0, 3)]
                              for k, v in per_node.items()})

    log("idle %d s with %d agents" % (a.idle, a.agents))
    if not wait_quiet(pids):
        log("the nodes never went quiet (3 % CPU over 2 s) in 60 s: measuring anyway")
    hz = os.sysconf("SC_CLK_TCK")
    c0 = {p: cpu_ticks(p) for p in pids}
    t0s = {p: thread_ticks(p) for p in pids}
    b0 = sent_bytes(pids)
    t0 = time.time()
    time.sleep(a.idle)
    dt = time.time() - t0
    c1 = {p: cpu_ticks(p) for p in pids}
    t1s = {p: thread_ticks(p) for p in pids}
    b1 = sent_bytes(pids)
    cpu = [round(100.0 * (c1[p] - c0[p]) / hz / dt, 3) for p in pids]
    bps = [int((b1[p] - b0[p]) / dt) for p in pids]
    threads = []  # per node: {thread name: CPU %}, the busiest first
    for p in pids:
        d = {k: 100.0 * (v - t0s[p].get(k, 0)) / hz / dt for k, v in t1s[p].items()}
        threads.append({k: round(v, 3) for k, v in sorted(d.items(), key=lambda kv: -kv[1])
                        if v > 0})
    emit("idle_cpu_pct_per_node_max_with_agents", max(cpu), "%", nodes=cpu, agents=a.agents,
         seconds=round(dt, 1), target=1, threads=threads)
    emit("idle_bytes_sent_per_node_max_with_agents", max(bps), "B/s", nodes=bps,
         agents=a.agents, target=10240)


if __name__ == "__main__":
    main()
