"""The report's Depth section (workload=depth): a table like llama-bench's -- prefill (pp) and
decode (tg) speed per depth, per preset and level, benchrun's client-side figures beside
llama.cpp's own timings -- and a chart of pp and tg against depth; then the agents' prompt cache
per turn (benchrun/report/cache.py), which rides on this section's hook in markdown.py. Read from
result files only."""
from __future__ import annotations

from typing import Optional

from benchrun.analysis.jobs import Job
from benchrun.report.blocks import Block, Heading, Image, Para, Table
from benchrun.report.cache import blocks as cache_blocks


def depth_of(j: Job) -> Optional[int]:
    w = j.result.get("workload") or {}
    if w.get("kind") not in (None, "depth"):
        return None  # an agentic session's depth is its source, not a depth job's context
    d = w.get("depth")
    return int(d) if isinstance(d, (int, float)) else None


def rows_of(jobs: list[Job]) -> list[dict]:
    """One row per ok depth job: preset, level, depth and the four speeds (None: not reported)."""
    out = []
    for j in jobs:
        d = depth_of(j)
        if d is None or not j.ok:
            continue
        out.append({"preset": j.model, "concurrency": j.concurrency, "depth": d,
                    "pp": j.value("prefill_tok_s.mean"), "pp_server": j.facts.server_timing("prompt_per_second"),
                    "tg": j.value("decode_tok_s.mean"), "tg_server": j.facts.server_timing("predicted_per_second"),
                    "cache": j.facts.metrics.get("cache_hit_share"), "job": j.dir.name})
    return sorted(out, key=lambda r: (r["preset"], r["concurrency"], r["depth"]))


def _speed(v: Optional[float]) -> str:
    return "not reported" if v is None else f"{v:,.1f}"


def blocks(jobs: list[Job], chart: Optional[str]) -> list[Block]:
    return depth_blocks(jobs, chart) + cache_blocks(jobs)


def depth_blocks(jobs: list[Job], chart: Optional[str]) -> list[Block]:
    rows = rows_of(jobs)
    if not rows:
        return []
    table = [[r["preset"], f"C{r['concurrency']}", f"{r['depth']:,}", _speed(r["pp"]), _speed(r["pp_server"]),
              _speed(r["tg"]), _speed(r["tg_server"]),
              "not reported" if r["cache"] is None else f"{r['cache']:.0%}"] for r in rows]
    out: list[Block] = [Heading(2, "Depth"), Para(
        "Speed with `depth` tokens of unique context ahead of each request (llama-bench's `-d`, under load): "
        "pp = prompt tokens per second of prefill, tg = generated tokens per second; benchrun's client-side "
        "figures (TTFT, time per output token) beside llama.cpp's own `timings` (prompt_per_second, "
        "predicted_per_second). Cache hits should be 0%: every context is unique."),
        Table(["Preset", "Level", "Depth", "pp (client)", "pp (server)", "tg (client)", "tg (server)", "Cache hits"],
              table, "llrrrrrr")]
    if chart:
        out.append(Image(chart, "pp and tg against depth"))
    return out


def chart(jobs: list[Job]):
    """pp (left) and tg (right) against depth, one line per preset and level; None without depth jobs."""
    from benchrun.report.charts import _color, _fig

    rows = rows_of(jobs)
    if not rows:
        return None
    fig = _fig(10, 4)
    series: dict[tuple, list[dict]] = {}
    for r in rows:
        series.setdefault((r["preset"], r["concurrency"]), []).append(r)
    for k, (key, title) in enumerate((("pp", "Prefill (pp) tok/s"), ("tg", "Decode (tg) tok/s"))):
        ax = fig.add_subplot(1, 2, k + 1)
        for i, ((preset, c), rs) in enumerate(series.items()):
            pts = [(r["depth"], r[key]) for r in rs if r[key] is not None]
            srv = [(r["depth"], r[f"{key}_server"]) for r in rs if r[f"{key}_server"] is not None]
            if pts:
                ax.plot(*zip(*pts), "-o", color=_color(i), label=f"{preset} C{c}")
            if srv:
                ax.plot(*zip(*srv), ":", color=_color(i), label=f"{preset} C{c} (server)")
        ax.set_xlabel("Depth (tokens of context)")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    return fig
