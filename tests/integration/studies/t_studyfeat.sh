#!/usr/bin/env bash
# Studies on a real 3-node cluster (studyfeat): median pruning of learning
# curves decided by the replicated state (pruned trials checked against
# the rule, their processes stopped with SIGTERM, events trial.prune,
# `study show` counts them); on_finish propose (one proposal per variable,
# voted on by builtin voter agents: the variables change only after the
# votes); a partitioned study (two optimisers) finishes its budget.
. "$(dirname "$0")/../proposals/lib_proposals.sh"
HERE=$(cd "$(dirname "$0")" && pwd)

study_json() { curl -fsS -m 5 "http://$1/v1/studies/$2"; }
study_status_is() {
    [ "$(study_json "$1" "$2" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')" = "$3" ]
}

start_cluster 3 --study_evaluators=2
A=${HTTP[1]}
mkdir -p "$T/marks"

# 1. Median pruning: x at 5 grid points of 0..9, one trial at a time (so the set of
#    trials completed before each one is known), 3 startup trials.
http POST "http://$A/v1/studies" "{\"id\":\"curves\",
  \"objective\":{\"command\":[\"$HERE/curves.sh\",\"$T/marks\"]},\"strategy\":\"grid\",
  \"space\":[{\"name\":\"x\",\"type\":\"int\",\"min\":0,\"max\":9}],
  \"pruner\":{\"kind\":\"median\",\"n_startup_trials\":3},
  \"budget\":{\"trials\":5},\"parallelism\":1}"
[ "$HTTP_CODE" = 201 ] || fail "create curves: $HTTP_CODE $(cat "$T/body")"
wait_until 90 study_status_is "$A" curves finished || fail "curves did not finish: $(study_json "$A" curves)"
study_json "${HTTP[2]}" curves >"$T/curves.json"
cluster_log "$A" >"$T/events.txt"
python3 - "$T/curves.json" "$T/events.txt" "$T/marks/terminated" <<'PY' || fail "pruning result: $(cat "$T/curves.json")"
import json, os, statistics, sys
j = json.load(open(sys.argv[1]))
t = sorted(j["trials"], key=lambda x: x["started"])
assert len(t) == 5 and j["trials_by_status"]["pruned"] == 2, j["trials_by_status"]
assert j["pruner"]["kind"] == "median", j.get("pruner")
for tr in t:
    # completed before this one started (parallelism 1)
    done = [u for u in t if u["status"] == "completed" and u["finished"] < tr["started"]]
    reports = tr.get("reports", [])
    expect_at = None
    best = float("inf")
    for step, v in reports:
        best = min(best, v)
        at = [dict(map(tuple, u["reports"])).get(step) for u in done]
        at = [a for a in at if a is not None]
        if len(done) >= 3 and at and best > statistics.median(at):
            expect_at = step
            break
    if expect_at is None:
        assert tr["status"] == "completed", ("should not be pruned", tr)
    else:
        assert tr["status"] == "pruned", ("should be pruned", expect_at, tr)
        assert reports[-1][0] == expect_at and tr["value"] == reports[-1][1], tr
pruned = {tr["number"] for tr in t if tr["status"] == "pruned"}
ev = [l.split(" ", 3) for l in open(sys.argv[2])]
prune_ev = {json.loads(e[3])["number"] for e in ev if e[1] == "trial.prune"}
assert prune_ev == pruned, (prune_ev, pruned)
assert all("step" in json.loads(e[3]) for e in ev if e[1] == "trial.prune")
# each pruned trial's process got SIGTERM while it ran, and none ran to
# its end (an evaluator that lost a claim race is stopped the same way)
def marks(f):
    return {int(x) for x in open(f).read().split()} if os.path.exists(f) else set()
term, fin = marks(sys.argv[3]), marks(sys.argv[3].replace("terminated", "finished"))
assert pruned <= term and not (pruned & fin), ("terminated", term, "finished", fin, "pruned", pruned)
print("pruned", sorted(pruned))
PY
"$MABEAM" --addr "$A" study show curves >"$T/show.txt" || fail "study show"
grep -Eq "[1-9][0-9]* pruned.*pruner median" "$T/show.txt" || fail "study show: $(cat "$T/show.txt")"
pass "median pruning: bad curves pruned by the replicated rule, their processes stopped, events and study show"

# 2. on_finish propose: two consensus variables, voters y1 (at once) and
#    y2 (after 3 s) with capability "voter", majority (both needed).
for v in px py; do
    http POST "http://$A/v1/vars" "{\"name\":\"$v\",\"type\":\"float\",\"min\":-2,\"max\":2,\"policy\":\"consensus\"}"
    [ "$HTTP_CODE" = 201 ] || fail "define $v: $HTTP_CODE $(cat "$T/body")"
done
place_voter() {
    http POST "http://$A/v1/agents" "{\"kind\":\"voter\",\"name\":\"$1\",\"placement\":\"node:$2\",
      \"capabilities\":[\"voter\"],\"config\":$3}"
    [ "$HTTP_CODE" = 201 ] || fail "place $1: $HTTP_CODE $(cat "$T/body")"
}
agent_running() {
    curl -fsS -m 3 "http://$A/v1/cluster/agents/$1" 2>/dev/null |
        python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["status"]=="running" else 1)'
}
place_voter y1 2 '{"vote":"yes"}'
place_voter y2 3 '{"vote":"yes","delay_ms":3000}'
for a in y1 y2; do wait_until 30 agent_running "$a" || fail "voter $a not running"; done
before_x=$(value_on 1 px)
http POST "http://$A/v1/studies" '{"id":"tune","objective":"builtin:sphere","strategy":"tpe",
  "seed":3,"space":["px","py"],"on_finish":"propose","budget":{"trials":12},"parallelism":2}'
[ "$HTTP_CODE" = 201 ] || fail "create tune: $HTTP_CODE $(cat "$T/body")"
wait_until 60 study_status_is "$A" tune finished || fail "tune did not finish: $(study_json "$A" tune)"
curl -fsS "http://$A/v1/events?log=cluster&type=study.finish&subject=tune" >"$T/fin.json"
P=$(jget "$T/fin.json" '" ".join(p["id"] for p in j["events"][-1]["payload"]["proposals"])')
[ "$(echo "$P" | wc -w)" = 2 ] || fail "study.finish names no proposals: $(cat "$T/fin.json")"
set -- $P
PX=$1
PY=$2
# y2 has not voted yet: both proposals open, variables unchanged
outcome_is 1 "$PX" open || fail "proposal $PX decided before the second vote: $(outcome_of 1 "$PX")"
[ "$(value_on 1 px)" = "$before_x" ] || fail "px changed before the vote"
wait_until 30 outcome_is 1 "$PX" accepted || fail "proposal $PX: $(outcome_of 1 "$PX")"
wait_until 30 outcome_is 1 "$PY" accepted || fail "proposal $PY: $(outcome_of 1 "$PY")"
study_json "$A" tune >"$T/tune.json"
python3 - "$T/tune.json" "$(value_on 2 px)" "$(value_on 2 py)" <<'PY' || fail "proposed values"
import json, sys
j = json.load(open(sys.argv[1]))
b = j["best"]["params"]
assert abs(float(sys.argv[2]) - b["px"]) < 1e-9 and abs(float(sys.argv[3]) - b["py"]) < 1e-9, (b, sys.argv[2:])
PY
pass "on_finish propose: one proposal per variable, the variables change only once the voters accept"

# 3. A partitioned study: two optimisers (x0..x2 and x3..x5) on Hartmann-6.
http POST "http://$A/v1/studies" '{"id":"part","objective":"builtin:hartmann6","strategy":"tpe",
  "seed":5,"space":[{"name":"x0","type":"float","min":0,"max":1},{"name":"x1","type":"float","min":0,"max":1},
  {"name":"x2","type":"float","min":0,"max":1},{"name":"x3","type":"float","min":0,"max":1},
  {"name":"x4","type":"float","min":0,"max":1},{"name":"x5","type":"float","min":0,"max":1}],
  "partition":[["x0","x1","x2"],["x3","x4","x5"]],"budget":{"trials":40},"parallelism":4}'
[ "$HTTP_CODE" = 201 ] || fail "create part: $HTTP_CODE $(cat "$T/body")"
wait_until 60 study_status_is "$A" part finished || fail "part did not finish: $(study_json "$A" part)"
study_json "$A" part >"$T/part.json"
python3 - "$T/part.json" <<'PY' || fail "partitioned study: $(cat "$T/part.json")"
import json, sys
j = json.load(open(sys.argv[1]))
t = j["trials"]
assert len(t) == 40 and all(x["status"] == "completed" for x in t), j["trials_by_status"]
assert all(len(x["params"]) == 6 for x in t)
assert len({json.dumps(x["params"], sort_keys=True) for x in t}) == 40
assert j["best"]["value"] < -1.0, j["best"]
PY
"$MABEAM" --addr "$A" study show part >"$T/show-part.txt" || fail "study show part"
grep -q "partition: 2 optimisers" "$T/show-part.txt" || fail "study show part: $(cat "$T/show-part.txt")"
pass "a partitioned study (2 optimisers) evaluates complete configurations and finishes its budget"
