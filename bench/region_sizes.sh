#!/usr/bin/env bash
# Region size sweep (issue #6 lever "region size"): for each size, on a fresh clone of the same
# random source, the costs that pull the default in opposite directions:
#   - the first NIOS 4 KiB random writes to a fresh clone, QD16, the same offsets for every size
#     (a write covering part of a never-copied region copies that region first)
#   - full hydration time (resume -> complete -> fsync committed)
#   - metadata bytes on disk and daemon RSS for a 1 TiB sparse source, and its mount time
#
#   bench/region_sizes.sh [--quick] [--no-build] [SIZES...]     (default sizes: 4K 16K 64K 256K 1M)
#
# Run as root after bench/run.sh has built build-bench (or without --no-build to build it).
set -Eeuo pipefail
export LC_ALL=C
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
lib=$root/bench/benchlib.py
quick=0 build=1 sizes=()
for a in "$@"; do
  case "$a" in --quick) quick=1 ;; --no-build) build=0 ;; *) sizes+=("$a") ;; esac
done
[ ${#sizes[@]} -gt 0 ] || sizes=(4K 16K 64K 256K 1M)
[ "$(id -u)" -eq 0 ] || { echo "run as root" >&2; exit 1; }
SRC_MIB=1024 NIOS=8192; [ $quick -eq 1 ] && { SRC_MIB=128; NIOS=1024; }
bdir=$root/build-bench
if [ $build -eq 1 ]; then
  cmake -S "$root" -B "$bdir" -DCLONEFS_BENCH=ON -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$bdir" -j2 --target clonefs >/dev/null
fi
CLONEFS=$bdir/cli/clonefs

work=$(mktemp -d /var/tmp/clonefs-regions.XXXXXX)
images=()
cleanup() {
  set +e
  local img
  for img in "${images[@]}"; do
    grep -qF " $img " /proc/mounts && { "$CLONEFS" unmount "$img" >/dev/null || fusermount3 -uz "$img"; }
  done
  rm -rf "$work"
}
trap cleanup EXIT
drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
now() { echo "$EPOCHREALTIME"; }

head -c $((SRC_MIB << 20)) /dev/urandom > "$work/source.img"
truncate -s 1T "$work/tera.img"
chmod a-w "$work/source.img" "$work/tera.img"

printf '| region | first %d 4K randwrites QD16 on a fresh clone (IOPS) | amplification (bytes copied ÷ bytes written) | hydrate %d MiB (s) | 1 TiB: regions | 1 TiB: metadata on disk | 1 TiB: mount (s) | 1 TiB: daemon RSS (MiB) |\n|--:|--:|--:|--:|--:|--:|--:|--:|\n' "$NIOS" "$SRC_MIB"
for size in "${sizes[@]}"; do
  d=$work/r$size; mkdir -p "$d"; img=$d/image; : > "$img"; images+=("$img")
  "$CLONEFS" create --source "$work/source.img" --dest "$d/dest" --metadata "$d/meta" --region-size "$size" >/dev/null
  "$CLONEFS" mount --metadata "$d/meta" "$img" --no-hydration >/dev/null
  drop
  j=$d/fio.json
  fio --output-format=json --output="$j" --name=w --filename="$img" --rw=randwrite --bs=4k \
    --ioengine=libaio --direct=1 --iodepth=16 --number_ios="$NIOS" --randrepeat=1 --norandommap >/dev/null
  iops=$(python3 "$lib" fio "$j" write iops)
  written=$(( $(python3 "$lib" fio "$j" write ios) * 4096 ))
  copied=$(python3 "$lib" status "$img" counters.bytes_copied)
  amp=$(python3 -c "print('%.1f' % ($copied / $written))")
  "$CLONEFS" unmount "$img" >/dev/null
  # hydration on a second, untouched clone of the same geometry
  rm -rf "$d"; mkdir -p "$d"; : > "$img"
  "$CLONEFS" create --source "$work/source.img" --dest "$d/dest" --metadata "$d/meta" --region-size "$size" >/dev/null
  "$CLONEFS" mount --metadata "$d/meta" "$img" --no-hydration >/dev/null
  drop
  hyd=$(python3 "$lib" hydrate "$CLONEFS" "$img")
  "$CLONEFS" unmount "$img" >/dev/null
  rm -rf "$d"; mkdir -p "$d"; : > "$img"
  "$CLONEFS" create --source "$work/tera.img" --dest "$d/dest" --metadata "$d/meta" --region-size "$size" >/dev/null
  # First mount hydrates the holes (marks them valid); unmount commits; the remount is measured.
  "$CLONEFS" mount --metadata "$d/meta" "$img" >/dev/null
  sleep 3
  "$CLONEFS" unmount "$img" >/dev/null
  drop
  t0=$(now); "$CLONEFS" mount --metadata "$d/meta" "$img" --no-hydration >/dev/null; t1=$(now)
  pid=$(python3 "$lib" status "$img" pid)
  regions=$(python3 "$lib" status "$img" regions_total)
  rss=$(awk '$1=="VmRSS:"{printf "%.1f", $2/1024}' "/proc/$pid/status")
  "$CLONEFS" unmount "$img" >/dev/null
  meta_kib=$(du -ck "$d"/meta* | tail -1 | cut -f1)
  printf '| %s | %.0f | %s | %s | %s | %s KiB | %s | %s |\n' "$size" "$iops" "$amp" "$hyd" "$regions" \
    "$meta_kib" "$(python3 "$lib" sub "$t0" "$t1")" "$rss"
  rm -rf "$d"
done
