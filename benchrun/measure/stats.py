"""Statistics across repeats (95% t-intervals) and goodput against SLOs. Pure functions."""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, Optional, TypedDict

from benchrun.load.records import RequestRecord
from benchrun.measure import metrics as M
from benchrun.measure.catalogue import CI_STATS, Flag, per_request, with_flag


def t975(df: int) -> float:
    """The two-sided 95% Student-t critical value t(0.975, df): scipy's, as analysis/noise.py
    uses (one definition of the quantile)."""
    if df < 1:
        raise ValueError("a t-interval needs at least 2 samples")
    from scipy import stats  # scipy.stats costs ~0.2 s to import; only intervals need it

    return float(stats.t.ppf(0.975, df))


class CI(TypedDict):
    """A mean and its 95% t-interval over n values (low = high = None below 2 values)."""
    mean: Optional[float]
    low: Optional[float]
    high: Optional[float]
    n: int


class Goodput(TypedDict):
    """result.json `goodput`: the SLOs, how many requests met all of them, and why the rest did not."""
    slo: dict[str, float]
    requests: int
    requests_good: int
    share: Optional[float]
    rate_rps: Optional[float]
    missed: dict[str, int]  # "failed", then each SLO name: requests kept out by it


# One request's values of the SLO'd metrics, plus its "_ok" and "_one_token" flags.
RequestValues = dict[str, Optional[float]]


def ci95(values: Iterable[Optional[float]]) -> CI:
    """Mean and 95% t-interval of the defined values: {mean, low, high, n}.
    n < 2 gives low = high = None (one repeat says nothing about spread)."""
    v = [float(x) for x in values if x is not None and math.isfinite(x)]
    n = len(v)
    if n == 0:
        return {"mean": None, "low": None, "high": None, "n": 0}
    mean = sum(v) / n
    if n < 2:
        return {"mean": mean, "low": None, "high": None, "n": n}
    sd = math.sqrt(sum((x - mean) ** 2 for x in v) / (n - 1))
    half = t975(n - 1) * sd / math.sqrt(n)
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": n}


CI_SCALARS = tuple(d.key for d in with_flag(Flag.CI))  # run values with a CI (the catalogue's)


def repeats_ci95(repeat_metrics: list[dict[str, Any]]) -> dict[str, CI]:
    """{"<metric>.<stat>": ci, "<scalar>": ci} across repeats, from one compute_metrics
    dict per repeat. Summaries (dicts with "n") give one entry per stat in CI_STATS."""
    if not repeat_metrics:
        return {}
    out: dict[str, CI] = {}
    for name, first in repeat_metrics[0].items():
        if isinstance(first, dict) and "n" in first:
            for stat in CI_STATS:
                out[f"{name}.{stat}"] = ci95((rm.get(name) or {}).get(stat) for rm in repeat_metrics)
    for name in CI_SCALARS:
        if name in repeat_metrics[0]:
            out[name] = ci95(rm.get(name) for rm in repeat_metrics)
    return out


def meets_slo(values: Mapping[str, Optional[float]], slo: Mapping[str, float]) -> bool:
    """True when every set SLO holds. A metric the request does not have (None) fails it,
    except tpot_ms on a one-token reply, which has no time per output token to miss."""
    for name, limit in slo.items():
        v = values.get(name)
        if v is None:
            if name == "tpot_ms" and values.get("_one_token"):
                continue
            return False
        if v > limit:
            return False
    return True


def goodput(per_request: list[RequestValues], slo: Mapping[str, Optional[float]],
            wall_s: float) -> Optional[Goodput]:
    """Share and rate of the measured requests meeting all SLOs (failed and truncated
    requests count as missing them). None when no SLO is set."""
    limits = {k: float(v) for k, v in slo.items() if v is not None}
    if not limits:
        return None
    good = sum(1 for v in per_request if v.get("_ok") and meets_slo(v, limits))
    n = len(per_request)
    # What kept the others out: a failed or cut request, else each SLO it missed (a capacity
    # search names its limit from these).
    missed = {"failed": sum(1 for v in per_request if not v.get("_ok"))}
    for name, limit in limits.items():
        missed[name] = sum(1 for v in per_request if v.get("_ok") and not meets_slo(v, {name: limit}))
    return {"slo": limits, "requests": n, "requests_good": good,
            "share": good / n if n else None,
            "rate_rps": good / wall_s if wall_s > 0 else None, "missed": missed}


def goodput_of(records: list[RequestRecord], slo: Mapping[str, Optional[float]],
               wall_ns: int) -> Optional[Goodput]:
    """Share and rate of requests that succeeded, were complete and met every SLO
    (`slo` maps a per-request latency of SloConfig, e.g. ttft_ms, to its upper limit). In open
    loop ttft, ttfa and e2e count from the scheduled send time: waiting for a max_concurrency slot
    is latency the user saw, and must not be hidden (coordinated omission)."""
    fns = per_request()
    per_request_values: list[RequestValues] = []
    for r in records:
        f = {**fns, **M.FROM_SCHEDULE} if r.scheduled_ns is not None else fns
        v: RequestValues = {name: f[name](r) for name, lim in slo.items() if lim is not None}
        v["_ok"] = M.is_good(r)
        v["_one_token"] = M.output_tokens(r) == 1
        per_request_values.append(v)
    return goodput(per_request_values, slo, wall_ns / 1e9)
