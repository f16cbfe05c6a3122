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
