"""The checks that run nothing (code and JSON extraction, python_parses, has_docstrings, defines,
regex, json_schema) on hand-written good and bad replies; unknown or malformed checks.
This half needs no server, process or socket; the rest is in tests/integration/test_checks.py."""
from __future__ import annotations

import pytest
from support import fenced

from benchrun.checks import CHECKS, normalize, run_check
from benchrun.checks.extract import extract_code, extract_json

GOOD_DOC = fenced('''
def binary_search(items, target):
    """Find target in a sorted list.

    Args:
        items: Sorted list to search.
        target: Value to look for.

    Returns:
        The index of target, or -1 when it is absent.
    """
    lo, hi = 0, len(items) - 1
    while lo <= hi:
        mid = (lo + hi) // 2
        if items[mid] == target:
            return mid
        lo, hi = (mid + 1, hi) if items[mid] < target else (lo, mid - 1)
    return -1
''')


def test_extract_code_prefers_python_block_and_survives_a_cut_fence():
    text = "```bash\nls\n```\n```python\nx = 1\n```"
    assert extract_code(text) == "x = 1\n"
    assert extract_code("intro\n```python\ny = 2\nz = 3") == "y = 2\nz = 3"  # cut at max_tokens
    assert extract_code("no fences at all") == "no fences at all"
    # Backticks inside the code do not close the block: only a fence at the start of a line does.
    assert extract_code('```python\nDOC = """```x```"""\n  ```\nafter') == 'DOC = """```x```"""\n'


def test_extract_json_from_block_or_prose():
    assert extract_json('```json\n{"a": 1}\n```') == {"a": 1}
    assert extract_json('The plan is {"a": [1, 2]} as asked.') == {"a": [1, 2]}
    with pytest.raises(ValueError):
        extract_json("no json here")


def test_python_parses():
    assert run_check(fenced("def f(x):\n    return x + 1"), "python_parses")["passed"]
    bad = run_check(fenced("def f(x)\n    return x"), "python_parses")
    assert not bad["passed"] and "SyntaxError line 1" in bad["reason"]
    assert bad["duration_ms"] >= 0 and bad["name"] == "python_parses"


def test_has_docstrings_good_and_missing():
    assert run_check(GOOD_DOC, "has_docstrings")["passed"]
    none = run_check(fenced("def f(a):\n    return a"), "has_docstrings")
    assert not none["passed"] and "f has no docstring" in none["reason"]
    no_args = run_check(fenced('def f(a):\n    """Do it.\n\n    Returns:\n        a\n    """\n    return a'),
                        "has_docstrings")
    assert not no_args["passed"] and "Args:" in no_args["reason"]
    cls = run_check(fenced('class A:\n    """An A."""\n\n    def m(self):\n        pass'), "has_docstrings")
    assert not cls["passed"] and "m has no docstring" in cls["reason"]


def test_defines():
    spec = {"type": "defines", "names": ["app", "UserCreate"]}
    good = fenced("from fastapi import FastAPI\napp = FastAPI()\nclass UserCreate:\n    pass")
    assert run_check(good, spec)["passed"]
    bad = run_check(fenced("app = 1"), spec)
    assert not bad["passed"] and bad["reason"] == "missing UserCreate"


def test_regex_present_and_absent():
    assert run_check("return 201", {"type": "regex", "pattern": r"\b201\b"})["passed"]
    assert not run_check("return 200", {"type": "regex", "pattern": r"\b201\b"})["passed"]
    assert run_check("STATUS", {"type": "regex", "pattern": "status", "flags": "i"})["passed"]
    assert not run_check("eval(x)", {"type": "regex", "pattern": r"eval\(", "absent": True})["passed"]


def test_json_schema():
    spec = {"type": "json_schema", "schema": {"type": "object", "required": ["verdict"],
                                              "properties": {"verdict": {"enum": ["pass", "fail"]}}}}
    assert run_check('```json\n{"verdict": "pass"}\n```', spec)["passed"]
    bad = run_check('```json\n{"verdict": "maybe"}\n```', spec)
    assert not bad["passed"] and "verdict" in bad["reason"]
    assert not run_check("not json", spec)["passed"]


def test_unknown_or_malformed_check_is_a_one_line_error():
    with pytest.raises(ValueError, match="unknown check 'compiles'"):
        normalize("compiles")
    with pytest.raises(ValueError, match="type"):
        normalize({"names": ["x"]})
    assert set(CHECKS) == {"python_parses", "has_docstrings", "defines", "pytest_passes", "tests_pass", "runs",
                           "json_schema", "regex"}
