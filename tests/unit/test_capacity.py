"""The capacity search's decisions (analysis/capacity.py) on hand-made probes: growth, then
bisection; a verdict within noise is probed again and never guessed; saturation stops it; an
SLO missed at the first level ends it at once; the budget; the open loop's geometric steps.
And its config: no SLO, a swept search variable, repeats -- each one line.
This half needs no server, process or socket; the rest is in tests/integration/test_capacity.py."""
from __future__ import annotations

import pytest

from benchrun.analysis.capacity import Probe, decide, limit_of, steps_of, summary, wilson
from benchrun.config import SearchConfig

S = SearchConfig(target=0.9, confidence=0.95, max_repeats=2, min_gain=0.1)


def probe(level, good=40, n=40, thr=None, ttft=100.0, tpot=20.0, missed=None, status="ok", parallel=4, error=None):
    return Probe(level=level, job=f"j{level}", status=status, requests=n, good=good,
                 missed=missed or {"failed": 0, "ttft_ms": n - good, "tpot_ms": 0},
                 ttft_p90_ms=ttft, tpot_p90_ms=tpot, throughput_tok_s=100.0 * level if thr is None else thr,
                 queueing=level > parallel, error=error)


def test_wilson_interval_by_hand():
    # 20/20: (1 + z^2/2n) / (1 + z^2/n) -/+ ... with z = 1.959964: lower = 20 / (20 + z^2) = 0.8389
    low, high = wilson(20, 20, 0.95)
    assert low == pytest.approx(20 / (20 + 1.959964 ** 2), abs=1e-4) and high == 1.0
    low, high = wilson(0, 10, 0.95)
    assert low == 0.0 and high == pytest.approx(1.959964 ** 2 / (10 + 1.959964 ** 2), abs=1e-4)
    assert wilson(0, 0, 0.95) == (0.0, 1.0)


def test_growth_then_bisection_to_one_step():
    ps = [probe(1), probe(2)]
    assert decide(ps, S).next_level == 4
    ps.append(probe(4, good=0, missed={"failed": 0, "ttft_ms": 40}))
    assert decide(ps, S).next_level == 3
    ps.append(probe(3))
    d = decide(ps, S, parallel=4)
    assert (d.next_level, d.capacity, d.bounds, d.limit) == (None, 3, (3, 4), "ttft")
    assert d.why == "passes at concurrency 3, fails at 4"


def test_a_verdict_within_noise_is_probed_again_pooled_and_never_guessed():
    ps = [probe(1), probe(2, good=38)]  # 95%: the interval [84%, 99%] straddles the target
    assert steps_of(ps, S)[1].verdict == "noise"
    assert decide(ps, S).next_level == 2  # again, not a guess
    ps.append(probe(2, good=40))
    st = steps_of(ps, S)[1]
    assert st.verdict == "pass" and st.share == pytest.approx(78 / 80) and st.low > 0.9  # pooled
    assert decide(ps, S).next_level == 4
    # Still within noise once the repeats are spent: counted as missing the SLO, said so.
    ps = [probe(1), *[probe(2, good=36) for _ in range(3)]]
    assert steps_of(ps, S)[1].verdict == "undecided"
    d = decide(ps, S)
    assert d.next_level is None and d.capacity == 1 and d.bounds == (1, 2)


def test_saturation_stops_the_search_and_says_so():
    ps = [probe(1, thr=100), probe(2, thr=190), probe(4, thr=350), probe(8, thr=360, ttft=900)]
    d = decide(ps, S, parallel=4)
    assert (d.next_level, d.capacity, d.limit) == (None, 4, "saturation (slots)")
    assert d.why.startswith("saturated: throughput 350.0 -> 360.0 tok/s from concurrency 4 to 8")
    # throughput flat but latency flat too: not saturation, the search goes on
    assert decide([probe(1, thr=100), probe(2, thr=100, ttft=100)], S).next_level == 4


def test_an_slo_missed_at_the_first_level_ends_at_once():
    d = decide([probe(1, good=0, ttft=4000)], S)
    assert d.next_level is None and d.capacity is None and d.limit == "ttft"
    assert d.why.startswith("below the SLO at concurrency 1: goodput 0% [0%, 9%] of 40 requests, p90 TTFT 4000.0 ms")


def test_limits_named_from_what_the_failing_level_missed():
    fail = probe(8, good=0, missed={"failed": 0, "ttft_ms": 40, "tpot_ms": 3})
    assert limit_of(steps_of([fail], S)[0], 4) == "slots (ttft queued beyond model.parallel=4)"
    tpot = probe(3, good=0, missed={"failed": 1, "ttft_ms": 0, "tpot_ms": 39})
    assert limit_of(steps_of([tpot], S)[0], 4) == "tpot"
    oom = probe(2, status="failed", error="preset 'x' needs about 30000 MiB but hardware 'auto' has 24000 MiB of RAM; set fit_check=false")
    assert limit_of(steps_of([oom], S)[0], 4) == "memory"
    crashed = probe(2, status="failed", error="server process died during the run (exit code -9)")
    assert limit_of(steps_of([crashed], S)[0], 4) == "failures"


def test_budget_and_upper_bound():
    budget = SearchConfig(max_steps=2)
    d = decide([probe(1), probe(2)], budget)
    assert (d.next_level, d.capacity, d.limit) == (None, 2, "budget")
    bound = SearchConfig(max_level=4)
    assert decide([probe(1), probe(2)], bound).next_level == 4
    d = decide([probe(1), probe(2), probe(4)], bound)
    assert (d.capacity, d.limit) == (4, "upper bound")
    timed = SearchConfig(max_time_s=60)
    assert decide([probe(1)], timed, elapsed_s=61).limit == "budget"


def test_open_loop_steps_are_geometric_and_stop_at_the_relative_resolution():
    s = SearchConfig(variable="load.rate", start=2, resolution=0.2, target=0.9)
    assert decide([], s).next_level == 2
    ps = [probe(2.0, thr=16), probe(4.0, thr=32), probe(8.0, thr=64), probe(16.0, good=0, thr=70)]
    assert decide(ps, s).next_level == pytest.approx(11.3)  # sqrt(8 x 16), 3 digits
    ps.append(probe(11.3, thr=90))
    assert decide(ps, s).next_level == pytest.approx(13.4)
    ps.append(probe(13.4, good=0, thr=92))
    d = decide(ps, s)
    assert d.capacity == 11.3 and d.bounds == (11.3, 13.4) and 13.4 / 11.3 <= 1.2


def test_summary_lists_every_probe_with_its_verdict():
    ps = [probe(1), probe(2, good=0)]
    d = decide(ps, S)
    out = summary(ps, S, d, "tiny", 4)
    assert (out["preset"], out["capacity"], out["unit"], out["status"]) == ("tiny", 1, "concurrency", "done")
    assert [(p["level"], p["verdict"]) for p in out["probes"]] == [(1, "pass"), (2, "fail")]
    assert out["probes"][1]["goodput_share"] == 0 and out["probes"][0]["goodput_low"] > 0.9


@pytest.mark.parametrize("over, msg", [
    ([], "search=capacity needs an SLO to hold: set at least one of slo.ttft_ms, slo.ttfa_ms, slo.tpot_ms, slo.e2e_ms"),
    (["slo.ttft_ms=100", "search.variable=speed"], "search.variable must be one of concurrency, load.rate"),
    (["slo.ttft_ms=100", "search.growth=1"], "growth > 1"),
])
def test_bad_search_config_is_one_line(compose, over, msg):
    from benchrun.config import validate

    with pytest.raises(ValueError) as e:
        validate(compose(["search=capacity", *over]))
    assert msg in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("over, msg", [
    (["concurrency=1,2"], "search=capacity sets concurrency itself, probe by probe: drop concurrency=1"),
    (["repeats=3"], "set repeats=1"),
])
def test_search_refuses_what_it_sets_itself(over, msg):
    from benchrun.hydra_setup import ConfigError, precheck

    with pytest.raises(ConfigError) as e:
        precheck(["model=tiny", "search=capacity", "slo.ttft_ms=100", *over], multirun=True)
    assert msg in str(e.value)
    with pytest.raises(ConfigError, match="add -m"):
        precheck(["model=tiny", "search=capacity", "slo.ttft_ms=100"], multirun=False)


def _entry(name, cap, hi, limit="ttft", levels=((1, 40), (2, 40), (4, 0))):
    ps = [probe(lv, good=g, thr=100.0 * lv, ttft=50.0 * lv) for lv, g in levels]
    d = decide(ps, S)
    out = summary(ps, S, d, name, 4, slo={"ttft_ms": 150.0, "tpot_ms": None})
    out.update(capacity=cap, bounds=[cap, hi], limit=limit)
    return out


def test_capacities_compare_beyond_one_step_only():
    from benchrun.analysis.capacity import compare

    base = {"a": _entry("a", 2, 4), "b": _entry("b", 8, 16)}
    cand = {"a": _entry("a", 4, 8), "b": _entry("b", 12, 16)}
    got = {c["preset"]: c["verdict"] for c in compare(base, cand)}
    assert got == {"a": "BETTER", "b": "same within one step"}  # 4 reaches a's failing 4; 12 < 16
    assert compare(cand, base)[0]["verdict"] == "WORSE"
    assert compare({"a": _entry("a", None, 1)}, {"a": _entry("a", 1, 2)})[0]["verdict"] == "BETTER"


def test_capacity_section_leads_with_the_pick_and_lists_every_probe():
    from benchrun.report import capacity as R
    from benchrun.report.blocks import Para, Table

    cap = {"fast": _entry("fast", 2, 4), "slow": _entry("slow", 1, 2, "tpot", ((1, 40), (2, 0)))}
    assert R.pick(cap) == ("By capacity, **fast**: it serves concurrency 2 with 90% of requests within "
                           "TTFT <= 150 ms (limit: ttft); slow concurrency 1.")
    blocks = R.blocks(cap, "charts/capacity.png")
    tables = [b for b in blocks if isinstance(b, Table)]
    assert [[r[0], r[1]] for r in tables[0].rows] == [["1", "pass"], ["2", "pass"], ["4", "fail"]]
    assert tables[0].rows[2][2] == "0% [0%, 9%] of 40" and tables[0].rows[0][3] == "50.0 ms"
    assert any(isinstance(b, Para) and b.text.startswith("**slow** (parallel=4): capacity concurrency 1, below "
                                                         "concurrency 2; limit: tpot") for b in blocks)


def test_knee_chart_plots_each_level_probed_and_marks_the_capacity():
    from benchrun.report.capacity import knee_chart

    fig = knee_chart({"fast": _entry("fast", 2, 4)})
    ax = fig.axes[0]
    line = ax.lines[0]
    assert list(line.get_xdata()) == [100.0, 200.0, 400.0] and list(line.get_ydata()) == [50.0, 100.0, 200.0]
    marks = [ln for ln in ax.lines if ln.get_marker() == "o" and ln.get_markersize() == 14]
    assert len(marks) == 1 and (list(marks[0].get_xdata()), list(marks[0].get_ydata())) == ([200.0], [100.0])
    slo = [ln for ln in ax.lines if ln.get_linestyle() == "--"]
    assert slo and list(slo[0].get_ydata()) == [150.0, 150.0]
