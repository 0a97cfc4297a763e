"""fio jobs on the images and the parsing of fio's JSON report.

MB/s is 10^6 bytes/s (fio bw_bytes); latencies are completion latencies (clat) in microseconds.
"""
import json
import os
import random
import subprocess
import tempfile
from dataclasses import dataclass
from typing import Optional

from .proc import RunLog


@dataclass(frozen=True)
class FioDir:
    """One direction (read, write) of a fio job."""
    bw_mbs: float
    iops: float
    ios: int
    p50_us: Optional[float]
    p99_us: Optional[float]


@dataclass(frozen=True)
class FioReport:
    read: FioDir
    write: FioDir


def _dir(d: dict) -> FioDir:
    pct = d.get("clat_ns", {}).get("percentile", {})
    p50 = pct.get("50.000000")
    p99 = pct.get("99.000000")
    return FioDir(bw_mbs=d["bw_bytes"] / 1e6, iops=float(d["iops"]), ios=int(d["total_ios"]),
                  p50_us=None if p50 is None else p50 / 1000.0,
                  p99_us=None if p99 is None else p99 / 1000.0)


def parse_report(text: str) -> FioReport:
    # fio may print warnings before the JSON object.
    j = json.loads(text[text.index("{"):])
    job = j["jobs"][0]
    return FioReport(read=_dir(job["read"]), write=_dir(job["write"]))


def iolog_text(path: str, size: int, region: int, fsync: bool) -> str:
    """fio replay log: one 4 KiB write per REGION-sized region of PATH, regions in random order
    (seed 42: the same order for every implementation), with a sync after each write if FSYNC."""
    idx = list(range(size // region))
    random.Random(42).shuffle(idx)
    out = ["fio version 2 iolog", "%s add" % path, "%s open" % path]
    for i in idx:
        out.append("%s write %d 4096" % (path, i * region))
        if fsync:
            out.append("%s sync 0 0" % path)
    out.append("%s close" % path)
    return "\n".join(out) + "\n"


class Fio:
    """Runs the bench's fio jobs; every job uses --fallocate=none --invalidate=0."""

    def __init__(self, work: str, runlog: RunLog, rt_rand: int, rt_write: int, rt_fsync: int,
                 region: int):
        self.work, self.runlog = work, runlog
        self.rt_rand, self.rt_write, self.rt_fsync, self.region = rt_rand, rt_write, rt_fsync, region

    def _cmd(self, args) -> tuple:
        fd, out = tempfile.mkstemp(prefix="fio.", suffix=".json", dir=self.work)
        os.close(fd)
        return ["fio", "--output-format=json", "--output=" + out, "--name=job", "--fallocate=none",
                "--invalidate=0", *args], out

    def run(self, *args: str) -> FioReport:
        cmd, out = self._cmd(args)
        try:
            r = self.runlog.run(cmd, check=False)
            if r.returncode != 0:
                raise RuntimeError("fio failed (exit %d): %s" % (r.returncode, " ".join(args)))
            with open(out) as f:
                return parse_report(f.read())
        finally:
            os.unlink(out)

    def start(self, *args: str) -> "BackgroundFio":
        cmd, out = self._cmd(args)
        return BackgroundFio(self.runlog.popen(cmd), out, args)

    # --- the jobs -----------------------------------------------------------------------------
    def seqread(self, f: str, direct: bool = True) -> float:
        """1 MiB sequential read of the whole file, MB/s."""
        return self.run("--filename=" + f, "--rw=read", "--bs=1M", "--ioengine=psync",
                        "--direct=%d" % direct, "--size=%d" % os.stat(f).st_size).read.bw_mbs

    def deepread(self, f: str) -> float:
        """The disk's ceiling for sequential reads: 4 MiB O_DIRECT reads, 8 in flight, MB/s."""
        return self.run("--filename=" + f, "--rw=read", "--bs=4M", "--ioengine=libaio",
                        "--direct=1", "--iodepth=8", "--size=%d" % os.stat(f).st_size).read.bw_mbs

    def randread(self, f: str, qd: int) -> float:
        """4 KiB random read at queue depth QD, IOPS."""
        return self.run("--filename=" + f, "--rw=randread", "--bs=4k", "--ioengine=libaio",
                        "--direct=1", "--iodepth=%d" % qd, "--runtime=%d" % self.rt_rand,
                        "--time_based", "--size=%d" % os.stat(f).st_size).read.iops

    def randwrite(self, f: str) -> float:
        """4 KiB random write QD16 anywhere, IOPS."""
        return self.run("--filename=" + f, "--rw=randwrite", "--bs=4k", "--ioengine=libaio",
                        "--direct=1", "--iodepth=16", "--runtime=%d" % self.rt_write,
                        "--time_based", "--size=%d" % os.stat(f).st_size).write.iops

    def fsyncwrite(self, f: str) -> float:
        """4 KiB random write + fsync after every write, QD1, IOPS."""
        return self.run("--filename=" + f, "--rw=randwrite", "--bs=4k", "--ioengine=psync",
                        "--direct=1", "--fsync=1", "--runtime=%d" % self.rt_fsync, "--time_based",
                        "--size=%d" % os.stat(f).st_size).write.iops

    def _iolog(self, f: str, fsync: bool) -> str:
        fd, path = tempfile.mkstemp(prefix="iolog.", dir=self.work)
        with os.fdopen(fd, "w") as o:
            o.write(iolog_text(f, os.stat(f).st_size, self.region, fsync))
        return path

    def randwrite_fresh(self, f: str) -> FioReport:
        """One 4 KiB write per never-touched region (random order), QD16."""
        log = self._iolog(f, fsync=False)
        try:
            return self.run("--read_iolog=" + log, "--replay_no_stall=1", "--ioengine=libaio",
                            "--direct=1", "--iodepth=16", "--runtime=%d" % self.rt_write)
        finally:
            os.unlink(log)

    def fsyncwrite_fresh(self, f: str) -> FioReport:
        """Write + fsync, one per never-touched region, QD1."""
        log = self._iolog(f, fsync=True)
        try:
            return self.run("--read_iolog=" + log, "--replay_no_stall=1", "--ioengine=psync",
                            "--direct=1", "--runtime=%d" % self.rt_fsync)
        finally:
            os.unlink(log)


class BackgroundFio:
    """A fio job running while the caller does something else; killed if left running."""

    def __init__(self, proc: subprocess.Popen, out: str, args):
        self.proc, self.out, self.args = proc, out, args

    def wait(self) -> FioReport:
        rc = self.proc.wait()
        if rc != 0:
            raise RuntimeError("fio failed (exit %d): %s" % (rc, " ".join(self.args)))
        with open(self.out) as f:
            return parse_report(f.read())

    def __enter__(self) -> "BackgroundFio":
        return self

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if os.path.exists(self.out):
            os.unlink(self.out)
