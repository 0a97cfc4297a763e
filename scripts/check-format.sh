#!/usr/bin/env bash
# Fails if any tracked C++ file differs from what clang-format (Debian 12's, with the repository's
# .clang-format) makes of it. `scripts/check-format.sh --fix` rewrites them instead.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mapfile -t files < <(git ls-files '*.cc' '*.h')
if [ "${1:-}" = --fix ]; then
  clang-format -i "${files[@]}"
  exit 0
fi
if ! clang-format --dry-run --Werror "${files[@]}" 2> /tmp/clonefs-format.$$; then
  grep 'error:' /tmp/clonefs-format.$$ | head -20 >&2
  rm -f /tmp/clonefs-format.$$
  echo "clonefs: files above differ from .clang-format; run scripts/check-format.sh --fix" >&2
  exit 1
fi
rm -f /tmp/clonefs-format.$$
echo "format: ${#files[@]} files match .clang-format"
