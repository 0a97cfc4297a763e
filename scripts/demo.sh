#!/usr/bin/env bash
# The README's first command: install what is missing, build, and run the main job — clone a
# generated ext4 source image, mount the clone, use it through a loop device, hydrate it to a
# standalone image. Everything it starts is cleaned up on exit, even on failure. Run as root.
# It installs only what building and running clonefs needs and builds only the clonefs binary
# (Release, no debug info, no tests) into build-demo/; scripts/test.sh installs and builds the rest.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${CLONEFS_BUILD_DIR:-$root/build-demo}
started=$(date +%s)
echo "clonefs demo: installs the missing build and run packages (a compiler, cmake, the -dev"
echo "libraries, fuse3, e2fsprogs; about 1 minute on a fresh Debian 12), builds the clonefs binary"
echo "(about 1 minute on 2 cores), then clones, mounts and hydrates a 256 MiB ext4 image (seconds)."
"$root/scripts/install-deps.sh" --demo
# Release at -O2 without debug info, CLI11 compiled twice rather than once per command file:
# 200 s of compiler time instead of 360 s (README).
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" \
  -DCLONEFS_UNITY_CLI=ON -DCLONEFS_TESTS=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target clonefs
clonefs="$build/cli/clonefs"
echo "clonefs demo: packages and build took $(($(date +%s) - started)) s"

work=$(mktemp -d /tmp/clonefs-demo.XXXXXX)
loop=""
cleanup() {
  set +e
  mountpoint -q "$work/mnt" && umount "$work/mnt"
  [ -n "$loop" ] && losetup -d "$loop"
  grep -q " $work/image " /proc/mounts && "$clonefs" unmount "$work/image"
  rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "Generate a 256 MiB ext4 source image with some files"
mkdir -p "$work/tree/docs" "$work/mnt"
echo "hello from the golden image" > "$work/tree/hello.txt"
head -c 8M /dev/urandom > "$work/tree/docs/blob.bin"
seq 1 100000 > "$work/tree/docs/numbers.txt"
(cd "$work/tree" && find . -type f -exec sha256sum {} + | sort -k2 > "$work/SHA256SUMS")
mkfs.ext4 -q -F -d "$work/tree" "$work/source.img" 256M
chmod a-w "$work/source.img"
source_sum=$(sha256sum < "$work/source.img")
ls -l "$work/source.img"

step "clonefs create"
"$clonefs" create --source "$work/source.img" --dest "$work/dest.img" --metadata "$work/meta.db"

step "clonefs mount (usable at once, hydration paused so the demo shows both states)"
"$clonefs" mount --metadata "$work/meta.db" --no-hydration "$work/image"
"$clonefs" status "$work/image"

step "Attach the image to a loop device and mount its filesystem"
loop=$(losetup -f --show "$work/image")
echo "loop device: $loop"
mount "$loop" "$work/mnt"
ls -lR "$work/mnt" | head -20
(cd "$work/mnt" && sha256sum -c --quiet "$work/SHA256SUMS") && echo "checksums match the source"

step "Write through the clone"
echo "written through clonefs at $(date -u +%FT%TZ)" > "$work/mnt/new.txt"
head -c 4M /dev/urandom > "$work/mnt/docs/fresh.bin"
sync
cat "$work/mnt/new.txt"
"$clonefs" status "$work/image"

step "Unmount the filesystem, detach the loop device, hydrate the rest in the background"
umount "$work/mnt"
losetup -d "$loop"; loop=""
"$clonefs" hydrate "$work/image" --resume --wait
"$clonefs" status "$work/image" --json

step "clonefs unmount, then finalize: the destination is now a standalone raw image"
"$clonefs" unmount "$work/image"
"$clonefs" finalize --metadata "$work/meta.db"
e2fsck -fn "$work/dest.img"
[ "$(sha256sum < "$work/source.img")" = "$source_sum" ] || { echo "clonefs: the source changed!" >&2; exit 1; }
echo
echo "The source is unchanged; the destination holds the source plus what the demo wrote."
echo "clonefs demo: done in $(($(date +%s) - started)) s"
