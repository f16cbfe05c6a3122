"""Loading a run or sweep dir (files only), and looking metrics up: the headline metrics and
how to read each from a result.json come from benchrun/measure/catalogue.py (re-exported here for the
report's modules); this module keeps no metric list of its own."""
from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Optional

from benchrun.config import split_override
from benchrun.load.records import read_records
from benchrun.measure import metrics as M
from benchrun.measure.catalogue import (  # noqa: F401
    BY_NAME,
    STATS,
    Kind,
    compute_metrics,
    task_tally,
)
from benchrun.measure.views import (  # noqa: F401
    BY_KEY,
    HEADLINE,
    PER_REQUEST_NAMES,
    RECIPROCAL,
    Metric,  # (re-exported for the report's modules)
    summary_stat,
    value,
)
from benchrun.results import find_results, load_result
from benchrun.results.parts import Parts, read_parts


class ReportError(Exception):
    """Bad input (missing dir, no results): printed as one line, exit 2."""


def metric(key: str) -> Metric:
    """Look a metric up by key; a bare per-request name means its p50 (or mean for speeds)."""
    if key in BY_KEY:
        return BY_KEY[key]
    matches = [m for m in HEADLINE if m.name == key]
    if matches:
        return matches[0]
    name, _, stat = key.partition(".")
    if name in PER_REQUEST_NAMES and (stat in STATS or (stat == "hmean" and name in RECIPROCAL)):
        d = BY_NAME[name]
        return Metric(key, f"{name} {stat}", d.unit, d.better or "lower")
    raise ReportError(f"unknown metric {key!r}; known: {', '.join(BY_KEY)}")


def value_of(res: dict[str, Any], key: str) -> Optional[float]:
    """One number for `key` from a result.json dict (None when absent): views.value."""
    return value(res, key)


def repeat_values(res: dict[str, Any], key: str) -> list[float]:
    """The metric's value in each repeat (from repeat_metrics), for spread across repeats."""
    name, _, stat = key.partition(".")
    out = []
    for rm in res.get("repeat_metrics") or []:
        v = summary_stat(rm.get, name, stat) if stat else rm.get(name)
        if isinstance(v, (int, float)):
            out.append(float(v))
    return out


def ci_of(res: dict[str, Any], key: str) -> Optional[tuple[float, float]]:
    """95% CI across repeats: repeats_ci95 when the run stored it (n >= 2), else None."""
    ci = read_parts(res).ci(key)
    if ci and (ci.get("n") or 0) >= 2 and ci.get("low") is not None and ci.get("high") is not None:
        return float(ci["low"]), float(ci["high"])
    return None


@dataclass
class Job:
    dir: Path
    result: dict[str, Any]
    _records: Optional[list[Any]] = field(default=None, repr=False)
    parts: list[Any] = field(default_factory=list, repr=False)  # the round jobs merged into this one

    @property
    def ok(self) -> bool:
        return self.result.get("status") == "ok"

    @property
    def model(self) -> str:
        return str(self.result["model"]["name"])

    @property
    def workload(self) -> str:
        return str(self.result["workload"]["name"])

    @property
    def concurrency(self) -> int:
        return int(self.result.get("concurrency") or 1)

    @property
    def key(self) -> tuple[Any, ...]:
        return (self.model, self.workload, self.concurrency)

    @cached_property
    def facts(self) -> Parts:
        """result.json's typed parts (results/parts.py): read them here, not through dict chains."""
        return read_parts(self.result)

    @property
    def repeats(self) -> int:
        return int(self.result.get("repeats") or 1)

    def value(self, key: str) -> Optional[float]:
        return value_of(self.result, key)

    @cached_property
    def records(self) -> list[Any]:
        """Measured requests (no warm-up) from requests.jsonl; [] when the file is gone."""
        if self.parts:
            return [r for part in self.parts for r in part.records]
        p = self.dir / "requests.jsonl"
        if not p.is_file():
            return []
        return [r for r in read_records(p) if not r.warmup]

    def samples(self, name: str) -> list[Any]:
        """Per-request values of a per-request metric over the good requests. For a TOKENS metric
        (itl_ms), one list of gaps per request (the request is the resampling unit, its gaps are correlated)."""
        good = [r for r in self.records if M.is_good(r)]
        f = BY_NAME[name].fn
        assert f is not None  # every per-request metric has its function
        if BY_NAME[name].kind is Kind.TOKENS:
            return [f(r) for r in good]
        return [v for v in (f(r) for r in good) if v is not None]


def load_jobs(root: Path) -> list[Job]:
    """Every job below `root`. Bad input raises ReportError with a one-line message."""
    root = Path(root)
    if not root.exists():
        raise ReportError(f"no such directory: {root}")
    if not root.is_dir():
        raise ReportError(f"not a directory: {root}")
    paths = find_results(root)
    if not paths:
        raise ReportError(f"no result.json found under {root} (is it a benchrun run or sweep dir?)")
    return merge_rounds([Job(p.parent, load_result(p)) for p in paths])


def settings_of(res: dict[str, Any]) -> dict[str, str]:
    """What the job's command line set, key -> value as text ("model.parallel" -> "2"): result.json
    job.settings, recorded at run time. Results written before it (schema_version 1) only have
    the override strings, which are read instead."""
    job = read_parts(res).job
    if job.settings is not None:
        return {k: v if isinstance(v, str) else json.dumps(v) for k, v in job.settings.items()}
    return dict(split_override(o) for o in job.overrides)


def round_of(res: dict[str, Any]) -> Optional[int]:
    """The round of an interleaved sweep this job is (result.json `order`), else None."""
    o = read_parts(res).order
    return o.round if o.rounds > 1 else None


def merge_rounds(jobs: list[Job]) -> list[Job]:
    """An interleaved sweep (order=interleaved|random, repeats=N) runs each repeat as its own
    job, round by round; here the ok rounds of one preset and level become one job with N
    repeats again, as if its repeats had run back to back: repeat_metrics in round order,
    repeats_ci95 across them, summaries over all their requests. Failed rounds stay separate
    jobs (the report lists them). Jobs of other sweeps pass through unchanged."""
    from benchrun.measure.stats import repeats_ci95

    out: list[Any] = []
    groups: dict[tuple[Any, ...], list[Job]] = {}
    for j in jobs:
        r = round_of(j.result)
        if r is None or not j.ok:
            out.append(j)
            continue
        ov = tuple(sorted((k, v) for k, v in settings_of(j.result).items() if k != "round"))
        gk = (j.result.get("run_id"), j.key, ov)
        if gk not in groups:
            groups[gk] = []
            out.append(gk)
        groups[gk].append(j)
    return [_merged(groups[x], repeats_ci95) if isinstance(x, tuple) else x for x in out]


def _merged(parts: list[Job], repeats_ci95: Callable[..., Any]) -> Job:
    if len(parts) == 1:
        return parts[0]
    parts = sorted(parts, key=lambda j: round_of(j.result) or 0)
    res = dict(parts[0].result)
    reps = [rm for j in parts for rm in (j.result.get("repeat_metrics") or [j.result.get("metrics") or {}])]
    res["repeat_metrics"] = reps
    res["repeats"] = len(reps)
    res["repeats_ci95"] = repeats_ci95(reps)
    res["order"] = {**(res.get("order") or {}), "merged_rounds": [round_of(j.result) for j in parts],
                    "dirs": [j.dir.name for j in parts]}
    res["tasks"] = [t for j in parts for t in j.result.get("tasks") or []]
    job = Job(parts[0].dir, res, parts=parts)
    recs = job.records
    if recs and all((j.dir / "requests.jsonl").is_file() for j in parts):
        wall_ns = int(sum((rm.get("wall_s") or 0) for rm in reps) * 1e9)
        res["metrics"] = compute_metrics(recs, wall_ns, len(reps))  # one definition: as for back-to-back repeats
    peaks = [x for x in (j.facts.memory.peak_mib for j in parts) if x is not None]
    if peaks:
        server = dict(res.get("server") or {})
        res["server"] = {**server, "memory": {**dict(server.get("memory") or {}), "peak_mib": max(peaks)}}
    return job


TINY_FILE = re.compile(r"^tiny(_\w+)?-[0-9a-f]{6,}\.gguf$")


def is_random_weights(res: dict[str, Any]) -> bool:
    """benchrun's own generated test models (random weights): their output is noise."""
    model = read_parts(res).model
    return bool(TINY_FILE.match(Path(model.path).name)) or model.random_weights
