#!/usr/bin/env bash
# HTTP error handling: 400 (malformed JSON, bad value, bad parameter), 404
# (route, key), 405 with Allow, 409 (not reloadable), 413 (body over the
# configured limit), 411 (chunked); all with a JSON error body; garbage on
# the socket crashes nothing.
. "$(dirname "$0")/lib.sh"

start_node n1 --http_max_body=1KiB
A="http://$NODE_ADDR"

http PUT "$A/v1/config/log_level" '{"value": "debug"'
expect_error 400 MB_EINVAL
http PUT "$A/v1/config/log_level" '["debug"]'
expect_error 400 MB_EINVAL
http PUT "$A/v1/config/log_level" '{"other": 1}'
expect_error 400 MB_EINVAL
http PUT "$A/v1/config/log_level" '{"value": "loud"}'
expect_error 400 MB_EINVAL
http PUT "$A/v1/config/log_level" '{"value": {"a": 1}}'
expect_error 400 MB_EINVAL
http GET "$A/v1/events?limit=abc"
expect_error 400 MB_EINVAL
http GET "$A/v1/events?order=sideways"
expect_error 400 MB_EINVAL
http GET "$A/v1/events?x=%zz"
expect_error 400 MB_EINVAL
pass "400s"

http GET "$A/v1/nothing-here"
expect_error 404 MB_ENOTFOUND
http GET "$A/"
expect_error 404 MB_ENOTFOUND
http GET "$A/v1/config/no_such_key"
expect_error 404 MB_ENOTFOUND
http GET "$A/v1/config/log_levl"
expect_error 404 MB_ENOTFOUND
grep -q "did you mean 'log_level'" "$T/body" || fail "no suggestion: $(cat "$T/body")"
pass "404s"

http DELETE "$A/v1/config/log_level"
expect_error 405 MB_EINVAL
grep -qi '^Allow: GET, HEAD, PUT' "$T/headers" || fail "Allow header: $(cat "$T/headers")"
http POST "$A/v1/health" '{}'
expect_error 405 MB_EINVAL
grep -qi '^Allow: GET, HEAD' "$T/headers" || fail "Allow header: $(cat "$T/headers")"
pass "405s"

http PUT "$A/v1/config/data_dir" '{"value": "/elsewhere"}'
expect_error 409 MB_EPERM
grep -q "not reloadable" "$T/body" || fail "409 message: $(cat "$T/body")"
pass "409"

big=$(python3 -c 'print("{\"value\": \"" + "x" * 2000 + "\"}")')
http PUT "$A/v1/config/log_level" "$big"
expect_error 413 MB_ETOOBIG
# At the limit the body is read and judged on its content.
ok=$(python3 -c 'v="debug"; s="{\"value\": \"%s\"}" % v; print(s + " " * (1024 - len(s)))')
http PUT "$A/v1/config/log_level" "$ok"
[ "$HTTP_CODE" = 200 ] || fail "1024-byte body: $HTTP_CODE $(cat "$T/body")"
# The limit is reloadable.
http PUT "$A/v1/config/http_max_body" '{"value": "4KiB"}'
[ "$HTTP_CODE" = 200 ] || fail "raise limit: $HTTP_CODE $(cat "$T/body")"
http PUT "$A/v1/config/log_level" "$big"
expect_error 400 MB_EINVAL # now read, and judged as a bad value
# A client that sends "Expect: 100-continue" (curl does for large bodies)
# gets "100 Continue" instead of waiting for a timeout before sending.
curl -sv -m 10 -X PUT -H 'Content-Type: application/json' -H 'Expect: 100-continue' \
    --data-binary "$big" \
    "$A/v1/config/log_level" >/dev/null 2>"$T/curl-v.txt" || true
grep -q '< HTTP/1.1 100 Continue' "$T/curl-v.txt" || fail "no 100 Continue: $(cat "$T/curl-v.txt")"
grep -q '< HTTP/1.1 400' "$T/curl-v.txt" || fail "no final answer after 100 Continue"
pass "413 and body limit"

CURL_EXTRA=(-H "Transfer-Encoding: chunked")
http PUT "$A/v1/config/log_level" '{"value": "info"}'
expect_error 411 MB_EINVAL
CURL_EXTRA=()
pass "411"

# Raw garbage and truncated requests on the socket.
python3 - "$NODE_PORT" <<'PY'
import socket, sys
port = int(sys.argv[1])
payloads = [b"\x00\xff garbage\r\n\r\n", b"GET /v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n",
            b"PUT /v1/config/log_level HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"value\"",
            b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", b"GET /v1/health HTTP/9.9\r\n\r\n"]
for p in payloads:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        # The server may reject and close before we finish writing: that is
        # a correct answer to garbage, not a test failure.
        try:
            s.sendall(p)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        s.settimeout(5)
        try:
            while s.recv(4096):
                pass
        except OSError:
            pass
    finally:
        s.close()
PY
health_ok "$NODE_ADDR" || fail "node unhealthy after garbage"
http GET "$A/v1/health"
[ "$HTTP_CODE" = 200 ] || fail "health after garbage"
stop_node "$NODE_PID"
pass "garbage survived"
