#!/usr/bin/env bash
# Builds docker/Dockerfile with podman and runs it for real, without a registry: the Debian 12
# base image is made here by debootstrap (from Debian's packages) and imported into podman's
# local storage as debian:12. Then, in containers of the built image, with /dev/fuse and
# CAP_SYS_ADMIN: create a clone of a random source, mount it (the daemon in the foreground as the
# container's main process), compare the image with the source from the host through the
# container's FUSE mount (`cmp`), check the status, and stop the container (SIGTERM: final
# commit); mount it again with `mount -t clonefs` (the package's helper) and umount; then check
# the committed state from the host.
#
# Needs root, podman, runc, debootstrap (scripts/install-deps.sh) and /dev/fuse; without them it
# exits 77 (ctest: skipped), or 1 in CI. Run by ctest as container_podman. The base image is
# kept in podman's storage between runs (CLONEFS_REBUILD_BASE=1 makes it again); debootstrap
# uses apt's bookworm mirror, or DEBIAN_MIRROR. Cleans up what it started, even on failure.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
base=localhost/debian:12
image=localhost/clonefs:test
container=clonefs-test-$$
# runc, cgroupfs: what works on a machine without systemd as PID 1 and inside CI's sandbox.
podman=(podman --runtime runc --cgroup-manager cgroupfs)
limits=(--ulimit nofile=20000:20000 --ulimit nproc=4096:4096)
start=$(date +%s)
say() { echo "== docker/test.sh [$(($(date +%s) - start)) s] $*"; }

# What the machine lacks: a failure in CI (CI=true), else exit 77, which ctest reports as skipped.
cannot() {
  echo "docker/test.sh: $*" >&2
  case ${CI:-} in "" | false | 0) exit 77 ;; *) exit 1 ;; esac
}
for tool in podman runc debootstrap; do
  command -v "$tool" >/dev/null || cannot "$tool is missing (scripts/install-deps.sh)"
done
[ "$(id -u)" -eq 0 ] || cannot "must run as root (debootstrap, FUSE in the container)"
[ -c /dev/fuse ] || cannot "/dev/fuse is missing"
# The Debian mirror this machine's apt uses for bookworm main (DEBIAN_MIRROR overrides it).
mirror=${DEBIAN_MIRROR:-$(apt-get indextargets --format '$(REPO_URI)' 'Identifier: Packages' \
  'Release: bookworm' 'Component: main' 2>/dev/null | head -1)}
[ -n "$mirror" ] || cannot "no Debian 12 (bookworm) main mirror in apt's sources; set DEBIAN_MIRROR"

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
# Untagged images of builds more than a day old: what a build today left is the cache the next
# one reuses (a fresh machine's run takes 10 minutes, a cached one seconds).
"${podman[@]}" image prune -f --filter label=org.clonefs.image --filter until=24h >/dev/null

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
if ! mountpoint -q "$data/image"; then
  "${podman[@]}" logs "$container" >&2
  echo "docker/test.sh: $data/image is not mounted" >&2
  exit 1
fi

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

say "mount -t clonefs (the packaged helper, /usr/sbin) and umount, in a container"
# The container ends when its shell does, killing what runs in it: wait for the daemon's final
# commit (the metadata no longer held) before leaving.
"${run[@]}" --rm --entrypoint sh "$image" -euc '
  mount -t clonefs -o no_hydration,log_file=/data/helper.log /data/clone.clonefs /data/image
  findmnt -n -o SOURCE,FSTYPE /data/image
  cmp /data/source.img /data/image
  umount /data/image
  for _ in $(seq 300); do
    clonefs status --json /data/clone.clonefs | grep -q "\"mounted\": false" && exit 0
    sleep 0.1
  done
  echo "the daemon did not finish after umount" >&2
  exit 1'
mountpoint -q "$data/image" && { echo "still mounted after umount" >&2; exit 1; }

say "committed state, read on the host from the container's files"
"${run[@]}" --rm "$image" status --json /data/clone.clonefs >"$work/status.json"
grep -q '"complete": true' "$work/status.json" || { cat "$work/status.json" >&2; exit 1; }
cmp "$data/source.img" "$data/dest.img"
say "passed"
