"""What every chart shares: a Figure on the Agg canvas (no pyplot global state), colours, plain
value labels (1,810, never 1.81e+03), error bars clipped at zero, saving."""
from __future__ import annotations

from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from benchrun.analysis.verdicts import Group

DPI = 110


def _fig(w: float, h: float, **kw) -> Figure:
    fig = Figure(figsize=(w, h), dpi=DPI, **kw)
    FigureCanvasAgg(fig)
    return fig


def value_text(v: float) -> str:
    """A bar or point label: 1,810 / 45.3 / 0.062 -- never scientific notation."""
    a = abs(v)
    if a >= 100:
        return f"{v:,.0f}"
    if a >= 1:
        return f"{v:.1f}"
    return f"{v:.2g}" if a >= 1e-3 else f"{v:.1e}"


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight")
    return path


def _color(i: int) -> str:
    return f"C{i % 10}"


def _yerr(ys: list, es: list):
    """Asymmetric error bars clipped at zero: these quantities are never negative."""
    if not any(es):
        return None
    return [[min(e, y or 0.0) for y, e in zip(ys, es)], list(es)]


def _has_repeats(g: Group) -> bool:
    return any(len(j.result.get("repeat_metrics") or []) >= 2 for row in g.grid.values() for j in row.values())
