"""Workload 7's setting: ext4 made on IMAGE through a loop device, mounted at a directory."""
import os
import shutil

from .proc import RunLog


class Ext4OnLoop:
    """losetup + mkfs.ext4 + mount for the length of a `with` block; umount and losetup -d after
    (umount -l if busy), whatever happened inside."""

    def __init__(self, image: str, mnt: str, runlog: RunLog):
        self.image, self.mnt, self.runlog = image, mnt, runlog
        self.loop = None
        self.is_mounted = False

    def __enter__(self) -> "Ext4OnLoop":
        try:
            self.loop = self.runlog.run(["losetup", "-f", "--show", self.image],
                                        capture=True).stdout.strip()
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
