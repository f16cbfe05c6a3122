"""The Recommendation, written from the numbers only: which preset to pick and by how much, and
when another is still the better pick. A win is a Group.verdict that is beyond noise -- the same
Holm-adjusted verdicts as the Summary's Winner column and Key Findings -- so the three agree."""
from __future__ import annotations

from benchrun.analysis.jobs import is_random_weights
from benchrun.analysis.verdicts import Group, Verdict
from benchrun.measure.views import BY_KEY
from benchrun.report.view import show

M = BY_KEY


def _wins(g: Group, axes: list[tuple[str, int]]) -> dict[str, list[tuple[str, int, Verdict]]]:
    wins: dict[str, list] = {lab: [] for lab in g.labels}
    for key, c in axes:
        v = g.verdict(key, c)
        if v.decided and v.best:
            wins[v.best].append((key, c, v))
    return wins


def _win_text(key: str, c: int, v: Verdict, g: Group) -> str:
    m = M[key]
    b, o = g.job(v.best, c), g.job(v.runner_up, c)
    if key == "memory.peak_mib":  # memory reads better as an amount saved than as a ratio
        return f"{m.show(abs(o.value(key) - b.value(key)))} less peak memory ({show(b, m)} vs {show(o, m)})"
    return f"{v.times} {m.better} {m.label} at C{c} ({show(b, m)} vs {show(o, m)})"


def _wins_text(wins: list, g: Group) -> str:
    return "; ".join(_win_text(k, c, v, g) for k, c, v in wins)


def recommendation(g: Group) -> list[str]:
    """Paragraphs: which preset to pick and by how much; when another is still the better pick."""
    if len(g.labels) < 2:
        return [_single_preset(g)]
    speed_axes = [("decode_tok_s.hmean", g.cmax), ("output_throughput_tok_s", g.cmax),
                  ("wall_s", g.cmax), ("ttft_ms.p50", g.cmax)]
    other_axes = [("ttft_ms.p50", g.cmin), ("decode_tok_s.hmean", g.cmin), ("memory.peak_mib", g.cmax),
                  ("energy.tokens_per_joule", g.cmax)]
    speed = _wins(g, speed_axes)
    other = _wins(g, [a for a in other_axes if a not in speed_axes])
    top = max(g.labels, key=lambda lab: len(speed[lab]))  # most speed wins; first label on a tie
    return ([_speed_pick(g, speed_axes, speed, top)] + _other_picks(g, speed, other, top)
            + _quality_caveat(g, top))


def _single_preset(g: Group) -> str:
    """No comparison: where the one preset peaks on throughput, and its TTFT there."""
    lab = g.labels[0]
    grid = g.grid[lab]
    best_c = max(grid, key=lambda c: grid[c].value("output_throughput_tok_s") or 0)
    j = grid[best_c]
    s = (f"Only one preset was measured ({lab}), so there is no comparison to make. Its highest "
         f"aggregate throughput is at C{best_c}: {show(j, M['output_throughput_tok_s'])}, with TTFT "
         f"p50 {show(j, M['ttft_ms.p50'])}.")
    if best_c != min(grid):
        s += f" At C{min(grid)} TTFT p50 is {show(grid[min(grid)], M['ttft_ms.p50'])}."
    return s + " Add a second preset to the sweep (model=a,b) to get a recommendation."


def _speed_pick(g: Group, speed_axes: list, speed: dict, top: str) -> str:
    """The headline: the preset with the most speed wins, or why there is none."""
    n_axes = sum(1 for key, c in speed_axes
                 if sum(1 for lab in g.labels if g.job(lab, c) and g.job(lab, c).value(key) is not None) >= 2)
    if n_axes == 0:
        return f"No speed axis has measurements for two presets at C{g.cmax}: nothing to rank on speed."
    if not speed[top]:
        return ("No preset is faster beyond noise on the speed axes at "
                f"C{g.cmax}; choose on memory, quality or other grounds, or rerun with more repeats "
                "(repeats=N) for tighter intervals.")
    tie = sum(1 for lab in g.labels if len(speed[lab]) == len(speed[top])) > 1
    lead = "No clear pick on speed" if tie else f"**Pick {top}** for speed"
    return f"{lead}: {top} wins {len(speed[top])} of {n_axes} speed axes at C{g.cmax} — {_wins_text(speed[top], g)}."


_WHEN = {"memory.peak_mib": "when memory is tight", "energy.tokens_per_joule": "when energy matters"}


def _other_picks(g: Group, speed: dict, other: dict, top: str) -> list[str]:
    """Per preset: what else the pick wins, and when each other preset is still the better pick."""
    out = []
    for lab in g.labels:
        if lab == top and speed[top]:
            if other[lab]:
                out.append(f"{lab} also wins on {_wins_text(other[lab], g)}.")
            continue
        wins = speed[lab] + other[lab]
        if not wins:
            out.append(f"{lab} wins on no measured axis.")
            continue
        reasons = []
        for k, c, v in wins:
            when = _WHEN.get(k) or (f"when first-token latency at C{c} matters" if k == "ttft_ms.p50"
                                    else f"for {M[k].label} at C{c}")
            reasons.append(f"{when}: {_win_text(k, c, v, g)}")
        out.append(f"{lab} is still the better pick " + "; ".join(reasons) + ".")
    return out


def _quality_caveat(g: Group, top: str) -> list[str]:
    """A warning when another preset passes more quality checks than the speed pick."""
    tallies = {lab: g.tally(lab) for lab in g.labels}
    judged = {lab: t for lab, t in tallies.items() if t[1]}
    if not judged:
        return []
    if all(is_random_weights(g.job(lab, g.cmax).result) for lab in judged):
        return ["All presets with quality checks are random-weight test models: quality is not "
                "meaningful here, this ranks speed only."]
    best_q = max(judged, key=lambda lab: judged[lab][0] / judged[lab][1])
    (bp, bn), (tp, tn) = judged[best_q], judged.get(top, (0, 0))
    if best_q == top or (tn and bp / bn <= tp / tn):
        return []
    theirs = f"{top}'s {tp}/{tn}" if tn else f"{top}, which has no quality checks"
    return [f"Mind quality: {best_q} passes {bp}/{bn} checks against {theirs}; prefer {best_q} when "
            "correctness matters more than speed."]


