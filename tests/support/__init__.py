"""Helpers shared by tests of both tiers (tests/unit, tests/integration), importable as
`support` because pyproject.toml puts tests/ on pytest's pythonpath. Test modules import
helpers only from here or get them as conftest.py fixtures, never from each other.

  support            paths, the CLI as a subprocess, a loopback aiohttp app, processes left behind,
                     small builders (fenced replies, agentic workloads, a conversation spy, JSONL)
  support.handmade   output dirs of hand-made jobs: records with known timings, schema-valid results
  support.fakes      text llama.cpp prints, faked: its --help layout and its /metrics page
  support.timedserver  a streaming server whose timing is known exactly (also used by
                     benchmarks/client_overhead.py)"""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the checkout
CONF = ROOT / "conf"


def run_cli(args: list[str], cwd: Path, timeout: float = 300, env: dict | None = None,
            check: bool = False) -> subprocess.CompletedProcess:
    """Run `benchrun ARGS` in cwd (its outputs/ lands there)."""
    proc = subprocess.run([sys.executable, "-m", "benchrun", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=timeout, env={**os.environ, **(env or {})})
    if check and proc.returncode != 0:
        raise AssertionError(f"benchrun {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def output_dir_of(stdout: str) -> Path:
    """The directory the CLI said it wrote."""
    for line in stdout.splitlines():
        if line.startswith("benchrun: results in "):
            return Path(line.split("benchrun: results in ", 1)[1].strip())
    raise AssertionError(f"no results line in output:\n{stdout}")


@contextlib.asynccontextmanager
async def serve_app(app):
    """Run an aiohttp test app on a free loopback port; yields its base URL."""
    from aiohttp import web

    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield "http://127.0.0.1:%d" % site._server.sockets[0].getsockname()[1]
    finally:
        await runner.cleanup()


def wait_for(cond, timeout: float, what: str, every: float = 0.1):
    """cond()'s first truthy value, polled until `timeout` s; else fails naming `what`. Tests
    wait for a condition, never for a time."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def survivors(mark: str) -> list[int]:
    """Processes still running whose environment carries BENCHRUN_TEST_MARK=mark: the CLI
    under test and everything it started (servers inherit its environment)."""
    import psutil

    found = []
    for p in psutil.process_iter(["pid"]):
        try:
            if p.environ().get("BENCHRUN_TEST_MARK") == mark and p.status() != psutil.STATUS_ZOMBIE:
                found.append(p.pid)
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return found


def spy(conv, log: list):
    """Pass a conversation through to the engine, keeping every RequestSpec it yields."""
    from benchrun.load.client import RequestSpec

    try:
        item = next(conv)
    except StopIteration:
        return
    while True:
        if isinstance(item, RequestSpec):
            log.append(item)
        got = yield item
        try:
            item = conv.send(got)
        except StopIteration:
            return


def agentic_workload(agents, **kw):
    """An agentic workload config with these agents, as the config schema builds it."""
    
    from benchrun.config import WorkloadConfig

    return WorkloadConfig(name="t", kind="agentic", agents=agents, **kw)


def agentic_record(id_, agent, turn, text, ok=True):
    """A finished request of an agentic run: agent and turn tags, two content events, `text`."""
    from benchrun.load.records import RequestRecord

    r = RequestRecord(id=id_, tags={"agent": agent, "turn": turn}, start_ns=0, end_ns=2_000_000 * (turn + 1),
                      event_ns=[1_000_000, 1_500_000], event_kinds="cc", status=200 if ok else 500,
                      done=ok, text=text, usage={"completion_tokens": 2, "prompt_tokens": 9})
    r.error = None if ok else "HTTP 500: boom"
    return r


def fenced(code: str, lang: str = "python") -> str:
    """A model's reply with the code in a fenced block between prose."""
    return f"Here you go:\n\n```{lang}\n{code}\n```\n\nHope this helps."


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]
