"""result.json: one typed object (JobResult), validated against the shipped JSON Schema (its
`metrics` part generated from the metric catalogue), written atomically; and read back,
tolerantly, for reports, summaries and diffs."""
from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass, field, fields
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Optional

from benchrun.redact import redact

# 2: metrics.wall_s is one repeat's wall time (1: the sum over repeats), metrics.wall_s_total the sum.
SCHEMA_VERSION = 2
RESULT_FILE = "result.json"


@dataclass
class JobResult:
    """What one job measured, as result.json holds it. job.py builds it (new_result) and fills
    it as the job runs; write_result writes it. Field order is the file's key order. The
    shipped schema names exactly these fields at the top level (tests/unit/test_results.py); the
    parts inside (model, server, metrics: the catalogue, ...) are the schema's to describe.
    The parts only a load that ran has (OPTIONAL) are not written while None: absent means
    "not measured"; energy is written null when there is none to read."""

    schema_version: int
    status: str  # ok | failed | interrupted (report readers also meet "unreadable")
    error: Optional[str]
    run_id: str
    job: dict[str, Any]  # num, name, started_at, finished_at, overrides (the command line), settings (its values)
    model: dict[str, Any]
    server: dict[str, Any]
    concurrency: int
    repeats: int
    order: dict[str, Any]  # how the sweep ordered its jobs (order.py): mode, seed, round, rounds
    workload: dict[str, Any]
    hardware: dict[str, Any]
    load: dict[str, Any]
    metrics: dict[str, Any]  # the catalogue's metrics over every measured request (catalogue.py)
    server_timings: dict[str, Any]
    tasks: list[Any] = field(default_factory=list)
    repeat_metrics: Optional[list[Any]] = None  # one metrics dict per repeat this job ran
    repeats_ci95: Optional[dict[str, Any]] = None
    goodput: Optional[dict[str, Any]] = None
    server_metrics: Optional[dict[str, Any]] = None  # /metrics counter deltas and gauge peaks
    energy: Optional[dict[str, Any]] = None
    telemetry: Optional[dict[str, Any]] = None
    # The client's check on itself (load/selfcheck.py): its loop lag, CPU share, saturated, why.
    client: Optional[dict[str, Any]] = None

    OPTIONAL = ("repeat_metrics", "repeats_ci95", "goodput", "server_metrics", "telemetry", "client")

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) is not None or f.name not in self.OPTIONAL}


def result_schema() -> dict[str, Any]:
    """The shipped schema, its `metrics` part generated from the metric catalogue (so a metric
    is declared in one place, benchrun/measure/catalogue.py)."""
    from benchrun.measure.catalogue import metrics_schema

    schema: dict[str, Any] = json.loads(resources.files("benchrun").joinpath("schemas/result.schema.json").read_text())
    schema["properties"]["metrics"] = metrics_schema()
    return schema


@lru_cache(maxsize=1)
def _validator() -> Any:
    import jsonschema

    return jsonschema.Draft202012Validator(result_schema())


def validate_result(result: dict[str, Any]) -> None:
    """Raise ValueError (one line) when `result` does not match the schema."""
    err = next(iter(sorted(_validator().iter_errors(result), key=lambda e: list(e.path))), None)
    if err is not None:
        where = "/".join(str(p) for p in err.absolute_path) or "(root)"
        raise ValueError(f"result.json invalid at {where}: {err.message}")


def atomic_write_text(path: Path, text: str) -> None:
    """Temp file in the same dir + rename: a crash never leaves a half-written file.
    API keys benchrun has read are masked (benchrun/redact.py)."""
    text = redact(text)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o644 & ~umask)  # mkstemp makes 0600; results are meant to be shared
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_result(job_dir: Path, result: JobResult | dict[str, Any]) -> Path:
    """Write result.json. A schema mismatch never loses what was measured, nor stops a sweep:
    the result is written anyway, failed, with the mismatch in `error` (of the object too)."""
    d = result.to_dict() if isinstance(result, JobResult) else result
    try:
        validate_result(d)
    except ValueError as e:
        d["error"] = f"{d['error']}; {e}" if d.get("error") else str(e)
        if d.get("status") != "interrupted":
            d["status"] = "failed"
        if isinstance(result, JobResult):
            result.error, result.status = d["error"], d["status"]
    path = job_dir / RESULT_FILE
    atomic_write_text(path, json.dumps(d, indent=2, default=str) + "\n")
    return path


def read_result(path: Path) -> dict[str, Any]:
    with open(path) as fh:
        res: dict[str, Any] = json.load(fh)
    return res


UNREADABLE = "unreadable"
_JOB_DIR = re.compile(r"^\d+_(?P<model>.+)_c(?P<c>\d+)$")  # hydra's subdir: <num>_<model>_c<N>


def load_result(path: Path) -> dict[str, Any]:
    """result.json for reports and summaries: one that cannot be read becomes a failed job
    (status `unreadable`, named from its dir), so one bad file never hides the other results."""
    try:
        res = read_result(path)
        _ = res["model"]["name"], res["workload"]["name"]
        return res
    except (OSError, ValueError, KeyError, TypeError) as e:
        what = "not a benchrun result" if isinstance(e, (KeyError, TypeError)) else f"{type(e).__name__}: {e}"
    m = _JOB_DIR.match(path.parent.name)
    return {"status": UNREADABLE, "error": f"unreadable result.json ({what})",
            "model": {"name": m["model"] if m else path.parent.name}, "workload": {"name": "?"},
            "concurrency": int(m["c"]) if m else 1, "server": {}, "hardware": {}, "metrics": {}}


def find_results(root: Path) -> list[Path]:
    """Every result.json in a job dir or below a sweep dir, in job order."""
    root = Path(root)
    if (root / RESULT_FILE).is_file():
        return [root / RESULT_FILE]
    found = [p for p in root.rglob(RESULT_FILE) if ".hydra" not in p.parts]

    def job_num(p: Path) -> tuple[int, int, str]:
        head = p.parent.name.split("_", 1)[0]
        return (0, int(head), str(p)) if head.isdigit() else (1, 0, str(p))

    return sorted(found, key=job_num)
