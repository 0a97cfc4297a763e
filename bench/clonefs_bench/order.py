"""Issue 13: what hydration copies first. A slow source — the order input (4 GiB) exported by
nbdkit on a unix socket with --filter=delay adding 2 ms to every read request — hydration
rate-limited so that a full copy takes about a minute, and a recorded workload — whole "files"
(512 KiB, read in 128 KiB O_DIRECT reads) at scattered offsets, about 5% of the image, in a
fixed order, as a boot or a job start reads — replayed 1 s after mount on fresh clones:
(a) address order (--no-priority), (b) on-demand priority (the default), (c) a profile recorded
by the same workload on another clone (--profile), (d) a fully hydrated clone (the floor: cold,
its destination out of the page cache, then again warm, as the regions (b) and (c) hydrate
during their replay are); and
(a), (b) again with a reader that pauses THINK_MS between two reads of a file, and (b), (c) again
without the rate limit (what the limit costs them). After the replay
(a), (b) and (c) run on until every region is valid: the full hydration time, from the mount.
Each variant runs `repeats` times, interleaved, and reports medians."""
import mmap
import os
import random
import time
from statistics import median_low
from typing import Callable, List, Tuple

from . import records as R
from .clonefs import Clone
from .nbd import NBD_HYDRATION, NbdKit
from .proc import drop_caches, log

DELAY_MS = 2
FILE_BYTES = 512 << 10
READ_BYTES = 128 << 10
SHARE = 0.05
FULL_COPY_S = 60
THINK_MS = 5  # rows 12e/12f: the reader's pause between two reads of a file


def workload(size: int, seed: int = 13) -> List[Tuple[int, int]]:
    """(offset, length) reads: whole files at scattered 64 KiB-aligned offsets, in file order."""
    rng = random.Random(seed)
    files = max(1, int(size * SHARE) // FILE_BYTES)
    slots = size // FILE_BYTES
    offsets = [s * FILE_BYTES for s in rng.sample(range(slots), files)]
    reads = []
    for off in offsets:
        for part in range(0, FILE_BYTES, READ_BYTES):
            reads.append((off + part, READ_BYTES))
    return reads


def replay(image: str, reads: List[Tuple[int, int]], think_s: float = 0) -> float:
    """Seconds to run the reads, O_DIRECT (no page cache, no kernel readahead: the reads the
    workload makes are the reads clonefs sees), pausing `think_s` after each read that does not
    end a file."""
    buf = mmap.mmap(-1, READ_BYTES)
    fd = os.open(image, os.O_RDONLY | os.O_DIRECT)
    try:
        t0 = time.monotonic()
        for off, length in reads:
            if os.preadv(fd, [memoryview(buf)[:length]], off) != length:
                raise RuntimeError("short read of %s at %d" % (image, off))
            if think_s and (off + length) % FILE_BYTES:
                time.sleep(think_s)
        return time.monotonic() - t0
    finally:
        os.close(fd)
        buf.close()


def wait_complete(c: Clone, since: float, limit_s: float) -> float:
    """Seconds from SINCE until the status says every region is valid (polled every 50 ms)."""
    while not c.status().get("complete"):
        if time.monotonic() - since > limit_s:
            raise RuntimeError("hydration of %s not complete after %.0f s" % (c.image, limit_s))
        time.sleep(0.05)
    return time.monotonic() - since


def hydration_order(ctx, r: R.HydrationOrder) -> R.HydrationOrder:
    source = ctx.inputs.order
    size = os.stat(source).st_size
    reads = workload(size)
    replay_bytes = sum(n for _, n in reads)
    rate = max(1 << 20, size // FULL_COPY_S)
    r.replay_mib, r.rate_mib_s = replay_bytes / (1 << 20), rate / (1 << 20)
    profile = ctx.path("order.profile")
    with NbdKit(source, ctx.path("order_nbd"), DELAY_MS, ctx.runlog) as slow:
        # The profile: the workload recorded once on a clone of the same (slow) source.
        with Clone(ctx.clonefs, slow.uri, ctx.path("cf_order_rec")) as c:
            c.create()
            c.mount("--no-hydration", "--record-profile", profile)
            replay(c.image, reads)
        fig = {k: [] for k in ("address", "priority", "profile", "hydrated", "hydrated_warm",
                               "address_think",
                               "priority_think", "priority_unlimited", "profile_unlimited")}

        def variant(name: str, flags: Tuple[str, ...], prepare: Callable[[Clone], None],
                    think_s: float = 0, full: bool = False):
            with Clone(ctx.clonefs, slow.uri, ctx.path("cf_order_" + name)) as c:
                c.create()
                drop_caches()  # the NBD server's page cache too: every variant reads it cold
                mounted_at = time.monotonic()
                c.mount(*flags)
                prepare(c)
                before = c.status()["counters"]["bytes_fell_through"]
                seconds = replay(c.image, reads, think_s)
                s = c.status()
                fell = s["counters"]["bytes_fell_through"] - before
                full_s = wait_complete(c, mounted_at, 20 * FULL_COPY_S) if full else None
                fig[name].append((seconds, 1 - fell / replay_bytes, full_s))
                if name == "hydrated":  # again, warm: the destination's pages are cached now
                    fig["hydrated_warm"].append((replay(c.image, reads), 1.0, None))
                log("order %s: replay %.3f s, %.1f%% from the destination%s; counters %s"
                    % (name, seconds, 100 * (1 - fell / replay_bytes),
                       "" if full_s is None else ", complete %.1f s after mount" % full_s,
                       s["counters"]))

        def after_a_second(_: Clone) -> None:
            time.sleep(1)

        def fully(c: Clone) -> None:
            ctx.clonefs("hydrate", c.image, "--rate", "0", *NBD_HYDRATION)
            ctx.clonefs("hydrate", c.image, "--wait")
            drop_caches()

        limited = ("--rate", str(rate))
        for _ in range(ctx.sizes.cold_repeats):
            variant("address", limited + ("--no-priority",), after_a_second, full=True)
            variant("priority", limited, after_a_second, full=True)
            variant("profile", limited + ("--profile", profile), after_a_second, full=True)
            variant("hydrated", (), fully)
            variant("address_think", limited + ("--no-priority",), after_a_second,
                    THINK_MS / 1000)
            variant("priority_think", limited, after_a_second, THINK_MS / 1000)
            variant("priority_unlimited", ("--rate", "0"), after_a_second)
            variant("profile_unlimited", ("--rate", "0", "--profile", profile), after_a_second)
    for name in fig:
        v: R.OrderVariant = getattr(r, name)
        v.replay_s = median_low([s for s, _, _ in fig[name]])
        v.dest_share = median_low([d for _, d, _ in fig[name]])
        fulls = [f for _, _, f in fig[name] if f is not None]
        v.full_s = median_low(fulls) if fulls else None
    ctx.note("issue 13: %d reads of %d KiB (%.0f MiB, %.1f%% of the %d MiB image) in %d KiB files;"
             " source: nbdkit file over a unix socket, --filter=delay %d ms per read request;"
             " hydration limited to %.1f MiB/s; replay 1 s after mount; medians of %d, variants"
             " interleaved" % (len(reads), READ_BYTES >> 10, r.replay_mib,
                               100 * replay_bytes / size, size >> 20, FILE_BYTES >> 10, DELAY_MS,
                               r.rate_mib_s, ctx.sizes.cold_repeats))
    return r
