"""`benchrun calibrate DIR DIR [...]` | `benchrun calibrate --runs N OVERRIDES...`

Measures how much identical runs differ on this machine (an A/A calibration) and stores it per
machine, so `benchrun diff` and `benchrun report` can judge single runs against a measured
run-to-run floor instead of an assumed one (benchrun/analysis/calibration.py, benchrun/analysis/noise.py).
With --runs it first runs `benchrun -m OVERRIDES report=false` N times, one after another.
Exit codes: 0 written, 2 bad input (one line)."""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from benchrun.analysis.jobs import ReportError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="benchrun calibrate",
        description="Measure run-to-run noise from identical runs and store it for this machine.")
    p.add_argument("items", nargs="*", metavar="DIR|OVERRIDE",
                   help="run or sweep dirs of one command (>= 2); with --runs: the sweep's overrides")
    p.add_argument("--runs", type=int, metavar="N",
                   help="run `benchrun -m OVERRIDES` N times (>= 2) first, then calibrate on them")
    p.add_argument("--out", metavar="FILE", help="write here instead of the machine's file in the noise dir")
    return p


def _run_sweeps(n: int, overrides: list[str]) -> list[Path]:
    dirs = []
    for i in range(n):
        print(f"benchrun calibrate: run {i + 1}/{n}: benchrun -m {' '.join(overrides)}", flush=True)
        proc = subprocess.run([sys.executable, "-m", "benchrun", "-m", *overrides, "report=false"],
                              text=True, capture_output=True)
        out = [ln for ln in proc.stdout.splitlines() if ln.startswith("benchrun: results in ")]
        if proc.returncode != 0 or not out:
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise ReportError(f"run {i + 1} failed (exit {proc.returncode}): {last}")
        dirs.append(Path(out[-1].split("benchrun: results in ", 1)[1].strip()))
    return dirs


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    from benchrun.analysis.calibration import calibrate, describe, save

    try:
        if args.runs is not None:
            if args.runs < 2:
                raise ReportError("--runs must be at least 2 (one run has no run-to-run spread)")
            dirs = _run_sweeps(args.runs, args.items)
        else:
            dirs = [Path(d) for d in args.items]
        cal = calibrate(dirs)
        path = save(cal, Path(args.out) if args.out else None)
    except ReportError as e:
        print(f"benchrun calibrate: {e}", file=sys.stderr)
        return 2
    print(describe(cal))
    print(f"benchrun calibrate: wrote {path}")
    return 0
