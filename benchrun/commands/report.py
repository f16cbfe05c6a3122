"""`benchrun report DIR [--no-html] [--no-charts]`: (re)write report.md, report.html, charts/
and summary.csv/json of a run or sweep dir. Reads files only, so old dirs re-render."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="benchrun report",
                                description="Write report.md, report.html, charts/ and summary.csv "
                                            "of a run or sweep dir.")
    p.add_argument("dir", help="run or sweep dir (outputs/<run_id>)")
    p.add_argument("--no-html", action="store_true", help="skip the self-contained report.html")
    p.add_argument("--no-charts", action="store_true", help="skip charts/*.png")
    return p


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    from benchrun.report import ReportError, write_report

    try:
        w = write_report(Path(args.dir), html=not args.no_html, charts=not args.no_charts)
    except ReportError as e:
        print(f"benchrun report: {e}", file=sys.stderr)
        return 2
    extra = f", {w.failed} failed" if w.failed else ""
    print(f"benchrun: report {w.report_md} ({w.jobs} jobs{extra}, {len(w.charts)} charts)")
    return 0


def auto_report(root: Path) -> None:
    """The end-of-run hook: a report failure never costs results -- one line, no traceback."""
    try:
        from benchrun.report import write_report

        w = write_report(Path(root))
        print(f"benchrun: report {w.report_md}", flush=True)
    except Exception as e:  # noqa: BLE001 -- the measurements are already on disk
        print(f"benchrun: report failed ({type(e).__name__}: {e}); results are intact, "
              f"retry with: benchrun report {root}", flush=True)
