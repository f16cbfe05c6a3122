"""Helpers shared by tests of both tiers (tests/unit, tests/integration), importable as
`support` because pyproject.toml puts tests/ on pytest's pythonpath. Test modules import
helpers only from here or get them as conftest.py fixtures, never from each other.

  support            paths, the CLI as a subprocess, a loopback aiohttp app, processes left behind,
                     small builders (fenced replies, agentic workloads, a conversation spy, JSONL),
                     waiting for a condition (wait_for, until) and the loop's own lag (LoopLag)
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
        yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
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


async def until(cond, timeout: float, what: str, every: float = 0.01):
    """wait_for inside an event loop: cond()'s first truthy value, polled without blocking the
    loop until `timeout` s; else fails naming `what`."""
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        await asyncio.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class LoopLag:
    """The event loop's own wake-up lag, measured beside the code under test on the same loop:
    a task sleeps `period_s` over and over and keeps when each sleep began and ended. On a busy
    machine no code on that loop can react earlier than the loop gets to run, so this is the
    same-run baseline timing errors are judged against (never an absolute bound):
      quantile(q)      lag (ms) at that share of the wall time the probe covered; weighted by
                       time, since a stall of S ms is one sample but holds up everything that
                       falls due during it
      worst(a, b)      the largest lag (ms) of the sleeps that overlap [a, b] (perf_counter_ns),
                       plus one period: a stall began at most one period after a sleep did
    Usage:  async with LoopLag() as lag: ...run...;  then lag.quantile(0.5), lag.worst(a, b)."""

    def __init__(self, period_s: float = 0.002):
        self.period_ns = int(period_s * 1e9)
        self.spans: list[tuple[int, int]] = []
        self._task = None

    async def _probe(self) -> None:
        import asyncio
        from time import perf_counter_ns

        while True:
            t = perf_counter_ns()
            await asyncio.sleep(self.period_ns / 1e9)
            self.spans.append((t, perf_counter_ns()))

    async def __aenter__(self) -> LoopLag:
        import asyncio

        self._task = asyncio.ensure_future(self._probe())
        return self

    async def __aexit__(self, *exc) -> None:
        self._task.cancel()

    def lags_ms(self):
        import numpy as np

        return np.array([(b - a - self.period_ns) / 1e6 for a, b in self.spans])

    def quantile(self, q: float) -> float:
        import numpy as np

        lags = self.lags_ms()
        assert len(lags), "the loop-lag probe never ran"
        order = np.argsort(lags)
        weight = np.cumsum(lags[order] + self.period_ns / 1e6)
        return float(lags[order][np.searchsorted(weight, q * weight[-1])])

    def worst(self, a_ns: int, b_ns: int) -> float:
        lags = [(y - x - self.period_ns) / 1e6 for x, y in self.spans if y >= a_ns and x <= b_ns]
        return max(lags, default=0.0) + self.period_ns / 1e6


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
