"""Shipped tests for a reply that writes fizzbuzz(n) (workload agentic_small), run by the check
`{type: tests_pass, tests: tests_fizzbuzz.py}` against the reply's code block, saved as solution.py."""
from solution import fizzbuzz


def test_fizzbuzz_fizz():
    assert fizzbuzz(3) == "Fizz"
    assert fizzbuzz(9) == "Fizz"


def test_fizzbuzz_buzz():
    assert fizzbuzz(5) == "Buzz"
    assert fizzbuzz(10) == "Buzz"


def test_fizzbuzz_both_and_neither():
    assert fizzbuzz(15) == "FizzBuzz"
    assert fizzbuzz(7) == "7"
