"""Remote sources (issue #12): clonefs reading its source over NBD from nbdkit on a unix socket,
plain and with --filter=delay adding 1 ms and 10 ms per read to stand in for a remote link,
against the NBD world's own copy-on-write files in the same run: nbdfuse over nbdkit
--filter=cow (cow-on-read for hydration) and qemu-storage-daemon with an NBD blockdev under a
qcow2 overlay and copy-on-read, exported over FUSE (bench/peer_qsd.sh start-nbd).

Every server and mount lives in a `with` block and is stopped by the PID it was started with."""
import os
import shutil
import socket as socketlib
import subprocess
import time
from typing import List, Optional

from .clonefs import MountedClone
from .peers import PEER_QSD
from .proc import RunLog, drop_caches, fusermount_off, log, mounted
from .records import Row

DELAYS_MS = (0, 1, 10)
# Hydration knobs for an NBD source: 4 MiB copies (batch 256 x 16 KiB), 8 in flight, so a copy
# is one request and round trips overlap (the defaults, 256 KiB x 4, are made for local disks).
NBD_HYDRATION = ("--threshold", "2048", "--batch", "256")
SEQ_BYTES = 256 << 20   # fall-through sequential read: the first 256 MiB


def _accepts(path: str) -> bool:
    s = socketlib.socket(socketlib.AF_UNIX, socketlib.SOCK_STREAM)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


class NbdKit:
    """nbdkit -f serving FILE on unix socket DIR/sock, with the delay filter when DELAY_MS and the
    cow filter (on top, nearest the client) when COW."""

    def __init__(self, source: str, d: str, delay_ms: int, runlog: RunLog, cow: bool = False):
        self.dir, self.sock = d, os.path.join(d, "sock")
        argv = ["nbdkit", "-f", "-U", self.sock]
        if cow:
            argv += ["--filter=cow"]
        if delay_ms:
            argv += ["--filter=delay"]
        argv += ["file", "file=" + source]
        if cow:
            argv += ["cow-on-read=true"]
        if delay_ms:
            argv += ["delay-read=%dms" % delay_ms]
        self.argv, self.runlog = argv, runlog
        self.proc: Optional[subprocess.Popen] = None

    @property
    def uri(self) -> str:
        return "nbd+unix:///?socket=" + self.sock

    def __enter__(self) -> "NbdKit":
        os.makedirs(self.dir, exist_ok=True)
        self.proc = self.runlog.popen(self.argv)
        deadline = time.monotonic() + 10
        while not _accepts(self.sock):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError("nbdkit did not start: " + " ".join(self.argv))
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class NbdFuse:
    """nbdfuse DIR/nbd over the server's unix socket, in the foreground as our child."""

    def __init__(self, sock: str, d: str, runlog: RunLog):
        self.sock, self.dir, self.runlog = sock, d, runlog
        self.image = os.path.join(d, "nbd")
        self.proc: Optional[subprocess.Popen] = None

    def __enter__(self) -> "NbdFuse":
        os.makedirs(self.dir, exist_ok=True)
        self.proc = self.runlog.popen(["nbdfuse", self.image, "--unix", self.sock])
        deadline = time.monotonic() + 10
        while not (mounted(self.dir) and os.path.exists(self.image)):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError("nbdfuse did not mount " + self.dir)
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        if mounted(self.dir):
            fusermount_off(self.dir, self.runlog)
        if self.proc:
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class QsdNbd:
    """qemu-storage-daemon: qcow2 overlay over the NBD source, copy-on-read, FUSE export."""

    def __init__(self, sock: str, d: str, runlog: RunLog):
        self.sock, self.dir, self.runlog = sock, d, runlog
        self.image = os.path.join(d, "image")

    def __enter__(self) -> "QsdNbd":
        try:
            self.runlog.run(["bash", PEER_QSD, "start-nbd", self.sock, self.dir])
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.runlog.run(["bash", PEER_QSD, "stop", self.dir], check=False, timeout=60)
        if mounted(self.image):
            fusermount_off(self.image, self.runlog)
        shutil.rmtree(self.dir, ignore_errors=True)


def seq_read(ctx, image: str) -> float:
    drop_caches()
    return ctx.fio.run("--filename=" + image, "--rw=read", "--bs=1M", "--ioengine=psync",
                       "--direct=1", "--size=%d" % SEQ_BYTES).read.bw_mbs


def read_through(image: str) -> float:
    """A peer's full hydration: a sequential read of its copy-on-read image, then sync."""
    drop_caches()
    t0 = time.monotonic()
    subprocess.run(["dd", "if=" + image, "of=/dev/null", "bs=4M", "status=none"], check=True)
    os.sync()
    return time.monotonic() - t0


def nbd_rows(ctx, r) -> None:
    """Fills r.figures[(delay_ms, workload, implementation)]: workload "seq" (MB/s), "rr16"
    (IOPS), "hyd" (s); implementation "clonefs", "nbdfuse", "qsd"."""
    src = ctx.inputs.source
    for delay in DELAYS_MS:
        tag = "%dms" % delay
        log("--- NBD, %d ms per read" % delay)
        with NbdKit(src, ctx.path("nbd_" + tag), delay, ctx.runlog) as server:
            with MountedClone(ctx.clonefs, server.uri, ctx.path("cf_nbd_" + tag),
                              "--no-hydration", *NBD_HYDRATION) as c:
                r.figures[(delay, "seq", "clonefs")] = seq_read(ctx, c.image)
                drop_caches()
                r.figures[(delay, "rr16", "clonefs")] = ctx.fio.randread(c.image, 16)
                drop_caches()
                r.figures[(delay, "hyd", "clonefs")] = ctx.clonefs.hydrate(c.image)
                s = c.status()
                ctx.note("NBD %s clonefs: source_connection %s; counters %s"
                         % (tag, s.get("source_connection"), s.get("counters")))
            with QsdNbd(server.sock, ctx.path("qsd_nbd_" + tag), ctx.runlog) as q:
                r.figures[(delay, "seq", "qsd")] = seq_read(ctx, q.image)
                drop_caches()
                r.figures[(delay, "rr16", "qsd")] = ctx.fio.randread(q.image, 16)
            with QsdNbd(server.sock, ctx.path("qsd_nbd_h_" + tag), ctx.runlog) as q:
                r.figures[(delay, "hyd", "qsd")] = read_through(q.image)
        with NbdKit(src, ctx.path("nbdcow_" + tag), delay, ctx.runlog, cow=True) as server:
            with NbdFuse(server.sock, ctx.path("nbdfuse_" + tag), ctx.runlog) as f:
                r.figures[(delay, "seq", "nbdfuse")] = seq_read(ctx, f.image)
                drop_caches()
                r.figures[(delay, "rr16", "nbdfuse")] = ctx.fio.randread(f.image, 16)
        with NbdKit(src, ctx.path("nbdcow_h_" + tag), delay, ctx.runlog, cow=True) as server:
            with NbdFuse(server.sock, ctx.path("nbdfuse_h_" + tag), ctx.runlog) as f:
                r.figures[(delay, "hyd", "nbdfuse")] = read_through(f.image)


def connection_sweep(ctx, r) -> None:
    """Why 16 connections: 4K randread QD16 and full hydration at 10 ms per read, by
    --source-connections."""
    with NbdKit(ctx.inputs.source, ctx.path("nbd_sweep"), 10, ctx.runlog) as server:
        for conns in (1, 4, 8, 16):
            with MountedClone(ctx.clonefs, server.uri, ctx.path("cf_sweep_%d" % conns),
                              "--no-hydration", "--source-connections", str(conns),
                              *NBD_HYDRATION) as c:
                drop_caches()
                r.sweep[(conns, "rr16")] = ctx.fio.randread(c.image, 16)
                drop_caches()
                r.sweep[(conns, "hyd")] = ctx.clonefs.hydrate(c.image)


def rows(res, s) -> List:
    n = res.nbd
    out = []
    names = {"seq": ("Fall-through seq read 1 MiB, first %d MiB, cold" % (SEQ_BYTES >> 20), "MB/s", "hi"),
             "rr16": ("4K randread QD16, never touched, cold", "IOPS", "hi"),
             "hyd": ("Full hydration %d MiB (clonefs %s; peers: dd of the copy-on-read image + sync)"
                     % (s.src_mib, " ".join(NBD_HYDRATION)), "s", "lo")}
    for delay in DELAYS_MS:
        for i, (w, (name, unit, better)) in enumerate(names.items()):
            cf = n.figures.get((delay, w, "clonefs"))
            nf = n.figures.get((delay, w, "nbdfuse"))
            q = n.figures.get((delay, w, "qsd"))
            peers = [v for v in (nf, q) if v is not None]
            best = (max(peers) if better == "hi" else min(peers)) if peers else None
            fmt = lambda v: "—" if v is None else ("%.1f" % v)
            out.append(Row("11%s-%dms" % ("abc"[i], delay),
                           "NBD, nbdkit file + %d ms/read: %s" % (delay, name), unit, better,
                           cf, best, note="peer = better of nbdfuse+cow %s, qsd nbd+cor %s"
                           % (fmt(nf), fmt(q))))
    for (conns, w), v in sorted(n.sweep.items()):
        unit, better = ("IOPS", "hi") if w == "rr16" else ("s", "lo")
        out.append(Row("11d-%s-%d" % (w, conns), "NBD 10 ms/read, --source-connections %d: %s"
                       % (conns, "4K randread QD16" if w == "rr16" else "full hydration"),
                       unit, better, v))
    return out
