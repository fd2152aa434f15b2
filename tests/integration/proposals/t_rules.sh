#!/usr/bin/env bash
# Voters spread over 3 nodes decide under the majority, unanimous,
# weighted and Byzantine rules; the decision sets the variable on every
# node; a second proposal on a variable waits for the first; the audit
# trail (open, every vote, the outcome) is in the replicated event log
# under the variable's name.
. "$(dirname "$0")/lib_proposals.sh"

start_cluster 3
# Nine voters, three per node: y* vote yes to anything in [0, 50], n*
# vote no to everything.
for i in 1 2 3; do
    spawn_voter "$i" "y$i" '{"min":0,"max":50}'
    spawn_voter "$i" "z$i" '{"min":0,"max":50}'
    spawn_voter "$i" "n$i" '{"vote":"no"}'
done
define_consensus 1 k
ALL='["y1","y2","y3","z1","z2","z3","n1","n2","n3"]'

# Majority: 6 yes of 9 -> accepted, value set everywhere.
propose 2 "{\"variable\":\"k\",\"value\":7,\"rule\":\"majority\",\"voters\":$ALL}"
P1=$PROP
wait_until 20 outcome_is 2 "$P1" accepted || fail "majority: $(outcome_of 2 "$P1")"
for i in 1 2 3; do
    wait_until 10 value_is "$i" k 7 || fail "node $i has k=$(value_on "$i" k), want 7"
done
pass "majority over 3 nodes accepted and applied everywhere"

# Unanimous with a no voter -> rejected, value unchanged.
propose 3 "{\"variable\":\"k\",\"value\":8,\"rule\":\"unanimous\",\"voters\":$ALL}"
P2=$PROP
wait_until 20 outcome_is 3 "$P2" rejected || fail "unanimous: $(outcome_of 3 "$P2")"
value_is 1 k 7 || fail "rejected proposal changed k"
# Unanimous among yes voters only -> accepted.
propose 1 '{"variable":"k","value":9,"rule":"unanimous","voters":["y1","y2","y3","z1"]}'
wait_until 20 outcome_is 1 "$PROP" accepted || fail "unanimous yes: $(outcome_of 1 "$PROP")"
pass "unanimous rejects on one no, accepts when all agree"

# Weighted: the three no voters carry most of the weight -> rejected.
propose 1 "{\"variable\":\"k\",\"value\":10,\"rule\":\"weighted\",\"voters\":$ALL,
  \"weights\":{\"y1\":1,\"y2\":1,\"y3\":1,\"z1\":1,\"z2\":1,\"z3\":1,\"n1\":5,\"n2\":5,\"n3\":5}}"
wait_until 20 outcome_is 1 "$PROP" rejected || fail "weighted: $(outcome_of 1 "$PROP")"
value_is 1 k 9 || fail "weighted rejection changed k"
pass "weighted: heavy no voters reject"

# Byzantine: f=3 needs 10 voters; with 9 the open is refused and says so.
http POST "http://${HTTP[2]}/v1/proposals" \
    "{\"variable\":\"k\",\"value\":11,\"rule\":\"byzantine\",\"f\":3,\"voters\":$ALL}"
[ "$HTTP_CODE" = 400 ] || fail "byzantine f=3 with 9 voters: $HTTP_CODE $(cat "$T/body")"
grep -q "needs at least 10 eligible voters" "$T/body" || fail "byzantine error: $(cat "$T/body")"
# f=2 (needs 7; quorum floor(18/3)+1 = 7): 6 yes of 9 are not enough.
propose 2 "{\"variable\":\"k\",\"value\":11,\"rule\":\"byzantine\",\"f\":2,\"voters\":$ALL}"
wait_until 20 outcome_is 2 "$PROP" rejected || fail "byzantine 6/9: $(outcome_of 2 "$PROP")"
# f=1 over the 6 yes voters + 1 no (n=7, quorum 5): accepted.
propose 2 '{"variable":"k","value":12,"rule":"byzantine","f":1,"voters":["y1","y2","y3","z1","z2","z3","n1"]}'
PB=$PROP
wait_until 20 outcome_is 2 "$PB" accepted || fail "byzantine 6/7: $(outcome_of 2 "$PB")"
wait_until 10 value_is 3 k 12 || fail "byzantine decision not applied on node 3"
pass "byzantine: 3f+1 checked at open, 2n/3+1 quorum decides"

# A plain set of a consensus variable points at propose.
http PUT "http://${HTTP[1]}/v1/vars/k" '{"value":5}'
[ "$HTTP_CODE" = 403 ] || fail "set of a consensus variable: $HTTP_CODE $(cat "$T/body")"
grep -q "mabeam propose" "$T/body" || fail "set error does not point at propose: $(cat "$T/body")"
pass "set of a consensus variable refused with a pointer to propose"

# Audit trail of P1 on every node: open, 9 votes (or the ones counted
# before the decision), the outcome, and the var.set, all under "k".
for i in 1 2 3; do
    curl -fsS "http://${HTTP[$i]}/v1/events?log=cluster&subject=k&limit=1000" >"$T/ev$i"
    python3 - "$T/ev$i" "$P1" <<'PY' || fail "audit trail on node $i"
import json, sys
ev = json.load(open(sys.argv[1]))["events"]
pid = sys.argv[2]
mine = [e for e in ev if (e.get("payload") or {}).get("id") == pid]
types = [e["type"] for e in mine]
assert types[0] == "proposal.open", types
votes = [e for e in mine if e["type"] == "proposal.vote"]
assert len(votes) >= 5, types
close = [e for e in mine if e["type"] == "proposal.close"]
assert len(close) == 1 and close[0]["payload"]["outcome"] == "accepted", close
# the variable changed in the same entry as the decision
vs = [e for e in ev if e["type"] == "var.set" and e["seq"] // 1024 == close[0]["seq"] // 1024]
assert len(vs) == 1 and vs[0]["payload"]["value"] == 7, vs
PY
done
pass "audit trail (open, votes, outcome, var.set in the same entry) on every node"

# A voter id that is not a cluster agent (a typo) is refused at open, by
# name, instead of holding the proposal until its deadline.
http POST "http://${HTTP[3]}/v1/proposals" '{"variable":"k","value":3,"rule":"majority","voters":["y1","y9"]}'
[ "$HTTP_CODE" = 404 ] || fail "unknown voter: $HTTP_CODE $(cat "$T/body")"
grep -q 'voter \\"y9\\" is not a cluster agent' "$T/body" || fail "unknown voter error: $(cat "$T/body")"
pass "a voter id that is not a cluster agent is refused at open, naming it"
