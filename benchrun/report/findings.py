"""Key Findings and the Recommendation, written from the numbers only. A difference is called a
win only when it is beyond noise (Group.verdict: the same Holm-adjusted verdicts as the
Summary's Winner column); otherwise it is said to be within noise, or -- one run each, no
calibration, a gap under the assumed floor -- that one run cannot tell."""
from __future__ import annotations

from typing import Optional

from benchrun.measure.catalogue import BY_KEY
from benchrun.measure.telemetry import BUSY_PCT
from benchrun.report.compare import compare, method_text, ratio_text
from benchrun.report.data import Job, is_random_weights
from benchrun.report.view import Group, Verdict, show

M = BY_KEY

# Preset-vs-preset findings, in order: (metric, also at the lowest level?, the winner's phrase).
FINDING_AXES = (
    ("decode_tok_s.hmean", True, "decodes {r} faster per request"),
    ("output_throughput_tok_s", False, "delivers {r} more aggregate throughput"),
    ("wall_s", False, "finishes the load {r} faster"),
    ("ttft_ms.p50", True, "has {r} lower TTFT p50"),
    ("memory.peak_mib", False, "needs {r} less peak memory"),
    ("energy.tokens_per_joule", False, "is {r} more energy-efficient"),
)


def _comparison(g: Group, key: str, c: int, phrase: str) -> Optional[str]:
    """One sentence comparing the presets on one metric at level c."""
    m = M[key]
    cands = g.cands(c)
    v = g.verdict(key, c)
    if v.runner_up is None:
        return None
    best, other = cands[v.best], cands[v.runner_up]
    vals = f"{show(best, m)} vs {show(other, m)}"
    if v.cannot_tell:
        busy = " on a busy machine" if v.delta.method == "disturbed" else ""
        return (f"{v.best} leads {v.runner_up} on {m.label} at C{c} ({vals}), but one run each{busy} cannot "
                f"tell this gap from run-to-run noise: no winner (use repeats=N).")
    if not v.decided:
        return f"{v.best} and {v.runner_up} are level on {m.label} at C{c} ({vals}; within noise)."
    extra = _single_run_note(v.delta)
    others = [lab for lab in cands if lab not in (v.best, v.runner_up)]
    tail = ""
    if others:
        tail = "; " + ", ".join(f"{lab}: {show(cands[lab], m)}" for lab in others)
    return f"**{v.best}** {phrase.format(r=v.times)} than {v.runner_up} at C{c}: {vals}{extra}{tail}."


def _single_run_note(d) -> str:
    """How a single-run win was decided, in words ('' for repeats)."""
    method = d.method.split("+")[0]
    if method in ("calibrated", "floor"):
        return f" (single run; past the {method_text(d)})"
    if method == "repeats-1":
        return " (one side measured once)"
    return ""


def _trend(job_lo: Job, job_hi: Job, key: str, c_lo: int, c_hi: int, up: str, down: str,
           calibration: Optional[dict] = None) -> str:
    """'degrades 3.6x from C1 to C3 (102 -> 369 ms)', or '1.9x higher ... not separable from
    noise with n=8 requests: use repeats'."""
    m = M[key]
    a, b = job_lo.value(key), job_hi.value(key)
    if a is None or b is None:
        return ""
    d = compare(job_lo, job_hi, m, calibration=calibration)
    vals = f"({m.show(a)} → {m.show(b)})"
    if a == b:
        return f"{m.label} stays level from C{c_lo} to C{c_hi} {vals}"
    if d.beyond_noise is not True:
        # Say what is known -- the size of the move -- and that it cannot be told from noise;
        # never "level", which would claim no change.
        n = min(int((j.result.get("metrics") or {}).get("requests_ok") or 0) for j in (job_lo, job_hi))
        why = "one run each" if d.beyond_noise is None else f"n={n} requests"
        r = max(abs(a), abs(b)) / max(min(abs(a), abs(b)), 1e-12)
        size = f"{r - 1:.0%}" if r < 1.1 else ratio_text(a, b)
        return (f"{m.label} {size} {'higher' if b > a else 'lower'} from C{c_lo} to C{c_hi} "
                f"{vals[:-1]}; not separable from noise with {why}: use repeats)")
    word = up if b > a else down
    note = _single_run_note(d).replace(" (", ", ").rstrip(")")
    return f"{m.label} {word} {ratio_text(a, b)} from C{c_lo} to C{c_hi} {vals[:-1]}{note})"


def key_findings(g: Group) -> list[str]:
    return (_preset_comparisons(g) + _scaling(g) + quality_findings(g) + sandbox_findings(g) + _request_failures(g)
            + _disturbed_runs(g))


def _preset_comparisons(g: Group) -> list[str]:
    """Each FINDING_AXES metric at the highest level (and the lowest where marked)."""
    if len(g.labels) < 2:
        return []
    out = []
    for key, both_ends, phrase in FINDING_AXES:
        for c in ([g.cmin] if both_ends and g.cmin != g.cmax else []) + [g.cmax]:
            s = _comparison(g, key, c, phrase)
            if s:
                out.append(s)
    return out


def _scaling(g: Group) -> list[str]:
    """Per preset: how TTFT, decode speed and throughput move from its lowest to highest level."""
    out = []
    for lab in g.labels:
        levels = sorted(g.grid[lab])
        if len(levels) < 2:
            continue
        lo_c, hi_c = levels[0], levels[-1]
        jl, jh = g.grid[lab][lo_c], g.grid[lab][hi_c]
        cal = g.calibration
        parts = [_trend(jl, jh, "ttft_ms.p50", lo_c, hi_c, "degrades", "improves", cal),
                 _trend(jl, jh, "decode_tok_s.hmean", lo_c, hi_c, "rises", "drops", cal),
                 _trend(jl, jh, "output_throughput_tok_s", lo_c, hi_c, "scales up", "falls", cal)]
        parts = [p for p in parts if p]
        if not parts:
            continue
        s = f"**{lab}**: " + "; ".join(parts) + "."
        a, b = jl.value("ttft_ms.p50"), jh.value("ttft_ms.p50")
        if a and b and b < a and (jh.result.get("workload") or {}).get("cache_prompt"):
            s += (" Prompt cache is on (cache_prompt=true), so lower TTFT under load may be a "
                  "cache effect, not better batching.")
        out.append(s)
    return out


def _request_failures(g: Group) -> list[str]:
    """Jobs where requests failed or were truncated (or none succeeded)."""
    out = []
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
            out += [f"{lab} at C{c}: {cause_line(f)}" for f in m.get("failures") or []]
            tpe = (m.get("tokens_per_event") or {}).get("mean")
            if tpe and tpe > 1.05:  # multi-byte text: say why events and tokens differ
                src = ", ".join(sorted(m.get("token_count_sources") or {})) or "unknown"
                out.append(f"{lab} at C{c}: SSE events carried {tpe:.1f} tokens on average (multi-byte text; "
                           f"counts from: {src}); ITL is per token, the gap between events is chunk_gap_ms "
                           f"({_ms((m.get('chunk_gap_ms') or {}).get('p50'))} p50 vs ITL "
                           f"{_ms((m.get('itl_ms') or {}).get('p50'))}).")
            cut = m.get("requests_cut_at_max_tokens") or 0
            if cut:
                out.append(f"{lab} at C{c}: {cut} reply(ies) stopped at max_tokens (finish_reason length); "
                           f"code in them may be incomplete, and checks failing on them say so.")
    return out


def _ms(x) -> str:
    return "?" if x is None else f"{x:.2f} ms"


def cause_line(f: dict) -> str:
    """One failure cause from result.json metrics.failures, with what the server said and the fix."""
    sizes = (f" (prompt {f['n_prompt_tokens']} tokens, slot context {f['n_ctx']})"
             if f.get("n_prompt_tokens") is not None and f.get("n_ctx") is not None else "")
    msg = str(f.get("message") or "").splitlines()[0][:160] if f.get("message") else ""
    return (f"{f.get('count')} x {f.get('cause')}{sizes}: \"{msg}\". Fix: {f.get('fix')}.")


CLIENT_BUSY_PCT = 90.0  # benchrun's event loop is one thread: near a full core it may be the bottleneck


def _disturbed_runs(g: Group) -> list[str]:
    """Runs whose machine was busy with other work, or whose client was near a full core."""
    out = []
    for lab in g.labels:
        for c, j in sorted(g.grid[lab].items()):
            cpu = (j.result.get("telemetry") or {}).get("cpu") or {}
            if (cpu.get("other_pct") or 0) >= BUSY_PCT:
                out.append(f"{lab} at C{c}: other processes used {cpu['other_pct']:.0f}% of a core while "
                           f"it was measured; its figures may be disturbed (rerun on a quiet machine).")
            if (cpu.get("client_pct") or 0) >= CLIENT_BUSY_PCT:
                out.append(f"{lab} at C{c}: benchrun itself used {cpu['client_pct']:.0f}% of a core; "
                           f"the client may have limited the load.")
    return out


def quality_findings(g: Group) -> list[str]:
    out = []
    for lab in g.labels:
        passed, judged = g.tally(lab)
        if not judged:
            continue
        rw = is_random_weights(g.job(lab, g.cmax).result)
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


# result.json `tasks[].isolation` (checks/sandbox.py); rlimits-only: results before the rename
CONTAINED, UNCONFINED = ("bwrap", "namespaces"), ("unconfined", "rlimits-only")


def sandbox_findings(g: Group) -> list[str]:
    """Plain words when generated code was not executed, or ran without containment."""
    tasks = [t for lab in g.labels for j in g.grid[lab].values() for t in (j.result.get("tasks") or [])]
    checks = [c for t in tasks for c in t.get("checks") or []]
    not_run = [c for c in checks if c.get("passed") is None]
    out = []
    if not_run:
        why = str(not_run[0].get("reason") or "").removeprefix("not run: ")
        out.append(f"**Generated code was not executed**: {len(not_run)} check(s) that run code were "
                   f"not run, so their tasks are not judged. {why}")
    modes = {t.get("isolation") for t in tasks if t.get("isolation") in UNCONFINED}
    if modes:
        out.append("**Generated code ran unconfined** (`workload.sandbox.isolation=unconfined`, an "
                   "explicit opt-in): it ran as benchrun's own user with network access and that "
                   "user's access to files; only resource limits and a timeout applied.")
    return out


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


def task_rows(job: Optional[Job]) -> dict[str, dict]:
    """Per agent at one job: mean latency over repeats and its PASS/FAIL across repeats."""
    out: dict[str, dict] = {}
    for t in (job.result.get("tasks") or []) if job else []:
        name = " ".join(str(x) for x in (t.get("agent"), t.get("title")) if x)
        r = out.setdefault(name, {"role": t.get("role"), "lat": [], "passed": [], "checks": [], "not_run": 0})
        if t.get("latency_ms") is not None:
            r["lat"].append(float(t["latency_ms"]))
        if t.get("passed") is not None:
            r["passed"].append(bool(t["passed"]))
        elif any(c.get("passed") is None for c in t.get("checks") or []):
            r["not_run"] += 1
        r["checks"] += t.get("checks") or []
    return out


def verdict(row: dict) -> str:
    """PASS / FAIL / k/n PASS over repeats of one task row (task_rows)."""
    passed = row["passed"]
    if not passed:
        return "not run" if row.get("not_run") else "no checks"
    k = sum(passed)
    if k == len(passed):
        return "PASS"
    if k == 0:
        return "FAIL"
    return f"{k}/{len(passed)} PASS"
