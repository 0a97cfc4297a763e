"""Logging, commands, processes, mounts, caches and the small /proc readings the bench needs."""
import os
import signal
import subprocess
import sys
import time
from typing import Optional, Sequence

MIB = 1 << 20


def log(msg: str) -> None:
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


class RunLog:
    """Where the output of every command goes (work/run.log); its tail is shown on failures."""

    def __init__(self, path: str):
        self.path = path

    def run(self, cmd: Sequence[str], timeout: Optional[float] = None, check: bool = True,
            capture: bool = False) -> subprocess.CompletedProcess:
        with open(self.path, "ab") as f:
            return subprocess.run(list(cmd), stdout=subprocess.PIPE if capture else f, stderr=f,
                                  timeout=timeout, check=check, text=capture or None)

    def popen(self, cmd: Sequence[str], **kw) -> subprocess.Popen:
        with open(self.path, "ab") as f:
            return subprocess.Popen(list(cmd), stdout=f, stderr=f, **kw)

    def tail(self, n: int = 5) -> str:
        try:
            with open(self.path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""


def ours(pid: Optional[int], tag: str) -> bool:
    """PID alive and its command line mentions TAG (guards against PID reuse)."""
    if not pid:
        return False
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return tag in cmdline


def wait_gone(pid: Optional[int], tag: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while ours(pid, tag):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def kill_ours(pid: Optional[int], tag: str, grace: float) -> None:
    """SIGTERM, then SIGKILL after GRACE seconds: only while PID is still the process we started."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5)):
        if not ours(pid, tag):
            return
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        if wait_gone(pid, tag, wait):
            return


def unescape_mount_field(s: str) -> str:
    """/proc/mounts escapes space, tab, newline and backslash as \\ooo."""
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and len(s[i + 1:i + 4]) == 3 and s[i + 1:i + 4].isdigit():
            out.append(chr(int(s[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def mount_points(mounts_text: str) -> set:
    return {unescape_mount_field(line.split()[1]) for line in mounts_text.splitlines()
            if len(line.split()) > 1}


def mounted(path: str) -> bool:
    with open("/proc/mounts") as f:
        return path in mount_points(f.read())


def fusermount_off(path: str, runlog: RunLog) -> None:
    """Unmounts a FUSE mount, lazily if it is busy (cleanup only)."""
    if mounted(path):
        if runlog.run(["fusermount3", "-u", path], check=False).returncode != 0:
            runlog.run(["fusermount3", "-uz", path], check=False)


def drop_caches() -> None:
    """"cold": sync; echo 3 > /proc/sys/vm/drop_caches."""
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def status_field_kib(status_text: str, key: str) -> Optional[int]:
    for line in status_text.splitlines():
        parts = line.split()
        if parts and parts[0] == key + ":":
            return int(parts[1])
    return None


def rss_mib(pid: int, key: str = "VmRSS") -> float:
    with open("/proc/%d/status" % pid) as f:
        kib = status_field_kib(f.read(), key)
    if kib is None:
        raise RuntimeError("no %s for pid %d" % (key, pid))
    return kib / 1024


def du_kib(path: str) -> int:
    """Allocated size in KiB, as `du -k` shows it for a file."""
    return (os.stat(path).st_blocks * 512 + 1023) // 1024


def du_mib(path: str) -> float:
    return du_kib(path) / 1024


def touch(path: str) -> None:
    with open(path, "a"):
        pass
