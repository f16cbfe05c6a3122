"""The report's wording of a sweep's figures: a value with its spread across repeats (show),
a Winner cell and its footnote (winner_cell), and a job's command-line overrides. The verdicts
themselves -- who wins a metric, and whether beyond noise -- are made in analysis/verdicts.py;
this module only words them."""
from __future__ import annotations

from typing import Optional

from benchrun.analysis.jobs import Job, ci_of, repeat_values
from benchrun.analysis.verdicts import Verdict
from benchrun.config import split_override
from benchrun.measure.stats import ci95
from benchrun.measure.views import Metric


def overrides_of(job: Job) -> list[str]:
    """The job's command-line overrides (result.json job.overrides, else .hydra/overrides.yaml),
    less `resume=DIR`: older results of a resumed sweep store it on the rerun jobs only, and it
    says where a job ran, not what was measured."""
    ov = job.facts.job.overrides
    if not ov:
        p = job.dir / ".hydra" / "overrides.yaml"
        try:
            import yaml

            ov = yaml.safe_load(p.read_text()) if p.is_file() else []
        except Exception:  # noqa: BLE001 -- a broken file only costs the Reproducing section
            ov = []
    return [str(x) for x in ov or [] if split_override(str(x))[0] not in ("resume", "round")]


def spread(job: Job, m: Metric) -> Optional[tuple[float, float]]:
    """95% CI across repeats (stored, or computed from repeat_metrics)."""
    stored = ci_of(job.result, m.key)
    if stored:
        return stored
    ci = ci95(repeat_values(job.result, m.key))
    return (ci["low"], ci["high"]) if ci["low"] is not None else None


def half_width(job: Job, m: Metric) -> Optional[float]:
    s = spread(job, m)
    return (s[1] - s[0]) / 2 if s else None


def show(job: Optional[Job], m: Metric, unit: bool = True) -> str:
    """'85.2 ± 1.1 tok/s' when repeats give a spread, else '85.2 tok/s'; '—' when absent."""
    if job is None:
        return "—"
    v = job.value(m.key)
    if v is None:
        return "—"
    h = half_width(job, m)
    s = m.show(v, unit=False)
    if h is not None:
        s += f" ± {m.show(h, unit=False)}"
    return f"{s} {m.unit}" if unit and m.unit else s


# Why a Winner cell says what it says: one footnote per distinct reason under the Summary.
WHY = {
    "busy": "Busy machine: other processes took half a core or more during a run, and one run each cannot "
            "tell such a gap from noise; rerun on a quiet machine or with repeats=N.",
    "one-run": "One run each: the gap is not separable from run-to-run noise; use repeats=N.",
    "within": "Within noise: the gap is inside the spread across repeats.",
    "calibrated": "Single run each, past this machine's calibrated run-to-run spread (`benchrun calibrate`).",
    "floor": "Single run each, past the assumed run-to-run floor (no calibration for this machine).",
    "repeats-1": "One side is a single run: a t prediction test against the other's repeats.",
}


def winner_cell(v: Verdict) -> tuple[str, Optional[str]]:
    """(the cell: 'Tie', 'Tie?', 'a (1.7x)', '—'; the reason for its footnote, or None)."""
    if v.best is None or v.runner_up is None:
        return "—", None
    if v.delta and v.delta.change == "same":
        return "Tie", None
    if v.cannot_tell:
        return "Tie?", WHY["busy" if v.delta.method == "disturbed" else "one-run"]
    if not v.decided:
        return "Tie", WHY["within"]
    method = (v.delta.method if v.delta else "").split("+")[0]
    return f"{v.best} ({v.times})", WHY.get(method)
