"""Runs untrusted, model-generated code: its own temporary directory (also its HOME and TMPDIR),
a scrubbed environment, CPU-time / address-space / process-count / file-size limits, a wall-clock
timeout after which its whole process group is killed, and, where the machine allows it, no
network and no writes outside its directory.

Isolation, strongest first (`isolation()` says which one is in force; result.json records it):
  bwrap         bubblewrap: read-only root, private /tmp, the sandbox dir bound read-write,
                all namespaces unshared (no network, own PIDs).
  namespaces    user + network + IPC + mount + PID namespaces entered by _confine.py: no network,
                tmpfs over /tmp, /var/tmp and /dev/shm, other writes limited by file permissions.
  rlimits-only  resource limits and the timeout only.
As root, RLIMIT_NPROC does not bind (the kernel exempts uid 0), so the program runs as the
unprivileged uid `nobody` (65534); that needs an interpreter `nobody` may execute, found by
`python_for_sandbox()`. Where none exists, forking cannot be bounded and `nproc_bounded` is False."""
from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

NOBODY = 65534
CONFINE = str(Path(__file__).with_name("_confine.py"))
MODES = ("bwrap", "namespaces", "rlimits-only")


@dataclass
class Limits:
    cpu_s: int = 10
    memory_mib: int = 1024  # RLIMIT_AS: address space, generous for CPython + pytest
    nproc: int = 32  # processes beyond those the sandbox user already has
    fsize_mib: int = 16  # largest file it may write, stdout and stderr included
    wall_s: float = 15.0
    output_bytes: int = 64 * 1024  # how much of stdout/stderr is read back


@dataclass
class RunResult:
    returncode: Optional[int]
    stdout: str
    stderr: str
    timed_out: bool
    wall_s: float
    isolation: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


def _run_as() -> Optional[int]:
    """The uid the program runs as: nobody when we are root, else our own (None)."""
    return NOBODY if os.geteuid() == 0 else None


def _probe(argv: list[str], env: dict | None = None, timeout: float = 20) -> bool:
    uid = _run_as()
    try:
        r = subprocess.run(argv, env=env or {"PATH": "/usr/bin:/bin"}, capture_output=True,
                           timeout=timeout, cwd="/", user=uid, group=uid,
                           extra_groups=[] if uid is not None else None)
        return r.returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@functools.lru_cache(maxsize=1)
def python_for_sandbox() -> tuple[Optional[str], dict]:
    """(interpreter, extra env) with which the sandbox user can run Python and import pytest.
    Our own interpreter first; as root it may live in an unreadable home (e.g. /root/.pyenv),
    then a system python3 of the same version with our site-packages on PYTHONPATH."""
    site = sysconfig.get_paths()["purelib"]
    cands = [sys.executable, os.path.realpath(sys.executable), shutil.which("python3") or "",
             f"/usr/bin/python{sys.version_info[0]}.{sys.version_info[1]}", "/usr/bin/python3"]
    want = f"{sys.version_info[0]}.{sys.version_info[1]}"
    for exe in dict.fromkeys(c for c in cands if c):
        for env in ({}, {"PYTHONPATH": site}):
            probe = f"import sys, pytest; assert '%d.%d' % sys.version_info[:2] == {want!r}"
            if _probe([exe, "-c", probe], {"PATH": "/usr/bin:/bin", **env}):
                return exe, env
    return None, {}


@functools.lru_cache(maxsize=None)
def available(mode: str) -> bool:
    """Whether `mode` works on this machine (probed once, by really running `true` in it)."""
    py, env = python_for_sandbox()
    if mode == "rlimits-only":
        return True
    if py is None:
        return False
    if mode == "bwrap":
        bw = shutil.which("bwrap")
        return bool(bw) and _probe([py, CONFINE, "bwrap", *_limit_args(Limits(), "/"), "--",
                                    *_bwrap_argv(bw, "/tmp", ["true"])], {"PATH": "/usr/bin:/bin", **env})
    if mode == "namespaces":
        box = tempfile.mkdtemp(prefix="benchrun-probe-")
        try:
            if _run_as() is not None:
                os.chown(box, NOBODY, NOBODY)
            return _probe([py, CONFINE, "namespaces", *_limit_args(Limits(), box), "--", "true"],
                          {"PATH": "/usr/bin:/bin", **env})
        finally:
            shutil.rmtree(box, ignore_errors=True)
    raise ValueError(f"isolation must be one of {', '.join(MODES)} or auto, got {mode!r}")


def isolation(prefer: str = "auto") -> str:
    """The strongest isolation this machine allows (or `prefer`, if it is available)."""
    if prefer != "auto":
        if not available(prefer):
            raise ValueError(f"sandbox isolation {prefer!r} is not available on this machine")
        return prefer
    return next(m for m in MODES if available(m))


def drops_privileges() -> bool:
    """True when we are root and the program runs as `nobody` instead."""
    return _run_as() is not None and python_for_sandbox()[0] is not None


def nproc_bounded() -> bool:
    """RLIMIT_NPROC only binds a non-root user."""
    return os.geteuid() != 0 or drops_privileges()


def _user_procs(uid: int) -> int:
    import psutil

    n = 0
    for p in psutil.process_iter(["uids"]):
        try:
            n += p.info["uids"].real == uid
        except (AttributeError, psutil.Error):
            pass
    return n


def _limit_args(lim: Limits, box: str) -> list[str]:
    uid = _run_as() if _run_as() is not None else os.getuid()
    # RLIMIT_NPROC counts every process of the user, so allow what it already runs plus ours.
    nproc = _user_procs(uid) + lim.nproc
    dirs = os.pathsep.join([box, *_python_dirs_under_tmp()])  # bound back over a private /tmp
    return [str(lim.cpu_s), str(lim.memory_mib << 20), str(nproc), str(lim.fsize_mib << 20), dirs]


def _python_dirs_under_tmp() -> list[str]:
    """Our interpreter's prefix and site-packages when they live under /tmp or /var/tmp (a
    checkout there): the sandbox's private /tmp would hide them, so they are bound back read-only."""
    dirs = {os.path.realpath(sys.prefix), os.path.realpath(sysconfig.get_paths()["purelib"])}
    return sorted(d for d in dirs if d.startswith(("/tmp/", "/var/tmp/")) and os.path.isdir(d))


def _bwrap_argv(bw: str, box: str, argv: Sequence[str]) -> list[str]:
    rebind = [a for d in _python_dirs_under_tmp() for a in ("--ro-bind", d, d)]
    return [bw, "--unshare-all", "--die-with-parent", "--new-session", "--ro-bind", "/", "/",
            "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--tmpfs", "/var/tmp",
            *rebind, "--bind", box, box, "--chdir", box, "--", *argv]


class Sandbox:
    """with Sandbox() as sb: sb.write("x.py", code); sb.run(["python", "x.py"])
    "python" as argv[0] means the interpreter the sandbox user can run."""

    def __init__(self, limits: Limits | None = None, prefer: str = "auto"):
        self.limits = limits or Limits()
        self.mode = isolation(prefer)
        self.dir: Path = Path()
        self._out: Path = Path()

    def __enter__(self) -> "Sandbox":
        self.dir = Path(tempfile.mkdtemp(prefix="benchrun-sbx-"))
        self._out = Path(tempfile.mkdtemp(prefix="benchrun-sbx-out-"))  # outside the sandbox
        uid = _run_as()
        if uid is not None:
            os.chown(self.dir, uid, uid)
            os.chown(self._out, uid, uid)
        return self

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
        shutil.rmtree(self._out, ignore_errors=True)

    def write(self, name: str, text: str) -> Path:
        path = self.dir / name
        path.write_text(text)
        uid = _run_as()
        if uid is not None:
            os.chown(path, uid, uid)
        return path

    def run(self, argv: Sequence[str], stdin: str | None = None, wall_s: float | None = None) -> RunResult:
        py, pyenv = python_for_sandbox()
        argv = list(argv)
        if argv and argv[0] == "python":  # no interpreter for `nobody`: ours, as ourselves
            argv[0] = py or sys.executable
        box = str(self.dir)
        env = {"PATH": "/usr/bin:/bin", "HOME": box, "TMPDIR": box, "LANG": "C.UTF-8",
               "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0",
               "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "BENCHRUN_SANDBOX": box, **pyenv}
        launcher = [py or sys.executable, CONFINE, self.mode, *_limit_args(self.limits, box), "--"]
        if self.mode == "bwrap":
            argv = _bwrap_argv(shutil.which("bwrap") or "bwrap", box, argv)
        uid = _run_as() if py else None
        wall = wall_s if wall_s is not None else self.limits.wall_s
        out, err = self._out / "stdout", self._out / "stderr"
        t0 = time.monotonic()
        with open(out, "wb") as fo, open(err, "wb") as fe:
            if uid is not None:
                os.chown(out, uid, uid)
                os.chown(err, uid, uid)
            proc = subprocess.Popen(launcher + argv, cwd=box, env=env, stdout=fo, stderr=fe,
                                    stdin=subprocess.PIPE, start_new_session=True, user=uid,
                                    group=uid, extra_groups=[] if uid is not None else None)
            timed_out = False
            try:
                proc.communicate((stdin or "").encode(), timeout=wall)
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                _kill_group(proc, box)
        return RunResult(returncode=None if timed_out else proc.returncode,
                         stdout=_head(out, self.limits.output_bytes),
                         stderr=_head(err, self.limits.output_bytes),
                         timed_out=timed_out, wall_s=time.monotonic() - t0, isolation=self.mode)


def _kill_group(proc: subprocess.Popen, marker: str) -> None:
    """SIGKILL the whole process group (the program and anything it forked) until it is gone,
    then anything that left the group (setsid) but still carries this run's env marker."""
    import psutil

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            break
        proc.poll()
        time.sleep(0.01)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:  # pragma: no cover -- SIGKILL cannot be ignored
        pass
    for p in psutil.process_iter():
        try:
            if p.pid != os.getpid() and p.environ().get("BENCHRUN_SANDBOX") == marker:
                p.kill()
        except psutil.Error:
            pass


def _head(path: Path, n: int) -> str:
    with open(path, "rb") as fh:
        return fh.read(n).decode("utf-8", "replace")
