"""Ctrl-C / SIGTERM to a running sweep: what was measured is written as `interrupted`, every
server benchrun started is stopped (checked by pid), exit 130."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
from support import survivors, wait_for

from benchrun.results import read_result


@pytest.mark.slow
@pytest.mark.parametrize("sigs, to_server", [([signal.SIGINT], False), ([signal.SIGTERM], False),
                                             ([signal.SIGINT, signal.SIGINT], False), ([signal.SIGTERM], True)],
                         ids=["SIGINT", "SIGTERM", "SIGINT-twice", "SIGTERM-to-server-too"])
def test_signal_mid_sweep_writes_interrupted_stops_servers_exits_130(tmp_path, sigs, to_server):
    """An impatient second Ctrl-C, 0.1 s after the first, must not cut the cleanup short.
    to_server: the server gets the signal at the same moment, as every process of a job does
    from SLURM's scancel; it may die before benchrun hears its own (that once ended the job as
    `failed`, the sweep going on)."""
    name = "-".join(s.name for s in sigs) + ("-both" if to_server else "")
    rid = f"sig-{name}"
    mark = f"{tmp_path}-{name}"
    env = {**os.environ, "BENCHRUN_RUN_ID": rid, "BENCHRUN_TEST_MARK": mark}
    # SIGINT at its default: a harness that started us in the background (nohup, `&`) would
    # otherwise hand down "ignore SIGINT", and Ctrl-C would never reach benchrun.
    proc = subprocess.Popen([sys.executable, "-m", "benchrun", "-m", "model=tiny", "concurrency=2,3",
                             "workload.requests=40", "workload.output_tokens=128",
                             "load.warmup_requests=0"],
                            cwd=tmp_path, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    job = tmp_path / "outputs" / rid / "0_tiny_c2"
    try:
        # Mid-run for real: the server has finished a few of our requests.
        wait_for(lambda: (job / "server.log").exists()
                  and (job / "server.log").read_text(errors="replace").count("stop processing") >= 4,
                  120, "requests to finish on the server")
        children = psutil.Process(proc.pid).children(recursive=True)
        assert children, "no server process under benchrun"
        for i, sig in enumerate(sigs):
            time.sleep(0.1 * i)
            for c in children if to_server else []:
                c.send_signal(sig)
            proc.send_signal(sig)
        out, err = proc.communicate(timeout=180)  # a ceiling for a loaded machine, not a bound
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert f"benchrun: results in outputs/{rid}" in out
    assert "interrupted" in err and "Traceback" not in err
    res = read_result(job / "result.json")
    assert res["status"] == "interrupted"
    measured = [json.loads(ln) for ln in (job / "requests.jsonl").read_text().splitlines()]
    assert res["metrics"]["requests_ok"] >= 1  # partial metrics of what finished
    assert res["metrics"]["requests_ok"] == sum(1 for r in measured if not r["warmup"] and r["error"] is None)
    assert res["metrics"]["requests_ok"] < 40
    assert not (tmp_path / "outputs" / rid / "1_tiny_c3").exists()  # the sweep stopped
    summary = json.loads((tmp_path / "outputs" / rid / "summary.json").read_text())
    assert [r["status"] for r in summary] == ["interrupted"]
    # No orphan: every process benchrun started is gone, by pid and by environment.
    for c in children:
        assert not c.is_running() or c.status() == psutil.STATUS_ZOMBIE, c
    assert survivors(mark) == []


@pytest.mark.slow
def test_server_dies_with_benchrun_even_on_sigkill(tmp_path):
    """No handler runs on SIGKILL; the kernel (PR_SET_PDEATHSIG) still stops the server."""
    code = ("import sys, time\nfrom pathlib import Path\nfrom benchrun.config import ModelConfig\n"
            "from benchrun.servers import build_server\n"
            "h = build_server(ModelConfig(name='tiny', tiny='tiny'), Path(sys.argv[1]))\n"
            "print(h.pid, flush=True)\ntime.sleep(300)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "server.log")],
                            stdout=subprocess.PIPE, text=True)
    try:
        server = psutil.Process(int(proc.stdout.readline()))
        assert server.is_running()
        proc.kill()
        proc.wait(10)
        wait_for(lambda: not server.is_running() or server.status() == psutil.STATUS_ZOMBIE,
                  15, "the server to follow benchrun")
    finally:
        if proc.poll() is None:
            proc.kill()
