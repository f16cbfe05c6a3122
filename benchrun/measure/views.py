"""The catalogue as its readers see it: what the report, `benchrun diff`, calibration and the CLI
status line show. A `Metric` is one shown number -- a run value, or one stat of a summarised
metric ("ttft_ms.p50") -- with its label, unit, better direction and format; HEADLINE lists them
in catalogue order, BY_KEY finds one, STATUS_LINE is the CLI's one line per job. `value` reads
one number for a key from a result.json dict, so a key means the same number everywhere. Every
entry here is derived from catalogue.CATALOGUE: nothing is listed twice."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Optional

from benchrun.measure.catalogue import BY_NAME, CATALOGUE, Flag, Kind, MetricDef, Shown, with_flag


@dataclass(frozen=True)
class Metric:
    """One number a report or diff shows: a run value, or one stat of a summarised metric."""
    key: str  # "ttft_ms.p50", "output_throughput_tok_s", "memory.peak_mib"
    label: str
    unit: str
    better: str  # "lower" | "higher"
    fmt: str = "{:.1f}"

    @property
    def name(self) -> str:
        return self.key.split(".", 1)[0]

    @property
    def stat(self) -> Optional[str]:
        return self.key.split(".", 1)[1] if "." in self.key else None

    def show(self, v: Optional[float], unit: bool = True) -> str:
        if v is None:
            return "—"
        s = self.fmt.format(v)
        return f"{s} {self.unit}" if unit and self.unit else s


def _view(d: MetricDef, s: Shown) -> Metric:
    key = f"{d.key}.{s.stat}" if s.stat else d.key
    return Metric(key, s.label or (f"{d.label} {s.stat}" if s.stat else d.label), d.unit, d.better or "", d.fmt)


# Headline metrics, in table order (report lookups, diff rows, calibration).
HEADLINE: tuple[Metric, ...] = tuple(_view(d, s) for d in CATALOGUE for s in d.headline)
BY_KEY: dict[str, Metric] = {m.key: m for m in HEADLINE}
# (template, Metric) of the CLI's one line per job, in catalogue order.
STATUS_LINE: tuple[tuple[str, Metric], ...] = tuple((s.status, _view(d, s)) for d in CATALOGUE
                                                    for s in d.headline if s.status)
# Per-request metrics whose stats diff/--fail-on/calibration accept; their samples bootstrap.
PER_REQUEST_NAMES: frozenset[str] = frozenset(d.key for d in with_flag(Flag.DIFF))
RECIPROCAL: dict[str, tuple[str, float]] = {d.key: d.reciprocal_of for d in CATALOGUE if d.reciprocal_of}


def summary_stat(summary_of: Callable[[str], Any], name: str, stat: str) -> Optional[float]:
    """stat of summarised metric `name` from a metrics-dict getter; hmean via reciprocal_of."""
    if stat == "hmean" and name in RECIPROCAL:
        other, k = RECIPROCAL[name]
        t = (summary_of(other) or {}).get("mean")
        return k / t if isinstance(t, (int, float)) and t > 0 else None
    v = (summary_of(name) or {}).get(stat)
    return float(v) if isinstance(v, (int, float)) else None


def value(res: dict[str, Any], key: str) -> Optional[float]:
    """One number for `key` ("ttft_ms.p50", "wall_s", "memory.peak_mib") from a result.json
    dict; None when absent."""
    d = BY_NAME.get(key)
    if d is not None and d.kind is Kind.RESULT:
        v = d.fn(res)
        return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None
    if d is not None and d.read is not None:
        read: Optional[float] = d.read(res)
        return read
    m: dict[str, Any] = res.get("metrics") or {}
    name, _, stat = key.partition(".")
    if stat:
        return summary_stat(m.get, name, stat)
    v = m.get(key)
    return v if isinstance(v, (int, float)) else None
