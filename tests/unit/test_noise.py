"""The verdict tests (benchrun/analysis/noise.py) on synthetic data of known run-to-run variance: the
false-positive rate of every method is within its nominal 5% (many seeded trials, checked
against a binomial bound), and a real difference is found (power). Also the pieces: Holm, the
bootstrap p-value, the pooled calibration SD, the job order, and that the summary's decode speed
cannot explode. Pure functions: no servers, fast."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as st

from benchrun.analysis import noise

TRIALS = 4000
ALPHA = noise.ALPHA


def binomial_ceiling(n: int, p: float = ALPHA, q: float = 0.999) -> float:
    """The share of n trials a method with false-positive rate p exceeds only 0.1% of the time:
    a measured rate above it means the method is worse than it promises, not unlucky."""
    return st.binom.ppf(q, n, p) / n


def run_values(rng, n_runs: int, run_sd: float, size: int, shift: float = 0.0) -> np.ndarray:
    """Headline values of `n_runs` runs, log-normal run-to-run noise of `run_sd` around 100
    (x exp(shift) for a real difference); `size` independent trials at once."""
    return 100 * np.exp(shift + rng.normal(0, run_sd, (size, n_runs)))


@pytest.mark.parametrize("n", [2, 3, 5])
def test_welch_on_repeats_false_positive_rate(n):
    rng = np.random.default_rng(n)
    a, b = run_values(rng, n, 0.1, TRIALS), run_values(rng, n, 0.1, TRIALS)
    fp = np.mean([noise.welch_samples(x, y).p < ALPHA for x, y in zip(a, b)])
    assert fp <= binomial_ceiling(TRIALS), fp
    assert fp >= 0.01  # it is a 5% test, not a test that never fires (then power would be nil)


def test_welch_on_repeats_power_and_unequal_spreads():
    rng = np.random.default_rng(1)
    # A 30% difference with 5% run-to-run noise and 3 repeats each: found nearly always.
    a, b = run_values(rng, 3, 0.05, 1000), run_values(rng, 3, 0.05, 1000, shift=math.log(1.3))
    assert np.mean([noise.welch_samples(x, y).p < ALPHA for x, y in zip(a, b)]) > 0.9
    # Unequal spreads (Welch's point): still within the nominal rate.
    a, b = run_values(rng, 4, 0.02, TRIALS), run_values(rng, 4, 0.2, TRIALS)
    fp = np.mean([noise.welch_samples(x, y).p < ALPHA for x, y in zip(a, b)])
    assert fp <= binomial_ceiling(TRIALS), fp


def test_one_run_against_repeats_false_positive_rate_and_symmetry():
    rng = np.random.default_rng(2)
    reps, single = run_values(rng, 3, 0.1, TRIALS), run_values(rng, 1, 0.1, TRIALS)[:, 0]
    fp = np.mean([noise.one_vs_repeats(r, s).p < ALPHA for r, s in zip(reps, single)])
    assert 0.01 <= fp <= binomial_ceiling(TRIALS), fp
    t1, t2 = noise.one_vs_repeats([10, 11, 12], 15, True), noise.one_vs_repeats([10, 11, 12], 15, False)
    assert t1.diff == -t2.diff and t1.p == t2.p


def test_calibrated_single_runs_false_positive_rate_and_power():
    """The A/A situation: one run per side, judged against a calibration measured from 5 other
    identical runs of 6 jobs (df 24), all with the same true run-to-run noise."""
    rng = np.random.default_rng(3)
    sd_true = 0.12
    fp, hits = 0, 0
    for _ in range(TRIALS):
        cal_runs = run_values(rng, 5, sd_true, 6)  # 6 jobs x 5 runs
        sd, df = noise.pooled_log_sd(cal_runs)
        a, b = run_values(rng, 2, sd_true, 1)[0]
        fp += noise.log_ratio_test(a, b, sd, df).p < ALPHA
        big = a * math.exp(4 * sd_true)  # a real change of 4 run SDs (x1.6)
        hits += noise.log_ratio_test(a, big * math.exp(rng.normal(0, sd_true)), sd, df).p < ALPHA
    assert 0.01 <= fp / TRIALS <= binomial_ceiling(TRIALS), fp / TRIALS
    assert hits / TRIALS > 0.8, hits / TRIALS


def test_the_assumed_floor_keeps_its_promise_only_below_its_assumption():
    """No calibration: the assumed SD (15%) holds the rate when the real noise is at most that,
    and the floor is the change it takes to be called beyond noise."""
    rng = np.random.default_rng(4)
    sd0 = noise.DEFAULT_RUN_SD
    for real in (0.05, sd0):
        a, b = run_values(rng, 1, real, TRIALS)[:, 0], run_values(rng, 1, real, TRIALS)[:, 0]
        fp = np.mean([noise.log_ratio_test(x, y, sd0).p < ALPHA for x, y in zip(a, b)])
        assert fp <= binomial_ceiling(TRIALS), (real, fp)
    f = noise.floor_pct(sd0)
    assert noise.log_ratio_test(100, 100 * (1 + f) * 1.001, sd0).p < ALPHA
    assert noise.log_ratio_test(100, 100 * (1 + f) * 0.999, sd0).p >= ALPHA
    assert f == pytest.approx(math.exp(1.959964 * math.sqrt(2) * sd0) - 1, rel=1e-6)


def test_request_bootstrap_alone_fails_an_a_a_test():
    """Why the bootstrap may not judge alone: two runs that differ by run-level drift only (every
    request of a run shifted by the same factor, 10% SD), each with 16 requests of small
    request-to-request spread: the request bootstrap calls most of them beyond noise."""
    from benchrun.analysis.compare import bootstrap_diffs

    rng = np.random.default_rng(5)
    fired = 0
    n = 200
    for i in range(n):
        a = 100 * math.exp(rng.normal(0, 0.1)) * np.exp(rng.normal(0, 0.02, 16))
        b = 100 * math.exp(rng.normal(0, 0.1)) * np.exp(rng.normal(0, 0.02, 16))
        fired += noise.bootstrap_p(bootstrap_diffs(list(a), list(b), "p50", seed=i, n_boot=400)) < ALPHA
    assert fired / n > 0.5  # the "30 of 54 beyond noise", reproduced


def test_holm_keeps_the_family_rate_and_finds_real_differences():
    rng = np.random.default_rng(6)
    m = 9  # the report's Summary rows
    any_fp = np.mean([any(noise.holm(list(rng.uniform(size=m)))) for _ in range(TRIALS)])
    assert any_fp <= binomial_ceiling(TRIALS), any_fp
    per_row = np.mean([any(p < ALPHA for p in rng.uniform(size=m)) for _ in range(TRIALS)])
    assert per_row > 0.3  # rows tested alone at 5% would name a false winner a third of the time
    assert noise.holm([0.001, 0.2, None, 0.03]) == [True, False, None, False]  # 2nd smallest: 0.03 > 0.05/2
    assert noise.holm([0.001, 0.02, 0.5]) == [True, True, False]  # 0.02 < 0.05/2


def test_bootstrap_p_and_pooled_sd():
    assert noise.bootstrap_p(np.array([1.0] * 100)) == pytest.approx(0.01)  # at least 1/n
    assert noise.bootstrap_p(np.array([-1.0, 1.0] * 50)) == pytest.approx(1.0)
    sd, df = noise.pooled_log_sd([[100, 110], [50, 55], [7], [0, 3]])  # 2 usable groups
    assert df == 2 and sd == pytest.approx(math.log(1.1) / math.sqrt(2))
    assert noise.pooled_log_sd([[1]]) == (None, 0)
    with pytest.raises(ValueError):
        noise.log_ratio_test(0, 1, 0.1)


def test_harmonic_mean_decode_cannot_explode():
    """One reply whose 64 tokens arrived in one read (TPOT ~0.00003 ms) beside 15 normal ones:
    the mean of per-request rates explodes, the summary's harmonic mean does not."""
    from benchrun.analysis.jobs import value_of

    tpot = np.array([0.5] * 15 + [0.0000276])
    rates = 1000 / tpot
    res = {"metrics": {"tpot_ms": {"mean": float(tpot.mean())}, "decode_tok_s": {"mean": float(rates.mean())}}}
    assert rates.mean() > 100_000  # the 124068.7 tok/s, in kind
    assert value_of(res, "decode_tok_s.hmean") == pytest.approx(1000 / tpot.mean())
    assert value_of(res, "decode_tok_s.hmean") < 1000 / 0.5 * 16 / 15 + 1e-6  # at most n/(n-1) x a normal one


def test_job_order_interleaves_and_random_is_seeded():
    from benchrun.order import order_jobs, server_starts

    jobs = [[f"model={m}", f"concurrency={c}", f"round={r}"] for m in "ab" for c in (1, 2, 3) for r in range(3)]
    inter = order_jobs(jobs, "interleaved")
    models = [j[0][-1] for j in inter]
    assert models == list("aaabbb" * 3)  # A B A B by round
    assert [int(j[2][-1]) for j in inter] == [0] * 6 + [1] * 6 + [2] * 6
    assert server_starts(inter) == 6 and server_starts(order_jobs(jobs, "grouped")) == 2
    r1, r2 = order_jobs(jobs, "random", seed=1), order_jobs(jobs, "random", seed=1)
    assert r1 == r2 and sorted(map(tuple, r1)) == sorted(map(tuple, jobs))
    assert server_starts(r1) <= 6  # presets stay together within a round
    assert any(order_jobs(jobs, "random", seed=s) != r1 for s in range(2, 6))
    # Every preset runs first in some round with a seeded shuffle over enough rounds.
    many = [[f"model={m}", "concurrency=1", f"round={r}"] for m in "ab" for r in range(20)]
    firsts = {j[0] for j in order_jobs(many, "random", seed=3)[::2]}
    assert firsts == {"model=a", "model=b"}
    with pytest.raises(ValueError):
        order_jobs(jobs, "sideways")
