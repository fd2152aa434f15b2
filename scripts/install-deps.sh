#!/usr/bin/env bash
# Installs the Debian packages MABEAM needs to build and test, if any is
# missing. Usage: scripts/install-deps.sh [build|test|bench]...
# "build" is always included; "test" adds what the test suite uses (promtool,
# clang's sanitizer runtime, iproute2 for partition tests, python3); "bench"
# adds the comparison systems the benchmarks run side by side.
set -euo pipefail

build_pkgs=(build-essential cmake pkg-config git libraft-dev libuv1-dev libnng-dev
    librocksdb-dev libcunit1-dev libcjson-dev libprotobuf-c-dev protobuf-c-compiler
    libmbedtls-dev)
test_pkgs=(prometheus python3 iproute2 procps curl clang libclang-rt-14-dev)
bench_pkgs=(erlang-base etcd-server etcd-client wrk python3-optuna python3-sklearn)

want=("${build_pkgs[@]}")
for set in "$@"; do
    case "$set" in
    build) ;;
    test) want+=("${test_pkgs[@]}") ;;
    bench) want+=("${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
    *)
        echo "install-deps: unknown package set '$set' (build, test, bench)" >&2
        exit 2
        ;;
    esac
done

missing=()
for p in "${want[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
