# Helpers for the agent integration tests, on top of the daemon tests'
# lib.sh (processes, deadlines, cleanup).
. "$(dirname "$0")/../daemon/lib.sh"

# agent_field AGENT EXPR: evaluate EXPR on `mabeam --json agent info AGENT`.
agent_field() {
    "${M[@]}" --json agent info "$1" >"$T/info.json" 2>/dev/null || return 1
    jget "$T/info.json" "$2"
}

# ckpt_int64 AGENT: the agent's stored checkpoint as a little-endian int64.
ckpt_int64() {
    "${M[@]}" agent checkpoint "$1" 2>/dev/null |
        python3 -c 'import base64,struct,sys; print(struct.unpack("<q", base64.b64decode(sys.stdin.read().strip()))[0])'
}

# ckpt_text AGENT: the agent's stored checkpoint as text.
ckpt_text() {
    "${M[@]}" agent checkpoint "$1" 2>/dev/null |
        python3 -c 'import base64,sys; print(base64.b64decode(sys.stdin.read().strip()).decode())'
}

# is_eq EXPECTED CMD...: CMD prints EXPECTED (for wait_until).
is_eq() {
    local want=$1
    shift
    [ "$("$@" 2>/dev/null)" = "$want" ]
}

# has_event TYPE SUBJECT: the node-local log has an event TYPE about SUBJECT.
has_event() {
    "${M[@]}" --json events --type "$1" --subject "$2" >"$T/ev.json" 2>/dev/null || return 1
    [ "$(jget "$T/ev.json" 'len(j["events"])')" -ge 1 ]
}

# expect_exit CODE CMD...: CMD exits with CODE.
expect_exit() {
    local want=$1 rc=0
    shift
    "$@" >"$T/out.txt" 2>"$T/err.txt" || rc=$?
    [ "$rc" = "$want" ] || fail "expected exit $want, got $rc from: $* ($(cat "$T/err.txt"))"
}
