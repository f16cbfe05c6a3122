"""Verdicts on the real embedded llama.cpp server (slow): the same job twice is not called
different (A/A), a candidate measured while busy loops compete for the cores is WORSE on decode
speed and TTFT (A/B), and two presets on one model file, compared with interleaved repeats, tie
on every Summary row with no speed pick. Every comparison is against a baseline measured in the
same test, minutes apart, so a machine that is busy with other work cannot decide the outcome."""
from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from scipy import stats as st
from support import output_dir_of

# alone: an A/A pair must differ by noise only, not by another test's load on one of them.
pytestmark = [pytest.mark.slow, pytest.mark.alone]

SMALL = ["workload.requests=12", "workload.output_tokens=32", "workload.input_tokens=64",
         "telemetry.enabled=false", "load.metrics_interval_s=0"]


def _job(compose, url: str, c: int, out: Path, num: int, *extra: str) -> dict:
    from benchrun.job import run_job
    from benchrun.servers import ServerPool

    pool = ServerPool()
    try:
        cfg = compose(["model=external", f"model.url={url}", f"concurrency={c}", *SMALL, *extra])
        res = run_job(cfg, out / f"{num}_external_c{c}", pool, job_num=num, run_id=out.name)
    finally:
        pool.close()
    assert res["status"] == "ok", res["error"]
    return res


def _interleaved(compose, url: str, sides: dict, levels, rounds: int, root: Path, *extra: str) -> None:
    """Each side's job at each level, `rounds` times, as an interleaved sweep runs them (round
    by round, the sides alternating), so drift on the machine lands on both sides alike.
    sides: name -> a context manager factory for the conditions of that side."""
    num = 0
    for r in range(rounds):
        for c in levels:
            for name, conditions in sides.items():
                with conditions():
                    _job(compose, url, c, root / name, num, f"repeats={rounds}", f"round={r}", *extra)
                num += 1


def _in_two_tries(check, root: Path) -> None:
    """check(dir) in a fresh dir, and once more if it fails: this VM's host slows everything on it
    for tens of seconds at a time, which can land on one side's job of a round and move every
    metric of that job together (CI once saw 7 A/A metrics beyond noise where 5 are allowed, and
    the busy-loop test's decode at p=0.08). A verdict method that is wrong -- the request
    bootstrap flags about half of an A/A's metrics; a slowdown not seen -- fails both tries."""
    try:
        check(root / "try0")
    except AssertionError as first:
        print(f"first try failed, trying once more: {first}")
        check(root / "try1")


def _judged(d) -> list:
    return [x for jd in d.jobs for x in jd.deltas if x.p is not None]


@pytest.mark.timeout(1500)
def test_a_a_same_job_twice_is_not_beyond_noise(tiny_server, compose, tmp_path):
    """The same job on one real server, as sides a and b (3 interleaved repeats each): no more
    'beyond noise' verdicts than the nominal 5% allows. The bound is the 99.9th percentile of
    Binomial(judged, 5%): a method keeping its promise stays under it; the request bootstrap
    alone (the old method) flagged about half of such metrics."""
    import contextlib

    from benchrun.analysis.diff import diff_dirs

    def check(root: Path) -> None:
        _interleaved(compose, tiny_server.url, {"a": contextlib.nullcontext, "b": contextlib.nullcontext},
                     (1, 3), 3, root)
        d = diff_dirs(root / "a", root / "b", noise_file=False)
        judged = _judged(d)
        assert {x.method for x in judged} == {"repeats"}  # merged rounds: 3 repeats a side
        beyond = [(jd.key[2], x.key, x.rel) for jd in d.jobs for x in jd.deltas if x.beyond_noise is True]
        assert len(judged) >= 20
        assert len(beyond) <= st.binom.ppf(0.999, len(judged), 0.05), beyond

    _in_two_tries(check, tmp_path)


def _spin_until_running(n: int) -> list[subprocess.Popen]:
    """n busy loops, returned once each has really been on a CPU (a busy box may delay them).
    Each runs in its own session: with the kernel's autogroup scheduling (on here, as on most
    desktops) a session's processes share one group's slice, so loops left in the test's own
    session competed only with the test, while the server, started in a session of its own,
    kept its core (12 such loops cost it 17-23% of its decode speed). Apart, each loop is one
    more contender for the server, as another user's job would be."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
            for _ in range(n)]
    deadline = time.monotonic() + 60
    for h in hogs:
        p = psutil.Process(h.pid)
        while sum(p.cpu_times()[:2]) < 0.3:
            assert time.monotonic() < deadline, "the busy loops never got a CPU"
            time.sleep(0.05)
    return hogs


@pytest.fixture
def one_thread_server(tmp_path):
    """tiny_wide with one llama.cpp thread (the default here). tiny_wide, not tiny: tiny decodes
    32 tokens in a few ms, inside one scheduler slice, so a starved server shows in its TTFT (the
    wait for a slice) while its decode rate, measured once the reply flows, barely moves."""
    from benchrun.config import ModelConfig
    from benchrun.servers import build_server
    from benchrun.servers.base import stop_process

    handle = build_server(ModelConfig(name="tiny_wide", tiny="tiny_wide", parallel=4, ctx_size=4096, threads=1),
                          tmp_path / "server.log")
    yield handle
    stop_process(handle.process, 5.0)


@contextlib.contextmanager
def busy_loops():
    """Two busy loops per core, each in its own session (see _spin_until_running), for the
    duration; started and seen running first."""
    hogs = _spin_until_running(2 * len(os.sched_getaffinity(0)))
    try:
        yield
    finally:
        for h in hogs:
            h.kill()
            h.wait()


@pytest.mark.timeout(1500)
def test_a_b_with_busy_loops_is_worse(one_thread_server, compose, tmp_path):
    """Baseline and candidate alternate (4 rounds) at C1 and C2; the candidate runs while busy
    loops, each in a session of its own, compete for the cores. At every level decode speed and
    TTFT are WORSE beyond noise (Welch on the rounds; the baseline's rounds, measured in
    between, are the reference). Measured (5 rounds): decode 144 -> 74 tok/s at C1 and 60 -> 25
    at C2, TTFT p50 2.5x and 2.7x, every p < 0.001."""
    from benchrun.analysis.diff import diff_dirs

    long = ("workload.requests=6", "workload.output_tokens=64")  # decode spans many scheduler slices

    def check(root: Path) -> None:
        _interleaved(compose, one_thread_server.url, {"base": contextlib.nullcontext, "hog": busy_loops},
                     (1, 2), 4, root, *long)
        d = diff_dirs(root / "base", root / "hog", noise_file=False)
        assert [jd.key[2] for jd in d.jobs] == [1, 2]
        for jd in d.jobs:
            x = {x.key: x for x in jd.deltas}
            for key in ("ttft_ms.p50", "decode_tok_s.hmean"):
                v = x[key]
                assert v.change == "worse" and v.beyond_noise is True and v.method == "repeats", (jd.key, v)

    _in_two_tries(check, tmp_path)


@pytest.mark.timeout(1800)
def test_twin_presets_with_repeats_tie_everywhere(cli):
    """Two presets on the same model file (same binary, same flags), 3 interleaved repeats each:
    every Summary row is a tie, the Recommendation picks neither for speed, and no decode speed
    in any summary is faster than llama.cpp itself says it decoded."""
    proc, cwd = cli("-m", "model=tiny", "model.name=twin_a,twin_b", "concurrency=1,2", "repeats=3",
                    "workload.requests=8", "workload.output_tokens=32", "workload.input_tokens=64",
                    timeout=1500)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = cwd / output_dir_of(proc.stdout)
    # interleaved: 12 job dirs, rounds outermost, presets alternating within each round
    res = [json.loads(p.read_text()) for p in sorted(out.glob("*/result.json"), key=lambda p: int(p.parent.name.split("_")[0]))]
    assert [(r["order"]["round"], r["model"]["name"]) for r in res][:4] == [(0, "twin_a"), (0, "twin_a"), (0, "twin_b"), (0, "twin_b")]
    assert {r["order"]["round"] for r in res} == {0, 1, 2} and len(res) == 12
    md = (out / "report.md").read_text()
    summary = md.split("## Summary", 1)[1].split("## Key Findings", 1)[0]
    rows = [ln.split("|")[1:-1] for ln in summary.splitlines() if ln.startswith("|") and not ln.startswith("|--")]
    head = [c.strip() for c in rows[0]]
    assert len(head) == 4 and head[0] == "Metric" and head[-1] == "Winner", head
    assert head[1].startswith("twin_a") and head[2].startswith("twin_b"), head
    labels = {r[0].strip() for r in rows[1:]}
    assert {f"{m} (C{c})" for m in ("Decode speed per request, harmonic mean", "TTFT p50") for c in (1, 2)} | {
        f"{m} (C2)" for m in ("ITL p50", "E2E latency p50", "Total time per repeat", "Aggregate throughput")} <= labels
    for r in rows[1:]:  # both twins measured on every row (a figure, never "—"), and never a winner
        for cell in r[1:-1]:
            assert re.fullmatch(r"\d[\d,.]*%?( ± \d[\d,.]*%?)?(/\d+)?( \S+)?", cell.strip()), r
        assert r[-1].strip().startswith("Tie"), r
    rec = md.split("## Recommendation", 1)[1].split("## Detailed", 1)[0]
    assert "Pick" not in rec and "No preset is faster beyond noise" in rec, rec
    assert "**Order:** each of the 3 repeats ran as its own job" in md
    # No rate faster than llama.cpp's own. A job whose every reply a starved client read in one
    # go saw no decoding and claims no rate at all (None; seen once beside a busy loop).
    for r in res:
        served = r["server_timings"]["predicted_per_second"]["max"]
        tpot = r["metrics"]["tpot_ms"]["mean"]
        assert tpot is None or 1000 / tpot <= 1.5 * served, (r["job"]["name"], 1000 / tpot, served)
    rows = json.loads((out / "summary.json").read_text())
    assert all(x["decode_tok_s_hmean"] is None or x["decode_tok_s_hmean"] <= 1.5 * json.loads(
        (out / x["job"] / "result.json").read_text())["server_timings"]["predicted_per_second"]["max"] for x in rows)
