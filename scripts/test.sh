#!/usr/bin/env bash
# The README's second command: install what is missing, build, run every test.
#  1. the engine's unit tests again under ThreadSanitizer and AddressSanitizer+UBSan builds;
#  2. every test (unit, crash simulation, real mounts) in the normal build, through ctest.
# Tests that need root, /dev/fuse and loop devices run for real; outside CI they may skip
# (saying why), in CI (CI=true) they fail instead. CLONEFS_SKIP_SANITIZERS=1 skips step 1.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/check-format.sh"

if [ "${CLONEFS_SKIP_SANITIZERS:-0}" != 1 ]; then
  for sanitizer in TSAN ASAN; do
    dir="$root/build-${sanitizer,,}"
    echo "== unit tests under ${sanitizer}"
    cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCLONEFS_${sanitizer}=ON >/dev/null
    cmake --build "$dir" -j"$(nproc)" --target clonefs_unit_tests >/dev/null
    TSAN_OPTIONS=halt_on_error=1 ASAN_OPTIONS=detect_leaks=1 \
      "$dir/tests/clonefs_unit_tests" --gtest_brief=1
  done
fi

# Warnings fail the build that runs every test (-Werror).
"$root/scripts/build.sh" -DCLONEFS_WERROR=ON
cd "${CLONEFS_BUILD_DIR:-$root/build}"
ctest --output-on-failure --timeout 900 "$@"
