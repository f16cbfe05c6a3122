"""A metric's summary over requests: n, mean, p50, p90, p99, min, max and stdev of the defined
values (result.json $defs/summary). Every per-request and per-token metric of the catalogue is
stored as one, and so are llama.cpp's own timings (metrics.server_timings). Pure."""
from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Optional, TypedDict

import numpy as np


class Summary(TypedDict):
    """A metric's summary over requests (result.json $defs/summary); all None when n is 0."""
    n: int
    mean: Optional[float]
    p50: Optional[float]
    p90: Optional[float]
    p99: Optional[float]
    min: Optional[float]
    max: Optional[float]
    stdev: Optional[float]


def summarize(values: Iterable[Optional[float]]) -> Summary:
    """n, mean, p50, p90, p99, min, max, stdev over the defined values."""
    v = np.array([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    if v.size == 0:
        return {"n": 0, "mean": None, "p50": None, "p90": None, "p99": None,
                "min": None, "max": None, "stdev": None}
    p50, p90, p99 = np.percentile(v, [50, 90, 99])
    return {"n": int(v.size), "mean": float(v.mean()), "p50": float(p50), "p90": float(p90),
            "p99": float(p99), "min": float(v.min()), "max": float(v.max()),
            "stdev": float(v.std(ddof=1)) if v.size > 1 else 0.0}
