"""Hostile generated code in the real sandbox: each attack fails its check and harms nothing.
Every isolation mode this machine supports is exercised (bwrap, namespaces, rlimits-only)."""
from __future__ import annotations

import os
import socket
import time

import psutil
import pytest

from benchrun.checks import run_check
from benchrun.checks.sandbox import (MODES, Limits, Sandbox, available, drops_privileges, isolation,
                                     nproc_bounded)

MODES_HERE = [m for m in MODES if available(m)]
FAST = Limits(cpu_s=1, wall_s=3, nproc=16)


def fenced(code: str) -> str:
    return f"```python\n{code}\n```"


def marked_procs(box: str) -> int:
    n = 0
    for p in psutil.process_iter():
        try:
            n += p.environ().get("BENCHRUN_SANDBOX") == box
        except psutil.Error:
            pass
    return n


def test_isolation_is_the_strongest_available():
    best = isolation()
    assert best in MODES and available(best)
    assert all(not available(m) for m in MODES[:MODES.index(best)])
    with pytest.raises(ValueError, match="isolation must be one of"):
        available("chroot")


@pytest.mark.parametrize("mode", MODES_HERE)
def test_environment_is_scrubbed_and_home_is_the_sandbox(mode, monkeypatch):
    monkeypatch.setenv("BENCHRUN_SECRET_TOKEN", "hunter2")
    with Sandbox(FAST, mode) as sb:
        sb.write("a.py", "import os\nprint(os.environ['HOME'], os.getcwd(), 'BENCHRUN_SECRET_TOKEN' in os.environ)")
        r = sb.run(["python", "a.py"])
        assert r.ok and r.isolation == mode
        assert r.stdout.split() == [str(sb.dir), str(sb.dir), "False"]


@pytest.mark.parametrize("mode", MODES_HERE)
def test_infinite_loop_is_killed(mode):
    with Sandbox(FAST, mode) as sb:
        sb.write("a.py", "while True:\n    pass")
        t0 = time.monotonic()
        r = sb.run(["python", "a.py"])
        assert not r.ok and time.monotonic() - t0 < FAST.wall_s + 3
        assert marked_procs(str(sb.dir)) == 0


@pytest.mark.skipif(not nproc_bounded(), reason="root without an interpreter the nobody user can run: "
                    "RLIMIT_NPROC cannot bind, a fork bomb could not be contained")
@pytest.mark.parametrize("mode", MODES_HERE)
def test_fork_bomb_is_bounded_and_leaves_nothing(mode):
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    with Sandbox(Limits(cpu_s=2, wall_s=2, nproc=16), mode) as sb:
        sb.write("a.py", bomb)
        peak = 0

        # Watch the bomb from here while it runs: it must never exceed its process budget by much.
        import threading
        stop = threading.Event()

        def watch():
            nonlocal peak
            while not stop.is_set():
                peak = max(peak, marked_procs(str(sb.dir)))
                time.sleep(0.2)

        t = threading.Thread(target=watch)
        t.start()
        try:
            r = sb.run(["python", "a.py"])
        finally:
            stop.set()
            t.join()
        assert not r.ok
        assert 0 < peak <= 16 + 8  # its own budget (+ the launcher, bwrap and the ns init)
        time.sleep(0.2)
        assert marked_procs(str(sb.dir)) == 0
    if mode == isolation():  # the check itself, once, in the mode checks use
        assert not run_check(fenced(bomb), {"type": "runs", "wall_s": 2, "cpu_s": 2})["passed"]


@pytest.mark.parametrize("mode", MODES_HERE)
def test_rm_rf_home_and_writes_outside_harm_nothing(mode, tmp_path):
    canary = tmp_path / "canary.txt"
    canary.write_text("still here")
    code = (f"import os, shutil\n"
            f"shutil.rmtree(os.path.expanduser('~'))\n"  # ~ is the sandbox dir itself
            f"os.remove({str(canary)!r})\n")  # raises: no permission (or not even visible)
    # Writes outside the sandbox are stopped by another uid (as root) or by namespaces; run as
    # ourselves with rlimits only, nothing can stop them, and this machine shows which applies.
    guarded = mode != "rlimits-only" or drops_privileges()
    if not guarded:
        canary = tmp_path / "not-protected-here.txt"
        code = code.replace(str(tmp_path / "canary.txt"), str(canary))
        canary.write_text("x")
    with Sandbox(FAST, mode) as sb:
        sb.write("a.py", code)
        r = sb.run(["python", "a.py"])
        assert not sb.dir.exists() or not any(sb.dir.iterdir())  # ~ was the sandbox dir
        if guarded:
            assert not r.ok and ("Error" in r.stderr)
    assert (tmp_path / "canary.txt").read_text() == "still here"
    assert os.path.isdir(os.path.expanduser("~"))
    if mode == isolation() and guarded:
        assert not run_check(fenced(code), {"type": "runs", "wall_s": 3})["passed"]


@pytest.mark.parametrize("mode", MODES_HERE)
def test_network_connect_is_refused(mode):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    code = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)\nprint('CONNECTED')"
    try:
        with Sandbox(FAST, mode) as sb:
            sb.write("a.py", code)
            r = sb.run(["python", "a.py"])
        if mode == "rlimits-only":  # no network namespace: nothing stops a connection
            assert "CONNECTED" in r.stdout
        else:
            assert not r.ok and "CONNECTED" not in r.stdout
    finally:
        srv.close()


def test_output_flood_is_cut_by_the_file_size_limit():
    with Sandbox(Limits(fsize_mib=1, wall_s=5), isolation()) as sb:
        sb.write("a.py", "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)")
        r = sb.run(["python", "a.py"])
        assert not r.ok and len(r.stdout) == sb.limits.output_bytes


def test_without_an_interpreter_for_nobody_it_falls_back_to_our_own(monkeypatch):
    from benchrun.checks import sandbox

    monkeypatch.setattr(sandbox, "python_for_sandbox", lambda: (None, {}))
    assert not sandbox.drops_privileges()
    assert sandbox.nproc_bounded() == (os.geteuid() != 0)  # root could not bound a fork bomb
    with Sandbox(FAST, "rlimits-only") as sb:
        sb.write("a.py", "import os\nprint(os.geteuid())")
        r = sb.run(["python", "a.py"])
        assert r.ok and r.stdout.strip() == str(os.geteuid())
