"""Capacity under an SLO: the highest load level (closed loop: concurrency; open loop: request
rate) at which a preset still serves `target` of its requests within every SLO set, decided
from probes -- ordinary jobs, read back from their result.json.

The search (decide): geometric growth from `start` until a probe fails the SLO or the server
saturates, then bisection between the highest passing and the lowest failing level. A probe
passes when the Wilson interval of its goodput share (requests meeting the SLO / requests)
lies at or above the target, fails when it lies below; in between the verdict is within noise
and the level is probed again, its requests pooled, up to `max_repeats` times -- never guessed:
still undecided, it counts as not meeting the SLO and the capacity's bounds say so.
Saturated: throughput rose less than `min_gain` from one passing level to the next while p90
latency rose more than that -- more load only queues (llama.cpp: requests beyond
`model.parallel` wait for a slot); the search stops and names it. A budget (probes, time) and
an upper bound end it too. Pure functions: the same probes give the same next step, so a
resumed search continues where it stopped."""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

from benchrun.config import SearchConfig
from benchrun.results.parts import read_parts


@dataclass
class Probe:
    """One probe job, as its result.json tells it."""

    level: float
    job: str  # its job dir, relative to the sweep root
    status: str
    requests: int = 0
    good: int = 0
    missed: dict[str, Any] = field(default_factory=dict)  # goodput.missed: failed, and each SLO missed
    ttft_p90_ms: Optional[float] = None
    tpot_p90_ms: Optional[float] = None
    e2e_p90_ms: Optional[float] = None
    queue_p90_ms: Optional[float] = None
    throughput_tok_s: Optional[float] = None
    request_rps: Optional[float] = None
    wall_s: float = 0.0
    queueing: bool = False  # closed loop above model.parallel: requests wait for a slot
    error: Optional[str] = None


def probe_of(result: dict[str, Any], level: float, job: str, parallel: Optional[int], variable: str) -> Probe:
    """A probe from its job's result.json (a failed job too: it is a probe that failed)."""
    p = read_parts(result)
    metrics, good = p.metrics, p.goodput
    return Probe(level=level, job=job, status=result.get("status", "failed"),
                 requests=int(good.get("requests") or 0), good=int(good.get("requests_good") or 0),
                 missed=dict(good.get("missed") or {}), ttft_p90_ms=p.metric("ttft_ms", "p90"),
                 tpot_p90_ms=p.metric("tpot_ms", "p90"), e2e_p90_ms=p.metric("e2e_ms", "p90"),
                 queue_p90_ms=p.metric("queue_ms", "p90"),
                 throughput_tok_s=metrics.get("output_throughput_tok_s"),
                 request_rps=metrics.get("request_throughput_rps"), wall_s=float(metrics.get("wall_s_total") or 0.0),
                 queueing=variable == "concurrency" and parallel is not None and level > parallel,
                 error=result.get("error"))


def wilson(good: int, n: int, confidence: float) -> tuple[float, float]:
    """The Wilson score interval of a share good/n (sound at 0/n and n/n, unlike the normal one)."""
    if n == 0:
        return 0.0, 1.0
    from scipy.stats import norm

    z = float(norm.ppf(0.5 + confidence / 2))
    p = good / n
    mid = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, mid - half), min(1.0, mid + half)


@dataclass
class Step:
    """A level and its verdict, over every probe of it (repeats pooled)."""

    level: float
    probes: list[Probe]
    verdict: str  # pass | fail | noise (undecided so far) | undecided (repeats spent)
    share: Optional[float]
    low: float
    high: float

    @property
    def last(self) -> Probe:
        return self.probes[-1]

    def mean(self, attr: str) -> Optional[float]:
        """A figure over the level's probes (their mean), None when none has it."""
        vs = [getattr(p, attr) for p in self.probes if getattr(p, attr) is not None]
        return sum(vs) / len(vs) if vs else None


def steps_of(probes: list[Probe], s: SearchConfig) -> list[Step]:
    """The levels probed, in the order first probed, each with its pooled verdict."""
    by: dict[float, list[Probe]] = {}
    for p in probes:
        by.setdefault(p.level, []).append(p)
    out = []
    for level, ps in by.items():
        if any(p.status != "ok" for p in ps):  # a job that failed outright: not noise
            out.append(Step(level, ps, "fail", None, 0.0, 0.0))
            continue
        good, n = sum(p.good for p in ps), sum(p.requests for p in ps)
        low, high = wilson(good, n, s.confidence)
        verdict = "pass" if low >= s.target else "fail" if high < s.target else \
            "noise" if len(ps) <= s.max_repeats else "undecided"
        out.append(Step(level, ps, verdict, good / n if n else None, low, high))
    return out


def _saturated(passes: list[Step], min_gain: float) -> Optional[tuple[Step, Step]]:
    """The first pair of passing levels between which throughput stalled while latency rose."""
    for a, b in zip(passes, passes[1:]):
        ta, tb = a.mean("throughput_tok_s"), b.mean("throughput_tok_s")
        la, lb = a.mean("ttft_p90_ms") or a.mean("e2e_p90_ms"), b.mean("ttft_p90_ms") or b.mean("e2e_p90_ms")
        if ta is None or tb is None or la is None or lb is None or not ta or not la:
            continue
        if tb < ta * (1 + min_gain) and lb > la * (1 + min_gain):
            return a, b
    return None


def limit_of(step: Step, parallel: Optional[int]) -> str:
    """What stopped a failing level: memory, context, failures, ttft, tpot, ... and slots when the
    latency it missed was queueing for a slot."""
    p = step.last
    if p.status != "ok":
        err = (p.error or "").lower()
        if "mib" in err and ("fit" in err or "ram" in err or "vram" in err):
            return "memory"
        if "context" in err:
            return "context"
        return "failures"
    missed: dict[str, int] = {}
    for q in step.probes:
        for k, v in q.missed.items():
            missed[k] = missed.get(k, 0) + v
    if not missed or max(missed.values()) == 0:
        return "noise" if step.verdict == "undecided" else "unknown"
    worst = max(missed, key=lambda k: missed[k])
    name = "failures" if worst == "failed" else worst.removesuffix("_ms")
    if name in ("ttft", "e2e", "ttfa") and p.queueing:
        return f"slots ({name} queued beyond model.parallel={parallel})"
    return name


def figures(st: Step) -> str:
    """A step's figures in words, for the line that explains a verdict."""
    p = st.last
    if p.status != "ok":
        return f"the job {p.status}: {p.error}"
    def ms(v: Optional[float]) -> str:
        return "n/a" if v is None else f"{v:.1f} ms"
    share = "n/a" if st.share is None else f"{st.share:.0%}"
    return (f"goodput {share} [{st.low:.0%}, {st.high:.0%}] of {sum(q.requests for q in st.probes)} requests, "
            f"p90 TTFT {ms(p.ttft_p90_ms)}, p90 TPOT {ms(p.tpot_p90_ms)}")


@dataclass
class Decision:
    next_level: Optional[float]  # None: the search is done
    capacity: Optional[float] = None
    bounds: tuple[Optional[float], Optional[float]] = (None, None)  # passes at [0], fails at [1]
    limit: Optional[str] = None  # what stopped it
    why: str = ""


def _grow(lo: float, s: SearchConfig) -> float:
    nxt = lo * s.growth
    if s.variable == "concurrency":
        nxt = max(lo + 1, math.ceil(nxt))
    return min(float(s.max_level), _round(nxt, s))


def _round(x: float, s: SearchConfig) -> float:
    return float(round(x)) if s.variable == "concurrency" else float(f"{x:.3g}")


def _close(lo: float, hi: float, s: SearchConfig) -> bool:
    return hi - lo <= s.resolution if s.variable == "concurrency" else hi / lo <= 1 + s.resolution


def _mid(lo: float, hi: float, s: SearchConfig) -> float:
    mid = (lo + hi) // 2 if s.variable == "concurrency" else _round(math.sqrt(lo * hi), s)
    return float(mid) if lo < mid < hi else (lo + hi) / 2


def decide(probes: list[Probe], s: SearchConfig, parallel: Optional[int] = None,
           elapsed_s: float = 0.0) -> Decision:
    """The next level to probe, or the answer."""
    unit = "concurrency" if s.variable == "concurrency" else "rate"
    if not probes:
        return Decision(next_level=_round(s.start, s))
    steps = steps_of(probes, s)
    last = next(st for st in steps if st.level == probes[-1].level)
    if last.verdict == "noise":
        return Decision(next_level=last.level, why=f"{unit} {last.level:g} is within noise: probed again")
    passes = sorted((st for st in steps if st.verdict == "pass"), key=lambda st: st.level)
    fails = sorted((st for st in steps if st.verdict in ("fail", "undecided")), key=lambda st: st.level)
    lo = passes[-1].level if passes else None
    above = [st for st in fails if lo is None or st.level > lo]
    hi = above[0] if above else None
    bounds = (lo, hi.level if hi else None)
    if lo is None and hi is not None and hi.level <= _round(s.start, s):
        return Decision(None, None, bounds, limit_of(hi, parallel),
                        f"below the SLO at {unit} {hi.level:g}: {figures(hi)}")
    sat = _saturated(passes, s.min_gain)
    if sat is not None:
        a, b = sat
        slots = a.last.queueing or b.last.queueing
        return Decision(None, a.level, (a.level, None), "saturation" + (" (slots)" if slots else ""),
                        f"saturated: throughput {a.mean('throughput_tok_s'):.1f} -> "
                        f"{b.mean('throughput_tok_s'):.1f} tok/s "
                        f"from {unit} {a.level:g} to {b.level:g} while p90 latency rose")
    if hi is not None and lo is not None and _close(lo, hi.level, s):
        return Decision(None, lo, bounds, limit_of(hi, parallel),
                        f"passes at {unit} {lo:g}, fails at {hi.level:g}")
    if len(probes) >= s.max_steps or (s.max_time_s is not None and elapsed_s >= s.max_time_s):
        return Decision(None, lo, bounds, "budget", f"budget spent after {len(probes)} probes ({elapsed_s:.0f} s)")
    if hi is None:
        assert lo is not None  # a last probe neither noise nor fail is a pass
        if lo >= s.max_level:
            return Decision(None, lo, bounds, "upper bound",
                            f"passes at the upper bound search.max_level={s.max_level:g}")
        return Decision(next_level=_grow(lo, s))
    if lo is None:  # only failures so far above start: go down toward it
        return Decision(next_level=max(_round(s.start, s), _round(hi.level / s.growth, s)))
    return Decision(next_level=_mid(lo, hi.level, s))


def summary(probes: list[Probe], s: SearchConfig, d: Decision, preset: str, parallel: Optional[int],
            status: str = "done", slo: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """capacity.json's entry for one search."""
    steps = {st.level: st for st in steps_of(probes, s)}
    return {
        "preset": preset, "status": status, "unit": "concurrency" if s.variable == "concurrency" else "rate",
        "variable": s.variable, "capacity": d.capacity, "bounds": list(d.bounds), "limit": d.limit,
        "why": d.why, "parallel": parallel, "target": s.target, "confidence": s.confidence,
        "slo": {k: v for k, v in (slo or {}).items() if v is not None},
        "probes": [{**asdict(p), "verdict": steps[p.level].verdict, "goodput_share": steps[p.level].share,
                    "goodput_low": steps[p.level].low, "goodput_high": steps[p.level].high}
                   for p in probes],
    }


FILE = "capacity.json"  # at the sweep root, keyed by preset: {preset: summary(...)}


def read_capacity(root: Path) -> Optional[dict[str, Any]]:
    """capacity.json of a sweep dir, or None (no search ran, or the file is unreadable)."""
    try:
        data = json.loads((Path(root) / FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data else None


def compare(base: dict[str, Any], cand: dict[str, Any]) -> list[dict[str, Any]]:
    """Two sweeps' capacities, preset by preset: better or worse only when one capacity reaches
    past the other's failing bound (beyond the search's step), else the same within a step."""
    out = []
    for name in sorted(set(base) & set(cand)):
        a, b = base[name], cand[name]
        ca, cb = a.get("capacity"), b.get("capacity")
        ha, hb = (a.get("bounds") or [None, None])[1], (b.get("bounds") or [None, None])[1]
        if ca == cb:
            verdict = "same"
        elif cb is not None and (ca is None or (ha is not None and cb >= ha)):
            verdict = "BETTER"
        elif ca is not None and (cb is None or (hb is not None and ca >= hb)):
            verdict = "WORSE"
        else:
            verdict = "same within one step"
        out.append({"preset": name, "unit": b.get("unit"), "baseline": ca, "candidate": cb,
                    "baseline_limit": a.get("limit"), "candidate_limit": b.get("limit"), "verdict": verdict})
    return out
