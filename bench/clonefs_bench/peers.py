"""What clonefs is compared with: the peer (qemu-storage-daemon serving a qcow2 overlay over the
source, optionally with copy-on-read, exported over FUSE — started by bench/peer_qsd.sh) and the
trivial passthrough FUSE file over a destination (bench/passthrough_fuse.cc)."""
import os
import shutil
import subprocess
import time
from typing import Optional

from .proc import RunLog, drop_caches, fusermount_off, kill_ours, mounted, ours, touch

BENCH = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEER_QSD = os.path.join(BENCH, "peer_qsd.sh")


class Peer:
    """qemu-storage-daemon over SOURCE in DIR (overlay.qcow2, image, qsd.pid), mode cor|nocor.
    On leaving the `with` block the daemon is stopped (and its export unmounted if it lingers);
    DIR is removed unless keep_dir."""

    def __init__(self, source: str, d: str, mode: str, runlog: RunLog, keep_dir: bool = False):
        self.source, self.dir, self.mode, self.runlog, self.keep_dir = source, d, mode, runlog, keep_dir
        self.image = os.path.join(d, "image")
        self.overlay = os.path.join(d, "overlay.qcow2")
        self.pidfile = os.path.join(d, "qsd.pid")

    def __enter__(self) -> "Peer":
        try:
            out = self.runlog.run(["bash", PEER_QSD, "start", self.source, self.dir, self.mode],
                                  capture=True).stdout.strip()
            if out != os.path.realpath(self.image):
                raise RuntimeError("peer_qsd.sh exported %r, expected %s" % (out, self.image))
        except BaseException as e:
            self.__exit__(type(e), e, None)
            raise
        return self

    @property
    def pid(self) -> Optional[int]:
        try:
            with open(self.pidfile) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def stop(self) -> None:
        self.runlog.run(["bash", PEER_QSD, "stop", self.dir])
        if os.path.exists(self.pidfile):
            os.unlink(self.pidfile)

    def release(self) -> None:
        pid = self.pid
        if pid and ours(pid, self.dir):
            try:
                self.runlog.run(["bash", PEER_QSD, "stop", self.dir], check=False, timeout=60)
            except subprocess.TimeoutExpired:
                pass
            kill_ours(pid, self.dir, 5)
        if os.path.exists(self.pidfile):
            os.unlink(self.pidfile)
        fusermount_off(self.image, self.runlog)

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None and self.pid:
                try:
                    self.stop()
                except BaseException:
                    self.release()
                    raise
            self.release()
        finally:
            if not self.keep_dir:
                shutil.rmtree(self.dir, ignore_errors=True)


class Passthrough:
    """bench/passthrough_fuse.cc serving BACKING at MOUNTFILE (flags: --splice-write,
    --splice-read) for the length of a `with` block."""

    def __init__(self, binary: str, backing: str, mountfile: str, runlog: RunLog, *flags: str):
        self.binary, self.backing, self.image, self.runlog, self.flags = (
            binary, backing, mountfile, runlog, flags)
        self.proc: Optional[subprocess.Popen] = None

    def __enter__(self) -> "Passthrough":
        touch(self.image)
        self.proc = self.runlog.popen([self.binary, self.backing, self.image, *self.flags])
        deadline = time.monotonic() + 10
        while not mounted(self.image):
            if time.monotonic() >= deadline or self.proc.poll() is not None:
                self.release()
                raise RuntimeError("passthrough did not mount " + self.image)
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        self.runlog.run(["fusermount3", "-u", self.image])
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            raise RuntimeError("passthrough still running 10 s after fusermount3 -u")

    def release(self) -> None:
        fusermount_off(self.image, self.runlog)
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None and mounted(self.image):
                try:
                    self.stop()
                except BaseException:
                    self.release()
                    raise
            self.release()
        finally:
            if os.path.exists(self.image) and not mounted(self.image):
                os.unlink(self.image)


def read_through(image: str) -> float:
    """Full hydration of the peer: a sequential read of its copy-on-read export + sync, cold."""
    drop_caches()
    t0 = time.monotonic()
    subprocess.run(["dd", "if=" + image, "of=/dev/null", "bs=1M", "status=none"], check=True)
    os.sync()
    return time.monotonic() - t0
