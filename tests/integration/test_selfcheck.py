"""The client's check on itself, through a whole job: result.json's `client` block.

One run, two jobs against the timed server: the baseline job must say saturated=false; the
other runs a CPU hog on the client's own event loop while it streams (the loop is then busy
most of the time, as it is when chunks arrive faster than one core can take them) and must
say saturated=true with its why. The timed server runs in its own process."""
from __future__ import annotations

import asyncio
import json
import time

import pytest
from support import timedserver

from benchrun.load.engine import Engine
from benchrun.load.selfcheck import LAG_P99_MS

# alone: its baseline job must read as not saturated, so no other test may load the client's core.
pytestmark = pytest.mark.alone


@pytest.fixture(scope="module")
def timed_url():
    with timedserver.running() as url:
        yield url


def _job(compose, url, job_dir):
    from benchrun.job import run_job
    from benchrun.servers import ServerPool

    cfg = compose(["model=external", f"model.url={url}", "concurrency=2", "workload.requests=10",
                   "workload.output_tokens=16", "load.warmup_requests=1", "telemetry.enabled=false",
                   "load.metrics_interval_s=0", "progress.mode=off"])
    pool = ServerPool()
    try:
        res = run_job(cfg, job_dir, pool, job_num=0, run_id="t")
    finally:
        pool.close()
    assert res["status"] == "ok", res["error"]
    return json.loads((job_dir / "result.json").read_text())


def _hog_the_loop(monkeypatch, busy_s=0.05):
    """While each run streams, a task on the same loop spins busy_s at a time, yielding between."""
    orig = Engine._run

    async def hogged(self, *a, **k):
        async def hog():
            while True:
                end = time.perf_counter() + busy_s
                while time.perf_counter() < end:
                    pass
                await asyncio.sleep(0)

        task = asyncio.get_running_loop().create_task(hog())
        try:
            return await orig(self, *a, **k)
        finally:
            task.cancel()

    monkeypatch.setattr(Engine, "_run", hogged)


def test_a_job_whose_client_loop_is_hogged_says_it_was_saturated(compose, timed_url, tmp_path, monkeypatch):
    quiet = _job(compose, timed_url, tmp_path / "0_quiet")["client"]
    _hog_the_loop(monkeypatch)
    hogged = _job(compose, timed_url, tmp_path / "1_hogged")["client"]

    assert quiet["saturated"] is False, quiet  # the same-run baseline
    assert quiet["why"] is None
    assert quiet["loop_lag_ms"]["n"] > 0 and quiet["cpu_pct"] is not None

    assert hogged["saturated"] is True, hogged
    assert hogged["loop_lag_ms"]["p99"] > LAG_P99_MS
    assert "late" in hogged["why"] or "of a core" in hogged["why"]


def test_decoding_while_no_stream_is_live_is_not_client_lag(timed_url, monkeypatch):
    """Replies nobody reads are decoded when no stream is live (engine.DEFER_MAX). That blocks
    the loop but delays no timestamp, so the self-check must not count it as lag: at the end of
    a large run it blocked ~1 s and the check said the client was saturated. Here each decode
    spins 0.5 s; counted, the lag would reach seconds."""
    from benchrun.load import engine as E
    from benchrun.load.client import RequestSpec, make_session
    from benchrun.load.selfcheck import SelfCheck

    decode = E.parse_stream

    def slow_decode(rec, chunks):
        end = time.perf_counter() + 0.5
        while time.perf_counter() < end:
            pass
        decode(rec, chunks)

    monkeypatch.setattr(E, "parse_stream", slow_decode)
    spec = RequestSpec(messages=[{"role": "user", "content": "x"}], max_tokens=4,
                       body={"ttft_ms": 5, "itl_ms": 5}, reply_needed=False)
    check = SelfCheck(period_s=0.01)

    async def go():
        async with make_session(30) as session:
            engine = Engine(session, timed_url + "/v1/chat/completions")
            return (await engine.run([E.Requests([spec]) for _ in range(4)], E.LoadPlan(concurrency=2),
                                     check=check))[0]

    recs = E.run_loop(go())
    assert len(recs) == 4 and all(r.ok and r.text == "xxxx" for r in recs), [r.error for r in recs]
    lag = check.summary()["loop_lag_ms"]
    assert lag["n"] > 0 and lag["max"] < 250, lag  # the 2 s of decoding is not in it
