"""`benchrun diff BASELINE CANDIDATE [--format table|md|json] [--fail-on METRIC:PCT ...]`"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchrun.analysis.jobs import ReportError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="benchrun diff",
        description="Compare two run or sweep dirs job by job (matched on model, workload, concurrency).")
    p.add_argument("baseline", help="run or sweep dir (outputs/<run_id>)")
    p.add_argument("candidate", help="run or sweep dir to compare against the baseline")
    p.add_argument("--format", choices=("table", "md", "json"), default="table")
    p.add_argument("--fail-on", action="append", default=[], metavar="METRIC:PCT",
                   help="exit 1 when METRIC (e.g. ttft_ms.p50, decode_tok_s.hmean, "
                        "output_throughput_tok_s) gets worse by more than PCT percent and the change "
                        "is beyond noise (a change noise cannot be ruled out for is printed, not fatal); "
                        "repeatable")
    p.add_argument("--models", metavar="A:B",
                   help="compare preset A (baseline) with preset B (candidate) instead of matching on the "
                        "model; BASELINE and CANDIDATE may be the same sweep dir")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--noise", metavar="FILE",
                   help="run-to-run calibration to judge single runs by (default: the measuring machine's "
                        "own, from benchrun calibrate)")
    p.add_argument("--no-calibration", action="store_true",
                   help="ignore any calibration: single runs are judged against the assumed floor")
    return p


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    from benchrun.analysis.diff import (
        diff_dirs,
        format_json,
        format_md,
        format_table,
        parse_fail_on,
        regressions,
        undecided,
    )
    from benchrun.measure.views import HEADLINE

    try:
        rules = [parse_fail_on(s) for s in args.fail_on]
        if args.noise and not Path(args.noise).is_file():
            raise ReportError(f"--noise: no such calibration file: {args.noise}")
        models = None
        if args.models:
            a, sep, b = args.models.partition(":")
            if not sep or not a or not b:
                raise ReportError(f"--models wants A:B (e.g. qwen3coder:qwen35), got {args.models!r}")
            models = (a, b)
        # Every --fail-on metric is compared too, headline or not (ttft_ms.p99, e2e_ms.p90, ...).
        extra = tuple(m for m, _ in rules if m not in HEADLINE)
        d = diff_dirs(args.baseline, args.candidate, HEADLINE + tuple(dict.fromkeys(extra)),
                      seed=args.seed, models=models,
                      noise_file=False if args.no_calibration else args.noise)
    except ReportError as e:
        print(f"benchrun diff: {e}", file=sys.stderr)
        return 2
    failures = regressions(d, rules)
    if args.format == "json":
        sys.stdout.write(format_json(d, failures))
    else:
        sys.stdout.write(format_md(d) if args.format == "md" else format_table(d))
    for f in failures:
        print(f"REGRESSION {f}", file=sys.stderr)
    for f in undecided(d, rules):
        print(f"CANNOT TELL {f}", file=sys.stderr)
    return 1 if failures else 0
