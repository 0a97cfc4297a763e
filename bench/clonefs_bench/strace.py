"""Where the time of a workload goes: per-operation syscall costs from a `strace -f -y -T` log."""
import os
import re
from dataclasses import dataclass
from typing import Iterable, List

_LINE = re.compile(r"(\w+)\(\d+<([^>]*)>.*<(\d+\.\d+)>$")

# The daemon's files by what they are to clonefs (names as workloads.clone() makes them).
_ROLES = {"dest": "destination", "meta-wal": "SQLite WAL", "meta": "SQLite database",
          "meta-shm": "SQLite shm", "source.img": "source", "loop-source.img": "source",
          "fuse": "/dev/fuse"}


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
    for line in lines:
        m = _LINE.search(line.rstrip())
        if m:
            k = (m.group(1), file_role(m.group(2)))
            n, t = total.get(k, (0, 0.0))
            total[k] = (n + 1, t + float(m.group(3)))
    costs = [SyscallCost(call, role, n / ops, t * 1e6 / ops)
             for (call, role), (n, t) in sorted(total.items(), key=lambda kv: -kv[1][1])]
    return [c for c in costs if c.us_per_op >= 1]
