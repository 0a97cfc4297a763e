#!/usr/bin/env bash
# The README's second command: install what is missing, build, run every test.
#  1. the engine's unit tests again under ThreadSanitizer and AddressSanitizer+UBSan builds;
#  2. the fuzz targets, each for a bounded time, under ASan+UBSan (scripts/fuzz.sh);
#  3. every test (unit, crash simulation, real mounts, operating, container) in the normal
#     build, through ctest.
# Tests that need root, /dev/fuse and loop devices run for real; outside CI they may skip
# (saying why), in CI (CI=true) they fail instead. CLONEFS_SKIP_SANITIZERS=1 skips step 1,
# CLONEFS_SKIP_FUZZ=1 step 2. Each stage prints how long it took; ctest prints its time per label.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
started=$(date +%s)
stage_started=$started
stage() {
  local now
  now=$(date +%s)
  [ -n "${stage_name:-}" ] && echo "== stage '$stage_name' took $((now - stage_started)) s"
  stage_name=$1
  stage_started=$now
  [ -n "$stage_name" ] && echo "== stage '$stage_name'"
  return 0
}
trap 'stage ""; echo "== scripts/test.sh: $(($(date +%s) - started)) s in all"' EXIT

stage "install packages"
"$root/scripts/install-deps.sh"
stage "format"
"$root/scripts/check-format.sh"

if [ "${CLONEFS_SKIP_SANITIZERS:-0}" != 1 ]; then
  for sanitizer in TSAN ASAN; do
    stage "unit tests under ${sanitizer} (build and run)"
    dir="$root/build-${sanitizer,,}"
    # The sanitizer builds are compiled cold in CI: -O1 -g1 (a unit test of the kill matrix
    # compiles in 32-36 s at -O2 -g, 12-17 s at -O1 -g1) keeps the line tables a report needs.
    # Not -O0 (6-9 s): ASan then reports a worker thread cancelled in a read (request_loop_test)
    # as a stack overflow in sigaltstack, a false positive of its own. Assertions stay on.
    cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" -DCLONEFS_${sanitizer}=ON >/dev/null
    cmake --build "$dir" -j"$(nproc)" --target clonefs_unit_tests >/dev/null
    TSAN_OPTIONS=halt_on_error=1 ASAN_OPTIONS=detect_leaks=1 \
      "$dir/tests/clonefs_unit_tests" --gtest_brief=1
  done
fi

if [ "${CLONEFS_SKIP_FUZZ:-0}" != 1 ]; then
  stage "fuzz targets (build and run)"
  bash "$root/scripts/fuzz.sh"
fi

stage "build (warnings are errors)"
"$root/scripts/build.sh" -DCLONEFS_WERROR=ON
stage "ctest: every test"
cd "${CLONEFS_BUILD_DIR:-$root/build}"
# Tests not marked RUN_SERIAL (unit and crash simulation) run one per CPU at once.
ctest --output-on-failure --timeout 900 -j"$(nproc)" "$@"
