"""Hostile generated code in the real sandbox, in every mode that claims containment: it writes,
deletes and reads outside its scratch dir (canaries in the real home, the checkout and
outputs/), reads secrets, bombs memory, forks and the disk, connects to a local listener and
signals its parent -- and harms nothing. A mode this machine lacks is a visible skip with the
reason; under CI the strongest mode (bwrap) is required. Run as root this file also runs itself
as a normal user (root hides permission bugs). Self-contained: no conftest fixtures."""
from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import psutil
import pytest

from benchrun.checks import confinement, run_check, sandbox
from benchrun.checks.sandbox import (
    BOX,
    CONTAINED,
    UNCONFINED,
    Limits,
    NoSandbox,
    Sandbox,
    isolation,
    kernel_refusal,
    unavailable,
)

ROOT = Path(__file__).resolve().parents[2]  # the checkout
FAST = Limits(cpu_s=2, wall_s=5, nproc=16)
IN_CI = os.environ.get("CI") == "true"
NONROOT_USER, NONROOT_VENV = "benchrun-nonroot", Path("/opt/benchrun-nonroot")
# A mode skips only where this machine cannot have it (no bubblewrap, a kernel that refuses the
# namespaces); one the kernel allows runs, so a regression in benchrun's own confinement fails.
CONTAINED_MODES = [pytest.param(m, marks=pytest.mark.skipif(bool(kernel_refusal(m)), reason=f"unavailable here: {kernel_refusal(m)}"))
                   for m in CONTAINED]


def run(mode: str, code: str, lim: Limits = FAST) -> sandbox.RunResult:
    with Sandbox(lim, mode) as sb:
        sb.write("a.py", textwrap.dedent(code))
        return sb.run(["python", "a.py"])


def lines(r) -> dict[str, str]:
    """`name: outcome` lines the payloads print, as a dict."""
    return dict(l.split(": ", 1) for l in r.stdout.splitlines() if ": " in l)


TRY = """
import os, shutil, signal, socket, sys
def attempt(name, f):
    try:
        f()
        print(f"{name}: DONE", flush=True)
    except BaseException as e:
        print(f"{name}: denied {type(e).__name__}", flush=True)
"""


@pytest.fixture
def canaries(tmp_path):
    """A canary file and dir where damage would hurt: the real home, the checkout, outputs/, /tmp.
    World-writable on purpose: only the sandbox may protect them, not file permissions."""
    token = secrets.token_hex(6)
    places = {"home": Path.home(), "checkout": ROOT, "outputs": ROOT / "outputs", "tmp": tmp_path}
    made = {}
    for name, base in places.items():
        base.mkdir(exist_ok=True)
        d = base / f".benchrun-canary-{token}"
        d.mkdir()
        d.chmod(0o777)
        (d / "keep.txt").write_text("still here")
        (d / "keep.txt").chmod(0o666)
        made[name] = d
    yield made
    for d in made.values():
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.skipif(not IN_CI, reason="CI requires the strongest mode; elsewhere skips show what is missing")
def test_ci_has_the_strongest_mode():
    if not shutil.which("bwrap") and os.geteuid() != 0:
        pytest.skip("unavailable here: bubblewrap is not installed, and .ci/run installs it only as root")
    assert unavailable("bwrap") is None, unavailable("bwrap")
    assert isolation() == "bwrap"


def test_auto_never_falls_through_to_unconfined(monkeypatch):
    monkeypatch.setattr(sandbox, "unavailable", lambda m: None if m == UNCONFINED else f"{m}: absent here")
    with pytest.raises(NoSandbox, match="bwrap: absent here; namespaces: absent here.*isolation=unconfined"):
        isolation()
    with pytest.raises(NoSandbox, match="'namespaces' is not available"):
        isolation("namespaces")
    assert isolation(UNCONFINED) == UNCONFINED  # only when asked for by name
    code = "```python\nimport os\nos.system('touch /tmp/ran')\n```"
    out = run_check(code, {"type": "runs"})
    assert out["passed"] is None and out["reason"].startswith("not run: no sandbox that contains")
    assert run_check(code, "python_parses")["passed"] is True  # checks that run nothing still run


def test_unknown_mode_is_an_error():
    with pytest.raises(ValueError, match="isolation must be one of auto, bwrap, namespaces, unconfined"):
        unavailable("chroot")


@pytest.mark.parametrize("mode", CONTAINED_MODES)
def test_environment_is_scrubbed_and_home_is_the_scratch_dir(mode, monkeypatch):
    monkeypatch.setenv("BENCH_TEST_API_KEY", "sk-hunter2")
    r = run(mode, "import os\nprint(os.environ['HOME'], os.getcwd(), os.getuid(), "
                  "any('hunter2' in v for v in os.environ.values()))")
    want_uid = confinement.NOBODY if os.geteuid() == 0 else os.getuid()
    assert r.ok and r.isolation == mode, r.stderr
    assert r.stdout.split() == [BOX, BOX, str(want_uid), "False"]


@pytest.mark.parametrize("mode", CONTAINED_MODES)
def test_writes_and_deletes_outside_the_scratch_dir_harm_nothing(mode, canaries):
    targets = {name: str(d) for name, d in canaries.items()}
    code = TRY + f"targets = {targets!r}\n" + textwrap.dedent("""
        for name, d in targets.items():
            attempt(f"{name} overwrite", lambda: open(d + "/keep.txt", "w").write("pwned"))
            attempt(f"{name} delete", lambda: os.remove(d + "/keep.txt"))
            attempt(f"{name} rmtree", lambda: shutil.rmtree(d))
            attempt(f"{name} create", lambda: open(os.path.dirname(d) + "/pwned.txt", "w").write("x"))
        attempt("rm -rf ~", lambda: [shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)
                                     for p in (os.path.join(os.path.expanduser("~"), n)
                                               for n in os.listdir(os.path.expanduser("~")))])
        attempt("scratch write", lambda: open("mine.txt", "w").write("ok"))
    """)
    r = run(mode, code)
    got = lines(r)
    assert r.ok, r.stderr
    for name, d in canaries.items():
        for act in ("overwrite", "delete", "rmtree", "create"):
            assert got[f"{name} {act}"].startswith("denied"), (name, act, got)
        assert (d / "keep.txt").read_text() == "still here"
        assert not (d.parent / "pwned.txt").exists()
    assert got["rm -rf ~"] == "DONE" and got["scratch write"] == "DONE"  # its own dir is its own


@pytest.mark.parametrize("mode", CONTAINED_MODES)
def test_secrets_cannot_be_read(mode, monkeypatch, canaries):
    secret = "sk-" + secrets.token_hex(8)
    monkeypatch.setenv("BENCH_TEST_API_KEY", secret)  # in benchrun's environment, not the program's
    (canaries["home"] / "id_ed25519").write_text(secret)
    (canaries["home"] / "id_ed25519").chmod(0o644)  # readable by anyone: only the sandbox hides it
    code = TRY + textwrap.dedent(f"""
        found = []
        # Every file it can read, but the interpreter's own read-only trees (its venv and its
        # Python, installed before the secret existed): tens of thousands of files, whose
        # reading alone took more than the CPU limit on a slow machine.
        interpreter = {{os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}}
        def sweep():
            paths = [f"/proc/{{p}}/environ" for p in os.listdir("/proc") if p.isdigit()]
            for base in ({str(canaries['home'])!r}, "/root", "/home", {str(ROOT)!r}):
                for dirpath, dirs, files in os.walk(base):
                    dirs[:] = [d for d in dirs if os.path.realpath(os.path.join(dirpath, d)) not in interpreter]
                    paths += [os.path.join(dirpath, f) for f in files]
            for path in paths:
                try:
                    if {secret!r} in open(path, errors="ignore").read(1 << 16):
                        found.append(path)
                except Exception:
                    pass
        attempt("read key file", lambda: open({str(canaries['home'] / 'id_ed25519')!r}).read())
        attempt("benchrun's environ", lambda: open("/proc/{os.getpid()}/environ").read())
        sweep()
        print("found:", found)
        print("pids:", sorted(int(p) for p in os.listdir("/proc") if p.isdigit()))
    """)
    r = run(mode, code, Limits(cpu_s=10, wall_s=20))
    got = lines(r)
    assert r.ok, r.stderr
    assert got["read key file"].startswith("denied") and got["benchrun's environ"].startswith("denied")
    assert got["found"] == "[]"
    assert len(eval(got["pids"])) <= 3  # its own PID namespace: its init and itself
    assert secret not in r.stdout + r.stderr


@pytest.mark.parametrize("mode", CONTAINED_MODES)
def test_network_is_unreachable(mode):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.settimeout(0.5)
    port = srv.getsockname()[1]
    try:
        r = run(mode, TRY + f"attempt('connect', lambda: socket.create_connection(('127.0.0.1', {port}), timeout=2))")
        assert r.ok and lines(r)["connect"].startswith("denied"), r.stdout + r.stderr
        with pytest.raises(socket.timeout):
            srv.accept()  # nothing ever reached the listener
    finally:
        srv.close()


@pytest.mark.parametrize("mode", CONTAINED_MODES)
def test_signals_reach_neither_benchrun_nor_anything_outside(mode):
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        code = TRY + textwrap.dedent(f"""
            for sig in (signal.SIGSTOP, signal.SIGKILL):
                attempt(f"parent {{sig.name}}", lambda: os.kill(os.getppid() or 1 << 22, sig))
                attempt(f"benchrun {{sig.name}}", lambda: os.kill({os.getpid()}, sig))
                attempt(f"victim {{sig.name}}", lambda: os.kill({victim.pid}, sig))
            attempt("everyone", lambda: os.kill(-1, signal.SIGKILL))
        """)
        r = run(mode, code)
        got = lines(r)
        for who in ("benchrun", "victim"):
            for sig in ("SIGSTOP", "SIGKILL"):
                assert got[f"{who} {sig}"].startswith("denied"), (who, sig, got)
        assert victim.poll() is None and psutil.Process(victim.pid).status() != psutil.STATUS_STOPPED
    finally:
        victim.kill()
        victim.wait()


@pytest.mark.parametrize("mode", CONTAINED_MODES)
def test_infinite_loop_is_killed(mode):
    """By its CPU-time limit: RLIMIT_CPU (soft = hard) makes the kernel SIGKILL it after cpu_s
    of CPU, which the launcher reports as 128 + 9, long before the wall-clock timeout."""
    r = run(mode, "while True:\n    pass", Limits(cpu_s=1, wall_s=30, nproc=16))
    assert not r.timed_out and r.returncode == 128 + signal.SIGKILL, (r.returncode, r.timed_out, r.stderr)
    assert 1 <= r.wall_s < 15, r.wall_s


@pytest.mark.parametrize("mode", CONTAINED_MODES)
def test_memory_bomb_is_stopped_by_its_address_space_limit(mode):
    code = TRY + textwrap.dedent("""
        hog = []
        def grow():
            while True:
                hog.append(bytearray(64 << 20))
        attempt("8 GiB at once", lambda: bytearray(8 << 30))
        attempt("grow", grow)
        print("held MiB:", 64 * len(hog))
    """)
    r = run(mode, code, Limits(cpu_s=5, wall_s=20, memory_mib=512))
    got = lines(r)
    assert got["8 GiB at once"] == "denied MemoryError" and got["grow"] == "denied MemoryError", r.stderr
    assert 0 < int(got["held MiB"]) <= 512


@pytest.mark.parametrize("mode", CONTAINED_MODES)
def test_disk_bomb_fills_only_its_own_small_tmpfs(mode):
    code = TRY + textwrap.dedent("""
        n = 0
        def fill():
            global n
            while True:
                with open(f"f{n}", "wb") as fh:
                    fh.write(b"x" * (1 << 20))
                n += 1
        attempt("fill", fill)
        print("written MiB:", n)
    """)
    r = run(mode, code, Limits(cpu_s=5, wall_s=20, scratch_mib=8))
    got = lines(r)
    assert got["fill"] in ("denied OSError", "denied FileNotFoundError") or "No space" in r.stderr, got
    assert int(got["written MiB"]) <= 8


@pytest.mark.parametrize("mode", CONTAINED_MODES)
def test_fork_bomb_is_bounded_and_leaves_nothing(mode):
    # Every child prints once and then waits forever, so the lines counted are the processes that
    # existed at once -- no sampling. The PID namespace names the lot (a payload can't leave it).
    code = textwrap.dedent("""
        import os, signal, sys
        print("ns:", os.readlink("/proc/self/ns/pid"), flush=True)
        refused = 0
        while refused < 200:
            try:
                if os.fork() == 0:
                    print("child: up", flush=True)
                    signal.pause()
            except OSError:
                refused += 1
        print("refused: 200", flush=True)
        signal.pause()
    """)
    r = run(mode, code, Limits(cpu_s=5, wall_s=4, nproc=16))
    children = r.stdout.count("child: up")
    assert "refused: 200" in r.stdout, r.stdout[-300:] + r.stderr
    assert 0 < children <= 16
    ns = lines(r)["ns"]
    assert [pid for pid in psutil.pids() if sandbox._pid_ns(pid) == ns] == []


@pytest.mark.parametrize("mode", CONTAINED_MODES)
def test_output_flood_is_cut_by_the_file_size_limit(mode):
    r = run(mode, "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)", Limits(fsize_mib=1, wall_s=5))
    assert not r.ok and len(r.stdout) == FAST.output_bytes


def test_hostile_check_fails_and_harms_nothing_through_run_check(canaries):
    if all(kernel_refusal(m) for m in CONTAINED):
        pytest.skip("unavailable here: no containing mode (" + "; ".join(kernel_refusal(m) for m in CONTAINED) + ")")
    code = f"```python\nimport shutil\nshutil.rmtree({str(canaries['home'])!r})\n```"
    out = run_check(code, {"type": "runs", "wall_s": 5})
    assert out["passed"] is False and "exit 1" in out["reason"]
    assert (canaries["home"] / "keep.txt").read_text() == "still here"


def test_unconfined_is_what_it_says(tmp_path):
    """The explicit opt-in: limits and a timeout only. It has network and our file access,
    which is why auto never picks it and the report names it."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    mine = tmp_path / "mine.txt"
    try:
        r = run(UNCONFINED, TRY + f"attempt('connect', lambda: socket.create_connection(('127.0.0.1', "
                                  f"{srv.getsockname()[1]}), timeout=2))\n"
                                  f"attempt('write', lambda: open({str(mine)!r}, 'w').write('x'))\n"
                                  "print('uid:', os.getuid())")
    finally:
        srv.close()
    got = lines(r)
    assert r.isolation == UNCONFINED and got["connect"] == "DONE"
    # Our own user (root too: unconfined drops to no other uid) writes our file.
    assert got["write"] == "DONE" and mine.read_text() == "x", got
    assert got["uid"] == str(os.getuid()), got


@pytest.mark.skipif(os.geteuid() != 0, reason="unavailable here: already running as a normal user")
def test_this_file_passes_as_a_normal_user(tmp_path):
    py = NONROOT_VENV / "bin" / "python"
    if not py.exists():
        if IN_CI:
            pytest.fail(f"{py} missing: .ci/run prepares it (scripts/nonroot-env.sh)")
        pytest.skip(f"no venv for {NONROOT_USER}: run scripts/nonroot-env.sh as root to prepare one")
    # A copy it can read: the checkout may sit in root's private home.
    work = Path(tempfile.mkdtemp(prefix="benchrun-nonroot-"))
    try:
        shutil.copytree(ROOT / "benchrun", work / "benchrun", ignore=shutil.ignore_patterns("__pycache__"))
        (work / "tests" / "integration").mkdir(parents=True)
        shutil.copy(__file__, work / "tests" / "integration" / "test_sandbox.py")
        (work / "home").mkdir()
        for d, _, files in os.walk(work):
            for p in [d, *(os.path.join(d, f) for f in files)]:
                shutil.chown(p, NONROOT_USER, NONROOT_USER)
        env = {"PATH": "/usr/bin:/bin", "HOME": str(work / "home"), "PYTHONPATH": str(work), "LANG": "C.UTF-8",
               **({"CI": "true"} if IN_CI else {})}
        r = subprocess.run([str(py), "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "--noconftest",
                            "tests/integration/test_sandbox.py"], cwd=work, env=env, capture_output=True, text=True,
                           timeout=600, user=NONROOT_USER, group=NONROOT_USER, extra_groups=[])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    tail = r.stdout[-3000:] + r.stderr[-2000:]
    assert r.returncode == 0, tail
    skipped = [l for l in r.stdout.splitlines() if l.startswith("SKIPPED")]
    assert all("already running as a normal user" in l or ("CI requires" in l and not IN_CI)
               for l in skipped), tail
