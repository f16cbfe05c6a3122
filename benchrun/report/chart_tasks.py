"""The side-task latency chart (PASS/FAIL on each bar) and the TTFT / ITL latency CDFs."""
from __future__ import annotations

from typing import Optional

import numpy as np
from matplotlib.figure import Figure

from benchrun.analysis.verdicts import Group
from benchrun.report.chart_base import _color, _fig, _has_repeats, _yerr
from benchrun.report.findings import task_rows, verdict

# --- side tasks ------------------------------------------------------------------------------

def side_tasks(g: Group) -> Optional[Figure]:
    per = {lab: task_rows(g.job(lab, g.cmax)) for lab in g.labels}
    names: list[str] = []
    for rows in per.values():
        for name, r in rows.items():
            if r["role"] != "primary" and name not in names:
                names.append(name)
    if not names:
        return None
    fig = _fig(max(6.5, 1.6 * len(names) * len(g.labels) + 2), 4.5)
    ax = fig.add_subplot()
    width = 0.8 / len(g.labels)
    x = np.arange(len(names))
    for i, lab in enumerate(g.labels):
        rows = per[lab]
        ys = [float(np.mean(rows[n]["lat"])) if n in rows and rows[n]["lat"] else 0.0 for n in names]
        es = [float(np.std(rows[n]["lat"], ddof=1)) if n in rows and len(rows[n]["lat"]) > 1 else 0.0 for n in names]
        bars = ax.bar(x - 0.4 + width * (i + 0.5), ys, width, yerr=_yerr(ys, es), capsize=3,
                      color=_color(i), label=lab)
        for b, n in zip(bars, names):
            v = verdict(rows[n]) if n in rows else "—"
            col = {"PASS": "green", "FAIL": "red"}.get(v, "black")
            ax.annotate(v, (b.get_x() + b.get_width() / 2, b.get_height()), ha="center", va="bottom",
                        fontsize=8, fontweight="bold", color=col, xytext=(0, 3), textcoords="offset points")
    ax.set_xticks(x)
    ax.set_xticklabels(names)
    ax.set_ylabel("task latency, all turns (ms)")
    ax.set_title(f"Side tasks at max concurrency (C{g.cmax}) — {g.workload}\nlabels: quality checks PASS/FAIL"
                 + ("; error bars: sd across repeats" if _has_repeats(g) else ""), fontsize=10)
    ax.margins(y=0.15)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    return fig


# --- latency CDFs ----------------------------------------------------------------------------

def _ecdf(ax, xs, **kw) -> None:
    v = np.sort(np.asarray(xs, float))
    if v.size:
        ax.step(v, np.arange(1, v.size + 1) / v.size, where="post", **kw)


def latency_cdf(g: Group) -> Optional[Figure]:
    levels = sorted({g.cmin, g.cmax})
    styles = {levels[0]: "-", levels[-1]: "--"} if len(levels) > 1 else {levels[0]: "-"}
    fig = _fig(11, 4.2)
    a1, a2 = fig.subplots(1, 2)
    drawn = False
    for i, lab in enumerate(g.labels):
        for c in levels:
            j = g.job(lab, c)
            if j is None or not j.records:
                continue
            ttft = j.samples("ttft_ms")
            itl = [x for gaps in j.samples("itl_ms") for x in gaps]
            kw = dict(color=_color(i), linestyle=styles[c], label=f"{lab} C{c} (n={len(ttft)})")
            _ecdf(a1, ttft, **kw)
            _ecdf(a2, itl, **{**kw, "label": f"{lab} C{c} (n={len(itl)})"})
            drawn = drawn or bool(ttft)
    if not drawn:
        return None
    a1.set_title("TTFT distribution")
    if a1.dataLim.x0 > 0 and a1.dataLim.x1 / a1.dataLim.x0 > 20:
        a1.set_xscale("log")
        a1.set_xlabel("time to first token (ms, log scale)")
    if a1.get_xscale() == "linear":
        a1.set_xlabel("time to first token (ms)")
    a2.set_title("Inter-token latency distribution")
    a2.set_xlabel("gap between tokens (ms, log scale)")
    a2.set_xscale("log")
    for a in (a1, a2):
        a.set_ylabel("share of samples ≤ x")
        a.set_ylim(0, 1.02)
        a.grid(alpha=0.3)
        a.legend(fontsize=7, loc="lower right")
    fig.suptitle(f"Latency CDFs — {g.workload} (all measured requests, every repeat)", fontsize=11)
    return fig
