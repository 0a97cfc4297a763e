"""Unit tests of the bench's pure parts (no root, no FUSE): `python3 -m unittest discover bench`."""
import dataclasses
import json
import os
import tempfile
import unittest

from clonefs_bench import cli, config, fio, inputs, loop, nbd, proc, report, strace
from clonefs_bench.records import HydratedIO, Results
from clonefs_bench.workloads import PHASES

FIO_JSON = """fio: some warning before the JSON
{
  "fio version": "fio-3.33",
  "jobs": [{
    "jobname": "job",
    "read": {"bw_bytes": 1500000000, "iops": 1430.5, "total_ios": 1024,
             "clat_ns": {"percentile": {"50.000000": 121000, "99.000000": 239616}}},
    "write": {"bw_bytes": 0, "iops": 0.0, "total_ios": 0, "clat_ns": {}}
  }]
}
"""

STRACE_LOG = """\
1234  fdatasync(5</var/tmp/w/cf_prof/dest>) = 0 <0.000400>
1234  fdatasync(7</var/tmp/w/cf_prof/meta-wal>) = 0 <0.000200>
1235  pread64(4</var/tmp/w/source.img>, "..."..., 12288, 40960) = 12288 <0.000150>
1235  pwrite64(5</var/tmp/w/cf_prof/dest>, "..."..., 16384, 32768) = 16384 <0.000050>
1234  fdatasync(5</var/tmp/w/cf_prof/dest>) = 0 <0.000400>
1234  fdatasync(7</var/tmp/w/cf_prof/meta-wal>) = 0 <0.000200>
1235  pwrite64(5</var/tmp/w/cf_prof/dest>, "..."..., 16384, 0) = 16384 <0.000001>
1236  +++ exited with 0 +++
"""


def full_results() -> Results:
    """Every figure of every record set to a number."""
    r = Results()

    def fill(obj, base):
        for f in dataclasses.fields(obj):
            v = getattr(obj, f.name)
            if dataclasses.is_dataclass(v):
                fill(v, base)
            elif v is None:
                setattr(obj, f.name, base + len(f.name))

    for i, f in enumerate(dataclasses.fields(r)):
        fill(getattr(r, f.name), 10.0 * (i + 1))
    r.knobs.seconds = {k: 1.0 + n for n, k in enumerate(config.KNOBS)}
    for d in nbd.DELAYS_MS:
        for w in ("seq", "rr16", "hyd"):
            for impl in ("clonefs", "nbdfuse", "qsd"):
                r.nbd.figures[(d, w, impl)] = 1.0 + d + len(impl)
    r.nbd.sweep = {(c, w): 2.0 + c for c in (1, 16) for w in ("rr16", "hyd")}
    for w in loop.WORKLOADS:
        for m in loop.MODES:
            for st in loop.STATES:
                for impl in loop.IMPLS:
                    r.loop.samples[(w.letter, m, st, impl)] = [1.0, 2.0, 3.0]
    return r


class FioParsing(unittest.TestCase):
    def test_report(self):
        r = fio.parse_report(FIO_JSON)
        self.assertAlmostEqual(r.read.bw_mbs, 1500.0)
        self.assertEqual(r.read.iops, 1430.5)
        self.assertEqual(r.read.ios, 1024)
        self.assertAlmostEqual(r.read.p50_us, 121.0)
        self.assertAlmostEqual(r.read.p99_us, 239.616)
        self.assertIsNone(r.write.p50_us)

    def test_iolog_one_write_per_region_random_order(self):
        text = fio.iolog_text("/img", 10 * 65536 + 100, 65536, fsync=True)
        lines = text.splitlines()
        self.assertEqual(lines[:3], ["fio version 2 iolog", "/img add", "/img open"])
        self.assertEqual(lines[-1], "/img close")
        writes = [int(ln.split()[2]) for ln in lines if " write " in ln]
        self.assertEqual(sorted(writes), [i * 65536 for i in range(10)])
        self.assertNotEqual(writes, sorted(writes))
        self.assertEqual(sum(1 for ln in lines if ln.endswith("sync 0 0")), 10)
        # the same order every time (seed 42) and for every implementation
        self.assertEqual(text, fio.iolog_text("/img", 10 * 65536 + 100, 65536, fsync=True))


class StraceParsing(unittest.TestCase):
    def test_costs_per_op_biggest_first(self):
        costs = strace.syscall_costs(STRACE_LOG.splitlines(True), ops=2)
        self.assertEqual([(c.call, c.role) for c in costs],
                         [("fdatasync", "destination"), ("fdatasync", "SQLite WAL"),
                          ("pread64", "source"), ("pwrite64", "destination")])
        self.assertAlmostEqual(costs[0].calls_per_op, 1.0)
        self.assertAlmostEqual(costs[0].us_per_op, 400.0)
        self.assertEqual(str(costs[3]), "pwrite64(destination): 1.00 calls, 26 us per op")

    def test_fuse_device_and_loop_source_roles(self):
        log = ("7  read(9</dev/fuse>, \"...\"..., 1052672) = 1048656 <0.000900>\n"
               "7  pread64(5</var/tmp/w/loop-source.img>, \"...\"..., 4096, 0) = 4096 <0.000100>\n")
        costs = strace.syscall_costs(log.splitlines(True), ops=1)
        self.assertEqual([(c.call, c.role) for c in costs],
                         [("read", "/dev/fuse"), ("pread64", "source")])

    def test_unfinished_calls_paired_with_their_resumption(self):
        log = ("7  read(9</dev/fuse>, <unfinished ...>\n"
               "8  pread64(5</var/tmp/w/cf/dest>, \"...\"..., 4096, 0) = 4096 <0.000100>\n"
               "7  <... read resumed>\"...\"..., 1052672) = 80 <0.002000>\n"
               "8  <... write resumed>) = 16 <0.500000>\n")  # nothing pending for 8: ignored
        costs = strace.syscall_costs(log.splitlines(True), ops=1)
        self.assertEqual([(c.call, c.role, c.calls_per_op, round(c.us_per_op)) for c in costs],
                         [("read", "/dev/fuse", 1.0, 2000), ("pread64", "destination", 1.0, 100)])

    def test_below_one_microsecond_left_out(self):
        costs = strace.syscall_costs(STRACE_LOG.splitlines(True), ops=1000)
        self.assertEqual(costs, [])


class ProcParsing(unittest.TestCase):
    def test_mount_points_unescaped(self):
        text = ("/dev/vda1 / ext4 rw 0 0\n"
                "clonefs /var/tmp/a\\040b/image fuse.clonefs rw 0 0\n")
        self.assertEqual(proc.mount_points(text), {"/", "/var/tmp/a b/image"})

    def test_status_field(self):
        text = "Name:\tclonefs\nVmHWM:\t   16384 kB\nVmRSS:\t   14336 kB\n"
        self.assertEqual(proc.status_field_kib(text, "VmRSS"), 14336)
        self.assertEqual(proc.status_field_kib(text, "VmHWM"), 16384)
        self.assertIsNone(proc.status_field_kib(text, "VmSwap"))

    def test_du_of_sparse_file(self):
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "f")
            with open(p, "wb") as f:
                f.truncate(1 << 30)
            self.assertLess(proc.du_mib(p), 1)


class Flags(unittest.TestCase):
    def test_defaults(self):
        o = cli.parse_args([])
        self.assertEqual((o.quick, o.build, o.keep, o.out, o.only), (False, True, False, None, ""))
        self.assertTrue(o.build_dir.endswith("/build-bench"))

    def test_all_flags(self):
        o = cli.parse_args(["--quick", "--no-build", "--keep", "--out", "r.md", "--only", "1 TiB",
                            "--build-dir", "/tmp/b"])
        self.assertEqual((o.quick, o.build, o.keep, o.out, o.only, o.build_dir),
                         (True, False, True, "r.md", "1 TiB", "/tmp/b"))

    def test_unknown_flag_exits_2(self):
        with self.assertRaises(SystemExit) as e, open(os.devnull, "w") as null:
            import contextlib
            with contextlib.redirect_stderr(null):
                cli.parse_args(["--fast"])
        self.assertEqual(e.exception.code, 2)

    def test_only_selects_by_substring(self):
        from clonefs_bench.runner import selected
        self.assertEqual([p.record for p in selected("1 TiB")], ["tera"])
        self.assertEqual([p.record for p in selected("latency")], ["latency"])
        self.assertEqual([p.record for p in selected("hydrated I/O")],  # rows 2-5
                         ["raw", "cf_hydrated", "peer_hydrated"])
        self.assertEqual(len(selected("")), len(PHASES))

    def test_only_generates_what_the_selected_phases_use(self):
        from clonefs_bench import inputs
        from clonefs_bench.runner import selected
        self.assertEqual(inputs.needed(n for p in selected("hydration order") for n in p.needs),
                         {"order"})

    def test_quick_is_smaller(self):
        self.assertLess(config.sizes(True).src_bytes, config.sizes(False).src_bytes)


class HydrationOrderWorkload(unittest.TestCase):
    def test_whole_files_at_scattered_offsets_about_five_percent(self):
        from clonefs_bench import order
        size = 1 << 30
        reads = order.workload(size)
        self.assertEqual(reads, order.workload(size))  # a fixed order
        total = sum(n for _, n in reads)
        self.assertAlmostEqual(total / size, order.SHARE, delta=0.001)
        starts = [off for off, _ in reads[::order.FILE_BYTES // order.READ_BYTES]]
        self.assertEqual(len(set(starts)), len(starts))
        self.assertNotEqual(starts, sorted(starts))  # not in address order
        for i, (off, n) in enumerate(reads):  # each file read whole, front to back
            self.assertEqual(off, starts[i * order.READ_BYTES // order.FILE_BYTES]
                             + (i * order.READ_BYTES) % order.FILE_BYTES)
            self.assertLessEqual(off + n, size)


class Report(unittest.TestCase):
    def test_fmt_and_ratio(self):
        self.assertEqual(report.fmt(None), "—")
        self.assertEqual(report.fmt(109075.4), "109,075")
        self.assertEqual(report.fmt(304.4), "304")
        self.assertEqual(report.fmt(14.04), "14.0")
        self.assertEqual(report.fmt(1.6412), "1.64")
        self.assertEqual(report.fmt(0.0054), "0.0054")
        self.assertEqual(report.ratio(10, 4), "2.50x")
        self.assertEqual(report.ratio(10, 0), "—")
        self.assertEqual(report.ratio(None, 4), "—")

    def test_every_phase_has_a_record(self):
        r = Results()
        for p in PHASES:
            self.assertTrue(dataclasses.is_dataclass(getattr(r, p.record)), p.name)

    def test_empty_results_render_dashes(self):
        rows = report.build_rows(Results(), config.QUICK)
        text = report.render_report(["## h"], 1.0, rows, ["phase 'x' FAILED"])
        self.assertIn("| 1a | Seq read 1 MiB, never touched (fall-through), cold; peer = cor "
                      "| MB/s | — | — | — | — | — | — | — |", text)
        self.assertIn("| 1 TiB mount (cold) < 0.5 s | — | not measured |", text)
        self.assertTrue(text.endswith("Notes:\n- phase 'x' FAILED\n"))

    def test_full_results_fill_every_row(self):
        rows = report.build_rows(full_results(), config.FULL)
        keys = [r.key for r in rows]
        self.assertEqual(len(keys), len(set(keys)))
        self.assertIn("6g-64-16", keys)
        for r in rows:
            self.assertIsNotNone(r.clonefs if r.key not in ("2d", "5c", "5d") else r.raw, r.key)
        table = report.render_table(rows)
        self.assertEqual(len(table), 2 + len(rows) + 3)
        body = [ln for ln in table if ln.startswith("| ")][1:]
        firsts = [ln.split(" | ")[0][2:] for ln in body]
        nums = [int(k[:len(k) - len(k.lstrip("0123456789"))]) for k in firsts]
        self.assertEqual(nums, sorted(nums))  # by workload number
        self.assertIn("(default), median of 3", "\n".join(table))

    def test_targets(self):
        rows = [report.Row("2a", "x", "MB/s", "hi", clonefs=1000, peer=800, pt=1100),
                report.Row("2d", "x", "MB/s", "hi", raw=1600, peer=800),
                report.Row("8a", "x", "s", "lo", clonefs=0.054)]
        out = "\n".join(report.render_targets(rows))
        self.assertIn("| hydrated seq read (cold) >= 0.8x passthrough | 0.91x | met (1.14x of the target) |", out)
        self.assertIn("| hydrated seq read (cold) >= 5x peer | 1.25x | MISSED (0.25x of the target); "
                      "ceiling (row 2d, 1,600) = 2.00x the peer: out of reach on this machine |", out)
        self.assertIn("| 1 TiB mount (cold) < 0.5 s | 0.054 s | met (9.26x of the target) |", out)
        self.assertIn("| 1 TiB daemon RSS after mount < 64 MiB | — | not measured |", out)

    def test_reopened_rows_follow_theirs_with_the_same_floors(self):
        r = Results()
        r.cf_hydrated.cf.hseq_cold, r.cf_hydrated.reo.hseq_cold = 1000.0, 1500.0
        r.raw.seq, r.peer_hydrated.io.hseq_cold = 1520.0, 800.0
        r.cf_hydrated.reo.hf = 6000.0
        rows = report.build_rows(r, config.FULL)
        keys = [x.key for x in rows]
        for key, _ in report.REOPENED:
            self.assertEqual(keys.index(key + "-reo"), keys.index(key) + 1)
        a, reo = rows[keys.index("2a")], rows[keys.index("2a-reo")]
        self.assertEqual((a.clonefs, reo.clonefs, reo.raw, reo.peer), (1000.0, 1500.0, 1520.0,
                                                                      800.0))
        self.assertEqual(rows[keys.index("5b-reo")].clonefs, 6000.0)

    def test_goals_met_missed_and_not_measured(self):
        rows = [report.Row("2a-reo", "x", "MB/s", "hi", clonefs=1500, peer=800, raw=1520),
                report.Row("13a-buf-reo", "x", "s", "lo", clonefs=0.50, peer=0.49, raw=0.45),
                report.Row("13a-buf-hyd", "x", "s", "lo", clonefs=9.0, peer=1.0, raw=0.45)]
        rows += [report.Row("13%s-dir-fre" % c, "x", "s", "lo", clonefs=1.0, raw=1.0)
                 for c in "abcdefghijklmnopqr"]
        text = "\n".join(report.render_goals(rows))
        self.assertIn("| hydrated and reopened (kernel passthrough) within 1.05x of raw in every"
                      " row (rows 2-5 and 13, key ...-reo) | 1 of 2 | MISSED; missed:"
                      " 13a-buf-reo 1.11x |", text)
        self.assertIn("| hydrated and reopened ahead of the peer in every row | 1 of 2 | MISSED;"
                      " missed: 13a-buf-reo 1.02x |", text)
        self.assertIn("within 1.10x of raw in at least 18 of the rows | 18 of 18 | met |", text)
        rows[0] = report.Row("2a-reo", "x", "MB/s", "hi", peer=800, raw=1520)
        rows[1] = report.Row("13a-buf-reo", "x", "s", "lo", clonefs=0.46, peer=0.49, raw=0.45)
        text = "\n".join(report.render_goals(rows))
        self.assertIn("| 1 of 2 | not measured; not measured: 2a-reo |", text)
        self.assertIn("| hydrated and reopened ahead of the peer in every row | 1 of 2 |"
                      " not measured; not measured: 2a-reo |", text)
        text = "\n".join(report.render_goals(rows[1:2]))
        self.assertIn("| hydrated and reopened ahead of the peer in every row | 1 of 1 | met |",
                      text)
        self.assertIn("| 0 of 0 | not measured |", text)

    def test_latency_note(self):
        r = Results()
        r.latency.iops_paused, r.latency.iops_run, r.latency.hyd_rate = 6663.0, 7802.4, 2.61
        row = [x for x in report.build_rows(r, config.FULL) if x.key == "9e"][0]
        self.assertEqual(row.note, "running: 7802 IOPS, hydration 2.6 MB/s")


class RegionSizes(unittest.TestCase):
    def test_flags_and_line(self):
        from clonefs_bench import region_sizes as rs
        o = rs.parse_args(["--quick", "--no-build", "4K", "16K"])
        self.assertEqual((o.quick, o.build, o.sizes), (True, False, ("4K", "16K")))
        self.assertEqual(rs.parse_args([]).sizes, rs.DEFAULT_SIZES)
        r = rs.RegionRecord("16K", iops=23745.2, amplification=3.81, hydrate_s=2.19, regions=67108864,
                            meta_kib=8200, mount_s=0.2104, rss_mib=15.84)
        self.assertEqual(rs.line(r), "| 16K | 23745 | 3.8 | 2.190 | 67108864 | 8200 KiB | 0.210 | 15.8 |")
        self.assertEqual(len(rs.header(8192, 1024)), 2)


class OpenKinds(unittest.TestCase):
    @staticmethod
    def status(state, pt, fuse):
        return {"passthrough": {"state": state, "reason": "", "passthrough_opens": pt,
                                "fuse_opens": fuse, "requests": 9}}

    def test_all_opens_of_one_kind_and_one_at_least(self):
        from clonefs_bench.clonefs import FUSE_PATH, PASSTHROUGH, opens_all_of
        self.assertTrue(opens_all_of(self.status("active", 2, 0), PASSTHROUGH))
        self.assertFalse(opens_all_of(self.status("active", 2, 0), FUSE_PATH))
        self.assertTrue(opens_all_of(self.status("active", 0, 3), FUSE_PATH))
        self.assertFalse(opens_all_of(self.status("active", 0, 3), PASSTHROUGH))
        self.assertFalse(opens_all_of(self.status("active", 1, 1), PASSTHROUGH))
        self.assertFalse(opens_all_of(self.status("active", 1, 1), FUSE_PATH))
        self.assertFalse(opens_all_of(self.status("waiting", 0, 0), FUSE_PATH))
        self.assertFalse(opens_all_of({"passthrough": None}, PASSTHROUGH))  # offline status
        with self.assertRaises(ValueError):
            opens_all_of(self.status("active", 1, 0), "dax")

    def test_said_with_state_reason_and_counts(self):
        from clonefs_bench.clonefs import open_kinds
        s = self.status("unavailable", 0, 2)
        s["passthrough"]["reason"] = "--writeback-cache"
        self.assertEqual(open_kinds(s), "passthrough unavailable (--writeback-cache): 0 passthrough"
                         " opens, 2 FUSE-path opens")


class StatusParsing(unittest.TestCase):
    def test_nul_terminated_json(self):
        from clonefs_bench.clonefs import STATUS_IOCTL, compact, parse_status
        buf = json.dumps({"pid": 12, "counters": {"commits": 3, "bytes_copied": 4}}).encode() + b"\0junk"
        s = parse_status(buf)
        self.assertEqual(s["pid"], 12)
        self.assertEqual(compact(s["counters"]), '{"commits":3,"bytes_copied":4}')
        self.assertEqual(STATUS_IOCTL, 0xBFFFCF01)


class LoopSuite(unittest.TestCase):
    def test_rows_take_medians_and_raw_for_every_state(self):
        r = Results()
        r.loop.samples[("a", "buffered", "hydrated", "clonefs")] = [3.0, 1.0, 2.0]
        r.loop.samples[("a", "buffered", "fresh", "raw")] = [1.5, 1.0, 9.0]
        r.loop.samples[("a", "buffered", "hydrated", "raw")] = [100.0]  # never used
        by = {row.key: row for row in loop.rows(r.loop, config.FULL)}
        self.assertEqual(len(by), len(loop.WORKLOADS) * len(loop.MODES) * len(loop.STATES))
        row = by["13a-buf-hyd"]
        self.assertEqual((row.clonefs, row.raw, row.peer, row.unit, row.better),
                         (2.0, 1.5, None, "s", "lo"))
        self.assertEqual(by["13a-buf-bac"].raw, 1.5)
        self.assertIsNone(by["13a-dir-fre"].raw)
        self.assertIn("untar 10000 files", row.name)
        self.assertEqual(report.sort_key(row), 13)

    def test_summary_against_raw_peer_and_passthrough(self):
        rows = [report.Row("13a-buf-fre", "x", "s", "lo", clonefs=1.05, peer=1.2, raw=1.0, pt=1.0),
                report.Row("13d-buf-fre", "x", "MB/s", "hi", clonefs=300, peer=400, raw=1000,
                           pt=500),
                report.Row("13f-dir-fre", "x", "IOPS", "hi", clonefs=950, peer=800, raw=1000,
                           pt=1000),
                report.Row("13b-dir-fre", "x", "s", "lo", peer=1.0, raw=1.0)]
        self.assertEqual(loop.summary(rows), [
            "13: within 1.10x of raw in 2 of 3 rows; missed: 13d-buf-fre 3.33x (pt 2.00x)",
            "13: of the missed rows, the passthrough FUSE file misses raw too in 1: 13d-buf-fre",
            "13: ahead of the peer in 2 of 3 rows; not ahead: 13d-buf-fre"])
        self.assertEqual(loop.summary([]), ["13: no loop row measured"])

    def test_reopened_rows_take_the_peers_hydrated_figures(self):
        r = Results()
        r.loop.samples[("d", "direct", "hydrated", "peer")] = [700.0]
        r.loop.samples[("d", "direct", "reopened", "clonefs")] = [1400.0]
        r.loop.samples[("d", "direct", "hydrated", "clonefs")] = [900.0]
        by = {row.key: row for row in loop.rows(r.loop, config.FULL)}
        row = by["13d-dir-reo"]
        self.assertEqual((row.clonefs, row.peer), (1400.0, 700.0))
        self.assertEqual(by["13d-dir-hyd"].clonefs, 900.0)
        self.assertIn("hydrated, reopened (kernel passthrough)", row.name)
        self.assertIn("hydrated (FUSE path)", by["13d-dir-hyd"].name)

    def test_each_clonefs_variant_claims_its_kind_of_open(self):
        self.assertEqual(loop.open_kind("clonefs", "reopened"), "passthrough")
        for state in ("fresh", "hydrated", "background"):
            self.assertEqual(loop.open_kind("clonefs", state), "fuse")
        for lever in loop.LEVERS:
            self.assertEqual(loop.open_kind(lever.impl, lever.state), "fuse")
        for impl in ("peer", "raw", "pt"):
            self.assertIsNone(loop.open_kind(impl, "reopened"))

    def test_slowdown_direction(self):
        self.assertAlmostEqual(loop.slowdown(2.0, 1.0, "lo"), 2.0)
        self.assertAlmostEqual(loop.slowdown(500, 1000, "hi"), 2.0)
        self.assertIsNone(loop.slowdown(None, 1.0, "lo"))

    def test_variants_interleave_peers_and_run_floors_once(self):
        v = loop.variants("direct")
        self.assertEqual(v[:2], [("raw", "fresh"), ("pt", "fresh")])
        # the peer reopened is the peer hydrated: run once
        self.assertEqual(len(v), 2 + 2 * len(loop.STATES) - 1)
        self.assertIn(("clonefs", "reopened"), v)
        self.assertNotIn(("peer", "reopened"), v)
        b = loop.variants("buffered")
        for lever in loop.LEVERS:
            self.assertEqual(b[b.index(("clonefs", lever.state)) + 2], (lever.impl, lever.state))
        self.assertEqual(len(b), len(v) + len(loop.LEVERS))

    def test_lever_line_speedup_in_the_units_direction(self):
        ra = loop.LEVER_BY_IMPL["clonefs_ra4m"]
        s = {("c", "buffered", "hydrated", ra.impl): [0.5], ("c", "buffered", "hydrated", "clonefs"): [1.0],
             ("c", "buffered", "fresh", "raw"): [0.4],
             ("d", "buffered", "hydrated", ra.impl): [900.0], ("d", "buffered", "hydrated", "clonefs"): [450.0]}
        self.assertEqual(loop.lever_line(s, ra), "13 lever readahead: clonefs --readahead 4096 vs the default "
                         "(128 KiB) (buffered, hydrated, medians): 13c 0.5 vs 1 s (2.00x; raw 0.4); "
                         "13d 900 vs 450 MB/s (2.00x; raw -)")
        self.assertEqual(sorted(loop.RUN_ORDER), [w.letter for w in loop.WORKLOADS])


class Inputs(unittest.TestCase):
    def test_only_loop_generates_no_shared_input(self):
        from clonefs_bench.runner import selected
        phases = selected("loop")
        self.assertEqual([p.record for p in phases], ["loop"])
        self.assertEqual(inputs.needed(n for p in phases for n in p.needs), set())
        self.assertEqual([p.record for p in selected("losetup profile")], ["loop_profile"])

    def test_needed_adds_what_an_input_is_made_from(self):
        self.assertEqual(inputs.needed(["sparse"]), {"source", "sparse"})
        self.assertEqual(inputs.needed(["tera", "raw"]), {"tera"})
        self.assertEqual(inputs.needed(n for p in PHASES for n in p.needs),
                         {"source", "big", "sparse", "tera", "tar", "order"})
        with self.assertRaises(ValueError):
            inputs.needed(["nonesuch"])


class NbdRows(unittest.TestCase):
    def test_peer_column_is_the_better_peer(self):
        r = Results()
        r.nbd.figures = {(10, "seq", "clonefs"): 300.0, (10, "seq", "nbdfuse"): 20.0,
                         (10, "seq", "qsd"): 50.0, (10, "hyd", "clonefs"): 5.0,
                         (10, "hyd", "nbdfuse"): 90.0, (10, "hyd", "qsd"): 40.0}
        by = {row.key: row for row in nbd.rows(r, config.FULL)}
        self.assertEqual(by["11a-10ms"].peer, 50.0)   # MB/s: higher is better
        self.assertEqual(by["11c-10ms"].peer, 40.0)   # seconds: lower is better
        self.assertIsNone(by["11b-10ms"].clonefs)


class FleetFlags(unittest.TestCase):
    def test_defaults_quick_and_explicit(self):
        self.assertEqual(cli.parse_args([]).fleet, config.FleetConfig(1.0, (0, 1, 10), (1, 4, 8)))
        self.assertEqual(cli.parse_args(["--quick"]).fleet, config.QUICK_FLEET)
        o = cli.parse_args(["--quick", "--fleet-golden-gib", "3", "--fleet-delays", "10, 0,10",
                            "--fleet-clones", "8"])
        self.assertEqual(o.fleet, config.FleetConfig(3.0, (10, 0), (8,)))

    def test_bad_lists_exit_2(self):
        import contextlib
        for bad in (["--fleet-delays", "1,-1"], ["--fleet-clones", "0,4"],
                    ["--fleet-clones", "x"], ["--fleet-golden-gib", "0"]):
            with self.assertRaises(SystemExit) as e, open(os.devnull, "w") as null:
                with contextlib.redirect_stderr(null):
                    cli.parse_args(bad)
            self.assertEqual(e.exception.code, 2, bad)

    def test_only_fleet_selects_the_fleet_alone_and_makes_no_shared_input(self):
        from clonefs_bench.runner import selected
        self.assertEqual([p.record for p in selected("fleet")], ["fleet"])
        self.assertEqual(inputs.needed(n for p in selected("fleet") for n in p.needs), set())

    def test_golden_bytes_whole_mib(self):
        from clonefs_bench.fleet_golden import golden_bytes
        self.assertEqual(golden_bytes(1), 1 << 30)
        self.assertEqual(golden_bytes(0.3), 307 << 20)


NGINX_LOG = """\
GET 206 262582 bytes=0-262143
GET 206 262582 bytes=262144-524287
HEAD 200 251 -
GET 200 1073742080 -
GET 416 390 bytes=9999999999-
"""


class FleetServer(unittest.TestCase):
    def test_bytes_sent_and_statuses_from_the_access_log(self):
        from clonefs_bench import fleet_net
        self.assertEqual(fleet_net.bytes_sent(NGINX_LOG), 262582 * 2 + 251 + 1073742080 + 390)
        self.assertEqual(fleet_net.bytes_sent("garbage\n\n"), 0)
        self.assertEqual(fleet_net.status_counts(NGINX_LOG), {"206": 2, "200": 2, "416": 1})

    def test_nginx_conf_keeps_everything_under_its_prefix(self):
        from clonefs_bench import fleet_net
        conf = fleet_net.nginx_conf("/w/ng", "/w/www", "127.0.0.1:8080")
        self.assertIn("listen 127.0.0.1:8080;", conf)
        self.assertIn("root /w/www;", conf)
        self.assertIn("pid /w/ng/nginx.pid;", conf)
        self.assertIn("access_log /w/ng/access.log fleet;", conf)
        self.assertIn("log_format fleet '%s';" % fleet_net.LOG_FORMAT, conf)
        self.assertIn("daemon off;", conf)
        for line in conf.splitlines():  # every path nginx writes lies under the prefix
            if "_path " in line or line.strip().startswith(("pid ", "error_log ")):
                self.assertIn("/w/ng/", line)

    def test_delay_line_relays_intact_and_holds_each_answer(self):
        import socket
        import subprocess
        import sys
        import threading
        import time
        from clonefs_bench import fleet_net
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)

        def echo(c):
            with c:
                while True:
                    b = c.recv(65536)
                    if not b:
                        return
                    c.sendall(b)

        def accept():  # every connection: the line's readiness probe is one too
            while True:
                try:
                    c, _ = srv.accept()
                except OSError:
                    return
                threading.Thread(target=echo, args=(c,), daemon=True).start()

        threading.Thread(target=accept, daemon=True).start()
        port = fleet_net.free_port()
        p = subprocess.Popen([sys.executable, "-B", "-m", "clonefs_bench.fleet_delay", str(port),
                              str(srv.getsockname()[1]), "50"], cwd=fleet_net.BENCH)
        try:
            deadline = time.monotonic() + 10
            while not fleet_net._listening(port):
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.02)
            with socket.create_connection(("127.0.0.1", port)) as c:
                data = os.urandom(1 << 20)
                t0 = time.monotonic()
                # sent beside the reads: the echo's answer fills the buffers before the last byte
                threading.Thread(target=c.sendall, args=(data,), daemon=True).start()
                got = b""
                while len(got) < len(data):
                    got += c.recv(1 << 20)
                self.assertGreaterEqual(time.monotonic() - t0, 0.05)  # held, never early
                self.assertEqual(got, data)
        finally:
            p.terminate()
            p.wait()
            srv.close()

    def test_all_at_once_raises_only_once_every_runner_is_done(self):
        import time
        from concurrent.futures import ThreadPoolExecutor
        from clonefs_bench import fleet
        done = []

        def fn(r):
            if r.dir == "a":
                raise RuntimeError("a failed")
            time.sleep(0.2)
            done.append(r.dir)

        with ThreadPoolExecutor(2) as pool:
            with self.assertRaisesRegex(RuntimeError, "a failed"):
                fleet.all_at_once(pool, [fleet.Runner("a"), fleet.Runner("b")], fn)
            self.assertEqual(done, ["b"])  # nothing released while b was still starting

    def test_only_the_solo_variant_replays_on_its_first_runner_alone(self):
        from clonefs_bench import fleet
        runners = [fleet.Runner("a"), fleet.Runner("b"), fleet.Runner("c")]
        for impl, replaying in (("clonefs", 3), ("clonefs_quiet", 3), ("clonefs_solo", 1),
                                ("curl", 3), ("nbdkit", 3)):
            v = fleet.VARIANTS[impl](None, "http://h/g", None)
            self.assertEqual(v.replayers(runners), runners[:replaying], impl)
        self.assertIn("--no-hydration", fleet.VARIANTS["clonefs_quiet"].FLAGS)
        self.assertNotIn("--no-hydration", fleet.VARIANTS["clonefs_solo"].FLAGS)

    def test_a_refused_http_source_is_said_so(self):
        from clonefs_bench import fleet
        self.assertIsNone(fleet.refusal(0, ""))
        self.assertEqual(fleet.refusal(1, 'clonefs: source http://h/g.img: unsupported URI scheme'
                                          ' "http" (clonefs reads nbd://)\n'),
                         'not available: this clonefs has no http source (clonefs: source '
                         'http://h/g.img: unsupported URI scheme "http" (clonefs reads nbd://))')
        self.assertEqual(fleet.refusal(2, ""), "not available: clonefs create of the golden's URL"
                         " failed (exit status 2)")

    def test_descendants_and_their_peak_rss(self):
        import subprocess
        from clonefs_bench import fleet
        p = subprocess.Popen(["sh", "-c", "sleep 30 & wait"])
        try:
            deadline = 50
            while len(fleet.descendants(p.pid)) < 1 and deadline:
                import time
                time.sleep(0.02)
                deadline -= 1
            kids = fleet.descendants(p.pid)
            self.assertEqual(len(kids), 1)
            self.assertGreater(fleet.hwm_mib([p.pid] + kids), fleet.hwm_mib([p.pid]))
            self.assertEqual(fleet.hwm_mib([2 ** 22 + 7]), 0)  # gone: counts 0
        finally:
            for k in fleet.descendants(p.pid):
                os.kill(k, 9)
            p.wait()


def fleet_record():
    from clonefs_bench.records import Fleet
    return Fleet(golden_mib=1024.0, files_mib=114.0)


class FleetReport(unittest.TestCase):
    def setUp(self):
        from clonefs_bench import fleet_report
        self.fr = fleet_report
        self.rec = fleet_record()
        f = self.rec.figures
        for d in (0, 10):
            for n in (1, 4):
                f[(d, n, "first", "clonefs")] = 0.5 + d / 10 + n / 10
                f[(d, n, "replay", "clonefs")] = 2.0 * (1 + (n > 1) * d / 10)
                f[(d, n, "hydrate", "clonefs")] = 10.0
                f[(d, n, "fetched", "clonefs")] = 1100.0 * n
                f[(d, n, "rss", "clonefs")] = 30.0
                f[(d, n, "hydrate", "curl")] = 7.0
                f[(d, n, "first", "curl")] = 8.0
                f[(d, n, "first", "nbdkit")] = 0.25

    def test_goals_compare_the_largest_fleet_with_one_clone(self):
        g = {desc: (v, op, thr) for desc, v, op, thr in self.fr.goals(self.rec)}
        self.assertAlmostEqual(g["first file read within 1 s of create at 10 ms, N = 1"][0], 1.6)
        self.assertAlmostEqual(g["replay at N = 4 no worse than 1.5x one clone's, 10 ms"][0], 2.0)
        self.assertAlmostEqual(g["replay at N = 4 no worse than 1.5x one clone's, 0 ms"][0], 1.0)
        self.assertAlmostEqual(g["bytes fetched at N = 4 <= 1.1x one clone's, 0 ms"][0], 4.0)
        self.assertAlmostEqual(g["hydration rate at 10 ms >= 0.8x curl's, N = 4"][0], 0.7)
        self.assertEqual(len(g), 2 + 2 * 2 + 2)

    def test_fleet_n_prefers_eight(self):
        self.assertEqual(self.fr.fleet_n([1, 4, 8, 16]), 8)
        self.assertEqual(self.fr.fleet_n([1, 4]), 4)
        self.assertIsNone(self.fr.fleet_n([1]))

    def test_verdicts(self):
        self.assertEqual(self.fr.verdict(0.5, "<=", 1.0), "met (2.00x of the target)")
        self.assertEqual(self.fr.verdict(2.0, "<=", 1.0), "MISSED (0.50x of the target)")
        self.assertEqual(self.fr.verdict(0.6, ">=", 0.8), "MISSED (0.75x of the target)")
        self.assertEqual(self.fr.verdict(None, ">=", 0.8), "not measured")

    def test_render_tables_ratios_and_goals(self):
        text = "\n".join(self.fr.render(self.rec))
        self.assertEqual(text.count("| 10 ms, N = 4 | unit | clonefs |"), 1)
        self.assertIn("| create to the first file read in the guest ext4 (slowest runner) | s ↓ "
                      "| 1.9 | 8 | 0.25 | 0.24x | 7.60x |", text)
        self.assertIn("| first file read within 1 s of create at 10 ms, N = 1 | 1.6 s "
                      "| MISSED (0.62x of the target) |", text)
        self.assertIn("| bytes fetched at N = 4 <= 1.1x one clone's, 10 ms | 4.00x | MISSED", text)
        self.assertEqual(self.fr.render(fleet_record()), [])

    def test_starvation_compares_one_job_among_hydrating_neighbours_with_one_alone(self):
        self.assertEqual(self.fr.starvation(self.rec), [])  # not measured: no table
        f = self.rec.figures
        f[(10, 1, "replay", "clonefs_quiet")] = 2.0
        f[(10, 4, "replay", "clonefs_quiet")] = 2.5
        f[(10, 4, "replay", "clonefs_solo")] = 3.0
        text = "\n".join(self.fr.render(self.rec))
        self.assertIn("| 10 ms, N = 4 | 2.5 | 4 | 3 | 1.50x |", text)
        self.assertIn("| 10 ms, N = 1 | 2 | 2 | — | — |", text)
        self.assertNotIn("| 0 ms, N = 1 |", "\n".join(self.fr.starvation(self.rec)))

    def test_clonefs_unavailable_is_said_once_per_cell_and_in_full_below(self):
        rec = fleet_record()
        rec.figures[(0, 1, "first", "curl")] = 3.0
        rec.unavailable["clonefs"] = "not available: this clonefs has no http source (x)"
        text = "\n".join(self.fr.render(rec))
        self.assertIn("| create to the first file read in the guest ext4 (slowest runner) | s ↓ "
                      "| not available | 3 | — | — | — |", text)
        self.assertTrue(text.endswith("clonefs: not available: this clonefs has no http source (x)"))
        self.assertIn("| replay at N = 8 (not run) no worse than 1.5x one clone's, 0 ms | — "
                      "| not measured |", text)

    def test_report_places_the_section_before_the_notes(self):
        text = report.render_report(["## h"], 1.0, [], ["n"], ["### 14", "x"])
        self.assertTrue(text.endswith("### 14\nx\n\nNotes:\n- n\n"))


if __name__ == "__main__":
    unittest.main()
