"""How a sandboxed program is confined (sandbox.py states the contract): the filesystem it sees
(layout: the system's dirs, a few /etc files and our interpreter read-only, a tmpfs scratch dir
and /tmp, /dev and /proc), its limits (RLIMIT_NPROC counted as the kernel counts it), its
emptied environment, and the one command line that builds all of it -- bubblewrap's arguments,
or the spec _confine.py reads. Pure but for reading the filesystem and the process table."""
from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import sysconfig
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

from benchrun.config import (
    SandboxLimits as Limits,  # the limits are config: declared once there
)

NOBODY = 65534
CONFINE = str(Path(__file__).with_name("_confine.py"))
CONTAINED = ("bwrap", "namespaces")
UNCONFINED = "unconfined"
MODES = (*CONTAINED, UNCONFINED)
BOX = "/sandbox"  # the scratch dir as the program sees it
INPUT = "/.sandbox-input"  # the files written with Sandbox.write, read-only, copied into BOX
CONFINE_IN = "/.sandbox-confine.py"
_ETC = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime",
        "/etc/passwd", "/etc/group", "/etc/nsswitch.conf", "/etc/alternatives")
_SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")


def run_as() -> Optional[int]:
    """The uid the program runs as when it is not ours: nobody when we are root."""
    return NOBODY if os.geteuid() == 0 else None


def _ro_paths() -> list[str]:
    """What the program may read: system dirs, harmless /etc files, our interpreter (its
    prefix, the venv, site-packages), outermost first, nothing twice."""
    paths = [p for p in (*_SYSTEM, *_ETC) if os.path.lexists(p)]
    py = {sys.prefix, sys.base_prefix, sys.exec_prefix, *sysconfig.get_paths().values()}
    py |= {os.path.realpath(p) for p in py}
    py.add(os.path.dirname(os.path.realpath(sys.executable)))
    out: list[str] = []
    for p in sorted(paths) + sorted(q for q in py if os.path.isdir(q)):
        if not any(p == o or p.startswith(o.rstrip("/") + "/") for o in out):
            out.append(p)
    return out


def layout(lim: Limits, staging: str) -> list[list[str]]:
    """The sandbox's filesystem, in mount order: ["dir", dest] | ["ro", src, dest] |
    ["link", target, dest] | ["tmpfs", dest, size_bytes] | ["dev"] | ["proc"]. bwrap and
    _confine.py both build it. The dirs leading to a bind are made 0755 (bwrap would copy a
    private home's 0700, which locks the sandbox user out of the interpreter)."""
    size = str(lim.scratch_mib << 20)
    out: list[list[str]] = [["tmpfs", "/tmp", size]]
    made = {"/", "/tmp"}
    for p in _ro_paths():
        parents = [str(d) for d in reversed(Path(p).parents) if str(d) not in made]
        made.update(parents)
        out += [["dir", d] for d in parents]
        out.append(["link", os.readlink(p), p] if os.path.islink(p) and p in _SYSTEM else ["ro", p, p])
    out += [["tmpfs", BOX, size], ["ro", staging, INPUT], ["ro", CONFINE, CONFINE_IN], ["dev"], ["proc"]]
    return out


def _bwrap_args(lay: list[list[str]]) -> list[str]:
    bw = shutil.which("bwrap") or "bwrap"
    if run_as() is not None:  # root: no user namespace needed (nor, in a container, available)
        ns = ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
              "--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        ns = ["--unshare-all", "--unshare-user", "--disable-userns", "--cap-drop", "ALL"]
    args = [bw, *ns, "--die-with-parent", "--new-session"]
    for item in lay:
        kind = item[0]
        if kind == "dir":
            args += ["--perms", "0755", "--dir", item[1]]
        elif kind == "ro":
            args += ["--ro-bind", item[1], item[2]]
        elif kind == "link":
            args += ["--symlink", item[1], item[2]]
        elif kind == "tmpfs":
            args += ["--perms", "1777", "--size", item[2], "--tmpfs", item[1]]
        elif kind == "dev":
            args += ["--dev", "/dev"]
        elif kind == "proc":
            args += ["--proc", "/proc"]
    return args + ["--remount-ro", "/", "--chdir", "/", "--"]


def _user_procs(uid: int) -> int:
    import psutil

    n = 0
    for p in psutil.process_iter(["uids"]):
        try:
            n += p.info["uids"].real == uid
        except (AttributeError, psutil.Error):
            pass
    return n


def _nproc(mode: str, lim: Limits) -> int:
    """RLIMIT_NPROC for the program. It counts the processes of the program's uid: as root that
    is nobody's on the whole machine, so allow those plus ours. A user namespace (a normal user's
    contained modes) has counted its own processes apart since Linux 5.14: its init, the
    program, and ours; before that, every process of the user counts."""
    if mode != UNCONFINED and run_as() is not None:
        return _user_procs(NOBODY) + lim.nproc
    if mode != UNCONFINED and tuple(map(int, platform.release().split(".")[:2])) >= (5, 14):
        return 2 + lim.nproc
    return _user_procs(os.getuid()) + lim.nproc


def _spec(mode: str, lim: Limits, staging: str) -> dict[str, Any]:
    """What _confine.py needs: limits, the uid to drop to, and the layout to build."""
    uid = run_as()
    contained = mode != UNCONFINED
    return {"mode": mode, "staging": staging, "drop_to": uid if contained else None,
            "cpu_s": lim.cpu_s, "as_bytes": lim.memory_mib << 20, "fsize": lim.fsize_mib << 20,
            "nproc": _nproc(mode, lim),
            "box": BOX if contained else staging, "input": INPUT if contained else None,
            "layout": layout(lim, staging) if mode == "namespaces" else None}


def command(mode: str, lim: Limits, staging: str, argv: Sequence[str]) -> list[str]:
    """The full command line that runs argv in `mode` ("python" as argv[0] is our interpreter)."""
    argv = [sys.executable if a == "python" and i == 0 else a for i, a in enumerate(argv)]
    spec = json.dumps(_spec(mode, lim, staging))
    if mode == "bwrap":
        return [*_bwrap_args(layout(lim, staging)), sys.executable, CONFINE_IN, spec, "--", *argv]
    return [sys.executable, CONFINE, spec, "--", *argv]


def _env(home: str, tmp: str) -> dict[str, str]:
    """The program's whole environment: nothing of benchrun's (no API key) reaches it."""
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": home, "TMPDIR": tmp, "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
