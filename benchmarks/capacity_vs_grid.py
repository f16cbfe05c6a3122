"""search=capacity beside a plain grid over the same range, on the same server (a benchmark,
not a test): how many probes and job-seconds each spends, and whether they give the same answer.

The grid runs every concurrency in LEVELS once; its capacity is the highest level up to which
every level passes, judged by the search's own rule (analysis/capacity.py: the Wilson interval
of goodput against the target, a level within noise counted as not passing). The search runs
with the same SLO, workload and upper bound.

  uv run python benchmarks/capacity_vs_grid.py [--model tiny] [--slo-ttft-ms 300] [--levels 1,2,...,16]
      [--server slots]   (slots: tests/support/slotserver.py, 4 slots, known capacity; else a preset)
"""
from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from benchrun.analysis.capacity import probe_of, steps_of  # noqa: E402
from benchrun.config import SearchConfig  # noqa: E402


def benchrun(args: list[str], cwd: Path) -> tuple[Path, float]:
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "benchrun", "-m", *args, "report=false"], cwd=cwd,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"benchrun {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    line = next(x for x in proc.stdout.splitlines() if x.startswith("benchrun: results in "))
    return cwd / line.split("benchrun: results in ", 1)[1].strip(), time.monotonic() - t0


def job_seconds(out: Path) -> float:
    return sum(json.loads(p.read_text())["metrics"]["wall_s_total"] for p in out.glob("*/result.json"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--server", choices=("preset", "slots"), default="preset")
    ap.add_argument("--slo-ttft-ms", type=float, default=300.0)
    ap.add_argument("--levels", default="1,2,3,4,5,6,7,8,10,12,14,16")
    ap.add_argument("--min-gain", type=float, default=0.1, help="search.min_gain (< 0: no saturation stop)")
    ap.add_argument("--requests", type=int, default=60)  # 60/60 clears a 90% target at 95%
    args = ap.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    s = SearchConfig(max_level=max(levels), target=0.9)
    with contextlib.ExitStack() as stack:
        if args.server == "slots":
            from support import slotserver

            url = stack.enter_context(slotserver.running(4, 40, 0.25, 20, 0.25))
            model = ["model=external", f"model.url={url}", "model.parallel=4"]
        else:
            model = [f"model={args.model}"]
        common = [*model, f"slo.ttft_ms={args.slo_ttft_ms}", f"workload.requests={args.requests}",
                  "workload.output_tokens=16", "telemetry.enabled=false"]
        work = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        grid_out, grid_wall = benchrun([*common, "concurrency=" + ",".join(map(str, levels))], work)
        search_out, search_wall = benchrun([*common, "search=capacity", f"search.max_level={max(levels)}",
                                        f"search.min_gain={args.min_gain}"], work)
        grid = []
        for p in sorted(grid_out.glob("*/result.json")):
            res = json.loads(p.read_text())
            grid.append(probe_of(res, float(res["concurrency"]), p.parent.name, None, "concurrency"))
        verdicts = {st.level: st.verdict for st in steps_of(grid, SearchConfig(**{**s.__dict__, "max_repeats": 0}))}
        grid_cap = None
        for lv in sorted(verdicts):
            if verdicts[lv] != "pass":
                break
            grid_cap = lv
        cap = next(iter(json.loads((search_out / "capacity.json").read_text()).values()))
        print(f"server: {args.server if args.server == 'slots' else args.model}; "
              f"SLO TTFT p90 <= {args.slo_ttft_ms:g} ms, "
              f"target {s.target:.0%}, {args.requests} requests per probe")
        print(f"{'':8} {'probes':>6} {'job-s':>8} {'wall-s':>8}  capacity")
        print(f"{'grid':8} {len(grid):>6} {job_seconds(grid_out):>8.1f} {grid_wall:>8.1f}  {grid_cap}  "
              f"({', '.join(f'{lv:g}:{v}' for lv, v in sorted(verdicts.items()))})")
        print(f"{'search':8} {len(cap['probes']):>6} {job_seconds(search_out):>8.1f} {search_wall:>8.1f}  "
              f"{cap['capacity']}  (limit {cap['limit']}; levels {[p['level'] for p in cap['probes']]})")


if __name__ == "__main__":
    main()
