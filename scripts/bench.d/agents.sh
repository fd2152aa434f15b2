#!/usr/bin/env bash
# Suite "agents": the agent runtime against Erlang/OTP, measured side by side
# in the same run. Needs $MB_BENCH_BUILD (a Release build with MB_BENCH=ON)
# and erlc/erl (Debian package erlang-base). Prints one JSON object per
# metric on stdout: value (MABEAM), baseline (BEAM), ratio = value/baseline,
# target and whether it is met. Progress on stderr.
#   MB_BENCH_QUICK=1 scripts/bench.d/agents.sh   # one short run per metric
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${MB_BENCH_BUILD:?set MB_BENCH_BUILD to a Release build with -DMB_BENCH=ON}
bin="$build/tests/bench/agents/bench_agents"
quick=()
erl_args="[full]"
if [ "${MB_BENCH_QUICK:-0}" = 1 ]; then
    quick=(--quick)
    erl_args="[quick]"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "agents: MABEAM runtime ($bin)" >&2
"$bin" "${quick[@]}" >"$work/c.txt"
cat "$work/c.txt" >&2

if command -v erlc >/dev/null && command -v erl >/dev/null; then
    echo "agents: Erlang/OTP $(erl -noshell -eval 'io:format("~s",[erlang:system_info(otp_release)]),halt().')" >&2
    cp tests/bench/agents/bench_agents.erl "$work/"
    (cd "$work" && erlc bench_agents.erl)
    (cd "$work" && erl +P 4000000 -noshell -eval "bench_agents:main($erl_args)") >"$work/erl.txt"
    cat "$work/erl.txt" >&2
    otp=$(erl -noshell -eval 'io:format("~s",[erlang:system_info(otp_release)]),halt().')
else
    echo "agents: erl not found (apt-get install erlang-base): no baseline" >&2
    : >"$work/erl.txt"
    otp=""
fi

python3 - "$work/c.txt" "$work/erl.txt" "$otp" <<'PY'
import json, sys
def load(p):
    out = {}
    for line in open(p):
        parts = line.split()
        if len(parts) >= 3:
            out[parts[0]] = (float(parts[1]), " ".join(parts[2:]))
    return out
c, e, otp = load(sys.argv[1]), load(sys.argv[2]), sys.argv[3]
# metric -> (target description, check(value, baseline))
targets = {
    "spawn_1m_ns_per_agent": ("<= 1000 ns and >= 5x faster than BEAM",
                              lambda v, b: v <= 1000 and (b is None or b / v >= 5)),
    # an agent with its name in node/core's registry (as mabeamd registers
    # it) against an idle BEAM process
    "memory_per_idle_named_agent_rss": ("<= 1024 bytes and <= 0.4x BEAM",
                                        lambda v, b: v <= 1024 and (b is None or v / b <= 0.4)),
    "pingpong_round_trip_ns": ("<= 500 ns", lambda v, b: v <= 500),
    "throughput_msgs_per_s": (">= 5000000 msg/s", lambda v, b: v >= 5e6),
    "restart_supervised_ns": ("<= 20000 ns", lambda v, b: v <= 20000),
}
for m, (v, unit) in c.items():
    o = {"suite": "agents", "metric": m, "value": v, "unit": unit}
    # BEAM has no per-process name entry: compare with its idle process
    b = e.get("memory_per_idle_agent_rss" if m == "memory_per_idle_named_agent_rss" else m,
              (None, None))[0]
    if b is not None:
        o["baseline"] = b
        o["baseline_system"] = "Erlang/OTP " + otp
        o["ratio"] = round(v / b, 4) if b else None
    if m in targets:
        o["target"] = targets[m][0]
        o["meets_target"] = bool(targets[m][1](v, b))
    print(json.dumps(o))
PY
