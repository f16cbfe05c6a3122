"""Charts from measured data only (matplotlib, Agg canvas: no display, no pyplot global state).
Every chart has a title, axis units and a legend, and shows how uncertain each point is: error
bars are 95% CIs across repeats when the job has repeats; for a single run, a seeded request
bootstrap 95% CI where the metric is per request (TTFT p50, decode speed: within-run spread only,
so narrower than a rerun would move); otherwise the point is drawn hollow (a bar hatched) and the
title says "single run". Each chart is built as a Figure (`CHARTS`), so tests read back what it
plots; `all_charts` saves them. Values are printed plainly (1,810, not 1.81e+03), and a metric
whose presets differ more than 10x is drawn as points on a log axis, never as bars (a bar's
length means nothing on a log scale)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from benchrun.analysis.jobs import Job
from benchrun.analysis.verdicts import Group
from benchrun.measure.views import BY_KEY
from benchrun.report.chart_base import _color, _fig, _has_repeats, _save, _yerr, value_text  # noqa: F401 -- re-exported
from benchrun.report.chart_tasks import latency_cdf, side_tasks
from benchrun.report.view import half_width

M = BY_KEY


# Single-run bootstrap: (per-request sample, statistic of a resample) per chartable metric.
BOOT = {"ttft_ms.p50": ("ttft_ms", lambda x: np.median(x, axis=-1)),
        "decode_tok_s.hmean": ("tpot_ms", lambda x: 1000.0 / np.mean(x, axis=-1))}


def interval(job: Optional[Job], key: str) -> tuple[float, str]:
    """(half-width, kind): kind 'repeats' (95% CI across repeats), 'bootstrap' (one run: seeded
    request bootstrap, 95%) or 'single' (one run, no interval: the chart marks it)."""
    if job is None:
        return 0.0, "single"
    h = half_width(job, M[key])
    if h is not None:
        return h, "repeats"
    if key in BOOT and job.records:
        name, stat = BOOT[key]
        x = np.asarray([v for v in job.samples(name) if v is not None and v > 0], float)
        if x.size >= 5:
            rs = x[np.random.default_rng(0).integers(0, x.size, (400, x.size))]
            lo, hi = np.percentile(stat(rs), [2.5, 97.5])
            return float(hi - lo) / 2, "bootstrap"
    return 0.0, "single"


def _err(job: Optional[Job], key: str) -> float:
    return interval(job, key)[0]


def _uncertainty(g: Group, key: str) -> str:
    """A subplot title's second line: what its error bars are, from the kinds its points have."""
    kinds = {interval(j, key)[1] for row in g.grid.values() for j in row.values()}
    out = []
    if "repeats" in kinds:
        out.append("bars: 95% CI over repeats")
    if "bootstrap" in kinds:
        out.append("bars: request bootstrap 95%, one run (within-run spread only)")
    if "single" in kinds:
        out.append("hollow/hatched: single run, no interval")
    return "; ".join(out)


def _title(ax, g: Group, key: str, title: str) -> None:
    ax.set_title(f"{title}\n{_uncertainty(g, key)}".rstrip(), fontsize=10)


def _wide(values: list) -> bool:
    v = [x for x in values if x and x > 0]
    return bool(v) and max(v) / min(v) > 10


def _log_if_wide(ax, values: list) -> None:
    """A log axis when values differ by more than 10x: the small one stays readable."""
    if _wide(values):
        ax.set_yscale("log", nonpositive="clip")
        plain = FuncFormatter(lambda x, _: f"{x:g}")  # 20000, not 2x10^4
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(plain)
        ax.tick_params(axis="y", which="minor", labelsize=7)
        ax.set_ylabel(ax.get_ylabel() + " (log scale)")


# --- radar -----------------------------------------------------------------------------------

def radar_axes(g: Group) -> list[tuple[str, dict[str, float], str]]:
    """(axis label, raw value per preset, better) for every axis all presets have data for.
    Derived axes: TTFT growth (Cmax/Cmin) and throughput scaling (Cmax/Cmin)."""
    cmin, cmax = g.cmin, g.cmax
    axes = []

    def add(label: str, vals: dict, better: str) -> None:
        if vals and len(vals) == len(g.labels) and all(v is not None for v in vals.values()):
            axes.append((label, vals, better))

    def at(key: str, c: int) -> dict:
        return {lab: (g.job(lab, c).value(key) if g.job(lab, c) else None) for lab in g.labels}

    add(f"Decode speed C{cmin}", at("decode_tok_s.hmean", cmin), "higher")
    if cmax != cmin:
        add(f"Decode speed C{cmax}", at("decode_tok_s.hmean", cmax), "higher")
    add(f"TTFT p50 C{cmin}", at("ttft_ms.p50", cmin), "lower")
    if cmax != cmin:
        add(f"TTFT p50 C{cmax}", at("ttft_ms.p50", cmax), "lower")
        lo, hi = at("ttft_ms.p50", cmin), at("ttft_ms.p50", cmax)
        if all(lo.values()) and all(v is not None for v in hi.values()):
            add(f"TTFT stability\n(C{cmax}/C{cmin})", {k: hi[k] / lo[k] for k in lo}, "lower")
        tl, th = at("output_throughput_tok_s", cmin), at("output_throughput_tok_s", cmax)
        if all(tl.values()) and all(v is not None for v in th.values()):
            add(f"Throughput scaling\n(C{cmax}/C{cmin})", {k: th[k] / tl[k] for k in tl}, "higher")
    add(f"Aggregate tok/s C{cmax}", at("output_throughput_tok_s", cmax), "higher")
    add(f"Total time\nper repeat C{cmax}", at("wall_s", cmax), "lower")
    add("Peak memory", at("memory.peak_mib", cmax), "lower")
    add("Tokens per joule", at("energy.tokens_per_joule", cmax), "higher")
    add(f"Quality checks C{cmax}", at("tasks.pass_rate", cmax), "rate")
    return axes


def normalise(vals: dict[str, float], better: str) -> dict[str, float]:
    """1 = best measured preset on this axis; others as a fraction of it. 'rate' axes are
    already 0..1 (share of checks passed) and are kept as they are."""
    if better == "rate":
        return dict(vals)
    if better == "higher":
        top = max(vals.values())
        return {k: (v / top if top > 0 else 0.0) for k, v in vals.items()}
    low = min(vals.values())
    return {k: (low / v if v > 0 else 1.0) for k, v in vals.items()}


def radar(g: Group) -> Optional[Figure]:
    axes = radar_axes(g)
    if len(axes) < 3 or len(g.labels) < 2:  # one preset normalised against itself says nothing
        return None
    n = len(axes)
    ang = np.linspace(0, 2 * np.pi, n, endpoint=False)
    fig = _fig(7.5, 7.0)
    ax = fig.add_subplot(projection="polar")
    for i, lab in enumerate(g.labels):
        vals = [normalise(v, b)[lab] for _, v, b in axes]
        xs, ys = np.append(ang, ang[0]), np.append(vals, vals[0])
        ax.plot(xs, ys, color=_color(i), linewidth=2, label=lab)
        ax.fill(xs, ys, color=_color(i), alpha=0.15)
    ax.set_xticks(ang)
    ax.set_xticklabels([a[0] for a in axes], fontsize=8.5)
    ax.set_theta_offset(np.pi / 2)  # the first axis at the top, the rest clockwise
    ax.set_theta_direction(-1)
    # Each label anchored on the side facing the plot, so a long one grows away from it
    # instead of over the outer ring (centred labels at 3 and 9 o'clock collided).
    for t, a in zip(ax.get_xticklabels(), ang):
        x = np.sin(a)
        t.set_horizontalalignment("left" if x > 0.2 else "right" if x < -0.2 else "center")
    ax.tick_params(axis="x", pad=10)
    ax.set_ylim(0, 1.05)
    ax.set_yticks([0.25, 0.5, 0.75, 1.0])
    ax.set_yticklabels(["0.25", "0.5", "0.75", "1"], fontsize=7, color="grey")
    ax.set_title(f"Model comparison — {g.workload}\n(1 = best measured preset on each axis; "
                 "quality = share of checks passed)", fontsize=10, pad=34)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.12), fontsize=9)
    return fig


# --- degradation / throughput ----------------------------------------------------------------

def _line(ax, g: Group, key: str, labels: bool = False) -> None:
    """One line per preset over the levels (points labelled with their values if asked)."""
    for i, lab in enumerate(g.labels):
        cs = sorted(c for c in g.grid[lab] if g.grid[lab][c].value(key) is not None)
        if not cs:
            continue
        ys = [g.grid[lab][c].value(key) for c in cs]
        es = [_err(g.grid[lab][c], key) for c in cs]
        ax.errorbar(cs, ys, yerr=_yerr(ys, es), marker="o", capsize=4, color=_color(i), label=lab)
        single = [(c, y) for c, y in zip(cs, ys) if interval(g.grid[lab][c], key)[1] == "single"]
        if single:  # no interval to draw: a hollow point says "one run, uncertainty unknown"
            ax.plot(*zip(*single), linestyle="none", marker="o", markerfacecolor="white", color=_color(i),
                    zorder=3, label="_single")
        for c, y in zip(cs, ys) if labels else ():
            ax.annotate(value_text(y), (c, y), ha="center", va="bottom", fontsize=7, xytext=(0, 4),
                        textcoords="offset points", color=_color(i))
    ax.set_xticks(g.levels)
    ax.set_xticklabels([f"C{c}" for c in g.levels])
    ax.set_xlabel("concurrency")
    ax.grid(alpha=0.3)
    vals = [j.value(key) for row in g.grid.values() for j in row.values()]
    _log_if_wide(ax, vals)
    if ax.get_yscale() == "linear":
        ax.set_ylim(bottom=0)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    else:  # every job failed: say so rather than draw an empty frame
        ax.text(0.5, 0.5, "no successful requests", ha="center", va="center", transform=ax.transAxes,
                color="grey")


def degradation(g: Group) -> Figure:
    fig = _fig(11, 4.2)
    a1, a2 = fig.subplots(1, 2)
    a1.set_ylabel("time to first token, p50 (ms)")
    _line(a1, g, "ttft_ms.p50")
    _title(a1, g, "ttft_ms.p50", "TTFT p50 vs concurrency")
    a2.set_ylabel("wall time per repeat (s)")
    _line(a2, g, "wall_s")
    _title(a2, g, "wall_s", "Total time per repeat vs concurrency")
    fig.suptitle(f"Degradation under load — {g.workload}", fontsize=11, y=1.04)
    return fig


def _bars(ax, g: Group, key: str) -> None:
    """Bars per level and preset on a linear axis; when the presets differ more than 10x, points
    on a log axis instead (_line), each labelled with its value."""
    if _wide([j.value(key) for row in g.grid.values() for j in row.values()]):
        _line(ax, g, key, labels=True)
        return
    n = len(g.labels)
    width = 0.8 / max(1, n)
    x = np.arange(len(g.levels))
    for i, lab in enumerate(g.labels):
        ys = [g.job(lab, c).value(key) if g.job(lab, c) else None for c in g.levels]
        es = [_err(g.job(lab, c), key) for c in g.levels]
        pos = x - 0.4 + width * (i + 0.5)
        h = [y or 0.0 for y in ys]
        bars = ax.bar(pos, h, width, yerr=_yerr(h, es), capsize=3, color=_color(i), label=lab)
        for b, c in zip(bars, g.levels):
            if interval(g.job(lab, c), key)[1] == "single":
                b.set_hatch("//")
                b.set_edgecolor("white")
        for b, y in zip(bars, ys):
            if y is not None:
                ax.annotate(value_text(y), (b.get_x() + b.get_width() / 2, b.get_height()),
                            ha="center", va="bottom", fontsize=7, xytext=(0, 2), textcoords="offset points")
    ax.set_xticks(x)
    ax.set_xticklabels([f"C{c}" for c in g.levels])
    ax.set_xlabel("concurrency")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)


def throughput(g: Group) -> Figure:
    fig = _fig(11, 4.2)
    a1, a2 = fig.subplots(1, 2)
    a1.set_ylabel("tokens/s per request")
    _bars(a1, g, "decode_tok_s.hmean")
    _title(a1, g, "decode_tok_s.hmean", "Per-request decode speed (harmonic mean)")
    a2.set_ylabel("output tokens/s, all requests")
    _bars(a2, g, "output_throughput_tok_s")
    _title(a2, g, "output_throughput_tok_s", "Aggregate output throughput")
    fig.suptitle(f"Throughput by concurrency — {g.workload}", fontsize=11, y=1.04)
    return fig


CHARTS = {"radar": radar, "degradation": degradation, "throughput": throughput, "side_tasks": side_tasks,
          "latency_cdf": latency_cdf}


def all_charts(g: Group, charts_dir: Path, suffix: str = "") -> dict[str, Path]:
    out = {}
    for name, build in CHARTS.items():
        fig = build(g)
        if fig is not None:
            out[name] = _save(fig, charts_dir / f"{name}{suffix}.png")
    return out

