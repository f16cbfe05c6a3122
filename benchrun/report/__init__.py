"""Reports from output dirs (files only): report.md, report.html, charts/*.png, summary.csv/json.
Runs at the end of every run and sweep, and on demand on any old dir (`benchrun report DIR`)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from benchrun.analysis.jobs import ReportError, load_jobs
from benchrun.results import atomic_write_text

__all__ = ["ReportError", "Written", "write_report"]


@dataclass
class Written:
    report_md: Path
    report_html: Path | None
    charts: list[Path] = field(default_factory=list)
    summary: list[Path] = field(default_factory=list)
    jobs: int = 0
    failed: int = 0


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", s)


def write_report(root: Path, html: bool = True, charts: bool = True) -> Written:
    """(Re)write everything into `root` (a run or sweep dir). Raises ReportError on bad input.
    The end-of-run summary.csv/json are written here, first, so a report that fails later
    (say, in a chart) still leaves them up to date; the CLI writes them itself only per job
    and when report=false."""
    root = Path(root)
    jobs = load_jobs(root)  # bad input fails here, before the heavy imports

    from benchrun.analysis.verdicts import build_groups
    from benchrun.report.blocks import to_html, to_markdown
    from benchrun.report.markdown import build_blocks
    from benchrun.report.summary import write_summary
    from benchrun.report.testbed import report_title

    root_out = root.resolve()  # a sweep dir, a run dir, or a single job dir
    rows = write_summary(root_out)
    groups = build_groups(jobs)
    made: dict[str, dict[str, Path]] = {}
    if charts:
        from benchrun.report.charts import all_charts

        for i, g in enumerate(groups):
            made[g.workload] = all_charts(g, root_out / "charts", "" if i == 0 else f"_{_slug(g.workload)}")
    from benchrun.report.capacity import knee_chart, read_capacity
    from benchrun.report.charts import _save
    from benchrun.report.depth import chart as depth_chart

    cap = read_capacity(root_out)
    extra: dict[str, Path] = {}  # the sweep-wide charts: capacity's knee, depth
    for name, fig in (("capacity", knee_chart(cap) if cap and charts else None),
                      ("depth", depth_chart(jobs) if charts else None)):
        if fig is not None:
            extra[name] = _save(fig, root_out / "charts" / f"{name}.png")
    blocks = build_blocks(jobs, groups, made, root_out, cap, extra)
    md = root_out / "report.md"
    atomic_write_text(md, to_markdown(blocks))
    page = None
    if html:
        page = root_out / "report.html"
        atomic_write_text(page, to_html(blocks, root_out, f"Benchmark: {report_title(groups)}"))
    return Written(md, page, [p for d in made.values() for p in d.values()] + list(extra.values()),
                   [root_out / "summary.csv", root_out / "summary.json"] if rows else [],
                   len(jobs), sum(1 for j in jobs if not j.ok))
