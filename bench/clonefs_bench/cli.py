"""bench/run.py: the command line, the dependencies, the build, the run, the report."""
import argparse
import contextlib
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import List, Optional, Sequence

from . import inputs as inputs_mod
from .clonefs import Clonefs
from .config import QUICK_FLEET, REGION, FleetConfig, Sizes, int_list, sizes
from .fio import Fio
from .fleet_report import render as render_fleet
from .proc import RunLog, log
from .records import Results
from .report import build_rows, render_report
from .runner import run_phases, selected
from .workloads import Context

BENCH = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.dirname(BENCH)

USAGE = """clonefs side-by-side benchmark (issue #6): every workload against clonefs, the peer
(qemu-storage-daemon, bench/peer_qsd.sh), the raw file and, where it applies, the trivial
passthrough FUSE file (bench/passthrough_fuse.cc), in one run; prints a markdown table of MB/s,
IOPS, seconds and the ratios clonefs ÷ peer / raw / passthrough, then the targets.

Run as root on Debian 12 (bench/install-deps.sh installs what it needs; run.py calls it when a
package is missing). Works in a fresh directory under /var/tmp (on disk, not tmpfs) and releases
everything it started — clonefs mounts, passthrough processes, peer daemons, loop devices, ext4
mounts — on exit, failure or Ctrl-C.

Conventions: MB/s is 10^6 bytes/s (fio bw_bytes). "cold" = sync; echo 3 > drop_caches just
before. All I/O on the images is fio with direct=1 unless the row says otherwise."""

PACKAGES = ("fio", "qemu-utils", "qemu-system-common", "strace", "nbdkit", "libnbd-bin", "git",
            "nginx", "curl")
TOOLS = ("fio", "strace", "qemu-img", "qemu-storage-daemon", "losetup", "mkfs.ext4",
         "mkfs.xfs", "xfs_io", "fusermount3", "tar", "dd", "cp", "nbdkit", "nbdfuse", "git",
         "nginx", "curl")


@dataclass(frozen=True)
class Options:
    quick: bool = False
    build: bool = True
    keep: bool = False
    out: Optional[str] = None
    only: str = ""
    build_dir: str = os.path.join(ROOT, "build-bench")
    fleet: FleetConfig = FleetConfig()


def parse_args(argv: Sequence[str]) -> Options:
    p = argparse.ArgumentParser(prog="bench/run.py", description=USAGE,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="small sizes and short runtimes (smoke run, a few minutes)")
    p.add_argument("--no-build", dest="build", action="store_false",
                   help="use the existing binaries in the build directory")
    p.add_argument("--keep", action="store_true",
                   help="keep the work directory (/var/tmp/clonefs-bench.XXXXXX) for inspection")
    p.add_argument("--out", metavar="FILE", help="also write the final report to FILE")
    p.add_argument("--only", metavar="WORD", default="",
                   help='run only the phases whose name contains WORD (e.g. "1 TiB", "hydrate 1 GiB")')
    p.add_argument("--build-dir", metavar="DIR", default=os.path.join(ROOT, "build-bench"),
                   help="build directory (default: build-bench/ in the repository)")
    p.add_argument("--fleet-golden-gib", metavar="GIB", type=float,
                   help="row 14: size of the golden ext4 image (default 1)")
    p.add_argument("--fleet-delays", metavar="MS,MS", type=int_list,
                   help="row 14: delays added to every HTTP answer (default 0,1,10; --quick 0,10)")
    p.add_argument("--fleet-clones", metavar="N,N", type=int_list,
                   help="row 14: numbers of clones at once (default 1,4,8; --quick 1,4)")
    a = p.parse_args(list(argv))
    base = QUICK_FLEET if a.quick else FleetConfig()
    fleet = FleetConfig(
        golden_gib=base.golden_gib if a.fleet_golden_gib is None else a.fleet_golden_gib,
        delays_ms=a.fleet_delays or base.delays_ms, clones=a.fleet_clones or base.clones)
    if fleet.golden_gib <= 0 or 0 in fleet.clones:
        p.error("--fleet-golden-gib and --fleet-clones must be positive")
    return Options(quick=a.quick, build=a.build, keep=a.keep, out=a.out, only=a.only,
                   build_dir=os.path.abspath(a.build_dir), fleet=fleet)


def installed(pkg: str) -> bool:
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True)
    return "install ok installed" in r.stdout


def ensure_dependencies(build: bool) -> None:
    tools = TOOLS + (("cmake",) if build else ())
    packages = PACKAGES + (("libbenchmark-dev",) if build else ())  # find_package(benchmark)
    if not all(installed(p) for p in packages) or not all(shutil.which(t) for t in tools):
        log("installing the bench's dependencies (bench/install-deps.sh)")
        subprocess.run(["bash", os.path.join(BENCH, "install-deps.sh")], check=True)
    missing = [t for t in tools if not shutil.which(t)]
    if missing:
        raise SystemExit("missing " + " ".join(missing))


def build(bdir: str) -> None:
    log("building %s (clonefs, clonefs_passthrough)" % bdir)
    with tempfile.NamedTemporaryFile("w+", prefix="clonefs-bench-build.", suffix=".log",
                                     dir="/var/tmp", delete=False) as blog:
        ok = all(subprocess.run(cmd, stdout=blog, stderr=blog).returncode == 0 for cmd in (
            ["cmake", "-S", ROOT, "-B", bdir, "-DCLONEFS_BENCH=ON", "-DCMAKE_BUILD_TYPE=Release"],
            ["cmake", "--build", bdir, "-j2", "--target", "clonefs", "clonefs_passthrough"]))
    if not ok:
        with open(blog.name) as f:
            sys.stderr.write("".join(f.readlines()[-40:]))
        raise SystemExit("build failed (log: %s)" % blog.name)
    os.unlink(blog.name)


def command_output(cmd: List[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


def header(work: str, s: Sizes, quick: bool, fleet: FleetConfig = FleetConfig()) -> List[str]:
    cpu = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = next((ln.split()[1] for ln in command_output(["free", "-h"]).splitlines()
                if ln.startswith("Mem:")), "?")
    df = command_output(["df", "--output=source,fstype,size,avail", "-h", work]).splitlines()[-1].split()
    rev = command_output(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(["git", "-C", ROOT, "diff", "--quiet"], capture_output=True).returncode != 0
    qsd = command_output(["qemu-storage-daemon", "--version"]).splitlines()[:1]
    return [
        "## clonefs benchmark %s%s" % (time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                       " (--quick)" if quick else ""),
        "",
        "- machine: %d CPUs (%s), %s RAM, kernel %s" % (os.cpu_count(), cpu, mem, platform.release()),
        "- disk: work dir %s on %s (%s)" % (work, df[0], " ".join(df[1:])),
        "- clonefs %s%s, %s, %s" % (rev, " + uncommitted changes" if dirty else "",
                                    command_output(["fio", "--version"]), "".join(qsd)),
        "- sizes: source %d MiB random; sparse %d GiB with %d MiB data + %d MiB written zeros; "
        "latency source %d MiB; untar %d files of 1-16 KiB; runtimes randread %d s, randwrite %d s,"
        " fsync %d s, latency %d s; cold sequential reads that change nothing: median of %d"
        % (s.src_mib, s.sparse_gib, s.sparse_data_mib, s.sparse_zero_mib, s.src_mib * s.big_copies,
           s.nfiles, s.rt_rand, s.rt_write, s.rt_fsync, s.rt_lat, s.cold_repeats),
        "- loop suite (13): ext4 image %d MiB, file %d MiB, tree %d files, untar %d files, git %d"
        " files, database file %d MiB for %d s; medians of %d rounds"
        % (s.loop_image_mib, s.loop_big_mib, s.loop_tree_files, s.loop_untar_files,
           s.loop_git_files, s.loop_db_mib, s.loop_db_s, s.loop_repeats),
        "- fleet (14): golden %g GiB, delays %s ms, clones at once %s"
        % (fleet.golden_gib, ",".join(map(str, fleet.delays_ms)), ",".join(map(str, fleet.clones))),
    ]


def _interrupt(signum, frame):
    # The first Ctrl-C / SIGTERM unwinds every `with` block (releasing what it holds); further
    # ones are ignored so that the cleanup itself is not cut short.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def run(opts: Options) -> int:
    s = sizes(opts.quick)
    ensure_dependencies(opts.build)
    if opts.build:
        build(opts.build_dir)
    clonefs_bin = os.path.join(opts.build_dir, "cli", "clonefs")
    pt_bin = os.path.join(opts.build_dir, "bench", "clonefs_passthrough")
    for b in (clonefs_bin, pt_bin):
        if not os.access(b, os.X_OK):
            raise SystemExit("missing " + b)
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        work = tempfile.mkdtemp(prefix="clonefs-bench.", dir="/var/tmp")
        if opts.keep:
            stack.callback(log, "kept " + work)
        else:
            stack.callback(shutil.rmtree, work, ignore_errors=True)
        runlog = RunLog(os.path.join(work, "run.log"))
        head = header(work, s, opts.quick, opts.fleet)
        log("generating inputs in " + work)
        ins = inputs_mod.generate(work, s, [n for p in selected(opts.only) for n in p.needs])
        ctx = Context(work=work, inputs=ins, sizes=s, clonefs=Clonefs(clonefs_bin, runlog),
                      passthrough=pt_bin, runlog=runlog,
                      fio=Fio(work, runlog, s.rt_rand, s.rt_write, s.rt_fsync, REGION),
                      fleet=opts.fleet)
        results = Results()
        failed = run_phases(ctx, results, opts.only)
        report = render_report(head, time.monotonic() - started, build_rows(results, s), ctx.notes,
                               render_fleet(results.fleet))
        sys.stdout.write(report)
        sys.stdout.flush()
        if opts.out:
            with open(opts.out, "w") as f:
                f.write(report)
    if failed:
        log("failed phases: " + ", ".join(failed))
        return 1
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    opts = parse_args(sys.argv[1:] if argv is None else argv)
    if os.geteuid() != 0:
        print("run as root", file=sys.stderr)
        return 1
    os.environ["LC_ALL"] = "C"
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return run(opts)
    except KeyboardInterrupt:
        log("interrupted")
        return 130
