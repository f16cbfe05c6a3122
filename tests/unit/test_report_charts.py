"""Charts show how uncertain each point is, and the radar's labels stay clear of each other and
of the plot -- read back from the Figures of handmade result sets."""
from __future__ import annotations

import numpy as np
from support.handmade import make_job
from support.handmade_seed import seed_results

from benchrun.analysis.jobs import load_jobs
from benchrun.analysis.verdicts import build_groups
from benchrun.report.charts import CHARTS


def _group(root):
    (g,) = build_groups(load_jobs(root))
    return g


def _single_runs(root):
    for num, (m, c, ttft, itl) in enumerate([("a", 1, 50, 5), ("a", 3, 120, 6), ("b", 1, 60, 9), ("b", 3, 200, 10)]):
        make_job(root, num, m, c, ttft, itl, seed=num)
    return _group(root)


def _bar_errs(ax) -> list:
    return [c.errorbar for c in ax.containers if hasattr(c, "patches")]


def test_single_runs_get_bootstrap_bars_or_are_marked_single_run(tmp_path):
    g = _single_runs(tmp_path)
    decode, agg = CHARTS["throughput"](g).axes
    # Decode speed is per request: a seeded request bootstrap gives each single run an interval.
    assert "request bootstrap 95%" in decode.get_title() and all(e is not None for e in _bar_errs(decode))
    assert not any(p.get_hatch() for c in decode.containers if hasattr(c, "patches") for p in c.patches)
    # Aggregate throughput is one number per run: no interval, so every bar is hatched and the title says so.
    assert "single run, no interval" in agg.get_title() and all(e is None for e in _bar_errs(agg))
    assert all(p.get_hatch() == "//" for c in agg.containers if hasattr(c, "patches") for p in c.patches)
    ttft, wall = CHARTS["degradation"](g).axes
    assert "request bootstrap" in ttft.get_title() and "single run" in wall.get_title()
    hollow = [ln for ln in wall.lines if ln.get_label() == "_single"]
    assert len(hollow) == 2 and all(ln.get_markerfacecolor() == "white" for ln in hollow)
    assert not [ln for ln in ttft.lines if ln.get_label() == "_single"]


def test_repeats_give_ci_bars_and_nothing_is_marked_single(tmp_path):
    g = _group(seed_results(tmp_path))
    for ax in CHARTS["throughput"](g).axes + CHARTS["degradation"](g).axes:
        assert "95% CI over repeats" in ax.get_title() and "single run" not in ax.get_title()
        assert not [ln for ln in ax.lines if ln.get_label() == "_single"]
    decode, _ = CHARTS["throughput"](g).axes
    assert all(e is not None for e in _bar_errs(decode))


def test_radar_labels_collide_neither_with_each_other_nor_with_the_plot(tmp_path):
    g = _group(seed_results(tmp_path))
    fig = CHARTS["radar"](g)
    ax = fig.axes[0]
    r = fig.canvas.get_renderer()
    fig.canvas.draw()
    boxes = [t.get_window_extent(r) for t in ax.get_xticklabels()]
    assert len(boxes) >= 8
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not a.overlaps(b), (a, b)
    frame = ax.get_window_extent(r)
    cx, cy, radius = (frame.x0 + frame.x1) / 2, (frame.y0 + frame.y1) / 2, frame.width / 2
    for t, b in zip(ax.get_xticklabels(), boxes):  # the box's nearest point lies outside the outer ring
        nx, ny = np.clip(cx, b.x0, b.x1), np.clip(cy, b.y0, b.y1)
        assert np.hypot(nx - cx, ny - cy) >= radius * 0.99, t.get_text()
