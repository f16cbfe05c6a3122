"""Shipped tests for a reply that writes count_vowels(s) (workload agentic_small); how they
reach the reply's code: see spec_add.py."""


def test_count_vowels_in_a_word():
    from test_generated import count_vowels
    assert count_vowels("banana") == 3


def test_count_vowels_none():
    from test_generated import count_vowels
    assert count_vowels("rhythm") == 0
    assert count_vowels("") == 0
