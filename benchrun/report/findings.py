"""Key Findings and the Notes under a report, written from the numbers only.

Contract: key_findings(g, leads) -> (findings, notes), each a list of blocks.Item. At most
MAX_FINDINGS findings, ranked by what decides the choice -- a capacity limit (leads), a win beyond
noise, a failed quality gate or a disturbed measurement, then what merely describes the sweep;
everything else goes to the Notes. A note that repeats over levels or presets is one line naming
where it applies ("at C1-C3 for both presets"). A difference is called a win only when it is beyond
noise (Group.verdict: the same Holm-adjusted verdicts as the Summary's Winner column)."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Optional

from benchrun.analysis.compare import method_text, ratio_text
from benchrun.analysis.verdicts import Group
from benchrun.measure.views import BY_KEY
from benchrun.report.blocks import Item
from benchrun.report.caveats import (  # noqa: F401 -- re-exported: markdown, charts and tests read them here
    CONTAINED,
    NOTE,
    cause_line,
    disturbed,
    quality,
    request_notes,
    sandbox_findings,
    task_rows,
    verdict,
)
from benchrun.report.view import show

MAX_FINDINGS = 6  # the seed answers in five; past six a reader stops reading

# Wins, in the order they decide a choice: (metrics merged into one line, rank, the winner's phrase).
WIN_LINES = (
    (("decode_tok_s.hmean",), 1, "decodes {r} faster per request than {o}"),
    (("wall_s", "output_throughput_tok_s"), 1, "handles the load better than {o}"),
    (("ttft_ms.p50",), 2, "has {r} lower TTFT p50 than {o}"),
    (("memory.peak_mib",), 3, "needs {r} less peak memory than {o}"),
    (("energy.tokens_per_joule",), 3, "is {r} more energy-efficient than {o}"),
)
def key_findings(g: Group, leads: Iterable[str] = ()) -> tuple[list[Item], list[Item]]:
    """(findings, notes): see the module docstring. `leads`: sentences from outside the group
    (the capacity search's answer), which rank first."""
    ranked: list[tuple[int, Item]] = [(0, Item("Capacity", ": " + s.replace("**", ""))) for s in leads]
    wins, said_ttft = _wins(g)
    # With no speed or TTFT win, the line saying so leads; otherwise those gaps are notes.
    ranked += wins + _undecided(g, any(r <= 2 for r, _ in wins)) + quality(g) + _scaling(g, said_ttft)
    ranked += [(2, i) for i in sandbox_findings(g)] + request_notes(g) + disturbed(g)
    ranked.sort(key=lambda r: r[0])  # stable: within a rank, the order above
    top = [i for r, i in ranked if r < NOTE][:MAX_FINDINGS]
    return top, [i for _, i in ranked if not any(i is t for t in top)]

SHORT = {"decode_tok_s.hmean": "decode speed", "ttft_ms.p50": "TTFT p50", "wall_s": "total time",
         "output_throughput_tok_s": "aggregate throughput", "memory.peak_mib": "peak memory",
         "energy.tokens_per_joule": "tokens per joule"}


def _levels_of(key: str, g: Group) -> list[int]:
    """Highest level first: the one a choice under load turns on."""
    both = key in ("decode_tok_s.hmean", "ttft_ms.p50")
    return [g.cmax] + ([g.cmin] if both and g.cmin != g.cmax else [])


def _vals(g: Group, key: str, c: int, v) -> str:
    m = BY_KEY[key]
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
                what = {"wall_s": "finishes it {r} faster",
                        "output_throughput_tok_s": "delivers {r} more aggregate throughput"}
                text = (phrase.format(o=v.runner_up) + f" at C{c}: " + " and ".join(
                    f"{what[k].format(r=x.times)} ({_vals(g, k, cc, x)})" for k, cc, x in parts))
            elif key == "memory.peak_mib":  # memory reads better as an amount saved than as a ratio
                b, o = g.job(lab, c).value(key), g.job(v.runner_up, c).value(key)
                saved = BY_KEY[key].show(abs(o - b))
                text = f"needs {saved} less peak memory than {v.runner_up} ({_vals(g, key, c, v)})"
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
    level, busy = [], False
    unsure: dict[str, dict[str, list[int]]] = {}  # leader -> short metric name -> levels
    for keys, _, _ in WIN_LINES:
        for key in keys:
            for c in _levels_of(key, g):
                v = g.verdict(key, c)
                if v.runner_up is None or v.decided or v.delta is None:
                    continue
                if v.cannot_tell:
                    busy |= v.delta.method == "disturbed"
                    unsure.setdefault(v.best, {}).setdefault(SHORT.get(key, BY_KEY[key].label), []).append(c)
                elif v.delta.change != "same":
                    level.append(f"{BY_KEY[key].label} at C{c} ({_vals(g, key, c, v)})")
    rank = 1 if not any_win else NOTE
    who = " and ".join(g.labels) if len(g.labels) == 2 else "The presets"
    out = []
    if level:
        out.append((rank, Item(who, "are level on " + ", ".join(level) + " (within noise).")))
    if unsure:  # who is ahead where, briefly: the figures are in the Summary
        on = " on a busy machine" if busy else ""
        ahead = "; ".join(f"{lab} on " + ", ".join(f"{k} ({', '.join(f'C{c}' for c in sorted(cs))})"
                                                  for k, cs in per.items()) for lab, per in unsure.items())
        out.append((rank, Item("No winner", f": one run each{on} cannot tell these gaps from run-to-run noise "
                                            f"(run with repeats=N). Ahead: {ahead}.")))
    return out


def _single_run_note(d) -> str:
    """How a single-run win was decided, in words ('' for repeats)."""
    method = d.method.split("+")[0]
    if method in ("calibrated", "floor"):
        return f" (single run; past the {method_text(d)})"
    if method == "repeats-1":
        return " (one side measured once)"
    return ""


def _decided_trend(g: Group, lab: str, key: str, up: str, down: str) -> Optional[str]:
    d = g.trend(lab, key)
    return _trend(g, lab, key, up, down) if d is not None and d.beyond_noise is True else None


def _trend(g: Group, lab: str, key: str, up: str, down: str) -> str:
    """Words Group.trend: 'TTFT p50 degrades 3.6x from C1 to C3 (102 -> 369 ms)', or '1.9x
    higher ... not separable from noise with n=8 requests: use repeats)'."""
    e, d = g.ends(lab), g.trend(lab, key)
    if e is None or d is None:
        return ""
    job_lo, job_hi, c_lo, c_hi = e
    m = BY_KEY[key]
    a, b = job_lo.value(key), job_hi.value(key)
    vals = f"({m.show(a)} → {m.show(b)})"
    if a == b:
        return f"{m.label} stays level from C{c_lo} to C{c_hi} {vals}"
    if d.beyond_noise is not True:
        # Say what is known -- the size of the move -- and that it cannot be told from noise;
        # never "level", which would claim no change.
        n = min(int(j.facts.metrics.get("requests_ok") or 0) for j in (job_lo, job_hi))
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
        e = g.ends(lab)
        if e is None:
            continue
        parts, decided = [], False
        for key, up, down in TRENDS:
            if key == "ttft_ms.p50" and lab in said_ttft:
                continue
            t = _trend(g, lab, key, up, down)
            if t:
                parts.append(t)
                decided |= "not separable" not in t and "stays level" not in t
        if not parts:
            continue
        text = ": " + "; ".join(parts) + "."
        a, b = e[0].value("ttft_ms.p50"), e[1].value("ttft_ms.p50")
        if a and b and b < a and e[1].facts.workload.get("cache_prompt"):
            text += (" Prompt cache is on (cache_prompt=true), so lower TTFT under load may be a "
                     "cache effect, not better batching.")
        out.append((3 if decided else NOTE, Item(lab, text)))
    return out
