"""The clonefs CLI, its status ioctl, and a clone mounted for the length of a `with` block."""
import fcntl
import json
import os
import contextlib
import shutil
import subprocess
import time
from typing import Iterator, Optional

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


# The kinds of open of IMAGE (status "passthrough"): through the daemon, or by the kernel from
# DEST once every region is valid (docs/SEMANTICS.md, "Once hydrated: kernel passthrough").
FUSE_PATH, PASSTHROUGH = "fuse", "passthrough"


def open_kinds(status: dict) -> str:
    """The passthrough part of STATUS as the notes show it."""
    p = status.get("passthrough") or {}
    return "passthrough %s%s: %s passthrough opens, %s FUSE-path opens" % (
        p.get("state"), " (%s)" % p["reason"] if p.get("reason") else "",
        p.get("passthrough_opens"), p.get("fuse_opens"))


def opens_all_of(status: dict, kind: str) -> bool:
    """Every live open of IMAGE in STATUS is of KIND, and there is one at least (the open that
    read STATUS counts: it is of the kind the next open gets)."""
    p = status.get("passthrough") or {}
    pt, fuse = p.get("passthrough_opens") or 0, p.get("fuse_opens") or 0
    if kind == PASSTHROUGH:
        return pt > 0 and fuse == 0
    if kind == FUSE_PATH:
        return fuse > 0 and pt == 0
    raise ValueError("no kind of open " + kind)


def expect_opens(image: str, kind: str, where: str) -> dict:
    """IMAGE's status, if every live open of IMAGE is of KIND; else an error naming WHERE: a
    figure must not be labelled with a path its I/O did not take."""
    s = live_status(image)
    if not opens_all_of(s, kind):
        raise RuntimeError("%s: expected only %s opens of %s, status says %s"
                           % (where, kind, image, open_kinds(s)))
    return s


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

    def expect_opens(self, kind: str, where: str) -> dict:
        return expect_opens(self.image, kind, where)

    def await_passthrough(self, where: str, timeout: float = 10) -> None:
        """Until the next open of IMAGE is a passthrough open: every region valid and no
        FUSE-path open left (the kernel reports a close just after close(2) returns, so a
        status read just closed may still count; docs/SEMANTICS.md, "Which opens")."""
        deadline = time.monotonic() + timeout
        while not opens_all_of(self.status(), PASSTHROUGH):
            if time.monotonic() >= deadline:
                self.expect_opens(PASSTHROUGH, where + " (after %.0f s)" % timeout)
            time.sleep(0.01)

    @contextlib.contextmanager
    def held_open(self) -> Iterator[int]:
        """IMAGE held open (read-only) for the length of the block: every later open of IMAGE
        is of this open's kind (the kernel allows an inode one kind at a time). Opened before
        hydration completes, it keeps them on the FUSE path, as a VM or a loop device running
        through hydration is."""
        fd = os.open(self.image, os.O_RDONLY | os.O_CLOEXEC)
        try:
            yield fd
        finally:
            os.close(fd)

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
