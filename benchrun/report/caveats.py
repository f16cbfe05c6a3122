"""The caveats under a comparison, each kind one line over every place it occurs (where(): "at
C1-C3 for both presets"): quality gates, failed or cut-short requests, disturbed measurements,
code that ran unconfined or not at all; plus the per-task rows the Side Tasks table and chart
read. Each line is (rank, blocks.Item); findings.key_findings ranks them with the wins."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Optional

from benchrun.analysis.jobs import Job, is_random_weights
from benchrun.analysis.verdicts import Group
from benchrun.measure.footprint import BUSY_PCT
from benchrun.report.blocks import Item
from benchrun.results.parts import stat

NOTE = 99  # rank of a line that only ever goes to the Notes


CLIENT_BUSY_PCT = 90.0  # benchrun's event loop is one thread: near a full core it may be the bottleneck


def levels_text(cs: Iterable[int], g: Group) -> str:
    """'C1', 'C1 and C3', 'C1-C3' (a run of three or more of the sweep's levels)."""
    cs = sorted(set(cs))
    idx = [g.levels.index(c) for c in cs if c in g.levels]
    if len(cs) >= 3 and len(idx) == len(cs) and idx == list(range(idx[0], idx[0] + len(cs))):
        return f"C{cs[0]}-C{cs[-1]}"
    names = [f"C{c}" for c in cs]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def where(places: list[tuple[str, int]], g: Group) -> str:
    """'at C1-C3 for both presets', 'at C1 for m', 'at C1 for a, at C2 and C3 for b'."""
    per: dict[str, set] = {}
    for lab, c in places:
        per.setdefault(lab, set()).add(c)
    if len(g.labels) > 1 and set(per) == set(g.labels) and len({frozenset(v) for v in per.values()}) == 1:
        who = "both presets" if len(g.labels) == 2 else f"all {len(g.labels)} presets"
        return f"at {levels_text(next(iter(per.values())), g)} for {who}"
    return ", ".join(f"at {levels_text(cs, g)} for {lab}" for lab, cs in per.items())


def pct_range(xs: list[float]) -> str:
    lo, hi = min(xs), max(xs)
    return f"{lo:.0f}%" if round(lo) == round(hi) else f"{lo:.0f}-{hi:.0f}%"


def quality(g: Group) -> list[tuple[int, Item]]:
    """A failed quality gate ranks with the wins; presets failing everything share one line, and
    so do presets passing everything."""
    out, clean, none = [], [], []
    luck = (" — expected: it is a random-weight test model, so its output is noise. Its numbers "
            "measure speed only, never quality.")
    for lab in g.labels:
        passed, judged = g.tally(lab)
        if not judged:
            continue
        rw = is_random_weights(g.job(lab, g.cmax).result)
        if passed == judged:
            clean.append((lab, judged))
        elif passed == 0:
            none.append((lab, judged, rw))
        else:
            out.append((2, Item(f"{lab} fails {judged - passed} of {judged} quality checks",
                                f" at C{g.cmax} ({passed}/{judged} PASS)"
                                + (" (Random-weight test model: any pass is luck, not quality.)" if rw else "."))))
    if len(none) == 1:
        lab, judged, rw = none[0]
        out.insert(0, (2, Item(f"{lab} fails every quality check",
                               f" (0/{judged} at C{g.cmax})" + (luck if rw else "."))))
    elif none:
        labs = " and ".join(lab for lab, _, _ in none)
        counts = "/".join(dict.fromkeys(f"0/{n}" for _, n, _ in none))
        why = (" — expected: random-weight test models, whose output is noise." if all(r for *_, r in none)
               else ".")
        out.insert(0, (2, Item(f"{labs} fail every quality check", f" ({counts} at C{g.cmax} each){why}")))
    if clean:
        if len(clean) == len(g.labels) > 1 and len({n for _, n in clean}) == 1:
            who = "Both presets pass" if len(clean) == 2 else f"All {len(clean)} presets pass"
            out.append((3, Item(f"{who} all quality checks", f" ({clean[0][1]}/{clean[0][1]} at C{g.cmax} each).")))
        else:
            out += [(3, Item(f"{lab} passes all {n} quality checks", f" at C{g.cmax}.")) for lab, n in clean]
    return out


def _places(g: Group):
    for lab in g.labels:
        for c, j in sorted(g.grid[lab].items()):
            yield lab, c, j


def request_notes(g: Group) -> list[tuple[int, Item]]:
    """Failed, truncated and cut-short requests, each kind one line over every place it occurs."""
    none_ok, failed, causes, tpe, cut = [], [], {}, [], []
    n_bad = n_trunc = n_cut = 0
    for lab, c, j in _places(g):
        m = j.result.get("metrics") or {}
        bad, trunc = m.get("requests_failed") or 0, m.get("requests_truncated") or 0
        if not m.get("requests_ok"):
            none_ok.append((lab, c))
        elif bad or trunc:
            failed.append((lab, c))
            n_bad, n_trunc = n_bad + bad, n_trunc + trunc
        for f in m.get("failures") or []:
            e = causes.setdefault(f.get("cause"), {**f, "count": 0, "at": []})
            e["count"] += f.get("count") or 0
            e["at"].append((lab, c))
        t = stat(m.get("tokens_per_event"), "mean")
        if t and t > 1.05:  # multi-byte text: say why events and tokens differ
            tpe.append((lab, c, t, m))
        if m.get("requests_cut_at_max_tokens"):
            cut.append((lab, c))
            n_cut += m["requests_cut_at_max_tokens"]
    out = []
    if none_ok:
        out.append((2, Item("No request succeeded", f" {where(none_ok, g)}: nothing was measured there.")))
    if failed:
        out.append((2, Item("Requests failed", f" {where(failed, g)}: {n_bad} failed, {n_trunc} truncated in all "
                                               "(excluded from latency figures).")))
    out += [(3, Item("Failure cause", f" {where(e['at'], g)}: {cause_line(e)}")) for e in causes.values()]
    if tpe:
        m = tpe[0][3]
        src = ", ".join(sorted(m.get("token_count_sources") or {})) or "unknown"
        out.append((NOTE, Item("Multi-byte text", f" {where([(a, b) for a, b, _, _ in tpe], g)}: SSE events carried "
                               f"{'-'.join(dict.fromkeys(f'{t:.1f}' for _, _, t, _ in tpe))} tokens on average "
                               f"(counts from: {src}); ITL is per token, the gap between events is chunk_gap_ms "
                               f"({_ms(stat(m.get('chunk_gap_ms'), 'p50'))} p50 vs ITL "
                               f"{_ms(stat(m.get('itl_ms'), 'p50'))}).")))
    if cut:
        out.append((5, Item("Replies cut at max_tokens", f" {where(cut, g)}: {n_cut} in all (finish_reason length); "
                            "code in them may be incomplete, and checks failing on them say so.")))
    return out


def disturbed(g: Group) -> list[tuple[int, Item]]:
    """Runs whose machine was busy with other work, whose client was near a full core, or whose
    client said it could not keep up (result.json `client.saturated`, with its reason)."""
    busy, client, sat = [], [], []
    for lab, c, j in _places(g):
        cpu = j.facts.cpu
        if cpu.other_pct is not None and cpu.other_pct >= BUSY_PCT:
            busy.append((lab, c, cpu.other_pct))
        if cpu.client_pct is not None and cpu.client_pct >= CLIENT_BUSY_PCT:
            client.append((lab, c, cpu.client_pct))
        cl = j.result.get("client") or {}
        if cl.get("saturated"):
            sat.append((lab, c, str(cl.get("why") or "no reason recorded").strip().rstrip(".")))
    out = []
    if busy:
        out.append((2, Item("Busy machine", f" {where([(a, b) for a, b, _ in busy], g)}: other processes used "
                            f"{pct_range([p for _, _, p in busy])} of a core while it was measured; those "
                            "figures may be disturbed (rerun on a quiet machine).")))
    if client:
        out.append((2, Item("Busy client", f" {where([(a, b) for a, b, _ in client], g)}: benchrun itself used "
                            f"{pct_range([p for _, _, p in client])} of a core; the client may have limited "
                            "the load.")))
    if sat:
        why = "; ".join(dict.fromkeys(w for _, _, w in sat))
        out.append((2, Item("Client saturated", f" {where([(a, b) for a, b, _ in sat], g)}: {why}. The load the "
                            "client offered may be below what was asked, so these figures may understate the server.")))
    return out


def _ms(x) -> str:
    return "?" if x is None else f"{x:.2f} ms"


def cause_line(f: dict) -> str:
    """One failure cause from result.json metrics.failures, with what the server said and the fix."""
    sizes = (f" (prompt {f['n_prompt_tokens']} tokens, slot context {f['n_ctx']})"
             if f.get("n_prompt_tokens") is not None and f.get("n_ctx") is not None else "")
    msg = str(f.get("message") or "").splitlines()[0][:160] if f.get("message") else ""
    return (f"{f.get('count')} x {f.get('cause')}{sizes}: \"{msg}\". Fix: {f.get('fix')}.")


# result.json `tasks[].isolation` (checks/sandbox.py); rlimits-only: results before the rename
CONTAINED, UNCONFINED = ("bwrap", "namespaces"), ("unconfined", "rlimits-only")
def sandbox_findings(g: Group) -> list[Item]:
    """Plain words when generated code was not executed, or ran without containment."""
    tasks = [t for lab in g.labels for j in g.grid[lab].values() for t in (j.result.get("tasks") or [])]
    checks = [c for t in tasks for c in t.get("checks") or []]
    not_run = [c for c in checks if c.get("passed") is None]
    out = []
    if not_run:
        why = str(not_run[0].get("reason") or "").removeprefix("not run: ")
        out.append(Item("Generated code was not executed", f": {len(not_run)} check(s) that run code were "
                        f"not run, so their tasks are not judged. {why}"))
    modes = {t.get("isolation") for t in tasks if t.get("isolation") in UNCONFINED}
    if modes:
        out.append(Item("Generated code ran unconfined", " (`workload.sandbox.isolation=unconfined`, an "
                        "explicit opt-in): it ran as benchrun's own user with network access and that "
                        "user's access to files; only resource limits and a timeout applied."))
    return out


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
