#!/usr/bin/env python3
"""Renders bench/run.sh's results (rows.tsv) as a markdown table, then checks the targets.

rows.tsv: key <TAB> workload <TAB> unit <TAB> better(hi|lo) <TAB> clonefs <TAB> peer <TAB> raw
          <TAB> passthrough <TAB> note        (empty cell: not measured / not applicable)
"""
import sys

COLS = ("clonefs", "peer", "raw", "pt")


def num(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return None


def fmt(v):
    if v is None:
        return "—"
    if abs(v) >= 1000:
        return "{:,.0f}".format(v)
    if abs(v) >= 100:
        return "%.0f" % v
    if abs(v) >= 10:
        return "%.1f" % v
    return "%.3g" % v if abs(v) >= 0.01 else "%.4f" % v


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "—"
    return "%.2fx" % (a / b)


def load(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            p = line.split("\t") + [""] * 9
            rows.append({"key": p[0], "name": p[1], "unit": p[2], "better": p[3],
                         "clonefs": num(p[4]), "peer": num(p[5]), "raw": num(p[6]),
                         "pt": num(p[7]), "note": p[8]})
    return rows


def sort_key(r):
    k = r["key"]
    # By workload number only; the sort is stable, so rows keep run.sh's order within a workload.
    head = k[:len(k) - len(k.lstrip("0123456789"))]
    return int(head) if head else 99


TARGETS = [
    # description, key, column, op, threshold[, ceiling: (key, column) of the best any
    # implementation could do on this machine, measured in the same run]
    ("hydrated seq read (cold) >= 0.8x passthrough", "2a", "pt", ">=", 0.8),
    ("hydrated seq read (warm) >= 0.8x passthrough", "2b", "pt", ">=", 0.8),
    ("hydrated seq read (cold) >= 5x peer", "2a", "peer", ">=", 5, ("2d", "raw")),
    ("hydrated seq read (warm) >= 5x peer", "2b", "peer", ">=", 5),
    ("fall-through seq read >= 5x peer cor", "1a", "peer", ">=", 5, ("2d", "raw")),
    ("full hydration 1 GiB <= 1.5x cp --sparse=always + sync", "6a", "raw", "<=", 1.5),
    ("full hydration 16 GiB sparse <= 1.5x cp --sparse=always + sync", "6c", "raw", "<=", 1.5),
    ("full hydration 1 GiB <= 1.5x cp --sparse=always (no sync)", "6e", "raw", "<=", 1.5),
    ("full hydration 16 GiB sparse <= 1.5x cp --sparse=always (no sync)", "6f", "raw", "<=", 1.5),
    ("randwrite untouched regions IOPS >= 3x peer", "4a", "peer", ">=", 3),
    ("randwrite hydrated regions IOPS >= 3x peer", "4b", "peer", ">=", 3),
    ("randwrite+fsync untouched IOPS >= 3x peer", "5a", "peer", ">=", 3, ("5d", "raw")),
    ("randwrite+fsync hydrated IOPS >= 3x peer", "5b", "peer", ">=", 3, ("5b", "raw")),
    ("1 TiB mount (cold) < 0.5 s", "8a", None, "<", 0.5),
    ("1 TiB mount (remount median) < 0.5 s", "8b", None, "<", 0.5),
    ("1 TiB daemon RSS after mount < 64 MiB", "8c", None, "<", 64),
    ("1 TiB daemon RSS a few s later < 64 MiB", "8d", None, "<", 64),
    ("1 TiB daemon peak RSS (VmHWM) < 64 MiB", "8e", None, "<", 64),
]


def ceiling_reach(by, ceiling, peer, thr):
    """What the ceiling row allows: its figure as a multiple of the peer's, against the target."""
    key, col = ceiling
    c = by.get(key, {}).get(col)
    if c is None or not peer:
        return "; ceiling (row %s) not measured" % key
    best = c / peer
    return "; ceiling (row %s, %s) = %.2fx the peer: %s" % (
        key, fmt(c), best, "out of reach on this machine" if best < thr else "within reach")


def main(path):
    rows = sorted(load(path), key=sort_key)
    print("| # | workload | unit | clonefs | peer (qsd) | raw | passthrough "
          "| clonefs ÷ peer | clonefs ÷ raw | clonefs ÷ passthrough |")
    print("|---|---|---|--:|--:|--:|--:|--:|--:|--:|")
    for r in rows:
        unit = r["unit"] + (" ↓" if r["better"] == "lo" else "")
        name = r["name"] + (" — " + r["note"] if r["note"] else "")
        print("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            r["key"], name, unit, fmt(r["clonefs"]), fmt(r["peer"]), fmt(r["raw"]),
            fmt(r["pt"]), ratio(r["clonefs"], r["peer"]), ratio(r["clonefs"], r["raw"]),
            ratio(r["clonefs"], r["pt"])))
    print("\n↓ = lower is better (seconds, latency, MiB); otherwise higher is better. "
          "Ratios are always clonefs ÷ other.\n")
    by = {r["key"]: r for r in rows}
    print("| target | measured | verdict |")
    print("|---|--:|---|")
    for desc, key, col, op, thr, *ceiling in TARGETS:
        r = by.get(key)
        if r is None or r["clonefs"] is None or (col and r[col] in (None, 0)):
            print("| %s | — | not measured |" % desc)
            continue
        v = r["clonefs"] / r[col] if col else r["clonefs"]
        ok = {">=": v >= thr, "<=": v <= thr, "<": v < thr}[op]
        shown = ("%.2fx" % v) if col else ("%s %s" % (fmt(v), r["unit"]))
        by_how = (v / thr) if op == ">=" else (thr / v if v else float("inf"))
        verdict = ("met" if ok else "MISSED") + " (%.2fx of the target)" % by_how
        if not ok and ceiling:
            verdict += ceiling_reach(by, ceiling[0], r[col], thr)
        print("| %s | %s | %s |" % (desc, shown, verdict))


if __name__ == "__main__":
    main(sys.argv[1])
