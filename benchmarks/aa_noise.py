"""How much do identical runs differ, and how often does `benchrun diff` call that noise a change?
(A benchmark, not a test.)

Give it run or sweep dirs made by one command (say 5 quickstart sweeps). It prints
  - the coefficient of variation (SD / mean across runs) of each headline metric per job, and
    its median over jobs: the run-to-run spread on this machine;
  - for every pair of runs, diffed as A/A: how many metrics were judged, how many of those were
    "beyond noise" (a false positive each: nothing changed), and how many could not be told,
    with benchrun's verdicts as they are now (assumed floor, no calibration; and, with
    --calibrated, a calibration measured on the *other* runs, never the pair itself);
  - the other processes' CPU while each run was measured (telemetry), i.e. how busy the box was.

  uv run python benchmarks/aa_noise.py outputs/RUN1 outputs/RUN2 ... [--calibrated] [--json]
"""
from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchrun.analysis.calibration import calibrate, save  # noqa: E402
from benchrun.analysis.diff import diff_dirs  # noqa: E402
from benchrun.analysis.jobs import HEADLINE, load_jobs  # noqa: E402

CV_KEYS = ("ttft_ms.p50", "ttft_ms.p90", "itl_ms.p50", "tpot_ms.mean", "e2e_ms.p50", "decode_tok_s.hmean",
           "decode_tok_s.mean", "output_throughput_tok_s", "wall_s")


def cv_table(dirs: list[Path]) -> dict:
    runs = [{j.key: j for j in load_jobs(d) if j.ok} for d in dirs]
    keys = sorted(set.intersection(*(set(r) for r in runs)))
    out = {}
    for mk in CV_KEYS:
        per_job = {}
        for k in keys:
            v = [r[k].value(mk) for r in runs]
            v = [x for x in v if x is not None]
            if len(v) >= 2 and statistics.mean(v) > 0:
                per_job[f"{k[0]} C{k[2]}"] = statistics.stdev(v) / statistics.mean(v)
        if per_job:
            out[mk] = {"median": statistics.median(per_job.values()), "jobs": per_job}
    return out


def aa_pairs(dirs: list[Path], calibrated: bool) -> list[dict]:
    out = []
    for a, b in itertools.combinations(range(len(dirs)), 2):
        noise_file = False
        if calibrated:
            others = [d for i, d in enumerate(dirs) if i not in (a, b)]
            if len(others) < 2:
                continue
            noise_file = save(calibrate(others), Path(tempfile.mkdtemp()) / "noise.json")
        d = diff_dirs(dirs[a], dirs[b], HEADLINE, noise_file=noise_file)
        xs = [x for jd in d.jobs for x in jd.deltas if x.base is not None and x.cand is not None]
        judged = [x for x in xs if x.beyond_noise is not None]
        out.append({"pair": (a, b), "metrics": len(xs), "judged": len(judged),
                    "beyond": sum(1 for x in judged if x.beyond_noise), "cannot_tell": len(xs) - len(judged),
                    "beyond_keys": [x.key for x in judged if x.beyond_noise]})
    return out


def busy(dirs: list[Path]) -> list[float]:
    vals = []
    for d in dirs:
        o = [((j.result.get("telemetry") or {}).get("cpu") or {}).get("other_pct") for j in load_jobs(d)]
        o = [x for x in o if isinstance(x, (int, float))]
        vals.append(round(statistics.mean(o), 1) if o else None)
    return vals


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="+", type=Path)
    ap.add_argument("--calibrated", action="store_true",
                    help="also judge each pair against a calibration of the other runs")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    res = {"runs": [str(d) for d in args.dirs], "other_cpu_pct": busy(args.dirs), "cv": cv_table(args.dirs),
           "aa_floor": aa_pairs(args.dirs, False)}
    if args.calibrated:
        res["aa_calibrated"] = aa_pairs(args.dirs, True)
    if args.json:
        print(json.dumps(res, indent=2))
        return
    print(f"{len(args.dirs)} runs; other processes' CPU while measured (% of a core, mean over jobs): "
          f"{res['other_cpu_pct']}")
    print("coefficient of variation across runs (median over jobs; per job):")
    for mk, v in res["cv"].items():
        jobs = ", ".join(f"{k} {x:.0%}" for k, x in v["jobs"].items())
        print(f"  {mk:26s} {v['median']:6.1%}   ({jobs})")
    for name in ("aa_floor", "aa_calibrated"):
        if name not in res:
            continue
        pairs = res[name]
        j, b, u = (sum(p[k] for p in pairs) for k in ("judged", "beyond", "cannot_tell"))
        print(f"A/A pairs ({name}): {len(pairs)} pairs, {j} metrics judged, {b} beyond noise "
              f"({b / j:.1%} of judged)" if j else f"A/A pairs ({name}): {len(pairs)} pairs, none judged",
              f"; {u} cannot tell")
        for p in pairs:
            print(f"    {p['pair']}: judged {p['judged']}, beyond {p['beyond']} {p['beyond_keys']}, "
                  f"cannot tell {p['cannot_tell']}")


if __name__ == "__main__":
    main()
