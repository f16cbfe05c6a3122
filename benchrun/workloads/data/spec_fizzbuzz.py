"""Shipped tests for a reply that writes fizzbuzz(n) (workload agentic_small); how they reach
the reply's code: see spec_add.py."""


def test_fizzbuzz_fizz():
    from test_generated import fizzbuzz
    assert fizzbuzz(3) == "Fizz"
    assert fizzbuzz(9) == "Fizz"


def test_fizzbuzz_buzz():
    from test_generated import fizzbuzz
    assert fizzbuzz(5) == "Buzz"
    assert fizzbuzz(10) == "Buzz"


def test_fizzbuzz_both_and_neither():
    from test_generated import fizzbuzz
    assert fizzbuzz(15) == "FizzBuzz"
    assert fizzbuzz(7) == "7"
