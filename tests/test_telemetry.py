"""The telemetry sampler: on real embedded llama.cpp servers (psutil), through an injected fake
NVML module (no GPU here), degrading without NVML, and inside a real job's result.json."""
from __future__ import annotations

import json
import os
import sys
import time
import types
import urllib.request
from pathlib import Path

import pytest

from benchrun import fit, telemetry
from benchrun.config import ModelConfig
from benchrun.servers import build_server
from benchrun.servers.base import stop_process
from benchrun.telemetry import Sampler, summarize
from benchrun.tinymodel import ensure_tiny_model

MIB = 1 << 20


class NVMLError(Exception):
    pass


def fake_pynvml(pid: int, proc_bytes=(100 * MIB, 300 * MIB, 200 * MIB), power_mw=(100_000, 300_000),
                energy=True, per_process=True, init_error=None) -> types.ModuleType:
    """A stand-in for nvidia-ml-py's pynvml, with one GPU running process `pid`. Each read of
    the process list advances through proc_bytes (then stays on the last); power alternates;
    the energy counter advances 50 J per read."""
    nv = types.ModuleType("pynvml")
    nv.NVMLError = NVMLError
    nv.NVML_CLOCK_SM, nv.NVML_CLOCK_MEM, nv.NVML_TEMPERATURE_GPU = 1, 2, 0
    state = {"proc": 0, "power": 0, "energy": 0, "inits": 0, "shutdowns": 0}
    nv.state = state

    def init():
        if init_error:
            raise NVMLError(init_error)
        state["inits"] += 1

    def procs(h):
        if not per_process:
            raise NVMLError("Insufficient Permissions")
        i = min(state["proc"], len(proc_bytes) - 1)
        state["proc"] += 1
        return [types.SimpleNamespace(pid=pid, usedGpuMemory=proc_bytes[i]),
                types.SimpleNamespace(pid=1, usedGpuMemory=999 * MIB)]  # another process: not ours

    def power(h):
        state["power"] += 1
        return power_mw[state["power"] % len(power_mw)]

    def energy_mj(h):
        if not energy:
            raise NVMLError("Not Supported")
        state["energy"] += 1
        return 1_000_000 + 50_000 * state["energy"]

    nv.nvmlInit = init
    nv.nvmlShutdown = lambda: state.__setitem__("shutdowns", state["shutdowns"] + 1)
    nv.nvmlDeviceGetCount = lambda: 1
    nv.nvmlDeviceGetHandleByIndex = lambda i: f"gpu{i}"
    nv.nvmlDeviceGetName = lambda h: "NVIDIA Fake 48GB"
    nv.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(total=49152 * MIB, used=4096 * MIB)
    nv.nvmlDeviceGetComputeRunningProcesses = procs
    nv.nvmlDeviceGetGraphicsRunningProcesses = lambda h: []
    nv.nvmlDeviceGetUtilizationRates = lambda h: types.SimpleNamespace(gpu=87, memory=40)
    nv.nvmlDeviceGetPowerUsage = power
    nv.nvmlDeviceGetClockInfo = lambda h, kind: {1: 2520, 2: 10501}[kind]
    nv.nvmlDeviceGetTemperature = lambda h, kind: 61
    nv.nvmlDeviceGetTotalEnergyConsumption = energy_mj
    return nv


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def post_chat(url: str, max_tokens: int = 32) -> None:
    body = json.dumps({"messages": [{"role": "user", "content": "hello"}], "max_tokens": max_tokens,
                       "ignore_eos": True}).encode()
    req = urllib.request.Request(url + "/v1/chat/completions", body, {"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=60).read()


# -- real servers --------------------------------------------------------------------------

def test_sampler_on_real_servers_rss_grows_with_the_bigger_model(tiny_server, tmp_path):
    # tiny: the shared session server; it also gets a request so the CPU reading shows load.
    s = Sampler(tiny_server.pid, tmp_path / "tiny.jsonl", interval_s=0.05, use_nvml=False).start()
    s.mark("measure")
    post_chat(tiny_server.url)
    time.sleep(0.2)
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
        time.sleep(0.2)
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


def test_cpu_use_splits_the_machine_into_server_client_and_others():
    mk = lambda phase, host, server, client: {"phase": phase, "host_cpu_pct": host, "cpu_pct": server,
                                              "client_cpu_pct": client}
    samples = [mk("idle", 10, 0, 0), mk("measure", 200, 90, 10), mk("measure", 180, 110, 30)]
    assert telemetry.cpu_use(samples) == {"host_pct": 190.0, "client_pct": 20.0, "server_pct": 100.0,
                                          "other_pct": 70.0}
    out = summarize(samples)
    assert out["telemetry"]["cpu"]["other_pct"] == 70.0
    assert any("other processes used 70% of a core" in n for n in out["telemetry"]["notes"])
    # No server process (external backend): no split, and no claim about other processes.
    ext = [{k: v for k, v in s.items() if k != "cpu_pct"} for s in samples]
    assert "other_pct" not in telemetry.cpu_use(ext) and telemetry.cpu_use(samples[:1]) is None
    # With times, each reading weighs the interval it covers: 0.1 s at 200%, then 0.3 s at 100%.
    timed = [{**s, "t": t} for s, t in zip(samples, (0.0, 0.1, 0.4))]
    timed[2]["host_cpu_pct"] = 100
    assert telemetry.cpu_use(timed)["host_pct"] == 125.0


def test_sampler_sees_another_process_taking_a_core(tiny_server, tmp_path):
    """A CPU hog beside the run shows up as 'other', not as server or client: the sampler's
    figure is checked against the CPU the hog really got (psutil, same window), so a machine
    busy with other work too cannot fail it."""
    import subprocess
    import sys

    import psutil

    s = Sampler(tiny_server.pid, tmp_path / "t.jsonl", interval_s=0.05, use_nvml=False).start()
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        h = psutil.Process(hog.pid)
        while sum(h.cpu_times()[:2]) < 0.2:  # wait until it is up and spinning
            time.sleep(0.05)
        c0, t0 = sum(h.cpu_times()[:2]), time.monotonic()
        s.mark("measure")
        while sum(h.cpu_times()[:2]) - c0 < 0.5 or time.monotonic() - t0 < 1.0:  # enough to see
            time.sleep(0.05)
        s.stop()
        hog_pct = 100 * (sum(h.cpu_times()[:2]) - c0) / (time.monotonic() - t0)
    finally:
        s.stop()
        hog.kill()
        hog.wait()
    cpu = s.summary()["telemetry"]["cpu"]
    assert cpu["other_pct"] >= 0.75 * hog_pct, (cpu, hog_pct)  # the hog's share lands in 'other'
    assert cpu["server_pct"] < 50 and cpu["client_pct"] < 50, cpu  # both idle meanwhile


def test_sampler_survives_the_server_going_away(tmp_path):
    s = Sampler(2 ** 22 + 12345, tmp_path / "t.jsonl", interval_s=0.02, use_nvml=False).start()  # no such pid
    time.sleep(0.1)
    s.stop()
    out = s.summary()
    assert out["memory"]["peak_mib"] is None and out["telemetry"]["samples"] >= 2


# -- NVML through a fake module -------------------------------------------------------------

def test_nvml_path_with_a_fake_module(monkeypatch, tmp_path):
    nv = fake_pynvml(os.getpid())
    monkeypatch.setitem(sys.modules, "pynvml", nv)
    s = Sampler(os.getpid(), tmp_path / "t.jsonl", interval_s=10.0, on_gpu=True).start()  # thread idle
    s.mark("measure")
    s.mark("measure")
    s.stop()
    lines = read_lines(tmp_path / "t.jsonl")
    assert [x["phase"] for x in lines] == ["idle", "measure", "measure", "measure"]
    g = lines[0]["gpus"][0]
    assert g == {"index": 0, "used_mib": 4096.0, "proc_mib": 100.0, "util_pct": 87, "mem_util_pct": 40,
                 "power_w": 300.0, "sm_clock_mhz": 2520, "mem_clock_mhz": 10501, "temp_c": 61,
                 "energy_mj": 1_050_000}
    assert lines[1]["rss_mib"] > 0  # psutil still reads this process
    out = s.summary(output_tokens=600)
    mem = out["memory"]
    assert (mem["kind"], mem["source"], mem["idle_mib"], mem["peak_mib"]) == ("vram", "nvml-process", 100.0, 300.0)
    # energy counter over the measure window: 3 samples, 2 steps of 50 J
    e = out["energy"]
    assert e["source"] == "nvml-energy-counter" and e["joules"] == 100.0
    assert e["tokens_per_joule"] == 6.0
    dt = lines[-1]["t"] - lines[1]["t"]
    assert e["mean_power_w"] == pytest.approx(100.0 / dt, rel=1e-2)
    assert out["telemetry"]["nvml"] is True
    assert nv.state["inits"] == nv.state["shutdowns"] == 1


def test_energy_from_power_samples_by_hand():
    """No energy counter: trapezoid over power samples. 200 W for 1 s, then 200->400 W over 2 s
    = 200 + 600 = 800 J over 3 s."""
    gpu = lambda w: {"gpus": [{"index": 0, "proc_mib": 10.0, "power_w": w}]}  # noqa: E731
    samples = [{"t": 0.0, "phase": "idle", **gpu(50.0)},
               {"t": 1.0, "phase": "measure", **gpu(200.0)}, {"t": 2.0, "phase": "measure", **gpu(200.0)},
               {"t": 4.0, "phase": "measure", **gpu(400.0)}]
    out = summarize(samples, output_tokens=400, on_gpu=True)
    assert out["energy"] == {"joules": 800.0, "mean_power_w": round(800 / 3, 2), "tokens_per_joule": 0.5,
                             "window_s": 3.0, "source": "power-samples"}
    assert out["memory"]["idle_mib"] == 10.0


def test_no_per_process_permission_falls_back_to_device_memory(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(os.getpid(), per_process=False, energy=False))
    s = Sampler(os.getpid(), tmp_path / "t.jsonl", interval_s=10.0, on_gpu=True).start()
    s.mark("measure")
    s.stop()
    out = s.summary(output_tokens=10)
    assert (out["memory"]["kind"], out["memory"]["source"], out["memory"]["peak_mib"]) == ("vram", "nvml-device", 4096.0)
    assert any("per-process GPU memory not readable" in n for n in out["telemetry"]["notes"])
    assert out["energy"]["source"] == "power-samples" and out["energy"]["joules"] > 0


def test_without_nvml_the_sampler_degrades_and_says_so(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(os.getpid(), init_error="Driver Not Loaded"))
    s = Sampler(os.getpid(), tmp_path / "t.jsonl", interval_s=10.0, on_gpu=True).start()
    s.stop()
    out = s.summary()
    assert out["memory"]["kind"] == "rss" and out["memory"]["peak_mib"] > 0
    assert out["energy"] is None and out["telemetry"]["nvml"] is False
    assert any("NVML unavailable: Driver Not Loaded" in n for n in out["telemetry"]["notes"])
    assert "gpus" not in read_lines(tmp_path / "t.jsonl")[0]


def test_a_broken_reading_never_fails(monkeypatch, tmp_path):
    nv = fake_pynvml(os.getpid())

    def boom(h):
        raise RuntimeError("driver fell over")
    nv.nvmlDeviceGetMemoryInfo = boom  # every NVML read failing is tolerated per field
    monkeypatch.setitem(sys.modules, "pynvml", nv)
    s = Sampler(os.getpid(), tmp_path / "t.jsonl", interval_s=10.0).start()
    s.stop()
    assert "used_mib" not in read_lines(tmp_path / "t.jsonl")[0]["gpus"][0]
    from benchrun.results import JobResult

    result = JobResult(2, "ok", None, "r", {}, {}, {}, 1, 1, {}, {}, {}, {}, {"output_tokens": 0}, {})
    telemetry.record_for_job(result, s, None)
    assert result.server["memory"]["kind"] == "vram"  # per-process memory still read


# -- in a real job -------------------------------------------------------------------------

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
    est = fit.estimate(ModelConfig(name="tiny", tiny="tiny", parallel=4, ctx_size=4096), ensure_tiny_model("tiny"))
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
