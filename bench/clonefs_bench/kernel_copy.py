"""Workload 10 (issue 14): full hydration where the kernel copies — XFS sharing the source's
extents (reflink) and ext4's copy_file_range — against clonefs's read+write path on the same
file system and cp. Each file system is made on a sparse file in the work directory, through a
loop device, for the length of a `with` block."""
import os
import shutil
import subprocess
import time
from statistics import median_low
from typing import Callable, Dict, List

from . import records as R
from .clonefs import Clone
from .config import GIB
from .proc import RunLog, drop_caches, log


class FsOnLoop:
    """losetup + mkfs + mount of BACKING (a sparse file of SIZE) at MNT; umount, losetup -d and
    the backing file removed on leaving, whatever happened inside (umount -l if busy)."""

    MKFS = {"xfs": ["mkfs.xfs", "-q", "-f"], "ext4": ["mkfs.ext4", "-q", "-F"]}

    def __init__(self, kind: str, backing: str, size: int, mnt: str, runlog: RunLog):
        self.kind, self.backing, self.size, self.mnt, self.runlog = kind, backing, size, mnt, runlog
        self.loop = None
        self.is_mounted = False

    def __enter__(self) -> "FsOnLoop":
        try:
            with open(self.backing, "wb") as f:
                f.truncate(self.size)
            self.loop = self.runlog.run(["losetup", "-f", "--show", self.backing],
                                        capture=True).stdout.strip()
            self.runlog.run(self.MKFS[self.kind] + [self.loop])
            os.makedirs(self.mnt, exist_ok=True)
            self.runlog.run(["mount", self.loop, self.mnt])
            self.is_mounted = True
        except BaseException as e:
            self.__exit__(type(e), e, None)
            raise
        return self

    def path(self, name: str) -> str:
        return os.path.join(self.mnt, name)

    def used_mib(self) -> float:
        os.sync()
        st = os.statvfs(self.mnt)
        return (st.f_blocks - st.f_bfree) * st.f_frsize / (1 << 20)

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if self.is_mounted:
                if self.runlog.run(["umount", self.mnt], check=False).returncode != 0:
                    self.runlog.run(["umount", "-l", self.mnt], check=False)
                self.is_mounted = False
            if self.loop:
                self.runlog.run(["losetup", "-d", self.loop], check=False)
                self.loop = None
        finally:
            shutil.rmtree(self.mnt, ignore_errors=True)
            if os.path.exists(self.backing):
                os.unlink(self.backing)


def clonefs_hydration(ctx, source: str, d: str, method: str) -> float:
    """Seconds from resume to complete + fsync for a fresh clone of SOURCE in D (on the file
    system under test), `--copy-method METHOD`, cold; counters to the notes."""
    with Clone(ctx.clonefs, source, d) as c:
        c.create()
        c.mount("--no-hydration", "--copy-method", method)
        drop_caches()
        seconds = ctx.clonefs.hydrate(c.image)
        st = c.status()
        log("%s %s: %.3f s, copy_method %s, counters %s" % (
            os.path.basename(d), method, seconds, st["hydration"]["copy_method"], st["counters"]))
        if method != "read-write" and st["hydration"]["copy_method"] != method:
            raise RuntimeError("asked %s, clonefs used %s" % (method, st["hydration"]["copy_method"]))
    return seconds


def cp_timed(source: str, dest: str, *flags: str) -> float:
    """cp FLAGS SOURCE DEST + sync, cold; DEST removed after."""
    drop_caches()
    t0 = time.monotonic()
    subprocess.run(["cp", *flags, source, dest], check=True)
    os.sync()
    seconds = time.monotonic() - t0
    os.unlink(dest)
    return seconds


def medians(rounds: int, runs: Dict[str, Callable[[], float]]) -> Dict[str, float]:
    """Each of RUNS once per round, interleaved (the machine's noise then falls on all alike);
    the median of each."""
    figs: Dict[str, List[float]] = {k: [] for k in runs}
    for _ in range(rounds):
        for k, fn in runs.items():
            figs[k].append(fn())
    return {k: median_low(v) for k, v in figs.items()}


def build_big_source(src: str, out: str, copies: int, runlog: RunLog) -> None:
    """COPIES x SRC in one file by reflink (no space, no time), a distinct 4 KiB stamp written into
    each copy so no two read alike: a big random source with real, shared data extents."""
    size = os.path.getsize(src)
    for k in range(copies):
        runlog.run(["xfs_io", "-f", "-c", "reflink %s 0 %d %d" % (src, k * size, size),
                    "-c", "pwrite -q -S 0x%02x %d 4096" % (k + 1, k * size + 12345 * 4096), out])
    os.sync()


def kernel_copy_hydration(ctx, r: R.KernelCopy) -> R.KernelCopy:
    s = ctx.sizes
    rounds = s.cold_repeats
    big_copies = 16 if s.src_mib >= 1024 else 2
    src_bytes = s.src_mib << 20
    with FsOnLoop("xfs", ctx.path("xfs.fs"), 2 * (big_copies + 4) * src_bytes + 4 * GIB,
                  ctx.path("xfs"), ctx.runlog) as xfs:
        src = xfs.path("source.img")
        shutil.copyfile(ctx.inputs.source, src)
        os.sync()
        m = medians(rounds, {
            "reflink": lambda: clonefs_hydration(ctx, src, xfs.path("cf"), "reflink"),
            "rw": lambda: clonefs_hydration(ctx, src, xfs.path("cf"), "read-write"),
            "cp": lambda: cp_timed(src, xfs.path("cp.img"), "--reflink=always"),
        })
        r.xfs_reflink_s, r.xfs_rw_s, r.xfs_cp_s = m["reflink"], m["rw"], m["cp"]
        big = xfs.path("big.img")
        build_big_source(src, big, big_copies, ctx.runlog)
        r.big_gib = os.path.getsize(big) / GIB
        used = xfs.used_mib()
        m = medians(rounds, {
            "reflink": lambda: clonefs_hydration(ctx, big, xfs.path("cf"), "reflink"),
            "cp": lambda: cp_timed(big, xfs.path("cp.img"), "--reflink=always"),
        })
        r.xfs_big_reflink_s, r.xfs_big_cp_s = m["reflink"], m["cp"]
        # One more, kept, for the space it takes.
        with Clone(ctx.clonefs, big, xfs.path("cf_space")) as c:
            c.create()
            c.mount("--no-hydration")
            ctx.clonefs.hydrate(c.image)
            r.xfs_big_space_mib = xfs.used_mib() - used
        # Read and written, the big one fills the disk for real: once.
        r.xfs_big_rw_s = clonefs_hydration(ctx, big, xfs.path("cf"), "read-write")
    with FsOnLoop("ext4", ctx.path("ext4.fs"), 4 * src_bytes + 2 * GIB, ctx.path("ext4"),
                  ctx.runlog) as ext4:
        src = ext4.path("source.img")
        shutil.copyfile(ctx.inputs.source, src)
        os.sync()
        m = medians(rounds, {
            "cfr": lambda: clonefs_hydration(ctx, src, ext4.path("cf"), "copy_file_range"),
            "rw": lambda: clonefs_hydration(ctx, src, ext4.path("cf"), "read-write"),
            "cp": lambda: cp_timed(src, ext4.path("cp.img")),
        })
        r.ext4_cfr_s, r.ext4_rw_s, r.ext4_cp_s = m["cfr"], m["rw"], m["cp"]
    return r
