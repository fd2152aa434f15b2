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
  workload.py wait-converged --nodes ... [--duration S]
              (waits, at most S seconds, until every node answers
              GET /v1/cluster, all name the same leader and report the same
              applied index; exit 0 converged, 1 not)
"""
import urllib.parse
import argparse
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
    ap.add_argument("mode", choices=["run", "final-reads", "dump-events", "wait-converged"])
    ap.add_argument("--nodes", required=True)
    ap.add_argument("--out")
    ap.add_argument("--clients", type=int, default=6)
    ap.add_argument("--vars", type=int, default=3)
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout-s", type=float, default=4.0)
    a = ap.parse_args()
    nodes = [n for n in a.nodes.split(",") if n]
    names = ["v%d" % i for i in range(a.vars)]
    if not nodes or a.clients < 1 or a.clients > 99 or a.duration > 3600:
        raise SystemExit("workload: bad arguments")
    if a.mode != "wait-converged" and not a.out:
        raise SystemExit("workload: %s needs --out" % a.mode)

    if a.mode == "wait-converged":
        return wait_converged(nodes, a.duration)

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

    create_vars(nodes, names, a.timeout_s)
    inits = initial_states(nodes, names, a.timeout_s)
    deadline = now_ns() + int(a.duration * 1e9)
    clients = [Client(p + 1, nodes[p % len(nodes)], names, deadline, a.seed * 1000 + p,
                      a.timeout_s) for p in range(a.clients)]
    for c in clients:
        c.start()
    for c in clients:
        c.join(a.duration + a.timeout_s * 4 + 30)
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
