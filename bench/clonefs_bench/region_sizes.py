"""Region size sweep (issue #6 lever "region size"): for each size, on a fresh clone of the same
random source, the costs that pull the default in opposite directions:
  - the first NIOS 4 KiB random writes to a fresh clone, QD16, the same offsets for every size
    (a write covering part of a never-copied region copies that region first)
  - full hydration time (resume -> complete -> fsync committed)
  - metadata bytes on disk and daemon RSS for a 1 TiB sparse source, and its mount time

  bench/region_sizes.py [--quick] [--no-build] [--build-dir DIR] [SIZES...]
                                                     (default sizes: 4K 16K 64K 256K 1M)
"""
import argparse
import contextlib
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import List, Optional, Sequence

from . import cli
from .clonefs import Clone, Clonefs
from .fio import Fio
from .inputs import random_file
from .proc import RunLog, drop_caches, du_kib, log, rss_mib

DEFAULT_SIZES = ("4K", "16K", "64K", "256K", "1M")


@dataclass(frozen=True)
class Options:
    quick: bool
    build: bool
    build_dir: str
    sizes: tuple


@dataclass
class RegionRecord:
    size: str
    iops: Optional[float] = None
    amplification: Optional[float] = None   # bytes copied / bytes written
    hydrate_s: Optional[float] = None
    regions: Optional[int] = None           # 1 TiB source
    meta_kib: Optional[int] = None
    mount_s: Optional[float] = None
    rss_mib: Optional[float] = None


def parse_args(argv: Sequence[str]) -> Options:
    p = argparse.ArgumentParser(prog="bench/region_sizes.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="128 MiB source, 1,024 writes")
    p.add_argument("--no-build", dest="build", action="store_false")
    p.add_argument("--build-dir", default=os.path.join(cli.ROOT, "build-bench"))
    p.add_argument("sizes", nargs="*", metavar="SIZE")
    a = p.parse_args(list(argv))
    return Options(a.quick, a.build, os.path.abspath(a.build_dir), tuple(a.sizes) or DEFAULT_SIZES)


def header(nios: int, src_mib: int) -> List[str]:
    return ["| region | first %d 4K randwrites QD16 on a fresh clone (IOPS) | amplification (bytes "
            "copied ÷ bytes written) | hydrate %d MiB (s) | 1 TiB: regions | 1 TiB: metadata on "
            "disk | 1 TiB: mount (s) | 1 TiB: daemon RSS (MiB) |" % (nios, src_mib),
            "|--:|--:|--:|--:|--:|--:|--:|--:|"]


def line(r: RegionRecord) -> str:
    return "| %s | %.0f | %.1f | %.3f | %s | %s KiB | %.3f | %.1f |" % (
        r.size, r.iops, r.amplification, r.hydrate_s, r.regions, r.meta_kib, r.mount_s, r.rss_mib)


def measure(tool: Clonefs, fio: Fio, work: str, source: str, tera: str, size: str,
            nios: int) -> RegionRecord:
    r = RegionRecord(size)
    d = os.path.join(work, "r" + size)
    with Clone(tool, source, d) as c:
        c.create("--region-size", size)
        c.mount("--no-hydration")
        drop_caches()
        w = fio.run("--filename=" + c.image, "--rw=randwrite", "--bs=4k", "--ioengine=libaio",
                    "--direct=1", "--iodepth=16", "--number_ios=%d" % nios, "--randrepeat=1",
                    "--norandommap").write
        r.iops = w.iops
        r.amplification = c.status()["counters"]["bytes_copied"] / (w.ios * 4096)
    # hydration on a second, untouched clone of the same geometry
    with Clone(tool, source, d) as c:
        c.create("--region-size", size)
        c.mount("--no-hydration")
        drop_caches()
        r.hydrate_s = tool.hydrate(c.image)
    with Clone(tool, tera, d) as c:
        c.create("--region-size", size)
        # The first mount hydrates the holes (marks them valid); unmount commits; the remount
        # is measured.
        c.mount()
        time.sleep(3)
        c.unmount()
        drop_caches()
        t0 = time.monotonic()
        c.mount("--no-hydration")
        r.mount_s = time.monotonic() - t0
        r.regions = c.status()["regions_total"]
        r.rss_mib = rss_mib(c.pid)
        c.unmount()
        r.meta_kib = sum(du_kib(os.path.join(d, n)) for n in os.listdir(d) if n.startswith("meta"))
    return r


def run(o: Options) -> int:
    src_mib, nios = (128, 1024) if o.quick else (1024, 8192)
    cli.ensure_dependencies(o.build)
    if o.build:
        cli.build(o.build_dir)
    with contextlib.ExitStack() as stack:
        work = tempfile.mkdtemp(prefix="clonefs-regions.", dir="/var/tmp")
        stack.callback(shutil.rmtree, work, ignore_errors=True)
        runlog = RunLog(os.path.join(work, "run.log"))
        tool = Clonefs(os.path.join(o.build_dir, "cli", "clonefs"), runlog)
        fio = Fio(work, runlog, 0, 0, 0, 0)
        source, tera = os.path.join(work, "source.img"), os.path.join(work, "tera.img")
        random_file(source, src_mib << 20)
        with open(tera, "wb") as f:
            f.truncate(1 << 40)
        os.chmod(source, 0o444)
        os.chmod(tera, 0o444)
        print("\n".join(header(nios, src_mib)), flush=True)
        for size in o.sizes:
            log("region size " + size)
            print(line(measure(tool, fio, work, source, tera, size, nios)), flush=True)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    o = parse_args(sys.argv[1:] if argv is None else argv)
    if os.geteuid() != 0:
        print("run as root", file=sys.stderr)
        return 1
    signal.signal(signal.SIGINT, cli._interrupt)
    signal.signal(signal.SIGTERM, cli._interrupt)
    try:
        return run(o)
    except KeyboardInterrupt:
        log("interrupted")
        return 130
