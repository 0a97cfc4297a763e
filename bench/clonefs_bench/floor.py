"""Row 5d: the least one write + fsync into a never-touched region can cost under the commit rule of
docs/SEMANTICS.md (data durable before the metadata says so), with no FUSE and no source read."""
import mmap
import os
import random
import sqlite3
import time


def commit_floor(path: str, size: int, region: int, seconds: float, db: str) -> float:
    """4 KiB O_DIRECT writes into the holes of sparse file PATH, each followed by fdatasync and a
    one-row SQLite WAL commit with synchronous=FULL; the same regions in the same order as the
    fio replay log. Operations per second."""
    idx = list(range(size // region))
    random.Random(42).shuffle(idx)
    buf = mmap.mmap(-1, 4096)  # page-aligned, as O_DIRECT needs
    buf.write(os.urandom(4096))
    con = sqlite3.connect(db, isolation_level=None)
    try:
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
    finally:
        con.close()
