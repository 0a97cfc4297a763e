#!/usr/bin/env bash
# Installs, on Debian 12 (or Ubuntu), every package clonefs needs to build, run its demo and
# pass its tests — only the ones that are missing. Run as root (or with sudo available).
set -euo pipefail

packages=(
  # build
  build-essential cmake pkg-config ccache clang-format git
  libfuse3-dev libblkid-dev libmount-dev libsqlite3-dev libcli11-dev libspdlog-dev libfmt-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev libsystemd-dev
  # remote sources over NBD: the client library
  libnbd-dev
  # run: fusermount3 (fuse3), losetup (mount), fstrim (util-linux), mkfs.ext4/e2fsck/chattr, cmp
  fuse3 mount util-linux e2fsprogs diffutils
  # tests: fio for verified I/O through loop devices, sqlite3 for inspecting metadata, python3 for
  # the bench's unit tests (ctest bench_python_unit), groff to check the man page, file for
  # CPack's dpkg-shlibdeps, Prometheus's Python client to parse the metrics
  fio sqlite3 procps python3 groff-base file python3-prometheus-client
  # operating: systemd-analyze (systemd) verifies the unit, dpkg-deb/dpkg-shlibdeps (dpkg-dev)
  # build and inspect the .deb; docker/test.sh builds and runs the container with podman (runc)
  # from a Debian 12 base made by debootstrap
  systemd dpkg-dev podman runc debootstrap
  # tests of NBD sources: nbdkit (file, sparse-random, memory plugins; error, delay filters) and
  # qemu-nbd (a qcow2 served read-only)
  nbdkit qemu-utils
  # tests: XFS and btrfs on loop devices, where hydration shares the source's extents (reflink)
  xfsprogs btrfs-progs
  # fuzzing (scripts/fuzz.sh): clang with libFuzzer and the sanitizer runtimes
  clang libclang-rt-14-dev
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "clonefs: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
