"""The client's verdict on itself (benchrun/load/selfcheck.py judge): which figures make a job
'saturated', and what result.json says about why. No loop, no sockets: the figures are given."""
from benchrun.load.selfcheck import CPU_PCT, LAG_P99_MS, judge


def test_a_quiet_client_is_not_saturated():
    assert judge(1.0, 4.0, 30.0) == {"saturated": False, "why": None}


def test_a_full_core_is_saturation_and_says_so():
    v = judge(2.0, 5.0, CPU_PCT + 5)
    assert v["saturated"] and "% of a core" in v["why"]


def test_late_wakeups_are_saturation_and_name_the_lag():
    v = judge(LAG_P99_MS + 10, 80.0, 70.0)
    assert v["saturated"] and f"{LAG_P99_MS + 10:.1f} ms late" in v["why"] and "busy machine" not in v["why"]


def test_late_wakeups_with_little_cpu_blame_other_processes():
    v = judge(LAG_P99_MS * 2, 90.0, 10.0)
    assert v["saturated"] and "other processes held the CPU" in v["why"]


def test_no_samples_is_no_verdict():
    assert judge(None, None, None) == {"saturated": False, "why": None}


def test_the_probe_wakes_less_while_the_process_is_nearly_idle(monkeypatch):
    """1 wake-up a second under 10% of a core, 20 above: at c=1 an idle loop's wake-up is most
    of a token's cost. The waits are drawn from 0.5-1.5 periods, so the two ranges do not meet."""
    from benchrun.load import selfcheck as S

    waits = []

    class Loop:
        def call_later(self, wait, fn):
            waits.append(wait)

    clock = {"ns": 0, "cpu": 0.0}
    monkeypatch.setattr(S, "perf_counter_ns", lambda: clock["ns"])
    monkeypatch.setattr(S, "process_time", lambda: clock["cpu"])
    check = S.SelfCheck()
    check._loop = Loop()
    clock.update(ns=10**9, cpu=0.01)  # a second with 1% of a core
    check._tick()
    clock.update(ns=3 * 10**9, cpu=1.01)  # then two with 50%
    check._tick()
    assert 0.5 * S.QUIET_PERIOD_S <= waits[0] <= 1.5 * S.QUIET_PERIOD_S
    assert 0.5 * S.PERIOD_S <= waits[1] <= 1.5 * S.PERIOD_S
    assert list(check.lags_ns) == [10**9, 2 * 10**9 - int(waits[0] * 1e9)]
