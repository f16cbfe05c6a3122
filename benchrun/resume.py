"""resume=DIR: finish a sweep in place. Jobs that finished ok there with the same settings
(results older than job.settings: the same overrides) are kept; every other earlier attempt
is moved aside, numbered, never overwritten: it is measured data."""
from __future__ import annotations

import os
from pathlib import Path

from benchrun.config import split_override
from benchrun.hydra_setup import RUN_ID_ENV, ConfigError
from benchrun.results import RESULT_FILE, find_results, read_result

# How benchrun is invoked, not what a job measures: never part of a job's identity.
INVOCATION_KEYS = ("resume", "report", "debug", "order", "order_seed")
JOB_FILES = (RESULT_FILE, "requests.jsonl", "server.log", "telemetry.jsonl", "error.log")


def job_overrides(overrides) -> list[str]:
    """A job's overrides without the invocation-only keys (resume=, report=, debug=), so a
    rerun job and a kept one of the same preset record the same overrides."""
    return [o for o in overrides if split_override(o)[0] not in INVOCATION_KEYS]


def resume_dir(argv: list[str]) -> Path | None:
    """resume=DIR: the sweep dir to finish; its run id becomes this invocation's."""
    vals = [a.split("=", 1)[1] for a in argv if a.startswith("resume=")]
    if not vals or not vals[-1] or vals[-1] in ("null", "None"):
        return None
    d = Path(vals[-1])
    if not d.is_dir():
        raise ConfigError(f"resume: no such run or sweep dir: {d}")
    rid = d.resolve().name
    for p in find_results(d)[:1]:
        try:
            rid = read_result(p).get("run_id") or rid
        except (OSError, ValueError):
            pass
    os.environ[RUN_ID_ENV] = rid
    return d


def kept_on_resume(job_dir: Path, overrides: list[str], settings: dict) -> bool:
    """True when this job already finished ok in job_dir with the same settings (an older
    result without job.settings: the same overrides). Otherwise any earlier attempt there is
    set aside (set_aside) and the job reruns."""
    prev = job_dir / RESULT_FILE
    if prev.is_file():
        try:
            old = read_result(prev)
        except (OSError, ValueError):
            old = {}
        job = old.get("job") or {}
        if "settings" in job:
            same = job["settings"] == settings
        else:
            same = sorted(job_overrides(job.get("overrides") or [])) == sorted(job_overrides(overrides))
        if old.get("status") == "ok" and same:
            return True
    set_aside(job_dir)
    return False


def set_aside(job_dir: Path) -> int | None:
    """Renames an earlier attempt's files to NAME.previous-N.EXT, N = 1, 2, ... one number per
    attempt (also one SLURM killed before it wrote result.json: requests.jsonl is appended to,
    so it must not be mixed with the rerun's). Returns N, or None when there was nothing."""
    found = [job_dir / n for n in JOB_FILES if (job_dir / n).is_file()]
    if not found:
        return None
    n = 1
    while any((job_dir / _aside(name, n)).exists() for name in JOB_FILES):
        n += 1
    for f in found:
        f.rename(job_dir / _aside(f.name, n))
    return n


def _aside(name: str, n: int) -> str:
    stem, dot, suffix = name.partition(".")
    return f"{stem}.previous-{n}{dot}{suffix}"
