"""Per-turn prompt-cache figures for multi-turn agents, from llama.cpp's own `timings`.

For every measured turn: TTFT, timings.cache_n (prompt tokens taken from the slot's KV cache),
prompt_n (processed) and the cache share cache_n / (cache_n + prompt_n). A later turn (k >= 2)
*misses* when less than HIT_SHARE of the previous turn's whole prompt (its cache_n + prompt_n,
the history this turn starts with) came from the cache. Each miss gets one reason:

- "cache_prompt off": the request asked for no reuse (workload.cache_prompt=false).
- "agents outnumbered slots": more agents in flight than the server has slots (model.parallel),
  so another agent took this agent's slot between its turns and the history was evicted.
- "prefix changed": slots were enough, yet the history did not match what the slot holds (the
  chat template re-rendered earlier turns, e.g. dropping reasoning, or the prompt differed).

First turns are not judged (there is no history of the agent's own to reuse). A server that does
not report cache_n (not llama.cpp) gets None ("not reported"), never 0 or a miss.

`turn_table` is what result.json's `workload.cache_turns` holds: one row per turn index (TTFT
p50, cache share, misses by reason) and one plain sentence saying why turns missed."""
from __future__ import annotations

from typing import Optional

from benchrun.measure.metrics import cache_counts, ttft_ms

HIT_SHARE = 0.5  # a hit reuses about all of the history; an evicted slot keeps at most a shared system prompt
OFF, SLOTS, PREFIX = "cache_prompt off", "agents outnumbered slots", "prefix changed"


def turn_rows(recs: list, cache_on: dict[int, bool], in_flight: int, slots: Optional[int]) -> list[dict]:
    """One row per ok record of one agent copy in one repeat (recs sorted by turn);
    cache_on: turn -> whether that turn sent cache_prompt=true."""
    rows, prev = [], None
    for r in recs:
        if not r.ok:
            prev = None  # a failed turn: the next one has no measured history to be judged against
            continue
        k = int(r.tags["turn"])
        c = cache_counts(r)
        t = ttft_ms(r)
        row = {"turn": k, "ttft_ms": None if t is None else round(t, 3),
               "cache_n": None if c is None else c[0], "prompt_n": None if c is None else c[1],
               "cache_share": None if c is None or sum(c) == 0 else round(c[0] / sum(c), 4), "miss": None}
        if c is not None and prev is not None and k > 1:
            history = prev[0] + prev[1]
            row["history_tokens"] = history
            if c[0] < HIT_SHARE * history:
                row["miss"] = (OFF if not cache_on.get(k, True) else
                               SLOTS if slots is not None and in_flight > slots else PREFIX)
        rows.append(row)
        prev = c
    return rows


def _p50(xs: list[float]) -> Optional[float]:
    xs = sorted(xs)
    if not xs:
        return None
    m = len(xs) // 2
    return round(xs[m] if len(xs) % 2 else (xs[m - 1] + xs[m]) / 2, 3)


def turn_table(rows: list[dict], in_flight: int, slots: Optional[int], cache_prompt: bool) -> dict:
    """rows of every agent copy and repeat -> the per-turn table and its sentence."""
    by: dict[int, list[dict]] = {}
    for r in rows:
        by.setdefault(r["turn"], []).append(r)
    turns, reasons = [], {}
    judged_all = misses_all = 0
    reported = any(r["cache_n"] is not None for r in rows)
    for k in sorted(by):
        rs = by[k]
        counted = [r for r in rs if r["cache_n"] is not None]
        total = sum(r["cache_n"] + r["prompt_n"] for r in counted)
        judged = [r for r in counted if "history_tokens" in r]
        missed = [r for r in judged if r["miss"]]
        why: dict[str, int] = {}
        for r in missed:
            why[r["miss"]] = why.get(r["miss"], 0) + 1
            reasons[r["miss"]] = reasons.get(r["miss"], 0) + 1
        judged_all += len(judged)
        misses_all += len(missed)
        ttfts = [r["ttft_ms"] for r in rs if r["ttft_ms"] is not None]
        turns.append({"turn": k, "requests": len(rs), "ttft_ms_p50": _p50(ttfts),
                      "prompt_tokens_mean": round(total / len(counted), 1) if counted else None,
                      "cache_share": round(sum(r["cache_n"] for r in counted) / total, 4) if total else None,
                      "judged": len(judged) if reported else None, "misses": len(missed) if reported else None,
                      "miss_reasons": why})
    return {"slots": slots, "agents_in_flight": in_flight, "cache_prompt": cache_prompt, "turns": turns,
            "judged": judged_all if reported else None, "misses": misses_all if reported else None,
            "miss_reasons": reasons, "note": note(reported, judged_all, misses_all, reasons, in_flight, slots)}


def note(reported: bool, judged: int, misses: int, reasons: dict, in_flight: int, slots: Optional[int]) -> str:
    """Why later turns missed the prompt cache, in one or two plain sentences."""
    if not reported:
        return "The server does not report timings.cache_n (not llama.cpp): cache figures not reported."
    if not judged:
        return "No later turn to judge: every agent ran one turn, or later turns failed."
    if not misses and slots is not None and in_flight > slots:
        return (f"All {judged} later turns found their history in the prompt cache although {in_flight} agents "
                f"outnumbered {slots} slots: llama.cpp restores an evicted slot's prompt from its host-memory "
                f"cache (--cache-ram; model.cache_ram_mib=0 turns it off).")
    if not misses:
        return f"All {judged} later turns found their history in the prompt cache."
    parts = []
    if reasons.get(SLOTS):
        parts.append(f"{reasons[SLOTS]} of {judged} later turns missed the prompt cache because {in_flight} agents "
                     f"outnumbered {slots} slots (model.parallel={slots}): another agent took the slot between "
                     f"turns, so the whole history was prefilled again")
    if reasons.get(PREFIX):
        parts.append(f"{reasons[PREFIX]} of {judged} later turns missed the prompt cache although slots were "
                     f"enough: the prefix changed (the chat template re-rendered earlier turns, or the prompt "
                     f"differed)")
    if reasons.get(OFF):
        parts.append(f"{reasons[OFF]} of {judged} later turns prefilled their whole history because "
                     f"cache_prompt was off")
    return "; ".join(parts) + "."
