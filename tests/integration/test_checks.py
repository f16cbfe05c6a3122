"""Each check on hand-written good and bad replies (the code-running ones in the real sandbox).
This half runs servers, processes or sockets; the parts that need none are in tests/unit/test_checks.py."""
from __future__ import annotations

from support import fenced

from benchrun.checks import run_check

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


PYTEST = {"type": "pytest_passes", "reference": "calculate_discount.py", "min_tests": 3}


def test_pytest_passes_on_good_tests():
    r = run_check(GOOD_TESTS, PYTEST)
    assert r["passed"], r["reason"]
    assert r["reason"] == "3 passed"


def test_pytest_fails_on_a_wrong_test():
    wrong = GOOD_TESTS.replace("== 50", "== 49")
    r = run_check(wrong, PYTEST)
    assert r["passed"] is False and r["reason"] == "pytest: 1 failed, 2 passed", r  # ran, and judged


def test_pytest_needs_min_tests_and_runs_the_reference_not_a_copy():
    few = fenced("from calculate_discount import calculate_discount\n\ndef test_a():\n    assert calculate_discount(10, 10) == 9")
    r = run_check(few, PYTEST)
    assert r["passed"] is False and r["reason"] == "only 1 test(s) collected, need 3", r
    # A reply that defines its own (wrong) calculate_discount must still test the reference.
    shadow = fenced("def calculate_discount(p, d):\n    return 0\n\n"
                    "def test_a():\n    assert calculate_discount(10, 10) == 9\n"
                    "def test_b():\n    assert calculate_discount(10, 0) == 10\n"
                    "def test_c():\n    assert calculate_discount(0, 50) == 0")
    r = run_check(shadow, PYTEST)
    assert r["passed"], r["reason"]
    r = run_check(fenced("def test_x(:\n pass"), PYTEST)
    assert r["passed"] is False and r["reason"].startswith("SyntaxError line 1: "), r
    r = run_check(fenced("x = 1"), PYTEST)
    assert r["passed"] is False and r["reason"] == "no tests collected", r


def test_the_replys_code_is_judged_by_the_shipped_tests():
    spec = {"type": "tests_pass", "tests": "tests_fizzbuzz.py", "min_tests": 3}
    good = fenced('def fizzbuzz(n):\n    return "FizzBuzz" if n % 15 == 0 else "Fizz" if n % 3 == 0 '
                  'else "Buzz" if n % 5 == 0 else str(n)')
    r = run_check(good, spec)
    assert r["passed"] and r["reason"] == "3 passed", r
    # The order mistake small models make: 15 is caught as Fizz, and 5 as itself.
    wrong = fenced('def fizzbuzz(n):\n    return "Fizz" if n % 3 == 0 else str(n)')
    r = run_check(wrong, spec)
    assert r["passed"] is False and r["reason"] == "pytest: 2 failed, 1 passed", r
    r = run_check(fenced("def fizz(n):\n    return n"), spec)  # the function is missing
    assert r["passed"] is False and r["reason"].startswith("pytest: "), r
    assert run_check(good, {**spec, "min_tests": 4})["reason"] == "only 3 test(s) collected, need 4"


def test_runs_exit_code_stdin_and_survival():
    echo = fenced("import sys\nfor line in sys.stdin:\n    if line.strip() == 'q':\n        sys.exit(0)\nsys.exit(3)")
    assert run_check(echo, {"type": "runs", "stdin": "a\nq\n"})["passed"]
    r = run_check(echo, {"type": "runs", "stdin": "a\n"})
    assert r["passed"] is False and r["reason"] == "exit 3", r
    crash = run_check(fenced("raise RuntimeError('boom')"), "runs")
    assert crash["passed"] is False and crash["reason"] == "exit 1: RuntimeError: boom", crash
    server = fenced("import time\nwhile True:\n    time.sleep(0.05)")
    r = run_check(server, {"type": "runs", "survive_s": 1})
    assert r["passed"] and r["reason"] == "still running after 1 s"
    r = run_check(server, {"type": "runs", "wall_s": 1})
    assert r["passed"] is False and r["reason"] == "timed out after 1 s", r
