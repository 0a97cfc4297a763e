"""One record per workload: the figures it measured (None: not measured). The report reads them
by attribute, so a misspelt figure is an AttributeError, not an empty cell."""
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from .strace import SyscallCost

F = Optional[float]


@dataclass
class CloneUntouched:          # clonefs, never touched, copy-on-read off: 1, 3, 4a
    seq1: F = None             # MB/s, first cold read
    seq2: F = None             # MB/s, second cold read
    rr1: F = None              # IOPS
    rr16: F = None
    w: F = None                # IOPS, one write per fresh region


@dataclass
class CloneFsyncUntouched:     # 5a
    f: F = None


@dataclass
class FsyncProfile:            # 5a under strace -T on the daemon
    iops: F = None
    ops: Optional[int] = None
    costs: List[SyscallCost] = field(default_factory=list)


@dataclass
class CloneCor:                # 1d, 1e
    seq1: F = None
    seq2: F = None


@dataclass
class PeerUntouched:           # 1, 3, 4a, 5a on the peer
    seq1: F = None             # cor
    seq2: F = None
    nc_seq1: F = None          # nocor
    nc_seq2: F = None
    rr1: F = None
    rr16: F = None
    w: F = None
    f: F = None


@dataclass
class Raw:                     # the raw file: 1, 2, 3, 4, 5, 6a and the ceilings
    cp_s: F = None
    cp_nosync_s: F = None
    cp_du: F = None            # MiB
    seq: F = None              # buffered, cold
    seq_direct: F = None
    disk_seq: F = None         # 4 MiB O_DIRECT x 8 in flight: the disk's ceiling
    seq_warm: F = None
    rr1: F = None
    rr16: F = None
    wfresh: F = None
    w: F = None
    ffresh: F = None
    ffresh_holes: F = None
    commit_floor: F = None
    f: F = None


@dataclass
class HydratedIO:              # 2, 3, 4b, 5b on a fully hydrated image
    hseq_cold: F = None
    hseq_warm: F = None
    hseq_buf: F = None
    hrr1: F = None
    hrr16: F = None
    hw: F = None
    hf: F = None


@dataclass
class CloneHydrated:           # 6a then hydrated I/O; the passthrough over the same destination
    hyd_s: F = None
    hyd_du: F = None
    cf: HydratedIO = field(default_factory=HydratedIO)   # IMAGE open since before completion
    reo: HydratedIO = field(default_factory=HydratedIO)  # reopened: kernel passthrough
    pt: HydratedIO = field(default_factory=HydratedIO)
    pts_hseq_cold: F = None    # passthrough --splice-write
    pts_hseq_warm: F = None
    ptsr_hw: F = None          # passthrough --splice-read


@dataclass
class PeerHydrated:
    hyd_s: F = None
    hyd_du: F = None
    io: HydratedIO = field(default_factory=HydratedIO)


@dataclass
class HydrationKnobs:          # 6g: seconds by (threshold, batch)
    seconds: Dict[Tuple[int, int], float] = field(default_factory=dict)


@dataclass
class SparseHydration:         # 6c, 6d, 6f
    cf_s: F = None
    cf_du: F = None
    cp_s: F = None
    cp_nosync_s: F = None
    cp_du: F = None
    src_du: F = None
    peer_s: F = None
    peer_du: F = None


@dataclass
class Untar:                   # 7, seconds
    cf: F = None
    peer: F = None
    raw: F = None


@dataclass
class Tera:                    # 8
    create: F = None
    mount: F = None
    rss: F = None
    rss_later: F = None
    hwm: F = None
    remount: F = None
    peer_mount: F = None
    peer_rss: F = None
    peer_rss_later: F = None
    peer_hwm: F = None
    peer_remount: F = None


@dataclass
class Latency:                 # issue #4
    p50_paused: F = None
    p99_paused: F = None
    iops_paused: F = None
    p50_run: F = None
    p99_run: F = None
    iops_run: F = None
    hyd_rate: F = None         # MB/s


@dataclass
class OrderVariant:            # issue 13: one way of hydrating, the replay on it
    replay_s: F = None         # seconds, median
    dest_share: F = None       # share of the replayed bytes served from the destination, median
    full_s: F = None           # seconds from mount to every region valid, median (a, b, c)


@dataclass
class HydrationOrder:          # issue 13: replay of scattered whole-file reads 1 s after mount
    address: OrderVariant = field(default_factory=OrderVariant)    # --no-priority
    priority: OrderVariant = field(default_factory=OrderVariant)   # on-demand priority (default)
    profile: OrderVariant = field(default_factory=OrderVariant)    # --profile of a recorded run
    hydrated: OrderVariant = field(default_factory=OrderVariant)   # fully hydrated: the floor
    # The same clone replayed again at once: its destination in the page cache, as the regions
    # (b) and (c) hydrate during their replay are.
    hydrated_warm: OrderVariant = field(default_factory=OrderVariant)
    # The same reads with THINK_MS between two reads of a file (a reader that computes):
    address_think: OrderVariant = field(default_factory=OrderVariant)
    priority_think: OrderVariant = field(default_factory=OrderVariant)
    # (b) and (c) with no rate limit: how much of what they miss the rate limit costs.
    priority_unlimited: OrderVariant = field(default_factory=OrderVariant)
    profile_unlimited: OrderVariant = field(default_factory=OrderVariant)
    replay_mib: F = None
    rate_mib_s: F = None


@dataclass
class Nbd:                     # 10, issue #12: (delay ms, workload, implementation) -> figure
    figures: Dict[Tuple[int, str, str], float] = field(default_factory=dict)
    sweep: Dict[Tuple[int, str], float] = field(default_factory=dict)


@dataclass
class KernelCopy:              # 10: hydration copied by the kernel (issue 14), seconds
    xfs_reflink_s: F = None    # the random source on XFS: clonefs sharing extents
    xfs_rw_s: F = None         # clonefs --copy-method read-write on the same XFS
    xfs_cp_s: F = None         # cp --reflink=always + sync
    big_gib: F = None          # the big source: copies of the random one, by reflink
    xfs_big_reflink_s: F = None
    xfs_big_rw_s: F = None     # once
    xfs_big_cp_s: F = None
    xfs_big_space_mib: F = None  # XFS space used by a clonefs hydration of the big source
    ext4_cfr_s: F = None       # the random source on ext4: copy_file_range
    ext4_rw_s: F = None
    ext4_cp_s: F = None        # cp + sync


@dataclass
class LoopSuite:               # 13, issue 17: (workload, mode, state, implementation) -> figures
    samples: Dict[Tuple[str, str, str, str], List[float]] = field(default_factory=dict)


@dataclass
class LoopProfile:             # 13 under strace -T on the daemon
    read: List[SyscallCost] = field(default_factory=list)    # per MiB read, hydrated
    untar: List[SyscallCost] = field(default_factory=list)   # per file, fresh


@dataclass
class Fleet:                   # 14, issue 28: (delay ms, clones, metric, implementation) -> figure
    figures: Dict[Tuple[int, int, str, str], float] = field(default_factory=dict)
    unavailable: Dict[str, str] = field(default_factory=dict)  # implementation -> why not
    golden_mib: F = None       # the golden image's size
    files_mib: F = None        # what its files use


@dataclass
class Results:
    cf_untouched: CloneUntouched = field(default_factory=CloneUntouched)
    cf_fsync: CloneFsyncUntouched = field(default_factory=CloneFsyncUntouched)
    fsync_profile: FsyncProfile = field(default_factory=FsyncProfile)
    cf_cor: CloneCor = field(default_factory=CloneCor)
    peer_untouched: PeerUntouched = field(default_factory=PeerUntouched)
    raw: Raw = field(default_factory=Raw)
    cf_hydrated: CloneHydrated = field(default_factory=CloneHydrated)
    peer_hydrated: PeerHydrated = field(default_factory=PeerHydrated)
    knobs: HydrationKnobs = field(default_factory=HydrationKnobs)
    sparse: SparseHydration = field(default_factory=SparseHydration)
    untar: Untar = field(default_factory=Untar)
    tera: Tera = field(default_factory=Tera)
    latency: Latency = field(default_factory=Latency)
    order: HydrationOrder = field(default_factory=HydrationOrder)
    nbd: Nbd = field(default_factory=Nbd)
    kernel_copy: KernelCopy = field(default_factory=KernelCopy)
    loop: LoopSuite = field(default_factory=LoopSuite)
    loop_profile: LoopProfile = field(default_factory=LoopProfile)
    fleet: Fleet = field(default_factory=Fleet)


@dataclass(frozen=True)
class Row:
    """One row of the report's table: a workload's figures side by side. Built from the records
    (report.build_rows; loop.rows and nbd.rows for their own workloads), read by the report."""
    key: str
    name: str
    unit: str
    better: str          # "hi" or "lo"
    clonefs: F = None
    peer: F = None
    raw: F = None
    pt: F = None         # passthrough
    note: str = ""
