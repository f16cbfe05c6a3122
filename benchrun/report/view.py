"""The report's view of a sweep: ok jobs grouped by workload, then by preset label and
concurrency; values with their spread across repeats."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from ..stats import ci95
from .compare import Delta, compare, ratio_text
from .data import Job, Metric, ci_of, repeat_values, task_tally

SINGLE_RUN_TIE = 0.05  # no noise estimate: gaps under 5% are not called a win


def overrides_of(job: Job) -> list[str]:
    """The job's command-line overrides (result.json job.overrides, else .hydra/overrides.yaml),
    less `resume=DIR`: older results of a resumed sweep store it on the rerun jobs only, and it
    says where a job ran, not what was measured."""
    ov = (job.result.get("job") or {}).get("overrides")
    if not ov:
        p = job.dir / ".hydra" / "overrides.yaml"
        try:
            import yaml

            ov = yaml.safe_load(p.read_text()) if p.is_file() else []
        except Exception:  # noqa: BLE001 -- a broken file only costs the Reproducing section
            ov = []
    return [str(x) for x in ov or [] if _split(str(x))[0] != "resume"]


def _split(o: str) -> tuple[str, str]:
    k, _, v = o.partition("=")
    return k.lstrip("+~"), v


_GROUPING = {"model", "concurrency", "workload"}


def assign_labels(jobs: list[Job]) -> dict[int, str]:
    """Preset label per job: the model name, plus any other override that varies across the
    sweep (e.g. model.parallel), so two variants of one model never share a column."""
    ovs = [dict(_split(o) for o in overrides_of(j)) for j in jobs]
    keys = {k for d in ovs for k in d if k not in _GROUPING}
    varying = sorted(k for k in keys if len({d.get(k) for d in ovs}) > 1)
    out = {}
    for j, d in zip(jobs, ovs):
        extra = [f"{k}={d[k]}" for k in varying if k in d]
        out[id(j)] = j.model + (f" ({', '.join(extra)})" if extra else "")
    return out


@dataclass
class Group:
    """One workload's ok jobs: grid[label][concurrency] -> Job."""
    workload: str
    labels: list[str]
    levels: list[int]
    grid: dict[str, dict[int, Job]] = field(default_factory=dict)

    def job(self, label: str, c: int) -> Optional[Job]:
        return self.grid.get(label, {}).get(c)

    def tally(self, label: str) -> tuple[int, int]:
        """(passed, judged) quality checks of preset `label` at the highest level."""
        j = self.job(label, self.cmax)
        return task_tally(j.result if j else None)

    @property
    def cmin(self) -> int:
        return self.common_levels[0] if self.common_levels else self.levels[0]

    @property
    def cmax(self) -> int:
        return self.common_levels[-1] if self.common_levels else self.levels[-1]

    @property
    def common_levels(self) -> list[int]:
        sets = [set(self.grid[l]) for l in self.labels]
        return sorted(set.intersection(*sets)) if sets else []


def build_groups(jobs: list[Job]) -> list[Group]:
    labels = assign_labels(jobs)
    groups: dict[str, Group] = {}
    for j in jobs:
        if not j.ok:
            continue
        g = groups.setdefault(j.workload, Group(j.workload, [], []))
        lab = labels[id(j)]
        if lab not in g.labels:
            g.labels.append(lab)
        g.grid.setdefault(lab, {}).setdefault(j.concurrency, j)  # first job wins on duplicates
        if j.concurrency not in g.levels:
            g.levels.append(j.concurrency)
    for g in groups.values():
        g.levels.sort()
    return list(groups.values())


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


@dataclass
class Verdict:
    """Who is best on one metric among several jobs, and whether it is beyond noise."""
    best: Optional[str]
    runner_up: Optional[str]
    delta: Optional[Delta]  # runner-up -> best

    @property
    def times(self) -> str:
        """How many times better the best is than the runner-up: '1.7x' ('∞x' against 0)."""
        return ratio_text(self.delta.base, self.delta.cand)

    @property
    def decided(self) -> bool:
        """A real win: beyond noise, or (no noise estimate) a gap of at least 5%."""
        if self.delta is None or self.best is None or self.delta.change == "same":
            return False  # equal values are a tie whatever an interval says (as the Winner column)
        if self.delta.beyond_noise is None:
            return self.delta.rel is not None and abs(self.delta.rel) >= SINGLE_RUN_TIE
        return bool(self.delta.beyond_noise)


def rank(cands: dict[str, Job], m: Metric) -> Verdict:
    vals = {k: j.value(m.key) for k, j in cands.items() if j is not None}
    vals = {k: v for k, v in vals.items() if v is not None}
    if len(vals) < 2:
        return Verdict(next(iter(vals), None), None, None)
    order = sorted(vals, key=lambda k: vals[k], reverse=(m.better == "higher"))
    best, second = order[0], order[1]
    return Verdict(best, second, compare(cands[second], cands[best], m))


def winner_cell(v: Verdict) -> str:
    if v.best is None or v.runner_up is None:
        return "—"
    if v.delta and v.delta.change == "same":
        return "Tie"
    if not v.decided:
        return "Tie (within noise)" if v.delta and v.delta.beyond_noise is False else "Tie (<5%, single run)"
    tag = " (single run)" if v.delta and v.delta.beyond_noise is None else ""
    return f"{v.best} ({v.times}){tag}"
