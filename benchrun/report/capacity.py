"""The report's Capacity section, read from the sweep root's capacity.json (search=capacity):
which preset serves the most within the SLO, a table of every probe per preset, and the knee
chart -- throughput against p90 latency per probe, the SLO drawn, the capacity marked."""
from __future__ import annotations

from typing import Any, Optional

from benchrun.analysis.capacity import read_capacity  # noqa: F401 -- the report's reader too
from benchrun.report.blocks import Block, Heading, Image, Para, Table


def _level(v: Optional[float], unit: str) -> str:
    if v is None:
        return "none"
    return f"concurrency {v:g}" if unit == "concurrency" else f"{v:g} req/s"


def _ms(v: Optional[float]) -> str:
    return "—" if v is None else f"{v:,.0f} ms" if v >= 100 else f"{v:.1f} ms"


def best(cap: dict[str, Any]) -> Optional[tuple[str, dict]]:
    """The preset with the highest capacity (None when no search found one)."""
    done = [(name, e) for name, e in cap.items() if e.get("capacity") is not None]
    return max(done, key=lambda x: x[1]["capacity"]) if done else None


def pick(cap: dict[str, Any]) -> Optional[str]:
    """The recommendation by capacity, one sentence."""
    b = best(cap)
    if b is None:
        return None
    name, e = b
    others = [f"{n} {_level(o.get('capacity'), o['unit'])}" for n, o in cap.items() if n != name]
    slo = ", ".join(f"{k.removesuffix('_ms').upper()} <= {v:g} ms" for k, v in _slo(e).items())
    return (f"By capacity, **{name}**: it serves {_level(e['capacity'], e['unit'])} with {e['target']:.0%} of "
            f"requests within {slo or 'the SLO'} (limit: {e['limit']})"
            + (f"; {', '.join(others)}." if others else "."))


def _slo(e: dict) -> dict[str, float]:
    return {k: v for k, v in (e.get("slo") or {}).items() if v is not None}


def blocks(cap: dict[str, Any], chart: Optional[str]) -> list[Block]:
    out: list[Block] = [Heading(2, "Capacity")]
    lead = pick(cap)
    out.append(Para(lead or "No preset met the SLO at the first level probed."))
    for name, e in cap.items():
        bounds = e.get("bounds") or [None, None]
        head = (f"**{name}** (parallel={e.get('parallel')}): capacity {_level(e.get('capacity'), e['unit'])}"
                + (f", below {_level(bounds[1], e['unit'])}" if bounds[1] is not None else "")
                + f"; limit: {e.get('limit')}; {e.get('why') or ''}"
                + ("" if e.get("status") == "done" else f" (search {e.get('status')}: resume=DIR goes on)"))
        if e.get("best_parallel") is not None:
            head += "; slot counts: " + ", ".join(f"{p}: {_level(c.get('capacity'), c['unit'])}"
                                                  for p, c in e["by_parallel"].items())
        pooled: dict[float, int] = {}
        for p in e.get("probes") or []:
            pooled[p["level"]] = pooled.get(p["level"], 0) + p["requests"]
        rows = [[f"{p['level']:g}", p["verdict"],
                 "—" if p.get("goodput_share") is None else
                 f"{p['goodput_share']:.0%} [{p['goodput_low']:.0%}, {p['goodput_high']:.0%}] of {pooled[p['level']]}",
                 _ms(p.get("ttft_p90_ms")), _ms(p.get("tpot_p90_ms")),
                 "—" if p.get("throughput_tok_s") is None else f"{p['throughput_tok_s']:,.1f}",
                 "yes" if p.get("queueing") else "", f"`{p['job']}`"] for p in e.get("probes") or []]
        goodput = f"Goodput [{e.get('confidence', 0.95):.0%} CI, level pooled]"
        out += [Para(head), Table([e["unit"].capitalize(), "Verdict", goodput, "TTFT p90", "TPOT p90",
                                   "Throughput (tok/s)", "Queueing", "Job"], rows, "lllrrrll")]
    if chart:
        out.append(Image(chart, "Capacity: throughput vs p90 latency per probe"))
    return out


def _by_level(e: dict) -> list[tuple[float, list[dict]]]:
    """A search's probes with both figures, grouped by level, levels ascending."""
    by: dict[float, list[dict]] = {}
    for p in e.get("probes") or []:
        if p.get("throughput_tok_s") is not None and p.get("ttft_p90_ms") is not None:
            by.setdefault(p["level"], []).append(p)
    return sorted(by.items())


def knee_chart(cap: dict[str, Any]):
    """Throughput (x) against p90 TTFT (y) per level probed, in level order per preset (a level
    probed more than once: its mean, the bars its range); the TTFT SLO as a line, each preset's
    capacity circled. None without probes to draw."""
    import numpy as np

    from benchrun.report.charts import _color, _fig, _log_if_wide

    series = [(name, _by_level(e), e) for name, e in cap.items()]
    if not any(levels for _, levels, _ in series):
        return None
    fig = _fig(7, 4.5)
    ax = fig.add_subplot(111)
    ys_all: list[float] = []
    for i, (name, levels, e) in enumerate(series):
        xs = [[p["throughput_tok_s"] for p in ps] for _, ps in levels]
        x = [float(np.mean(v)) for v in xs]
        y = [float(np.mean([p["ttft_p90_ms"] for p in ps])) for _, ps in levels]
        ys_all += y
        xerr = [[xi - min(v) for xi, v in zip(x, xs)], [max(v) - xi for xi, v in zip(x, xs)]]
        ax.errorbar(x, y, xerr=xerr, fmt="-o", color=_color(i), capsize=3, label=name)
        for (level, _), xi, yi in zip(levels, x, y):
            ax.annotate(f"{level:g}", (xi, yi), textcoords="offset points", xytext=(4, 4), fontsize=7, color=_color(i))
        at = [(xi, yi) for (level, _), xi, yi in zip(levels, x, y) if level == e.get("capacity")]
        if at:
            ax.plot(*at[0], "o", ms=14, mfc="none", mew=2, color=_color(i),
                    label=f"{name}: capacity {_level(e['capacity'], e['unit'])}")
    slo = next((_slo(e).get("ttft_ms") for _, _, e in series if _slo(e).get("ttft_ms")), None)
    if slo:
        ax.axhline(slo, color="red", ls="--", lw=1, label=f"SLO: TTFT p90 <= {slo:g} ms")
        ys_all.append(slo)
    ax.set_xlabel("Output throughput (tok/s)")
    ax.set_ylabel("TTFT p90 (ms)")
    _log_if_wide(ax, ys_all)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Capacity: throughput vs latency per level probed (labels: level)")
    return fig
