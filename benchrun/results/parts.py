"""result.json's parts as typed, read-only views: the one tolerant reader that report and analysis
use instead of `(res.get(...) or {}).get(...)` chains.

Tolerant because result files outlive the code that wrote them: a part an older schema lacks (no
telemetry before schema 1's telemetry, no job.settings, no order) or a job that failed before
measuring (server {}, metrics {}) reads as its empty value -- None for a number, [] or {} for a
collection -- never as a KeyError. Nothing here judges or words anything: it only reads."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional


def _obj(x: Any) -> dict[str, Any]:
    """A JSON object, or {} for anything else (absent, null, a wrong type in an old file)."""
    return x if isinstance(x, dict) else {}


def _num(x: Any) -> Optional[float]:
    """A number as the file holds it (an int stays an int: summary.csv writes it as it was)."""
    return x if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def stat(summary: Any, name: str) -> Optional[float]:
    """One statistic (p50, mean, ...) of a summary dict such as metrics.ttft_ms, else None."""
    return _num(_obj(summary).get(name))


@dataclass(frozen=True)
class Memory:
    """server.memory: what the sampler read (VRAM or RSS) beside the fit estimate."""

    kind: Optional[str] = None  # "vram" | "rss" | None (nothing read)
    peak_mib: Optional[float] = None
    idle_mib: Optional[float] = None
    estimate_mib: Optional[float] = None


@dataclass(frozen=True)
class Cpu:
    """telemetry.cpu: % of one core while measured (other_pct: what other processes took)."""

    other_pct: Optional[float] = None
    host_pct: Optional[float] = None
    client_pct: Optional[float] = None
    server_pct: Optional[float] = None


@dataclass(frozen=True)
class Order:
    """How the sweep ordered its jobs (order.py); merged_rounds/dirs once rounds are merged."""

    mode: Optional[str] = None
    seed: Optional[int] = None
    round: Optional[int] = None
    rounds: int = 1
    merged_rounds: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class JobMeta:
    """result.json `job`: when it ran and what its command line set."""

    started_at: str = ""
    overrides: list[str] = field(default_factory=list)
    settings: Optional[dict[str, Any]] = None  # None: written before job.settings existed


@dataclass(frozen=True)
class ModelInfo:
    name: str = "?"
    path: str = ""
    random_weights: bool = False


@dataclass(frozen=True)
class Parts:
    """The typed parts of one result.json (read_parts)."""

    model: ModelInfo
    job: JobMeta
    order: Order
    memory: Memory
    cpu: Cpu
    hardware_name: Optional[str]
    metrics: dict[str, Any]  # the catalogue's metrics (views.value reads them by key)
    server_timings: dict[str, Any]  # llama.cpp's own timings, per name a summary
    server_metric_peaks: dict[str, Any]  # /metrics gauge peaks
    repeats_ci95: dict[str, Any]
    workload: dict[str, Any]
    telemetry: dict[str, Any]
    goodput: dict[str, Any]  # requests meeting the SLO: requests, requests_good, missed

    def metric(self, name: str, which: str) -> Optional[float]:
        """metrics.<name>.<which> (a per-request summary's statistic), else None."""
        return stat(self.metrics.get(name), which)

    def server_timing(self, name: str, which: str = "mean") -> Optional[float]:
        """server_timings.<name>.<which> (e.g. predicted_per_second mean), else None."""
        return stat(self.server_timings.get(name), which)

    def ci(self, key: str) -> dict[str, Any]:
        """repeats_ci95[key]: {mean, low, high, n}, or {} when the run has none."""
        return _obj(self.repeats_ci95.get(key))


def read_parts(res: dict[str, Any]) -> Parts:
    """The typed parts of a result.json dict (as results.load_result returns it)."""
    server, tele, job, order, model = (_obj(res.get(k)) for k in ("server", "telemetry", "job", "order", "model"))
    mem, cpu = _obj(server.get("memory")), _obj(tele.get("cpu"))
    return Parts(
        model=ModelInfo(str(model.get("name") or "?"), str(model.get("path") or ""),
                        model.get("random_weights") is True),
        job=JobMeta(str(job.get("started_at") or ""), [str(o) for o in job.get("overrides") or []],
                    _obj(job["settings"]) if "settings" in job else None),
        order=Order(order.get("mode"), order.get("seed"), order.get("round"), int(order.get("rounds") or 1),
                    list(order.get("merged_rounds") or [])),
        memory=Memory(mem.get("kind"), _num(mem.get("peak_mib")), _num(mem.get("idle_mib")),
                      _num(mem.get("estimate_mib"))),
        cpu=Cpu(*(_num(cpu.get(k)) for k in ("other_pct", "host_pct", "client_pct", "server_pct"))),
        hardware_name=_obj(res.get("hardware")).get("name"),
        metrics=_obj(res.get("metrics")),
        server_timings=_obj(res.get("server_timings")),
        server_metric_peaks=_obj(_obj(res.get("server_metrics")).get("peaks")),
        repeats_ci95=_obj(res.get("repeats_ci95")),
        workload=_obj(res.get("workload")),
        telemetry=tele,
        goodput=_obj(res.get("goodput")),
    )
