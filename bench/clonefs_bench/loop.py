"""Workload 13 (issue 17): what users do with the image — a filesystem on a loop device over it.

The source is an ext4 image holding a populated tree, a large file and a database-like file
(made with mkfs.ext4 -d, never mounted). Each variant mounts it through a loop device — buffered
(losetup's default) or --direct-io=on — and runs the workloads below on it, each cold:

  clonefs   fresh (--no-hydration: nothing copied, as a CI job sees it); hydrated (hydrated
            before the loop device is set up, with IMAGE held open since before hydration
            completed: every open, the loop device's too, takes the FUSE path, as for a VM or a
            loop device running through hydration); reopened (hydrated with `clonefs hydrate
            --wait`, and only then the loop device attached: its open is a kernel passthrough
            open, the raw file's path); background (hydration on, as mounted by default).
            Each variant checks in the status that the loop device's open is of its kind.
  peer      qemu-storage-daemon: fresh = the qcow2 overlay without copy-on-read (its fastest
            reads), hydrated = with copy-on-read after a full read (reopened: the same figures;
            the peer serves every open alike), background = with copy-on-read while a dd reads
            the whole export (its way of hydrating)
  raw       a copy of the source (cp --sparse=always): the floor, the same for every state
  pt        the passthrough FUSE file over a copy of the source: the floor of any FUSE file

The variants of one repeat run one after another, the repeats interleave them; figures are
medians of the repeats."""
import contextlib
import os
import random
import shutil
import subprocess
import time
from dataclasses import dataclass
from statistics import median
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from .clonefs import FUSE_PATH, PASSTHROUGH, Clone, compact, expect_opens, open_kinds
from .config import MIB, Sizes
from .ext4loop import Ext4OnLoop
from .inputs import random_file, tree
from .peers import read_through
from .proc import drop_caches, log
from .records import Row

MODES = ("buffered", "direct")
STATES = ("fresh", "hydrated", "reopened", "background")
STATE_LABELS = {"hydrated": "hydrated (FUSE path)",
                "reopened": "hydrated, reopened (kernel passthrough)"}
IMPLS = ("clonefs", "peer", "raw", "pt")
# raw and pt do not hydrate: one run per mode stands for every state
STATELESS = ("raw", "pt")
# the peer has no passthrough: reopened after hydrating, it serves as it did hydrated
SAME_STATE = {("peer", "reopened"): "hydrated"}
WITHIN_RAW = 1.10  # issue 17's goal: every workload within 1.10x of the raw file


@dataclass(frozen=True)
class Lever:
    """A mount option A/B against clonefs's defaults in the same run: the lever's variant runs
    next to clonefs in STATE, through a buffered loop device."""
    impl: str
    flags: Tuple[str, ...]
    state: str
    label: str


LEVERS = (
    # a 4 MiB FUSE readahead instead of the default, the kernel's 128 KiB (fuse/readahead.h)
    Lever("clonefs_ra4m", ("--readahead", "4096"), "hydrated",
          "readahead: clonefs --readahead 4096 vs the default (128 KiB)"),
    # the kernel caching writes (fuse/image_ops.cc): what a CI job's fresh clone would gain
    Lever("clonefs_wb", ("--writeback-cache",), "fresh",
          "writeback cache: clonefs --writeback-cache vs the default (off)"),
)
LEVER_BY_IMPL = {lv.impl: lv for lv in LEVERS}


@dataclass(frozen=True)
class Workload:
    letter: str   # row key 13<letter>
    name: str
    unit: str
    better: str   # "hi" or "lo"

    def label(self, s: Sizes) -> str:
        return self.name.format(untar=s.loop_untar_files, git=s.loop_git_files,
                                tree=s.loop_tree_files, big=s.loop_big_mib, db=s.loop_db_mib)


WORKLOADS = (
    Workload("a", "untar {untar} files of 1-16 KiB + sync", "s", "lo"),
    Workload("b", "git clone of a local repository ({git} files) + sync + git status", "s", "lo"),
    Workload("c", "read every file of a populated tree ({tree} files, find + cat)", "s", "lo"),
    Workload("d", "sequential read of a {big} MiB file (dd 1 MiB)", "MB/s", "hi"),
    Workload("e", "sequential write of a {big} MiB file + fdatasync (dd 1 MiB)", "MB/s", "hi"),
    Workload("f", "fio 4K random read/write 70/30, fsync every 32 writes, {db} MiB file, "
                  "O_DIRECT QD1", "IOPS", "hi"),
)
BY_LETTER = {w.letter: w for w in WORKLOADS}
# Reads first: the writes then go to free space the reads never touch, so every workload of a
# fresh variant meets regions nothing before it copied.
RUN_ORDER = ("c", "d", "f", "a", "b", "e")

SampleKey = Tuple[str, str, str, str]  # workload letter, mode, state, implementation


@dataclass(frozen=True)
class LoopInputs:
    source: str   # the ext4 image
    tar: str      # the tree untarred by workload a
    origin: str   # the repository cloned by workload b


def row_key(letter: str, mode: str, state: str) -> str:
    return "13%s-%s-%s" % (letter, mode[:3], state[:3])


# --- the inputs ------------------------------------------------------------------------------

def git(*args: str, cwd: Optional[str] = None) -> None:
    subprocess.run(["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost",
                    "-c", "init.defaultBranch=main", *args], cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL)


def source_tree(d: str, n: int) -> None:
    """N text files of 200 B-8 KiB in directories of 100, like a source tree, committed."""
    rng = random.Random(17)
    os.makedirs(d)
    for i in range(n):
        sub = os.path.join(d, "m%02d" % (i // 100))
        os.makedirs(sub, exist_ok=True)
        with open(os.path.join(sub, "f%04d.c" % i), "w") as f:
            f.write("".join("%08x\n" % rng.getrandbits(32) for _ in range(rng.randint(22, 900))))
    git("init", "-q", d)
    git("add", "-A", cwd=d)
    git("commit", "-q", "-m", "tree", cwd=d)


def make_inputs(work: str, s: Sizes) -> LoopInputs:
    j = lambda n: os.path.join(work, n)  # noqa: E731
    i = LoopInputs(source=j("loop-source.img"), tar=j("loop-tree.tar"), origin=j("loop-origin"))
    if os.path.exists(i.origin):  # made by an earlier phase of this run
        return i
    stage = j("loop-stage")
    os.makedirs(stage)
    try:
        tree(os.path.join(stage, "tree"), s.loop_tree_files)
        random_file(os.path.join(stage, "big"), s.loop_big_mib * MIB)
        random_file(os.path.join(stage, "db"), s.loop_db_mib * MIB)
        subprocess.run(["mkfs.ext4", "-q", "-F", "-d", stage, "-E",
                        "nodiscard,lazy_itable_init=0,lazy_journal_init=0", i.source,
                        "%dM" % s.loop_image_mib], check=True)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    os.chmod(i.source, 0o444)
    t = j("loop-untar")
    tree(t, s.loop_untar_files)
    subprocess.run(["tar", "-C", t, "-cf", i.tar, "."], check=True)
    shutil.rmtree(t)
    source_tree(i.origin, s.loop_git_files)
    os.sync()
    return i


# --- the workloads on a mounted filesystem -----------------------------------------------------

def timed(cmds: Sequence[Sequence[str]], **kw) -> float:
    t0 = time.monotonic()
    for c in cmds:
        subprocess.run(list(c), check=True, **kw)
    return time.monotonic() - t0


def run_workload(ctx, letter: str, mnt: str, li: LoopInputs) -> float:
    """One workload on the filesystem at MNT, cold; its figure in the workload's unit."""
    s = ctx.sizes
    big = s.loop_big_mib * MIB
    drop_caches()
    if letter == "a":
        os.mkdir(os.path.join(mnt, "untar"))
        return timed([["tar", "-C", os.path.join(mnt, "untar"), "-xf", li.tar],
                      ["sync", "-f", mnt]])
    if letter == "b":
        repo = os.path.join(mnt, "repo")
        return timed([["git", "clone", "-q", "file://" + li.origin, repo], ["sync", "-f", mnt],
                      ["git", "-C", repo, "status", "--porcelain"]], stdout=subprocess.DEVNULL)
    if letter == "c":
        return timed([["sh", "-c", 'find "$1" -type f -exec cat {} + >/dev/null', "sh",
                       os.path.join(mnt, "tree")]])
    if letter == "d":
        return big / 1e6 / timed([["dd", "if=" + os.path.join(mnt, "big"), "of=/dev/null",
                                   "bs=1M", "status=none"]])
    if letter == "e":
        return big / 1e6 / timed([["dd", "if=/dev/zero", "of=" + os.path.join(mnt, "written"),
                                   "bs=1M", "count=%d" % s.loop_big_mib, "conv=fdatasync",
                                   "status=none"]])
    if letter == "f":
        r = ctx.fio.run("--filename=" + os.path.join(mnt, "db"), "--rw=randrw",
                        "--rwmixread=70", "--bs=4k", "--ioengine=psync", "--direct=1",
                        "--fsync=32", "--runtime=%d" % s.loop_db_s, "--time_based",
                        "--size=%d" % (s.loop_db_mib * MIB))
        return r.read.iops + r.write.iops
    raise ValueError("no loop workload " + letter)


# --- the images --------------------------------------------------------------------------------

@contextlib.contextmanager
def background_read(ctx, image: str) -> Iterator[None]:
    """The peer's hydration: a dd reading its copy-on-read export, stopped when the block ends."""
    p = ctx.runlog.popen(["dd", "if=" + image, "of=/dev/null", "bs=1M", "iflag=direct"])
    try:
        yield
    finally:
        if p.poll() is None:
            p.terminate()
        p.wait()


@contextlib.contextmanager
def source_copy(ctx, source: str, name: str) -> Iterator[str]:
    path = ctx.path(name)
    subprocess.run(["cp", "--sparse=always", source, path], check=True)
    try:
        yield path
    finally:
        os.unlink(path)


@contextlib.contextmanager
def image(ctx, impl: str, state: str, source: str) -> Iterator[str]:
    """The image file of IMPL in STATE for the length of the block."""
    name = "loop_%s_%s" % (impl, state)
    if impl == "raw":
        with source_copy(ctx, source, name) as path:
            yield path
    elif impl == "pt":
        with source_copy(ctx, source, name + ".backing") as backing, \
                ctx.pt(backing, name) as pt:
            yield pt.image
    elif is_clonefs(impl):
        with Clone(ctx.clonefs, source, ctx.path(name)) as c:
            c.create()
            c.mount(*(() if state == "background" else ("--no-hydration",)),
                    *(LEVER_BY_IMPL[impl].flags if impl in LEVER_BY_IMPL else ()))
            if state == "hydrated":
                with c.held_open():
                    ctx.clonefs.hydrate(c.image)
                    yield c.image
            elif state == "reopened":
                ctx.clonefs("hydrate", c.image, "--resume", "--wait")
                c.await_passthrough("13 %s %s" % (impl, state))
                yield c.image
            else:
                yield c.image
            st = c.status()
            log("loop %s %s: regions_valid %s/%s at the end, counters %s"
                % (impl, state, st["regions_valid"], st["regions_total"], compact(st["counters"])))
    elif impl == "peer":
        with ctx.peer(source, name, "nocor" if state == "fresh" else "cor") as p:
            if state == "hydrated":
                read_through(p.image)
            if state == "background":
                with background_read(ctx, p.image):
                    yield p.image
            else:
                yield p.image
    else:
        raise ValueError("no implementation " + impl)


def is_clonefs(impl: str) -> bool:
    return impl == "clonefs" or impl in LEVER_BY_IMPL


def open_kind(impl: str, state: str) -> Optional[str]:
    """The kind of open clonefs's IMPL in STATE must give the loop device (None: not clonefs)."""
    if not is_clonefs(impl):
        return None
    return PASSTHROUGH if state == "reopened" else FUSE_PATH


def variants(mode: str) -> List[Tuple[str, str]]:
    """(implementation, state) in the order of one repeat: peers next to each other; buffered,
    each lever's other side next to clonefs in the lever's state."""
    out = [("raw", "fresh"), ("pt", "fresh")]
    for state in STATES:
        out += [("clonefs", state)] + ([] if ("peer", state) in SAME_STATE else [("peer", state)])
        if mode == "buffered":
            out += [(lv.impl, state) for lv in LEVERS if lv.state == state]
    return out


def run_variant(ctx, li: LoopInputs, impl: str, state: str, mode: str,
                samples: Dict[SampleKey, List[float]]) -> None:
    """The workloads on IMPL's image in STATE through a loop device in MODE, then e2fsck -fn of
    the image: a workload that fails, or a filesystem left inconsistent, is noted (the variant
    loses its figures from there on) and the suite goes on with the next variant."""
    where = "%s %s %s" % (impl, state, mode)
    with image(ctx, impl, state, li.source) as img:
        mnt = ctx.path("mnt.loop")
        try:
            with Ext4OnLoop(img, mnt, ctx.runlog, mkfs=False, direct_io=(mode == "direct")):
                kind = open_kind(impl, state)
                if kind:  # not a figure of the wrong path: the phase fails instead
                    log("loop %s: %s" % (where, open_kinds(expect_opens(img, kind, "13 " + where))))
                for letter in RUN_ORDER:
                    v = run_workload(ctx, letter, mnt, li)
                    samples.setdefault((letter, mode, state, impl), []).append(v)
                    log("loop %s %s: %.3f %s" % (where, letter, v, BY_LETTER[letter].unit))
        except subprocess.CalledProcessError as e:
            ctx.note("13 %s: %s failed (exit %d); the variant's later workloads are missing"
                     % (where, " ".join(e.cmd[:2]), e.returncode))
        fsck = ctx.runlog.run(["e2fsck", "-fn", img], check=False)
        if fsck.returncode != 0:
            ctx.note("13 %s: e2fsck -fn of the image after the workloads exit %d (inconsistent"
                     " filesystem; details in run.log)" % (where, fsck.returncode))


def loop_suite(ctx, r) -> object:
    """Workload 13: every variant, both loop modes, LOOP_REPEATS times interleaved."""
    t0 = time.monotonic()
    li = make_inputs(ctx.work, ctx.sizes)
    ctx.note("13: inputs (ext4 source image %d MiB, tar, git origin) made in %.1f s"
             % (ctx.sizes.loop_image_mib, time.monotonic() - t0))
    for rep in range(ctx.sizes.loop_repeats):
        for mode in MODES:
            for impl, state in variants(mode):
                run_variant(ctx, li, impl, state, mode, r.samples)
        log("loop: repeat %d done" % (rep + 1))
    for line in summary(rows(r, ctx.sizes)) + [lever_line(r.samples, lv) for lv in LEVERS]:
        ctx.note(line)
    return r


def lever_line(samples: Dict[SampleKey, List[float]], lever: Lever) -> str:
    """A lever's medians, workload by workload, against clonefs's defaults; and the raw file's
    (the floor), so the line tells how much of the gap the lever closes."""
    parts = []
    for w in WORKLOADS:
        a = figure(samples, w.letter, "buffered", lever.state, lever.impl)
        b = figure(samples, w.letter, "buffered", lever.state, "clonefs")
        raw = figure(samples, w.letter, "buffered", lever.state, "raw")
        if a is not None and b is not None:
            parts.append("13%s %.3g vs %.3g %s (%.2fx; raw %s)"
                         % (w.letter, a, b, w.unit, 1 / slowdown(a, b, w.better),
                            "%.3g" % raw if raw is not None else "-"))
    return ("13 lever %s (buffered, %s, medians): %s"
            % (lever.label, lever.state, "; ".join(parts) or "not measured"))


# --- the report ----------------------------------------------------------------------------

def figure(samples: Dict[SampleKey, List[float]], letter: str, mode: str, state: str,
           impl: str) -> Optional[float]:
    state = "fresh" if impl in STATELESS else SAME_STATE.get((impl, state), state)
    v = samples.get((letter, mode, state, impl))
    return median(v) if v else None


def rows(r, s: Sizes) -> list:
    out = []
    for w in WORKLOADS:
        for mode in MODES:
            for state in STATES:
                f = lambda impl: figure(r.samples, w.letter, mode, state, impl)  # noqa: E731
                out.append(Row(row_key(w.letter, mode, state),
                               "loop %s, %s: %s" % (mode, STATE_LABELS.get(state, state),
                                                    w.label(s)), w.unit, w.better,
                               f("clonefs"), f("peer"), f("raw"), f("pt")))
    return out


def slowdown(value: Optional[float], floor: Optional[float], better: str) -> Optional[float]:
    """How many times slower than FLOOR VALUE is (1.0 = level), whatever the unit's direction."""
    if not value or not floor:
        return None
    return floor / value if better == "hi" else value / floor


def summary(loop_rows: Sequence) -> List[str]:
    """The issue's goal, row by row: within 1.10x of raw, ahead of the peer; where a row misses
    raw, whether the passthrough (any FUSE file) misses it too."""
    measured = [r for r in loop_rows if r.clonefs is not None and r.raw is not None]
    if not measured:
        return ["13: no loop row measured"]
    near_raw, ahead, fuse_bound = [], [], []
    missed = []
    for r in measured:
        x = slowdown(r.clonefs, r.raw, r.better)
        if x <= WITHIN_RAW:
            near_raw.append(r.key)
        else:
            pt = slowdown(r.pt, r.raw, r.better)
            if pt is not None and pt > WITHIN_RAW:
                fuse_bound.append(r.key)
            missed.append("%s %.2fx%s" % (r.key, x, "" if pt is None else " (pt %.2fx)" % pt))
        p = slowdown(r.clonefs, r.peer, r.better)
        if p is not None and p < 1:
            ahead.append(r.key)
    return [
        "13: within %.2fx of raw in %d of %d rows; missed: %s" % (
            WITHIN_RAW, len(near_raw), len(measured), ", ".join(missed) or "none"),
        "13: of the missed rows, the passthrough FUSE file misses raw too in %d: %s" % (
            len(fuse_bound), ", ".join(fuse_bound) or "none"),
        "13: ahead of the peer in %d of %d rows; not ahead: %s" % (
            len(ahead), len(measured),
            ", ".join(r.key for r in measured if r.key not in ahead) or "none"),
    ]
