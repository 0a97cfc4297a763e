#!/usr/bin/env python3
"""Small helpers for bench/run.sh (python3 standard library only).

  benchlib.py fio JSON read|write|sync bw|iops|p50|p99|ios   one figure from a fio JSON report
  benchlib.py json FILE|- KEY[.KEY...]                      one field of a JSON object
  benchlib.py status IMAGE KEY[.KEY...]                     one field of a live clonefs status
  benchlib.py hydrate CLONEFS IMAGE                         resume hydration, poll the status ioctl
                                                            every 10 ms, fsync once complete, print seconds
  benchlib.py iolog FILE SIZE REGION write|fsync OUT        fio replay log: one 4 KiB write per
                                                            region, regions in random order
  benchlib.py sparse DATA OUT SIZE DATA_BYTES ZERO_BYTES    sparse source: DATA_BYTES copied from
                                                            DATA in 1 MiB chunks spread evenly,
                                                            ZERO_BYTES of written (allocated) zeros
  benchlib.py commit-floor FILE SIZE REGION SECONDS DB      write+fdatasync into holes of FILE, each
                                                            followed by a SQLite WAL commit; ops/s
  benchlib.py tree DIR NFILES                               NFILES files of 1-16 KiB random data
  benchlib.py sub A B                                       B - A, 3 decimals
  benchlib.py syscalls STRACE OPS                           time per operation in each syscall of
                                                            a `strace -f -y -T` log, by file
"""
import fcntl
import json
import os
import random
import subprocess
import sys
import time

MIB = 1 << 20


def field(obj, key):
    for k in key.split("."):
        obj = obj[k]
    return obj


def fio(path, ddir, what):
    with open(path) as f:
        text = f.read()
    # fio may print warnings before the JSON object.
    j = json.loads(text[text.index("{"):])
    job = j["jobs"][0]
    d = job[ddir]
    if what == "bw":  # MB/s, 10^6 bytes
        return d["bw_bytes"] / 1e6
    if what == "iops":
        return d["iops"]
    if what == "ios":
        return d["total_ios"]
    if what in ("p50", "p99"):  # microseconds, completion latency
        pct = d["clat_ns"]["percentile"]
        return pct["50.000000" if what == "p50" else "99.000000"] / 1000.0
    raise SystemExit("unknown fio figure " + what)


# src/control/control_protocol.h: _IOR(0xCF, 1, ControlText), ControlText = 16383 bytes.
STATUS_TEXT = (1 << 14) - 1
STATUS_IOCTL = (2 << 30) | (STATUS_TEXT << 16) | (0xCF << 8) | 1


def live_status(image):
    fd = os.open(image, os.O_RDONLY | os.O_CLOEXEC)
    try:
        buf = bytearray(STATUS_TEXT)
        fcntl.ioctl(fd, STATUS_IOCTL, buf, True)
    finally:
        os.close(fd)
    return json.loads(bytes(buf).split(b"\0", 1)[0])


def hydrate(clonefs, image):
    t0 = time.monotonic()
    subprocess.run([clonefs, "hydrate", image, "--resume"], check=True, stdout=subprocess.DEVNULL)
    while True:
        s = live_status(image)
        if s.get("complete"):
            # Durable like cp + sync: the fsync commits the last valid regions.
            fd = os.open(image, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            return time.monotonic() - t0
        if s.get("metadata_mode") != "rw":
            raise SystemExit("hydration stopped: " + json.dumps(s))
        time.sleep(0.01)


def iolog(path, size, region, mode, out):
    n = size // region
    idx = list(range(n))
    random.Random(42).shuffle(idx)
    with open(out, "w") as o:
        o.write("fio version 2 iolog\n%s add\n%s open\n" % (path, path))
        for i in idx:
            o.write("%s write %d 4096\n" % (path, i * region))
            if mode == "fsync":
                o.write("%s sync 0 0\n" % path)
        o.write("%s close\n" % path)


def commit_floor(path, size, region, seconds, db):
    """The least one write+fsync into a never-touched region can cost under CONTRACT.md's rule
    (data durable before the metadata says so): a 4 KiB O_DIRECT write into a hole of a sparse file,
    fdatasync, then a one-row SQLite WAL commit with synchronous=FULL. No FUSE, no source read, the
    same regions in the same order as iolog(). Prints operations per second."""
    import mmap
    import sqlite3
    idx = list(range(size // region))
    random.Random(42).shuffle(idx)
    buf = mmap.mmap(-1, 4096)  # page-aligned, as O_DIRECT needs
    buf.write(os.urandom(4096))
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    con.execute("CREATE TABLE IF NOT EXISTS chunk(id INTEGER PRIMARY KEY, bits BLOB NOT NULL)")
    fd = os.open(path, os.O_WRONLY | os.O_DIRECT)
    try:
        t0 = time.monotonic()
        n = 0
        for i in idx:
            os.pwrite(fd, buf, i * region)
            os.fdatasync(fd)
            con.execute("INSERT OR REPLACE INTO chunk VALUES (?, zeroblob(512))", (i >> 12,))
            n += 1
            if time.monotonic() - t0 >= seconds:
                break
        return n / (time.monotonic() - t0)
    finally:
        os.close(fd)
        con.close()


def sparse(data, out, size, data_bytes, zero_bytes):
    chunks = max(1, data_bytes // MIB)
    zchunks = zero_bytes // MIB
    step = size // chunks
    with open(data, "rb") as src, open(out, "wb") as dst:
        dst.truncate(size)
        dsize = os.fstat(src.fileno()).st_size
        for i in range(chunks):
            src.seek((i * MIB) % dsize)
            dst.seek(i * step)
            dst.write(src.read(MIB))
        zero = bytes(MIB)
        for i in range(zchunks):
            # in the middle of a gap between data chunks, where the source is a hole
            dst.seek((i * (chunks // max(zchunks, 1))) * step + step // 2)
            dst.write(zero)
        os.fsync(dst.fileno())


def tree(d, n):
    rng = random.Random(7)
    for i in range(n):
        sub = os.path.join(d, "d%03d" % (i // 500))
        if i % 500 == 0:
            os.makedirs(sub, exist_ok=True)
        with open(os.path.join(sub, "f%05d" % i), "wb") as f:
            f.write(os.urandom(rng.randint(1024, 16384)))


def file_role(path):
    # The daemon's files by what they are to clonefs (names as bench/run.sh's cf_mount makes them).
    base = os.path.basename(path)
    return {"dest": "destination", "meta-wal": "SQLite WAL", "meta": "SQLite database",
            "meta-shm": "SQLite shm", "source.img": "source"}.get(base, base)


def syscalls(path, ops):
    """One line per (syscall, file): calls and microseconds per user operation, biggest first."""
    import re
    pat = re.compile(r"(\w+)\(\d+<([^>]*)>.*<(\d+\.\d+)>$")
    total = {}
    for line in open(path):
        m = pat.search(line.rstrip())
        if m:
            k = (m.group(1), file_role(m.group(2)))
            n, t = total.get(k, (0, 0.0))
            total[k] = (n + 1, t + float(m.group(3)))
    for (call, role), (n, t) in sorted(total.items(), key=lambda kv: -kv[1][1]):
        if t * 1e6 / ops >= 1:
            print("%s(%s): %.2f calls, %.0f us per op" % (call, role, n / ops, t * 1e6 / ops))


def main(a):
    cmd = a[0]
    if cmd == "fio":
        v = fio(a[1], a[2], a[3])
        print(int(v) if a[3] == "ios" else "%.3f" % v)
    elif cmd == "json":
        obj = json.load(sys.stdin if a[1] == "-" else open(a[1]))
        v = field(obj, a[2])
        print(json.dumps(v) if isinstance(v, (dict, list, bool)) or v is None else v)
    elif cmd == "status":
        v = field(live_status(a[1]), a[2])
        print(json.dumps(v) if isinstance(v, (dict, list, bool)) or v is None else v)
    elif cmd == "hydrate":
        print("%.3f" % hydrate(a[1], a[2]))
    elif cmd == "iolog":
        iolog(a[1], int(a[2]), int(a[3]), a[4], a[5])
    elif cmd == "commit-floor":
        print("%.3f" % commit_floor(a[1], int(a[2]), int(a[3]), float(a[4]), a[5]))
    elif cmd == "sparse":
        sparse(a[1], a[2], int(a[3]), int(a[4]), int(a[5]))
    elif cmd == "tree":
        tree(a[1], int(a[2]))
    elif cmd == "syscalls":
        syscalls(a[1], int(a[2]))
    elif cmd == "sub":
        print("%.3f" % (float(a[2]) - float(a[1])))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
