"""The report's "Prompt cache per turn" section, for multi-turn agentic jobs: per preset, level
and turn index the TTFT p50, mean prompt tokens, the share that came from llama.cpp's prompt cache
(timings.cache_n / (cache_n + prompt_n)) and the later turns that missed it, then one plain
sentence per job saying why (agents outnumbered slots, the prefix changed, cache_prompt off).
Read from result.json's workload.cache_turns (benchrun/workloads/agentic_cache.py writes it; for
interleaved rounds merged into one job, rebuilt from every round's tasks[].cache);
a server that does not report cache_n reads "not reported", never 0."""
from __future__ import annotations

from benchrun.analysis.jobs import Job
from benchrun.report.blocks import Block, Heading, Para, Table


def _table_of(j: Job) -> dict | None:
    t = j.facts.workload.get("cache_turns")
    if not (j.ok and isinstance(t, dict) and t.get("turns")):
        return None
    if j.parts:  # interleaved rounds merged into one job: its table is every round's turns, not the first's
        from benchrun.workloads.agentic_cache import turn_table

        rows = [r for task in j.result.get("tasks") or [] for r in task.get("cache") or []]
        t = turn_table(rows, t.get("agents_in_flight") or 0, t.get("slots"), bool(t.get("cache_prompt")))
    return t


def _ms(v) -> str:
    return "-" if v is None else f"{v:,.0f} ms"


def blocks(jobs: list[Job]) -> list[Block]:
    tabled = [(j, t) for j in jobs if (t := _table_of(j)) is not None]
    if not any(len(t["turns"]) > 1 for _, t in tabled):
        return []  # single-turn agents only: nothing a cache table would say
    tabled.sort(key=lambda jt: (jt[0].model, bool(jt[1].get("cache_prompt")) is False, jt[0].concurrency))
    rows, notes = [], []
    for j, t in tabled:
        level = f"C{j.concurrency}" + ("" if t.get("cache_prompt") else ", cache off")
        slots = "-" if t.get("slots") is None else str(t["slots"])
        for r in t["turns"]:
            share = "not reported" if r.get("cache_share") is None else f"{r['cache_share']:.0%}"
            misses = ("not reported" if r.get("misses") is None else "-" if not r.get("judged")
                      else f"{r['misses']} of {r['judged']}")
            tokens = "-" if r.get("prompt_tokens_mean") is None else f"{r['prompt_tokens_mean']:,.0f}"
            rows.append([j.model, level, f"{t.get('agents_in_flight')} / {slots}", str(r["turn"]), str(r["requests"]),
                         _ms(r.get("ttft_ms_p50")), tokens, share, misses])
        n = t.get("agents_in_flight")
        notes.append(f"**{j.model} {level}** ({n} agent{'' if n == 1 else 's'}, "
                     f"{slots} slot{'' if slots == '1' else 's'}): {t.get('note', '')}")
    return [Heading(2, "Prompt cache per turn"), Para(
        "Each agent's turn k is sent with its whole history; with `cache_prompt` on, llama.cpp reuses the "
        "slot's KV cache for the part it already holds and prefills only the rest. Cache share = prompt tokens "
        "from the cache over all prompt tokens (the server's own `timings.cache_n` / (cache_n + prompt_n)). A "
        "later turn misses when under half of its previous turn's prompt came back from the cache."),
        Table(["Preset", "Level", "Agents / slots", "Turn", "Requests", "TTFT p50", "Prompt tokens", "Cache share",
               "Misses"], rows, "llrrrrrrr"),
        *[Para(n) for n in notes]]
