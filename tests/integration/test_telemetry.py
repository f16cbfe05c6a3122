"""The telemetry sampler: on real embedded llama.cpp servers (psutil), through an injected fake
NVML module (no GPU here), degrading without NVML, and inside a real job's result.json.
This half runs servers, processes or sockets; the parts that need none are in tests/unit/test_telemetry.py."""
from __future__ import annotations

import json
import sys
import time
import urllib.request

import psutil
import pytest
from support import read_jsonl as read_lines
from support import wait_for

from benchrun.config import ModelConfig
from benchrun.measure.telemetry import Sampler
from benchrun.preflight import fit
from benchrun.provision.tinymodel import ensure_tiny_model
from benchrun.servers import build_server
from benchrun.servers.base import stop_process


def post_chat(url: str, max_tokens: int = 32) -> None:
    body = json.dumps({"messages": [{"role": "user", "content": "hello"}], "max_tokens": max_tokens,
                       "ignore_eos": True}).encode()
    req = urllib.request.Request(url + "/v1/chat/completions", body, {"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=60).read()


def test_sampler_on_real_servers_rss_grows_with_the_bigger_model(tiny_server, tmp_path):
    # tiny: the shared session server; it also gets a request so the CPU reading shows load.
    s = Sampler(tiny_server.pid, tmp_path / "tiny.jsonl", interval_s=0.05, use_nvml=False).start()
    s.mark("measure")
    # One short reply can cost the tiny model under one clock tick of CPU time (10 ms), which
    # psutil reads as 0%: generate until the server has used a clear 100 ms (read on our own).
    spent = lambda: sum(psutil.Process(tiny_server.pid).cpu_times()[:2])  # noqa: E731
    before = spent()
    wait_for(lambda: post_chat(tiny_server.url) or spent() - before >= 0.1, 60, "100 ms of server CPU")
    seen = len(s.samples)  # the thread's own samples from here on cover the requests or after
    wait_for(lambda: len(s.samples) >= seen + 2, 30, "two periodic samples after the request")
    s.stop()
    small = s.summary()
    lines = read_lines(tmp_path / "tiny.jsonl")
    assert lines[0]["phase"] == "idle" and lines[0]["t"] == 0.0
    assert {"idle", "measure"} <= {x["phase"] for x in lines}
    assert all(b["t"] >= a["t"] for a, b in zip(lines, lines[1:]))
    assert len(lines) == small["telemetry"]["samples"] >= 4
    assert max(x["cpu_pct"] for x in lines if x["phase"] == "measure") > 0  # it was generating
    assert small["memory"]["kind"] == "rss" and small["memory"]["source"] == "psutil"
    assert small["memory"]["peak_mib"] >= small["memory"]["idle_mib"] > 0
    assert small["energy"] is None and "NVML disabled (telemetry.nvml=false)" in small["telemetry"]["notes"]

    m = ModelConfig(name="tiny_wide", tiny="tiny_wide", parallel=4, ctx_size=4096)
    wide_server = build_server(m, tmp_path / "wide.log")
    try:
        w = Sampler(wide_server.pid, tmp_path / "wide.jsonl", interval_s=0.05, use_nvml=False).start()
        wait_for(lambda: len(w.samples) >= 3, 30, "the idle sample and two periodic ones")
        w.stop()
    finally:
        stop_process(wide_server.process, 5.0)
    wide = w.summary()
    # tiny_wide's weights + KV cache are ~131 MiB more than tiny's (by the GGUF estimate);
    # the measured idle RSS must show at least half of that difference.
    est = {n: fit.estimate(ModelConfig(name=n, tiny=n, parallel=4, ctx_size=4096), ensure_tiny_model(n))
           for n in ("tiny", "tiny_wide")}
    expected_growth = est["tiny_wide"].total_mib - est["tiny"].total_mib
    assert wide["memory"]["idle_mib"] - small["memory"]["idle_mib"] > 0.5 * expected_growth


def test_sampler_sees_another_process_taking_a_core(tiny_server, tmp_path):
    """A CPU hog beside the run shows up as 'other', not as server or client: the sampler's
    figure is checked against the CPU the hog really got (psutil, same window), so a machine
    busy with other work too cannot fail it."""
    import subprocess

    import psutil

    s = Sampler(tiny_server.pid, tmp_path / "t.jsonl", interval_s=0.05, use_nvml=False).start()
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        h = psutil.Process(hog.pid)
        busy = lambda: sum(h.cpu_times()[:2])  # noqa: E731 -- CPU seconds the hog really got
        wait_for(lambda: busy() >= 0.2, 60, "the hog to be up and spinning", every=0.05)
        c0, t0 = busy(), time.monotonic()
        s.mark("measure")
        # Enough to see: half a CPU second for the hog and a second of samples, however slowly
        # a busy machine hands them out.
        wait_for(lambda: busy() - c0 >= 0.5 and time.monotonic() - t0 >= 1.0, 120,
                 "the hog to use 0.5 CPU s under the sampler", every=0.05)
        s.stop()
        hog_pct = 100 * (sum(h.cpu_times()[:2]) - c0) / (time.monotonic() - t0)
    finally:
        s.stop()
        hog.kill()
        hog.wait()
    cpu = s.summary()["telemetry"]["cpu"]
    assert cpu["other_pct"] >= 0.75 * hog_pct, (cpu, hog_pct)  # the hog's share lands in 'other'
    assert cpu["server_pct"] < 50 and cpu["client_pct"] < 50, cpu  # both idle meanwhile


@pytest.mark.slow
def test_job_result_has_memory_estimate_and_telemetry(compose, tmp_path):
    from benchrun.job import run_job
    from benchrun.results import validate_result
    from benchrun.servers import ServerPool

    pool = ServerPool()
    try:
        res = run_job(compose(["model=tiny", "workload.requests=3", "concurrency=2", "telemetry.interval_s=0.05"]),
                      tmp_path / "job", pool, 0, "t")
        off = run_job(compose(["model=tiny", "workload.requests=1", "telemetry.enabled=false"]),
                      tmp_path / "off", pool, 1, "t")
    finally:
        pool.close()
    assert res["status"] == "ok", res["error"]
    validate_result(res)
    mem = res["server"]["memory"]
    est = fit.estimate(ModelConfig(name="tiny", tiny="tiny", parallel=4, ctx_size=16384), ensure_tiny_model("tiny"))  # conf/model/tiny.yaml
    assert mem["kind"] == "rss" and mem["estimate_mib"] == est.total_mib
    assert mem["peak_mib"] >= mem["idle_mib"] > 0
    assert res["energy"] is None  # no GPU on a CPU-only run
    assert res["telemetry"]["enabled"] and res["telemetry"]["samples"] >= 3
    cpu = res["telemetry"]["cpu"]
    assert cpu["server_pct"] > 0 and cpu["host_pct"] >= cpu["server_pct"] and res["telemetry"]["cores"] >= 1
    phases = [x["phase"] for x in read_lines(tmp_path / "job" / "telemetry.jsonl")]
    assert phases[0] == "idle" and "measure" in phases
    assert "xllamacpp" in res["server"]["build_info"]
    assert res["hardware"]["name"] == "auto" and res["hardware"]["memory_mib"] > 0

    assert off["status"] == "ok" and not (tmp_path / "off" / "telemetry.jsonl").exists()
    assert off["telemetry"]["enabled"] is False and off["server"]["memory"]["kind"] is None
    validate_result(off)
