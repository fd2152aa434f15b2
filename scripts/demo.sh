#!/usr/bin/env bash
# The README's main command: builds MABEAM and runs the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh build
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)"
echo "demo: the node daemon is not built yet" >&2
exit 1
