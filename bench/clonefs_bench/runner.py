"""Runs the selected workloads one after another; a failing workload loses only its own rows."""
import time
import traceback
from typing import List

from .proc import log
from .records import Results
from .workloads import PHASES, Context


def selected(only: str) -> list:
    """--only WORD: the phases whose name contains WORD (all for "")."""
    return [p for p in PHASES if only in p.name]


def run_phases(ctx: Context, results: Results, only: str) -> List[str]:
    """Fills RESULTS; returns the names of the phases that failed. Ctrl-C propagates (after every
    `with` block inside the workload has released what it held)."""
    failed = []
    for phase in selected(only):
        log("=== " + phase.name)
        t0 = time.monotonic()
        try:
            phase.run(ctx, getattr(results, phase.record))
        except Exception as e:  # noqa: BLE001 — any failure skips only this phase
            log("".join(traceback.format_exception_only(type(e), e)).strip())
            log("last lines of %s:\n%s" % (ctx.runlog.path, ctx.runlog.tail(5)))
            failed.append(phase.name)
            ctx.note("phase '%s' FAILED (%s); its rows are missing — see the log lines above"
                     % (phase.name, type(e).__name__))
        else:
            log("=== %s done in %.3f s" % (phase.name, time.monotonic() - t0))
    return failed
