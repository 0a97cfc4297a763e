"""One function per workload: each fills and returns its record (records.py); the runner hands
it a fresh record so that figures measured before a failure still reach the table. Every mount,
daemon, loop device and directory a workload makes lives in a `with` block, so it is released
whatever happens (failure, Ctrl-C)."""
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from statistics import median_low
from typing import Callable, List, Tuple

from . import records as R
from .clonefs import (FUSE_PATH, PASSTHROUGH, Clone, Clonefs, MountedClone, compact,
                      open_kinds)
from .config import KNOBS, REGION, FleetConfig, Sizes
from .ext4loop import Ext4OnLoop
from .fio import Fio
from .fleet import fleet as fleet_rows
from .floor import commit_floor
from .inputs import Inputs
from .order import hydration_order
from .kernel_copy import kernel_copy_hydration
from .loop import loop_suite
from .loop_profile import loop_profile
from .peers import Passthrough, Peer, read_through
from .proc import RunLog, drop_caches, du_kib, du_mib, log, rss_mib
from .strace import syscall_costs, traced
from . import nbd as nbd_mod


@dataclass
class Context:
    work: str
    inputs: Inputs
    sizes: Sizes
    clonefs: Clonefs
    passthrough: str        # the passthrough FUSE binary
    fio: Fio
    runlog: RunLog
    notes: List[str] = field(default_factory=list)
    fleet: FleetConfig = field(default_factory=FleetConfig)

    def note(self, text: str) -> None:
        self.notes.append(text)
        log("note: " + text)

    def path(self, name: str) -> str:
        return os.path.join(self.work, name)

    def clone(self, source: str, name: str, *flags: str) -> MountedClone:
        return MountedClone(self.clonefs, source, self.path(name), *flags)

    def peer(self, source: str, name: str, mode: str) -> Peer:
        return Peer(source, self.path(name), mode, self.runlog)

    def pt(self, backing: str, name: str, *flags: str) -> Passthrough:
        return Passthrough(self.passthrough, backing, self.path(name), self.runlog, *flags)

    def cold_median(self, fn: Callable[..., float], *args) -> float:
        """Median of COLD_REPEATS cold runs (this VM's disk varies 2-3x from one cold read to
        the next). Only for reads that change nothing (not copy-on-read)."""
        figs = []
        for _ in range(self.sizes.cold_repeats):
            drop_caches()
            figs.append(fn(*args))
        return median_low(figs)


def timed(fn: Callable[[], object]) -> float:
    t0 = time.monotonic()
    fn()
    return time.monotonic() - t0


def counters(c: Clone) -> str:
    return compact(c.status()["counters"])


def cp_sparse(src: str, dst: str):
    """cp --sparse=always SRC DST + sync: (seconds with sync, seconds without)."""
    t0 = time.monotonic()
    subprocess.run(["cp", "--sparse=always", src, dst], check=True)
    t1 = time.monotonic()
    os.sync()
    return time.monotonic() - t0, t1 - t0


# ---------------------------------------------------------------------------------------------

def clonefs_untouched(ctx: Context, r: R.CloneUntouched) -> R.CloneUntouched:
    """clonefs, never touched, copy-on-read off (the default): 1, 3 (not hydrated), 4a."""
    f = ctx.fio
    with ctx.clone(ctx.inputs.source, "cf_untouched", "--no-hydration") as c:
        r.seq1 = ctx.cold_median(f.seqread, c.image)
        r.seq2 = ctx.cold_median(f.seqread, c.image)
        drop_caches(); r.rr1 = f.randread(c.image, 1)
        drop_caches(); r.rr16 = f.randread(c.image, 16)
        if c.status()["regions_valid"] != 0:
            ctx.note("clonefs untouched: reads made regions valid with copy-on-read off?")
        drop_caches(); w = f.randwrite_fresh(c.image)
        r.w = w.write.iops
        s = c.status()
        ctx.note("4a clonefs: %d writes into fresh regions in the run; regions_valid now %s/%s"
                 % (w.write.ios, s["regions_valid"], s["regions_total"]))
    return r


def clonefs_fsync_untouched(ctx: Context, r: R.CloneFsyncUntouched) -> R.CloneFsyncUntouched:
    with ctx.clone(ctx.inputs.source, "cf_fsync", "--no-hydration") as c:
        drop_caches(); w = ctx.fio.fsyncwrite_fresh(c.image)
        r.f = w.write.iops
        ctx.note("5a clonefs: %d write+fsync into fresh regions; counters %s"
                 % (w.write.ios, counters(c)))
    return r


def fsync_profile(ctx: Context, r: R.FsyncProfile) -> R.FsyncProfile:
    """Where the time of 5a goes: the daemon's syscalls under strace -T during the same workload,
    per user write+fsync (strace slows every call, so the shares matter, not the IOPS)."""
    st = ctx.path("fsync.strace")
    with ctx.clone(ctx.inputs.source, "cf_prof", "--no-hydration") as c:
        with traced(ctx.runlog, c.pid, st,
                    "trace=fdatasync,fsync,pwrite64,pread64,pwritev,preadv,fallocate"):
            drop_caches(); w = ctx.fio.fsyncwrite_fresh(c.image)
        r.iops, r.ops = w.write.iops, w.write.ios
        with open(st) as log_lines:
            r.costs = syscall_costs(log_lines, r.ops)
        os.unlink(st)
        ctx.note("5a profile (strace -T on the daemon, %.0f IOPS under strace), per write+fsync: %s"
                 % (r.iops, "; ".join(str(x) for x in r.costs)))
    return r


def clonefs_cor(ctx: Context, r: R.CloneCor) -> R.CloneCor:
    with ctx.clone(ctx.inputs.source, "cf_cor", "--no-hydration", "--copy-on-read") as c:
        drop_caches(); r.seq1 = ctx.fio.seqread(c.image)
        s = c.status()
        ctx.note("copy-on-read on: after one full read regions_valid %s/%s, counters %s"
                 % (s["regions_valid"], s["regions_total"], compact(s["counters"])))
        drop_caches(); r.seq2 = ctx.fio.seqread(c.image)
    return r


def peer_untouched(ctx: Context, r: R.PeerUntouched) -> R.PeerUntouched:
    f, src = ctx.fio, ctx.inputs.source
    with ctx.peer(src, "peer_cor", "cor") as p:
        drop_caches(); r.seq1 = f.seqread(p.image)
        drop_caches(); r.seq2 = f.seqread(p.image)
    with ctx.peer(src, "peer_nocor", "nocor") as p:
        r.nc_seq1 = ctx.cold_median(f.seqread, p.image)
        r.nc_seq2 = ctx.cold_median(f.seqread, p.image)
    # a fresh export for every random run: with cor each read hydrates its cluster
    with ctx.peer(src, "peer_rr1", "cor") as p:
        drop_caches(); r.rr1 = f.randread(p.image, 1)
    with ctx.peer(src, "peer_rr16", "cor") as p:
        drop_caches(); r.rr16 = f.randread(p.image, 16)
    with ctx.peer(src, "peer_w", "cor") as p:
        drop_caches(); w = f.randwrite_fresh(p.image)
        r.w = w.write.iops
        ctx.note("4a peer: %d writes into fresh clusters in the run" % w.write.ios)
    with ctx.peer(src, "peer_f", "cor") as p:
        drop_caches(); r.f = f.fsyncwrite_fresh(p.image).write.iops
    return r


def raw(ctx: Context, r: R.Raw) -> R.Raw:
    f, src, rawf = ctx.fio, ctx.inputs.source, ctx.inputs.raw
    # the raw copy: cp --sparse=always of the source (workload 6 baseline)
    drop_caches()
    r.cp_s, r.cp_nosync_s = cp_sparse(src, rawf)
    r.cp_du = du_mib(rawf)
    r.seq = ctx.cold_median(f.seqread, src, False)
    r.seq_direct = ctx.cold_median(f.seqread, src, True)
    r.disk_seq = ctx.cold_median(f.deepread, src)
    ctx.note("raw source seq read 1 MiB cold: buffered %.3f MB/s (used in the table), O_DIRECT QD1"
             " %.3f MB/s, O_DIRECT 4 MiB x 8 in flight %.3f MB/s (the disk's ceiling, row 2d)"
             % (r.seq, r.seq_direct, r.disk_seq))
    with open(src, "rb") as s, open(os.devnull, "wb") as null:  # warm the page cache
        shutil.copyfileobj(s, null, 4 << 20)
    r.seq_warm = f.seqread(src, False)
    drop_caches(); r.rr1 = f.randread(src, 1)
    drop_caches(); r.rr16 = f.randread(src, 16)
    drop_caches(); r.wfresh = f.randwrite_fresh(rawf).write.iops
    r.w = f.randwrite(rawf)
    r.ffresh = f.fsyncwrite_fresh(rawf).write.iops
    # 5a's ceiling: a fresh clone's destination is sparse, so each first write into a region
    # allocates; the same writes into the holes of a sparse raw file cost one allocation + one
    # flush each, with no metadata of clonefs at all.
    size = os.stat(src).st_size
    holes, db = ctx.path("holes.img"), ctx.path("floor.db")
    try:
        with open(holes, "wb") as h:
            h.truncate(size)
        r.ffresh_holes = f.fsyncwrite_fresh(holes).write.iops
        os.unlink(holes)
        # ... and what the contract adds to each: a metadata commit after the data flush (5d)
        with open(holes, "wb") as h:
            h.truncate(size)
        r.commit_floor = commit_floor(holes, size, REGION, ctx.sizes.rt_fsync, db)
    finally:
        for p in (holes, db, db + "-wal", db + "-shm"):
            if os.path.exists(p):
                os.unlink(p)
    r.f = f.fsyncwrite(rawf)
    return r


def hydrated_io(ctx: Context, image: str, r: R.HydratedIO) -> None:
    """Workloads 2, 3 (hydrated), 4b, 5b on IMAGE."""
    f = ctx.fio
    r.hseq_cold = ctx.cold_median(f.seqread, image)
    r.hseq_warm = f.seqread(image)
    r.hseq_buf = ctx.cold_median(f.seqread, image, False)
    drop_caches(); r.hrr1 = f.randread(image, 1)
    drop_caches(); r.hrr16 = f.randread(image, 16)
    drop_caches(); r.hw = f.randwrite(image)
    r.hf = f.fsyncwrite(image)


def clonefs_hydrated(ctx: Context, r: R.CloneHydrated) -> R.CloneHydrated:
    """Workload 6 (full hydration) and then everything "hydrated" on the same clone twice: with
    IMAGE held open since before completion (every open takes the FUSE path, as a VM running
    through hydration gets), then reopened (that open closed, every open a kernel passthrough
    one, as a job started after `clonefs hydrate --wait` gets); each checks in the status that
    its opens were of its kind. Then the passthrough over the same destination after unmount."""
    with Clone(ctx.clonefs, ctx.inputs.source, ctx.path("cf_hyd")) as c:
        c.create()
        c.mount("--no-hydration")
        with c.held_open():
            drop_caches(); r.hyd_s = ctx.clonefs.hydrate(c.image)
            r.hyd_du = du_mib(c.dest)
            ctx.note("6a clonefs: counters after hydration " + counters(c))
            hydrated_io(ctx, c.image, r.cf)
            st = c.expect_opens(FUSE_PATH, "2-5 clonefs hydrated")
            ctx.note("5b clonefs: counters after the hydrated write runs %s; %s"
                     % (compact(st["counters"]), open_kinds(st)))
        # Held open for the runs: every fio open is then a passthrough open too.
        c.await_passthrough("2-5 clonefs hydrated, reopened")
        with c.held_open():
            hydrated_io(ctx, c.image, r.reo)
            st = c.expect_opens(PASSTHROUGH, "2-5 clonefs hydrated, reopened")
            ctx.note("2-5 clonefs hydrated, reopened: counters after the runs %s; %s"
                     % (compact(st["counters"]), open_kinds(st)))
        c.unmount()
        with ctx.pt(c.dest, "pt_image") as pt:
            hydrated_io(ctx, pt.image, r.pt)
        # lever "splice": the same passthrough replying to reads by splice from DEST, then
        # taking write requests by splice into it
        with ctx.pt(c.dest, "pt_splice_write", "--splice-write") as pt:
            r.pts_hseq_cold = ctx.cold_median(ctx.fio.seqread, pt.image)
            r.pts_hseq_warm = ctx.fio.seqread(pt.image)
        with ctx.pt(c.dest, "pt_splice_read", "--splice-read") as pt:
            drop_caches(); r.ptsr_hw = ctx.fio.randwrite(pt.image)
    return r


def peer_hydrated(ctx: Context, r: R.PeerHydrated) -> R.PeerHydrated:
    with ctx.peer(ctx.inputs.source, "peer_hyd", "cor") as p:
        r.hyd_s = read_through(p.image)
        r.hyd_du = du_mib(p.overlay)
        hydrated_io(ctx, p.image, r.io)
    return r


def hydration_knobs(ctx: Context, r: R.HydrationKnobs) -> R.HydrationKnobs:
    """Lever "async/parallel hydration I/O": full hydration of the same source for several
    threshold / batch pairs; the hydrator copies min(8, threshold / batch) batches at once."""
    def knob_hydrate(threshold: int, batch: int) -> float:
        with ctx.clone(ctx.inputs.source, "cf_knob", "--no-hydration") as c:
            ctx.clonefs("hydrate", c.image, "--threshold", str(threshold), "--batch", str(batch))
            drop_caches()
            return ctx.clonefs.hydrate(c.image)

    for t, b in KNOBS:
        figs = [knob_hydrate(t, b) for _ in range(ctx.sizes.cold_repeats)]
        r.seconds[(t, b)] = median_low(figs)
    return r


def sparse_hydration(ctx: Context, r: R.SparseHydration) -> R.SparseHydration:
    sp = ctx.inputs.sparse
    with ctx.clone(sp, "cf_sparse", "--no-hydration") as c:
        drop_caches(); r.cf_s = ctx.clonefs.hydrate(c.image)
        r.cf_du = du_mib(c.dest)
        ctx.note("6c clonefs: counters after hydration " + counters(c))
    cp = ctx.path("sparse.cp")
    try:
        drop_caches()
        r.cp_s, r.cp_nosync_s = cp_sparse(sp, cp)
        r.cp_du = du_mib(cp)
    finally:
        if os.path.exists(cp):
            os.unlink(cp)
    r.src_du = du_mib(sp)
    with ctx.peer(sp, "peer_sparse", "cor") as p:
        r.peer_s = read_through(p.image)
        r.peer_du = du_mib(p.overlay)
    return r


def untar_on(ctx: Context, image: str, name: str) -> float:
    """Workload 7 on IMAGE: ext4 through a loop device, cold, tar -x + sync, seconds."""
    with Ext4OnLoop(image, ctx.path("mnt." + name), ctx.runlog) as fs:
        drop_caches()
        return timed(lambda: (subprocess.run(["tar", "-C", fs.mnt, "-xf", ctx.inputs.tar],
                                             check=True), os.sync()))


def untar(ctx: Context, r: R.Untar) -> R.Untar:
    with ctx.clone(ctx.inputs.source, "cf_tar", "--no-hydration") as c:
        r.cf = untar_on(ctx, c.image, "cf")
        ctx.note("7 clonefs: counters after untar %s, regions_valid %s"
                 % (counters(c), c.status()["regions_valid"]))
    with ctx.peer(ctx.inputs.source, "peer_tar", "cor") as p:
        r.peer = untar_on(ctx, p.image, "peer")
    if not os.path.exists(ctx.inputs.raw):
        subprocess.run(["cp", "--sparse=always", ctx.inputs.source, ctx.inputs.raw], check=True)
    r.raw = untar_on(ctx, ctx.inputs.raw, "raw")
    return r


def tera(ctx: Context, r: R.Tera) -> R.Tera:
    """Workload 8: 1 TiB sparse source, default region size: create, mount, RSS, remounts."""
    s = ctx.sizes
    with Clone(ctx.clonefs, ctx.inputs.tera, ctx.path("cf_tera")) as c:
        r.create = timed(c.create)
        drop_caches(); r.mount = timed(c.mount)
        r.rss = rss_mib(c.pid)
        time.sleep(s.rss_wait)
        r.rss_later, r.hwm = rss_mib(c.pid), rss_mib(c.pid, "VmHWM")
        st = c.status()
        c.unmount()
        meta_kib = sum(du_kib(os.path.join(c.dir, n)) for n in os.listdir(c.dir)
                       if n.startswith("meta"))
        ctx.note("8 clonefs 1 TiB: %d s after mount regions_valid %s/%s; after unmount dest du"
                 " %.1f MiB, metadata files %d KiB" % (s.rss_wait, st["regions_valid"],
                                                       st["regions_total"], du_mib(c.dest), meta_kib))
        times = []
        for _ in range(s.mount_repeats):
            times.append(timed(lambda: c.mount("--no-hydration")))
            c.unmount()
        r.remount = median_low(times)
        ctx.note("8 clonefs 1 TiB remounts (--no-hydration, metadata with the valid bits of the"
                 " first mount): %s s" % " ".join("%.3f" % t for t in times))
    drop_caches()
    t0 = time.monotonic()
    with ctx.peer(ctx.inputs.tera, "peer_tera", "cor") as p:
        r.peer_mount = time.monotonic() - t0
        r.peer_rss = rss_mib(p.pid)
        time.sleep(s.rss_wait)
        r.peer_rss_later, r.peer_hwm = rss_mib(p.pid), rss_mib(p.pid, "VmHWM")
    ptimes = []
    for _ in range(s.mount_repeats):
        t0 = time.monotonic()
        with ctx.peer(ctx.inputs.tera, "peer_tera", "cor"):
            ptimes.append(time.monotonic() - t0)
    r.peer_remount = median_low(ptimes)
    return r


def latency(ctx: Context, r: R.Latency) -> R.Latency:
    """Issue #4: user read latency with hydration paused vs running (larger untouched source)."""
    s = ctx.sizes
    with ctx.clone(ctx.inputs.big, "cf_lat", "--no-hydration") as c:
        # The reads stay in the image's last part, which ascending hydration does not reach
        # within the window: both windows read never-copied regions (fall-through), only the
        # background differs.
        size = os.stat(c.image).st_size
        lat_off = size - s.lat_span
        job = ("--filename=" + c.image, "--rw=randread", "--bs=4k", "--ioengine=libaio",
               "--direct=1", "--iodepth=1", "--ramp_time=2", "--runtime=%d" % s.rt_lat,
               "--time_based", "--offset=%d" % lat_off, "--size=%d" % s.lat_span)
        drop_caches()
        paused = ctx.fio.run(*job).read
        r.p50_paused, r.p99_paused, r.iops_paused = paused.p50_us, paused.p99_us, paused.iops
        drop_caches()
        ctx.clonefs("hydrate", c.image, "--resume")
        # Before fio's first read the hydrator runs at full speed: fio skips 2 s (--ramp_time,
        # both windows) so that burst's writeback is not counted, and the hydration rate is
        # sampled from 1 s into the measured window to 1 s before its end.
        with ctx.fio.start(*job) as bg:
            time.sleep(3)
            v0, t0 = c.status()["bytes_valid"], time.monotonic()
            time.sleep(max(s.rt_lat - 2, 0))
            v1, t1 = c.status()["bytes_valid"], time.monotonic()
            running = bg.wait().read
        r.p50_run, r.p99_run, r.iops_run = running.p50_us, running.p99_us, running.iops
        r.hyd_rate = (v1 - v0) / 1e6 / (t1 - t0)
        ctx.note("latency: hydration progressed %d MiB in %.3f s of the %d s fio run (%.1f MB/s),"
                 " complete=%s at its end; image %d MiB" % ((v1 - v0) >> 20, t1 - t0, s.rt_lat,
                                                          r.hyd_rate,
                                                          json.dumps(c.status()["complete"]),
                                                          size >> 20))
        if (v1 >> 20) >= (lat_off >> 20):
            ctx.note("latency: WARNING hydration reached the read span during the 'running'"
                     " window; the figure is partly hydrated reads")
    return r


def nbd(ctx: Context, r: R.Nbd) -> R.Nbd:
    """Issue #12: the source over NBD (clonefs_bench/nbd.py)."""
    nbd_mod.nbd_rows(ctx, r)
    nbd_mod.connection_sweep(ctx, r)
    return r


def fleet(ctx: Context, r: R.Fleet) -> R.Fleet:
    """Issue 28: a fleet of clones of one golden over HTTP (clonefs_bench/fleet.py)."""
    fleet_rows(ctx, r)
    return r


SOURCE = ("source",)


@dataclass(frozen=True)
class Phase:
    name: str       # --only WORD selects the phases whose name contains WORD
    run: Callable
    record: str     # its record's attribute in records.Results
    needs: tuple = SOURCE  # the inputs (inputs.Inputs fields) generated before the phases


PHASES = (
    Phase("clonefs untouched (1, 3, 4a)", clonefs_untouched, "cf_untouched"),
    Phase("clonefs untouched fsync (5a)", clonefs_fsync_untouched, "cf_fsync"),
    Phase("clonefs fsync profile (5a)", fsync_profile, "fsync_profile"),
    Phase("clonefs copy-on-read (1d, 1e)", clonefs_cor, "cf_cor"),
    Phase("peer untouched (1, 3, 4a, 5a)", peer_untouched, "peer_untouched"),
    # --only "hydrated I/O": rows 2-5 (hydrated), with the raw file and the peer
    Phase("raw: cp + reads + writes, the floor of hydrated I/O (1, 2, 3, 4, 5, 6a)", raw, "raw"),
    Phase("clonefs hydrate 1 GiB + hydrated I/O, FUSE path and reopened; passthrough FUSE file"
          " (2, 3, 4b, 5b, 6a)", clonefs_hydrated, "cf_hydrated"),
    Phase("peer hydrate + hydrated I/O (2, 3, 4b, 5b, 6a)", peer_hydrated, "peer_hydrated"),
    Phase("hydration threshold/batch (6g)", hydration_knobs, "knobs"),
    Phase("sparse source hydration (6c)", sparse_hydration, "sparse", ("source", "sparse")),
    Phase("ext4 untar, losetup + mkfs (7)", untar, "untar", ("source", "tar")),
    Phase("1 TiB mount time and RSS (8)", tera, "tera", ("tera",)),
    Phase("latency with hydration paused vs running (#4)", latency, "latency", ("source", "big")),
    Phase("hydration order: replay on a slow source (issue 13)", hydration_order, "order", ("order",)),
    Phase("nbd: remote source over NBD, delay 0/1/10 ms, peers nbdfuse+cow and qsd (10)", nbd,
          "nbd"),
    Phase("kernel copy: XFS reflink, ext4 copy_file_range hydration (10)", kernel_copy_hydration,
          "kernel_copy"),
    # makes its own inputs (loop.make_inputs)
    Phase("loop: filesystems on a loop device, buffered and direct, fresh/hydrated/reopened/"
          "background (13)", loop_suite, "loop", ()),
    Phase("losetup profile: the daemon's syscalls, buffered read and untar (13)", loop_profile,
          "loop_profile", ()),
    # makes its own golden (fleet_golden.py); --fleet-golden-gib, --fleet-delays, --fleet-clones
    Phase("fleet: N clones of an HTTP golden on nginx at once, delays, peers curl + mount and"
          " nbdkit curl + cow + nbdfuse (14)", fleet, "fleet", ()),
)
