"""hardware=auto detection (GPUs through an injected fake NVML; CPU/RAM through psutil) and
profiles.
This half needs no server, process or socket; the rest is in tests/integration/test_hardware.py."""
from __future__ import annotations

import sys
import types

import psutil

from benchrun.measure import hardware

MIB = 1 << 20


def fake_nvml(gpus: list[tuple[str, int]], init_error: str | None = None) -> types.ModuleType:
    nv = types.ModuleType("pynvml")

    def init():
        if init_error:
            raise RuntimeError(init_error)
    nv.nvmlInit = init
    nv.nvmlShutdown = lambda: None
    nv.nvmlDeviceGetCount = lambda: len(gpus)
    nv.nvmlDeviceGetHandleByIndex = lambda i: i
    nv.nvmlDeviceGetName = lambda i: gpus[i][0].encode()  # old pynvml returned bytes
    nv.nvmlDeviceGetMemoryInfo = lambda i: types.SimpleNamespace(total=gpus[i][1] * MIB)
    return nv


def test_auto_detects_gpus_through_nvml(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml([("NVIDIA GeForce RTX 4090", 24564)] * 2))
    d = hardware.detect()
    assert d["gpu"] == "NVIDIA GeForce RTX 4090" and d["gpu_count"] == 2
    assert d["gpu_memory_mib"] == 2 * 24564
    assert [g["index"] for g in d["gpus"]] == [0, 1]
    assert d["memory_mib"] == psutil.virtual_memory().total // MIB
    assert d["cpu_count"] == psutil.cpu_count() and d["cpu"]


def test_auto_without_nvml_is_the_cpu(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml([], init_error="NVML Shared Library Not Found"))
    d = hardware.describe_hardware({"name": "auto", "gpu": None, "memory_mib": None})
    assert d["name"] == "auto" and d["gpu"] is None and d["gpu_memory_mib"] is None
    assert d["gpu_note"] == "NVML unavailable: NVML Shared Library Not Found"
    assert d["memory_mib"] == psutil.virtual_memory().total // MIB


def test_auto_with_overrides_and_profiles(compose):
    detected = {"name": "auto", "cpu": "Test CPU", "memory_mib": 64000, "gpu": None, "gpu_memory_mib": None}
    as_dict = lambda cfg: cfg.hardware  # noqa: E731 -- the typed HardwareConfig the job passes
    d = hardware.describe_hardware(as_dict(compose(["hardware.memory_mib=10"])), detected)
    assert d["memory_mib"] == 10 and d["cpu"] == "Test CPU"  # an override beats detection
    p = hardware.describe_hardware(as_dict(compose(["hardware=rtx4090"])), detected)
    assert (p["name"], p["gpu"], p["gpu_memory_mib"]) == ("rtx4090", "NVIDIA GeForce RTX 4090", 24564)
    assert p["memory_mib"] == 64000 and p["cpu"] == "Test CPU"  # nulls filled from detection
    assert p["detected_gpu"] is None  # the profile is not this machine, and it says so
    c = hardware.describe_hardware(as_dict(compose(["hardware=cpu"])), detected)
    assert c["name"] == "cpu" and c["memory_mib"] == 64000 and c.get("gpu") is None
    h = hardware.describe_hardware(as_dict(compose(["hardware=h100"])), {**detected, "gpu": "NVIDIA H100 80GB HBM3"})
    assert h["gpu_memory_mib"] == 81559 and "detected_gpu" not in h


def test_a_result_names_the_cluster_job_that_measured_it():
    assert hardware.cluster_job({}) is None  # not in a scheduler job
    env = {"SLURM_JOB_ID": "41", "SLURM_ARRAY_JOB_ID": "40", "SLURM_ARRAY_TASK_ID": "1",
           "SLURMD_NODENAME": "gpu07", "SLURM_JOB_PARTITION": "gpu", "SLURM_JOB_GPUS": "2"}
    assert hardware.cluster_job(env) == {"scheduler": "slurm", "job_id": "41", "array_job_id": "40",
                                         "array_task_id": "1", "node": "gpu07", "partition": "gpu", "gpus": "2"}
    assert hardware.cluster_job({"SLURM_JOB_ID": "7", "CUDA_VISIBLE_DEVICES": "0"})["gpus"] == "0"
