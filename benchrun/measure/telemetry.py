"""A sampler thread beside the load: what the server costs in memory, CPU, GPU and energy.

Every `interval_s` (default 0.1 s) one line goes to telemetry.jsonl:
  {"t": seconds since start, "phase": "idle"|"warmup"|"measure", "rss_mib", "cpu_pct",
   "host_cpu_pct", "client_cpu_pct",
   "gpus": [{"index", "used_mib", "proc_mib", "util_pct", "mem_util_pct", "power_w",
             "sm_clock_mhz", "mem_clock_mhz", "temp_c", "energy_mj"}]}
RSS and CPU are the server's whole process tree (psutil); host_cpu_pct is the whole machine and
client_cpu_pct is benchrun's own process, all in % of one core, so what other processes took
during the measurement is visible: on a box where llama.cpp uses every core, any other load
stalls its threads (400 tokens took 24-53 s instead of 0.3 s here). GPU fields come from NVML. Anything
that cannot be read (no GPU, no NVML, no permission, a process gone) is left out and noted in
the summary: the sampler degrades, it never fails the job.
"""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Literal, Optional, TypedDict, TypeVar

from benchrun.config import BenchConfig
from benchrun.measure.hardware import MIB, open_nvml

T = TypeVar("T")


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


def _try(fn: Callable[..., T], *args: Any) -> Optional[T]:
    """One NVML read; None when unsupported on this GPU or not permitted."""
    try:
        return fn(*args)
    except Exception:  # noqa: BLE001 -- NVMLError_NotSupported / NoPermission / ...
        return None


class Sampler:
    def __init__(self, pid: Optional[int], path: Path, interval_s: float = 0.1,
                 use_nvml: bool = True, on_gpu: bool = False) -> None:
        self.pid, self.path, self.interval_s = pid, Path(path), max(0.01, float(interval_s))
        self.use_nvml, self.on_gpu = use_nvml, on_gpu
        self.samples: list[Sample] = []
        self.notes: list[str] = []
        self.phase = "idle"
        self._procs: dict[int, Any] = {}  # pid -> psutil.Process (psutil ships no types)
        self._nvml: Any = None  # the pynvml module while open (untyped)
        self._handles: list[Any] = []  # NVML device handles
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._fh: Optional[IO[str]] = None
        self._t0 = 0.0
        self._self: Any = None  # benchrun's own psutil.Process, set by start()
        self._cores = 1
        self.errors = 0

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> Sampler:
        """Open NVML, take the idle sample synchronously (before any traffic), start the thread."""
        if self.use_nvml:
            self._nvml, why = open_nvml()
            if why is not None:  # open_nvml gives the module or why not, never both
                self.notes.append(why)
            else:
                try:
                    self._handles = [self._nvml.nvmlDeviceGetHandleByIndex(i)
                                     for i in range(self._nvml.nvmlDeviceGetCount())]
                except Exception as e:  # noqa: BLE001
                    self.notes.append(f"NVML error: {e}")
                    self._close_nvml()
                if self._nvml is not None and not self._handles:
                    self.notes.append("NVML found no GPU")
        else:
            self.notes.append("NVML disabled (telemetry.nvml=false)")
        if self.pid is None:
            self.notes.append("no server process to measure (external backend): no RSS/CPU")
        import psutil

        self._self = psutil.Process()
        self._cores = psutil.cpu_count() or 1
        psutil.cpu_percent(None)  # cpu_percent(None) reports since the previous call: prime both
        self._self.cpu_percent(None)
        self._fh = open(self.path, "w")
        self._t0 = time.monotonic()
        self.sample()  # idle: after load, before traffic
        self.phase = "warmup"
        self._thread = threading.Thread(target=self._loop, name="benchrun-telemetry", daemon=True)
        self._thread.start()
        return self

    def mark(self, phase: str) -> None:
        """Label the following samples (e.g. 'measure' once warm-up is over) and sample now."""
        self.phase = phase
        self.sample()

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=5.0)
            self._thread = None
            self.sample()  # the end of the window, for energy
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        self._close_nvml()

    def _close_nvml(self) -> None:
        if self._nvml is not None:
            _try(self._nvml.nvmlShutdown)
            self._nvml, self._handles = None, []

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    # -- one sample ------------------------------------------------------------------------
    def _tree(self, pid: int) -> list[Any]:
        """The server process and its children, cached so cpu_percent has a previous reading."""
        import psutil

        try:
            root = self._procs.get(pid) or psutil.Process(pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return []
        self._procs = {p.pid: self._procs.get(p.pid, p) for p in procs}
        return list(self._procs.values())

    def _cpu(self, s: Sample, pid: int) -> None:
        import psutil

        rss, cpu, n = 0, 0.0, 0
        for p in self._tree(pid):
            try:
                rss += p.memory_info().rss
                cpu += p.cpu_percent(None)
                n += 1
            except psutil.Error:
                continue
        if n:
            s["rss_mib"] = round(rss / MIB, 2)
            s["cpu_pct"] = round(cpu, 1)

    def _host(self, s: Sample) -> None:
        import psutil

        s["host_cpu_pct"] = round(psutil.cpu_percent(None) * self._cores, 1)
        s["client_cpu_pct"] = round(self._self.cpu_percent(None), 1)

    def _gpu(self, s: Sample) -> None:
        nv, pids = self._nvml, set(self._procs)
        gpus: list[GpuSample] = []
        for i, h in enumerate(self._handles):
            g: GpuSample = {"index": i}
            mem = _try(nv.nvmlDeviceGetMemoryInfo, h)
            if mem is not None:
                g["used_mib"] = round(mem.used / MIB, 2)
            # Per-process GPU memory of the server tree (None inside containers whose pids
            # NVML cannot map, or without permission).
            used, seen = 0, False
            for fn in ("nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetGraphicsRunningProcesses"):
                for p in _try(getattr(nv, fn, lambda _h: None), h) or []:
                    if p.pid in pids and getattr(p, "usedGpuMemory", None) is not None:
                        used, seen = used + p.usedGpuMemory, True
            if seen:
                g["proc_mib"] = round(used / MIB, 2)
            util = _try(nv.nvmlDeviceGetUtilizationRates, h)
            if util is not None:
                g["util_pct"], g["mem_util_pct"] = util.gpu, util.memory
            power = _try(nv.nvmlDeviceGetPowerUsage, h)  # milliwatts
            if power is not None:
                g["power_w"] = round(power / 1000.0, 2)
            clocks: tuple[tuple[Literal["sm_clock_mhz", "mem_clock_mhz"], str], ...] = (
                ("sm_clock_mhz", "NVML_CLOCK_SM"), ("mem_clock_mhz", "NVML_CLOCK_MEM"))
            for key, clock in clocks:
                v = _try(nv.nvmlDeviceGetClockInfo, h, getattr(nv, clock, None))
                if v is not None:
                    g[key] = v
            temp = _try(nv.nvmlDeviceGetTemperature, h, getattr(nv, "NVML_TEMPERATURE_GPU", 0))
            if temp is not None:
                g["temp_c"] = temp
            energy = _try(nv.nvmlDeviceGetTotalEnergyConsumption, h)  # mJ since driver load
            if energy is not None:
                g["energy_mj"] = energy
            gpus.append(g)
        s["gpus"] = gpus

    def sample(self) -> Optional[Sample]:
        with self._lock:
            s: Sample = {"t": round(time.monotonic() - self._t0, 4), "phase": self.phase}
            try:
                if self.pid is not None:
                    self._cpu(s, self.pid)
                if self._self is not None:
                    self._host(s)
                if self._handles:
                    self._gpu(s)
            except Exception as e:  # noqa: BLE001 -- telemetry never fails the job
                self.errors += 1
                if self.errors == 1:
                    self.notes.append(f"sampling error: {type(e).__name__}: {e}")
                return None
            self.samples.append(s)
            if self._fh is not None:
                self._fh.write(json.dumps(s) + "\n")
                self._fh.flush()
            return s

    # -- summary -------------------------------------------------------------------------
    def summary(self, output_tokens: int = 0) -> TelemetrySummary:
        """{"memory": ..., "energy": ... | None, "telemetry": ...} for result.json."""
        return summarize(self.samples, output_tokens, on_gpu=self.on_gpu,
                         meta={"enabled": True, "interval_s": self.interval_s, "file": self.path.name,
                               "cores": self._cores,
                               "nvml": bool(self._handles) or any(s.get("gpus") for s in self.samples),
                               "notes": list(self.notes)})


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


def start_for_job(cfg: BenchConfig, server: Any, job_dir: Path) -> Optional[Sampler]:
    """Start the sampler on a healthy server (idle sample first). None when disabled or broken."""
    if not cfg.telemetry.enabled:
        return None
    try:
        return Sampler(server.pid, job_dir / "telemetry.jsonl", cfg.telemetry.interval_s,
                       use_nvml=cfg.telemetry.nvml, on_gpu=int(cfg.model.n_gpu_layers) != 0).start()
    except Exception:  # noqa: BLE001 -- telemetry never fails the job
        return None


def for_job(output_tokens: int, sampler: Optional[Sampler], estimate: Any,
            enabled: bool = True) -> tuple[dict[str, Any], Optional[dict[str, Any]], dict[str, Any]]:
    """What job.py stores of a stopped sampler (job.py stops it when the load ends): server.memory
    (with the fit estimate beside the reading), energy and telemetry. Never raises."""
    mem: dict[str, Any] = {"kind": None, "peak_mib": None, "idle_mib": None}
    try:
        if sampler is None:
            s = disabled_summary("telemetry.enabled=false" if not enabled else "sampler not started")
        else:
            s = sampler.summary(output_tokens)
        if s["memory"]:
            mem = {**s["memory"]}  # result.json's parts are plain dicts (results.Result)
        if estimate is not None:
            mem["estimate_mib"] = estimate.total_mib
            mem["estimate"] = estimate.as_dict()
        mem.setdefault("estimate_mib", None)
        return mem, ({**s["energy"]} if s["energy"] else None), {**s["telemetry"]}
    except Exception as e:  # noqa: BLE001
        return mem, None, {"enabled": enabled, "samples": 0, "notes": [f"telemetry failed: {e}"]}
