"""clonefs side-by-side benchmark (issue #6): bench/run.py is the entry point.

Modules, one concern each:
  cli         command-line flags, dependency check, build, the run from start to report
  config      sizes and runtimes (full or --quick), the hydration knobs
  proc        logging, commands, processes, mounts, caches, RSS, du
  fio         fio jobs and the parsing of fio's JSON report
  strace      per-operation syscall costs from a `strace -f -y -T` log
  clonefs     the clonefs CLI, its status ioctl, a mounted clone as a context manager
  peers       qemu-storage-daemon (bench/peer_qsd.sh) and the passthrough FUSE file
  ext4loop    ext4 on a loop device, mounted
  inputs      the generated sources (random, sparse, 1 TiB, tar of small files)
  floor       the commit floor: write + fdatasync + SQLite WAL commit, no FUSE
  records     one dataclass per workload: the figures it measured
  workloads   one function per workload, filling its record
  runner      runs the workloads, each cleaned up whatever happens
  report      the markdown table and the targets, built from the records
  region_sizes  the region-size sweep (bench/region_sizes.py)
  loop        workload 13: filesystems on a loop device over each image (issue 17)
"""
