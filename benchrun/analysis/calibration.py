"""A/A calibration: how much one run's headline values move between identical runs on one
machine, so that a single run per side can still be judged (benchrun/analysis/noise.py, method
`calibrated`). Reads and writes files only.

Contract:
  - `calibrate(dirs)` takes >= 2 run or sweep dirs made by the *same* command on the same
    machine (checked: the same jobs, nothing that makes them incomparable) and returns, per
    workload and metric key, the pooled log-scale SD of a run's value (`run_sd`), its degrees
    of freedom (sum over jobs of runs - 1) and the floor it implies at 5% (`floor_pct`).
  - It is stored per machine in `<noise dir>/<machine key>.json` (noise dir:
    $BENCHRUN_NOISE_DIR, else ~/.cache/benchrun/noise); the key is derived from the hardware
    that result.json records, so `diff` and `report` find the calibration of the machine the
    runs were *measured* on, wherever they are read.
  - `lookup(hardware, workload, repeats)` gives {metric key: (run_sd, df)} or None (plus
    BUSY_KEY: the most CPU other processes took during a calibration run, % of a core). A
    calibration applies only to runs of the same workload name and repeats count as the runs it
    was measured on (noise shrinks with more requests or repeats; an agentic run is not a
    synthetic one).
"""
from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
from pathlib import Path
from typing import Any, Optional

from benchrun.analysis import noise
from benchrun.analysis.compare import comparability
from benchrun.analysis.jobs import ReportError, load_jobs
from benchrun.analysis.noise import BUSY_KEY
from benchrun.measure.views import HEADLINE, PER_REQUEST_NAMES, RECIPROCAL
from benchrun.results import atomic_write_text

VERSION = 1
# Every headline key, and the common stats of every per-request metric (for --fail-on keys).
_EXTRA_STATS = ("mean", "p50", "p90", "p99")


def metric_keys() -> list[str]:
    keys = [m.key for m in HEADLINE]
    for name in sorted(PER_REQUEST_NAMES):
        keys += [f"{name}.{s}" for s in _EXTRA_STATS]
        if name in RECIPROCAL:
            keys.append(f"{name}.hmean")
    return list(dict.fromkeys(keys))


def noise_dir() -> Path:
    env = os.environ.get("BENCHRUN_NOISE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "benchrun" / "noise"


def machine_key(hardware: Optional[dict[str, Any]]) -> str:
    """A file-name-safe key for the machine a result was measured on: CPU model, cores, memory
    (GiB) and GPU, as result.json `hardware` records them."""
    hw = hardware or {}
    mem = hw.get("memory_mib")
    parts = [hw.get("cpu") or "cpu", f"{hw.get('cpu_count') or '?'}c",
             f"{round(mem / 1024)}g" if isinstance(mem, (int, float)) else "?g", hw.get("gpu") or "nogpu"]
    return re.sub(r"[^A-Za-z0-9._-]+", "-", "_".join(str(p) for p in parts)).strip("-").lower()


def calibrate(dirs: list[Path]) -> dict[str, Any]:
    """The calibration of >= 2 identical runs (see the module docstring). Raises ReportError
    with one line when the runs are not identical or too few."""
    if len(dirs) < 2:
        raise ReportError("calibrate needs at least 2 identical runs (benchrun calibrate DIR DIR ...)")
    runs = []
    for d in dirs:
        jobs = {j.key: j for j in load_jobs(Path(d)) if j.ok}
        if not jobs:
            raise ReportError(f"no ok jobs in {d}")
        runs.append(jobs)
    keys = set(runs[0])
    for d, r in zip(dirs[1:], runs[1:]):
        if set(r) != keys:
            raise ReportError(f"{d} has other jobs than {dirs[0]}: calibrate wants runs of one command")
    first = runs[0][next(iter(keys))]
    machine = machine_key(first.result.get("hardware"))
    for r, d in zip(runs, dirs):
        for k, j in r.items():
            why = comparability(runs[0][k].result, j.result)
            if why:
                raise ReportError(f"{d}: job {k} is not identical to {dirs[0]}'s: {why[0]}")
            if machine_key(j.result.get("hardware")) != machine:
                raise ReportError(f"{d} was measured on another machine ({machine_key(j.result.get('hardware'))})")
    workloads: dict[str, Any] = {}
    for wl in sorted({k[1] for k in keys}):
        wkeys = sorted(k for k in keys if k[1] == wl)
        entry: dict[str, Any] = {}
        for mk in metric_keys():
            groups = [[r[k].value(mk) for r in runs] for k in wkeys]
            sd, df = noise.pooled_log_sd(groups)
            if sd is None:
                continue
            entry[mk] = {"run_sd": sd, "df": df, "floor_pct": noise.floor_pct(sd, df), "jobs": len(wkeys)}
        # Per job as well: jobs differ in how noisy they are (here the CV of ITL p50 ranged
        # 32-173% across the six quickstart jobs), and a pooled SD then under-states the noisy
        # ones; a diff of the same job uses its own, with its own (smaller) df.
        per_job: dict[str, Any] = {}
        for k in wkeys:
            e: dict[str, Any] = {}
            for mk in metric_keys():
                sd, df = noise.pooled_log_sd([[r[k].value(mk) for r in runs]])
                if sd is not None:
                    e[mk] = {"run_sd": sd, "df": df}
            per_job[job_id(k[0], k[2])] = e
        reps = runs[0][wkeys[0]].repeats
        busy_pct = [b for b in (r[k].facts.cpu.other_pct for r in runs for k in wkeys) if b is not None]
        # How busy the box was while the calibration runs were measured: runs at most this busy
        # are judged by it (compare.py); busier ones were not represented, so cannot be told.
        workloads[wl] = {"repeats": reps, "runs": len(runs), "other_cpu_pct_max": max(busy_pct) if busy_pct else None,
                         "metrics": entry, "jobs": per_job}
    return {"version": VERSION, "machine": machine, "hardware": first.result.get("hardware"),
            "created": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "runs": [str(d) for d in dirs], "alpha": noise.ALPHA, "workloads": workloads}


def save(cal: dict[str, Any], path: Optional[Path] = None) -> Path:
    """Write (merging other workloads already calibrated on this machine)."""
    path = Path(path) if path else noise_dir() / f"{cal['machine']}.json"
    old = load_file(path) or {}
    if old.get("machine") == cal["machine"]:
        cal = {**cal, "workloads": {**old.get("workloads", {}), **cal["workloads"]}}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(cal, indent=2) + "\n")
    return path


def load_file(path: Path) -> Optional[dict[str, Any]]:
    try:
        cal = json.loads(Path(path).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise ReportError(f"unreadable noise calibration {path}: {e}") from None
    if not isinstance(cal, dict) or cal.get("version") != VERSION:
        raise ReportError(f"{path} is not a benchrun noise calibration (version {VERSION})")
    return cal


def job_id(model: str, concurrency: int) -> str:
    return f"{model}/c{concurrency}"


def lookup(hardware: Optional[dict[str, Any]], workload: str, repeats: int, path: Optional[Path] = None,
           job: Optional[str] = None) -> Optional[dict[str, Any]]:
    """{metric key: (run_sd, df)} for runs of `workload` with `repeats` measured on `hardware`,
    from `path` or the machine's file; None when there is none that applies. job (job_id):
    that job's own spread where the calibration has it, else the pooled one."""
    cal = load_file(Path(path) if path else noise_dir() / f"{machine_key(hardware)}.json")
    if not cal:
        return None
    w = (cal.get("workloads") or {}).get(workload)
    if not w or int(w.get("repeats") or 1) != int(repeats or 1):
        return None
    def pick(d: dict[str, Any]) -> dict[str, Any]:
        return {k: (float(v["run_sd"]), float(v["df"])) for k, v in (d or {}).items()
                if isinstance(v.get("run_sd"), (int, float)) and v.get("df") and math.isfinite(v["run_sd"])}

    out = pick(w.get("metrics"))
    if job and job in (w.get("jobs") or {}):
        out.update(pick(w["jobs"][job]))
    out[BUSY_KEY] = w.get("other_cpu_pct_max")
    return out


def describe(cal: dict[str, Any]) -> str:
    """The floors as a table for the terminal."""
    lines = [f"machine: {cal['machine']}  ({len(cal['runs'])} runs)"]
    for wl, w in cal["workloads"].items():
        lines.append(f"workload {wl} (repeats={w['repeats']}): smallest change one run can separate, at 5%:")
        for k, v in w["metrics"].items():
            lines.append(f"  {k:28s} run-to-run SD {v['run_sd'] * 100:5.1f}%   "
                         f"floor ±{v['floor_pct'] * 100:5.1f}%   df {v['df']}")
    return "\n".join(lines)
