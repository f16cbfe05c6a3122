"""What machine is this? `hardware=auto` detects the GPUs through NVML (name, memory) and the
CPU and RAM through psutil; a named profile (rtx4090, h100, cpu, ...) describes a machine for
reports and the fit check, with anything it leaves null filled in from detection."""
from __future__ import annotations

import os
import platform
from collections.abc import Mapping
from typing import Any, Optional, TypedDict

from benchrun.config import plain

MIB = 1 << 20


class Gpu(TypedDict):
    """One GPU NVML sees (the `gpus` list of a detected hardware block)."""
    index: int
    name: str
    memory_mib: int


class ClusterJob(TypedDict):
    """job.cluster of result.json: the scheduler job that measured it."""
    scheduler: str
    job_id: Optional[str]
    array_job_id: Optional[str]
    array_task_id: Optional[str]
    node: str
    partition: Optional[str]
    gpus: Optional[str]


def open_nvml() -> tuple[Optional[Any], Optional[str]]:
    """(initialised pynvml module, None) or (None, why not). The caller calls nvmlShutdown.
    Imported here, not at module level, so tests can inject a fake `pynvml` module."""
    try:
        import pynvml
    except ImportError:
        return None, "nvidia-ml-py (pynvml) is not installed"
    try:
        pynvml.nvmlInit()
    except Exception as e:  # noqa: BLE001 -- NVMLError_LibraryNotFound, DriverNotLoaded, NoPermission...
        return None, f"NVML unavailable: {e}"
    return pynvml, None


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def detect_gpus() -> tuple[list[Gpu], Optional[str]]:
    """([{index, name, memory_mib}], note). note says why no GPU could be read."""
    nvml, why = open_nvml()
    if nvml is None:
        return [], why
    try:
        gpus: list[Gpu] = []
        for i in range(nvml.nvmlDeviceGetCount()):
            h = nvml.nvmlDeviceGetHandleByIndex(i)
            gpus.append({"index": i, "name": _text(nvml.nvmlDeviceGetName(h)),
                         "memory_mib": int(nvml.nvmlDeviceGetMemoryInfo(h).total // MIB)})
        return gpus, None if gpus else "NVML found no GPU"
    except Exception as e:  # noqa: BLE001
        return [], f"NVML error: {e}"
    finally:
        try:
            nvml.nvmlShutdown()
        except Exception:  # noqa: BLE001
            pass


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def detect() -> dict[str, Any]:
    """This machine: GPUs (if NVML can see them), CPU and RAM."""
    import psutil

    gpus, note = detect_gpus()
    d: dict[str, Any] = {"name": "auto", "cpu": cpu_name(), "cpu_count": psutil.cpu_count(logical=True),
               "memory_mib": int(psutil.virtual_memory().total // MIB), "gpus": gpus}
    if gpus:
        names = sorted({g["name"] for g in gpus})
        d["gpu"] = names[0] if len(names) == 1 else " + ".join(names)
        d["gpu_count"] = len(gpus)
        d["gpu_memory_mib"] = sum(g["memory_mib"] for g in gpus)  # llama.cpp splits across GPUs
    else:
        d["gpu"], d["gpu_memory_mib"], d["gpu_note"] = None, None, note
    return d


def describe_hardware(hw: Any, detected: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """The `hardware` block of result.json. `hw` is the HardwareConfig (or the same as a dict).
    auto -> detection; a profile -> its fields, nulls filled from detection."""
    fields = dict(plain(hw))
    detected = detected if detected is not None else detect()
    if fields.get("name", "auto") == "auto":
        return {**detected, **{k: v for k, v in fields.items() if v is not None}}
    d = {k: v for k, v in fields.items() if v is not None}
    for k in ("cpu", "memory_mib"):
        d.setdefault(k, detected.get(k))
    if not fields.get("gpu") and not fields.get("gpu_memory_mib"):
        d.setdefault("gpu", None)
    # A profile describes a machine; say when it is not the one we run on.
    if d.get("gpu") and d.get("gpu") != detected.get("gpu"):
        d["detected_gpu"] = detected.get("gpu")
    return d


def cluster_job(env: Optional[Mapping[str, str]] = None) -> Optional[ClusterJob]:
    """The scheduler job this process runs in (SLURM sets these for every job step), so each
    result says which job, node and GPUs measured it; None outside a cluster job."""
    env = os.environ if env is None else env
    if not env.get("SLURM_JOB_ID"):
        return None
    return {"scheduler": "slurm", "job_id": env.get("SLURM_JOB_ID"),
            "array_job_id": env.get("SLURM_ARRAY_JOB_ID"), "array_task_id": env.get("SLURM_ARRAY_TASK_ID"),
            "node": env.get("SLURMD_NODENAME") or platform.node(), "partition": env.get("SLURM_JOB_PARTITION"),
            "gpus": env.get("SLURM_JOB_GPUS") or env.get("CUDA_VISIBLE_DEVICES")}
