"""Sizes and runtimes of a run: the full run or --quick (a smoke run of a few minutes)."""
from dataclasses import dataclass
from typing import Tuple

MIB = 1 << 20
GIB = 1 << 30

# 4a spacing: qcow2's default cluster size, a multiple of clonefs's default region size, so every
# 4a write lands in a never-touched region (clonefs) and cluster (peer).
REGION = 65536

# Hydration threshold (regions in flight) / batch (contiguous regions per copy) pairs for row 6g;
# 64/16 is the default.
KNOBS = ((1, 1), (16, 16), (64, 1), (64, 16), (64, 64), (256, 16))
DEFAULT_KNOB = (64, 16)


@dataclass(frozen=True)
class Sizes:
    src_mib: int          # random source
    big_copies: int       # latency source = big_copies x the random source
    sparse_gib: int       # sparse source size ...
    sparse_data_mib: int  # ... holding this much data
    sparse_zero_mib: int  # ... and this much written zeros
    nfiles: int           # files in the untar tree
    lat_span: int         # bytes read by the latency workload (the image's last part)
    rt_rand: int          # runtimes, seconds
    rt_write: int
    rt_fsync: int
    rt_lat: int
    mount_repeats: int
    rss_wait: int
    cold_repeats: int     # cold reads that change nothing: median of this many
    order_mib: int        # source of the hydration-order rows (12)
    # Workload 13 (issue 17): an ext4 image used through a loop device (clonefs_bench/loop.py)
    loop_image_mib: int = 2560   # the source filesystem image (sparse)
    loop_big_mib: int = 768      # the file read, and the file written, sequentially (issue: 2 GiB)
    loop_tree_files: int = 5000  # the populated tree read whole (find + cat)
    loop_untar_files: int = 10000
    loop_git_files: int = 2000   # the local repository cloned
    loop_db_mib: int = 128       # the database-like fio file
    loop_db_s: int = 3           # its runtime
    loop_repeats: int = 3        # medians of this many, variants interleaved

    @property
    def src_bytes(self) -> int:
        return self.src_mib * MIB


FULL = Sizes(src_mib=1024, big_copies=6, sparse_gib=16, sparse_data_mib=1024, sparse_zero_mib=64,
             nfiles=20000, lat_span=1 << 30, rt_rand=10, rt_write=20, rt_fsync=10, rt_lat=10,
             mount_repeats=3, rss_wait=3, cold_repeats=3, order_mib=4096)
QUICK = Sizes(src_mib=128, big_copies=8, sparse_gib=1, sparse_data_mib=64, sparse_zero_mib=8,
              nfiles=2000, lat_span=256 << 20, rt_rand=1, rt_write=5, rt_fsync=1, rt_lat=2,
              mount_repeats=1, rss_wait=1, cold_repeats=1, order_mib=256, loop_image_mib=512,
              loop_big_mib=64, loop_tree_files=500, loop_untar_files=1000, loop_git_files=200,
              loop_db_mib=32, loop_db_s=1, loop_repeats=1)


@dataclass(frozen=True)
class FleetConfig:
    """Row 14 (issue 28): the golden's size, the delays added to every HTTP answer, the numbers
    of clones at once (bench/run.py --fleet-golden-gib, --fleet-delays, --fleet-clones)."""
    golden_gib: float = 1.0
    delays_ms: Tuple[int, ...] = (0, 1, 10)
    clones: Tuple[int, ...] = (1, 4, 8)


QUICK_FLEET = FleetConfig(delays_ms=(0, 10), clones=(1, 4))


def int_list(text: str) -> Tuple[int, ...]:
    """"0,1,10" -> (0, 1, 10): distinct non-negative integers, in the order given."""
    out = []
    for part in text.split(","):
        v = int(part.strip())
        if v < 0:
            raise ValueError("negative: %d" % v)
        if v not in out:
            out.append(v)
    if not out:
        raise ValueError("empty list")
    return tuple(out)


def sizes(quick: bool) -> Sizes:
    return QUICK if quick else FULL
