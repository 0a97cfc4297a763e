"""The generated sources, in the work directory, read-only once made. Only those the selected
phases use are made (--only "hydration order" needs 4 GiB, not the 24 GiB of the whole run)."""
import os
import random
import shutil
import subprocess
from dataclasses import dataclass, fields
from typing import Iterable, Set

from .config import GIB, MIB, Sizes


@dataclass(frozen=True)
class Inputs:
    source: str   # random source (1 GiB; 128 MiB with --quick)
    raw: str      # the raw copy (made by cp --sparse=always in the raw phase)
    big: str      # larger untouched source for the latency-under-hydration figures
    sparse: str   # 16 GiB sparse source (1 GiB with --quick)
    tera: str     # 1 TiB sparse source
    tar: str      # tar of the small-files tree (workload 7)
    order: str    # random source of the hydration-order rows (4 GiB; 256 MiB with --quick)

    @classmethod
    def under(cls, work: str) -> "Inputs":
        j = lambda n: os.path.join(work, n)  # noqa: E731
        return cls(source=j("source.img"), raw=j("raw.img"), big=j("big.img"),
                   sparse=j("sparse.img"), tera=j("tera.img"), tar=j("tree.tar"),
                   order=j("order.img"))


def random_file(path: str, size: int) -> None:
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 4 * MIB)
            f.write(os.urandom(n))
            left -= n


def sparse(data: str, out: str, size: int, data_bytes: int, zero_bytes: int) -> None:
    """Sparse source: DATA_BYTES copied from DATA in 1 MiB chunks spread evenly over SIZE, and
    ZERO_BYTES of written (allocated) zeros in the middle of the gaps between data chunks."""
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
            dst.seek((i * (chunks // max(zchunks, 1))) * step + step // 2)
            dst.write(zero)
        os.fsync(dst.fileno())


def tree(d: str, n: int) -> None:
    """N files of 1-16 KiB random data, 500 per directory."""
    rng = random.Random(7)
    for i in range(n):
        sub = os.path.join(d, "d%03d" % (i // 500))
        if i % 500 == 0:
            os.makedirs(sub, exist_ok=True)
        with open(os.path.join(sub, "f%05d" % i), "wb") as f:
            f.write(os.urandom(rng.randint(1024, 16384)))


def needed(needs: Iterable[str]) -> Set[str]:
    """The inputs to generate for phases needing NEEDS: big and sparse are made from source."""
    out = set(needs)
    if out & {"big", "sparse"}:
        out.add("source")
    unknown = out - set(f.name for f in fields(Inputs)) - {"raw"}
    if unknown:
        raise ValueError("no input named " + ", ".join(sorted(unknown)))
    return out - {"raw"}  # made by the phases that use it


def generate(work: str, s: Sizes, needs: Iterable[str]) -> Inputs:
    """Only the inputs in NEEDS (and what they are made from); the paths of all."""
    i = Inputs.under(work)
    want = needed(needs)
    if "source" in want:
        random_file(i.source, s.src_bytes)
    if "big" in want:
        with open(i.big, "wb") as out:
            for _ in range(s.big_copies):
                with open(i.source, "rb") as src:
                    shutil.copyfileobj(src, out, 4 * MIB)
    if "sparse" in want:
        sparse(i.source, i.sparse, s.sparse_gib * GIB, s.sparse_data_mib * MIB,
               s.sparse_zero_mib * MIB)
    if "tera" in want:
        with open(i.tera, "wb") as f:
            f.truncate(1 << 40)
    if "tar" in want:
        t = os.path.join(work, "tree")
        os.mkdir(t)
        tree(t, s.nfiles)
        subprocess.run(["tar", "-C", t, "-cf", i.tar, "."], check=True)
        shutil.rmtree(t)
    if "order" in want:
        random_file(i.order, s.order_mib * MIB)
    for name in ("source", "big", "sparse", "tera", "order"):
        if name in want:
            os.chmod(getattr(i, name), 0o444)
    os.sync()
    return i
