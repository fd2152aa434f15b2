#!/usr/bin/env python3
"""Client workload of the partition suite.

Clients (threads, one "process" each) run set, compare-and-set and
linearizable get on a few int variables against mabeamd's HTTP API and record
every completed invocation as one JSON line (format: docs/partition-testing.md)
with CLOCK_MONOTONIC invocation/completion times and an outcome:
  2xx -> ok; 409 on cas -> fail (conflict); other 4xx -> fail;
  503 MB_ENOQUORUM -> fail (definitely not applied); connection refused -> fail;
  timeout, reset, 5xx otherwise (MB_EUNKNOWN...) -> unknown for writes.
Reads that do not answer 200 are recorded as fail (they observe nothing).
Every loop is bounded by --duration and by per-request timeouts.

  workload.py run --nodes IP:PORT,... --out history.jsonl [--clients K]
              [--vars N] [--duration S] [--seed N] [--timeout-s T]
  workload.py final-reads --nodes ... --out history.jsonl [--vars N]
              (appends one get per node and variable, after the cluster healed)
  workload.py dump-events --nodes IP:PORT --out events.json
              (GET /v1/events?log=cluster, every page via next_cursor, one
              page per line; at most 1000 pages)
  workload.py run ... --agents A --checkpoints-out FILE
              (also spawns A counter cluster agents spread over the nodes,
              sends them ADDs, and records every node's view of their
              replicated checkpoint versions as JSON lines
              {"node","name","version","t_ns"} for mb-lincheck checkpoints;
              "node" is node_index * 10^7 + pid, one key per incarnation)
  workload.py agents-check --nodes ... --out agents-check.json [--duration S]
              (after convergence: waits, at most S seconds, until every
              node's table agrees, every agent is running, and each runs
              on exactly one node, the one it is placed on; exit 0 / 1)
  workload.py wait-converged --nodes ... [--duration S]
              (waits, at most S seconds, until every node answers
              GET /v1/cluster, all name the same leader and report the same
              applied index; exit 0 converged, 1 not)
"""
import urllib.parse
import argparse
import base64
import struct
import http.client
import json
import random
import socket
import sys
import threading
import time

VALUE_MIN = -1000000000
VALUE_MAX = 1000000000
REFUSED = ("ECONNREFUSED", "ConnectionRefusedError")


def now_ns():
    return time.monotonic_ns()


def request(node, method, path, body, timeout_s):
    """Returns (status, json_or_None) or raises OSError/HTTPException."""
    host, port = node.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout_s)
    try:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
        try:
            doc = json.loads(raw) if raw else None
        except ValueError:
            doc = None
        return resp.status, doc
    finally:
        conn.close()


def error_code(doc):
    if isinstance(doc, dict) and isinstance(doc.get("error"), dict):
        code = doc["error"].get("code")
        return code if isinstance(code, str) else None
    return None


def error_message(doc):
    if isinstance(doc, dict) and isinstance(doc.get("error"), dict):
        msg = doc["error"].get("message")
        return msg if isinstance(msg, str) else ""
    return ""


def classify_write(status, doc, is_cas):
    """Outcome and error name of a write from its HTTP answer."""
    code = error_code(doc)
    if 200 <= status < 300:
        return "ok", None
    if status == 409 and is_cas:
        return "fail", code or "MB_ECONFLICT"
    if 400 <= status < 500:
        return "fail", code or "HTTP_%d" % status
    if status == 503 and code == "MB_ENOQUORUM" and "outcome unknown" not in error_message(doc):
        return "fail", code
    return "unknown", code or "HTTP_%d" % status


def int_or_none(v):
    return v if isinstance(v, int) and not isinstance(v, bool) else None


class Client(threading.Thread):
    def __init__(self, process, node, names, deadline_ns, seed, timeout_s):
        super().__init__(daemon=True)
        self.process = process
        self.node = node
        self.names = names
        self.deadline_ns = deadline_ns
        self.rng = random.Random(seed)
        self.timeout_s = timeout_s
        self.history = []
        self.counter = 0
        self.last_version = {}

    def record(self, rec):
        rec["process"] = self.process
        self.history.append(rec)

    def next_value(self):
        self.counter += 1
        return (self.process * 10000000 + self.counter) % VALUE_MAX

    def do_get(self, var):
        t0 = now_ns()
        try:
            status, doc = request(self.node, "GET", "/v1/vars/" + var, None, self.timeout_s)
        except (OSError, http.client.HTTPException) as e:
            self.record({"op": "get", "var": var, "invoke_ns": t0, "complete_ns": now_ns(),
                         "outcome": "fail", "error": type(e).__name__})
            return
        t1 = now_ns()
        if status == 200 and isinstance(doc, dict) and "value" in doc:
            rec = {"op": "get", "var": var, "invoke_ns": t0, "complete_ns": t1,
                   "outcome": "ok", "result": int_or_none(doc.get("value"))}
            if int_or_none(doc.get("version")) is not None:
                rec["version"] = doc["version"]
                self.last_version[var] = doc["version"]
            self.record(rec)
        else:
            self.record({"op": "get", "var": var, "invoke_ns": t0, "complete_ns": t1,
                         "outcome": "fail", "error": error_code(doc) or "HTTP_%d" % status})

    def do_write(self, var, is_cas):
        value = self.next_value()
        rec = {"op": "cas" if is_cas else "set", "var": var, "value": value}
        if is_cas:
            expected = self.last_version.get(var, 0)
            rec["expected_version"] = expected
            path, method = "/v1/vars/%s/cas" % var, "POST"
            body = {"value": value, "expected_version": expected}
        else:
            path, method = "/v1/vars/" + var, "PUT"
            body = {"value": value, "request_id": "c%d-%d" % (self.process, self.counter)}
        t0 = now_ns()
        rec["invoke_ns"] = t0
        try:
            status, doc = request(self.node, method, path, body, self.timeout_s)
        except ConnectionRefusedError:
            rec.update(complete_ns=now_ns(), outcome="fail", error="ECONNREFUSED")
            self.record(rec)
            return
        except (OSError, http.client.HTTPException) as e:
            rec.update(outcome="unknown", error=type(e).__name__)
            self.record(rec)
            return
        outcome, err = classify_write(status, doc, is_cas)
        rec["outcome"] = outcome
        if outcome != "unknown":
            rec["complete_ns"] = now_ns()
        if err:
            rec["error"] = err
        if outcome == "ok" and isinstance(doc, dict) and int_or_none(doc.get("version")) is not None:
            rec["version"] = doc["version"]
            self.last_version[var] = doc["version"]
        self.record(rec)

    def run(self):
        while now_ns() < self.deadline_ns:
            if self.history and self.history[-1].get("error") in REFUSED:
                # The node is down: pace the retries instead of recording
                # thousands of refusals (not synchronisation).
                time.sleep(0.05)
            var = self.rng.choice(self.names)
            r = self.rng.random()
            if r < 0.4:
                self.do_get(var)
            elif r < 0.75:
                self.do_write(var, False)
            else:
                self.do_write(var, True)


def create_vars(nodes, names, timeout_s, deadline_s=60):
    """Create each variable (201, or 409 when it exists), retrying on every
    node in turn until a bounded deadline."""
    end = time.monotonic() + deadline_s
    for name in names:
        done = False
        i = 0
        while not done and time.monotonic() < end:
            node = nodes[i % len(nodes)]
            i += 1
            try:
                status, _ = request(node, "POST", "/v1/vars",
                                    {"name": name, "type": "int", "min": VALUE_MIN,
                                     "max": VALUE_MAX}, timeout_s)
                done = status in (200, 201, 409)
            except (OSError, http.client.HTTPException):
                pass
            if not done:
                time.sleep(0.2)  # retry pacing, not synchronisation
        if not done:
            raise SystemExit("workload: could not create variable %s" % name)


def initial_states(nodes, names, timeout_s, deadline_s=30):
    """Each variable's state before the clients start, as "init" records for
    the checker (a new variable may not be "never written, version 0")."""
    end = time.monotonic() + deadline_s
    out = []
    for name in names:
        i = 0
        while time.monotonic() < end:
            node = nodes[i % len(nodes)]
            i += 1
            try:
                status, doc = request(node, "GET", "/v1/vars/" + name, None, timeout_s)
            except (OSError, http.client.HTTPException):
                status, doc = 0, None
            if status == 200 and isinstance(doc, dict) and "value" in doc:
                rec = {"op": "init", "var": name, "value": int_or_none(doc.get("value"))}
                if int_or_none(doc.get("version")) is not None:
                    rec["version"] = doc["version"]
                out.append(rec)
                break
            time.sleep(0.2)  # retry pacing, not synchronisation
    return out


AGENT_ADD_TAG = 1  # MB_TAG_COUNTER_ADD (include/mabeam/agent_runtime.h)


def get_json(node, path, timeout_s=2.0):
    try:
        status, doc = request(node, "GET", path, None, timeout_s)
    except (OSError, http.client.HTTPException):
        return None
    return doc if status == 200 and isinstance(doc, dict) else None


def spawn_agents(nodes, count, deadline_s=60):
    """Spawn `count` counter cluster agents a0.. (spread:load), retrying on
    every node in turn until a bounded deadline."""
    end = time.monotonic() + deadline_s
    names = ["a%d" % i for i in range(count)]
    for name in names:
        i = 0
        done = False
        while not done and time.monotonic() < end:
            node = nodes[i % len(nodes)]
            i += 1
            try:
                status, _ = request(node, "POST", "/v1/agents",
                                    {"kind": "counter", "name": name, "placement": "spread:load"},
                                    4.0)
                done = status in (201, 409)
            except (OSError, http.client.HTTPException):
                pass
            if not done:
                time.sleep(0.2)  # retry pacing, not synchronisation
        if not done:
            raise SystemExit("workload: could not spawn agent %s" % name)
    return names


class AgentClient(threading.Thread):
    """Sends ADD 1 to random agents (on the node their table says) and polls
    every node's table, recording checkpoint versions per node incarnation."""

    def __init__(self, nodes, names, deadline_ns, seed, out_path):
        super().__init__(daemon=True)
        self.nodes = nodes
        self.names = names
        self.deadline_ns = deadline_ns
        self.rng = random.Random(seed)
        self.out_path = out_path
        self.obs = []
        self.adds_ok = 0
        self.adds_failed = 0

    def poll(self):
        for i, node in enumerate(self.nodes):
            st = get_json(node, "/v1/status", 1.0)
            table = get_json(node, "/v1/cluster/agents?limit=10000", 1.0)
            t = now_ns()
            if st is None or table is None or not isinstance(st.get("pid"), int):
                continue
            key = (i + 1) * 10000000 + st["pid"]
            for a in table.get("agents") or []:
                v = a.get("checkpoint_version")
                if isinstance(a.get("id"), str) and isinstance(v, int):
                    self.obs.append({"node": key, "name": a["id"], "version": v, "t_ns": t})

    def add(self):
        name = self.rng.choice(self.names)
        a = get_json(self.rng.choice(self.nodes), "/v1/cluster/agents/" + name, 1.0)
        if a is None or not isinstance(a.get("node"), int) or not 1 <= a["node"] <= len(self.nodes):
            self.adds_failed += 1
            return
        data = base64.b64encode(struct.pack("<q", 1)).decode()
        try:
            status, _ = request(self.nodes[a["node"] - 1], "POST",
                                "/v1/agents/%s/messages?namespace=cluster" % name,
                                {"tag": AGENT_ADD_TAG, "data_b64": data}, 1.0)
        except (OSError, http.client.HTTPException):
            status = 0
        if status == 202:
            self.adds_ok += 1
        else:
            self.adds_failed += 1

    def run(self):
        n = 0
        while now_ns() < self.deadline_ns:
            self.add()
            n += 1
            if n % 3 == 0:
                self.poll()
            time.sleep(0.05)  # load pacing, not synchronisation
        self.poll()

    def write(self):
        with open(self.out_path, "w") as f:
            for o in self.obs:
                f.write(json.dumps(o) + "\n")


def agents_view(nodes):
    """(tables, locals): each node's replicated table {id: (node, generation,
    status)} and the set of cluster agent names running in its runtime;
    None for a node that does not answer."""
    tables, locals_ = [], []
    for node in nodes:
        t = get_json(node, "/v1/cluster/agents?limit=10000")
        l = get_json(node, "/v1/agents?namespace=cluster&limit=1000")
        tables.append(None if t is None else {
            a.get("id"): (a.get("node"), a.get("generation"), a.get("status"))
            for a in t.get("agents") or []})
        locals_.append(None if l is None else sorted(
            a.get("name") for a in l.get("agents") or [] if a.get("status") == "running"))
    return tables, locals_


def agents_problems(nodes, tables, locals_):
    """What keeps the agents from 'each running exactly once, where placed'."""
    probs = []
    if any(t is None for t in tables) or any(l is None for l in locals_):
        return ["a node does not answer"]
    if any(t != tables[0] for t in tables):
        probs.append("the nodes' agent tables differ")
    for aid, (placed, gen, status) in sorted(tables[0].items()):
        runners = [i + 1 for i, l in enumerate(locals_) if aid in l]
        if status != "running":
            probs.append("%s is %s" % (aid, status))
        if runners != [placed]:
            probs.append("%s (placed on %s, generation %s) runs on %s" % (aid, placed, gen, runners))
    for i, l in enumerate(locals_):
        for name in l:
            if name not in tables[0]:
                probs.append("node %d runs %s, which is not in the table" % (i + 1, name))
    return probs


def agents_check(nodes, out, deadline_s):
    end = time.monotonic() + deadline_s
    ok_rounds = 0
    probs = ["not checked"]
    tables = [None]
    while time.monotonic() < end:
        tables, locals_ = agents_view(nodes)
        probs = agents_problems(nodes, tables, locals_)
        ok_rounds = ok_rounds + 1 if not probs else 0
        if ok_rounds >= 2:
            break
        time.sleep(0.3)  # poll pacing
    count = len(tables[0]) if tables and tables[0] is not None else 0
    res = {"check": "agents", "ok": ok_rounds >= 2, "agents": count}
    if ok_rounds < 2:
        res["detail"] = probs[:20]
    with open(out, "w") as f:
        json.dump(res, f)
        f.write("\n")
    print("workload: agents check: %s" % json.dumps(res), file=sys.stderr)
    return 0 if res["ok"] else 1


def node_self_status(node, timeout_s):
    """(leader_id, term, applied_index, raft_state) as `node` reports itself,
    or None when it does not answer."""
    try:
        status, doc = request(node, "GET", "/v1/cluster", None, timeout_s)
    except (OSError, http.client.HTTPException):
        return None
    if status != 200 or not isinstance(doc, dict):
        return None
    me = doc.get("node_id")
    for e in doc.get("nodes") or []:
        if isinstance(e, dict) and e.get("id") == me:
            return (e.get("leader_id"), e.get("term"), e.get("applied_index"),
                    e.get("raft_state"))
    return None


def wait_converged(nodes, deadline_s):
    """Every node up, one leader known to all, the same applied index on all
    (twice in a row, so that a burst still being applied is not taken for
    the end)."""
    end = time.monotonic() + deadline_s
    agreed = 0
    last = None
    while time.monotonic() < end:
        views = [node_self_status(n, 2.0) for n in nodes]
        ok = all(v is not None for v in views)
        if ok:
            leaders = {v[0] for v in views}
            applied = {v[2] for v in views}
            leader = next(iter(leaders))
            ok = (len(leaders) == 1 and isinstance(leader, int) and leader > 0
                  and len(applied) == 1
                  and sum(1 for v in views if v[3] == "leader") == 1)
        if ok and views == last:
            agreed += 1
            if agreed >= 2:
                print("workload: converged: %s" % json.dumps(views), file=sys.stderr)
                return 0
        else:
            agreed = 0
        last = views if ok else None
        time.sleep(0.3)  # poll pacing
    print("workload: not converged after %.0f s: %s" % (deadline_s, json.dumps(last or views)),
          file=sys.stderr)
    return 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["run", "final-reads", "dump-events", "wait-converged",
                                     "agents-check"])
    ap.add_argument("--nodes", required=True)
    ap.add_argument("--out")
    ap.add_argument("--clients", type=int, default=6)
    ap.add_argument("--vars", type=int, default=3)
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout-s", type=float, default=4.0)
    ap.add_argument("--agents", type=int, default=0)
    ap.add_argument("--checkpoints-out")
    a = ap.parse_args()
    nodes = [n for n in a.nodes.split(",") if n]
    names = ["v%d" % i for i in range(a.vars)]
    if not nodes or a.clients < 1 or a.clients > 99 or a.duration > 3600:
        raise SystemExit("workload: bad arguments")
    if a.mode != "wait-converged" and not a.out:
        raise SystemExit("workload: %s needs --out" % a.mode)

    if a.mode == "wait-converged":
        return wait_converged(nodes, a.duration)

    if a.mode == "agents-check":
        return agents_check(nodes, a.out, a.duration)

    if a.mode == "dump-events":
        cursor = None
        with open(a.out, "w") as f:
            for _ in range(1000):
                path = "/v1/events?log=cluster&limit=1000"
                if cursor is not None:
                    path += "&cursor=" + urllib.parse.quote(str(cursor))
                status, doc = request(nodes[0], "GET", path, None, 10)
                if status != 200 or not isinstance(doc, dict):
                    raise SystemExit("workload: events from %s: HTTP %d" % (nodes[0], status))
                f.write(json.dumps(doc) + "\n")
                cursor = doc.get("next_cursor")
                if cursor is None:
                    break
        return 0

    if a.mode == "final-reads":
        out = []
        for n, node in enumerate(nodes):
            c = Client(1000 + n, node, names, 0, a.seed, a.timeout_s)
            for var in names:
                c.do_get(var)
            out.extend(c.history)
        with open(a.out, "a") as f:
            for rec in out:
                f.write(json.dumps(rec) + "\n")
        ok = sum(1 for r in out if r["outcome"] == "ok")
        print("workload: %d/%d final reads answered" % (ok, len(out)), file=sys.stderr)
        return 0

    if a.agents < 0 or a.agents > 1000 or (a.agents > 0 and not a.checkpoints_out):
        raise SystemExit("workload: --agents 0..1000, with --checkpoints-out")
    create_vars(nodes, names, a.timeout_s)
    inits = initial_states(nodes, names, a.timeout_s)
    agent_names = spawn_agents(nodes, a.agents) if a.agents > 0 else []
    deadline = now_ns() + int(a.duration * 1e9)
    clients = [Client(p + 1, nodes[p % len(nodes)], names, deadline, a.seed * 1000 + p,
                      a.timeout_s) for p in range(a.clients)]
    agent_client = (AgentClient(nodes, agent_names, deadline, a.seed * 1000 + 999,
                                a.checkpoints_out) if agent_names else None)
    for c in clients:
        c.start()
    if agent_client:
        agent_client.start()
    for c in clients:
        c.join(a.duration + a.timeout_s * 4 + 30)
    if agent_client:
        agent_client.join(a.duration + 30)
        agent_client.write()
        print("workload: agent ADDs %d accepted, %d not; %d checkpoint observations" % (
            agent_client.adds_ok, agent_client.adds_failed, len(agent_client.obs)),
            file=sys.stderr)
    hist = sorted((r for c in clients for r in c.history), key=lambda r: r["invoke_ns"])
    with open(a.out, "w") as f:
        for rec in inits:
            f.write(json.dumps(rec) + "\n")
        for rec in hist:
            f.write(json.dumps(rec) + "\n")
    counts = {}
    for r in hist:
        counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
    print("workload: %d ops %s" % (len(hist), json.dumps(counts)), file=sys.stderr)
    return 0


if __name__ == "__main__":
    socket.setdefaulttimeout(10)
    sys.exit(main())
