"""Row 14 (issue 28) in the report: a table per delay and number of clones with each way's
figures and clonefs's ratios against the peers, then issue 28's goals, each met or missed."""
from typing import List, Optional, Sequence, Tuple

from .fleet_net import DELAY_HOW
from .records import Fleet
from .report import fmt, ratio

F = Optional[float]
PEERS = (("curl", "curl + loop"), ("nbdkit", "nbdkit curl + cow + nbdfuse"))
METRIC_NAMES = (
    ("first", "create to the first file read in the guest ext4 (slowest runner)", "s"),
    ("create", "  of which `clonefs create` (slowest runner)", "s"),
    ("mount", "  of which `clonefs mount` (slowest runner)", "s"),
    ("replay", "find /usr -type f \\| xargs cat, all runners at once (slowest)", "s"),
    ("hydrate", "start to every byte of the golden local (slowest runner)", "s"),
    ("fetched", "bytes sent by nginx for all runners together", "MiB"),
    ("rss", "peak RSS (VmHWM) of the processes serving one mount (largest)", "MiB"),
)
GOAL_DELAY = 10
FLEET_N = 8


def measured(rec: Fleet, axis: int) -> List[int]:
    """The delays (AXIS 0) or numbers of clones (AXIS 1) with any figure, ascending."""
    return sorted({k[axis] for k in rec.figures})


def table(rec: Fleet, delay: int, n: int) -> List[str]:
    names, short = [p[1] for p in PEERS], [p[0] for p in PEERS]
    out = ["| %d ms, N = %d | unit | clonefs | %s | clonefs ÷ %s |"
           % (delay, n, " | ".join(names), " | clonefs ÷ ".join(short)),
           "|---|---|--:|" + "--:|" * (2 * len(PEERS))]
    for metric, name, unit in METRIC_NAMES:
        cf = rec.figures.get((delay, n, metric, "clonefs"))
        peers = [rec.figures.get((delay, n, metric, p)) for p, _ in PEERS]
        cf_cell = "not available" if "clonefs" in rec.unavailable else fmt(cf)
        out.append("| %s | %s ↓ | %s | %s | %s |" % (
            name, unit, cf_cell, " | ".join(fmt(v) for v in peers),
            " | ".join(ratio(cf, v) for v in peers)))
    return out


def fleet_n(ns: Sequence[int]) -> Optional[int]:
    """The fleet the goals compare with one clone: 8, else the largest N above 1 measured."""
    bigger = [n for n in ns if n > 1]
    if FLEET_N in bigger:
        return FLEET_N
    return max(bigger) if bigger else None


Goal = Tuple[str, Optional[float], str, float]  # description, measured, "<=" or ">=", threshold


def goals(rec: Fleet) -> List[Goal]:
    """Issue 28's goals, from the figures (None: not measured)."""
    fig = lambda d, n, m, i="clonefs": rec.figures.get((d, n, m, i))  # noqa: E731
    div = lambda a, b: None if a is None or not b else a / b  # noqa: E731
    out: List[Goal] = []
    ns = measured(rec, 1) or [1]
    for n in ns:
        out.append(("first file read within 1 s of create at %d ms, N = %d" % (GOAL_DELAY, n),
                    fig(GOAL_DELAY, n, "first"), "<=", 1.0))
    big = fleet_n(ns)
    for d in measured(rec, 0) or [GOAL_DELAY]:
        label = "N = %s" % (big if big else "8 (not run)")
        out.append(("replay at %s no worse than 1.5x one clone's, %d ms" % (label, d),
                    div(fig(d, big, "replay"), fig(d, 1, "replay")), "<=", 1.5))
        out.append(("bytes fetched at %s <= 1.1x one clone's, %d ms" % (label, d),
                    div(fig(d, big, "fetched"), fig(d, 1, "fetched")), "<=", 1.1))
    for n in ns:
        # rate >= 0.8x curl's rate  <=>  curl's time / clonefs's time >= 0.8
        out.append(("hydration rate at %d ms >= 0.8x curl's, N = %d" % (GOAL_DELAY, n),
                    div(fig(GOAL_DELAY, n, "hydrate", "curl"), fig(GOAL_DELAY, n, "hydrate")),
                    ">=", 0.8))
    return out


def starvation(rec: Fleet) -> List[str]:
    """Issue 28 item 4: does hydration starve the jobs' on-demand reads? The replay of one job
    alone without hydration against the same job while its neighbours hydrate."""
    fig = lambda d, n, i: rec.figures.get((d, n, "replay", i))  # noqa: E731
    rows = []
    for d in measured(rec, 0):
        alone = fig(d, 1, "clonefs_quiet")
        for n in measured(rec, 1):
            cells = (fig(d, n, "clonefs_quiet"), fig(d, n, "clonefs"), fig(d, n, "clonefs_solo"))
            if cells[0] is None and cells[2] is None:
                continue
            rows.append("| %d ms, N = %d | %s | %s |" % (
                d, n, " | ".join(fmt(c) for c in cells), ratio(cells[2], alone)))
    if not rows:
        return []
    return ["", "Hydration and the jobs' on-demand reads (issue 28 item 4): the replay (s ↓) of "
            "N clones with --no-hydration, of N clones hydrating (all replaying, so each "
            "throttles its own hydration), and of one clone replaying while its N - 1 "
            "neighbours hydrate unthrottled; the last column is that one ÷ one clone alone "
            "without hydration.", "",
            "| link, N | all replay, no hydration | all replay, hydrating | one replays, "
            "N - 1 hydrate | ÷ one alone |", "|---|--:|--:|--:|--:|"] + rows


def verdict(value: F, op: str, threshold: float) -> str:
    if value is None:
        return "not measured"
    ok = value <= threshold if op == "<=" else value >= threshold
    by_how = (value / threshold) if op == ">=" else (threshold / value if value else float("inf"))
    return ("met" if ok else "MISSED") + " (%.2fx of the target)" % by_how


def render(rec: Fleet) -> List[str]:
    """The fleet section of the report; [] when row 14 did not run."""
    if not rec.figures and not rec.unavailable:
        return []
    out = ["", "### 14: a fleet cloning one golden over HTTP (issue 28)", "",
           "Golden: ext4 of %s MiB (%s MiB of files, localhost/debian:12's root), served by nginx;"
           " %s. ↓ = lower is better; ratios are clonefs ÷ peer." % (
               fmt(rec.golden_mib), fmt(rec.files_mib), DELAY_HOW), ""]
    for d in measured(rec, 0):
        for n in measured(rec, 1):
            out += table(rec, d, n) + [""]
    out += ["| issue 28 goal | measured | verdict |", "|---|--:|---|"]
    for desc, value, op, thr in goals(rec):
        shown = "—" if value is None else ("%s s" % fmt(value) if desc.startswith("first")
                                           else "%.2fx" % value)
        out.append("| %s | %s | %s |" % (desc, shown, verdict(value, op, thr)))
    out += starvation(rec)
    if "clonefs" in rec.unavailable:
        out.append("")
        out.append("clonefs: " + rec.unavailable["clonefs"])
    return out
