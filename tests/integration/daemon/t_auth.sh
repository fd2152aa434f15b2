#!/usr/bin/env bash
# With api_token set every endpoint but health needs the bearer token.
. "$(dirname "$0")/lib.sh"

start_node n1 --api_token=s3cret-token
http GET "http://$NODE_ADDR/v1/health"
[ "$HTTP_CODE" = 200 ] || fail "health must stay open: $HTTP_CODE"
for path in /v1/status /metrics /v1/config /v1/events /v1/alerts /v1/config/log_level; do
    CURL_EXTRA=()
    http GET "http://$NODE_ADDR$path"
    expect_error 401 MB_EAUTH
    grep -qi '^WWW-Authenticate: Bearer' "$T/headers" || fail "no WWW-Authenticate on $path"
    CURL_EXTRA=(-H "Authorization: Bearer wrong-token!")
    http GET "http://$NODE_ADDR$path"
    expect_error 401 MB_EAUTH
    CURL_EXTRA=(-H "Authorization: Bearer s3cret-token")
    http GET "http://$NODE_ADDR$path"
    [ "$HTTP_CODE" = 200 ] || fail "$path with token: $HTTP_CODE"
done
CURL_EXTRA=()
# The CLI passes --token / MABEAM_TOKEN.
"$MABEAM" --addr "$NODE_ADDR" --token s3cret-token status >/dev/null || fail "cli with token"
MABEAM_TOKEN=s3cret-token MABEAM_ADDR=$NODE_ADDR "$MABEAM" status >/dev/null || fail "cli env token"
rc=0
"$MABEAM" --addr "$NODE_ADDR" status >/dev/null 2>"$T/cli.err" || rc=$?
[ "$rc" = 1 ] || fail "cli without token exited $rc"
grep -q MB_EAUTH "$T/cli.err" || fail "cli error: $(cat "$T/cli.err")"
# Rotating the token at runtime takes effect at once.
"$MABEAM" --addr "$NODE_ADDR" --token s3cret-token config set api_token new-token >/dev/null ||
    fail "rotate token"
CURL_EXTRA=(-H "Authorization: Bearer s3cret-token")
http GET "http://$NODE_ADDR/v1/status"
expect_error 401 MB_EAUTH
CURL_EXTRA=(-H "Authorization: Bearer new-token")
http GET "http://$NODE_ADDR/v1/status"
[ "$HTTP_CODE" = 200 ] || fail "new token: $HTTP_CODE"
http GET "http://$NODE_ADDR/v1/config/api_token"
[ "$(jget "$T/body" 'j["value"]')" = "<redacted>" ] || fail "token not redacted"
CURL_EXTRA=()
stop_node "$NODE_PID"
pass "bearer token enforced"
