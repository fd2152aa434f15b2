#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, and runs every
# test with CTest. Exits non-zero when anything fails.
#
#   scripts/test.sh                     # plain build (build/), all tests
#   scripts/test.sh --sanitize=address  # ASan+UBSan build (build-asan/)
#   scripts/test.sh --sanitize=thread   # TSan build (build-tsan/), threaded modules
#   scripts/test.sh -- -R storage       # extra arguments after -- go to ctest
set -euo pipefail
cd "$(dirname "$0")/.."

sanitize=""
ctest_args=()
while [ $# -gt 0 ]; do
    case "$1" in
    --sanitize=*) sanitize="${1#--sanitize=}" ;;
    --) shift; ctest_args+=("$@"); break ;;
    -h | --help)
        sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "test.sh: unknown argument '$1' (see --help)" >&2
        exit 2
        ;;
    esac
    shift
done

scripts/install-deps.sh build test

case "$sanitize" in
"") dir=build ;;
address) dir=build-asan ;;
thread) dir=build-tsan ;;
*)
    echo "test.sh: --sanitize must be address or thread" >&2
    exit 2
    ;;
esac

jobs=$(nproc)
cmake -S . -B "$dir" -DMB_SANITIZE="$sanitize" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$dir" -j "$jobs"

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
# tests/tsan.supp: races inside libraries that are not ours, each explained.
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/tests/tsan.supp"
export MB_TEST_QUIET=1
if [ "$sanitize" = thread ]; then
    # Only the modules with threads of their own are worth TSan's slowdown.
    ctest_args=(-L threaded "${ctest_args[@]}")
fi
# Unit (but for label "nng", below), fuzz and partition-checker tests run
# once. Tests with real daemon processes (label "integration") get one
# retry: a rare crash at mabeamd shutdown (seen once in CI, 2026-11-25, not
# reproduced in 36 reruns) is being tracked down; a retried failure still
# prints its output and the crash backtrace from the node log, and a test
# that fails twice fails CI.
# Unit tests that drive real NNG 1.5.2 sockets (label "nng") get the same
# single retry: libnng 1.5.2 can leak a closed listener's objects, which
# LeakSanitizer reported once in CI (session 8; every assertion had
# passed), or hang in a close (nng#1636, fixed in 1.6.0).
status=0
ctest --test-dir "$dir" --output-on-failure -j "$jobs" -LE 'integration|nng' "${ctest_args[@]}" ||
    status=1
ctest --test-dir "$dir" --output-on-failure -j "$jobs" -L nng --repeat until-pass:2 \
    "${ctest_args[@]}" || status=1
ctest --test-dir "$dir" --output-on-failure -j "$jobs" -L integration --repeat until-pass:2 \
    "${ctest_args[@]}" || status=1
exit $status
