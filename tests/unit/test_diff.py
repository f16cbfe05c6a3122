"""benchrun diff on hand-made dirs: a planted 20% TTFT regression is flagged (against a run-to-run
calibration, or by repeats), noise is not, and one run each without a calibration says it cannot
tell; comparability warnings; --fail-on; formats.
This half needs no server, process or socket; the rest is in tests/integration/test_diff.py."""
from __future__ import annotations

import numpy as np
import pytest
from support.handmade import make_job, planted_regression, sweep

from benchrun.analysis.diff import diff_dirs


@pytest.fixture(autouse=True)
def _own_run_id(monkeypatch):
    """benchrun.cli.main() sets BENCHRUN_RUN_ID in-process; keep it from leaking into later
    tests' subprocesses (monkeypatch restores the environment)."""
    monkeypatch.setenv("BENCHRUN_RUN_ID", "test-diff-in-process")


def by_key(d, c):
    jd = next(j for j in d.jobs if j.key[2] == c)
    return {x.key: x for x in jd.deltas}


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    """base, noise, slow (+20% TTFT) and their calibration (support.handmade.planted_regression),
    made once for the tests here: they only read them."""
    return planted_regression(tmp_path_factory.mktemp("planted"))


def test_planted_regression_is_flagged_and_noise_is_not(dirs):
    noisy = diff_dirs(dirs["base"], dirs["noise"], noise_file=dirs["cal"])
    for jd in noisy.jobs:
        for x in jd.deltas:
            assert x.beyond_noise is not True, (jd.key, x)
    slow = diff_dirs(dirs["base"], dirs["slow"], noise_file=dirs["cal"])
    for c in (1, 2):
        t = by_key(slow, c)["ttft_ms.p50"]
        assert t.method == "calibrated+boot" and t.beyond_noise is True and t.change == "worse"
        assert 0.12 < t.rel < 0.30  # about +20%, read from the files
        assert t.diff_low > 0 and t.p < 0.05
        assert by_key(slow, c)["itl_ms.p50"].beyond_noise is not True  # token gaps untouched


def test_one_run_each_without_calibration_cannot_tell_20_percent(dirs):
    """The request bootstrap alone sees +20% as certain; but one run per side, with no measured
    run-to-run spread, cannot separate it from what a rerun moves: 'cannot tell' (None)."""
    slow = diff_dirs(dirs["base"], dirs["slow"], noise_file=False)
    t = by_key(slow, 1)["ttft_ms.p50"]
    assert t.method == "floor+boot" and t.beyond_noise is None and t.change == "worse"
    assert t.floor > 0.3  # the assumed floor, stated on the Delta
    from benchrun.analysis.compare import method_text

    assert "assumed floor" in method_text(t)


def test_fail_on_a_metric_outside_the_headline_set_still_fires(dirs, capsys):
    """ttft_ms.p99 and e2e_ms.p90 are not in the default table: --fail-on must compare them."""
    from benchrun.cli import main

    base, slow = str(dirs["base"]), str(dirs["slow"])
    assert main(["diff", base, slow, "--fail-on", "ttft_ms.p99:5", "--noise", str(dirs["cal"])]) == 1
    err = capsys.readouterr().err
    assert "REGRESSION m / agentic / C1: ttft_ms.p99 worse by" in err, err
    assert main(["diff", base, base, "--fail-on", "e2e_ms.p90:1"]) == 0  # computed, and unchanged


def test_bootstrap_is_symmetric_and_copes_with_unequal_large_itl_sets():
    from benchrun.analysis.compare import bootstrap_diff_ci

    rng = np.random.default_rng(7)
    a, b = list(rng.normal(100, 10, 30)), list(rng.normal(106, 10, 30))
    lo, hi = bootstrap_diff_ci(a, b, "p50")
    assert bootstrap_diff_ci(b, a, "p50") == pytest.approx((-hi, -lo))  # swapping flips the sign only
    # ITL gaps, one run each: 100 requests x 250 gaps against 100 x 100 (more than the cap).
    long_, short = [list(rng.normal(5, 0.5, 250)) for _ in range(100)], [list(rng.normal(5.5, 0.5, 100)) for _ in range(100)]
    lo, hi = bootstrap_diff_ci(long_, short, "p50", clustered=True)
    assert 0 < lo < 0.5 < hi < 1.0
    assert bootstrap_diff_ci(short, long_, "p50", clustered=True) == pytest.approx((-hi, -lo))


def test_regression_from_repeats(tmp_path):
    base = sweep(tmp_path / "b", repeats=3)
    cand = sweep(tmp_path / "c", repeats=3, ttft_scale=1.2, jitter_seed=3)
    t = by_key(diff_dirs(base, cand), 2)["ttft_ms.p50"]
    assert t.method == "repeats" and t.beyond_noise is True and t.change == "worse"


def test_unmatched_jobs_are_listed(tmp_path):
    base = sweep(tmp_path / "b")
    make_job(tmp_path / "c", 0, "m", 1, 100, 10, n=40, seed=100)
    make_job(tmp_path / "c", 1, "other", 1, 100, 10, n=10)
    d = diff_dirs(base, tmp_path / "c")
    assert [j.key for j in d.jobs] == [("m", "agentic", 1)]
    assert d.only_base == ["m / agentic / C2"] and d.only_cand == ["other / agentic / C1"]


@pytest.mark.parametrize("args, msg", [
    (["diff", "/no/such/dir", "/no/such/dir"], "no such directory"),
    (["diff", "{empty}", "{empty}"], "no result.json found"),
    (["diff", "{base}", "{base}", "--fail-on", "ttft_ms.p50"], "--fail-on wants METRIC:PCT"),
    (["diff", "{base}", "{base}", "--fail-on", "nonsense:5"], "unknown metric 'nonsense'"),
    (["diff", "{base}", "{other}"], "no matching ok jobs"),
    (["diff", "{base}", "{failed}"], "no matching ok jobs between"),
    (["diff", "{base}", "{base}", "--models", "m"], "--models wants A:B"),
    (["report", "/no/such/dir"], "no such directory"),
    (["report", "{empty}"], "no result.json found"),
])
def test_bad_input_one_line_exit_2(tmp_path, capsys, args, msg):
    """In-process through the real entry point (fast); the subprocess path is covered above."""
    from benchrun.cli import main

    (tmp_path / "empty").mkdir()
    make_job(tmp_path / "base", 0, "m", 1, 10, 1, n=5)
    make_job(tmp_path / "other", 0, "x", 1, 10, 1, n=5)
    make_job(tmp_path / "failed", 0, "m", 1, 10, 1, n=5, status="failed", error="server exited with code -6")
    args = [a.format(empty=tmp_path / "empty", base=tmp_path / "base", other=tmp_path / "other",
                     failed=tmp_path / "failed") for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and msg in err[0], err
    if str(tmp_path / "failed") in args:  # says why: the same job is there, failed
        assert "candidate: job 0_m_c1 failed: server exited with code -6" in err[0], err


def test_compare_two_presets_within_one_sweep(tmp_path):
    """--models A:B: preset b against preset a in the same dir; b's TTFT is planted 2x higher
    (past the assumed single-run floor, so no calibration is needed)."""
    make_job(tmp_path, 0, "a", 1, 100, 10, n=40, seed=5)
    make_job(tmp_path, 1, "b", 1, 100, 10, n=40, seed=5, scale={"ttft": 2.0}, sha="cd" * 32)
    d = diff_dirs(tmp_path, tmp_path, models=("a", "b"), noise_file=False)
    t = by_key(d, 1)["ttft_ms.p50"]
    assert t.beyond_noise is True and t.change == "worse"
    assert by_key(d, 1)["itl_ms.p50"].beyond_noise is not True
    assert any("model file differs" in w for w in d.jobs[0].warnings)
