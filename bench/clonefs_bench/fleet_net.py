"""Fleet bench (row 14, issue 28): the HTTP server every client of the fleet shares, and the
delay line in front of it (clonefs_bench/fleet_delay.py: this kernel has no netem).

nginx serves the golden on 127.0.0.1 with its own prefix (configuration, pid, logs) in a
directory of the work directory, in the foreground as our child, stopped by its PID; every
client reaches it through the delay line. Both are released on leaving their `with` blocks,
whatever happened inside."""
import os
import shutil
import socket
import subprocess
import sys
import time
from typing import Dict, Optional, Sequence

from .proc import RunLog, kill_ours

BENCH = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DELAY_HOW = ("the delay is added to every HTTP answer by a delay line in front of nginx"
             " (clonefs_bench/fleet_delay.py; this kernel has no netem), the same for every client")
# The access log line: method, status, bytes sent (headers + body), the Range asked for.
LOG_FORMAT = "$request_method $status $bytes_sent $http_range"


def nginx_conf(prefix: str, root: str, listen: str) -> str:
    """nginx's configuration: static files from ROOT (Range requests served by nginx itself),
    every path under PREFIX, the workers running as root (the golden lies in a 0700 work
    directory), no cache headers that could make a client skip a request."""
    return """\
daemon off;
master_process on;
user root;
worker_processes 2;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    log_format fleet '{fmt}';
    access_log {prefix}/access.log fleet;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    keepalive_timeout 600s;
    types {{ }}
    default_type application/octet-stream;
    server {{
        listen {listen};
        root {root};
    }}
}}
""".format(prefix=prefix, root=root, listen=listen, fmt=LOG_FORMAT)


def bytes_sent(log_text: str) -> int:
    """The bytes nginx sent (headers and bodies) in access-log lines of LOG_FORMAT."""
    total = 0
    for line in log_text.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[2].isdigit():
            total += int(parts[2])
    return total


def status_counts(log_text: str) -> Dict[str, int]:
    """How many requests got each HTTP status (a 416 or 412 in a run is worth a note)."""
    out: Dict[str, int] = {}
    for line in log_text.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            out[parts[1]] = out.get(parts[1], 0) + 1
    return out


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


class DelayLine:
    """clonefs_bench/fleet_delay.py relaying 127.0.0.1:PORT to the server's TARGET port with
    DELAY_MS added to every answer, for the length of a `with` block; stopped by its PID."""

    def __init__(self, target_port: int, delay_ms: int, runlog: RunLog):
        self.target_port, self.delay_ms, self.runlog = target_port, delay_ms, runlog
        self.port = free_port()
        self.argv = [sys.executable, "-B", "-m", "clonefs_bench.fleet_delay", str(self.port),
                     str(target_port), str(delay_ms)]
        self.proc: Optional[subprocess.Popen] = None

    def __enter__(self) -> "DelayLine":
        self.proc = self.runlog.popen(self.argv, cwd=BENCH)
        deadline = time.monotonic() + 10
        while not _listening(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError("the delay line did not start: " + " ".join(self.argv))
            time.sleep(0.05)
        return self

    def url(self, name: str) -> str:
        return "http://127.0.0.1:%d/%s" % (self.port, name)

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            kill_ours(self.proc.pid, "clonefs_bench.fleet_delay", 5)
            self.proc.wait()
        self.proc = None


class Nginx:
    """nginx serving ROOT at http://127.0.0.1:PORT/, with its own prefix in DIR."""

    def __init__(self, root: str, d: str, runlog: RunLog):
        self.root, self.dir, self.runlog = root, d, runlog
        self.conf = os.path.join(d, "nginx.conf")
        self.access_log = os.path.join(d, "access.log")
        self.port = free_port()
        self.proc: Optional[subprocess.Popen] = None

    def url(self, name: str) -> str:
        return "http://127.0.0.1:%d/%s" % (self.port, name)

    def __enter__(self) -> "Nginx":
        os.makedirs(self.dir, exist_ok=True)
        with open(self.conf, "w") as f:
            f.write(nginx_conf(self.dir, self.root, "127.0.0.1:%d" % self.port))
        self.proc = self.runlog.popen(["nginx", "-p", self.dir, "-e",
                                       os.path.join(self.dir, "error.log"), "-c", self.conf])
        deadline = time.monotonic() + 10
        while not _listening(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError("nginx did not start (see %s/error.log)" % self.dir)
            time.sleep(0.05)
        return self

    def log_size(self) -> int:
        try:
            return os.path.getsize(self.access_log)
        except OSError:
            return 0

    def log_since(self, offset: int) -> str:
        with open(self.access_log, errors="replace") as f:
            f.seek(offset)
            return f.read()

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            kill_ours(self.proc.pid, self.conf, 10)
            self.proc.wait()
        self.proc = None


def wait4_maxrss_mib(proc: subprocess.Popen, argv: Sequence[str]) -> float:
    """Waits for PROC; its peak RSS (ru_maxrss) in MiB. An error if it failed."""
    _, status, ru = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError("%s exited with %d" % (" ".join(argv), proc.returncode))
    return ru.ru_maxrss / 1024
