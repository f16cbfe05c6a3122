"""Confidence intervals across repeats on known samples."""
from __future__ import annotations

import math

import pytest

from benchrun.measure.stats import ci95, repeats_ci95, t975
from benchrun.measure.summaries import summarize


def test_ci95_known_sample():
    c = ci95([10.0, 12.0, 14.0])  # mean 12, sd 2, t(0.975, 2) = 4.303 (tables give 3 decimals)
    half = 4.303 * 2 / math.sqrt(3)
    assert c["n"] == 3 and c["mean"] == 12
    assert c["low"] == pytest.approx(12 - half, abs=1e-3) and c["high"] == pytest.approx(12 + half, abs=1e-3)


def test_ci95_two_samples_and_constant():
    c = ci95([1.0, 3.0])  # sd sqrt(2), t(1) = 12.706
    assert c["high"] - c["mean"] == pytest.approx(12.706 * math.sqrt(2) / math.sqrt(2), abs=1e-3)
    flat = ci95([5.0, 5.0, 5.0, None])
    assert flat == {"mean": 5.0, "low": 5.0, "high": 5.0, "n": 3}


def test_ci95_too_few():
    assert ci95([7.0]) == {"mean": 7.0, "low": None, "high": None, "n": 1}
    assert ci95([None])["n"] == 0


@pytest.mark.parametrize("df,expected", [(1, 12.706), (10, 2.228), (30, 2.042), (40, 2.021),
                                         (60, 2.000), (120, 1.980), (10_000, 1.960)])
def test_t_quantiles_match_tables(df, expected):
    assert t975(df) == pytest.approx(expected, abs=0.002)


def test_repeats_ci95_shape():
    reps = [{"ttft_ms": summarize([1.0, 2.0, 3.0]), "output_throughput_tok_s": 100.0, "requests_ok": 3},
            {"ttft_ms": summarize([2.0, 3.0, 4.0]), "output_throughput_tok_s": 110.0, "requests_ok": 3},
            {"ttft_ms": summarize([3.0, 4.0, 5.0]), "output_throughput_tok_s": 120.0, "requests_ok": 3}]
    out = repeats_ci95(reps)
    assert out["ttft_ms.p50"]["mean"] == 3.0 and out["ttft_ms.p50"]["n"] == 3
    assert out["ttft_ms.p50"]["low"] < 3.0 < out["ttft_ms.p50"]["high"]
    assert out["output_throughput_tok_s"]["mean"] == 110.0
    assert {"ttft_ms.mean", "ttft_ms.p90", "ttft_ms.p99"} <= set(out)
    assert "requests_ok" not in out
    assert repeats_ci95([]) == {}


def test_ci_coverage_is_about_95_percent():
    """Draw many 5-sample repeats from a known normal: ~95% of intervals hold the true mean."""
    import numpy as np

    rng = np.random.default_rng(1)
    hits = sum(1 for _ in range(2000)
               if (c := ci95(rng.normal(50.0, 3.0, 5).tolist()))["low"] <= 50.0 <= c["high"])
    assert 0.93 < hits / 2000 < 0.97
