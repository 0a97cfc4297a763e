#!/usr/bin/env bash
# The README's second command: install what is missing, build, run every test.
# Tests that need root, /dev/fuse and loop devices run for real; outside CI they may skip
# (saying why), in CI (CI=true) they fail instead.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
cd "${CLONEFS_BUILD_DIR:-$root/build}"
ctest --output-on-failure --timeout 900 "$@"
