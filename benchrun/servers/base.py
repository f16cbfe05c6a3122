"""What every backend shares: ports, the health wait, and stopping a process group."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional


class ServerError(RuntimeError):
    """A server could not be started or reached; the message is one line for the user.
    `command`: the argv a failed start ran, so the failed job's result records what was tried."""

    command: Optional[list[str]] = None


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def http_json(url: str, timeout: float = 2.0, headers: dict | None = None) -> tuple[int, object]:
    """GET url -> (status, parsed JSON or text). Status 0 when nothing answered."""
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, body = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read()
    except (urllib.error.URLError, OSError, ValueError):
        return 0, None
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body.decode("utf-8", "replace")


def reachable(url: str, headers: dict | None = None, timeout: float = 2.0, path: str = "/health",
              strict: bool = True) -> tuple[bool, int]:
    """The one health probe, at startup and after the load: (answers, HTTP status; 0 = no
    answer). A strict probe wants GET `path` 200; a lenient one (a server someone else runs)
    only an answer at all, on `path` or /v1/models (OpenAI-compatible servers often lack /health)."""
    status, _ = http_json(url + path, timeout=timeout, headers=headers)
    if strict:
        return status == 200, status
    if status == 0:
        status, _ = http_json(url + "/v1/models", timeout=timeout, headers=headers)
    return status != 0, status


# A crash (ggml's abort) appends a gdb backtrace of 100+ lines that says nothing about the cause.
_BACKTRACE = re.compile(r"^(\[New LWP |\[New Thread |\[Thread debugging|#0 )")
_CAUSE = re.compile(r"error|fail|fatal|abort|assert|exception|couldn't|cannot|unable|out of memory", re.I)


def log_cause(path: Optional[Path], lines: int = 4) -> str:
    """The last lines of server.log that say why the server stopped: a crash backtrace cut
    off, lines that name an error preferred over the rest."""
    if not path or not path.exists():
        return ""
    with open(path, "rb") as fh:
        fh.seek(max(0, fh.seek(0, 2) - (1 << 16)))
        text = fh.read().decode("utf-8", "replace")
    kept = []
    for line in text.splitlines():
        if _BACKTRACE.match(line):
            break
        if line.strip():
            kept.append(line.strip())
    errors = [x for x in kept if _CAUSE.search(x)]
    return "\n".join((errors or kept)[-lines:])


@dataclass
class ServerHandle:
    """A server that is up and healthy."""

    backend: str
    url: str
    pid: Optional[int] = None
    command: list = field(default_factory=list)
    build_info: Optional[str] = None
    startup_s: float = 0.0
    log_path: Optional[Path] = None
    headers: dict = field(default_factory=dict)  # e.g. Authorization; never saved
    process: Optional[subprocess.Popen] = field(default=None, repr=False)
    fingerprint: str = ""
    health: tuple = ("/health", True)  # (path, strict), from the backend
    llama_cpp: bool = True  # speaks llama.cpp's extensions (the backend says, or /props named a build)

    def alive(self) -> bool:
        return self.process is None or self.process.poll() is None

    def probe(self, timeout: float = 2.0) -> tuple[bool, int]:
        return reachable(self.url, self.headers, timeout, *self.health)

    def describe(self) -> dict:
        return {"backend": self.backend, "url": self.url, "pid": self.pid, "command": self.command,
                "build_info": self.build_info, "startup_s": self.startup_s}


def fetch_build_info(url: str, headers: dict | None = None) -> Optional[str]:
    status, props = http_json(url + "/props", headers=headers)
    if status == 200 and isinstance(props, dict):
        return props.get("build_info")
    return None


def default_threads() -> int:
    """Server threads when the preset sets none, for every backend that launches llama.cpp:
    its physical cores (llama.cpp's own default), but never every core this process may use.
    llama.cpp's threads meet at a barrier on every layer, so with one thread per core any other
    work -- benchrun's own client first of all -- stalls them all: on the 2-core VM, with other
    work on the box, tiny's TPOT was 3.9 ms with 2 threads and 0.44 ms with 1, and a reasoning
    test's two replies from a real llama-server took 128 s with 2 and 13 s with 1
    (docs/hardware.md)."""
    import psutil

    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    return max(1, min(psutil.cpu_count(logical=False) or n, n - 1))


def _find_prctl():
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError, ImportError):
        return None


# Resolved here, not in the child: between fork and exec only a plain C call is safe.
_PRCTL = _find_prctl() if sys.platform == "linux" else None
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in the child before exec (Linux): the kernel sends it SIGTERM when benchrun dies,
    even by SIGKILL, so a crashed benchrun never leaves a server holding a GPU."""
    _PRCTL(_PR_SET_PDEATHSIG, int(signal.SIGTERM))


def listens_on(pid: int, port: int) -> Optional[bool]:
    """Does process `pid` (or one of its children) listen on `port`? None when unknown."""
    try:
        import psutil

        root = psutil.Process(pid)
        for p in [root, *root.children(recursive=True)]:
            for c in p.net_connections(kind="tcp"):
                if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port:
                    return True
        return False
    except Exception:  # noqa: BLE001 -- no psutil rights on this OS: cannot tell
        return None


def server_failure(msg: str, log_path: Optional[Path]) -> ServerError:
    """A start failure: the cause, then the last lines of server.log (the real reason)."""
    cause = log_cause(log_path)
    return ServerError(f"{msg}; server.log: {cause.replace(chr(10), ' | ')}" if cause else msg)


def launch(command: list[str], url: str, log_path: Path, startup_timeout_s: float,
           env: dict | None = None, health_path: str = "/health") -> tuple[subprocess.Popen, float]:
    """Start `command` in its own process group, logging to log_path, and wait for
    GET `health_path` == 200 from *this* process. On any failure, Ctrl-C included, the process is
    stopped before the error propagates: no server outlives a failed start."""
    t0 = time.monotonic()
    port = int(url.rsplit(":", 1)[1])
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        try:
            proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True,
                                    env={**os.environ, **(env or {})},
                                    preexec_fn=_die_with_parent if _PRCTL is not None else None)
        except OSError as e:
            err = ServerError(f"cannot run {command[0]}: {e.strerror}")
            err.command = list(command)
            raise err from None
    deadline = t0 + startup_timeout_s
    try:
        while True:
            if proc.poll() is not None:
                raise server_failure(f"server exited with code {proc.returncode} during startup", log_path)
            if reachable(url, timeout=1.0, path=health_path)[0]:
                # Someone else may have taken the port between our check and the server's
                # bind; then their /health answered, and we would benchmark the wrong server.
                if listens_on(proc.pid, port) is False:
                    time.sleep(0.2)  # the listener may be a moment behind the reply
                    if proc.poll() is not None or listens_on(proc.pid, port) is False:
                        raise server_failure(f"port {port} is taken by another process", log_path)
                return proc, time.monotonic() - t0
            if time.monotonic() > deadline:
                raise server_failure(f"server not healthy after {startup_timeout_s:g}s "
                                     f"(model.startup_timeout_s)", log_path)
            time.sleep(0.05)
    except BaseException as e:
        stop_process(proc, 5.0)
        if isinstance(e, ServerError):
            e.command = list(command)
        raise


def stop_process(proc: subprocess.Popen, grace_s: float) -> None:
    """SIGTERM the process group, then SIGKILL after the grace period. SIGCONT too: a
    stopped (hung, SIGSTOPped) server would otherwise sit on the SIGTERM until the kill."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
            os.killpg(proc.pid, signal.SIGCONT)
        except ProcessLookupError:
            proc.poll()  # reap it
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue
