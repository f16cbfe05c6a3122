"""Key Findings and the Notes under a report, written from the numbers only.

Contract: key_findings(g, leads) -> (findings, notes), each a list of blocks.Item. At most
MAX_FINDINGS findings, ranked by what decides the choice -- a capacity limit (leads), a win beyond
noise, a failed quality gate or a disturbed measurement, then what merely describes the sweep;
everything else goes to the Notes. A note that repeats over levels or presets is one line naming
where it applies ("at C1-C3 for both presets"). A difference is called a win only when it is beyond
noise (Group.verdict: the same Holm-adjusted verdicts as the Summary's Winner column)."""
from __future__ import annotations

from typing import Iterable, Optional

from benchrun.measure.catalogue import BY_KEY
from benchrun.measure.telemetry import BUSY_PCT
from benchrun.report.blocks import Item
from benchrun.report.compare import compare, method_text, ratio_text
from benchrun.report.data import Job, is_random_weights
from benchrun.report.view import Group, show

M = BY_KEY
MAX_FINDINGS = 6  # the seed answers in five; past six a reader stops reading
NOTE = 99  # rank of a line that only ever goes to the Notes

# Wins, in the order they decide a choice: (metrics merged into one line, rank, the winner's phrase).
WIN_LINES = (
    (("decode_tok_s.hmean",), 1, "decodes {r} faster per request than {o}"),
    (("wall_s", "output_throughput_tok_s"), 1, "handles the load better than {o}"),
    (("ttft_ms.p50",), 2, "has {r} lower TTFT p50 than {o}"),
    (("memory.peak_mib",), 3, "needs {r} less peak memory than {o}"),
    (("energy.tokens_per_joule",), 3, "is {r} more energy-efficient than {o}"),
)
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


def key_findings(g: Group, leads: Iterable[str] = ()) -> tuple[list[Item], list[Item]]:
    """(findings, notes): see the module docstring. `leads`: sentences from outside the group
    (the capacity search's answer), which rank first."""
    ranked: list[tuple[int, Item]] = [(0, Item("Capacity", ": " + s.replace("**", ""))) for s in leads]
    wins, said_ttft = _wins(g)
    ranked += wins + _undecided(g, bool(wins)) + _quality(g) + _scaling(g, said_ttft)
    ranked += [(2, i) for i in sandbox_findings(g)] + _request_notes(g) + _disturbed(g)
    ranked.sort(key=lambda r: r[0])  # stable: within a rank, the order above
    top = [i for r, i in ranked if r < NOTE][:MAX_FINDINGS]
    return top, [i for _, i in ranked if not any(i is t for t in top)]


def _levels_of(key: str, g: Group) -> list[int]:
    """Highest level first: the one a choice under load turns on."""
    both = key in ("decode_tok_s.hmean", "ttft_ms.p50")
    return [g.cmax] + ([g.cmin] if both and g.cmin != g.cmax else [])


def _vals(g: Group, key: str, c: int, v) -> str:
    m = M[key]
    return f"{show(g.job(v.best, c), m)} vs {show(g.job(v.runner_up, c), m)}"


def _wins(g: Group) -> tuple[list[tuple[int, Item]], set]:
    """One line per (win line, winner): its levels and metrics merged, numbers in the text."""
    if len(g.labels) < 2:
        return [], set()
    out, said_ttft = [], set()
    for keys, rank, phrase in WIN_LINES:
        per: dict[str, list] = {}
        for key in keys:
            for c in _levels_of(key, g):
                v = g.verdict(key, c)
                if v.decided and v.runner_up is not None:
                    per.setdefault(v.best, []).append((key, c, v))
        for lab, parts in per.items():
            key, c, v = parts[0]
            if keys[0] == "wall_s":
                what = {"wall_s": "finishes it {r} faster", "output_throughput_tok_s": "delivers {r} more aggregate throughput"}
                text = (phrase.format(o=v.runner_up) + f" at C{c}: " + " and ".join(
                    f"{what[k].format(r=x.times)} ({_vals(g, k, cc, x)})" for k, cc, x in parts))
            elif key == "memory.peak_mib":  # memory reads better as an amount saved than as a ratio
                b, o = g.job(lab, c).value(key), g.job(v.runner_up, c).value(key)
                text = f"needs {M[key].show(abs(o - b))} less peak memory than {v.runner_up} ({_vals(g, key, c, v)})"
            else:
                text = (phrase.format(r=v.times, o=v.runner_up) + f" at C{c} ({_vals(g, key, c, v)})"
                        + "".join(f" and {x.times} at C{cc} ({_vals(g, k, cc, x)})" for k, cc, x in parts[1:]))
            text += _single_run_note(v.delta)
            if key == "ttft_ms.p50":  # the seed's "lower TTFT at C1 but degrades 3.6x under load"
                t = _decided_trend(g, lab, key, "degrades", "improves")
                if t:
                    text += f"; under load its {t}"
                    said_ttft.add(lab)
            out.append((rank, Item(lab, text + ".")))
    return out, said_ttft


def _undecided(g: Group, any_win: bool) -> list[tuple[int, Item]]:
    """The axes with no winner, merged: level within noise / one run each cannot tell."""
    if len(g.labels) < 2:
        return []
    level, unsure, busy = [], [], False
    for keys, _, _ in WIN_LINES:
        for key in keys:
            for c in _levels_of(key, g):
                v = g.verdict(key, c)
                if v.runner_up is None or v.decided or v.delta is None:
                    continue
                if v.cannot_tell:
                    busy |= v.delta.method == "disturbed"
                    unsure.append(f"{M[key].label} at C{c} ({v.best} ahead, {_vals(g, key, c, v)})")
                elif v.delta.change != "same":
                    level.append(f"{M[key].label} at C{c} ({_vals(g, key, c, v)})")
    rank = 1 if not any_win else NOTE
    who = " and ".join(g.labels) if len(g.labels) == 2 else "The presets"
    out = []
    if level:
        out.append((rank, Item(who, "are level on " + ", ".join(level) + " (within noise).")))
    if unsure:
        on = " on a busy machine" if busy else ""
        out.append((rank, Item("No winner", f": one run each{on} cannot tell these gaps from run-to-run noise "
                                            "(run with repeats=N): " + "; ".join(unsure) + ".")))
    return out


def _single_run_note(d) -> str:
    """How a single-run win was decided, in words ('' for repeats)."""
    method = d.method.split("+")[0]
    if method in ("calibrated", "floor"):
        return f" (single run; past the {method_text(d)})"
    if method == "repeats-1":
        return " (one side measured once)"
    return ""


def _ends(g: Group, lab: str) -> Optional[tuple[Job, Job, int, int]]:
    levels = sorted(g.grid[lab])
    if len(levels) < 2:
        return None
    return g.grid[lab][levels[0]], g.grid[lab][levels[-1]], levels[0], levels[-1]


def _decided_trend(g: Group, lab: str, key: str, up: str, down: str) -> Optional[str]:
    e = _ends(g, lab)
    if e is None or e[0].value(key) is None or e[1].value(key) is None:
        return None
    if compare(e[0], e[1], M[key], calibration=g.calibration).beyond_noise is not True:
        return None
    return _trend(*e, key=key, up=up, down=down, calibration=g.calibration)


def _trend(job_lo: Job, job_hi: Job, c_lo: int, c_hi: int, key: str, up: str, down: str,
           calibration: Optional[dict] = None) -> str:
    """'TTFT p50 degrades 3.6x from C1 to C3 (102 -> 369 ms)', or '1.9x higher ... not separable
    from noise with n=8 requests: use repeats)'."""
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


TRENDS = (("ttft_ms.p50", "degrades", "improves"), ("decode_tok_s.hmean", "rises", "drops"),
          ("output_throughput_tok_s", "scales up", "falls"))


def _scaling(g: Group, said_ttft: set) -> list[tuple[int, Item]]:
    """Per preset: how TTFT, decode speed and throughput move from its lowest to highest level
    (a finding when some move is beyond noise, else a note); a TTFT move already said is left out."""
    out = []
    for lab in g.labels:
        e = _ends(g, lab)
        if e is None:
            continue
        parts, decided = [], False
        for key, up, down in TRENDS:
            if key == "ttft_ms.p50" and lab in said_ttft:
                continue
            t = _trend(*e, key=key, up=up, down=down, calibration=g.calibration)
            if t:
                parts.append(t)
                decided |= "not separable" not in t and "stays level" not in t
        if not parts:
            continue
        text = ": " + "; ".join(parts) + "."
        a, b = e[0].value("ttft_ms.p50"), e[1].value("ttft_ms.p50")
        if a and b and b < a and (e[1].result.get("workload") or {}).get("cache_prompt"):
            text += (" Prompt cache is on (cache_prompt=true), so lower TTFT under load may be a "
                     "cache effect, not better batching.")
        out.append((3 if decided else NOTE, Item(lab, text)))
    return out


def _quality(g: Group) -> list[tuple[int, Item]]:
    """A failed quality gate ranks with the wins; presets passing everything share one line."""
    out, clean = [], []
    for lab in g.labels:
        passed, judged = g.tally(lab)
        if not judged:
            continue
        rw = is_random_weights(g.job(lab, g.cmax).result)
        luck = (" — expected: it is a random-weight test model, so its output is noise. Its numbers "
                "measure speed only, never quality.")
        if passed == judged:
            clean.append((lab, judged))
        elif passed == 0:
            out.append((2, Item(f"{lab} fails every quality check", f" ({passed}/{judged} at C{g.cmax})"
                                + (luck if rw else "."))))
        else:
            out.append((2, Item(f"{lab} fails {judged - passed} of {judged} quality checks",
                                f" at C{g.cmax} ({passed}/{judged} PASS)"
                                + (" (Random-weight test model: any pass is luck, not quality.)" if rw else "."))))
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


def _request_notes(g: Group) -> list[tuple[int, Item]]:
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
        t = (m.get("tokens_per_event") or {}).get("mean")
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
                               f"({_ms((m.get('chunk_gap_ms') or {}).get('p50'))} p50 vs ITL "
                               f"{_ms((m.get('itl_ms') or {}).get('p50'))}).")))
    if cut:
        out.append((5, Item("Replies cut at max_tokens", f" {where(cut, g)}: {n_cut} in all (finish_reason length); "
                            "code in them may be incomplete, and checks failing on them say so.")))
    return out


def _disturbed(g: Group) -> list[tuple[int, Item]]:
    """Runs whose machine was busy with other work, whose client was near a full core, or whose
    client said it could not keep up (result.json `client.saturated`, with its reason)."""
    busy, client, sat = [], [], []
    for lab, c, j in _places(g):
        cpu = (j.result.get("telemetry") or {}).get("cpu") or {}
        if (cpu.get("other_pct") or 0) >= BUSY_PCT:
            busy.append((lab, c, cpu["other_pct"]))
        if (cpu.get("client_pct") or 0) >= CLIENT_BUSY_PCT:
            client.append((lab, c, cpu["client_pct"]))
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
                            f"{pct_range([p for _, _, p in client])} of a core; the client may have limited the load.")))
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
