#!/usr/bin/env bash
# The benchmark's peer: qemu-storage-daemon serving a lazy clone of SOURCE as one writable FUSE
# file, built as a QEMU user would build it — a qcow2 overlay over the raw source, optionally a
# copy-on-read filter on top, exported over FUSE.
#
#   bench/peer_qsd.sh start SOURCE WORKDIR [cor|nocor]   prints the exported image's path
#   bench/peer_qsd.sh start-nbd SOCKET WORKDIR             the same over an NBD source (the
#                                                         server on unix SOCKET), copy-on-read
#   bench/peer_qsd.sh stop WORKDIR                        stops the daemon it started there
#
# Full hydration of the peer is a sequential read of its copy-on-read export: QEMU 7.2 refuses a
# block-stream job under a writable FUSE export (a conflict on the 'resize' permission).
# Needs qemu-utils and qemu-system-common (Debian); run as root.
set -euo pipefail
action=${1:-}
shift || true
case "$action" in
start)
  source=$(readlink -f "${1:?usage: start SOURCE WORKDIR [cor|nocor]}")
  workdir=${2:?usage: start SOURCE WORKDIR [cor|nocor]}
  mode=${3:-cor}
  mkdir -p "$workdir"
  workdir=$(readlink -f "$workdir")
  rm -f "$workdir/overlay.qcow2"
  : > "$workdir/image"   # the FUSE export's mount point must be an existing file
  qemu-img create -q -f qcow2 -b "$source" -F raw "$workdir/overlay.qcow2"
  node=overlay
  filter=()
  if [ "$mode" = cor ]; then
    filter=(--blockdev "driver=copy-on-read,node-name=cor,file=overlay")
    node=cor
  fi
  qemu-storage-daemon \
    --blockdev "driver=file,node-name=file,filename=$workdir/overlay.qcow2" \
    --blockdev "driver=qcow2,node-name=overlay,file=file" "${filter[@]}" \
    --export "type=fuse,id=export,node-name=$node,mountpoint=$workdir/image,writable=on" \
    --pidfile "$workdir/qsd.pid" --daemonize
  echo "$workdir/image"
  ;;
start-nbd)
  socket=$(readlink -f "${1:?usage: start-nbd SOCKET WORKDIR}")
  workdir=${2:?usage: start-nbd SOCKET WORKDIR}
  mkdir -p "$workdir"
  workdir=$(readlink -f "$workdir")
  rm -f "$workdir/overlay.qcow2"
  : > "$workdir/image"
  qemu-img create -q -f qcow2 -b "nbd+unix:///?socket=$socket" -F raw "$workdir/overlay.qcow2"
  qemu-storage-daemon \
    --blockdev "driver=nbd,node-name=source,server.type=unix,server.path=$socket,read-only=on" \
    --blockdev "driver=file,node-name=file,filename=$workdir/overlay.qcow2" \
    --blockdev "driver=qcow2,node-name=overlay,file=file,backing=source" \
    --blockdev "driver=copy-on-read,node-name=cor,file=overlay" \
    --export "type=fuse,id=export,node-name=cor,mountpoint=$workdir/image,writable=on" \
    --pidfile "$workdir/qsd.pid" --daemonize
  echo "$workdir/image"
  ;;
stop)
  workdir=$(readlink -f "${1:?usage: stop WORKDIR}")
  [ -f "$workdir/qsd.pid" ] || exit 0
  pid=$(cat "$workdir/qsd.pid")
  kill "$pid" 2>/dev/null || exit 0
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  ;;
*)
  echo "usage: bench/peer_qsd.sh start SOURCE WORKDIR [cor|nocor] | start-nbd SOCKET WORKDIR | stop WORKDIR" >&2
  exit 2
  ;;
esac
