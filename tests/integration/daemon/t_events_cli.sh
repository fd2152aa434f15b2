#!/usr/bin/env bash
# Event queries through the CLI: type/subject filters, sequence ranges,
# order, limit + cursor paging (by hand and --all), --json pages.
. "$(dirname "$0")/lib.sh"

start_node n1
M=("$MABEAM" --addr "$NODE_ADDR")
for i in $(seq 1 7); do
    "${M[@]}" config set alert_interval "$((i + 1))s" >/dev/null
done
"${M[@]}" config set log_format json >/dev/null

"${M[@]}" --json events --type config.changed --limit 100 >"$T/all.json"
[ "$(jget "$T/all.json" 'len(j["events"])')" = 8 ] || fail "8 config.changed: $(cat "$T/all.json")"
[ "$(jget "$T/all.json" 'j["next_cursor"]')" = None ] || fail "unexpected cursor"

# Paging by hand: 3 + 3 + 2, cursors on stderr.
"${M[@]}" events --type config.changed --limit 3 >"$T/p1.txt" 2>"$T/p1.err"
[ "$(grep -c config.changed "$T/p1.txt")" = 3 ] || fail "page 1: $(cat "$T/p1.txt")"
cur=$(sed -n 's/^next: --cursor //p' "$T/p1.err")
[ -n "$cur" ] || fail "no cursor after page 1: $(cat "$T/p1.err")"
"${M[@]}" events --type config.changed --limit 3 --cursor "$cur" >"$T/p2.txt" 2>"$T/p2.err"
[ "$(grep -c config.changed "$T/p2.txt")" = 3 ] || fail "page 2"
cur=$(sed -n 's/^next: --cursor //p' "$T/p2.err")
"${M[@]}" events --type config.changed --limit 3 --cursor "$cur" >"$T/p3.txt" 2>"$T/p3.err"
[ "$(grep -c config.changed "$T/p3.txt")" = 2 ] || fail "page 3: $(cat "$T/p3.txt")"
[ ! -s "$T/p3.err" ] || fail "cursor after the last page: $(cat "$T/p3.err")"
cat "$T/p1.txt" "$T/p2.txt" "$T/p3.txt" | awk '$1 ~ /^[0-9]+$/ {print $1}' >"$T/seqs"
sort -n -c "$T/seqs" || fail "pages out of order"
[ "$(sort -u "$T/seqs" | wc -l)" = 8 ] || fail "pages overlap or miss events"
pass "manual paging"

"${M[@]}" events --type config.changed --limit 2 --all >"$T/allp.txt"
[ "$(grep -c config.changed "$T/allp.txt")" = 8 ] || fail "--all"
"${M[@]}" --json events --type config.changed --order desc --limit 1 >"$T/desc.json"
[ "$(jget "$T/desc.json" 'j["events"][0]["subject"]')" = log_format ] || fail "desc order"
"${M[@]}" --json events --subject log_format >"$T/subj.json"
[ "$(jget "$T/subj.json" 'len(j["events"])')" = 1 ] || fail "subject filter"
first=$(jget "$T/all.json" 'j["events"][2]["seq"]')
last=$(jget "$T/all.json" 'j["events"][4]["seq"]')
"${M[@]}" --json events --from-seq "$first" --to-seq "$last" >"$T/range.json"
[ "$(jget "$T/range.json" 'len(j["events"])')" = $((last - first + 1)) ] || fail "seq range"
t0=$(jget "$T/all.json" 'j["events"][0]["time_ms"]')
"${M[@]}" --json events --since "$t0" --type config.changed >"$T/since.json"
[ "$(jget "$T/since.json" 'len(j["events"])')" = 8 ] || fail "since filter"
"${M[@]}" --json events --until $((t0 - 1)) --type config.changed >"$T/until.json"
[ "$(jget "$T/until.json" 'len(j["events"])')" = 0 ] || fail "until filter"
"${M[@]}" --json events --since 10m --type config.changed >"$T/since10m.json"
[ "$(jget "$T/since10m.json" 'len(j["events"])')" = 8 ] || fail "--since 10m"
"${M[@]}" --json events --until 1d --type config.changed >"$T/until1d.json"
[ "$(jget "$T/until1d.json" 'len(j["events"])')" = 0 ] || fail "--until 1d"
iso=$(date -u -d "@$(( (t0 / 1000) + 3600 ))" +%Y-%m-%dT%H:%M:%SZ)
"${M[@]}" --json events --since "$iso" --type config.changed >"$T/sinceiso.json"
[ "$(jget "$T/sinceiso.json" 'len(j["events"])')" = 0 ] || fail "--since RFC 3339"
rc=0
"${M[@]}" events --since yesterday >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "bad --since: exit $rc"
"${M[@]}" --json events --log cluster >"$T/cluster.json"
[ "$(jget "$T/cluster.json" 'j["log"]')" = cluster ] || fail "cluster log"
# --follow prints new events as they arrive.
"${M[@]}" events --follow --type config.changed >"$T/follow.txt" 2>&1 &
follow_pid=$!
PIDS+=("$follow_pid")
followed() { [ "$(grep -c config.changed "$T/follow.txt")" -ge 8 ]; }
wait_until 10 followed || fail "--follow did not print the existing events"
"${M[@]}" config set log_format text >/dev/null
followed_new() { [ "$(grep -c config.changed "$T/follow.txt")" -ge 9 ]; }
wait_until 10 followed_new || fail "--follow missed a new event: $(cat "$T/follow.txt")"
kill "$follow_pid"
wait "$follow_pid" 2>/dev/null || true
[ "$(grep -c config.changed "$T/follow.txt")" = 9 ] || fail "--follow printed duplicates"
rc=0
"${M[@]}" events --order sideways >/dev/null 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "bad order: exit $rc"
stop_node "$NODE_PID"
pass "filters"
