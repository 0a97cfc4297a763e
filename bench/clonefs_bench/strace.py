"""Where the time of a workload goes: per-operation syscall costs from a `strace -f -y -T` log."""
import contextlib
import os
import re
import subprocess
import time
from dataclasses import dataclass
from typing import Iterable, List

_LINE = re.compile(r"(\w+)\(\d+<([^>]*)>.*<(\d+\.\d+)>$")
# strace -f splits a call that another thread interrupts: "PID call(fd<path>, <unfinished ...>"
# then "PID <... call resumed>...) = N <secs>". Blocking calls (a FUSE worker's read of
# /dev/fuse) are mostly split: without pairing the halves they would be undercounted.
_UNFINISHED = re.compile(r"^(\d+)\s+(\w+)\(\d+<([^>]*)>.*<unfinished \.\.\.>$")
_RESUMED = re.compile(r"^(\d+)\s+<\.\.\. (\w+) resumed>.*<(\d+\.\d+)>$")

# The daemon's files by what they are to clonefs (names as workloads.clone() makes them).
_ROLES = {"dest": "destination", "meta-wal": "SQLite WAL", "meta": "SQLite database",
          "meta-shm": "SQLite shm", "source.img": "source", "loop-source.img": "source",
          "fuse": "/dev/fuse"}


@contextlib.contextmanager
def traced(runlog, pid: int, out: str, calls: str):
    """strace -f -y -T of process PID's CALLS ("trace=...") into OUT while the block runs."""
    sp = runlog.popen(["strace", "-f", "-y", "-T", "-p", str(pid), "-o", out, "-e", calls])
    try:
        time.sleep(1)  # attached to every thread
        yield
    finally:
        sp.send_signal(2)  # SIGINT: strace detaches and flushes its log
        try:
            sp.wait(30)
        except subprocess.TimeoutExpired:
            sp.kill()
            sp.wait()


def file_role(path: str) -> str:
    base = os.path.basename(path)
    return _ROLES.get(base, base)


@dataclass(frozen=True)
class SyscallCost:
    call: str
    role: str
    calls_per_op: float
    us_per_op: float

    def __str__(self) -> str:
        return "%s(%s): %.2f calls, %.0f us per op" % (self.call, self.role, self.calls_per_op,
                                                       self.us_per_op)


def syscall_costs(lines: Iterable[str], ops: int) -> List[SyscallCost]:
    """One entry per (syscall, file) costing at least 1 us per user operation, biggest first."""
    total = {}
    pending = {}  # pid -> (call, role) of its unfinished call

    def add(k, secs: float) -> None:
        n, t = total.get(k, (0, 0.0))
        total[k] = (n + 1, t + secs)

    for line in lines:
        line = line.rstrip()
        u = _UNFINISHED.search(line)
        if u:
            pending[u.group(1)] = (u.group(2), file_role(u.group(3)))
            continue
        r = _RESUMED.search(line)
        if r:
            k = pending.pop(r.group(1), None)
            if k is not None and k[0] == r.group(2):
                add(k, float(r.group(3)))
            continue
        m = _LINE.search(line)
        if m:
            add((m.group(1), file_role(m.group(2))), float(m.group(3)))
    costs = [SyscallCost(call, role, n / ops, t * 1e6 / ops)
             for (call, role), (n, t) in sorted(total.items(), key=lambda kv: -kv[1][1])]
    return [c for c in costs if c.us_per_op >= 1]
