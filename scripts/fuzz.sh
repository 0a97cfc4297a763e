#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz) with clang under ASan and UBSan in their own build
# directory, and runs each for FUZZ_SECONDS (default 60) from its committed seed corpus
# (tests/fuzz/corpus/TARGET, only read: new inputs go to a temporary directory), one target per
# CPU at once (FUZZ_PARALLEL). Prints the executions per target; exits non-zero if any target crashed, leaked, hung or aborted, leaving
# the input that did it as BUILD/crash-TARGET-* (add it to the corpus with the fix).
#
#   FUZZ_SECONDS=60 FUZZ_TARGETS="source_uri ..." FUZZ_BUILD_DIR=build-fuzz scripts/fuzz.sh
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${FUZZ_BUILD_DIR:-$root/build-fuzz}
seconds=${FUZZ_SECONDS:-60}
targets=${FUZZ_TARGETS:-metadata_loader access_profile source_uri control_protocol mount_helper}

CXX=${FUZZ_CXX:-clang++} cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCLONEFS_FUZZ=ON -DCLONEFS_TESTS=OFF >/dev/null
cmake --build "$build" -j"${FUZZ_JOBS:-2}" --target clonefs_fuzz_targets >/dev/null

export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
# Each libFuzzer run is one thread: FUZZ_PARALLEL targets (default: one per CPU) run at once.
parallel=${FUZZ_PARALLEL:-$(nproc)}
run_target() {
  local target=$1 found status=ok execs
  found=$(mktemp -d)
  "$build/tests/fuzz/fuzz_$target" -max_total_time="$seconds" -timeout=25 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$build/crash-$target-" \
    "$found" "$root/tests/fuzz/corpus/$target" >"$build/fuzz-$target.log" 2>&1 || status=FAILED
  rm -rf "$found"
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$build/fuzz-$target.log" | tail -1)
  echo "fuzz $target: $status, ${execs:-0} executions in $seconds s"
  [ "$status" = ok ]
}

failed=0
declare -A running=()  # PID -> target
finish_one() {
  local pid
  wait -n -p pid "${!running[@]}" || {
    failed=1
    tail -n 40 "$build/fuzz-${running[$pid]}.log"
  }
  unset "running[$pid]"
}
for target in $targets; do
  [ "${#running[@]}" -ge "$parallel" ] && finish_one
  run_target "$target" &
  running[$!]=$target
done
while [ "${#running[@]}" -gt 0 ]; do finish_one; done
exit "$failed"
