"""load.workers=2 through whole jobs against the timed server (tests/support/timedserver.py,
in its own process; it sleeps ttft_ms before the first token and itl_ms between tokens):
records from both worker processes merged into one requests.jsonl with unique ids, TTFT where
the server put it, the open-loop schedule kept across processes, and a worker killed mid-run
failing the job with that cause while the other's records are kept."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading

import psutil
import pytest
from support import read_jsonl, timedserver, wait_for

TTFT_MS, ITL_MS = 60, 10


@pytest.fixture(scope="module")
def timed_url():
    with timedserver.running() as url:
        yield url


def _cfg(compose, url, *extra):
    return compose(["model=external", f"model.url={url}", "load.workers=2", "telemetry.enabled=false",
                    "load.metrics_interval_s=0", "progress.mode=off",
                    f"+workload.extra_body={{ttft_ms:{TTFT_MS},itl_ms:{ITL_MS}}}", *extra])


def _run(cfg, job_dir):
    from benchrun.job import run_job
    from benchrun.servers import ServerPool

    pool = ServerPool()
    try:
        return run_job(cfg, job_dir, pool, job_num=0, run_id="t")
    finally:
        pool.close()


def test_two_workers_closed_loop_records_merged_and_timed(compose, timed_url, tmp_path):
    cfg = _cfg(compose, timed_url, "concurrency=4", "workload.requests=24", "workload.output_tokens=8")
    res = _run(cfg, tmp_path / "job")
    assert res["status"] == "ok", res["error"]
    assert res["load"]["workers"] == 2 and res["load"]["workers_used"] == 2
    assert res["load"]["workers_why"] == "load.workers=2"
    recs = read_jsonl(tmp_path / "job" / "requests.jsonl")
    measured = [r for r in recs if not r["warmup"]]
    assert len(recs) == 25 and len(measured) == 24  # the parent's warm-up, then both workers' records
    ids = [r["id"] for r in recs]
    assert len(set(ids)) == len(ids)  # unique across processes
    assert {r["worker"] for r in measured} == {0, 1} and recs[0]["worker"] is None
    assert sorted(r["worker"] for r in measured).count(0) == 12  # 2 slots each: half the conversations
    assert all(r["status"] == 200 and r["error"] is None for r in recs)
    ttft = res["metrics"]["ttft_ms"]
    assert ttft["n"] == 24
    assert TTFT_MS - 1 <= ttft["min"] and ttft["p50"] <= TTFT_MS + 15, ttft  # where the server put it
    assert res["metrics"]["output_tokens"] == 24 * 8
    # Both workers streamed at once: four requests in flight, as asked.
    spans = sorted((r["start_ns"], r["end_ns"]) for r in measured)
    peak = max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans)
    assert peak == 4
    client = res["client"]
    assert len(client["workers"]) == 2 and all(w["loop_lag_ms"]["n"] > 0 for w in client["workers"])


def test_two_workers_open_loop_keep_the_one_schedule(compose, timed_url, tmp_path):
    cfg = _cfg(compose, timed_url, "load.rate=25", "load.arrival=constant", "workload.requests=20",
               "workload.output_tokens=4")
    res = _run(cfg, tmp_path / "job")
    assert res["status"] == "ok", res["error"]
    measured = sorted((r for r in read_jsonl(tmp_path / "job" / "requests.jsonl") if not r["warmup"]),
                      key=lambda r: r["scheduled_ns"])
    assert [r["worker"] for r in measured] == [0, 1] * 10  # one schedule, dealt round-robin
    gaps = [b["scheduled_ns"] - a["scheduled_ns"] for a, b in zip(measured, measured[1:])]
    assert all(abs(g - 40_000_000) <= 1 for g in gaps), gaps  # 25/s across both processes' clocks
    late_ms = [(r["start_ns"] - r["scheduled_ns"]) / 1e6 for r in measured]
    assert min(late_ms) >= 0 and max(late_ms) < 50, late_ms  # never early; close to due on a busy box
    assert res["metrics"]["lateness_ms"]["n"] == 20


def _workers_of(me: psutil.Process) -> list[psutil.Process]:
    out = []
    for p in me.children(recursive=True):
        try:
            if "spawn_main" in " ".join(p.cmdline()):
                out.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return sorted(out, key=lambda p: p.create_time())


def test_a_killed_worker_fails_the_job_and_the_others_records_are_kept(compose, timed_url, tmp_path):
    # 2 workers x 1 slot, 8 conversations each of ~0.5 s: the kill lands while both stream.
    cfg = _cfg(compose, timed_url, "concurrency=2", "workload.requests=16", "workload.output_tokens=44")
    job = tmp_path / "job"
    before = len(timedserver.fetch_log(timed_url, clear=False))  # requests the server has seen
    out: dict = {}
    t = threading.Thread(target=lambda: out.setdefault("res", _run(cfg, job)), daemon=True)
    t.start()
    me = psutil.Process()
    wait_for(lambda: len(_workers_of(me)) == 2, 60, "two worker processes")
    victim = _workers_of(me)[1]
    # Well into the measured run: the warm-up and 5 measured requests have started, so with one
    # slot per worker at least 3 replies have finished.
    wait_for(lambda: len(timedserver.fetch_log(timed_url, clear=False)) >= before + 6, 90, "the measured run")
    victim.send_signal(signal.SIGKILL)
    t.join(120)
    assert not t.is_alive()
    res = out["res"]
    assert res["status"] == "failed"
    assert f"(pid {victim.pid}) was killed by SIGKILL during repeat 0" in res["error"], res["error"]
    assert "metrics cover the" in res["error"]  # what was measured is kept
    recs = read_jsonl(job / "requests.jsonl")
    survivor = [r for r in recs if not r["warmup"]]
    # Both workers' finished replies are kept: at one stream per worker each reply is decoded
    # and sent to the parent as it ends, so the killed one's finished work outlives it.
    assert survivor and 0 in {r["worker"] for r in survivor} <= {0, 1}
    done = [r for r in survivor if r["error"] is None]
    assert len(done) >= 2 and all(r["status"] == 200 for r in done)
    assert res["metrics"]["requests_ok"] == len(done)
    assert json.loads((job / "result.json").read_text())["status"] == "failed"
    wait_for(lambda: not _workers_of(me), 15, "the other worker to exit")


@pytest.mark.parametrize("to_group", [False, True], ids=["to-benchrun", "to-the-process-group"])
def test_ctrl_c_with_workers_writes_interrupted_keeps_every_workers_records(timed_url, tmp_path, to_group):
    """SIGINT to benchrun alone (its workers are then stopped by it), or to the whole process
    group as a terminal's Ctrl-C does (each worker also hears it): the job is `interrupted`,
    what both workers finished is in requests.jsonl and in the partial metrics, no worker is
    left behind, exit 130."""
    rid = f"workers-int-{int(to_group)}"
    env = {**os.environ, "BENCHRUN_RUN_ID": rid}
    before = len(timedserver.fetch_log(timed_url, clear=False))
    proc = subprocess.Popen([sys.executable, "-m", "benchrun", "model=external", f"model.url={timed_url}",
                             "load.workers=2", "concurrency=2", "workload.requests=16", "workload.output_tokens=44",
                             f"+workload.extra_body={{ttft_ms:{TTFT_MS},itl_ms:{ITL_MS}}}", "telemetry.enabled=false",
                             "progress.mode=off", "report=false"],
                            cwd=tmp_path, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    job = tmp_path / "outputs" / rid / "0_external_c2"
    try:
        wait_for(lambda: len(timedserver.fetch_log(timed_url, clear=False)) >= before + 6, 120, "the measured run")
        workers = _workers_of(psutil.Process(proc.pid))
        assert len(workers) == 2
        if to_group:
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 130, err
    assert "Traceback" not in err, err
    res = json.loads((job / "result.json").read_text())
    assert res["status"] == "interrupted", res["error"]
    measured = [r for r in read_jsonl(job / "requests.jsonl") if not r["warmup"]]
    ok = [r for r in measured if r["error"] is None]
    assert {r["worker"] for r in ok} == {0, 1}  # both workers' finished replies were flushed
    assert res["metrics"]["requests_ok"] == len(ok) and 2 <= len(ok) < 16
    wait_for(lambda: not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers), 15,
             "the workers to exit")


def test_large_records_arrive_whole(compose, timed_url, tmp_path):
    """Records of thousands of events each, flushed at once: batches far larger than a pipe's
    buffer must arrive whole (a loop reader once made the pipe non-blocking: they came cut, and
    the run hung)."""
    cfg = compose(["model=external", f"model.url={timed_url}", "load.workers=2", "telemetry.enabled=false",
                   "load.metrics_interval_s=0", "progress.mode=off", "+workload.extra_body={ttft_ms:1,itl_ms:0}",
                   "concurrency=4", "workload.requests=12", "workload.output_tokens=3000"])
    res = _run(cfg, tmp_path / "job")
    assert res["status"] == "ok", res["error"]
    measured = [r for r in read_jsonl(tmp_path / "job" / "requests.jsonl") if not r["warmup"]]
    assert len(measured) == 12 and {r["worker"] for r in measured} == {0, 1}
    assert res["metrics"]["output_tokens"] == 12 * 3000
