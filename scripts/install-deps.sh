#!/usr/bin/env bash
# Installs, on Debian 12 (or Ubuntu), the packages clonefs needs — only the ones that are missing.
# Run as root (or with sudo available).
#   install-deps.sh          everything the tests need (scripts/test.sh, CI)
#   install-deps.sh --demo   only what building the clonefs binary and running the demo need
set -euo pipefail

demo_packages=(
  # build the binary
  g++ make cmake pkg-config
  libfuse3-dev libmount-dev libblkid-dev libsqlite3-dev libcli11-dev libspdlog-dev libfmt-dev
  nlohmann-json3-dev libsystemd-dev libnbd-dev
  # the header of clonefs's nbdkit filter (http sources, src/nbdkit/)
  nbdkit-plugin-dev
  # run: fusermount3 (fuse3), losetup and mount (mount), mkfs.ext4/e2fsck (e2fsprogs)
  fuse3 mount util-linux e2fsprogs
)
test_packages=(
  "${demo_packages[@]}"
  build-essential ccache clang-format git libgtest-dev libgmock-dev
  # cmp, fio for verified I/O through loop devices, sqlite3 for inspecting metadata, python3 for
  # the bench's unit tests (ctest bench_python_unit), groff to check the man page, file for
  # CPack's dpkg-shlibdeps, Prometheus's Python client to parse the metrics
  diffutils fio sqlite3 procps python3 groff-base file python3-prometheus-client
  # operating: systemd-analyze (systemd) verifies the unit, dpkg-deb/dpkg-shlibdeps (dpkg-dev)
  # build and inspect the .deb and lintian checks it; docker/test.sh builds and runs the
  # container with podman (runc) from a Debian 12 base made by debootstrap
  systemd dpkg-dev lintian podman runc debootstrap
  # tests of NBD sources: nbdkit (file, sparse-random, memory plugins; error, delay filters) and
  # qemu-nbd (a qcow2 served read-only)
  nbdkit qemu-utils
  # tests of http sources: a local nginx (Range requests, If-Unmodified-Since) for nbdkit's curl
  # plugin, and openssl for the certificate of its https variant
  nginx openssl
  # tests: XFS and btrfs on loop devices, where hydration shares the source's extents (reflink)
  xfsprogs btrfs-progs
  # fuzzing (scripts/fuzz.sh): clang with libFuzzer and the sanitizer runtimes
  clang libclang-rt-14-dev
)

packages=("${test_packages[@]}")
[ "${1:-}" = --demo ] && packages=("${demo_packages[@]}")

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
