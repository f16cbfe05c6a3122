"""Is a difference beyond noise? The tests behind every verdict (diff, the report's Winner column,
Key Findings, Recommendation, --fail-on). Pure functions of numbers; no files, no I/O.

Contract: each test returns a `Test` -- the difference, its 95% interval, and a two-sided
p-value under "no difference". A caller calls a change beyond noise when p < ALPHA, which
promises a false-positive rate of ALPHA (5%) per comparison when the test's assumptions hold;
`holm` turns a family of p-values into verdicts with a 5% chance of *any* false positive in the
family (the report uses it over its Summary rows, so two identical presets tie on every row
with probability >= 95%).

The unit of noise is a whole run, not a request: requests within one run share the server's
state, the machine's load and its CPU clocks, so their spread understates how much a rerun
moves (measured here: identical runs differ by 10-60% where a request bootstrap promised 2%).
  - repeats on both sides: Welch t on the per-repeat values (the repeat is the unit);
  - repeats on one side, one run on the other: a t prediction test (is the single run one more
    draw of the repeated side?);
  - one run each: the log ratio against a run-to-run spread measured by an A/A calibration
    (`benchrun calibrate`), t with the calibration's degrees of freedom; without one, against
    an assumed spread (DEFAULT_RUN_SD), which only ever says "beyond" or "cannot tell".
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

import numpy as np
from scipy import stats as st

BUSY_KEY = "_other_cpu_pct_max"  # in a calibration lookup(): how busy the calibration runs' machine was

ALPHA = 0.05  # nominal false-positive rate per comparison (two-sided)

# Assumed run-to-run spread of one run's headline value, as a log-scale SD (~relative SD), for
# single runs on a machine without a calibration: the top of the +-10-15% that identical runs
# differed by on this project's 2-core VM when it was quiet (issue 15). Under it the floor below
# which one run cannot separate a change is exp(1.96 * sqrt(2) * 0.15) - 1 = 52%: deliberately
# coarse -- calibrate or use repeats. A busy machine is not covered by it (identical quickstart
# sweeps with 1.3-1.6 cores of other work: CV 25-33% with one server thread, 58-98% with two);
# such runs are caught by compare.disturbed and cannot be told.
DEFAULT_RUN_SD = 0.15
# Figures that are not timings move much less between identical runs: peak memory is weights +
# KV cache + buffers, fixed by the preset (identical quickstart runs here: within 1-2%).
DEFAULT_RUN_SD_BY_METRIC = {"memory.peak_mib": 0.02}


def default_run_sd(key: str) -> float:
    """The assumed run-to-run spread of metric `key` (no calibration)."""
    return DEFAULT_RUN_SD_BY_METRIC.get(key, DEFAULT_RUN_SD)


@dataclass(frozen=True)
class Test:
    diff: float  # cand - base (absolute units)
    low: Optional[float]  # 95% interval of the true cand - base
    high: Optional[float]
    p: float  # two-sided p-value of "no difference"


def _t_half(df: float, se: float, alpha: float = ALPHA) -> float:
    return float(st.t.ppf(1 - alpha / 2, df)) * se if math.isfinite(df) else float(st.norm.ppf(1 - alpha / 2)) * se


def welch(ma: float, va: float, na: int, mb: float, vb: float, nb: int) -> Test:
    """Welch's unequal-variance t test of mean(b) - mean(a) from summary numbers (means,
    sample variances, counts >= 2). Both spreads zero: p = 0 for a gap, 1 for none."""
    if na < 2 or nb < 2:
        raise ValueError("Welch's test needs at least 2 values per side")
    d = mb - ma
    se2 = va / na + vb / nb
    if se2 <= 0:
        return Test(d, d, d, 1.0 if d == 0 else 0.0)
    df = se2 ** 2 / ((va / na) ** 2 / (na - 1) + (vb / nb) ** 2 / (nb - 1))
    se = math.sqrt(se2)
    half = _t_half(df, se)
    return Test(d, d - half, d + half, float(2 * st.t.sf(abs(d) / se, df)))


def welch_samples(a: Sequence[float], b: Sequence[float]) -> Test:
    """Welch's test on per-repeat values (>= 2 each)."""
    A, B = np.asarray(a, float), np.asarray(b, float)
    return welch(float(A.mean()), float(A.var(ddof=1)), len(A), float(B.mean()), float(B.var(ddof=1)), len(B))


def welch_log(a: Sequence[float], b: Sequence[float]) -> Test:
    """Welch's test on the logs of positive per-repeat values: timings move by factors between
    runs (a busy core slows everything by some %), so the ratio is tested; the interval is of
    cand - base, scaled from the geometric mean of the base side."""
    la, lb = np.log(np.asarray(a, float)), np.log(np.asarray(b, float))
    t = welch_samples(la, lb)
    assert t.low is not None and t.high is not None  # welch() always gives an interval
    g = math.exp(float(la.mean()))
    return Test(float(np.mean(b) - np.mean(a)), g * (math.exp(t.low) - 1), g * (math.exp(t.high) - 1), t.p)


def one_vs_repeats(reps: Sequence[float], single: float, reps_are_base: bool = True) -> Test:
    """One run against >= 2 repeats of the other side: is `single` one more draw from the
    repeats' distribution? t = (single - mean) / (sd * sqrt(1 + 1/n)), df = n - 1.
    The difference is cand - base; reps_are_base says which side the repeats are."""
    R = np.asarray(reps, float)
    n, m, sd = len(R), float(R.mean()), float(R.std(ddof=1)) if len(R) > 1 else 0.0
    if n < 2:
        raise ValueError("a prediction test needs at least 2 repeats")
    d = (single - m) if reps_are_base else (m - single)
    se = sd * math.sqrt(1 + 1 / n)
    if se == 0:
        return Test(d, d, d, 1.0 if d == 0 else 0.0)
    half = _t_half(n - 1, se)
    return Test(d, d - half, d + half, float(2 * st.t.sf(abs(d) / se, n - 1)))


def log_ratio_test(base: float, cand: float, run_sd: float, df: float = math.inf) -> Test:
    """One run each: log(cand / base) against N(0, 2 run_sd^2), run_sd being the log-scale SD of
    one run's value between identical runs (estimated with `df` degrees of freedom; inf =
    assumed). Values must be > 0. The interval is that of the true change, scaled to base."""
    if base <= 0 or cand <= 0:
        raise ValueError("a log-ratio test needs positive values")
    d = math.log(cand / base)
    se = math.sqrt(2) * run_sd
    if se <= 0:
        return Test(cand - base, cand - base, cand - base, 1.0 if d == 0 else 0.0)
    half = _t_half(df, se)
    p = 2 * (st.t.sf(abs(d) / se, df) if math.isfinite(df) else st.norm.sf(abs(d) / se))
    return Test(cand - base, base * (math.exp(d - half) - 1), base * (math.exp(d + half) - 1), float(p))


def floor_pct(run_sd: float, df: float = math.inf, alpha: float = ALPHA) -> float:
    """The smallest relative change (as a fraction, upwards) that log_ratio_test calls beyond
    noise: exp(t * sqrt(2) * run_sd) - 1."""
    return math.exp(_t_half(df, math.sqrt(2) * run_sd, alpha)) - 1


def pooled_log_sd(groups: Sequence[Sequence[Optional[float]]]) -> tuple[Optional[float], int]:
    """Run-to-run spread from A/A runs: each group holds one job's value in each identical run
    (all > 0). The pooled within-group SD of log values and its degrees of freedom
    (sum of n_i - 1). Groups with fewer than 2 values or a value <= 0 are skipped."""
    ss, df = 0.0, 0
    for g in groups:
        v = np.asarray([x for x in g if x is not None], float)
        if len(v) < 2 or (v <= 0).any():
            continue
        lv = np.log(v)
        ss += float(((lv - lv.mean()) ** 2).sum())
        df += len(v) - 1
    return (math.sqrt(ss / df), df) if df else (None, 0)


def bootstrap_p(diffs: np.ndarray) -> float:
    """Two-sided p-value from bootstrap replicates of a difference: twice the smaller tail
    beyond zero (a replicate exactly 0 counts half to each), at least 1/n."""
    d = np.asarray(diffs, float)
    n = len(d)
    below = (d < 0).sum() + 0.5 * (d == 0).sum()
    return float(min(1.0, max(2 * min(below, n - below) / n, 1 / n)))


def holm(pvalues: Sequence[Optional[float]], alpha: float = ALPHA) -> list[Optional[bool]]:
    """Holm's step-down procedure: which p-values are significant while keeping the chance
    of any false positive in the family at alpha. None (no test) stays None."""
    tested = sorted((p, i) for i, p in enumerate(pvalues) if p is not None)
    m = len(tested)
    out: list[Optional[bool]] = [None if p is None else False for p in pvalues]
    for rank, (p, i) in enumerate(tested):
        if p < alpha / (m - rank):
            out[i] = True
        else:
            break
    return out
