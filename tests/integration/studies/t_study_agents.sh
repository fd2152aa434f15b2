#!/usr/bin/env bash
# Optimisers and evaluators as placed cluster agents (piece "studyagents",
# docs/studies.md "Who runs what"), on a real 3-node cluster: every node
# places its evaluator agents; a study's optimiser agent is placed on the
# least loaded node (not the leader here) and that node runs the study's
# suggestions; kill -9 that node mid-study: the optimiser agent runs
# elsewhere, the study finishes its budget with no trial lost, suggested
# twice or completed twice, and the optimiser agent is removed at the end;
# the dead node's evaluators served on the survivors and go home when it
# returns.
. "$(dirname "$0")/../cluster/lib.sh"

M() { "$MABEAM" --addr "$1" "${@:2}"; }

# agents ADDR KIND: "id node status" lines of the replicated table.
agents() {
    curl -fsS -m 5 "http://$1/v1/cluster/agents?kind=$2&limit=1000" | python3 -c '
import json, sys
for a in json.load(sys.stdin)["agents"]:
    print(a["id"], a["node"], a["status"])'
}
study_field() {
    curl -fsS -m 5 "http://$1/v1/studies/$2" | python3 -c '
import json, sys
j = json.load(sys.stdin)
print(eval(sys.argv[1]))' "$3"
}

start_cluster 3 --failure_timeout=1500ms --study_evaluators=2
A=${HTTP[1]}

# 1. Each node places its own evaluator agents on itself.
six_evaluators() {
    [ "$(agents "$A" evaluator | awk '$3 == "running" && $1 == "evaluator-" $2 "-1" || $1 == "evaluator-" $2 "-2"' | wc -l)" = 6 ]
}
wait_until 30 six_evaluators || fail "evaluator agents: $(agents "$A" evaluator)"
pass "every node runs its study_evaluators evaluator agents as cluster agents"

# 2. One more agent on node 1 (the leader): the least loaded node is 2.
M "$A" agent spawn echo --placement node:1 --name pin-1 >/dev/null || fail "spawn pin-1"
http POST "http://$A/v1/studies" '{"id":"opt","objective":"builtin:sleep:400",
  "strategy":"tpe","seed":11,"space":[{"name":"x","type":"float","min":0,"max":1}],
  "budget":{"trials":30},"parallelism":4}'
[ "$HTTP_CODE" = 201 ] || fail "create opt: $HTTP_CODE $(cat "$T/body")"
opt_running() { M "$A" agent list --cluster --kind optimiser | awk '$1 == "optimiser-opt" && $5 == "running" {found=1} END {exit !found}'; }
wait_until 30 opt_running || fail "no optimiser agent: $(M "$A" agent list --cluster)"
H=$(M "$A" agent list --cluster --kind optimiser | awk '$1 == "optimiser-opt" {print $3}')
[ "$H" = 2 ] || fail "optimiser agent on node $H, expected the least loaded node 2"
[ "$(leader_of "$A")" != "$H" ] || fail "node $H is the leader"
some_done() { [ "$(study_field "$A" opt 'j["trials_by_status"]["completed"]')" -ge 4 ]; }
wait_until 60 some_done || fail "opt made no progress"
grep -q 'studies: optimiser agent runs here.*study=opt' "$T/n$H.log" || fail "node $H does not say it runs the optimiser"
for i in 1 3; do
    ! grep -q 'studies: optimiser agent runs here.*study=opt' "$T/n$i.log" || fail "node $i ran the optimiser of opt"
done
pass "a study's optimiser agent is placed on the least loaded node, which runs its suggestions"

# 3. kill -9 the optimiser's node mid-study.
[ "$(study_field "$A" opt 'j["status"]')" = running ] || fail "opt ended before the kill"
kill_node "$H"
moved() {
    NEW=$(agents "$A" optimiser | awk -v h="$H" '$1 == "optimiser-opt" && $2 != h && $3 == "running" {print $2}')
    [ -n "$NEW" ]
}
wait_until 30 moved || fail "the optimiser agent did not move: $(agents "$A" optimiser)"
finished() { [ "$(study_field "$A" opt 'j["status"]')" = finished ]; }
wait_until 90 finished || fail "opt did not finish: $(curl -s "http://$A/v1/studies/opt?trials=0")"
curl -fsS "http://$A/v1/studies/opt" >"$T/opt.json"
cluster_log "$A" >"$T/events.txt"
python3 - "$T/opt.json" "$T/events.txt" <<'PY' || fail "opt result"
import json, sys
j = json.load(open(sys.argv[1]))
t = j["trials"]
assert len(t) == 30 and all(x["status"] == "completed" for x in t), j["trials_by_status"]
sug, done = {}, {}
for line in open(sys.argv[2]):
    seq, typ, subj, payload = line.split(" ", 3)
    if subj != "opt":
        continue
    n = json.loads(payload).get("number") if typ.startswith("trial.") else None
    if typ == "trial.suggest":
        sug[n] = sug.get(n, 0) + 1
    if typ == "trial.complete":
        done[n] = done.get(n, 0) + 1
want = list(range(1, 31))
assert sorted(sug) == want and all(v == 1 for v in sug.values()), ("suggested", sug)
assert sorted(done) == want and all(v == 1 for v in done.values()), ("completed", done)
PY
grep -q 'studies: optimiser agent runs here.*study=opt' "$T/n$NEW.log" || fail "node $NEW did not take the optimiser over"
# The rebuilt optimiser replays the recorded suggestions exactly (same seed).
! grep -h 'optimiser replay differs' "$T"/n*.log || fail "the rebuilt optimiser diverged"
pass "killing the optimiser's node: the agent runs on node $NEW, 30 trials, none lost, suggested or completed twice"

# 4. The ended study's optimiser agent is removed.
no_opt() { [ -z "$(agents "$A" optimiser)" ]; }
wait_until 30 no_opt || fail "optimiser agent left behind: $(agents "$A" optimiser)"
pass "the optimiser agent is removed when its study ends"

# 5. The dead node's evaluators served elsewhere; back home when it returns.
away() { [ "$(agents "$A" evaluator | awk -v h="$H" '$1 ~ "^evaluator-" h "-" && $2 != h && $3 == "running"' | wc -l)" = 2 ]; }
wait_until 30 away || fail "node $H's evaluators did not move: $(agents "$A" evaluator)"
launch "$H" --failure_timeout=1500ms --study_evaluators=2
home() { [ "$(agents "$A" evaluator | awk -v h="$H" '$1 ~ "^evaluator-" h "-" && $2 == h && $3 == "running"' | wc -l)" = 2 ]; }
wait_until 60 home || fail "node $H's evaluators did not come home: $(agents "$A" evaluator)"
pass "a dead node's evaluator agents run on the survivors and go home when it returns"
