"""Key Findings and the Recommendation, written from the numbers only. A difference is called a
win only when it is beyond noise (or, measured once, at least 5%); otherwise it is said to be
within noise."""
from __future__ import annotations

from typing import Optional

from .compare import compare
from .data import BY_KEY, Job, is_random_weights
from .view import Group, Verdict, rank, show

M = BY_KEY


def task_tally(job: Optional[Job]) -> tuple[int, int]:
    """(passed, judged) over the job's tasks with checks."""
    judged = [t for t in (job.result.get("tasks") or [])] if job else []
    judged = [t for t in judged if t.get("passed") is not None]
    return sum(1 for t in judged if t["passed"]), len(judged)


def _comparison(g: Group, key: str, c: int, verb_hi: str, verb_lo: str) -> Optional[str]:
    """One sentence comparing the presets on one metric at level c."""
    m = M[key]
    cands = {lab: g.job(lab, c) for lab in g.labels if g.job(lab, c) is not None}
    v = rank(cands, m)
    if v.runner_up is None:
        return None
    best, other = cands[v.best], cands[v.runner_up]
    vals = f"{show(best, m)} vs {show(other, m)}"
    if not v.decided:
        why = "within noise" if v.delta.beyond_noise is False else "less than 5% apart, single run"
        return f"{v.best} and {v.runner_up} are level on {m.label} at C{c} ({vals}; {why})."
    verb = verb_hi if m.better == "higher" else verb_lo
    extra = "" if v.delta.beyond_noise else " (single run, no spread estimate)"
    others = [lab for lab in cands if lab not in (v.best, v.runner_up)]
    tail = ""
    if others:
        tail = "; " + ", ".join(f"{lab}: {show(cands[lab], m)}" for lab in others)
    r = f"{v.ratio:.1f}x" if v.ratio else "far"  # no ratio when the runner-up measured 0
    return f"**{v.best}** {verb.format(r=r)} than {v.runner_up} at C{c}: {vals}{extra}{tail}."


def _trend(job_lo: Job, job_hi: Job, key: str, c_lo: int, c_hi: int, up: str, down: str) -> str:
    """'degrades 3.6x from C1 to C3 (102 -> 369 ms)', or 'stays within noise ...'."""
    m = M[key]
    a, b = job_lo.value(key), job_hi.value(key)
    if a is None or b is None:
        return ""
    d = compare(job_lo, job_hi, m)
    vals = f"({m.show(a)} → {m.show(b)})"
    if d.beyond_noise is False or (d.beyond_noise is None and abs(d.rel or 0) < 0.05) or a == b:
        return f"{m.label} stays level from C{c_lo} to C{c_hi} {vals}"
    hi, lo = max(a, b), min(a, b)
    r = f"{hi / lo:.1f}x" if lo > 0 else "∞x"
    word = up if b > a else down
    note = "" if d.beyond_noise else ", single run, no spread estimate"
    return f"{m.label} {word} {r} from C{c_lo} to C{c_hi} {vals[:-1]}{note})"


def key_findings(g: Group) -> list[str]:
    out: list[str] = []
    cmin, cmax = g.cmin, g.cmax
    if len(g.labels) >= 2:
        dec, ttft = ("decodes {r} faster per request", ""), ("", "has {r} lower TTFT p50")
        axes = ([("decode_tok_s.mean", cmin, *dec)] if cmin != cmax else []) + [
            ("decode_tok_s.mean", cmax, *dec),
            ("output_throughput_tok_s", cmax, "delivers {r} more aggregate throughput", ""),
            ("wall_s", cmax, "", "finishes the load {r} faster")] + (
            [("ttft_ms.p50", cmin, *ttft)] if cmin != cmax else []) + [
            ("ttft_ms.p50", cmax, *ttft),
            ("memory.peak_mib", cmax, "", "needs {r} less peak memory"),
            ("energy.tokens_per_joule", cmax, "is {r} more energy-efficient", "")]
        for key, c, hi, lo in axes:
            s = _comparison(g, key, c, hi, lo)
            if s:
                out.append(s)
    if len(g.levels) >= 2:
        for lab in g.labels:
            levels = sorted(g.grid[lab])
            if len(levels) < 2:
                continue
            lo_c, hi_c = levels[0], levels[-1]
            jl, jh = g.grid[lab][lo_c], g.grid[lab][hi_c]
            parts = [_trend(jl, jh, "ttft_ms.p50", lo_c, hi_c, "degrades", "improves"),
                     _trend(jl, jh, "decode_tok_s.mean", lo_c, hi_c, "rises", "drops"),
                     _trend(jl, jh, "output_throughput_tok_s", lo_c, hi_c, "scales up", "falls")]
            parts = [p for p in parts if p]
            if parts:
                s = f"**{lab}**: " + "; ".join(parts) + "."
                a, b = jl.value("ttft_ms.p50"), jh.value("ttft_ms.p50")
                if a and b and b < a and (jh.result.get("workload") or {}).get("cache_prompt"):
                    s += (" Prompt cache is on (cache_prompt=true), so lower TTFT under load may be a "
                          "cache effect, not better batching.")
                out.append(s)
    out += quality_findings(g)
    for lab in g.labels:
        for c, j in sorted(g.grid[lab].items()):
            m = j.result.get("metrics") or {}
            bad, trunc = m.get("requests_failed") or 0, m.get("requests_truncated") or 0
            if not m.get("requests_ok"):
                out.append(f"{lab} at C{c}: no request succeeded ({bad} failed, {trunc} truncated): "
                           f"nothing was measured there.")
            elif bad or trunc:
                out.append(f"{lab} at C{c}: {bad} request(s) failed, {trunc} truncated "
                           f"(excluded from latency figures).")
    return out


def quality_findings(g: Group) -> list[str]:
    out = []
    for lab in g.labels:
        j = g.job(lab, g.cmax)
        passed, judged = task_tally(j)
        if not judged:
            continue
        rw = is_random_weights(j.result)
        if passed == 0:
            s = f"**{lab} fails every quality check** ({passed}/{judged} at C{g.cmax})"
            s += (" — expected: it is a random-weight test model, so its output is noise. Its numbers "
                  "measure speed only, never quality." if rw else ".")
        elif passed == judged:
            s = f"{lab} passes all {judged} quality checks at C{g.cmax}."
        else:
            s = f"{lab} passes {passed}/{judged} quality checks at C{g.cmax}."
            if rw:
                s += " (Random-weight test model: any pass is luck, not quality.)"
        out.append(s)
    return out


def _wins(g: Group, axes: list[tuple[str, int]]) -> dict[str, list[tuple[str, int, Verdict]]]:
    wins: dict[str, list] = {lab: [] for lab in g.labels}
    for key, c in axes:
        cands = {lab: g.job(lab, c) for lab in g.labels if g.job(lab, c) is not None}
        v = rank(cands, M[key])
        if v.decided and v.best:
            wins[v.best].append((key, c, v))
    return wins


def _win_text(key: str, c: int, v: Verdict, g: Group) -> str:
    m = M[key]
    b, o = g.job(v.best, c), g.job(v.runner_up, c)
    if key == "memory.peak_mib":  # memory reads better as an amount saved than as a ratio
        return f"{m.show(abs(o.value(key) - b.value(key)))} less peak memory ({show(b, m)} vs {show(o, m)})"
    word = {"higher": "higher", "lower": "lower"}[m.better]
    r = f"{v.ratio:.1f}x " if v.ratio else ""
    return f"{r}{word} {m.label} at C{c} ({show(b, m)} vs {show(o, m)})"


def recommendation(g: Group) -> list[str]:
    """Paragraphs: which preset to pick and by how much; when another is still the better pick."""
    if len(g.labels) < 2:
        lab = g.labels[0]
        best_c = max(g.grid[lab], key=lambda c: g.grid[lab][c].value("output_throughput_tok_s") or 0)
        j = g.grid[lab][best_c]
        s = (f"Only one preset was measured ({lab}), so there is no comparison to make. Its highest "
             f"aggregate throughput is at C{best_c}: {show(j, M['output_throughput_tok_s'])}, with TTFT "
             f"p50 {show(j, M['ttft_ms.p50'])}.")
        lo = g.grid[lab][min(g.grid[lab])]
        if best_c != min(g.grid[lab]):
            s += f" At C{min(g.grid[lab])} TTFT p50 is {show(lo, M['ttft_ms.p50'])}."
        return [s + " Add a second preset to the sweep (model=a,b) to get a recommendation."]
    speed_axes = [("decode_tok_s.mean", g.cmax), ("output_throughput_tok_s", g.cmax),
                  ("wall_s", g.cmax), ("ttft_ms.p50", g.cmax)]
    other_axes = [("ttft_ms.p50", g.cmin), ("decode_tok_s.mean", g.cmin), ("memory.peak_mib", g.cmax),
                  ("energy.tokens_per_joule", g.cmax)]
    other_axes = [a for a in other_axes if a not in speed_axes]
    speed = _wins(g, speed_axes)
    other = _wins(g, other_axes)
    n_axes = sum(1 for key, c in speed_axes
                 if sum(1 for lab in g.labels if g.job(lab, c) and g.job(lab, c).value(key) is not None) >= 2)
    ranked = sorted(g.labels, key=lambda lab: len(speed[lab]), reverse=True)
    top = ranked[0]
    out = []
    if n_axes == 0:
        out.append(f"No speed axis has measurements for two presets at C{g.cmax}: nothing to rank on speed.")
    elif not speed[top]:
        out.append("No preset is faster beyond noise on the speed axes at "
                   f"C{g.cmax}; choose on memory, quality or other grounds, or rerun with more repeats "
                   "(repeats=N) for tighter intervals.")
    else:
        tie = len(ranked) > 1 and len(speed[ranked[1]]) == len(speed[top])
        lead = "No clear pick on speed" if tie else f"**Pick {top}** for speed"
        out.append(f"{lead}: {top} wins {len(speed[top])} of {n_axes} speed axes at C{g.cmax} — "
                   + "; ".join(_win_text(k, c, v, g) for k, c, v in speed[top]) + ".")
    for lab in g.labels:
        if lab == top and speed[top]:
            wins = other[lab]
            if wins:
                out.append(f"{lab} also wins on " + "; ".join(_win_text(k, c, v, g) for k, c, v in wins) + ".")
            continue
        wins = speed[lab] + other[lab]
        if not wins:
            out.append(f"{lab} wins on no measured axis.")
            continue
        reasons = []
        for k, c, v in wins:
            when = {"memory.peak_mib": "when memory is tight", "energy.tokens_per_joule": "when energy matters",
                    "ttft_ms.p50": f"when first-token latency at C{c} matters"}.get(k, f"for {M[k].label} at C{c}")
            reasons.append(f"{when}: {_win_text(k, c, v, g)}")
        out.append(f"{lab} is still the better pick " + "; ".join(reasons) + ".")
    tallies = {lab: task_tally(g.job(lab, g.cmax)) for lab in g.labels}
    judged = {lab: t for lab, t in tallies.items() if t[1]}
    if judged:
        if all(is_random_weights(g.job(lab, g.cmax).result) for lab in judged):
            out.append("All presets with quality checks are random-weight test models: quality is not "
                       "meaningful here, this ranks speed only.")
        else:
            best_q = max(judged, key=lambda lab: judged[lab][0] / judged[lab][1])
            rate = judged[best_q][0] / judged[best_q][1]
            tp, tn = judged.get(top, (0, 0))
            if best_q != top and (not tn or rate > tp / tn):
                theirs = f"{top}'s {tp}/{tn}" if tn else f"{top}, which has no quality checks"
                out.append(f"Mind quality: {best_q} passes {judged[best_q][0]}/{judged[best_q][1]} checks "
                           f"against {theirs}; prefer {best_q} when correctness matters more than speed.")
    return out


def task_rows(job: Optional[Job]) -> dict[str, dict]:
    """Per agent at one job: mean latency over repeats and its PASS/FAIL across repeats."""
    out: dict[str, dict] = {}
    for t in (job.result.get("tasks") or []) if job else []:
        name = " ".join(str(x) for x in (t.get("agent"), t.get("title")) if x)
        r = out.setdefault(name, {"role": t.get("role"), "lat": [], "passed": [], "checks": []})
        if t.get("latency_ms") is not None:
            r["lat"].append(float(t["latency_ms"]))
        if t.get("passed") is not None:
            r["passed"].append(bool(t["passed"]))
        r["checks"] += t.get("checks") or []
    return out


def verdict(passed: list[bool]) -> str:
    if not passed:
        return "no checks"
    k = sum(passed)
    if k == len(passed):
        return "PASS"
    if k == 0:
        return "FAIL"
    return f"{k}/{len(passed)} PASS"
