"""Shipped tests for a reply that writes add(a, b) (workload agentic_small), run by the check
`{type: tests_pass, tests: tests_add.py}` against the reply's code block, saved as solution.py."""
from solution import add


def test_add_small_numbers():
    assert add(2, 3) == 5


def test_add_negative_and_zero():
    assert add(-4, 1) == -3
    assert add(0, 0) == 0
