"""Runs untrusted, model-generated code so that it cannot touch anything but its own scratch dir.

Contract: in a *containing* mode the program sees a filesystem built from an allowlist -- the
system's /usr (and /bin, /lib... links), a few harmless /etc files and our Python interpreter
and site-packages, all read-only -- plus a size-limited tmpfs scratch dir `/sandbox` (its cwd,
HOME) and a private /tmp. The user's home, the checkout, `outputs/` and every secret are simply
not there. It has no network (fresh network namespace), its own PID namespace (it cannot see or
signal benchrun or the server; when its init dies every process in it dies), an emptied
environment, NO_NEW_PRIVS, an OOM score that makes it the kernel's first victim, and
RLIMIT_CPU / AS / NPROC / FSIZE plus a wall-clock timeout. As root it runs as `nobody`
(65534), because the kernel exempts uid 0 from RLIMIT_NPROC: bubblewrap (or _confine.py) does
the mounts as root, with every capability dropped but the two needed to change uid, and the
program gets none.

Containing modes, strongest first (result.json records the one used per task):
  bwrap        bubblewrap builds the layout (Debian: `apt-get install bubblewrap`).
  namespaces   _confine.py builds the same layout with unshare/mount/pivot_root itself.
`unconfined` (resource limits and the timeout only: the program has benchrun's user, network
and file access) is never chosen by `auto`; it is an explicit opt-in and the report names it.
When no containing mode works, `isolation()` raises NoSandbox with why and how to fix it, and
the checks that would execute code are recorded as not run.

Here: choosing the mode (isolation, probed once per mode) and running a program (Sandbox), so
that nothing it started outlives run(). What the program sees and the command line that builds
it -- the layout, the limits, bwrap's arguments or _confine.py's spec -- is confinement.py's."""
from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from benchrun.checks.confinement import (  # BOX, CONTAINED, UNCONFINED: callers read them here too
    BOX,
    CONFINE,
    CONTAINED,
    MODES,
    UNCONFINED,
    _env,
    command,
    run_as,
)
from benchrun.config import (
    SandboxLimits as Limits,  # the limits are config: declared once there
)

FIX = ("install bubblewrap (apt-get install bubblewrap) or allow namespaces; or set "
       "workload.sandbox.isolation=unconfined to run generated code with no containment")


class NoSandbox(Exception):
    """No containing mode works here (or the one asked for does not); the message says why."""


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


@functools.cache
def unavailable(mode: str) -> Optional[str]:
    """None when `mode` works here, else why not. Probed once, by running our interpreter in it
    and importing pytest as the sandbox user: exactly what checks will do."""
    if mode not in MODES:
        raise ValueError(f"isolation must be one of auto, {', '.join(MODES)}; got {mode!r}")
    if mode == UNCONFINED:
        return None
    if mode == "bwrap" and not shutil.which("bwrap"):
        return "bwrap: bubblewrap is not installed"
    with Sandbox(Limits(wall_s=30), mode) as sb:
        r = sb.run(["python", "-c", "import os, pytest; print(os.getcwd(), os.getuid())"])
    want = f"{BOX} {run_as() if run_as() is not None else os.getuid()}"
    if r.ok and r.stdout.split() == want.split():
        return None
    err = " ".join((r.stderr or r.stdout).split())[-200:] or f"exit {r.returncode}"
    return f"{mode}: {'timed out' if r.timed_out else err}"


@functools.cache
def kernel_refusal(mode: str) -> Optional[str]:
    """Why this machine itself cannot run `mode` (the tool is missing, the kernel refuses the
    namespaces it needs), else None. Narrower than unavailable(): a mode the kernel allows but
    benchrun fails to build is broken, not unavailable -- tests skip on this one only."""
    if mode == UNCONFINED:
        return None
    if mode == "bwrap":
        if not shutil.which("bwrap"):
            return "bubblewrap is not installed"
        probe = ["bwrap", "--unshare-all", "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "true"]
    else:
        probe = [sys.executable, CONFINE, "--kernel-probe"]
    try:
        r = subprocess.run(probe, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return None  # a slow machine is not a refusal: the real run then says what is wrong
    if r.returncode == 0:
        return None
    return f"the kernel refuses {mode}'s namespaces: {' '.join(r.stderr.split())[-200:] or f'exit {r.returncode}'}"


def available(mode: str) -> bool:
    return unavailable(mode) is None


def isolation(prefer: str = "auto") -> str:
    """The mode checks run in: `prefer` if it works, for `auto` the strongest containing mode.
    Raises NoSandbox (why, and the fix) when that is not possible; never falls back to
    `unconfined` by itself."""
    if prefer != "auto":
        why = unavailable(prefer)
        if why:
            raise NoSandbox(f"sandbox isolation {prefer!r} is not available on this machine ({why})")
        return prefer
    whys = []
    for m in CONTAINED:
        why = unavailable(m)
        if why is None:
            return m
        whys.append(why)
    raise NoSandbox(f"no sandbox that contains generated code works here ({'; '.join(whys)}); {FIX}")


class Sandbox:
    """with Sandbox(limits, isolation()) as sb: sb.write("x.py", code); sb.run(["python", "x.py"])
    `mode` is one of MODES, as isolation() chose it ("python" as argv[0]: our interpreter)."""

    def __init__(self, limits: Limits, mode: str):
        if mode not in MODES:
            raise ValueError(f"sandbox mode must be one of {', '.join(MODES)}; got {mode!r}")
        self.limits, self.mode = limits, mode
        self.dir: Path = Path()  # staging: what write() puts here is copied into the scratch dir

    def __enter__(self) -> Sandbox:
        self.dir = Path(tempfile.mkdtemp(prefix="benchrun-sbx-"))
        self._out = Path(tempfile.mkdtemp(prefix="benchrun-sbx-out-"))  # never visible inside
        self._chown(self.dir)
        return self

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
        shutil.rmtree(self._out, ignore_errors=True)

    def _chown(self, path: Path) -> None:
        uid = run_as()
        if uid is not None:  # the sandbox user reads its input and writes its output
            os.chown(path, uid, uid)

    def write(self, name: str, text: str) -> Path:
        path = self.dir / name
        path.write_text(text)
        self._chown(path)
        return path

    def run(self, argv: Sequence[str], stdin: str | None = None, wall_s: float | None = None) -> RunResult:
        env = _env(BOX, "/tmp") if self.mode != UNCONFINED else _env(str(self.dir), str(self.dir))
        wall = wall_s if wall_s is not None else self.limits.wall_s
        out, err = self._out / "stdout", self._out / "stderr"
        t0 = time.monotonic()
        with open(out, "wb") as fo, open(err, "wb") as fe:
            self._chown(out)
            self._chown(err)
            proc = subprocess.Popen(command(self.mode, self.limits, str(self.dir), argv), cwd="/",
                                    env=env, stdout=fo, stderr=fe, stdin=subprocess.PIPE,
                                    start_new_session=True)
            timed_out = False
            try:
                proc.communicate((stdin or "").encode(), timeout=wall)
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                _kill_all(proc)
        return RunResult(returncode=None if timed_out else proc.returncode,
                         stdout=_head(out, self.limits.output_bytes),
                         stderr=_head(err, self.limits.output_bytes),
                         timed_out=timed_out, wall_s=time.monotonic() - t0, isolation=self.mode)


def _pid_ns(pid: int) -> Optional[str]:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:  # gone, a zombie, or not ours to see
        return None


def _kill_all(proc: subprocess.Popen) -> None:
    """SIGKILL the launcher's process group and every descendant (setsid or not), then wait until
    the PID namespaces they ran in are empty: nothing the program started outlives run()."""
    import psutil

    try:
        kids = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        kids = []
    spaces = {_pid_ns(p.pid) for p in kids} - {_pid_ns(os.getpid()), None}
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            break
        proc.poll()
        time.sleep(0.01)
    for p in kids:
        try:
            p.kill()
        except psutil.Error:
            pass
    proc.wait()
    while spaces and time.monotonic() < deadline:
        left = [pid for pid in psutil.pids() if _pid_ns(pid) in spaces]
        if not left:
            break
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.01)


def _head(path: Path, n: int) -> str:
    with open(path, "rb") as fh:
        return fh.read(n).decode("utf-8", "replace")
