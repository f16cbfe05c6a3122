"""Each check on hand-written good and bad replies (the code-running ones in the real sandbox)."""
from __future__ import annotations

import pytest

from benchrun.checks import CHECKS, normalize, run_check
from benchrun.checks.extract import extract_code, extract_json


def fenced(code: str, lang: str = "python") -> str:
    return f"Here you go:\n\n```{lang}\n{code}\n```\n\nHope this helps."


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

GOOD_TESTS = fenced('''
import pytest
from calculate_discount import calculate_discount

def test_half():
    assert calculate_discount(100, 50) == 50

def test_zero():
    assert calculate_discount(80, 0) == 80

def test_invalid():
    with pytest.raises(ValueError):
        calculate_discount(10, 120)
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
    assert set(CHECKS) == {"python_parses", "has_docstrings", "defines", "pytest_passes", "runs",
                           "json_schema", "regex"}


PYTEST = {"type": "pytest_passes", "reference": "calculate_discount.py", "min_tests": 3}


def test_pytest_passes_on_good_tests():
    r = run_check(GOOD_TESTS, PYTEST)
    assert r["passed"], r["reason"]
    assert r["reason"] == "3 passed"


def test_pytest_fails_on_a_wrong_test():
    wrong = GOOD_TESTS.replace("== 50", "== 49")
    r = run_check(wrong, PYTEST)
    assert not r["passed"] and "1 failed" in r["reason"] and "2 passed" in r["reason"]


def test_pytest_needs_min_tests_and_runs_the_reference_not_a_copy():
    few = fenced("from calculate_discount import calculate_discount\n\ndef test_a():\n    assert calculate_discount(10, 10) == 9")
    r = run_check(few, PYTEST)
    assert not r["passed"] and "only 1 test(s) collected, need 3" in r["reason"]
    # A reply that defines its own (wrong) calculate_discount must still test the reference.
    shadow = fenced("def calculate_discount(p, d):\n    return 0\n\n"
                    "def test_a():\n    assert calculate_discount(10, 10) == 9\n"
                    "def test_b():\n    assert calculate_discount(10, 0) == 10\n"
                    "def test_c():\n    assert calculate_discount(0, 50) == 0")
    r = run_check(shadow, PYTEST)
    assert r["passed"], r["reason"]
    assert not run_check(fenced("def test_x(:\n pass"), PYTEST)["passed"]
    assert run_check(fenced("x = 1"), PYTEST)["reason"] == "no tests collected"


def test_runs_exit_code_stdin_and_survival():
    echo = fenced("import sys\nfor line in sys.stdin:\n    if line.strip() == 'q':\n        sys.exit(0)\nsys.exit(3)")
    assert run_check(echo, {"type": "runs", "stdin": "a\nq\n"})["passed"]
    r = run_check(echo, {"type": "runs", "stdin": "a\n"})
    assert not r["passed"] and r["reason"].startswith("exit 3")
    crash = run_check(fenced("raise RuntimeError('boom')"), "runs")
    assert not crash["passed"] and "RuntimeError: boom" in crash["reason"]
    server = fenced("import time\nwhile True:\n    time.sleep(0.05)")
    r = run_check(server, {"type": "runs", "survive_s": 1})
    assert r["passed"] and r["reason"] == "still running after 1 s"
    r = run_check(server, {"type": "runs", "wall_s": 1})
    assert not r["passed"] and "timed out" in r["reason"]
