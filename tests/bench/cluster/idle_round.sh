#!/bin/bash
# tests/bench/cluster/idle_round.sh LABEL MABEAMD KIND_SO: one round of the
# idle comparison in docs/BENCHMARKS.md ("Idle CPU (session 4, piece idle)"):
# a 3-node cluster (ports 28200+), 30 s idle without agents (CPU and context
# switches per node), then cluster_agents.py with 1,000 agents, then 15 s of
# context switches with them. JSON lines on stdout. Run from the repository.
set -u
LABEL=$1 BIN=$2 KIND=$3
cd "$(dirname "$0")/../../.."
export MABEAM_CLUSTER_DIR=/tmp/idle-m MABEAM_CLUSTER_PORT=28200 MABEAMD=$BIN
scripts/cluster.sh down >/dev/null 2>&1; rm -rf /tmp/idle-m
scripts/cluster.sh up 3 >/dev/null 2>&1 || { echo "up failed"; exit 1; }
P="$(cat /tmp/idle-m/n1.pid) $(cat /tmp/idle-m/n2.pid) $(cat /tmp/idle-m/n3.pid)"
python3 - $LABEL $P <<'PY'
import json, os, sys, time
sys.path.insert(0, "scripts/bench.d")
from cluster_agents import cpu_ticks, ctx_switches, wait_quiet
label=sys.argv[1]; pids=[int(x) for x in sys.argv[2:]]
if not wait_quiet(pids): sys.exit("idle_round: the nodes never went quiet in 60 s")
a=[cpu_ticks(p) for p in pids]; c=[ctx_switches(p) for p in pids]; t0=time.time(); time.sleep(30); dt=time.time()-t0
b=[cpu_ticks(p) for p in pids]; d=[ctx_switches(p) for p in pids]
hz=os.sysconf("SC_CLK_TCK")
print(json.dumps({"label":label,"phase":"no_agents","cpu_pct":[round(100.0*(y-x)/hz/dt,3) for x,y in zip(a,b)],"cs_per_s":[round((y-x)/dt) for x,y in zip(c,d)],"load":os.getloadavg()[0]}),flush=True)
PY
H=127.0.0.1:28200,127.0.0.1:28210,127.0.0.1:28220
python3 scripts/bench.d/cluster_agents.py --http $H --pids $(echo $P | tr ' ' ,) --kind $KIND --agents 1000 --changes 20 --idle 30 2>/dev/null | python3 -c '
import json,sys,os
for l in sys.stdin:
    j=json.loads(l)
    if j["metric"].startswith("idle_cpu"): print(json.dumps({"label":sys.argv[1],"phase":"with_agents","cpu_pct":j["nodes"],"load":os.getloadavg()[0]}))
    if j["metric"].startswith("watch_fanout"): print(json.dumps({"label":sys.argv[1],"phase":"fanout","p50":j["p50_ms"],"p99":j["value"],"missing":j["missing"]}))
' $LABEL
python3 - $LABEL $P <<'PY'
import json, sys, time
sys.path.insert(0, "scripts/bench.d")
from cluster_agents import ctx_switches
label=sys.argv[1]; pids=[int(x) for x in sys.argv[2:]]
c=[ctx_switches(p) for p in pids]; t0=time.time(); time.sleep(15); dt=time.time()-t0; d=[ctx_switches(p) for p in pids]
print(json.dumps({"label":label,"phase":"with_agents_cs","cs_per_s":[round((y-x)/dt) for x,y in zip(c,d)]}),flush=True)
PY
scripts/cluster.sh down >/dev/null 2>&1
