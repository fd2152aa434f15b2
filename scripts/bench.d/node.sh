#!/usr/bin/env bash
# Suite `node`: the node-local services library (node/core) and, later, the
# mabeamd daemon itself. Run through scripts/bench.sh, which builds the
# Release+MB_BENCH tree into $MB_BENCH_BUILD first. Prints one JSON object
# per line on stdout; progress goes to stderr.
#
# Figures (medians of per-operation averages over batches of 1000 calls):
#   memory_chase_latency           one dependent load over 4..64 MiB (with L2/L3 sizes)
#   memory_miss_latency            one dependent cache miss over 96 MiB (baseline)
#   memory_random_load_throughput  independent random loads over 96 MiB (overlap floor)
#   registry_lookup_median         random-order lookups among 1,000,000 names (target 100 ns)
#   registry_lookup_chained_median the same, each name chosen by the previous result
#   registry_lookup_hot_median     the same, over a cache-resident set of 1000 names
#   registry_register_median       registering 1,000,000 names, growth included (target 1 us)
#   registry_bytes_per_entry       RSS growth / entries, 13-byte names (target < 150 B)
#   registry_select_100k_median    select by one attribute over 100,000 entries (a scan)
#   hist_record_median             histogram record, 1 and 2 threads
#   counter_add_median             counter increment
#   log_call_level_off_median      NC_DEBUG/NC_LOGKV call when the level is off
#   log_call_json_written_median   a JSON line formatted and handed to a sink
set -euo pipefail
build="${MB_BENCH_BUILD:?run through scripts/bench.sh (MB_BENCH_BUILD unset)}"
bin="$build/tests/bench/node_core/bench_nodecore"
if [ ! -x "$bin" ]; then
    echo "node.sh: $bin missing (configure with -DMB_BENCH=ON)" >&2
    exit 1
fi
echo "node.sh: node_core library benchmarks" >&2
"$bin" --names "${MB_BENCH_NODE_NAMES:-1000000}" --reps "${MB_BENCH_NODE_REPS:-5}"

# ---- mabeamd idle RSS ---------------------------------------------------------
# Reserved for the daemon engineer: measure the resident memory of an idle
# mabeamd here and print it as
#   {"suite":"node","metric":"mabeamd_idle_rss","value":...,"unit":"bytes",...}
# ---- end of mabeamd idle RSS --------------------------------------------------
