"""Checks that run generated code, always inside the Sandbox."""
from __future__ import annotations

import ast
import re
from pathlib import Path

from benchrun.checks.extract import extract_code
from benchrun.checks.sandbox import Limits, Sandbox, isolation
from benchrun.checks.static import parse, top_level_names

Outcome = tuple[bool, str]


def _tail(s: str, n: int = 160) -> str:
    lines = [line for line in s.strip().splitlines() if line.strip()]
    return (lines[-1] if lines else "")[-n:]


def _limits(spec: dict, ctx) -> Limits:
    lim = Limits(**{**vars(ctx.limits)})
    for k in ("cpu_s", "memory_mib", "nproc", "fsize_mib", "wall_s"):
        if spec.get(k) is not None:
            setattr(lim, k, spec[k])
    return lim


def against_reference(tests: ast.Module, ref_module: str, ref_names: set[str]) -> str:
    """The generated tests, rewired to the shipped reference: definitions that shadow a
    reference name and imports of those names from elsewhere are dropped, and the names are
    imported from the reference module. Tests then exercise the reference, not the model's copy."""
    body = []
    for n in tests.body:
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n.name in ref_names:
            continue
        if isinstance(n, ast.ImportFrom) and n.module != ref_module:
            keep = [a for a in n.names if (a.asname or a.name) not in ref_names]
            if not keep:
                continue
            n.names = keep
        body.append(n)
    head = ast.parse(f"from {ref_module} import {', '.join(sorted(ref_names))}").body
    return ast.unparse(ast.Module(body=head + body, type_ignores=[]))


_COUNTS = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed)")


def _shipped(spec: dict, ctx, key: str, check: str) -> Path:
    name = spec.get(key)
    if not name:
        raise ValueError(f"check `{check}` needs `{key}: FILE.py`")
    path = Path(name) if Path(name).is_absolute() else ctx.data_dir / name
    if not path.is_file():
        raise ValueError(f"{check} {key} not found: {path}")
    return path


def _pytest(files: dict[str, str], test_file: str, spec: dict, ctx) -> Outcome:
    """pytest over `test_file` in a sandbox holding `files`: at least `min_tests` collected and
    every one passes."""
    with Sandbox(_limits(spec, ctx), isolation(ctx.isolation)) as sb:
        for name, src in files.items():
            sb.write(name, src)
        r = sb.run(["python", "-m", "pytest", "-q", "-p", "no:cacheprovider", test_file])
    if r.timed_out:
        return False, f"pytest timed out after {r.wall_s:.1f} s"
    counts: dict[str, int] = {}
    for n, kind in _COUNTS.findall(r.stdout.splitlines()[-1] if r.stdout.strip() else ""):
        counts[kind.rstrip("s") if kind.startswith("error") else kind] = int(n)
    passed, collected = counts.get("passed", 0), sum(counts.values())
    need = int(spec.get("min_tests", 1))
    if r.returncode == 5 or collected == 0:
        return False, "no tests collected"
    if r.returncode != 0 or passed != collected:
        detail = ", ".join(f"{v} {k}" for k, v in counts.items()) or _tail(r.stdout + r.stderr)
        return False, f"pytest: {detail}"
    if collected < need:
        return False, f"only {collected} test(s) collected, need {need}"
    return True, f"{passed} passed"


def pytest_passes(text: str, spec: dict, ctx) -> Outcome:
    """Generated tests run against the reference implementation shipped with the workload
    (`reference: FILE.py`)."""
    ref_path = _shipped(spec, ctx, "reference", "pytest_passes")
    tree, err = parse(text)
    if tree is None:
        return False, err
    ref_src = ref_path.read_text()
    ref_names = {n for n in top_level_names(ast.parse(ref_src)) if not n.startswith("_")}
    return _pytest({ref_path.name: ref_src,
                    "test_generated.py": against_reference(tree, ref_path.stem, ref_names)},
                   "test_generated.py", spec, ctx)


def tests_pass(text: str, spec: dict, ctx) -> Outcome:
    """The reply's code passes tests shipped with the workload (`tests: FILE.py`, which
    imports what it tests from the module `solution`, the reply's code block)."""
    tests_path = _shipped(spec, ctx, "tests", "tests_pass")
    tree, err = parse(text)
    if tree is None:
        return False, err
    return _pytest({"solution.py": extract_code(text), "test_shipped.py": tests_path.read_text()},
                   "test_shipped.py", spec, ctx)


def runs(text: str, spec: dict, ctx) -> Outcome:
    """The program exits with status 0 (or, with `survive_s`, is still running after that
    long), fed `stdin`."""
    code = extract_code(text)
    if not code.strip():
        return False, "no code in the reply"
    survive = spec.get("survive_s")
    lim = _limits(spec, ctx)
    with Sandbox(lim, isolation(ctx.isolation)) as sb:
        sb.write("main.py", code)
        r = sb.run(["python", "main.py", *map(str, spec.get("args", []))], stdin=spec.get("stdin"),
                   wall_s=float(survive) if survive else lim.wall_s)
    if r.timed_out:
        return (True, f"still running after {survive} s") if survive else \
               (False, f"timed out after {lim.wall_s} s")
    if r.returncode == 0:
        return True, f"exited 0 in {r.wall_s:.1f} s"
    why = f"killed by signal {r.returncode - 128}" if r.returncode and r.returncode > 128 else f"exit {r.returncode}"
    tail = _tail(r.stderr)
    return False, f"{why}{': ' + tail if tail else ''}"
