#!/usr/bin/env python3
"""End-to-end test of the workload recorder and the checker, without netns:
a small in-process HTTP register speaking the vars API (on 127.0.0.1) is
driven by workload.py; mb-lincheck must find the history linearizable when
the register is correct (including 503 MB_EUNKNOWN answers after applying and
MB_ENOQUORUM answers without applying), and must find a violation when the
register serves stale reads. Usage: test_workload.py PATH/TO/mb-lincheck"""
import http.server
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))


class Register:
    def __init__(self, stale):
        self.lock = threading.Lock()
        self.vars = {}
        self.stale = stale
        self.rng = random.Random(7)
        self.index = 0  # like a raft index: shared by all variables

    def handle(self, method, path, body):
        with self.lock:
            if method == "POST" and path == "/v1/vars":
                if body["name"] in self.vars:
                    return 409, {"error": {"code": "MB_EEXIST"}}
                self.index += 1
                self.vars[body["name"]] = {"value": None, "version": self.index, "old": None}
                return 201, {"name": body["name"]}
            m = re.fullmatch(r"/v1/vars/(\w+)(/cas)?", path)
            if not m or m.group(1) not in self.vars:
                return 404, {"error": {"code": "MB_ENOENT"}}
            v = self.vars[m.group(1)]
            if method == "GET":
                if self.stale and v["old"] is not None and self.rng.random() < 0.3:
                    return 200, {"value": v["old"][0], "version": v["old"][1]}
                return 200, {"value": v["value"], "version": v["version"]}
            r = self.rng.random()
            if r < 0.05:
                return 503, {"error": {"code": "MB_ENOQUORUM"}}
            if m.group(2) and v["version"] != body["expected_version"]:
                return 409, {"error": {"code": "MB_ECONFLICT"}}
            v["old"] = (v["value"], v["version"])
            v["value"] = body["value"]
            self.index += 1 + self.rng.randrange(3)  # other entries in between
            v["version"] = self.index
            if r < 0.10:
                return 503, {"error": {"code": "MB_EUNKNOWN"}}
            return 200, {"version": v["version"]}


def serve(register):
    class H(http.server.BaseHTTPRequestHandler):
        def _do(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(n)) if n else None
            status, doc = register.handle(self.command, self.path, body)
            data = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_PUT = do_POST = _do

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def run(lincheck, stale):
    srv = serve(Register(stale))
    try:
        with tempfile.TemporaryDirectory() as d:
            hist = os.path.join(d, "history.jsonl")
            node = "127.0.0.1:%d" % srv.server_address[1]
            subprocess.run([sys.executable, os.path.join(HERE, "workload.py"), "run", "--nodes",
                            node, "--out", hist, "--clients", "4", "--vars", "2", "--duration",
                            "1.5", "--seed", "3"], check=True, timeout=60)
            subprocess.run([sys.executable, os.path.join(HERE, "workload.py"), "final-reads",
                            "--nodes", node, "--out", hist, "--vars", "2"], check=True, timeout=60)
            lines = open(hist).read().splitlines()
            recs = [json.loads(l) for l in lines]
            outcomes = {r["outcome"] for r in recs if r["op"] != "init"}
            if sum(1 for r in recs if r["op"] == "init") != 2:
                outcomes.add("missing init records")
            r = subprocess.run([lincheck, "check", "--budget-ms", "20000", hist],
                               capture_output=True, text=True, timeout=60)
            return r.returncode, len(lines), outcomes, r.stdout
    finally:
        srv.shutdown()
        srv.server_close()


def main():
    lincheck = sys.argv[1]
    failures = 0
    rc, n, outcomes, out = run(lincheck, stale=False)
    if rc != 0 or n < 50 or outcomes != {"ok", "fail", "unknown"}:
        print("FAIL correct register: rc=%d ops=%d outcomes=%s %s" % (rc, n, outcomes, out[:500]))
        failures += 1
    rc, n, outcomes, out = run(lincheck, stale=True)
    if rc != 1:
        print("FAIL stale register not caught: rc=%d ops=%d %s" % (rc, n, out[:500]))
        failures += 1
    print("test_workload: %s" % ("ok" if failures == 0 else "%d failure(s)" % failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
