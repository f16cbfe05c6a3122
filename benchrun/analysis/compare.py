"""Is a difference between two jobs beyond noise? Shared by the report's Winner column, Key
Findings, Recommendation, and `benchrun diff` / `--fail-on`. Pure functions over loaded jobs; the
bootstrap is seeded, so reruns agree. The tests themselves are in benchrun/analysis/noise.py.

`compare` picks the method from what the files hold, best first (Delta.method says which):
  repeats      >= 2 repeats each side (repeat_metrics, else stored repeats_ci95): Welch t on
               repeat-level values (their logs when positive: timings move by factors) -- the
               repeat is the unit, never the request
  repeats-1    repeats on one side, one run on the other: t prediction test
  calibrated   one run each, a calibration for this machine and workload (`benchrun calibrate`):
               log ratio against the measured run-to-run spread (t, calibration df)
  floor        one run each, no calibration: log ratio against an assumed spread
               (noise.DEFAULT_RUN_SD); below its floor the answer is "cannot tell" (None)
  disturbed    one run each, and other processes took >= half a core during either run
               (telemetry): cannot tell -- such runs move far more than any floor
  none         no positive values to compare (a zero, a missing figure): cannot tell
For one run each, a per-request metric must also pass the seeded request bootstrap (`+boot`):
a change inside one run's own request-to-request spread is within noise whatever the floor.
Every tested Delta carries a two-sided p-value; beyond noise = p < noise.ALPHA (5%).
"""
from __future__ import annotations

import math
import zlib
from dataclasses import asdict, dataclass
from typing import Any, Optional

import numpy as np

from benchrun.analysis import noise
from benchrun.analysis.jobs import Job, ci_of, repeat_values
from benchrun.analysis.noise import BUSY_KEY
from benchrun.measure.catalogue import BY_NAME, Kind
from benchrun.measure.footprint import BUSY_PCT
from benchrun.measure.stats import t975
from benchrun.measure.views import PER_REQUEST_NAMES, Metric

N_BOOT = 1000
MIN_SAMPLES = 5  # fewer per-request samples than this: no bootstrap


def _stat(x: np.ndarray, stat: str, axis: int = -1) -> np.ndarray:
    if stat == "hmean":  # of a rate: 1 / mean(1 / rate) -- one near-zero interval cannot swing it
        return np.asarray(1.0 / (1.0 / x).mean(axis=axis))
    if stat == "mean":
        return np.asarray(x.mean(axis=axis))
    if stat.startswith("p"):
        return np.asarray(np.percentile(x, float(stat[1:]), axis=axis))
    raise ValueError(stat)


def _rng(seed: int, *parts: np.ndarray) -> np.random.Generator:
    """A generator per sample, seeded by its content: swapping baseline and candidate then
    resamples each side exactly as before, so the interval only changes sign."""
    h = 0
    for p in parts:
        h = zlib.crc32(np.ascontiguousarray(p, dtype=float).tobytes(), h)
    return np.random.default_rng([seed, h])


def bootstrap_diff_ci(a: list[Any], b: list[Any], stat: str, seed: int = 0, n_boot: int = N_BOOT,
                      clustered: bool = False) -> tuple[float, float]:
    """95% percentile-bootstrap CI of stat(b) - stat(a). `clustered`: a and b are lists of
    per-request lists (ITL gaps); requests are resampled whole."""
    d = bootstrap_diffs(a, b, stat, seed, n_boot, clustered)
    lo, hi = np.percentile(d, [2.5, 97.5])
    return float(lo), float(hi)


def bootstrap_diffs(a: list[Any], b: list[Any], stat: str, seed: int = 0, n_boot: int = N_BOOT,
                    clustered: bool = False) -> np.ndarray:
    """The bootstrap replicates of stat(b) - stat(a) (see bootstrap_diff_ci)."""
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
    return np.asarray(d)


def _cluster_stat(groups: list[Any], stat: str, seed: int, n_boot: int) -> np.ndarray:
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
        return np.asarray((w @ vals) / total)
    cum = np.cumsum(w, axis=1)
    target = float(stat[1:]) / 100 * total
    idx = (cum < target[:, None]).sum(axis=1).clip(0, vals.size - 1)  # inverted-CDF quantile
    return np.asarray(vals[idx])


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
    diff_low: Optional[float]  # 95% interval of the true cand - base (None: not tested)
    diff_high: Optional[float]
    method: str  # repeats | repeats-1 | calibrated | floor (each +boot when the bootstrap joined) | none
    beyond_noise: Optional[bool]  # True beyond, False within noise, None: cannot tell
    change: str  # better | worse | same
    p: Optional[float] = None  # two-sided p-value of "no difference"; None: not tested
    floor: Optional[float] = None  # one run each: the relative change the method needs (fraction)
    can_be_within: bool = False  # a p >= alpha means "within noise" (measured), not "cannot tell"
    family: bool = False  # beyond_noise was decided within a Holm family (the report's Summary)

    @property
    def regression(self) -> bool:
        """Worse, and beyond noise: what --fail-on may fire on."""
        return self.change == "worse" and self.beyond_noise is True

    def decided_at(self, significant: bool) -> Optional[bool]:
        """beyond_noise for a given significance call (the report calls it over a family)."""
        if significant:
            return True
        return False if self.can_be_within else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _n_samples(samples: list[Any], clustered: bool) -> int:
    return sum(1 for x in samples if len(x)) if clustered else len(samples)


def _stored_welch(base: Job, cand: Job, key: str) -> Optional[noise.Test]:
    """Welch's test from stored repeats_ci95 (mean, 95% t half-width, n) when the per-repeat
    values are gone: the half-width gives back the repeats' SD."""
    ca, cb = base.facts.ci(key), cand.facts.ci(key)
    if not (ca and cb and ci_of(base.result, key) and ci_of(cand.result, key)):
        return None

    def mv(c: dict[str, Any]) -> tuple[float, float, int]:
        n = int(c["n"])
        sd = (c["high"] - c["low"]) / 2 / t975(n - 1) * math.sqrt(n)
        return float(c["mean"]), sd * sd, n

    (ma, va, na), (mb, vb, nb) = mv(ca), mv(cb)
    return noise.welch(ma, va, na, mb, vb, nb)


def compare(base: Job, cand: Job, m: Metric, seed: int = 0,
            calibration: Optional[dict[str, Any]] = None) -> Delta:
    """cand against base on metric m, with the best noise estimate the files allow.
    calibration: {metric key: (run_sd, df)} measured on the machine and workload of these
    runs (benchrun/analysis/calibration.py); None = none."""
    a, b = base.value(m.key), cand.value(m.key)
    absd = rel = lo = hi = p = floor = None
    method, beyond, within_ok = "none", None, False
    if a is not None and b is not None:
        absd = b - a
        rel = absd / abs(a) if a else (0.0 if b == a else math.inf)
        ra, rb = repeat_values(base.result, m.key), repeat_values(cand.result, m.key)
        test = None
        if len(ra) >= 2 and len(rb) >= 2:
            positive = min(ra) > 0 and min(rb) > 0
            method, test = "repeats", noise.welch_log(ra, rb) if positive else noise.welch_samples(ra, rb)
        elif (t := _stored_welch(base, cand, m.key)) is not None:
            method, test = "repeats", t
        elif len(ra) >= 2 or len(rb) >= 2:
            method = "repeats-1"
            test = noise.one_vs_repeats(ra, b, True) if len(ra) >= 2 else noise.one_vs_repeats(rb, a, False)
        if test is not None:
            within_ok = True
        elif m.key not in NOT_TIMINGS and (disturbed(base, calibration) or disturbed(cand, calibration)):
            method = "disturbed"  # a busy machine moves single runs by far more than any floor
        elif a > 0 and b > 0:
            cal = (calibration or {}).get(m.key) if m.key in (calibration or {}) else None
            if cal:
                method, (sd, df), within_ok = "calibrated", cal, True
            else:
                method, sd, df = "floor", noise.default_run_sd(m.key), math.inf
            test = noise.log_ratio_test(a, b, sd, df)
            floor = noise.floor_pct(sd, df)
            p_boot = _bootstrap_p(base, cand, m, seed)
            if p_boot is not None:
                method += "+boot"
                if p_boot >= noise.ALPHA:
                    within_ok = True  # inside one run's own request spread: within noise
                test = noise.Test(test.diff, test.low, test.high, max(test.p, p_boot))
        if test is not None:
            lo, hi, p = test.low, test.high, test.p
            beyond = True if p < noise.ALPHA else (False if within_ok else None)
    if absd is None or absd == 0:
        change = "same"
    else:
        change = "better" if (absd > 0) == (m.better == "higher") else "worse"
    return Delta(m.key, m.label, m.unit, m.better, a, b, absd, rel, lo, hi, method, beyond, change,
                 p, floor, within_ok)


NOT_TIMINGS = ("memory.peak_mib", "tasks.pass_rate")  # a busy CPU does not move these


def disturbed(job: Job, calibration: Optional[dict[str, Any]] = None) -> bool:
    """Other processes took half a core or more while this job was measured (telemetry.cpu),
    more than during any run of the calibration (if one applies): on the shared 2-core VM
    identical jobs then differed by up to 3x, so one such run cannot be judged against a
    run-to-run floor measured or assumed for a quieter machine."""
    limit = max(BUSY_PCT, float((calibration or {}).get(BUSY_KEY) or 0))
    return (job.facts.cpu.other_pct or 0) >= limit


def _bootstrap_p(base: Job, cand: Job, m: Metric, seed: int) -> Optional[float]:
    """p-value of the seeded request bootstrap for a per-request metric; None without samples."""
    if m.name not in PER_REQUEST_NAMES or m.stat not in ("mean", "p50", "p90", "p99", "hmean"):
        return None
    clustered = BY_NAME[m.name].kind is Kind.TOKENS  # a list of gaps per request: resample requests
    sa, sb = base.samples(m.name), cand.samples(m.name)
    if _n_samples(sa, clustered) < MIN_SAMPLES or _n_samples(sb, clustered) < MIN_SAMPLES:
        return None
    if m.stat == "hmean" and (min(sa) <= 0 or min(sb) <= 0):
        return None
    return noise.bootstrap_p(bootstrap_diffs(sa, sb, m.stat, seed=seed, clustered=clustered))


def ratio_text(x: float, y: float) -> str:
    """'1.7x' for the larger over the smaller of two positive numbers."""
    lo, hi = sorted((abs(x), abs(y)))
    return f"{hi / lo:.1f}x" if lo > 0 else "∞x"


def method_text(x: Delta) -> str:
    """The method that decided a Delta, in a few words (diff's noise column, the findings)."""
    base = x.method.split("+")[0]
    boot = " + request bootstrap" if x.method.endswith("+boot") else ""
    p = "" if x.p is None else f", p={x.p:.3f}" if x.p >= 0.001 else ", p<0.001"
    if base == "repeats":
        return f"repeats (Welch){p}"
    if base == "repeats-1":
        return f"repeats vs 1 run (t){p}"
    if base == "calibrated":
        return f"calibrated floor ±{(x.floor or 0) * 100:.0f}%{boot}{p}"
    if base == "floor":
        return f"assumed floor ±{(x.floor or 0) * 100:.0f}%{boot}{p}"
    if base == "disturbed":
        return "busy machine: one run cannot tell"
    return "none"


# Settings that make two jobs incomparable when they differ.
_HW_KEYS = ("name", "gpu", "gpu_memory_mib", "cpu", "memory_mib")


def comparability(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Why two results may not be comparable (each a one-line warning)."""
    w = []
    sa, sb = a["model"].get("sha256"), b["model"].get("sha256")
    if sa and sb and sa != sb:
        w.append(f"model file differs (sha256 {sa[:12]} vs {sb[:12]})")
    for key, what in (("build_info", "server build"), ("backend", "server backend")):
        va, vb = a["server"].get(key), b["server"].get(key)
        if va != vb and (va or vb):
            w.append(f"{what} differs ({va} vs {vb})")
    ha, hb = a.get("hardware") or {}, b.get("hardware") or {}
    hw = [k for k in _HW_KEYS if ha.get(k) != hb.get(k) and (ha.get(k) or hb.get(k))]
    if hw:
        w.append("hardware differs (" + ", ".join(f"{k}: {ha.get(k)} vs {hb.get(k)}" for k in hw) + ")")
    wa, wb = a.get("workload") or {}, b.get("workload") or {}
    wk = sorted(k for k in set(wa) | set(wb) if wa.get(k) != wb.get(k))
    if wk:
        w.append("workload settings differ (" + ", ".join(f"{k}: {wa.get(k)} vs {wb.get(k)}" for k in wk) + ")")
    for k in ("ctx_size", "parallel", "quantization", "n_gpu_layers"):
        if a["model"].get(k) != b["model"].get(k):
            w.append(f"model.{k} differs ({a['model'].get(k)} vs {b['model'].get(k)})")
    la, lb = a.get("load") or {}, b.get("load") or {}
    lk = sorted(k for k in set(la) | set(lb) if k != "request_timeout_s" and la.get(k) != lb.get(k))
    if lk:
        w.append("load settings differ (" + ", ".join(f"{k}: {la.get(k)} vs {lb.get(k)}" for k in lk) + ")")
    if (a.get("repeats") or 1) != (b.get("repeats") or 1):
        w.append(f"repeats differ ({a.get('repeats') or 1} vs {b.get('repeats') or 1})")
    return w
