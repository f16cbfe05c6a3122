"""Quality checks on model replies, declared per turn or per agent in the workload YAML:

  checks:
    - python_parses                                     # the fenced code block parses
    - {type: has_docstrings}                            # Google-style: Args:/Returns: as needed
    - {type: defines, names: [app, User]}
    - {type: pytest_passes, reference: calculate_discount.py, min_tests: 3}   # the reply's tests
    - {type: tests_pass, tests: tests_add.py, min_tests: 2}                   # the reply's code
    - {type: runs, stdin: "q\\n", survive_s: 2}
    - {type: json_schema, schema: {type: object, required: [id]}}
    - {type: regex, pattern: "status_code\\s*=\\s*201", flags: i}

A check is a function (text, spec, ctx) -> (passed, reason); code that runs goes through
sandbox.Sandbox. Outcomes land in result.json `tasks[].checks`: passed true/false, or null
when a check that executes code was not run because no sandbox could contain it here."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchrun.checks import execute, static
from benchrun.checks.sandbox import Limits, NoSandbox, isolation

CHECKS: dict[str, Callable[[str, dict, Any], tuple[bool, str]]] = {
    "python_parses": static.python_parses,
    "has_docstrings": static.has_docstrings,
    "defines": static.defines,
    "regex": static.regex,
    "json_schema": static.json_schema,
    "pytest_passes": execute.pytest_passes,
    "tests_pass": execute.tests_pass,
    "runs": execute.runs,
}
DATA_DIR = Path(__file__).resolve().parent.parent / "workloads" / "data"


@dataclass
class CheckContext:
    data_dir: Path = DATA_DIR  # where `reference:` and `tests:` files live
    limits: Limits = field(default_factory=Limits)
    isolation: str = "auto"


def normalize(spec: Any) -> dict:
    """`name` or {type: name, ...} -> {type: name, ...}; unknown names are a one-line error."""
    if isinstance(spec, str):
        spec = {"type": spec}
    if not isinstance(spec, dict) or "type" not in spec:
        raise ValueError(f"a check is a name or a mapping with `type`, got {spec!r}")
    if spec["type"] not in CHECKS:
        raise ValueError(f"unknown check {spec['type']!r}; known: {', '.join(CHECKS)}")
    return dict(spec)


def run_check(text: str, spec: Any, ctx: CheckContext | None = None) -> dict:
    """One check -> {"name", "passed", "reason", "duration_ms"}. A crash inside a check is a
    failed check with the error as reason, never an exception."""
    spec = normalize(spec)
    ctx = ctx or CheckContext()
    t0 = time.perf_counter()
    try:
        passed, reason = CHECKS[spec["type"]](text, spec, ctx)
    except NoSandbox as e:  # never run unconfined by accident: not run, and why
        passed, reason = None, f"not run: {e}"
    except Exception as e:  # noqa: BLE001 -- a broken check must not lose the job
        passed, reason = False, f"check error: {type(e).__name__}: {e}"
    return {"name": spec.get("name", spec["type"]), "passed": None if passed is None else bool(passed),
            "reason": reason, "duration_ms": round((time.perf_counter() - t0) * 1000, 3)}


def task_verdict(checks: list[dict]) -> bool | None:
    """A task passes when every check passed; one failure fails it; a check not run leaves it
    undecided (None), as does having no checks."""
    if any(c["passed"] is False for c in checks):
        return False
    if not checks or any(c["passed"] is None for c in checks):
        return None
    return True


__all__ = ["CHECKS", "CheckContext", "Limits", "NoSandbox", "isolation", "normalize", "run_check",
           "task_verdict"]
