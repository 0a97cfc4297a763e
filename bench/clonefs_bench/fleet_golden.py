"""Fleet bench (row 14): the golden image, a real filesystem: ext4 made with `mkfs.ext4 -d` from
the root filesystem of the local podman image localhost/debian:12 (exported from a container
created from it, never started: no network, no registry). docker/test.sh (ctest
container_podman) makes that image by debootstrap and keeps it in podman's storage."""
import os
import shutil
import subprocess

from .config import GIB
from .proc import RunLog

IMAGE = "localhost/debian:12"
PODMAN = ("podman", "--runtime", "runc", "--cgroup-manager", "cgroupfs")
FIRST_FILE = "etc/os-release"   # the first file a job reads in the guest filesystem


def golden_bytes(gib: float) -> int:
    """The image's size: GIB rounded down to whole MiB (mkfs.ext4 wants whole blocks)."""
    return int(gib * GIB) >> 20 << 20


def export_rootfs(tar: str, runlog: RunLog) -> None:
    if runlog.run([*PODMAN, "image", "exists", IMAGE], check=False).returncode != 0:
        raise RuntimeError("row 14 needs the podman image %s: run docker/test.sh once (it makes"
                           " it by debootstrap)" % IMAGE)
    cid = runlog.run([*PODMAN, "create", IMAGE, "true"], capture=True).stdout.strip()
    try:
        runlog.run([*PODMAN, "export", "-o", tar, cid])
    finally:
        runlog.run([*PODMAN, "rm", cid], check=False)


def make_golden(path: str, gib: float, runlog: RunLog) -> int:
    """Writes the golden ext4 image at PATH (read-only once made); the bytes its files use."""
    work = path + ".d"
    tar, tree = work + "/rootfs.tar", work + "/root"
    os.makedirs(tree)
    try:
        export_rootfs(tar, runlog)
        runlog.run(["tar", "-C", tree, "--numeric-owner", "-xpf", tar])
        os.unlink(tar)
        with open(path, "wb") as f:
            f.truncate(golden_bytes(gib))
        runlog.run(["mkfs.ext4", "-q", "-F", "-L", "golden", "-E",
                    "nodiscard,lazy_itable_init=0,lazy_journal_init=0", "-d", tree, path])
        used = int(subprocess.run(["du", "-sb", tree], capture_output=True, text=True,
                                  check=True).stdout.split()[0])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    os.chmod(path, 0o444)
    os.sync()
    return used
