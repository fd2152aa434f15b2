#!/usr/bin/env bash
# Single benchmark entry point.
#
#   scripts/bench.sh               # every suite
#   scripts/bench.sh storage node  # only these suites
#   scripts/bench.sh --list        # the suites there are
#
# Builds with optimisation (-O2, no sanitizers) into build-bench/, then runs
# scripts/bench.d/SUITE.sh for each suite. Every result is one JSON object per
# line on stdout: {"suite":..,"metric":..,"value":..,"unit":..} plus any
# comparison fields (e.g. "baseline", "ratio", "target"). Progress goes to
# stderr. Results are recorded by hand in docs/BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

all=()
for f in scripts/bench.d/*.sh; do
    [ -e "$f" ] || continue
    all+=("$(basename "$f" .sh)")
done

if [ "${1:-}" = "--list" ]; then
    printf '%s\n' "${all[@]}"
    exit 0
fi
if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
fi

suites=("$@")
if [ ${#suites[@]} -eq 0 ]; then
    suites=("${all[@]}")
fi
for s in "${suites[@]}"; do
    if [ ! -f "scripts/bench.d/$s.sh" ]; then
        echo "bench: unknown suite '$s' (have: ${all[*]})" >&2
        exit 2
    fi
done

scripts/install-deps.sh build bench
export MB_BENCH_BUILD="$root/build-bench"
cmake -S . -B "$MB_BENCH_BUILD" -DCMAKE_BUILD_TYPE=Release -DMB_BENCH=ON -DMB_SANITIZE= >/dev/null
cmake --build "$MB_BENCH_BUILD" -j "$(nproc)" >&2

status=0
for s in "${suites[@]}"; do
    echo "bench: suite $s ($(date -u +%FT%TZ))" >&2
    if ! bash "scripts/bench.d/$s.sh"; then
        echo "bench: suite $s failed" >&2
        status=1
    fi
done
exit $status
