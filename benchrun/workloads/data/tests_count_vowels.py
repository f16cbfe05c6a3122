"""Shipped tests for a reply that writes count_vowels(s) (workload agentic_small), run by the check
`{type: tests_pass, tests: tests_count_vowels.py}` against the reply's code block, saved as solution.py."""
from solution import count_vowels


def test_count_vowels_in_a_word():
    assert count_vowels("banana") == 3


def test_count_vowels_none():
    assert count_vowels("rhythm") == 0
    assert count_vowels("") == 0
