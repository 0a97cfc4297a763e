#!/usr/bin/env bash
# clonefs side-by-side benchmark (issue #6): every workload against clonefs, the peer
# (qemu-storage-daemon, bench/peer_qsd.sh), the raw file and, where it applies, the trivial
# passthrough FUSE file (build-bench/bench/clonefs_passthrough), in one run; prints a markdown
# table of MB/s, IOPS, seconds and the ratios clonefs ÷ peer / raw / passthrough, then the targets.
#
#   bench/run.sh [--quick] [--no-build] [--keep] [--out FILE] [--only WORD]
#
#   --quick     small sizes and short runtimes (smoke run, < 3 minutes)
#   --no-build  use the existing build-bench/ binaries
#   --keep      keep the work directory (/var/tmp/clonefs-bench.XXXXXX) for inspection
#   --out FILE  also write the final report to FILE
#   --only WORD run only the phases whose name contains WORD (e.g. "1 TiB", "hydrate 1 GiB")
#
# Run as root on Debian 12. Installs fio, qemu-utils, qemu-system-common, strace only if missing,
# builds build-bench (targets clonefs and clonefs_passthrough only), works in a fresh directory under
# /var/tmp (on disk, not tmpfs) and cleans up everything it started — clonefs mounts, passthrough
# processes, peer daemons, loop devices, ext4 mounts — on exit, failure or Ctrl-C.
#
# Conventions: MB/s is 10^6 bytes/s (fio bw_bytes). "cold" = `sync; echo 3 >
# /proc/sys/vm/drop_caches` just before. All I/O on the images (clonefs, peer, passthrough) is
# fio with direct=1 on the image file (the FUSE file accepts O_DIRECT and libaio); the daemons
# themselves read and write their backing files through the host page cache. The raw file is
# read/written with direct=1 as well (straight to disk), except "warm" rows (buffered, cached).
set -Eeuo pipefail
shopt -s inherit_errexit
export LC_ALL=C

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bench=$root/bench
peer_qsd=$root/bench/peer_qsd.sh
lib=$bench/benchlib.py

quick=0 build=1 keep=0 out="" only=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --no-build) build=0 ;;
    --keep) keep=1 ;;
    --out) out=${2:?--out FILE}; shift ;;
    --only) only=${2:?--only WORD}; shift ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
[ "$(id -u)" -eq 0 ] || { echo "run as root" >&2; exit 1; }

if [ $quick -eq 1 ]; then
  SRC_MIB=128; BIG_COPIES=8; SPARSE_GIB=1; SPARSE_DATA_MIB=64; SPARSE_ZERO_MIB=8
  NFILES=2000; LAT_SPAN=$((256 << 20)); RT_RAND=1; RT_WRITE=5; RT_FSYNC=1; RT_LAT=2; MOUNT_REPEATS=1; RSS_WAIT=1; COLD_REPEATS=1
else
  SRC_MIB=1024; BIG_COPIES=6; SPARSE_GIB=16; SPARSE_DATA_MIB=1024; SPARSE_ZERO_MIB=64
  NFILES=20000; LAT_SPAN=$((1 << 30)); RT_RAND=10; RT_WRITE=20; RT_FSYNC=10; RT_LAT=10; MOUNT_REPEATS=3; RSS_WAIT=3; COLD_REPEATS=3
fi
SRC_BYTES=$((SRC_MIB << 20))
REGION=65536          # 4a spacing: qcow2's default cluster size, a multiple of clonefs's default region size,
                      # so every 4a write lands in a never-touched region (clonefs) and cluster (peer)

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# ---------------------------------------------------------------------------------------------
# Dependencies and build
# ---------------------------------------------------------------------------------------------
missing=()
for p in fio qemu-utils qemu-system-common strace; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
for t in fio strace qemu-img qemu-storage-daemon losetup mkfs.ext4 fusermount3 python3; do
  command -v "$t" >/dev/null || { echo "missing $t" >&2; exit 1; }
done
[ -x "$peer_qsd" ] || [ -f "$peer_qsd" ] || { echo "missing $peer_qsd" >&2; exit 1; }

bdir=$root/build-bench
if [ $build -eq 1 ]; then
  log "building $bdir (clonefs, clonefs_passthrough)"
  blog=$(mktemp /var/tmp/clonefs-bench-build.XXXXXX.log)
  if ! { cmake -S "$root" -B "$bdir" -DCLONEFS_BENCH=ON -DCMAKE_BUILD_TYPE=Release &&
         cmake --build "$bdir" -j2 --target clonefs clonefs_passthrough; } >"$blog" 2>&1; then
    tail -40 "$blog" >&2; echo "build failed (log: $blog)" >&2; exit 1
  fi
  rm -f "$blog"
fi
CLONEFS=$bdir/cli/clonefs
PT=$bdir/bench/clonefs_passthrough
[ -x "$CLONEFS" ] && [ -x "$PT" ] || { echo "missing $CLONEFS or $PT" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------
# Work directory and the cleanup of everything started (registered in $work/resources)
# ---------------------------------------------------------------------------------------------
work=$(mktemp -d /var/tmp/clonefs-bench.XXXXXX)
res=$work/resources; : > "$res"
rows=$work/rows.tsv; : > "$rows"
notes=$work/notes.txt; : > "$notes"
runlog=$work/run.log

# PID alive and its command line mentions $2 (guards against PID reuse)
ours() { [ -n "$1" ] && [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' < "/proc/$1/cmdline" | grep -qF -- "$2"; }
mounted() { grep -qF " $1 " /proc/mounts; }
wait_gone() {  # PID TAG TIMEOUT_S
  local i
  for ((i = 0; i < $3 * 10; i++)); do ours "$1" "$2" || return 0; sleep 0.1; done
  return 1
}

cleaned=0
cleanup() {
  [ $cleaned -eq 1 ] && return 0
  cleaned=1
  set +e
  trap '' INT TERM
  release_all
  if [ $keep -eq 1 ]; then log "kept $work"; else rm -rf "$work"; fi
}

# Idempotent: releases whatever is still held; run after every phase and at exit.
release_all() {
  local kind a b
  # background processes first (fio, readers)
  while read -r kind a b; do
    [ "$kind" = pid ] && ours "$a" "$b" && { kill "$a"; wait_gone "$a" "$b" 5 || kill -9 "$a"; }
  done < "$res"
  while read -r kind a b; do
    [ "$kind" = mnt ] && mountpoint -q "$a" && { umount "$a" || umount -l "$a"; }
  done < "$res"
  while read -r kind a b; do
    [ "$kind" = loop ] && losetup "$a" 2>/dev/null | grep -qF "$b" && losetup -d "$a"
  done < "$res"
  while read -r kind a b; do
    if [ "$kind" = clonefs ] && mounted "$a"; then
      timeout 120 "$CLONEFS" unmount "$a" >/dev/null || fusermount3 -u "$a" || fusermount3 -uz "$a"
    fi
  done < "$res"
  while read -r kind a b; do   # cfpid IMAGE PID: the daemon must be gone once unmounted
    [ "$kind" = cfpid ] && ours "$b" "$a" && { wait_gone "$b" "$a" 30 || kill "$b"; wait_gone "$b" "$a" 5 || kill -9 "$b"; }
  done < "$res"
  while read -r kind a b; do   # pt MOUNTFILE PID
    if [ "$kind" = pt ]; then
      mounted "$a" && { fusermount3 -u "$a" || fusermount3 -uz "$a"; }
      ours "$b" "$a" && { wait_gone "$b" "$a" 10 || kill "$b"; wait_gone "$b" "$a" 5 || kill -9 "$b"; }
    fi
  done < "$res"
  while read -r kind a b; do   # peer DIR
    if [ "$kind" = peer ] && [ -f "$a/qsd.pid" ]; then
      local pid; pid=$(cat "$a/qsd.pid" 2>/dev/null)
      ours "$pid" "$a" && "$peer_qsd" stop "$a"
      rm -f "$a/qsd.pid"
      mounted "$a/image" && { fusermount3 -u "$a/image" || fusermount3 -uz "$a/image"; }
    fi
  done < "$res"
  return 0
}
trap cleanup EXIT
trap 'log "interrupted"; cleanup; exit 130' INT TERM

reg() { echo "$*" >> "$res"; }

# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------
drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
now() { echo "$EPOCHREALTIME"; }
sub() { python3 "$lib" sub "$1" "$2"; }
mib_du() { du -k "$1" | awk '{printf "%.1f", $1/1024}'; }
rss_mib() { awk -v k="${2:-VmRSS}:" '$1==k{printf "%.1f", $2/1024}' "/proc/$1/status"; }
note() { echo "- $*" >> "$notes"; log "note: $*"; }
# row KEY WORKLOAD UNIT hi|lo CLONEFS PEER RAW PASSTHROUGH [NOTE]
row() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "${5:-}" "${6:-}" "${7:-}" "${8:-}" "${9:-}" >> "$rows"; }
# The figures are also kept as variables V_<name> for rows assembled from several phases.
val() { local f="$work/val.$1"; [ -f "$f" ] && cat "$f" || true; }
setv() {
  if [ -z "$2" ]; then note "figure $1 not measured (see the errors above)"; return 0; fi
  echo "$2" > "$work/val.$1"
}

# fio_fig DDIR FIGURE fio-args...   runs fio, prints one figure (see benchlib.py fio)
fio_fig() {
  local ddir=$1 fig=$2; shift 2
  local j; j=$(mktemp "$work/fio.XXXXXX.json")
  if ! fio --output-format=json --output="$j" --name=job --fallocate=none --invalidate=0 "$@" >>"$runlog" 2>&1; then
    log "fio FAILED: $*"; tail -5 "$runlog" >&2; return 1
  fi
  python3 "$lib" fio "$j" "$ddir" "$fig"
  echo "$j" > "$work/fio.last"
}
fio_last() { python3 "$lib" fio "$(cat "$work/fio.last")" "$1" "$2"; }
seqread() {  # FILE [direct]   1 MiB sequential read of the whole file, MB/s
  fio_fig read bw --filename="$1" --rw=read --bs=1M --ioengine=psync --direct="${2:-1}" \
    --size="$(stat -c %s "$1")"
}
# The disk's ceiling for sequential reads: large O_DIRECT reads, 8 in flight, MB/s.
deepread() {
  fio_fig read bw --filename="$1" --rw=read --bs=4M --ioengine=libaio --direct=1 --iodepth=8 \
    --size="$(stat -c %s "$1")"
}
# cold_median FUNCTION FILE [ARGS]   median of COLD_REPEATS cold runs: this VM's disk varies 2-3x
# from one cold read to the next. Only for reads that change nothing (not CoR).
cold_median() {
  local i figs=()
  for ((i = 0; i < COLD_REPEATS; i++)); do drop; figs+=("$("$@")"); done
  printf '%s\n' "${figs[@]}" | sort -g | sed -n "$(((COLD_REPEATS + 1) / 2))p"
}
cold_seqread() { cold_median seqread "$@"; }  # FILE [direct]
randread() {  # FILE QD   4 KiB random read, IOPS
  fio_fig read iops --filename="$1" --rw=randread --bs=4k --ioengine=libaio --direct=1 \
    --iodepth="$2" --runtime="$RT_RAND" --time_based --size="$(stat -c %s "$1")"
}
randwrite() {  # FILE   4 KiB random write QD16 anywhere, IOPS
  fio_fig write iops --filename="$1" --rw=randwrite --bs=4k --ioengine=libaio --direct=1 \
    --iodepth=16 --runtime="$RT_WRITE" --time_based --size="$(stat -c %s "$1")"
}
randwrite_fresh() {  # FILE   one 4 KiB write per never-touched region (random order), QD16
  local log=$work/iolog.$RANDOM
  python3 "$lib" iolog "$1" "$(stat -c %s "$1")" "$REGION" write "$log"
  fio_fig write iops --read_iolog="$log" --replay_no_stall=1 --ioengine=libaio --direct=1 \
    --iodepth=16 --runtime="$RT_WRITE"
}
fsyncwrite() {  # FILE   4 KiB random write + fsync after every write, QD1
  fio_fig write iops --filename="$1" --rw=randwrite --bs=4k --ioengine=psync --direct=1 \
    --fsync=1 --runtime="$RT_FSYNC" --time_based --size="$(stat -c %s "$1")"
}
fsyncwrite_fresh() {  # FILE   write + fsync, one per never-touched region, QD1
  local log=$work/iolog.$RANDOM
  python3 "$lib" iolog "$1" "$(stat -c %s "$1")" "$REGION" fsync "$log"
  fio_fig write iops --read_iolog="$log" --replay_no_stall=1 --ioengine=psync --direct=1 \
    --runtime="$RT_FSYNC"
}

# cf_mount SOURCE NAME [mount flags...]   -> creates and mounts, prints the image path
cf_mount() {
  local src=$1 name=$2; shift 2
  local d=$work/$name; mkdir -p "$d"
  "$CLONEFS" create --source "$src" --dest "$d/dest" --metadata "$d/meta" >>"$runlog" 2>&1
  : > "$d/image"
  reg clonefs "$d/image"
  "$CLONEFS" mount --metadata "$d/meta" "$d/image" "$@" >>"$runlog" 2>&1
  reg cfpid "$d/image" "$(cf_status "$d/image" pid)"
  echo "$d/image"
}
cf_status() { python3 "$lib" status "$1" "$2"; }
cf_unmount() {
  local pid; pid=$(cf_status "$1" pid)
  "$CLONEFS" unmount "$1" >>"$runlog" 2>&1
  wait_gone "$pid" "$1" 30
}

# peer_start SOURCE NAME cor|nocor -> prints the exported image
peer_start() {
  local d=$work/$2
  reg peer "$d"
  "$peer_qsd" start "$1" "$d" "$3"
}
peer_stop() { "$peer_qsd" stop "$work/$1"; rm -f "$work/$1/qsd.pid"; }

# pt_start BACKING NAME [--splice-write] [--splice-read] -> prints the passthrough mount file
pt_start() {
  local mf=$work/$2; : > "$mf"
  "$PT" "$1" "$mf" "${@:3}" >>"$runlog" 2>&1 &
  local pid=$!
  reg pt "$mf" "$pid"
  local i
  for ((i = 0; i < 100; i++)); do mounted "$mf" && { echo "$mf"; return 0; }; sleep 0.1; done
  echo "passthrough did not mount $mf" >&2; return 1
}
pt_stop() {
  local pid; pid=$(awk -v m="$1" '$1=="pt" && $2==m {print $3}' "$res" | tail -1)
  fusermount3 -u "$1"
  wait_gone "$pid" "$1" 10
}

failed=()
phase() {  # phase NAME FUNCTION: runs in a subshell, so a failure skips only this phase
  local name=$1 fn=$2 t0; t0=$(now)
  case "$name" in *"$only"*) ;; *) return 0 ;; esac   # --only: phases whose name holds WORD
  log "=== $name"
  local rc
  set +e
  ( set -Eeuo pipefail; "$fn" )   # not in a condition: errexit must stay active inside
  rc=$?
  set -e
  if [ $rc -eq 0 ]; then
    log "=== $name done in $(sub "$t0" "$(now)") s"
  else
    [ $rc -eq 130 ] && exit 130
    tail -5 "$runlog" >&2
    failed+=("$name")
    note "phase '$name' FAILED (exit $rc); its rows are missing — see the log lines above"
  fi
  release_all
}

# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------
S=$work/source.img          # random source (1 GiB; 256 MiB with --quick)
R=$work/raw.img             # the raw copy (made by cp --sparse=always in phase hydrate1g)
BIG=$work/big.img           # larger untouched source for the latency-under-hydration figures
SP=$work/sparse.img         # 16 GiB sparse source (2 GiB with --quick)
T1=$work/tera.img           # 1 TiB sparse source
TAR=$work/tree.tar

inputs() {
  log "generating inputs in $work"
  head -c "$SRC_BYTES" /dev/urandom > "$S"
  : > "$BIG"; for ((i = 0; i < BIG_COPIES; i++)); do cat "$S" >> "$BIG"; done
  python3 "$lib" sparse "$S" "$SP" $((SPARSE_GIB << 30)) $((SPARSE_DATA_MIB << 20)) $((SPARSE_ZERO_MIB << 20))
  truncate -s 1T "$T1"
  mkdir "$work/tree"
  python3 "$lib" tree "$work/tree" "$NFILES"
  tar -C "$work/tree" -cf "$TAR" .
  rm -rf "$work/tree"
  chmod a-w "$S" "$BIG" "$SP" "$T1"
  sync
}

# ---------------------------------------------------------------------------------------------
# Phases
# ---------------------------------------------------------------------------------------------

# clonefs, never touched, copy-on-read off (the default): workloads 1, 3 (not hydrated), 4 (fresh)
p_cf_untouched() {
  local img; img=$(cf_mount "$S" cf_untouched --no-hydration)
  setv cf_seq1 "$(cold_seqread "$img")"
  setv cf_seq2 "$(cold_seqread "$img")"
  drop; setv cf_rr1 "$(randread "$img" 1)"
  drop; setv cf_rr16 "$(randread "$img" 16)"
  [ "$(cf_status "$img" regions_valid)" = 0 ] || note "clonefs untouched: reads made regions valid with copy-on-read off?"
  drop; setv cf_w "$(randwrite_fresh "$img")"
  note "4a clonefs: $(fio_last write ios) writes into fresh regions in the run; regions_valid now $(cf_status "$img" regions_valid)/$(cf_status "$img" regions_total)"
  cf_unmount "$img"; rm -rf "$work/cf_untouched"
}

p_cf_fsync_untouched() {
  local img; img=$(cf_mount "$S" cf_fsync --no-hydration)
  drop; setv cf_f "$(fsyncwrite_fresh "$img")"
  note "5a clonefs: $(fio_last write ios) write+fsync into fresh regions; counters $(cf_status "$img" counters | tr -d ' ')"
  cf_unmount "$img"; rm -rf "$work/cf_fsync"
}

# Where the time of 5a goes: the daemon's syscalls under strace -T during the same workload, per
# user write+fsync (strace slows every call, so the shares matter, not the IOPS).
p_fsync_profile() {
  local img pid st=$work/fsync.strace
  img=$(cf_mount "$S" cf_prof --no-hydration)
  pid=$(cf_status "$img" pid)
  strace -f -y -T -p "$pid" -o "$st" \
    -e trace=fdatasync,fsync,pwrite64,pread64,pwritev,preadv,fallocate 2>>"$runlog" &
  local sp=$!
  reg pid "$sp" strace
  sleep 1
  drop; local iops; iops=$(fsyncwrite_fresh "$img")
  kill -INT "$sp"; wait "$sp" || true
  note "5a profile (strace -T on the daemon, $(printf '%.0f' "$iops") IOPS under strace), per write+fsync: $(python3 "$lib" syscalls "$st" "$(fio_last write ios)" | paste -sd ';' | sed 's/;/; /g')"
  cf_unmount "$img"; rm -rf "$work/cf_prof" "$st"
}

p_cf_cor() {
  local img; img=$(cf_mount "$S" cf_cor --no-hydration --copy-on-read)
  drop; setv cfcor_seq1 "$(seqread "$img")"
  note "copy-on-read on: after one full read regions_valid $(cf_status "$img" regions_valid)/$(cf_status "$img" regions_total), counters $(cf_status "$img" counters | tr -d ' ')"
  drop; setv cfcor_seq2 "$(seqread "$img")"
  cf_unmount "$img"; rm -rf "$work/cf_cor"
}

p_peer_untouched() {
  local img
  img=$(peer_start "$S" peer_cor cor)
  drop; setv peer_seq1 "$(seqread "$img")"
  drop; setv peer_seq2 "$(seqread "$img")"
  peer_stop peer_cor; rm -rf "$work/peer_cor"
  img=$(peer_start "$S" peer_nocor nocor)
  setv peernc_seq1 "$(cold_seqread "$img")"
  setv peernc_seq2 "$(cold_seqread "$img")"
  peer_stop peer_nocor; rm -rf "$work/peer_nocor"
  # a fresh export for every random run: with cor each read hydrates its cluster
  img=$(peer_start "$S" peer_rr1 cor); drop; setv peer_rr1 "$(randread "$img" 1)"
  peer_stop peer_rr1; rm -rf "$work/peer_rr1"
  img=$(peer_start "$S" peer_rr16 cor); drop; setv peer_rr16 "$(randread "$img" 16)"
  peer_stop peer_rr16; rm -rf "$work/peer_rr16"
  img=$(peer_start "$S" peer_w cor); drop; setv peer_w "$(randwrite_fresh "$img")"
  note "4a peer: $(fio_last write ios) writes into fresh clusters in the run"
  peer_stop peer_w; rm -rf "$work/peer_w"
  img=$(peer_start "$S" peer_f cor); drop; setv peer_f "$(fsyncwrite_fresh "$img")"
  peer_stop peer_f; rm -rf "$work/peer_f"
}

# workload 6 (1 GiB) and then everything "hydrated" on the same clone; then the passthrough over
# the same DEST after unmount
# hydrated_io PREFIX FILE   workloads 2, 3 (hydrated), 4b, 5b on FILE; figures PREFIX_h*
hydrated_io() {
  local p=$1 f=$2
  setv "${p}_hseq_cold" "$(cold_seqread "$f")"
  setv "${p}_hseq_warm" "$(seqread "$f")"
  setv "${p}_hseq_buf" "$(cold_seqread "$f" 0)"
  drop; setv "${p}_hrr1" "$(randread "$f" 1)"
  drop; setv "${p}_hrr16" "$(randread "$f" 16)"
  drop; setv "${p}_hw" "$(randwrite "$f")"
  setv "${p}_hf" "$(fsyncwrite "$f")"
}

p_hydrated() {
  local img t0 t1 dest=$work/cf_hyd/dest
  img=$(cf_mount "$S" cf_hyd --no-hydration)
  drop; setv cf_hyd_s "$(python3 "$lib" hydrate "$CLONEFS" "$img")"
  setv cf_hyd_du "$(mib_du "$dest")"
  note "6a clonefs: counters after hydration $(cf_status "$img" counters | tr -d ' ')"
  hydrated_io cf "$img"
  note "5b clonefs: counters after the hydrated write runs $(cf_status "$img" counters | tr -d ' ')"
  cf_unmount "$img"
  local mf; mf=$(pt_start "$dest" pt_image)
  hydrated_io pt "$mf"
  pt_stop "$mf"
  # lever "splice": the same passthrough replying to reads by splice from DEST, then taking
  # write requests by splice into it
  mf=$(pt_start "$dest" pt_splice_write --splice-write)
  setv pts_hseq_cold "$(cold_seqread "$mf")"
  setv pts_hseq_warm "$(seqread "$mf")"
  pt_stop "$mf"
  mf=$(pt_start "$dest" pt_splice_read --splice-read)
  drop; setv ptsr_hw "$(randwrite "$mf")"
  pt_stop "$mf"
  rm -rf "$work/cf_hyd"
}

p_raw() {
  # the raw copy: cp --sparse=always of the source (workload 6 baseline)
  drop
  local t0 t1 t2; t0=$(now); cp --sparse=always "$S" "$R"; t1=$(now); sync; t2=$(now)
  setv cp_s "$(sub "$t0" "$t2")"; setv cp_nosync_s "$(sub "$t0" "$t1")"; setv cp_du "$(mib_du "$R")"
  setv raw_seq "$(cold_seqread "$S" 0)"
  setv raw_seq_direct "$(cold_seqread "$S" 1)"
  setv disk_seq "$(cold_median deepread "$S")"
  note "raw source seq read 1 MiB cold: buffered $(val raw_seq) MB/s (used in the table), O_DIRECT QD1 $(val raw_seq_direct) MB/s, O_DIRECT 4 MiB x 8 in flight $(val disk_seq) MB/s (the disk's ceiling, row 2d)"
  cat "$S" > /dev/null; setv raw_seq_warm "$(seqread "$S" 0)"
  drop; setv raw_rr1 "$(randread "$S" 1)"
  drop; setv raw_rr16 "$(randread "$S" 16)"
  drop; setv raw_wfresh "$(randwrite_fresh "$R")"
  setv raw_w "$(randwrite "$R")"
  setv raw_ffresh "$(fsyncwrite_fresh "$R")"
  # 5a's ceiling: a fresh clone's destination is sparse, so each first write into a region
  # allocates; the same writes into the holes of a sparse raw file cost one allocation + one
  # flush each, with no metadata of clonefs at all.
  local holes=$work/holes.img
  truncate -s "$(stat -c %s "$S")" "$holes"
  setv raw_ffresh_holes "$(fsyncwrite_fresh "$holes")"
  rm -f "$holes"
  # ... and what the contract adds to each: a metadata commit after the data flush (row 5d)
  truncate -s "$(stat -c %s "$S")" "$holes"
  setv commit_floor "$(python3 "$lib" commit-floor "$holes" "$(stat -c %s "$S")" "$REGION" "$RT_FSYNC" "$work/floor.db")"
  rm -f "$holes" "$work"/floor.db*
  setv raw_f "$(fsyncwrite "$R")"
}

p_peer_hydrated() {
  local img t0 t1; img=$(peer_start "$S" peer_hyd cor)
  drop; t0=$(now); dd if="$img" of=/dev/null bs=1M status=none; sync; t1=$(now)
  setv peer_hyd_s "$(sub "$t0" "$t1")"; setv peer_hyd_du "$(mib_du "$work/peer_hyd/overlay.qcow2")"
  hydrated_io peer "$img"
  peer_stop peer_hyd; rm -rf "$work/peer_hyd"
}

# Lever "async/parallel hydration I/O": full hydration of the same source for several
# threshold (regions in flight) / batch (contiguous regions per copy) pairs, 64/16 being the
# default; the hydrator copies min(8, threshold / batch) batches at once (one worker each).
KNOBS=("1 1" "16 16" "64 1" "64 16" "64 64" "256 16")
knob_hydrate() {  # THRESHOLD BATCH -> seconds for a full hydration from a fresh clone
  local img; img=$(cf_mount "$S" "cf_knob" --no-hydration)
  "$CLONEFS" hydrate "$img" --threshold "$1" --batch "$2" >>"$runlog" 2>&1
  drop
  python3 "$lib" hydrate "$CLONEFS" "$img"
  cf_unmount "$img"; rm -rf "$work/cf_knob"
}
p_hydration_knobs() {
  local k t b
  for k in "${KNOBS[@]}"; do
    read -r t b <<< "$k"
    setv "knob_${t}_$b" "$(cold_median knob_hydrate "$t" "$b")"
  done
}

p_sparse() {
  local img t0 t1 t2
  img=$(cf_mount "$SP" cf_sparse --no-hydration)
  drop; setv sp_cf_s "$(python3 "$lib" hydrate "$CLONEFS" "$img")"
  setv sp_cf_du "$(mib_du "$work/cf_sparse/dest")"
  note "6c clonefs: counters after hydration $(cf_status "$img" counters | tr -d ' ')"
  cf_unmount "$img"; rm -rf "$work/cf_sparse"
  drop; t0=$(now); cp --sparse=always "$SP" "$work/sparse.cp"; t1=$(now); sync; t2=$(now)
  setv sp_cp_s "$(sub "$t0" "$t2")"; setv sp_cp_nosync_s "$(sub "$t0" "$t1")"
  setv sp_cp_du "$(mib_du "$work/sparse.cp")"; rm -f "$work/sparse.cp"
  setv sp_src_du "$(mib_du "$SP")"
  img=$(peer_start "$SP" peer_sparse cor)
  drop; t0=$(now); dd if="$img" of=/dev/null bs=1M status=none; sync; t1=$(now)
  setv sp_peer_s "$(sub "$t0" "$t1")"; setv sp_peer_du "$(mib_du "$work/peer_sparse/overlay.qcow2")"
  peer_stop peer_sparse; rm -rf "$work/peer_sparse"
}

# workload 7: ext4 through a loop device, untar + sync
untar_on() {  # IMAGE NAME -> seconds
  local img=$1 mnt=$work/mnt.$2 loop t0 t1
  loop=$(losetup -f --show "$img"); reg loop "$loop" "$img"
  mkfs.ext4 -q -F -E nodiscard,lazy_itable_init=0,lazy_journal_init=0 "$loop" >>"$runlog" 2>&1
  mkdir -p "$mnt"; reg mnt "$mnt"; mount "$loop" "$mnt"
  drop; t0=$(now); tar -C "$mnt" -xf "$TAR"; sync; t1=$(now)
  umount "$mnt"; losetup -d "$loop"
  sub "$t0" "$t1"
}
p_untar() {
  local img
  img=$(cf_mount "$S" cf_tar --no-hydration)
  setv tar_cf "$(untar_on "$img" cf)"
  note "7 clonefs: counters after untar $(cf_status "$img" counters | tr -d ' '), regions_valid $(cf_status "$img" regions_valid)"
  cf_unmount "$img"; rm -rf "$work/cf_tar"
  img=$(peer_start "$S" peer_tar cor)
  setv tar_peer "$(untar_on "$img" peer)"
  peer_stop peer_tar; rm -rf "$work/peer_tar"
  [ -f "$R" ] || cp --sparse=always "$S" "$R"
  setv tar_raw "$(untar_on "$R" raw)"
}

# workload 8: 1 TiB sparse source, default region size
p_tera() {
  local d=$work/cf_tera t0 t1 img=$work/cf_tera/image pid times=()
  mkdir -p "$d"
  t0=$(now); "$CLONEFS" create --source "$T1" --dest "$d/dest" --metadata "$d/meta" >>"$runlog" 2>&1; t1=$(now)
  setv tera_create "$(sub "$t0" "$t1")"
  : > "$img"; reg clonefs "$img"
  drop; t0=$(now); "$CLONEFS" mount --metadata "$d/meta" "$img" >>"$runlog" 2>&1; t1=$(now)
  setv tera_mount "$(sub "$t0" "$t1")"
  pid=$(cf_status "$img" pid); reg cfpid "$img" "$pid"
  setv tera_rss "$(rss_mib "$pid")"
  sleep "$RSS_WAIT"
  setv tera_rss3 "$(rss_mib "$pid")"; setv tera_hwm "$(rss_mib "$pid" VmHWM)"
  local v3; v3="$(cf_status "$img" regions_valid)/$(cf_status "$img" regions_total)"
  cf_unmount "$img"
  note "8 clonefs 1 TiB: $RSS_WAIT s after mount regions_valid $v3; after unmount dest du $(mib_du "$d/dest") MiB, metadata files $(du -ck "$d"/meta* | tail -1 | cut -f1) KiB"
  for ((i = 0; i < MOUNT_REPEATS; i++)); do
    t0=$(now); "$CLONEFS" mount --metadata "$d/meta" "$img" --no-hydration >>"$runlog" 2>&1; t1=$(now)
    times+=("$(sub "$t0" "$t1")")
    pid=$(cf_status "$img" pid); reg cfpid "$img" "$pid"
    cf_unmount "$img"
  done
  setv tera_remount "$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}')"
  note "8 clonefs 1 TiB remounts (--no-hydration, metadata with the valid bits of the first mount): ${times[*]} s"
  # peer
  local pd=$work/peer_tera ptimes=()
  reg peer "$pd"
  drop; t0=$(now); "$peer_qsd" start "$T1" "$pd" cor >/dev/null; t1=$(now)
  setv tera_peer_mount "$(sub "$t0" "$t1")"
  pid=$(cat "$pd/qsd.pid"); setv tera_peer_rss "$(rss_mib "$pid")"
  sleep "$RSS_WAIT"; setv tera_peer_rss3 "$(rss_mib "$pid")"; setv tera_peer_hwm "$(rss_mib "$pid" VmHWM)"
  peer_stop peer_tera
  for ((i = 0; i < MOUNT_REPEATS; i++)); do
    t0=$(now); "$peer_qsd" start "$T1" "$pd" cor >/dev/null; t1=$(now)
    ptimes+=("$(sub "$t0" "$t1")")
    peer_stop peer_tera
  done
  setv tera_peer_remount "$(printf '%s\n' "${ptimes[@]}" | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}')"
  rm -rf "$d" "$pd"
}

# issue #4: user read latency with hydration paused vs running (larger untouched source)
p_latency() {
  local img v0 v1 t0 t1
  img=$(cf_mount "$BIG" cf_lat --no-hydration)
  # The reads stay in the image's last part, which ascending hydration does not reach within the
  # window: both windows read never-copied regions (fall-through), only the background differs.
  local lat_off=$(( $(stat -c %s "$img") - LAT_SPAN ))
  drop; fio_fig read p50 --filename="$img" --rw=randread --bs=4k --ioengine=libaio --direct=1 \
    --iodepth=1 --ramp_time=2 --runtime="$RT_LAT" --time_based --offset="$lat_off" --size="$LAT_SPAN" >/dev/null
  setv lat_p50_paused "$(fio_last read p50)"; setv lat_p99_paused "$(fio_last read p99)"
  setv lat_iops_paused "$(fio_last read iops)"
  drop
  "$CLONEFS" hydrate "$img" --resume >>"$runlog" 2>&1
  # Before fio's first read the hydrator runs at full speed: fio skips 2 s (--ramp_time, both
  # windows) so that burst's writeback is not counted, and the hydration rate is sampled from 1 s
  # into the measured window to 1 s before its end.
  fio_fig read p50 --filename="$img" --rw=randread --bs=4k --ioengine=libaio --direct=1 \
    --iodepth=1 --ramp_time=2 --runtime="$RT_LAT" --time_based --offset="$lat_off" --size="$LAT_SPAN" >/dev/null &
  local fp=$!
  sleep 3; v0=$(cf_status "$img" bytes_valid); t0=$(now)
  sleep $((RT_LAT > 2 ? RT_LAT - 2 : 0)); v1=$(cf_status "$img" bytes_valid); t1=$(now)
  wait "$fp"
  setv lat_p50_run "$(fio_last read p50)"; setv lat_p99_run "$(fio_last read p99)"
  setv lat_iops_run "$(fio_last read iops)"
  local rate; rate=$(python3 -c "print('%.1f' % (($v1 - $v0) / 1e6 / ($t1 - $t0)))")
  setv lat_hyd_rate "$rate"
  note "latency: hydration progressed $(( (v1 - v0) >> 20 )) MiB in $(sub "$t0" "$t1") s of the ${RT_LAT} s fio run ($rate MB/s), complete=$(cf_status "$img" complete) at its end; image $(( $(stat -c %s "$img") >> 20 )) MiB"
  [ $((v1 >> 20)) -lt $(( (lat_off) >> 20 )) ] || note "latency: WARNING hydration reached the read span during the 'running' window; the figure is partly hydrated reads"
  cf_unmount "$img"; rm -rf "$work/cf_lat"
}

# ---------------------------------------------------------------------------------------------
# Run
# ---------------------------------------------------------------------------------------------
started=$(now)
{
  echo "## clonefs benchmark $(date -u +%FT%TZ)$([ $quick -eq 1 ] && echo ' (--quick)')"
  echo
  echo "- machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(free -h | awk '/^Mem:/{print $2}') RAM, kernel $(uname -r)"
  echo "- disk: work dir $work on $(df --output=source "$work" | tail -1) ($(df -h --output=fstype,size,avail "$work" | tail -1 | tr -s ' '))"
  echo "- clonefs $(git -C "$root" rev-parse --short HEAD 2>/dev/null)$(git -C "$root" diff --quiet 2>/dev/null || echo ' + uncommitted changes'), $(fio --version), $(qemu-storage-daemon --version | head -1)"
  echo "- sizes: source $SRC_MIB MiB random; sparse ${SPARSE_GIB} GiB with $SPARSE_DATA_MIB MiB data + $SPARSE_ZERO_MIB MiB written zeros; latency source $((SRC_MIB * BIG_COPIES)) MiB; untar $NFILES files of 1-16 KiB; runtimes randread ${RT_RAND} s, randwrite ${RT_WRITE} s, fsync ${RT_FSYNC} s, latency ${RT_LAT} s; cold sequential reads that change nothing: median of $COLD_REPEATS"
} > "$work/header.md"

inputs
phase "clonefs untouched (1, 3, 4a)" p_cf_untouched
phase "clonefs untouched fsync (5a)" p_cf_fsync_untouched
phase "clonefs fsync profile (5a)" p_fsync_profile
phase "clonefs copy-on-read (1d, 1e)" p_cf_cor
phase "peer untouched (1, 3, 4a, 5a)" p_peer_untouched
phase "raw: cp + reads + writes (1, 2, 3, 4, 5, 6a)" p_raw
phase "clonefs hydrate 1 GiB + hydrated I/O, passthrough (2, 3, 4b, 5b, 6a)" p_hydrated
phase "peer hydrate + hydrated I/O (2, 3, 4b, 5b, 6a)" p_peer_hydrated
phase "hydration threshold/batch (6g)" p_hydration_knobs
phase "sparse source hydration (6c)" p_sparse
phase "ext4 untar through a loop device (7)" p_untar
phase "1 TiB mount time and RSS (8)" p_tera
phase "latency with hydration paused vs running (#4)" p_latency

# ---------------------------------------------------------------------------------------------
# Table
# ---------------------------------------------------------------------------------------------
v() { val "$1"; }
row 1a "Seq read 1 MiB, never touched (fall-through), cold; peer = cor" MB/s hi "$(v cf_seq1)" "$(v peer_seq1)" "$(v raw_seq)"
row 1b "  CoR off (default): first read, cold; peer = nocor" MB/s hi "$(v cf_seq1)" "$(v peernc_seq1)" "$(v raw_seq)"
row 1c "  CoR off: second read of the same range, cold; peer = nocor" MB/s hi "$(v cf_seq2)" "$(v peernc_seq2)" "$(v raw_seq)"
row 1d "  CoR on (--copy-on-read): first read, cold; peer = cor" MB/s hi "$(v cfcor_seq1)" "$(v peer_seq1)" "$(v raw_seq)"
row 1e "  CoR on: second read of the same range, cold; peer = cor" MB/s hi "$(v cfcor_seq2)" "$(v peer_seq2)" "$(v raw_seq)"
row 2a "Seq read 1 MiB, fully hydrated, cold" MB/s hi "$(v cf_hseq_cold)" "$(v peer_hseq_cold)" "$(v raw_seq)" "$(v pt_hseq_cold)"
row 2b "Seq read 1 MiB, fully hydrated, warm (raw: buffered, page cache)" MB/s hi "$(v cf_hseq_warm)" "$(v peer_hseq_warm)" "$(v raw_seq_warm)" "$(v pt_hseq_warm)"
row 2c "Seq read 1 MiB, fully hydrated, cold, buffered (no O_DIRECT: kernel readahead)" MB/s hi "$(v cf_hseq_buf)" "$(v peer_hseq_buf)" "$(v raw_seq)" "$(v pt_hseq_buf)"
row 2d "  ceiling: the disk — source file, 4 MiB O_DIRECT reads, 8 in flight, cold" MB/s hi "" "$(v peer_hseq_cold)" "$(v disk_seq)"
row 2e "  lever splice: passthrough replying by splice from the destination (SPLICE_WRITE), cold" MB/s hi "$(v cf_hseq_cold)" "" "" "$(v pts_hseq_cold)"
row 2f "  lever splice: the same, warm" MB/s hi "$(v cf_hseq_warm)" "" "" "$(v pts_hseq_warm)"
row 3a "4K randread QD1, never touched, cold (libaio direct)" IOPS hi "$(v cf_rr1)" "$(v peer_rr1)" "$(v raw_rr1)"
row 3b "4K randread QD16, never touched, cold (libaio direct)" IOPS hi "$(v cf_rr16)" "$(v peer_rr16)" "$(v raw_rr16)"
row 3c "4K randread QD1, hydrated, cold (libaio direct)" IOPS hi "$(v cf_hrr1)" "$(v peer_hrr1)" "$(v raw_rr1)" "$(v pt_hrr1)"
row 3d "4K randread QD16, hydrated, cold (libaio direct)" IOPS hi "$(v cf_hrr16)" "$(v peer_hrr16)" "$(v raw_rr16)" "$(v pt_hrr16)"
row 4a "4K randwrite QD16 into never-touched regions (1 write/region, random order)" IOPS hi "$(v cf_w)" "$(v peer_w)" "$(v raw_wfresh)"
row 4b "4K randwrite QD16 into hydrated regions" IOPS hi "$(v cf_hw)" "$(v peer_hw)" "$(v raw_w)" "$(v pt_hw)"
row 4c "  lever splice: passthrough taking writes by splice (SPLICE_READ + write_buf)" IOPS hi "$(v cf_hw)" "" "" "$(v ptsr_hw)"
row 5a "4K randwrite + fsync each, QD1, never-touched regions (commit path)" IOPS hi "$(v cf_f)" "$(v peer_f)" "$(v raw_ffresh)"
row 5b "4K randwrite + fsync each, QD1, hydrated regions" IOPS hi "$(v cf_hf)" "$(v peer_hf)" "$(v raw_f)" "$(v pt_hf)"
row 5c "  ceiling for 5a: the same writes + fsync into the holes of a sparse raw file" IOPS hi "" "$(v peer_f)" "$(v raw_ffresh_holes)"
row 5d "  ceiling for 5a under the contract: 5c + a one-row SQLite WAL commit after each flush (no FUSE, no source read)" IOPS hi "" "$(v peer_f)" "$(v commit_floor)"
row 6a "Full hydration, $SRC_MIB MiB random, cold (clonefs: resume→complete; peer: dd cor export + sync; raw: cp --sparse=always + sync)" s lo "$(v cf_hyd_s)" "$(v peer_hyd_s)" "$(v cp_s)"
row 6b "  destination du after full hydration" MiB lo "$(v cf_hyd_du)" "$(v peer_hyd_du)" "$(v cp_du)"
row 6c "Full hydration, ${SPARSE_GIB} GiB sparse (${SPARSE_DATA_MIB} MiB data), cold (same methods)" s lo "$(v sp_cf_s)" "$(v sp_peer_s)" "$(v sp_cp_s)"
row 6d "  destination du after full hydration (source du $(v sp_src_du) MiB)" MiB lo "$(v sp_cf_du)" "$(v sp_peer_du)" "$(v sp_cp_du)"
row 6e "  $SRC_MIB MiB: raw = cp --sparse=always without sync" s lo "$(v cf_hyd_s)" "" "$(v cp_nosync_s)"
row 6f "  ${SPARSE_GIB} GiB sparse: raw = cp --sparse=always without sync" s lo "$(v sp_cf_s)" "" "$(v sp_cp_nosync_s)"
for k in "${KNOBS[@]}"; do
  read -r t b <<< "$k"
  row "6g-$t-$b" "  full hydration $SRC_MIB MiB, cold, --threshold $t --batch $b$([ "$k" = "64 16" ] && echo ' (default)'), median of $COLD_REPEATS" s lo "$(v "knob_${t}_$b")" "" "$(v cp_s)"
done
row 7 "ext4 via loop: tar -x of $NFILES files (1-16 KiB) + sync (clonefs --no-hydration, peer cor)" s lo "$(v tar_cf)" "$(v tar_peer)" "$(v tar_raw)"
row 8a "1 TiB sparse source: mount (cold, hydration on) / peer-qsd start" s lo "$(v tera_mount)" "$(v tera_peer_mount)"
row 8b "1 TiB: remount / restart, median of $MOUNT_REPEATS" s lo "$(v tera_remount)" "$(v tera_peer_remount)"
row 8c "1 TiB: daemon VmRSS right after mount" MiB lo "$(v tera_rss)" "$(v tera_peer_rss)"
row 8d "1 TiB: daemon VmRSS $RSS_WAIT s later (clonefs hydrating holes)" MiB lo "$(v tera_rss3)" "$(v tera_peer_rss3)"
row 8e "1 TiB: daemon VmHWM (peak RSS) $RSS_WAIT s after mount" MiB lo "$(v tera_hwm)" "$(v tera_peer_hwm)"
row 8f "1 TiB: clonefs create" s lo "$(v tera_create)"
row 9a "Issue #4: 4K randread QD1 of never-copied regions, clat p50, hydration paused ($((SRC_MIB * BIG_COPIES)) MiB source)" µs lo "$(v lat_p50_paused)"
row 9b "Issue #4: same reads, clat p50, hydration running" µs lo "$(v lat_p50_run)"
row 9c "Issue #4: same reads, clat p99, hydration paused" µs lo "$(v lat_p99_paused)"
row 9d "Issue #4: same reads, clat p99, hydration running" µs lo "$(v lat_p99_run)"
row 9e "Issue #4: IOPS paused / running / hydration MB/s while running" IOPS hi "$(v lat_iops_paused)" "" "" "" "running: $(printf '%.0f' "$(v lat_iops_run)") IOPS, hydration $(v lat_hyd_rate) MB/s"

report=$work/report.md
{
  cat "$work/header.md"
  echo "- total run time $(sub "$started" "$(now)") s"
  echo
  python3 "$bench/report.py" "$rows"
  echo
  echo "Notes:"
  cat "$notes"
} > "$report"
cat "$report"
[ -n "$out" ] && cp "$report" "$out"
[ ${#failed[@]} -eq 0 ] || { log "failed phases: ${failed[*]}"; exit 1; }
