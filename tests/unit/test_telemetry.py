"""The telemetry sampler without a real server: CPU use split into server, client and others;
surviving the server going away; NVML through an injected fake module (no GPU here), energy
from power samples, the fallbacks without per-process permission or without NVML; a broken
reading never fails.
This half needs no server, process or socket; the rest is in tests/integration/test_telemetry.py."""
from __future__ import annotations

import os
import sys
import types

import pytest
from support import read_jsonl as read_lines
from support import wait_for

from benchrun.measure import telemetry
from benchrun.measure.footprint import cpu_use, summarize
from benchrun.measure.telemetry import Sampler

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


def test_cpu_use_splits_the_machine_into_server_client_and_others():
    mk = lambda phase, host, server, client: {"phase": phase, "host_cpu_pct": host, "cpu_pct": server,
                                              "client_cpu_pct": client}
    samples = [mk("idle", 10, 0, 0), mk("measure", 200, 90, 10), mk("measure", 180, 110, 30)]
    assert cpu_use(samples) == {"host_pct": 190.0, "client_pct": 20.0, "server_pct": 100.0,
                                          "other_pct": 70.0}
    out = summarize(samples)
    assert out["telemetry"]["cpu"]["other_pct"] == 70.0
    assert any("other processes used 70% of a core" in n for n in out["telemetry"]["notes"])
    # No server process (external backend): no split, and no claim about other processes.
    ext = [{k: v for k, v in s.items() if k != "cpu_pct"} for s in samples]
    assert "other_pct" not in cpu_use(ext) and cpu_use(samples[:1]) is None
    # With times, each reading weighs the interval it covers: 0.1 s at 200%, then 0.3 s at 100%.
    timed = [{**s, "t": t} for s, t in zip(samples, (0.0, 0.1, 0.4))]
    timed[2]["host_cpu_pct"] = 100
    assert cpu_use(timed)["host_pct"] == 125.0


def test_sampler_survives_the_server_going_away(tmp_path):
    s = Sampler(2 ** 22 + 12345, tmp_path / "t.jsonl", interval_s=0.02, use_nvml=False).start()  # no such pid
    # The thread goes on sampling a pid that is not there (the idle sample, then periodic ones).
    wait_for(lambda: len(s.samples) >= 3, 30, "two periodic samples of a missing server", every=0.01)
    assert s._thread.is_alive()
    s.stop()
    out = s.summary()
    assert out["memory"]["peak_mib"] is None and out["telemetry"]["samples"] >= 4


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
    memory, _, _ = telemetry.for_job(0, s, None)
    assert memory["kind"] == "vram"  # per-process memory still read
