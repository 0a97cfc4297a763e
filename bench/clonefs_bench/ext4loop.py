"""Workloads 7 and 13's setting: ext4 on IMAGE through a loop device, mounted at a directory."""
import os
import shutil

from .proc import RunLog


def loop_dio(dev: str) -> int:
    """1 if loop device DEV does direct I/O on its backing file (sysfs loop/dio)."""
    with open("/sys/block/%s/loop/dio" % os.path.basename(dev)) as f:
        return int(f.read().strip())


class Ext4OnLoop:
    """losetup (+ mkfs.ext4 unless the image holds one) + mount for the length of a `with` block;
    umount and losetup -d after (umount -l if busy), whatever happened inside. DIRECT_IO: the
    loop device reads and writes IMAGE with O_DIRECT (losetup --direct-io=on) instead of through
    the page cache; an error if the kernel falls back to buffered I/O."""

    def __init__(self, image: str, mnt: str, runlog: RunLog, mkfs: bool = True,
                 direct_io: bool = False):
        self.image, self.mnt, self.runlog = image, mnt, runlog
        self.mkfs, self.direct_io = mkfs, direct_io
        self.loop = None
        self.is_mounted = False

    def __enter__(self) -> "Ext4OnLoop":
        try:
            dio = ["--direct-io=on"] if self.direct_io else []
            self.loop = self.runlog.run(["losetup", "-f", "--show", *dio, self.image],
                                        capture=True).stdout.strip()
            if self.direct_io and loop_dio(self.loop) != 1:
                raise RuntimeError("%s: losetup --direct-io=on fell back to buffered I/O on %s"
                                   % (self.loop, self.image))
            if self.mkfs:
                self.runlog.run(["mkfs.ext4", "-q", "-F", "-E",
                                 "nodiscard,lazy_itable_init=0,lazy_journal_init=0", self.loop])
            os.makedirs(self.mnt, exist_ok=True)
            self.runlog.run(["mount", self.loop, self.mnt])
            self.is_mounted = True
        except BaseException as e:
            self.__exit__(type(e), e, None)
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        clean = exc_type is None
        try:
            if self.is_mounted:
                if self.runlog.run(["umount", self.mnt], check=False).returncode != 0:
                    clean = False
                    self.runlog.run(["umount", "-l", self.mnt], check=False)
                self.is_mounted = False
            if self.loop:
                if self.runlog.run(["losetup", "-d", self.loop], check=False).returncode != 0:
                    clean = False
                self.loop = None
        finally:
            shutil.rmtree(self.mnt, ignore_errors=True)
        if exc_type is None and not clean:
            raise RuntimeError("could not unmount %s or detach its loop device" % self.mnt)
