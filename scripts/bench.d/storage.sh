#!/usr/bin/env bash
# Suite `storage` (run through scripts/bench.sh storage): appends in fast
# mode (batches of 1000, 256-byte payloads, subject and type indexes), durable
# appends from 8 threads (batches of 10, group commit), and a query of 1000
# events of one subject among 10 million (loaded, then compacted). One JSON line per metric (medians)
# on stdout, progress on stderr. About 2-3 minutes on the 2-core machine.
set -euo pipefail
: "${MB_BENCH_BUILD:?run through scripts/bench.sh}"
bin="$MB_BENCH_BUILD/tests/bench/storage/bench_storage"
work=$(mktemp -d "${TMPDIR:-/tmp}/mabeam-bench-storage-XXXXXX")
trap 'rm -rf "$work"' EXIT

"$bin" append_fast "$work/fast" "${MB_BENCH_STORAGE_FAST_EVENTS:-1000000}"
"$bin" append_durable "$work/durable" "${MB_BENCH_STORAGE_DURABLE_SECONDS:-5}"
"$bin" query_subject "$work/query" "${MB_BENCH_STORAGE_QUERY_EVENTS:-10000000}"
