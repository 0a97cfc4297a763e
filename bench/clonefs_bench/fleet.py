"""Row 14 (issue 28): a fleet of N runners on one host, each cloning the same golden from an
HTTP server (nginx, Range requests) behind a delay line, at once; for each delay and N:

  clonefs  `clonefs create --share-source --source http://...` + mount (hydration on, the NBD
           knobs of row 11): the host's clones share one nbdkit and its cache
           + losetup + mount of the guest ext4
  curl     what runners do today: `curl` of the whole image, then losetup + mount
  nbdkit   nbdkit --filter=cow curl url=... cow-on-read=true + nbdfuse, losetup + mount; a `dd`
           of the nbdfuse file started after the first read is its hydration

Each runner: t0 at create (clonefs), the download's start (curl), nbdkit's start (nbdkit);
"first" = t0 to the first file read in the guest filesystem (for clonefs also "create" and
"mount", the parts its two commands take); then, once every runner has got
that far, all replay `find /usr -type f | xargs cat` at once ("replay"); "hydrate" = t0 to every
byte of the golden local (clonefs: status complete; curl: the download done; nbdkit: the dd
done); "fetched" = the bytes nginx sent for the N runners (its access log); "rss" = the peak
RSS (VmHWM) of the processes serving one mount (clonefs's serving process and its nbdkit;
nbdkit + nbdfuse; curl's ru_maxrss), the largest of the N. Times are the slowest runner's.

Two more clonefs variants answer whether hydration starves the jobs' on-demand reads (issue 28
item 4), replay only:
  clonefs_quiet  the same N clones with --no-hydration: every read on demand, nothing else
                 fetched (its N = 1 is one job alone)
  clonefs_solo   the same N clones hydrating, but only the first replays: its N - 1 neighbours
                 hydrate at full speed (no user I/O of theirs throttles them) while it reads"""
import contextlib
import os
import shutil
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Callable, Dict, List, Optional, Tuple

from .clonefs import Clone, live_status
from .fleet_golden import FIRST_FILE, golden_bytes, make_golden
from .fleet_net import DelayLine, Nginx, bytes_sent, status_counts, wait4_maxrss_mib
from .nbd import NBD_HYDRATION, NbdFuse
from .proc import MIB, RunLog, drop_caches, kill_ours, log, status_field_kib

IMPLS = ("clonefs", "curl", "nbdkit", "clonefs_quiet", "clonefs_solo")
METRICS = ("first", "create", "mount", "replay", "hydrate", "fetched", "rss")
GOLDEN = "golden.img"
REPLAY = "find usr -type f -print0 | xargs -0 cat > /dev/null"
HYDRATION_TIMEOUT = 3600


def descendants(pid: int) -> List[int]:
    """PID's children, grandchildren... (from /proc/PID/task/*/children)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            tasks = os.listdir("/proc/%d/task" % p)
        except OSError:
            continue
        for t in tasks:
            try:
                with open("/proc/%d/task/%s/children" % (p, t)) as f:
                    kids = [int(k) for k in f.read().split()]
            except OSError:
                continue
            out += kids
            todo += kids
    return out


def hwm_mib(pids: List[int]) -> float:
    """The sum of the processes' peak RSS (VmHWM), MiB; a process gone counts 0."""
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/status" % pid) as f:
                total += status_field_kib(f.read(), "VmHWM") or 0
        except OSError:
            pass
    return total / 1024


class LoopMount:
    """IMAGE on a loop device (buffered, as losetup does by default) mounted at MNT; released in
    __exit__, which is safe to call before __enter__ and twice. losetup -f is retried: runners
    set theirs up at once and two may race for the same free device."""

    def __init__(self, image: str, mnt: str, runlog: RunLog):
        self.image, self.mnt, self.runlog = image, mnt, runlog
        self.dev: Optional[str] = None
        self.is_mounted = False

    def enter(self) -> None:
        for attempt in range(10):
            r = subprocess.run(["losetup", "-f", "--show", self.image], capture_output=True,
                               text=True)
            if r.returncode == 0:
                self.dev = r.stdout.strip()
                break
            time.sleep(0.05 * (attempt + 1))
        else:
            raise RuntimeError("losetup %s: %s" % (self.image, r.stderr.strip()))
        os.makedirs(self.mnt, exist_ok=True)
        self.runlog.run(["mount", self.dev, self.mnt])
        self.is_mounted = True

    def __exit__(self, *exc) -> None:
        if self.is_mounted:
            if self.runlog.run(["umount", self.mnt], check=False).returncode != 0:
                self.runlog.run(["umount", "-l", self.mnt], check=False)
            self.is_mounted = False
        if self.dev:
            self.runlog.run(["losetup", "-d", self.dev], check=False)
            self.dev = None


def first_read(mnt: str) -> None:
    with open(os.path.join(mnt, FIRST_FILE), "rb") as f:
        if not f.read():
            raise RuntimeError("%s/%s is empty" % (mnt, FIRST_FILE))


def replay(mnt: str) -> float:
    t0 = time.monotonic()
    subprocess.run(["sh", "-c", REPLAY], cwd=mnt, check=True)
    return time.monotonic() - t0


class Runner:
    """One runner of the fleet: its directory, t0, its figures; the variant's start() and
    hydrated() fill them."""

    def __init__(self, d: str):
        self.dir, self.mnt = d, os.path.join(d, "mnt")
        self.t0 = 0.0
        self.first = self.replay = self.hydrate = self.rss = None
        self.create = self.mount = None   # clonefs: the parts of "first" its commands take
        self.pids: List[int] = []
        self.loop: Optional[LoopMount] = None


def all_at_once(pool: ThreadPoolExecutor, runners: List[Runner],
                fn: Callable[[Runner], None]) -> None:
    """FN on every runner at once, in POOL's threads; the first failure raised once all are
    done. POOL must outlive every process FN starts: nbdfuse dies with the thread that started
    it (a parent-death signal fires when that thread exits)."""
    futures = [pool.submit(fn, r) for r in runners]
    wait(futures)  # every runner done before anything is released
    for f in futures:
        f.result()


class Variant:
    """A way of getting the golden onto each runner (IMPLS); its resources go on STACK."""

    def __init__(self, ctx, url: str, stack: contextlib.ExitStack):
        self.ctx, self.url, self.stack = ctx, url, stack
        self.lock = threading.Lock()

    def push(self, exit_fn) -> None:
        with self.lock:
            self.stack.push(exit_fn)

    def replayers(self, runners: List[Runner]) -> List[Runner]:
        return runners

    def mount_guest(self, r: Runner, image: str) -> None:
        r.loop = LoopMount(image, r.mnt, self.ctx.runlog)
        self.push(r.loop.__exit__)
        r.loop.enter()
        first_read(r.mnt)
        r.first = time.monotonic() - r.t0


class ClonefsVariant(Variant):
    FLAGS: Tuple[str, ...] = ()

    def start(self, r: Runner) -> None:
        c = Clone(self.ctx.clonefs, self.url, r.dir)
        self.push(c.__exit__)
        r.clone = c
        r.t0 = time.monotonic()
        c.__enter__()
        # One fetch per host: the clones share one nbdkit and its cache (not any clone's child,
        # so not in "rss" either).
        c.create("--share-source")
        r.create = time.monotonic() - r.t0
        c.mount("--share-source", *NBD_HYDRATION, *self.FLAGS)
        r.mount = time.monotonic() - r.t0 - r.create
        self.mount_guest(r, c.image)

    def hydrated(self, r: Runner) -> None:
        deadline = time.monotonic() + HYDRATION_TIMEOUT
        while not live_status(r.clone.image).get("complete"):
            if time.monotonic() > deadline:
                raise RuntimeError("%s: not hydrated after %d s" % (r.dir, HYDRATION_TIMEOUT))
            time.sleep(0.02)
        r.hydrate = time.monotonic() - r.t0
        pid = r.clone.pid
        r.rss = hwm_mib([pid] + descendants(pid))


class QuietClonefsVariant(ClonefsVariant):
    FLAGS = ("--no-hydration",)

    def hydrated(self, r: Runner) -> None:
        pid = r.clone.pid
        r.rss = hwm_mib([pid] + descendants(pid))


class SoloClonefsVariant(QuietClonefsVariant):
    FLAGS = ()

    def replayers(self, runners: List[Runner]) -> List[Runner]:
        return runners[:1]


class CurlVariant(Variant):
    def start(self, r: Runner) -> None:
        os.makedirs(r.dir, exist_ok=True)
        image = os.path.join(r.dir, GOLDEN)
        argv = ["curl", "--fail", "-s", "-o", image, self.url]
        r.t0 = time.monotonic()
        proc = subprocess.Popen(argv)
        self.push(lambda *exc: stop(proc, image))
        r.rss = wait4_maxrss_mib(proc, argv)
        r.hydrate = time.monotonic() - r.t0
        self.mount_guest(r, image)

    def hydrated(self, r: Runner) -> None:
        pass


class NbdkitVariant(Variant):
    def start(self, r: Runner) -> None:
        os.makedirs(r.dir, exist_ok=True)
        sock = os.path.join(r.dir, "sock")
        argv = ["nbdkit", "-f", "-U", sock, "--filter=cow", "curl", "url=" + self.url,
                "cow-on-read=true"]
        r.t0 = time.monotonic()
        proc = self.ctx.runlog.popen(argv)
        self.push(lambda *exc: stop(proc, sock))
        deadline = time.monotonic() + 30
        while not os.path.exists(sock):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("nbdkit did not start: " + " ".join(argv))
            time.sleep(0.01)
        fuse = NbdFuse(sock, os.path.join(r.dir, "fuse"), self.ctx.runlog)
        self.push(fuse.__exit__)
        fuse.__enter__()
        r.pids = [proc.pid, fuse.proc.pid]
        self.mount_guest(r, fuse.image)
        # the peer's hydration: the whole file read through cow-on-read, beside the replay
        r.dd = subprocess.Popen(["dd", "if=" + fuse.image, "of=/dev/null", "bs=4M",
                                 "status=none"])
        self.push(lambda *exc: stop(r.dd, "if=" + fuse.image))

    def hydrated(self, r: Runner) -> None:
        if r.dd.wait() != 0:
            raise RuntimeError("dd of %s failed" % r.dir)
        r.hydrate = time.monotonic() - r.t0
        r.rss = hwm_mib(r.pids)


def stop(proc: subprocess.Popen, tag: str) -> None:
    if proc.poll() is None:
        kill_ours(proc.pid, tag, 10)
    proc.wait()


VARIANTS = {"clonefs": ClonefsVariant, "curl": CurlVariant, "nbdkit": NbdkitVariant,
            "clonefs_quiet": QuietClonefsVariant, "clonefs_solo": SoloClonefsVariant}


def slowest(values: List[Optional[float]]) -> Optional[float]:
    known = [v for v in values if v is not None]
    return max(known) if known else None


def run_variant(ctx, impl: str, url: str, nginx: Nginx, delay: int, n: int,
                out: Dict) -> None:
    """N runners of IMPL at once; their figures into OUT[(delay, n, metric, impl)]."""
    tag = "fleet_%s_%dms_%d" % (impl, delay, n)
    runners = [Runner(ctx.path("%s_%d" % (tag, i))) for i in range(n)]
    drop_caches()
    offset = nginx.log_size()
    # the pool last: its threads outlive what they started (all_at_once)
    with ThreadPoolExecutor(n) as pool, contextlib.ExitStack() as stack:
        for r in runners:
            stack.callback(shutil.rmtree, r.dir, ignore_errors=True)
        v = VARIANTS[impl](ctx, url, stack)
        all_at_once(pool, runners, v.start)
        replays = {}
        all_at_once(pool, v.replayers(runners),
                    lambda r: replays.__setitem__(r.dir, replay(r.mnt)))
        for r in runners:
            r.replay = replays.get(r.dir)
        all_at_once(pool, runners, v.hydrated)
    for metric in ("first", "create", "mount", "replay", "hydrate", "rss"):
        out[(delay, n, metric, impl)] = slowest([getattr(r, metric) for r in runners])
    text = nginx.log_since(offset)
    out[(delay, n, "fetched", impl)] = bytes_sent(text) / MIB
    odd = {k: v for k, v in status_counts(text).items() if k not in ("200", "206")}
    if odd:
        ctx.note("14 %s %d ms N=%d: nginx answered %s" % (impl, delay, n, odd))
    log("--- fleet %s %d ms N=%d: %s" % (impl, delay, n, ", ".join(
        "%s %.3g" % (m, out[(delay, n, m, impl)]) for m in METRICS
        if out.get((delay, n, m, impl)) is not None)))


def http_refusal(ctx, url: str) -> Optional[str]:
    """None if this clonefs creates a clone of URL; else why not, in a sentence."""
    d = ctx.path("fleet_probe")
    os.makedirs(d)
    try:
        r = subprocess.run([ctx.clonefs.binary, "create", "--source", url, "--dest", d + "/dest",
                            "--metadata", d + "/meta"], capture_output=True, text=True,
                           timeout=120)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return refusal(r.returncode, r.stderr)


def refusal(returncode: int, stderr: str) -> Optional[str]:
    """What the clonefs column says when `clonefs create --source http://...` fails."""
    if returncode == 0:
        return None
    why = (stderr.strip().splitlines() or ["exit status %d" % returncode])[-1]
    if "unsupported URI scheme" in why:
        return "not available: this clonefs has no http source (%s)" % why
    return "not available: clonefs create of the golden's URL failed (%s)" % why


def fleet(ctx, rec) -> None:
    """Fills REC (records.Fleet)."""
    cfg = ctx.fleet
    for tool in ("nginx", "curl", "nbdkit", "nbdfuse", "podman"):
        if not shutil.which(tool):
            raise RuntimeError("row 14 needs %s (%s)" % (tool, "scripts/install-deps.sh" if tool ==
                               "podman" else "bench/install-deps.sh"))
    root = ctx.path("fleet_www")
    os.makedirs(root)
    golden = os.path.join(root, GOLDEN)
    log("--- fleet: golden ext4 of %g GiB from %s" % (cfg.golden_gib, "localhost/debian:12"))
    rec.files_mib = make_golden(golden, cfg.golden_gib, ctx.runlog) / MIB
    rec.golden_mib = golden_bytes(cfg.golden_gib) / MIB
    with Nginx(root, ctx.path("fleet_nginx"), ctx.runlog) as nginx:
        why = http_refusal(ctx, nginx.url(GOLDEN))
        if why:
            rec.unavailable["clonefs"] = why
            ctx.note("14 clonefs: " + why)
        for delay in cfg.delays_ms:
            with DelayLine(nginx.port, delay, ctx.runlog) as line:
                for n in cfg.clones:
                    for impl in IMPLS:
                        if impl.split("_")[0] in rec.unavailable:
                            continue
                        try:
                            run_variant(ctx, impl, line.url(GOLDEN), nginx, delay, n, rec.figures)
                        except Exception as e:  # noqa: BLE001 — loses only this cell
                            ctx.note("14 %s %d ms N=%d FAILED: %s: %s"
                                     % (impl, delay, n, type(e).__name__, e))
