"""Is a difference between two jobs beyond noise? Shared by the report's Winner column and
`benchrun diff`. Pure functions over loaded jobs; the bootstrap is seeded, so reruns agree.

Noise, best source first:
  repeats    per-repeat values (repeat_metrics, n >= 2 each): Welch t-interval of the difference
  ci95       stored repeats_ci95 intervals that do not overlap
  bootstrap  per-request samples from requests.jsonl, resampled by request (seeded); this sees
             request-to-request spread only, not run-to-run drift, so repeats are better
  none       a scalar measured once: no spread estimate, the change is reported as is
"""
from __future__ import annotations

import math
import zlib
from dataclasses import asdict, dataclass
from typing import Optional, Sequence

import numpy as np

from ..stats import t975
from .data import PER_REQUEST_NAMES, Job, Metric, ci_of, repeat_values

N_BOOT = 1000
MIN_SAMPLES = 5  # fewer per-request samples than this: no bootstrap


def welch_diff_ci(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """95% CI of mean(b) - mean(a), unequal variances (Welch-Satterthwaite df)."""
    na, nb = len(a), len(b)
    ma, mb = float(np.mean(a)), float(np.mean(b))
    va, vb = float(np.var(a, ddof=1)), float(np.var(b, ddof=1))
    se2 = va / na + vb / nb
    d = mb - ma
    if se2 == 0:
        return d, d
    df = se2 ** 2 / ((va / na) ** 2 / (na - 1) + (vb / nb) ** 2 / (nb - 1))
    half = t975(max(1, math.floor(df))) * math.sqrt(se2)  # df rounded down: conservative
    return d - half, d + half


def _stat(x: np.ndarray, stat: str, axis: int = -1) -> np.ndarray:
    if stat == "mean":
        return x.mean(axis=axis)
    if stat.startswith("p"):
        return np.percentile(x, float(stat[1:]), axis=axis)
    raise ValueError(stat)


def _rng(seed: int, *parts: np.ndarray) -> np.random.Generator:
    """A generator per sample, seeded by its content: swapping baseline and candidate then
    resamples each side exactly as before, so the interval only changes sign."""
    h = 0
    for p in parts:
        h = zlib.crc32(np.ascontiguousarray(p, dtype=float).tobytes(), h)
    return np.random.default_rng([seed, h])


def bootstrap_diff_ci(a: list, b: list, stat: str, seed: int = 0, n_boot: int = N_BOOT,
                      clustered: bool = False) -> tuple[float, float]:
    """95% percentile-bootstrap CI of stat(b) - stat(a). `clustered`: a and b are lists of
    per-request lists (ITL gaps); requests are resampled whole."""
    if not clustered:
        A, B = np.asarray(a, float), np.asarray(b, float)
        ia = _rng(seed, A).integers(0, len(A), (n_boot, len(A)))
        ib = _rng(seed, B).integers(0, len(B), (n_boot, len(B)))
        d = _stat(B[ib], stat) - _stat(A[ia], stat)
    else:
        # One resample count for both sides (they are subtracted), bounded by the larger one's
        # (n_boot x values) weight matrix.
        n_vals = max(sum(len(g) for g in a), sum(len(g) for g in b), 1)
        n_boot = max(100, min(n_boot, int(2e7 // n_vals)))
        d = _cluster_stat(b, stat, seed, n_boot) - _cluster_stat(a, stat, seed, n_boot)
    lo, hi = np.percentile(d, [2.5, 97.5])
    return float(lo), float(hi)


def _cluster_stat(groups: list, stat: str, seed: int, n_boot: int) -> np.ndarray:
    """stat over the pooled values of `n_boot` resamples of whole groups (requests), at once:
    a resample is a count per group, i.e. a weight on each pooled value (sorted once)."""
    sizes = np.array([len(g) for g in groups])
    vals = np.concatenate([np.asarray(g, float) for g in groups]) if sizes.sum() else np.zeros(0)
    if vals.size == 0:
        return np.zeros(n_boot)
    rng = _rng(seed, vals, sizes)
    owner = np.repeat(np.arange(len(groups)), sizes)
    order = np.argsort(vals, kind="stable")
    vals, owner = vals[order], owner[order]
    counts = rng.multinomial(len(groups), np.full(len(groups), 1 / len(groups)), size=n_boot)
    w = counts[:, owner].astype(float)
    total = w.sum(axis=1)
    total[total == 0] = 1.0  # a resample of only empty groups: stat 0, like an empty sample
    if stat == "mean":
        return (w @ vals) / total
    cum = np.cumsum(w, axis=1)
    target = float(stat[1:]) / 100 * total
    idx = (cum < target[:, None]).sum(axis=1).clip(0, vals.size - 1)  # inverted-CDF quantile
    return vals[idx]


@dataclass
class Delta:
    key: str
    label: str
    unit: str
    better: str  # which way is better for this metric
    base: Optional[float]
    cand: Optional[float]
    abs: Optional[float]  # cand - base
    rel: Optional[float]  # (cand - base) / |base|
    diff_low: Optional[float]  # 95% CI of cand - base
    diff_high: Optional[float]
    method: str  # repeats | ci95 | bootstrap | none
    beyond_noise: Optional[bool]  # None: no noise estimate
    change: str  # better | worse | same

    @property
    def regression(self) -> bool:
        return self.change == "worse" and self.beyond_noise is not False

    def to_dict(self) -> dict:
        return asdict(self)


def _n_samples(samples: list, clustered: bool) -> int:
    return sum(1 for x in samples if len(x)) if clustered else len(samples)


def compare(base: Job, cand: Job, m: Metric, seed: int = 0) -> Delta:
    """cand against base on metric m, with the best noise estimate the files allow."""
    a, b = base.value(m.key), cand.value(m.key)
    absd = rel = lo = hi = None
    method, beyond = "none", None
    if a is not None and b is not None:
        absd = b - a
        rel = absd / abs(a) if a else (0.0 if b == a else math.inf)
        ra, rb = repeat_values(base.result, m.key), repeat_values(cand.result, m.key)
        ca, cb = ci_of(base.result, m.key), ci_of(cand.result, m.key)
        if len(ra) >= 2 and len(rb) >= 2:
            method = "repeats"
            lo, hi = welch_diff_ci(ra, rb)
            beyond = not (lo <= 0 <= hi)
        elif ca and cb:
            method = "ci95"
            beyond = ca[1] < cb[0] or cb[1] < ca[0]
        elif m.name in PER_REQUEST_NAMES and m.stat in ("mean", "p50", "p90", "p99"):
            clustered = m.name == "itl_ms"
            sa, sb = base.samples(m.name), cand.samples(m.name)
            if _n_samples(sa, clustered) >= MIN_SAMPLES and _n_samples(sb, clustered) >= MIN_SAMPLES:
                method = "bootstrap"
                lo, hi = bootstrap_diff_ci(sa, sb, m.stat, seed=seed, clustered=clustered)
                beyond = not (lo <= 0 <= hi)
    if absd is None or absd == 0:
        change = "same"
    else:
        change = "better" if (absd > 0) == (m.better == "higher") else "worse"
    return Delta(m.key, m.label, m.unit, m.better, a, b, absd, rel, lo, hi, method, beyond, change)


def ratio_text(x: float, y: float) -> str:
    """'1.7x' for the larger over the smaller of two positive numbers."""
    lo, hi = sorted((abs(x), abs(y)))
    return f"{hi / lo:.1f}x" if lo > 0 else "∞x"
