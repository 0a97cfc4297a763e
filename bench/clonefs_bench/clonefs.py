"""The clonefs CLI, its status ioctl, and a clone mounted for the length of a `with` block."""
import fcntl
import json
import os
import shutil
import subprocess
import time
from typing import Optional

from .proc import RunLog, fusermount_off, kill_ours, mounted, touch, wait_gone

# src/control/control_protocol.h: _IOR(0xCF, 1, ControlText), ControlText = 16383 bytes.
STATUS_TEXT = (1 << 14) - 1
STATUS_IOCTL = (2 << 30) | (STATUS_TEXT << 16) | (0xCF << 8) | 1


def parse_status(buf: bytes) -> dict:
    return json.loads(bytes(buf).split(b"\0", 1)[0])


def live_status(image: str) -> dict:
    fd = os.open(image, os.O_RDONLY | os.O_CLOEXEC)
    try:
        buf = bytearray(STATUS_TEXT)
        fcntl.ioctl(fd, STATUS_IOCTL, buf, True)
    finally:
        os.close(fd)
    return parse_status(buf)


def compact(obj) -> str:
    """A status field as the notes show it (JSON without spaces)."""
    return json.dumps(obj, separators=(",", ":"))


class Clonefs:
    def __init__(self, binary: str, runlog: RunLog):
        self.binary, self.runlog = binary, runlog

    def __call__(self, *args: str, timeout: Optional[float] = None, check: bool = True):
        return self.runlog.run([self.binary, *args], timeout=timeout, check=check)

    def hydrate(self, image: str) -> float:
        """Resume hydration, poll the status ioctl every 10 ms until complete, fsync (durable like
        cp + sync: the fsync commits the last valid regions); seconds from resume to fsync."""
        t0 = time.monotonic()
        self("hydrate", image, "--resume")
        while True:
            s = live_status(image)
            if s.get("complete"):
                fd = os.open(image, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
                return time.monotonic() - t0
            if s.get("metadata_mode") != "rw":
                raise RuntimeError("hydration stopped: " + json.dumps(s))
            time.sleep(0.01)


class Clone:
    """DIR/{dest,meta,image}: a clone of SOURCE; mount() it any number of times. On leaving the
    `with` block it is unmounted (an error if that fails after a clean block; forced — fusermount3
    -uz, the daemon killed — after an exception) and DIR is removed unless keep_dir."""

    def __init__(self, tool: Clonefs, source: str, d: str, keep_dir: bool = False):
        self.tool, self.source, self.dir, self.keep_dir = tool, source, d, keep_dir
        self.dest, self.meta, self.image = d + "/dest", d + "/meta", d + "/image"
        self.pid: Optional[int] = None

    def __enter__(self) -> "Clone":
        os.makedirs(self.dir, exist_ok=True)
        return self

    def create(self, *extra: str) -> None:
        self.tool("create", "--source", self.source, "--dest", self.dest, "--metadata", self.meta,
                  *extra)

    def mount(self, *flags: str) -> None:
        touch(self.image)
        self.tool("mount", "--metadata", self.meta, self.image, *flags)
        self.pid = int(self.status()["pid"])

    def status(self) -> dict:
        return live_status(self.image)

    def unmount(self) -> None:
        """The normal unmount: `clonefs unmount`, then the daemon must be gone within 30 s."""
        pid, self.pid = self.pid, None
        self.tool("unmount", self.image)
        if not wait_gone(pid, self.image, 30):
            raise RuntimeError("clonefs daemon %s still running 30 s after unmount" % pid)

    def release(self) -> None:
        """Forced and idempotent: whatever is still mounted or running goes."""
        if mounted(self.image):
            try:
                r = self.tool("unmount", self.image, timeout=120, check=False).returncode
            except subprocess.TimeoutExpired:
                r = 1
            if r != 0:
                fusermount_off(self.image, self.tool.runlog)
        if self.pid:
            if not wait_gone(self.pid, self.image, 30):
                kill_ours(self.pid, self.image, 5)
            self.pid = None

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None and mounted(self.image):
                try:
                    self.unmount()
                except BaseException:
                    self.release()
                    raise
            else:
                self.release()
        finally:
            if not self.keep_dir:
                shutil.rmtree(self.dir, ignore_errors=True)


class MountedClone(Clone):
    """A Clone created and mounted on entering the `with` block."""

    def __init__(self, tool: Clonefs, source: str, d: str, *flags: str):
        super().__init__(tool, source, d)
        self.flags = flags

    def __enter__(self) -> "MountedClone":
        super().__enter__()
        try:
            self.create()
            self.mount(*self.flags)
        except BaseException as e:
            self.__exit__(type(e), e, None)
            raise
        return self
