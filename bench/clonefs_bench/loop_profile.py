"""Where the time of two loop workloads goes (issue 17), as the fsync profile (row 5a) does it:
the clonefs daemon's syscalls under `strace -f -y -T` while ext4 on a buffered loop device over
the image (1) reads the large file, hydrated, per MiB read, and (2) untars the small files and
syncs, fresh, per file. strace slows every call: the counts and the shares matter, not the
speed. Reads of /dev/fuse include the time a worker waits for a request, so their time is the
idle time of the FUSE threads, not work."""
import os

from .clonefs import live_status
from .config import MIB
from .ext4loop import Ext4OnLoop
from .loop import image, make_inputs, run_workload
from .strace import syscall_costs, traced

TRACED = "trace=read,write,readv,writev,pread64,pwrite64,preadv,pwritev,fdatasync,fsync,fallocate"


def loop_profile(ctx, r):
    li = make_inputs(ctx.work, ctx.sizes)
    s = ctx.sizes
    for what, state, letter, ops, unit in (
            ("read", "hydrated", "d", s.loop_big_mib, "MiB read"),
            ("untar", "fresh", "a", s.loop_untar_files, "file")):
        st = ctx.path("loop-%s.strace" % what)
        with image(ctx, "clonefs", state, li.source) as img:
            mnt = ctx.path("mnt.loop")
            with Ext4OnLoop(img, mnt, ctx.runlog, mkfs=False):
                with traced(ctx.runlog, int(live_status(img)["pid"]), st, TRACED):
                    figure = run_workload(ctx, letter, mnt, li)
        with open(st) as lines:
            costs = syscall_costs(lines, ops)
        os.unlink(st)
        setattr(r, what, costs)
        ctx.note("13 profile, loop buffered, %s %s (%.3f under strace), per %s: %s"
                 % (state, what, figure, unit, "; ".join(str(c) for c in costs)))
    return r
