#!/usr/bin/env bash
# Suite "consensus": the pure state machine (apply rate, snapshot encode and
# restore of 10k variables) and the raft glue (3 real instances on
# 127.0.0.1: commit latency, pipelined commits). Medians of 5 runs.
set -euo pipefail
bin="$MB_BENCH_BUILD/tests/bench/consensus/bench_consensus"
"$bin" sm 5
"$bin" raft 5
