"""The verdicts of a sweep: ok jobs grouped by workload, then by preset label and concurrency
(Group), and who wins a metric and whether beyond noise (Group.verdict), which the report's
Summary Winner column, Key Findings and Recommendation all read from this one place, so they
never disagree; and how a preset's metric moves from its lowest level to its highest
(Group.trend). The report (report/view.py and the rest) only words them.

The preset comparisons of one workload are one family (FAMILY_AXES, the Summary's rows): their
p-values go through Holm's procedure, so with identical presets the chance that *any* row names
a winner is at most 5% -- a report makes one decision from all its rows, and nine rows each
tested at 5% would name a false winner about a third of the time."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Optional

from benchrun.analysis import noise
from benchrun.analysis.compare import Delta, compare, ratio_text
from benchrun.analysis.jobs import Job, settings_of
from benchrun.measure.catalogue import task_tally
from benchrun.measure.views import BY_KEY, Metric

_GROUPING = {"model", "concurrency", "workload"}


def assign_labels(jobs: list[Job]) -> dict[int, str]:
    """Preset label per job: the model name, plus any other setting that varies across the
    sweep (e.g. model.parallel), so two variants of one model never share a column."""
    ovs = [{k: v for k, v in settings_of(j.result).items() if k not in ("resume", "round")} for j in jobs]
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
    calibration: Optional[dict[str, Any]] = None  # {metric key: (run_sd, df)} for this machine + workload
    _verdicts: dict[tuple[str, int], Verdict] = field(default_factory=dict, repr=False)

    def verdict(self, key: str, c: int) -> Verdict:
        """Who wins metric `key` at level c among the presets, Holm-adjusted over FAMILY_AXES."""
        if not self._verdicts:
            self._verdicts = family_verdicts(self)
        if (key, c) not in self._verdicts:  # outside the family: its own 5% test
            self._verdicts[(key, c)] = rank(self.cands(c), BY_KEY[key], self.calibration)
        return self._verdicts[(key, c)]

    def ends(self, label: str) -> Optional[tuple[Job, Job, int, int]]:
        """The preset's jobs at its lowest and highest level, with the levels; None under two levels."""
        levels = sorted(self.grid.get(label, {}))
        if len(levels) < 2:
            return None
        return self.grid[label][levels[0]], self.grid[label][levels[-1]], levels[0], levels[-1]

    def trend(self, label: str, key: str) -> Optional[Delta]:
        """How metric `key` of preset `label` moves from its lowest level to its highest, judged
        against noise as any comparison is; None where it cannot be compared."""
        e = self.ends(label)
        if e is None or e[0].value(key) is None or e[1].value(key) is None:
            return None
        return compare(e[0], e[1], BY_KEY[key], calibration=self.calibration)

    def cands(self, c: int) -> dict[str, Job]:
        return {lab: j for lab in self.labels if (j := self.job(lab, c)) is not None}

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
        sets = [set(self.grid[lab]) for lab in self.labels]
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
        g.calibration = _calibration(g)
    return list(groups.values())


def _calibration(g: Group) -> Optional[dict[str, Any]]:
    """The machine's run-to-run calibration for this group, when every job was measured on one
    machine with one repeats count (benchrun calibrate); an unreadable file counts as none."""
    from benchrun.analysis.calibration import lookup, machine_key

    jobs = [j for row in g.grid.values() for j in row.values()]
    machines = {machine_key(j.result.get("hardware")) for j in jobs}
    if not jobs or len(machines) != 1 or len({j.repeats for j in jobs}) != 1:
        return None
    try:
        return lookup(jobs[0].result.get("hardware"), g.workload, jobs[0].repeats)
    except Exception:  # noqa: BLE001 -- a broken calibration file must not cost the report
        return None


@dataclass
class Verdict:
    """Who is best on one metric among several jobs, and whether it is beyond noise."""
    best: Optional[str]
    runner_up: Optional[str]
    delta: Optional[Delta]  # runner-up -> best

    @property
    def times(self) -> str:
        """How many times better the best is than the runner-up: '1.7x' ('∞x' against 0)."""
        d = self.delta
        return ratio_text(d.base, d.cand) if d is not None and d.base is not None and d.cand is not None else ""

    @property
    def decided(self) -> bool:
        """A real win: beyond noise by the method in delta.method (never by the size of a gap
        alone). Equal values are a tie whatever an interval says."""
        if self.delta is None or self.best is None or self.delta.change == "same":
            return False
        return self.delta.beyond_noise is True

    @property
    def cannot_tell(self) -> bool:
        """One run per preset, no calibration, a gap under the assumed floor: undecidable."""
        return self.delta is not None and self.delta.change != "same" and self.delta.beyond_noise is None


def rank(cands: dict[str, Job], m: Metric, calibration: Optional[dict[str, Any]] = None) -> Verdict:
    vals = {k: v for k, j in cands.items() if (v := j.value(m.key)) is not None}
    if len(vals) < 2:
        return Verdict(next(iter(vals), None), None, None)
    order = sorted(vals, key=lambda k: vals[k], reverse=(m.better == "higher"))
    best, second = order[0], order[1]
    return Verdict(best, second, compare(cands[second], cands[best], m, calibration=calibration))


# The Summary's rows, in order: (metric key, "min" | "max" level, row label). Key Findings and
# the Recommendation only use these axes, so the Holm family covers every claim they make.
FAMILY_AXES = (
    ("memory.peak_mib", "max", "Peak memory"),
    ("decode_tok_s.hmean", "min", "Decode speed per request, harmonic mean (C{c})"),
    ("decode_tok_s.hmean", "max", "Decode speed per request, harmonic mean (C{c})"),
    ("ttft_ms.p50", "min", "TTFT p50 (C{c})"),
    ("ttft_ms.p50", "max", "TTFT p50 (C{c})"),
    ("itl_ms.p50", "max", "ITL p50 (C{c})"),
    ("e2e_ms.p50", "max", "E2E latency p50 (C{c})"),
    ("wall_s", "max", "Total time per repeat (C{c})"),
    ("output_throughput_tok_s", "max", "Aggregate throughput (C{c})"),
    ("goodput.share", "max", "Goodput (C{c})"),
    ("energy.tokens_per_joule", "max", "Tokens per joule (C{c})"),
)


def family_axes(g: Group) -> list[tuple[str, int, str]]:
    """FAMILY_AXES at this group's levels, duplicates (cmin == cmax) dropped."""
    out, seen = [], set()
    for key, end, label in FAMILY_AXES:
        c = g.cmin if end == "min" else g.cmax
        if (key, c) not in seen:
            seen.add((key, c))
            out.append((key, c, label.format(c=c)))
    return out


def family_verdicts(g: Group) -> dict[tuple[str, int], Verdict]:
    """Every family axis ranked, then Holm over their p-values (best vs runner-up)."""
    ranked = {(key, c): rank(g.cands(c), BY_KEY[key], g.calibration) for key, c, _ in family_axes(g)}
    items = [(k, v, v.delta) for k, v in ranked.items() if v.delta is not None and v.delta.p is not None
             and v.delta.change != "same"]
    sig = noise.holm([d.p for _, _, d in items])
    for (k, v, d), s in zip(items, sig):
        ranked[k] = Verdict(v.best, v.runner_up, replace(d, beyond_noise=d.decided_at(bool(s)), family=True))
    return ranked
