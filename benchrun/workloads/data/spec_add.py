"""Shipped tests for a reply that writes add(a, b) (workload agentic_small).

Used as `{type: pytest_passes, reference: spec_add.py}`: that check imports this module's public
names -- these test functions -- into the module it builds from the reply (test_generated.py),
and pytest runs every test function found there. So these tests run against the reply's own
add, inside the sandbox; each imports it from the reply's module when it runs."""


def test_add_small_numbers():
    from test_generated import add
    assert add(2, 3) == 5


def test_add_negative_and_zero():
    from test_generated import add
    assert add(-4, 1) == -3
    assert add(0, 0) == 0
