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
the summary: the sampler degrades, it never fails the job. What the samples add up to (server
memory, energy, the CPU split) is footprint.py's, which also types the line (Sample).
"""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Literal, Optional, TypeVar

from benchrun.config import BenchConfig
from benchrun.measure.footprint import GpuSample, Sample, TelemetrySummary, disabled_summary, summarize
from benchrun.measure.hardware import MIB, open_nvml

T = TypeVar("T")


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
