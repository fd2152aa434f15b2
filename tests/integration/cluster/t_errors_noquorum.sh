#!/usr/bin/env bash
# Distinct errors: invalid value 422 MB_ECONSTRAINT naming the variable and
# the constraint, unknown variable 404, version conflict 409 with the
# current version; and with 2 of 3 nodes killed a write fails with 503
# MB_ENOQUORUM within write_timeout (3 s here) plus a small margin.
. "$(dirname "$0")/lib.sh"

start_cluster 3
A=${HTTP[2]} # a follower: errors must survive forwarding
http POST "http://$A/v1/vars" '{"name":"temp","type":"float","min":0,"max":2,"value":1}'
[ "$HTTP_CODE" = 201 ] || fail "define: $HTTP_CODE $(cat "$T/body")"
v=$(jget "$T/body" 'j["version"]')

http PUT "http://$A/v1/vars/temp" '{"value":7.5}'
[ "$HTTP_CODE" = 422 ] || fail "out of range: $HTTP_CODE $(cat "$T/body")"
[ "$(jget "$T/body" 'j["error"]["code"]')" = MB_ECONSTRAINT ] || fail "code $(cat "$T/body")"
grep -q 'temp' "$T/body" && grep -q 'max' "$T/body" || fail "message: $(cat "$T/body")"

http PUT "http://$A/v1/vars/nosuch" '{"value":1}'
[ "$HTTP_CODE" = 404 ] || fail "unknown variable: $HTTP_CODE $(cat "$T/body")"
[ "$(jget "$T/body" 'j["error"]["code"]')" = MB_ENOTFOUND ] || fail "code $(cat "$T/body")"
http GET "http://$A/v1/vars/nosuch"
[ "$HTTP_CODE" = 404 ] || fail "get unknown: $HTTP_CODE"

http POST "http://$A/v1/vars/temp/cas" "{\"value\":1.5,\"expected_version\":$((v + 100))}"
[ "$HTTP_CODE" = 409 ] || fail "conflict: $HTTP_CODE $(cat "$T/body")"
[ "$(jget "$T/body" 'j["error"]["code"]')" = MB_ECONFLICT ] || fail "code $(cat "$T/body")"
grep -q "version is $v" "$T/body" || fail "conflict does not give the current version: $(cat "$T/body")"
http POST "http://$A/v1/vars/temp/cas" "{\"value\":1.5,\"expected_version\":$v}"
[ "$HTTP_CODE" = 200 ] || fail "cas with the right version: $HTTP_CODE $(cat "$T/body")"

http POST "http://$A/v1/vars" '{"name":"temp","type":"float","min":0,"max":1}'
[ "$HTTP_CODE" = 409 ] || fail "redefinition: $HTTP_CODE $(cat "$T/body")"
http POST "http://$A/v1/vars" '{"name":"p","type":"probability","value":1.5}'
[ "$HTTP_CODE" = 422 ] || fail "invalid initial value: $HTTP_CODE $(cat "$T/body")"
# The CLI maps them to exit status 1 with the node's message.
rc=0
"$MABEAM" --addr "$A" var set temp 9 2>"$T/cli.err" || rc=$?
[ "$rc" = 1 ] && grep -q MB_ECONSTRAINT "$T/cli.err" || fail "cli exit $rc: $(cat "$T/cli.err")"
pass "422 / 404 / 409 distinct, through a follower"

# Kill two of three: no quorum.
L=$(leader_of "$A")
for i in 1 2 3; do
    if [ "$i" != 2 ]; then kill_node "$i"; fi
done
t0=$(now_ms)
http PUT "http://$A/v1/vars/temp" '{"value":0.5}'
t1=$(now_ms)
[ "$HTTP_CODE" = 503 ] || fail "no quorum write: $HTTP_CODE $(cat "$T/body")"
[ "$(jget "$T/body" 'j["error"]["code"]')" = MB_ENOQUORUM ] || fail "code $(cat "$T/body")"
grep -q "no quorum" "$T/body" || fail "message $(cat "$T/body")"
[ $((t1 - t0)) -le 5000 ] || fail "no-quorum answer took $((t1 - t0)) ms (bound 3 s + margin)"
echo "no quorum reported after $((t1 - t0)) ms (leader was $L)"
# Stale reads still work without quorum.
http GET "http://$A/v1/vars/temp?consistency=stale"
[ "$HTTP_CODE" = 200 ] || fail "stale read: $HTTP_CODE"
stop_node "${PID[2]}"
pass "no quorum: 503 MB_ENOQUORUM within the bound; stale read still served"
