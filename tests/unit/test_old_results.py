"""Results written by an earlier benchrun stay readable: a sweep written by the version before
schema 2 (tests/support/data/v1_sweep: tiny and tiny_wide at C1 and C2, 2 interleaved repeats,
made by commit 74aac9b) still gets its report, summary and diff, with the numbers that version
measured: its metrics.wall_s was the sum over repeats, which readers now tell apart."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from benchrun.analysis.diff import diff_dirs
from benchrun.analysis.jobs import load_jobs, merge_rounds
from benchrun.report import write_report
from benchrun.report.summary import write_summary

V1 = Path(__file__).parent.parent / "support" / "data" / "v1_sweep"


@pytest.fixture
def v1(tmp_path) -> Path:
    return Path(shutil.copytree(V1, tmp_path / "v1"))


def test_the_fixture_is_a_schema_1_sweep():
    versions = {json.loads(p.read_text())["schema_version"] for p in V1.glob("*/result.json")}
    assert versions == {1} and len(list(V1.glob("*/result.json"))) == 8


def test_an_old_sweep_gets_its_report_and_summary(v1):
    w = write_report(v1)
    md = w.report_md.read_text()
    assert "tiny_wide" in md and "## Summary" in md and "## Reproducing" in md
    rows = {r["job"]: r for r in write_summary(v1)}
    assert len(rows) == 8
    for name, row in rows.items():
        res = json.loads((v1 / name / "result.json").read_text())
        # version 1: one round per job, so its wall_s is one repeat's and also the total
        assert row["wall_s_per_repeat"] == pytest.approx(res["metrics"]["wall_s"])
        assert row["wall_s_total"] == pytest.approx(res["metrics"]["wall_s"])


def test_an_old_sweeps_rounds_merge_into_one_job_per_preset_and_level(v1):
    jobs = merge_rounds(load_jobs(v1))
    assert sorted((j.model, j.concurrency, j.repeats) for j in jobs) == [
        ("tiny", 1, 2), ("tiny", 2, 2), ("tiny_wide", 1, 2), ("tiny_wide", 2, 2)]
    for j in jobs:
        walls = [rm["wall_s"] for rm in j.result["repeat_metrics"]]
        assert j.value("wall_s") == pytest.approx(sum(walls) / 2)  # one repeat's, not the sum


def test_an_old_sweep_diffs_against_itself_with_no_change(v1, tmp_path):
    again = Path(shutil.copytree(V1, tmp_path / "again"))
    d = diff_dirs(v1, again)
    assert len(d.jobs) == 4 and all(jd.deltas and not jd.warnings for jd in d.jobs)
    assert all(delta.rel in (0, None) for jd in d.jobs for delta in jd.deltas)
