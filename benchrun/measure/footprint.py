"""What telemetry's samples add up to, for result.json: server.memory (VRAM when NVML shows the
server's processes or it runs on the GPU, else RSS; peak and idle), energy over the measured
window (NVML's energy counter, else the power samples integrated) and its tokens per joule, and
the CPU split of the measured window (machine, server, benchrun, everything else), with a note
for each thing that could not be read. Pure: samples in (telemetry.Sampler writes them, one
`Sample` per line of telemetry.jsonl), summaries out."""
from __future__ import annotations

from typing import Literal, Optional, TypedDict


class GpuSample(TypedDict, total=False):
    """One GPU in one sample: `index` always, each reading only when NVML gave it."""
    index: int
    used_mib: float
    proc_mib: float  # the server tree's own memory on this GPU
    util_pct: int
    mem_util_pct: int
    power_w: float
    sm_clock_mhz: int
    mem_clock_mhz: int
    temp_c: int
    energy_mj: int  # NVML's counter since the driver loaded


class Sample(TypedDict, total=False):
    """One line of telemetry.jsonl. The sampler always sets t and phase; each reading is there
    only when it could be read (total=False: the first sample of no run at all is {})."""
    t: float
    phase: str
    rss_mib: float
    cpu_pct: float
    host_cpu_pct: float
    client_cpu_pct: float
    gpus: list[GpuSample]


class MemorySummary(TypedDict):
    """server.memory from the samples: VRAM when the GPUs show the server, else RSS."""
    kind: str  # "vram" | "rss"
    source: str  # "nvml-process" | "nvml-device" | "psutil"
    peak_mib: Optional[float]
    idle_mib: Optional[float]
    rss_peak_mib: Optional[float]
    rss_idle_mib: Optional[float]
    estimate_mib: Optional[float]  # the fit estimate, set beside the reading by for_job


class Energy(TypedDict):
    """result.json `energy`: joules over the measured window and what they bought."""
    joules: float
    mean_power_w: float
    tokens_per_joule: Optional[float]
    window_s: float
    source: str  # "nvml-energy-counter" | "power-samples"


class CpuUse(TypedDict, total=False):
    """telemetry.cpu: mean % of one core over the measured window; server_pct and other_pct
    only when the server is a process benchrun can see."""
    host_pct: float
    client_pct: float
    server_pct: float
    other_pct: float


class Telemetry(TypedDict, total=False):
    """result.json `telemetry`: how it was sampled, what could not be read, and the CPU split."""
    enabled: bool
    interval_s: float
    file: str
    cores: int
    nvml: bool
    notes: list[str]
    cpu: CpuUse
    samples: int


class TelemetrySummary(TypedDict):
    memory: Optional[MemorySummary]
    energy: Optional[Energy]
    telemetry: Telemetry


def _peak(values: list[Optional[float]]) -> Optional[float]:
    vals = [v for v in values if v is not None]
    return round(max(vals), 2) if vals else None


def summarize(samples: list[Sample], output_tokens: int = 0, on_gpu: bool = False,
              meta: Optional[Telemetry] = None) -> TelemetrySummary:
    """Pure: samples -> server.memory, energy and the telemetry block of result.json."""
    meta = meta.copy() if meta else {}
    notes = meta.setdefault("notes", [])
    idle: Sample = samples[0] if samples else {}

    def proc_vram(s: Sample) -> Optional[float]:
        v = [g["proc_mib"] for g in s.get("gpus", []) if "proc_mib" in g]
        return sum(v) if v else None

    def dev_vram(s: Sample) -> Optional[float]:
        v = [g["used_mib"] for g in s.get("gpus", []) if "used_mib" in g]
        return sum(v) if v else None

    rss_peak, rss_idle = _peak([s.get("rss_mib") for s in samples]), idle.get("rss_mib")
    has_gpu = any(s.get("gpus") for s in samples)
    if any(proc_vram(s) for s in samples):
        kind, source = "vram", "nvml-process"
        peak, idle_mib = _peak([proc_vram(s) for s in samples]), proc_vram(idle)
    elif has_gpu and on_gpu:
        notes.append("per-process GPU memory not readable: vram is the GPUs' total used memory, "
                     "other processes included")
        kind, source = "vram", "nvml-device"
        peak, idle_mib = _peak([dev_vram(s) for s in samples]), dev_vram(idle)
    else:
        kind, source, peak, idle_mib = "rss", "psutil", rss_peak, rss_idle
    memory: MemorySummary = {"kind": kind, "source": source, "peak_mib": peak, "idle_mib": idle_mib,
                             "rss_peak_mib": rss_peak, "rss_idle_mib": rss_idle, "estimate_mib": None}

    energy: Optional[Energy] = None
    if memory["kind"] == "vram":
        # Count only the GPUs the server holds memory on (all of them when that is unknown).
        used = {g["index"] for s in samples for g in s.get("gpus", []) if g.get("proc_mib")}
        window: list[Sample] = [{**s, "gpus": [g for g in s.get("gpus", []) if not used or g["index"] in used]}
                  for s in samples if s.get("phase") == "measure"]
        energy = _energy(window, output_tokens, notes)
    elif not has_gpu:
        notes.append("no GPU telemetry: energy not measured")
    cpu = cpu_use(samples)
    if cpu is not None:
        meta["cpu"] = cpu
        if cpu.get("other_pct", 0.0) >= BUSY_PCT:
            notes.append(f"other processes used {cpu['other_pct']:.0f}% of a core during the measured "
                         f"window: the figures may be disturbed")
    meta["samples"] = len(samples)
    return {"memory": memory, "energy": energy, "telemetry": meta}


BUSY_PCT = 50.0  # other processes' mean CPU (% of one core) from which a run counts as disturbed


def cpu_use(samples: list[Sample]) -> Optional[CpuUse]:
    """Mean CPU (% of one core) over the measured window: the machine, the server, benchrun
    itself and, by difference, everything else. None without host readings."""
    # Each reading covers the time since the one before (cpu_percent(None)), so readings are
    # weighted by that interval: on a busy box the sampler itself waits longest exactly while
    # others hold the CPU, and a plain mean of readings would under-count them.
    readings: list[tuple[Sample, Optional[float]]] = []
    prev: Optional[float] = None
    for s in samples:
        t = s.get("t")
        if s.get("phase") == "measure" and "host_cpu_pct" in s:
            readings.append((s, t - prev if t is not None and prev is not None and t > prev else None))
        prev = t
    if not readings:
        return None
    weights = [(s, w) for s, w in readings if w is not None]
    if len(weights) < len(readings):  # no times: every reading counts the same
        weights = [(s, 1.0) for s, _ in readings]
    total = sum(w for _, w in weights)

    def mean(key: Literal["host_cpu_pct", "client_cpu_pct", "cpu_pct"]) -> float:
        return round(sum(s.get(key, 0.0) * w for s, w in weights) / total, 1)

    out: CpuUse = {"host_pct": mean("host_cpu_pct"), "client_pct": mean("client_cpu_pct")}
    if all("cpu_pct" in s for s, _ in weights):  # the server is a process we can see
        out["server_pct"] = mean("cpu_pct")
        out["other_pct"] = round(max(0.0, out["host_pct"] - out["server_pct"] - out["client_pct"]), 1)
    return out


def _energy(window: list[Sample], output_tokens: int, notes: list[str]) -> Optional[Energy]:
    """Joules over the measured window: NVML's energy counter when every GPU has one, else the
    power samples integrated (trapezoid). Summed over the GPUs."""
    if len(window) < 2:
        notes.append("too few samples in the measured window for energy")
        return None
    first, last = window[0], window[-1]
    dt = last["t"] - first["t"]
    if dt <= 0:
        return None
    joules, source = 0.0, "nvml-energy-counter"
    g0, g1 = first.get("gpus", []), last.get("gpus", [])
    if g0 and all("energy_mj" in g for g in g0 + g1) and len(g0) == len(g1):
        joules = sum(b["energy_mj"] - a["energy_mj"] for a, b in zip(g0, g1)) / 1000.0
    else:
        source = "power-samples"
        for a, b in zip(window, window[1:]):
            pa = sum(g.get("power_w", 0.0) for g in a.get("gpus", []))
            pb = sum(g.get("power_w", 0.0) for g in b.get("gpus", []))
            joules += (pa + pb) / 2.0 * (b["t"] - a["t"])
        if not any("power_w" in g for s in window for g in s.get("gpus", [])):
            notes.append("GPU power not readable: energy not measured")
            return None
    return {"joules": round(joules, 3), "mean_power_w": round(joules / dt, 2),
            "tokens_per_joule": round(output_tokens / joules, 4) if joules > 0 else None,
            "window_s": round(dt, 3), "source": source}


def disabled_summary(reason: str) -> TelemetrySummary:
    return {"memory": None, "energy": None,
            "telemetry": {"enabled": False, "samples": 0, "notes": [reason]}}
