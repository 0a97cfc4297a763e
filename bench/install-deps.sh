#!/usr/bin/env bash
# Installs, on Debian 12, everything bench/run.py and bench/region_sizes.py need — only the
# packages that are missing: clonefs's build and run dependencies (scripts/install-deps.sh), then
# fio, qemu-img (qemu-utils), qemu-storage-daemon (qemu-system-common), strace, python3, nbdkit
# and nbdfuse (libnbd-bin) for the NBD rows, git for the loop suite (workload 13), nginx and curl
# for the fleet (row 14; its golden also needs podman's localhost/debian:12, made by
# docker/test.sh), and libbenchmark-dev (bench/CMakeLists.txt: find_package(benchmark) for
# -DCLONEFS_BENCH=ON).
# Run as root (or with sudo available).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/scripts/install-deps.sh"

packages=(fio qemu-utils qemu-system-common strace python3 libbenchmark-dev nbdkit libnbd-bin
          e2fsprogs xfsprogs mount util-linux fuse3 tar coreutils procps git nginx curl)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "clonefs bench: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
