#!/usr/bin/env bash
# Builds docker/Dockerfile with podman and runs it for real, without a registry: the Debian 12
# base image is made here by debootstrap (from Debian's packages) and imported into podman's
# local storage as debian:12. Then, in containers of the built image, with /dev/fuse and
# CAP_SYS_ADMIN: create a clone of a random source, mount it (the daemon in the foreground as the
# container's main process), compare the image with the source from the host through the
# container's FUSE mount (`cmp`), check the status, and stop the container (SIGTERM: final
# commit), then check the committed state from the host.
#
# Needs root, podman, runc, debootstrap (scripts/install-deps.sh) and /dev/fuse. The base image
# is kept in podman's storage between runs (CLONEFS_REBUILD_BASE=1 makes it again);
# DEBIAN_MIRROR overrides the mirror debootstrap uses. Cleans up what it started, even on failure.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
base=localhost/debian:12
image=localhost/clonefs:test
container=clonefs-test-$$
# runc, cgroupfs: what works on a machine without systemd as PID 1 and inside CI's sandbox.
podman=(podman --runtime runc --cgroup-manager cgroupfs)
limits=(--ulimit nofile=20000:20000 --ulimit nproc=4096:4096)
start=$(date +%s)
say() { echo "== docker/test.sh [$(($(date +%s) - start)) s] $*"; }

for tool in podman runc debootstrap; do
  command -v "$tool" >/dev/null || { echo "docker/test.sh: $tool is missing (scripts/install-deps.sh)" >&2; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { echo "docker/test.sh: must run as root (debootstrap, FUSE in the container)" >&2; exit 1; }
[ -c /dev/fuse ] || { echo "docker/test.sh: /dev/fuse is missing" >&2; exit 1; }

work=$(mktemp -d /var/tmp/clonefs-docker.XXXXXX)
data=$work/data
bound=0
cleanup() {
  set +e
  "${podman[@]}" rm -f -t 10 "$container" >/dev/null 2>&1
  # A mount the container left behind (it is visible here through the shared bind mount).
  mountpoint -q "$data/image" 2>/dev/null && umount -l "$data/image"
  [ "$bound" = 1 ] && umount -l "$data"
  rm -rf "$work"
}
trap cleanup EXIT

if [ "${CLONEFS_REBUILD_BASE:-0}" = 1 ] || ! "${podman[@]}" image exists "$base"; then
  say "debootstrap Debian 12 (bookworm, minbase) from $mirror"
  debootstrap --variant=minbase bookworm "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { tail -20 "$work/debootstrap.log" >&2; exit 1; }
  rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
  say "podman import as $base"
  tar -C "$work/rootfs" -c . | "${podman[@]}" import - "$base" >/dev/null
  rm -rf "$work/rootfs"
fi

say "podman build (docker/Dockerfile, --pull=never: the base is the local one)"
"${podman[@]}" build --pull=never --network host "${limits[@]}" -f "$root/docker/Dockerfile" \
  -t "$image" "$root" >"$work/build.log" 2>&1 || { tail -40 "$work/build.log" >&2; exit 1; }
# Untagged images of earlier builds (this build's layers stay: the next build reuses them).
"${podman[@]}" image prune -f --filter label=org.clonefs.image \
  --filter "until=$(($(date +%s) - start + 1))s" >/dev/null

# The data directory, a shared mount, so the FUSE mount made in the container shows on the host.
mkdir -p "$data"
mount --bind "$data" "$data"
bound=1
mount --make-shared "$data"
head -c $((64 << 20)) /dev/urandom >"$data/source.img"
run=("${podman[@]}" run "${limits[@]}" --network host --device /dev/fuse --cap-add SYS_ADMIN
     --security-opt apparmor=unconfined -v "$data:/data:rshared")

say "clonefs create in a container"
"${run[@]}" --rm "$image" create --source /data/source.img --dest /data/dest.img \
  --metadata /data/clone.clonefs

say "clonefs mount --foreground as the main process of container $container"
"${run[@]}" -d --name "$container" "$image" mount --foreground --metadata /data/clone.clonefs \
  /data/image >/dev/null
for _ in $(seq 100); do
  mountpoint -q "$data/image" && [ "$(stat -c %s "$data/image")" = $((64 << 20)) ] && break
  sleep 0.1
done
mountpoint -q "$data/image" || { "${podman[@]}" logs "$container" >&2; echo "not mounted" >&2; exit 1; }

say "cmp source and image from the host"
cmp "$data/source.img" "$data/image"
"${podman[@]}" exec "$container" clonefs status /data/image
"${podman[@]}" exec "$container" clonefs hydrate /data/image --wait >/dev/null

say "podman stop (SIGTERM: unmount and final commit)"
"${podman[@]}" stop -t 60 "$container" >/dev/null
code=$("${podman[@]}" inspect -f '{{.State.ExitCode}}' "$container")
[ "$code" = 0 ] || { "${podman[@]}" logs "$container" >&2; echo "daemon exited $code" >&2; exit 1; }
mountpoint -q "$data/image" && { echo "still mounted after stop" >&2; exit 1; }
"${podman[@]}" rm "$container" >/dev/null

say "committed state, read on the host from the container's files"
"${run[@]}" --rm "$image" status --json /data/clone.clonefs >"$work/status.json"
grep -q '"complete": true' "$work/status.json" || { cat "$work/status.json" >&2; exit 1; }
cmp "$data/source.img" "$data/dest.img"
say "passed"
