"""Compare two run or sweep dirs job by job: matched on (model, workload, concurrency), every
headline metric with baseline, candidate, absolute and relative change, and whether the change
is beyond noise (see analysis/compare.py for the method of each verdict, noise.py for the tests).
Each verdict is its own test at a nominal 5% false-positive rate. Reads files only (the
machine's noise calibration included, when there is one)."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional, Union

from benchrun.analysis import capacity, noise
from benchrun.analysis.compare import Delta, comparability, compare, method_text
from benchrun.analysis.jobs import Job, ReportError, load_jobs, metric
from benchrun.measure.views import BY_KEY, HEADLINE, Metric

JobKey = tuple[str, str, int]  # (model, workload, concurrency)
NoiseFile = Union[Path, None, Literal[False]]  # a calibration file; None: the machine's own; False: none


@dataclass
class JobDiff:
    key: JobKey  # (model, workload, concurrency)
    base_dir: str
    cand_dir: str
    deltas: list[Delta]
    warnings: list[str] = field(default_factory=list)


@dataclass
class Diff:
    base: str
    cand: str
    jobs: list[JobDiff]
    only_base: list[str]
    only_cand: list[str]
    warnings: list[str]  # run-wide notes (ambiguous matches, failed jobs)
    capacity: list[dict[str, Any]] = field(default_factory=list)  # both sweeps searched: capacity.compare


def _index(jobs: list[Job], side: str, notes: list[str], only: Optional[str] = None,
           rename: Optional[str] = None) -> dict[JobKey, Job]:
    """Ok jobs by (model, workload, concurrency). only/rename: keep one model's jobs and file
    them under another model's name (to compare two presets, even within one sweep)."""
    out: dict[JobKey, Job] = {}
    for j in jobs:
        if only is not None and j.model != only:
            continue
        if not j.ok:
            notes.append(f"{side}: job {j.dir.name} {j.result.get('status')}: {j.result.get('error')}")
            continue
        key = (rename, *j.key[1:]) if rename else j.key
        if key in out:
            notes.append(f"{side}: several jobs for {_fmt_key(key)}; comparing {out[key].dir.name}, "
                         f"ignoring {j.dir.name}")
            continue
        out[key] = j
    return out


def _fmt_key(key: JobKey) -> str:
    return f"{key[0]} / {key[1]} / C{key[2]}"


def _name(metric_key: str) -> str:
    """A metric key as printed: wall_s is one repeat's wall time, and says so."""
    return "wall_s per repeat" if metric_key == "wall_s" else metric_key


def _calibration_for(ja: Job, jb: Job, noise_file: NoiseFile, notes: list[str]) -> Optional[dict[str, Any]]:
    """The run-to-run calibration that applies to this pair: both measured on one machine, with
    the same workload and repeats as the calibration runs. noise_file False: none."""
    from benchrun.analysis.calibration import job_id, lookup, machine_key

    if noise_file is False:
        return None
    ha, hb = ja.result.get("hardware"), jb.result.get("hardware")
    if machine_key(ha) != machine_key(hb):
        return None
    same_job = ja.model == jb.model and ja.concurrency == jb.concurrency
    cal = lookup(ha, ja.workload, ja.repeats, noise_file, job_id(ja.model, ja.concurrency) if same_job else None)
    if cal is None and noise_file:
        note = f"noise calibration {noise_file} does not cover workload {ja.workload} with repeats={ja.repeats}"
        if note not in notes:
            notes.append(note)
    return cal


def diff_dirs(base: Path, cand: Path, metrics: tuple[Metric, ...] = HEADLINE, seed: int = 0,
              models: Optional[tuple[str, str]] = None, noise_file: NoiseFile = None) -> Diff:
    """models=(A, B): compare preset A's jobs in `base` with preset B's jobs in `cand` (which
    may be the same dir), matched on workload and concurrency. noise_file: a calibration file
    (benchrun calibrate --out), None = the measuring machine's own, False = none."""
    notes: list[str] = []
    if models:
        a = _index(load_jobs(base), "baseline", notes, only=models[0])
        b = _index(load_jobs(cand), "candidate", notes, only=models[1], rename=models[0])
        if not a or not b:
            missing = models[0] if not a else models[1]
            raise ReportError(f"no ok jobs of model {missing!r} in {base if not a else cand}")
    else:
        a = _index(load_jobs(base), "baseline", notes)
        b = _index(load_jobs(cand), "candidate", notes)
    jobs = []
    for key in sorted(set(a) & set(b), key=lambda k: (k[0], k[1], k[2])):
        ja, jb = a[key], b[key]
        cal = _calibration_for(ja, jb, noise_file, notes)
        deltas = [d for d in (compare(ja, jb, m, seed=seed, calibration=cal) for m in metrics)
                  if d.base is not None or d.cand is not None]
        jobs.append(JobDiff(key, str(ja.dir), str(jb.dir), deltas, comparability(ja.result, jb.result)))
    only_a = [_fmt_key(k) for k in sorted(set(a) - set(b))]
    only_b = [_fmt_key(k) for k in sorted(set(b) - set(a))]
    if not jobs:
        why = ""
        if notes:  # typically: the same job is there, but failed
            why = f": {notes[0]}" + (f" (and {len(notes) - 1} more)" if len(notes) > 1 else "")
        raise ReportError(f"no matching ok jobs between {base} and {cand} "
                          f"(matched on model, workload, concurrency){why}")
    if models:
        notes.insert(0, f"comparing model {models[0]} (baseline) with model {models[1]} (candidate)")
    cap_a, cap_b = capacity.read_capacity(base), capacity.read_capacity(cand)
    return Diff(str(base), str(cand), jobs, only_a, only_b, notes,
                capacity.compare(cap_a, cap_b) if cap_a and cap_b else [])


# --- --fail-on -------------------------------------------------------------------------------

def parse_fail_on(spec: str) -> tuple[Metric, float]:
    """'ttft_ms.p50:10' -> (metric, 10.0): fail when it gets worse by more than 10%."""
    name, sep, pct = spec.rpartition(":")
    if not sep or not name:
        raise ReportError(f"--fail-on wants METRIC:PCT (e.g. ttft_ms.p50:10), got {spec!r}")
    try:
        p = float(pct.rstrip("%"))
    except ValueError:
        raise ReportError(f"--fail-on {spec!r}: {pct!r} is not a number") from None
    if p < 0:
        raise ReportError(f"--fail-on {spec!r}: threshold must be >= 0")
    return metric(name), p


def regressions(d: Diff, rules: list[tuple[Metric, float]]) -> list[str]:
    """One line per (job, rule) where the metric got worse by more than the threshold AND the
    change is beyond noise: what makes --fail-on exit 1."""
    return [line for line, sure in _past_threshold(d, rules) if sure]


def undecided(d: Diff, rules: list[tuple[Metric, float]]) -> list[str]:
    """Worse by more than the threshold, but the method cannot tell it from noise (one run each,
    no calibration, under the assumed floor; or nothing to test): reported, never fatal."""
    return [line for line, sure in _past_threshold(d, rules) if not sure]


def _past_threshold(d: Diff, rules: list[tuple[Metric, float]]) -> list[tuple[str, bool]]:
    out = []
    for jd in d.jobs:
        by_key = {x.key: x for x in jd.deltas}
        for m, pct in rules:
            x = by_key.get(m.key)
            if x is None or x.rel is None or x.change != "worse" or x.beyond_noise is False:
                continue
            if abs(x.rel) * 100 > pct:
                why = (f"beyond noise: {method_text(x)}" if x.beyond_noise else
                       f"cannot tell it from noise: {method_text(x)}; rerun with repeats=N or calibrate")
                out.append((f"{_fmt_key(jd.key)}: {_name(m.key)} {x.change} by {abs(x.rel) * 100:.1f}% "
                            f"(> {pct:g}%, {why}): {m.show(x.base)} -> {m.show(x.cand)}", x.beyond_noise is True))
    return out


# --- output ----------------------------------------------------------------------------------

def _num(v: Optional[float], m: Metric) -> str:
    return m.show(v, unit=False)


def _flag(x: Delta) -> str:
    if x.base is None or x.cand is None:
        return "n/a"
    if x.change == "same":
        return "="
    if x.beyond_noise is False:
        return "~ noise"
    arrow = "BETTER" if x.change == "better" else "WORSE"
    return arrow if x.beyond_noise else f"{arrow.lower()}?"  # ?: one run cannot tell


def rows(jd: JobDiff) -> list[list[str]]:
    out = []
    for x in jd.deltas:
        m = Metric(x.key, x.label, x.unit, x.better, _fmt_for(x.key))
        rel = "—" if x.rel is None else ("∞" if math.isinf(x.rel) else f"{x.rel * 100:+.1f}%")
        absd = "—" if x.abs is None else (f"+{_num(x.abs, m)}" if x.abs > 0 else _num(x.abs, m))
        out.append([_name(x.key) + (f" ({x.unit})" if x.unit else ""), _num(x.base, m), _num(x.cand, m), absd,
                    rel, _flag(x), method_text(x)])
    return out


def _fmt_for(key: str) -> str:
    """The headline's display format; other keys (--fail-on extras) print as they always did."""
    return BY_KEY[key].fmt if key in BY_KEY else "{:.1f}"


HEADERS = ["metric", "baseline", "candidate", "abs", "rel", "verdict", "noise"]


def format_table(d: Diff) -> str:
    lines = [f"baseline:  {d.base}", f"candidate: {d.cand}", ""]
    for jd in d.jobs:
        lines.append(f"== {_fmt_key(jd.key)}")
        for w in jd.warnings:
            lines.append(f"   WARNING not comparable: {w}")
        table = [HEADERS] + rows(jd)
        widths = [max(len(r[i]) for r in table) for i in range(len(HEADERS))]
        for i, r in enumerate(table):
            lines.append("   " + "  ".join(c.ljust(w) if j == 0 else c.rjust(w)
                                          for j, (c, w) in enumerate(zip(r, widths))).rstrip())
            if i == 0:
                lines.append("   " + "  ".join("-" * w for w in widths))
        lines.append("")
    lines += _tail(d)
    return "\n".join(lines).rstrip() + "\n"


def _capacity_lines(d: Diff) -> list[str]:
    def level(v: Optional[float], unit: str) -> str:
        return "none" if v is None else f"{v:g}" + (" req/s" if unit == "rate" else "")

    return [f"capacity {c['preset']}: {level(c['baseline'], c['unit'])} -> {level(c['candidate'], c['unit'])} "
            f"({c['verdict']}; limit {c['baseline_limit']} -> {c['candidate_limit']})" for c in d.capacity]


def _tail(d: Diff) -> list[str]:
    out = _capacity_lines(d)
    if d.only_base:
        out.append("only in baseline: " + "; ".join(d.only_base))
    if d.only_cand:
        out.append("only in candidate: " + "; ".join(d.only_cand))
    out += [f"note: {n}" for n in d.warnings]
    out.append(f"verdict: BETTER/WORSE = beyond noise (each at a nominal {noise.ALPHA:.0%} false-positive "
               "rate: repeats by Welch's t on repeat values; single runs against the run-to-run floor, "
               "calibrated for this machine or assumed); ~ noise = within noise; better?/worse? = one run "
               "each cannot separate it from noise (use repeats=N, or benchrun calibrate).")
    return out


def format_md(d: Diff) -> str:
    lines = ["# benchrun diff", "", f"- baseline: `{d.base}`", f"- candidate: `{d.cand}`", ""]
    for jd in d.jobs:
        lines += [f"## {_fmt_key(jd.key)}", ""]
        lines += [f"> **Not comparable:** {w}" for w in jd.warnings]
        if jd.warnings:
            lines.append("")
        lines.append("| " + " | ".join(HEADERS) + " |")
        lines.append("|" + "|".join(["---"] + ["---:"] * (len(HEADERS) - 1)) + "|")
        lines += ["| " + " | ".join(r) + " |" for r in rows(jd)]
        lines.append("")
    lines += [f"- {t}" for t in _tail(d)]
    return "\n".join(lines) + "\n"


def format_json(d: Diff, failures: list[str]) -> str:
    def clean(v: Any) -> Any:
        return None if isinstance(v, float) and not math.isfinite(v) else v

    return json.dumps({
        "baseline": d.base, "candidate": d.cand,
        "jobs": [{"model": jd.key[0], "workload": jd.key[1], "concurrency": jd.key[2],
                  "baseline_dir": jd.base_dir, "candidate_dir": jd.cand_dir, "warnings": jd.warnings,
                  "metrics": [{k: clean(v) for k, v in x.to_dict().items()} for x in jd.deltas]}
                 for jd in d.jobs],
        "only_baseline": d.only_base, "only_candidate": d.only_cand, "notes": d.warnings,
        "failures": failures, "capacity": d.capacity,
    }, indent=2) + "\n"
