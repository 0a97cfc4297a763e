"""The report: the rows of the table built from the records, the markdown table, the targets."""
from typing import List, Optional, Sequence

from .config import DEFAULT_KNOB, KNOBS, Sizes
from .loop import rows as loop_rows, slowdown
from .nbd import rows as nbd_rows
from .records import Results, Row

F = Optional[float]


def fmt(v: F) -> str:
    if v is None:
        return "—"
    if abs(v) >= 1000:
        return "{:,.0f}".format(v)
    if abs(v) >= 100:
        return "%.0f" % v
    if abs(v) >= 10:
        return "%.1f" % v
    return "%.3g" % v if abs(v) >= 0.01 else "%.4f" % v


def ratio(a: F, b: F) -> str:
    if a is None or b is None or b == 0:
        return "—"
    return "%.2fx" % (a / b)


def build_rows(res: Results, s: Sizes) -> List[Row]:
    u, raw, peer = res.cf_untouched, res.raw, res.peer_untouched
    cor, hyd, ph = res.cf_cor, res.cf_hydrated, res.peer_hydrated
    cf, pt, pio = hyd.cf, hyd.pt, ph.io
    sp, tar, t, lat = res.sparse, res.untar, res.tera, res.latency
    kc = res.kernel_copy
    kc_big = "%.0f GiB" % kc.big_gib if kc.big_gib else "big"
    rows = [
        Row("1a", "Seq read 1 MiB, never touched (fall-through), cold; peer = cor", "MB/s", "hi", u.seq1, peer.seq1, raw.seq),
        Row("1b", "  CoR off (default): first read, cold; peer = nocor", "MB/s", "hi", u.seq1, peer.nc_seq1, raw.seq),
        Row("1c", "  CoR off: second read of the same range, cold; peer = nocor", "MB/s", "hi", u.seq2, peer.nc_seq2, raw.seq),
        Row("1d", "  CoR on (--copy-on-read): first read, cold; peer = cor", "MB/s", "hi", cor.seq1, peer.seq1, raw.seq),
        Row("1e", "  CoR on: second read of the same range, cold; peer = cor", "MB/s", "hi", cor.seq2, peer.seq2, raw.seq),
        Row("2a", "Seq read 1 MiB, fully hydrated, cold", "MB/s", "hi", cf.hseq_cold, pio.hseq_cold, raw.seq, pt.hseq_cold),
        Row("2b", "Seq read 1 MiB, fully hydrated, warm (raw: buffered, page cache)", "MB/s", "hi", cf.hseq_warm, pio.hseq_warm, raw.seq_warm, pt.hseq_warm),
        Row("2c", "Seq read 1 MiB, fully hydrated, cold, buffered (no O_DIRECT: kernel readahead)", "MB/s", "hi", cf.hseq_buf, pio.hseq_buf, raw.seq, pt.hseq_buf),
        Row("2d", "  ceiling: the disk — source file, 4 MiB O_DIRECT reads, 8 in flight, cold", "MB/s", "hi", None, pio.hseq_cold, raw.disk_seq),
        Row("2e", "  lever splice: passthrough replying by splice from the destination (SPLICE_WRITE), cold", "MB/s", "hi", cf.hseq_cold, None, None, hyd.pts_hseq_cold),
        Row("2f", "  lever splice: the same, warm", "MB/s", "hi", cf.hseq_warm, None, None, hyd.pts_hseq_warm),
        Row("3a", "4K randread QD1, never touched, cold (libaio direct)", "IOPS", "hi", u.rr1, peer.rr1, raw.rr1),
        Row("3b", "4K randread QD16, never touched, cold (libaio direct)", "IOPS", "hi", u.rr16, peer.rr16, raw.rr16),
        Row("3c", "4K randread QD1, hydrated, cold (libaio direct)", "IOPS", "hi", cf.hrr1, pio.hrr1, raw.rr1, pt.hrr1),
        Row("3d", "4K randread QD16, hydrated, cold (libaio direct)", "IOPS", "hi", cf.hrr16, pio.hrr16, raw.rr16, pt.hrr16),
        Row("4a", "4K randwrite QD16 into never-touched regions (1 write/region, random order)", "IOPS", "hi", u.w, peer.w, raw.wfresh),
        Row("4b", "4K randwrite QD16 into hydrated regions", "IOPS", "hi", cf.hw, pio.hw, raw.w, pt.hw),
        Row("4c", "  lever splice: passthrough taking writes by splice (SPLICE_READ + write_buf)", "IOPS", "hi", cf.hw, None, None, hyd.ptsr_hw),
        Row("5a", "4K randwrite + fsync each, QD1, never-touched regions (commit path)", "IOPS", "hi", res.cf_fsync.f, peer.f, raw.ffresh),
        Row("5b", "4K randwrite + fsync each, QD1, hydrated regions", "IOPS", "hi", cf.hf, pio.hf, raw.f, pt.hf),
        Row("5c", "  ceiling for 5a: the same writes + fsync into the holes of a sparse raw file", "IOPS", "hi", None, peer.f, raw.ffresh_holes),
        Row("5d", "  ceiling for 5a under the contract: 5c + a one-row SQLite WAL commit after each flush (no FUSE, no source read)", "IOPS", "hi", None, peer.f, raw.commit_floor),
        Row("6a", "Full hydration, %d MiB random, cold (clonefs: resume→complete; peer: dd cor export + sync; raw: cp --sparse=always + sync)" % s.src_mib, "s", "lo", hyd.hyd_s, ph.hyd_s, raw.cp_s),
        Row("6b", "  destination du after full hydration", "MiB", "lo", hyd.hyd_du, ph.hyd_du, raw.cp_du),
        Row("6c", "Full hydration, %d GiB sparse (%d MiB data), cold (same methods)" % (s.sparse_gib, s.sparse_data_mib), "s", "lo", sp.cf_s, sp.peer_s, sp.cp_s),
        Row("6d", "  destination du after full hydration (source du %s MiB)" % ("" if sp.src_du is None else "%.1f" % sp.src_du), "MiB", "lo", sp.cf_du, sp.peer_du, sp.cp_du),
        Row("6e", "  %d MiB: raw = cp --sparse=always without sync" % s.src_mib, "s", "lo", hyd.hyd_s, None, raw.cp_nosync_s),
        Row("6f", "  %d GiB sparse: raw = cp --sparse=always without sync" % s.sparse_gib, "s", "lo", sp.cf_s, None, sp.cp_nosync_s),
    ]
    for tb in KNOBS:
        rows.append(Row("6g-%d-%d" % tb, "  full hydration %d MiB, cold, --threshold %d --batch %d%s, median of %d"
                        % (s.src_mib, tb[0], tb[1], " (default)" if tb == DEFAULT_KNOB else "", s.cold_repeats),
                        "s", "lo", res.knobs.seconds.get(tb), None, raw.cp_s))
    big = s.src_mib * s.big_copies
    rows += [
        Row("7", "ext4 via loop: tar -x of %d files (1-16 KiB) + sync (clonefs --no-hydration, peer cor)" % s.nfiles, "s", "lo", tar.cf, tar.peer, tar.raw),
        Row("8a", "1 TiB sparse source: mount (cold, hydration on) / peer-qsd start", "s", "lo", t.mount, t.peer_mount),
        Row("8b", "1 TiB: remount / restart, median of %d" % s.mount_repeats, "s", "lo", t.remount, t.peer_remount),
        Row("8c", "1 TiB: daemon VmRSS right after mount", "MiB", "lo", t.rss, t.peer_rss),
        Row("8d", "1 TiB: daemon VmRSS %d s later (clonefs hydrating holes)" % s.rss_wait, "MiB", "lo", t.rss_later, t.peer_rss_later),
        Row("8e", "1 TiB: daemon VmHWM (peak RSS) %d s after mount" % s.rss_wait, "MiB", "lo", t.hwm, t.peer_hwm),
        Row("8f", "1 TiB: clonefs create", "s", "lo", t.create),
        Row("9a", "Issue #4: 4K randread QD1 of never-copied regions, clat p50, hydration paused (%d MiB source)" % big, "µs", "lo", lat.p50_paused),
        Row("9b", "Issue #4: same reads, clat p50, hydration running", "µs", "lo", lat.p50_run),
        Row("9c", "Issue #4: same reads, clat p99, hydration paused", "µs", "lo", lat.p99_paused),
        Row("9d", "Issue #4: same reads, clat p99, hydration running", "µs", "lo", lat.p99_run),
        Row("9e", "Issue #4: IOPS paused / running / hydration MB/s while running", "IOPS", "hi", lat.iops_paused,
            note="running: %s IOPS, hydration %s MB/s" % (
                "—" if lat.iops_run is None else "%.0f" % lat.iops_run,
                "—" if lat.hyd_rate is None else "%.1f" % lat.hyd_rate)),
        Row("10a", "XFS on loop, %d MiB random: full hydration, cold, clonefs shares extents (reflink); raw = cp --reflink=always + sync, median of %d" % (s.src_mib, s.cold_repeats), "s", "lo", kc.xfs_reflink_s, None, kc.xfs_cp_s),
        Row("10b", "  the same, clonefs --copy-method read-write", "s", "lo", kc.xfs_rw_s, None, kc.xfs_cp_s),
        Row("10c", "XFS, %s source (%d MiB copies by reflink): clonefs reflink; raw = cp --reflink=always + sync" % (kc_big, s.src_mib), "s", "lo", kc.xfs_big_reflink_s, None, kc.xfs_big_cp_s),
        Row("10d", "  the same, clonefs --copy-method read-write (once)", "s", "lo", kc.xfs_big_rw_s, None, kc.xfs_big_cp_s),
        Row("10e", "  XFS space used by the clonefs reflink hydration of the %s source" % kc_big, "MiB", "lo", kc.xfs_big_space_mib),
        Row("10f", "ext4 on loop, %d MiB random: clonefs copy_file_range; raw = cp + sync, median of %d" % (s.src_mib, s.cold_repeats), "s", "lo", kc.ext4_cfr_s, None, kc.ext4_cp_s),
        Row("10g", "  the same, clonefs --copy-method read-write", "s", "lo", kc.ext4_rw_s, None, kc.ext4_cp_s),
    ]
    o = res.order
    share = lambda v: "—" if v.dest_share is None else "%.0f%%" % (100 * v.dest_share)
    for key, name, v in (("12a", "address order (--no-priority)", o.address),
                         ("12b", "on-demand priority (default)", o.priority),
                         ("12c", "recorded profile (--profile)", o.profile),
                         ("12d", "fully hydrated (the floor), cold", o.hydrated),
                         ("12d-warm", "fully hydrated, the same replay again at once (warm)",
                          o.hydrated_warm),
                         ("12e", "address order, reader pausing 5 ms between reads of a file",
                          o.address_think),
                         ("12f", "on-demand priority, reader pausing 5 ms between reads of a file",
                          o.priority_think),
                         ("12h", "on-demand priority, hydration not rate-limited",
                          o.priority_unlimited),
                         ("12i", "recorded profile, hydration not rate-limited",
                          o.profile_unlimited)):
        rows.append(Row(key, "Issue 13: replay of scattered whole-file reads (%s MiB, 5%%) 1 s after"
                        " mount, NBD source + 2 ms per read, hydration limited to %s MiB/s unless"
                        " said: %s; raw = the floor" % (fmt(o.replay_mib), fmt(o.rate_mib_s), name),
                        "s", "lo", v.replay_s, None,
                        None if key in ("12e", "12f") else o.hydrated.replay_s,
                        note="%s of the bytes from the destination" % share(v)))
    rows.append(Row("12b-vs-a", "Issue 13: the replay with on-demand priority (12b); raw = with"
                    " address order (12a)", "s", "lo", o.priority.replay_s, None,
                    o.address.replay_s))
    rows.append(Row("12c-warm", "Issue 13: the replay with a recorded profile (12c); raw = fully"
                    " hydrated, warm (12d-warm)", "s", "lo", o.profile.replay_s, None,
                    o.hydrated_warm.replay_s))
    for key, name, v in (("12g-a", "address order (--no-priority)", o.address),
                         ("12g-b", "on-demand priority (default)", o.priority),
                         ("12g-c", "recorded profile (--profile)", o.profile)):
        rows.append(Row(key, "Issue 13: full hydration at %s MiB/s, mount to every region valid"
                        " (the replay above included): %s; raw = address order"
                        % (fmt(o.rate_mib_s), name), "s", "lo", v.full_s, None,
                        o.address.full_s))
    return with_reopened(rows, res.cf_hydrated.reo) + nbd_rows(res, s) + loop_rows(res.loop, s)


# Rows 2-5 measured again on the same clone hydrated and reopened (kernel passthrough): the row,
# and the figure of HydratedIO that is its clonefs column. The rows themselves are clonefs with
# IMAGE open since before completion (the FUSE path).
REOPENED = (("2a", "hseq_cold"), ("2b", "hseq_warm"), ("2c", "hseq_buf"), ("3c", "hrr1"),
            ("3d", "hrr16"), ("4b", "hw"), ("5b", "hf"))
REOPENED_KEY = "-reo"  # the end of every hydrated-and-reopened row's key (loop.row_key too)


def with_reopened(rows: List[Row], reo) -> List[Row]:
    """ROWS with a hydrated-and-reopened row after each row of REOPENED: the same peer, raw and
    passthrough figures, clonefs's from REO (a HydratedIO)."""
    attr = dict(REOPENED)
    out = []
    for r in rows:
        out.append(r)
        if r.key in attr:
            out.append(Row(r.key + REOPENED_KEY, "  the same, clonefs hydrated and reopened"
                           " (kernel passthrough; the row above: IMAGE open since before"
                           " completion, the FUSE path)", r.unit, r.better,
                           getattr(reo, attr[r.key]), r.peer, r.raw, r.pt))
    return out


def sort_key(r: Row) -> int:
    # By workload number only; the sort is stable, so rows keep their order within a workload.
    k = r.key
    head = k[:len(k) - len(k.lstrip("0123456789"))]
    return int(head) if head else 99


# description, key, column, op, threshold, ceiling: (key, column) of the best any implementation
# could do on this machine, measured in the same run (or None)
TARGETS = [
    ("hydrated seq read (cold) >= 0.8x passthrough", "2a", "pt", ">=", 0.8, None),
    ("hydrated seq read (warm) >= 0.8x passthrough", "2b", "pt", ">=", 0.8, None),
    ("hydrated seq read (cold) >= 5x peer", "2a", "peer", ">=", 5, ("2d", "raw")),
    ("hydrated seq read (warm) >= 5x peer", "2b", "peer", ">=", 5, None),
    ("fall-through seq read >= 5x peer cor", "1a", "peer", ">=", 5, ("2d", "raw")),
    ("full hydration 1 GiB <= 1.5x cp --sparse=always + sync", "6a", "raw", "<=", 1.5, None),
    ("full hydration 16 GiB sparse <= 1.5x cp --sparse=always + sync", "6c", "raw", "<=", 1.5, None),
    ("full hydration 1 GiB <= 1.5x cp --sparse=always (no sync)", "6e", "raw", "<=", 1.5, None),
    ("full hydration 16 GiB sparse <= 1.5x cp --sparse=always (no sync)", "6f", "raw", "<=", 1.5, None),
    ("randwrite untouched regions IOPS >= 3x peer", "4a", "peer", ">=", 3, None),
    ("randwrite hydrated regions IOPS >= 3x peer", "4b", "peer", ">=", 3, None),
    ("randwrite+fsync untouched IOPS >= 3x peer", "5a", "peer", ">=", 3, ("5d", "raw")),
    ("randwrite+fsync hydrated IOPS >= 3x peer", "5b", "peer", ">=", 3, ("5b", "raw")),
    ("1 TiB mount (cold) < 0.5 s", "8a", None, "<", 0.5, None),
    ("1 TiB mount (remount median) < 0.5 s", "8b", None, "<", 0.5, None),
    ("1 TiB daemon RSS after mount < 64 MiB", "8c", None, "<", 64, None),
    ("1 TiB daemon RSS a few s later < 64 MiB", "8d", None, "<", 64, None),
    ("1 TiB daemon peak RSS (VmHWM) < 64 MiB", "8e", None, "<", 64, None),
    ("issue 13: replay with a recorded profile <= 1.3x fully hydrated", "12c", "raw", "<=", 1.3, None),
    ("issue 13: replay with a recorded profile <= 1.3x fully hydrated, warm", "12c-warm", "raw", "<=", 1.3, None),
    ("issue 13: replay with on-demand priority <= 0.5x address order", "12b-vs-a", "raw", "<=", 0.5, None),
    ("issue 13: full hydration with on-demand priority <= 1.1x address order", "12g-b", "raw", "<=", 1.1, None),
    ("issue 13: full hydration with a recorded profile <= 1.1x address order", "12g-c", "raw", "<=", 1.1, None),
    ("XFS: full hydration of the big (16 GiB) source < 1 s", "10c", None, "<", 1.0, None),
    ("ext4: copy_file_range hydration <= cp + sync", "10f", "raw", "<=", 1.0, None),
]


def ceiling_reach(by: dict, ceiling, peer: F, thr: float) -> str:
    """What the ceiling row allows: its figure as a multiple of the peer's, against the target."""
    key, col = ceiling
    r = by.get(key)
    c = getattr(r, col) if r else None
    if c is None or not peer:
        return "; ceiling (row %s) not measured" % key
    best = c / peer
    return "; ceiling (row %s, %s) = %.2fx the peer: %s" % (
        key, fmt(c), best, "out of reach on this machine" if best < thr else "within reach")


def render_table(rows: Sequence[Row]) -> List[str]:
    rows = sorted(rows, key=sort_key)
    out = ["| # | workload | unit | clonefs | peer (qsd) | raw | passthrough "
           "| clonefs ÷ peer | clonefs ÷ raw | clonefs ÷ passthrough |",
           "|---|---|---|--:|--:|--:|--:|--:|--:|--:|"]
    for r in rows:
        unit = r.unit + (" ↓" if r.better == "lo" else "")
        name = r.name + (" — " + r.note if r.note else "")
        out.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            r.key, name, unit, fmt(r.clonefs), fmt(r.peer), fmt(r.raw), fmt(r.pt),
            ratio(r.clonefs, r.peer), ratio(r.clonefs, r.raw), ratio(r.clonefs, r.pt)))
    out += ["", "↓ = lower is better (seconds, latency, MiB); otherwise higher is better. "
            "Ratios are always clonefs ÷ other.", ""]
    return out


def render_targets(rows: Sequence[Row]) -> List[str]:
    by = {r.key: r for r in rows}
    out = ["| target | measured | verdict |", "|---|--:|---|"]
    for desc, key, col, op, thr, ceiling in TARGETS:
        r = by.get(key)
        other = getattr(r, col) if (r and col) else None
        if r is None or r.clonefs is None or (col and other in (None, 0)):
            out.append("| %s | — | not measured |" % desc)
            continue
        v = r.clonefs / other if col else r.clonefs
        ok = {">=": v >= thr, "<=": v <= thr, "<": v < thr}[op]
        shown = ("%.2fx" % v) if col else ("%s %s" % (fmt(v), r.unit))
        by_how = (v / thr) if op == ">=" else (thr / v if v else float("inf"))
        verdict = ("met" if ok else "MISSED") + " (%.2fx of the target)" % by_how
        if not ok and ceiling:
            verdict += ceiling_reach(by, ceiling, other, thr)
        out.append("| %s | %s | %s |" % (desc, shown, verdict))
    return out


# Issue 27's goals for a hydrated clone reopened (kernel passthrough), and for the loop suite's
# fresh and background variants.
REOPENED_WITHIN_RAW = 1.05
LOOP_WITHIN_RAW, LOOP_NEAR_RAW_ROWS = 1.10, 18


def goal_line(goal: str, rows: Sequence[Row], passes, miss, need: Optional[int] = None) -> str:
    """One goal over ROWS: met when every row (or NEED of them) PASSES; MISS(row) says by how
    much a row misses. Rows with a figure missing are named, never counted as met."""
    measured = [r for r in rows if r.clonefs is not None and miss(r) is not None]
    unmeasured = [r.key for r in rows if r not in measured]
    failed = [r for r in measured if not passes(r)]
    ok = len(measured) - len(failed)
    if not rows or (need is None and unmeasured):
        verdict = "not measured"
    else:
        verdict = "met" if ok >= (len(rows) if need is None else need) else "MISSED"
    text = "| %s | %d of %d | %s" % (goal, ok, len(rows), verdict)
    if failed:
        text += "; missed: " + ", ".join("%s %s" % (r.key, miss(r)) for r in failed)
    if unmeasured:
        text += "; not measured: " + ", ".join(unmeasured)
    return text + " |"


def render_goals(rows: Sequence[Row]) -> List[str]:
    reo = [r for r in rows if r.key.endswith(REOPENED_KEY)]
    loop_other = [r for r in rows if r.key.startswith("13") and r.key[-4:] in ("-fre", "-bac")]

    def vs(r: Row, col: str, limit: float) -> bool:
        x = slowdown(r.clonefs, getattr(r, col), r.better)
        return x is not None and x <= limit

    def shown(r: Row, col: str) -> Optional[str]:
        x = slowdown(r.clonefs, getattr(r, col), r.better)
        return None if x is None else "%.2fx" % x

    return [
        "", "Issue 27's goals (slowdowns: how many times slower than the other, 1.00x = level):",
        "", "| goal | rows | verdict |", "|---|--:|---|",
        goal_line("hydrated and reopened (kernel passthrough) within %.2fx of raw in every row"
                  " (rows 2-5 and 13, key ...%s)" % (REOPENED_WITHIN_RAW, REOPENED_KEY), reo,
                  lambda r: vs(r, "raw", REOPENED_WITHIN_RAW), lambda r: shown(r, "raw")),
        goal_line("hydrated and reopened ahead of the peer in every row", reo,
                  lambda r: vs(r, "peer", 1.0) and r.clonefs != r.peer,
                  lambda r: shown(r, "peer")),
        goal_line("loop suite, fresh and background: within %.2fx of raw in at least %d of the"
                  " rows" % (LOOP_WITHIN_RAW, LOOP_NEAR_RAW_ROWS), loop_other,
                  lambda r: vs(r, "raw", LOOP_WITHIN_RAW), lambda r: shown(r, "raw"),
                  need=LOOP_NEAR_RAW_ROWS),
    ]


def render_report(header: Sequence[str], total_s: float, rows: Sequence[Row],
                  notes: Sequence[str], sections: Sequence[str] = ()) -> str:
    """SECTIONS: lines of a workload's own tables (row 14), after the targets."""
    lines = list(header) + ["- total run time %.3f s" % total_s, ""]
    lines += render_table(rows)
    lines += render_targets(rows)
    lines += render_goals(rows)
    lines += list(sections)
    lines += ["", "Notes:"] + ["- " + n for n in notes]
    return "\n".join(lines) + "\n"
