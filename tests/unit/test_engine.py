"""Load shapes: closed loop, open loop schedules and lateness, duration limit, multi-turn.
This half needs no server, process or socket; the rest is in tests/integration/test_engine.py."""
from __future__ import annotations

import numpy as np
import pytest

from benchrun.load.engine import arrival_offsets_ns


def test_poisson_schedule_is_seeded_and_has_the_mean_rate():
    a = arrival_offsets_ns(4000, rate=50.0, arrival="poisson", seed=7)
    assert a == arrival_offsets_ns(4000, rate=50.0, arrival="poisson", seed=7)
    assert a != arrival_offsets_ns(4000, rate=50.0, arrival="poisson", seed=8)
    gaps = np.diff(a) / 1e9
    assert a[0] == 0 and (gaps >= 0).all()
    assert 1 / gaps.mean() == pytest.approx(50.0, rel=0.05)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, rel=0.1)  # exponential: CV = 1


def test_constant_schedule():
    a = arrival_offsets_ns(5, rate=4.0, arrival="constant", seed=0)
    assert a == [0, 250_000_000, 500_000_000, 750_000_000, 1_000_000_000]


def test_a_fixed_conversation_takes_the_engines_records():
    # The engine answers each request with send(record); a conversation of known requests
    # must accept that (a bare `yield from` of a list hands send() to the list's iterator).
    from benchrun.load.client import RequestSpec
    from benchrun.workloads.base import fixed

    a, b = (RequestSpec(messages=[{"role": "user", "content": t}], max_tokens=4) for t in "ab")
    conv = fixed([a, b])
    assert next(conv) is a
    assert conv.send(object()) is b
    with pytest.raises(StopIteration):
        conv.send(object())
