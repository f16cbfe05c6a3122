"""Verdicts on hand-made dirs (fast, no server): interleaved rounds merge back into one job with
its repeats, the report says how the order was chosen and how verdicts were decided, identical
presets tie on every Summary row, `benchrun calibrate` writes a per-machine file that diff then
uses, a busy machine's single runs cannot be judged, and the sweep really runs interleaved."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.handmade import footnote, make_job, table_after

from benchrun.analysis.diff import diff_dirs
from benchrun.analysis.jobs import load_jobs
from benchrun.report import write_report


def _as_round(job_dir: Path, r: int, rounds: int, mode: str = "interleaved", extra: dict | None = None) -> None:
    p = job_dir / "result.json"
    res = json.loads(p.read_text())
    res["order"] = {"mode": mode, "seed": 0, "round": r, "rounds": rounds}
    res["job"]["overrides"].append(f"round={r}")
    res.update(extra or {})
    p.write_text(json.dumps(res))


def interleaved_sweep(root: Path, models=("a", "b"), levels=(1, 3), rounds=3, scale: dict | None = None) -> Path:
    """What an interleaved sweep leaves: one job dir per (round, preset, level), round outermost."""
    num = 0
    for r in range(rounds):
        for m in models:
            for c in levels:
                d = make_job(root, num, m, c, 100 * c, 10, n=20, seed=1000 * r + 10 * num,
                             scale=(scale or {}).get(m))
                _as_round(d, r, rounds)
                num += 1
    return root


def test_rounds_merge_into_one_job_with_their_repeats(tmp_path):
    root = interleaved_sweep(tmp_path)
    jobs = load_jobs(root)
    assert sorted(j.key for j in jobs) == [("a", "agentic", 1), ("a", "agentic", 3), ("b", "agentic", 1), ("b", "agentic", 3)]
    j = next(j for j in jobs if j.key == ("a", "agentic", 3))
    assert j.repeats == 3 and len(j.result["repeat_metrics"]) == 3
    assert j.result["order"]["merged_rounds"] == [0, 1, 2]
    assert len(j.records) == 60 and j.result["metrics"]["requests_ok"] == 60  # summaries over every round
    assert j.result["repeats_ci95"]["ttft_ms.p50"]["n"] == 3
    # A failed round stays a failed job of its own; the others still merge.
    bad = make_job(tmp_path / "f", 0, "a", 1, 1, 1, status="failed", error="boom")
    _as_round(bad, 0, 2)
    ok = make_job(tmp_path / "f", 1, "a", 1, 100, 10, n=5)
    _as_round(ok, 1, 2)
    fj = load_jobs(tmp_path / "f")
    assert sorted(x.ok for x in fj) == [False, True]


def test_report_of_identical_presets_interleaved_is_all_ties(tmp_path):
    """Presets a and b drawn alike, 3 interleaved repeats: every Summary row a tie, no speed
    pick, and the report says how the order was chosen and how verdicts were decided."""
    root = interleaved_sweep(tmp_path)
    md = write_report(root, html=False, charts=False).report_md.read_text()
    rows = table_after(md, "## Summary")
    assert rows[0][-1] == "Winner" and len(rows) >= 8
    assert all(r[-1].startswith("Tie") for r in rows[1:]), rows
    rec = md.split("## Recommendation", 1)[1].split("## Detailed", 1)[0]
    assert "Pick" not in rec
    assert "**Order:** each of the 3 repeats ran as its own job, round by round" in md
    assert "Welch's t test on the per-repeat values" in md and "Holm's procedure" in md
    assert "harmonic mean over requests (1000 / mean TPOT)" in md


def test_report_names_a_real_winner_with_repeats_and_grouped_order_is_called_out(tmp_path):
    root = interleaved_sweep(tmp_path, scale={"b": {"ttft": 1.5}})
    md = write_report(root, html=False, charts=False).report_md.read_text()
    rows = {r[0]: r for r in table_after(md, "## Summary")}
    assert rows["TTFT p50 (C1)"][-1].startswith("a (1.5x)"), rows["TTFT p50 (C1)"]
    # Old sweeps (no order recorded) with repeats and two presets: the report warns.
    for num, m in enumerate(("a", "b")):
        make_job(tmp_path / "old", num, m, 1, 100, 10, repeats=3, seed=num)
    md = write_report(tmp_path / "old", html=False, charts=False).report_md.read_text()
    assert "repeats ran back to back, preset after preset (not recorded" in md


def test_single_runs_tie_with_a_reason_and_a_busy_machine_cannot_tell(tmp_path):
    for num, m in enumerate(("a", "b")):
        make_job(tmp_path / "one", num, m, 1, 100, 10, n=20, seed=num, scale={"ttft": 1.2 if m == "b" else 1.0})
    md = write_report(tmp_path / "one", html=False, charts=False).report_md.read_text()
    rows = {r[0]: r for r in table_after(md, "## Summary")}
    assert rows["TTFT p50 (C1)"][-1][:-1] == "Tie? "  # the cell: the verdict and one footnote marker
    assert footnote(md, rows["TTFT p50 (C1)"][-1]) == "One run each: the gap is not separable from run-to-run noise; use repeats=N."
    assert "assumed run-to-run floor" in md
    # Twice the TTFT is past the floor -- unless the machine was busy during either run.
    for side, busy in (("q", 1.0), ("busy", 120.0)):
        make_job(tmp_path / side / "x", 0, "m", 1, 100, 10, n=20, seed=1)
        y = make_job(tmp_path / side / "y", 0, "m", 1, 100, 10, n=20, seed=1, scale={"ttft": 2.0})
        res = json.loads((y / "result.json").read_text())
        res["telemetry"] = {"cpu": {"other_pct": busy}}
        (y / "result.json").write_text(json.dumps(res))
    quiet = {x.key: x for x in diff_dirs(tmp_path / "q" / "x", tmp_path / "q" / "y", noise_file=False).jobs[0].deltas}
    busy = {x.key: x for x in diff_dirs(tmp_path / "busy" / "x", tmp_path / "busy" / "y", noise_file=False).jobs[0].deltas}
    assert quiet["ttft_ms.p50"].beyond_noise is True and quiet["ttft_ms.p50"].method == "floor+boot"
    assert busy["ttft_ms.p50"].beyond_noise is None and busy["ttft_ms.p50"].method == "disturbed"


def test_calibrate_command_writes_the_machine_file_that_diff_uses(tmp_path, monkeypatch, capsys):
    from benchrun.analysis.calibration import machine_key
    from benchrun.cli import main

    monkeypatch.setenv("BENCHRUN_RUN_ID", "test-calibrate")
    noise_dir = tmp_path / "noise"
    monkeypatch.setenv("BENCHRUN_NOISE_DIR", str(noise_dir))
    runs = []
    for i in range(4):  # identical runs: per-request wobble only
        for num, c in enumerate((1, 2)):
            make_job(tmp_path / f"r{i}", num, "m", c, 100 * c, 10, n=40, seed=100 + num, wobble=(i + 1, 0.03))
        runs.append(str(tmp_path / f"r{i}"))
    assert main(["calibrate", *runs]) == 0
    out = capsys.readouterr().out
    assert "ttft_ms.p50" in out and "floor" in out
    hw = json.loads((tmp_path / "r0" / "0_m_c1" / "result.json").read_text())["hardware"]
    cal = json.loads((noise_dir / f"{machine_key(hw)}.json").read_text())
    entry = cal["workloads"]["agentic"]["metrics"]["ttft_ms.p50"]
    assert entry["df"] == 6 and 0 < entry["run_sd"] < 0.05  # 2 jobs x (4 runs - 1)
    # diff finds it by the machine the runs were measured on: a +20% TTFT is now beyond noise.
    for num, c in enumerate((1, 2)):
        make_job(tmp_path / "slow", num, "m", c, 100 * c, 10, n=40, seed=100 + num, wobble=(9, 0.03), scale={"ttft": 1.2})
    t = {x.key: x for x in diff_dirs(tmp_path / "r0", tmp_path / "slow").jobs[0].deltas}["ttft_ms.p50"]
    assert t.method == "calibrated+boot" and t.beyond_noise is True
    # Bad input: one line, exit 2.
    assert main(["calibrate", runs[0]]) == 2
    assert main(["calibrate", runs[0], str(tmp_path / "slow" / "0_m_c1")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(e.startswith("benchrun calibrate: ") for e in err), err
    assert main(["diff", runs[0], runs[1], "--noise", str(tmp_path / "missing.json")]) == 2


def test_sweep_with_repeats_is_interleaved(monkeypatch, tmp_path):
    """The command line a sweep with repeats runs: one job per round, rounds outermost, in the
    order benchrun's sweeper plugin hands the launcher."""
    from omegaconf import OmegaConf

    from benchrun.hydra_setup import interleave_rounds, precheck
    from hydra_plugins.benchrun_sweeper.ordered_sweeper import OrderedSweeper

    ov = ["model=tiny,tiny_wide", "concurrency=1,2", "repeats=2", "report=false"]
    jobs = precheck(ov, multirun=True)
    assert interleave_rounds(ov, jobs) == ("interleaved", 0, 2)
    assert interleave_rounds(ov[:-2], precheck(ov[:-2], multirun=True))[0] == "grouped"  # no repeats

    launched: list = []

    class Launcher:
        def launch(self, batch, initial_job_idx):
            launched.extend(batch)
            return []

    sweeper = OrderedSweeper(order="interleaved", order_seed=0)
    sweeper.config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}})
    sweeper.launcher = Launcher()
    monkeypatch.setattr(sweeper, "validate_batch_is_legal", lambda batch: None)
    sweeper.sweep(ov + ["round=0,1"])
    order = [[o.split("=")[1] for o in j if o.split("=")[0] in ("model", "concurrency", "round")]
             for j in launched]
    assert [j[-1] for j in order] == ["0"] * 4 + ["1"] * 4
    assert [j[0] for j in order][:4] == ["tiny", "tiny", "tiny_wide", "tiny_wide"]
    assert (tmp_path / "multirun.yaml").is_file()
    grouped = OrderedSweeper(params={"model": "tiny,tiny_wide"})  # an experiment's declared sweep
    grouped.config, grouped.launcher = sweeper.config, Launcher()
    monkeypatch.setattr(grouped, "validate_batch_is_legal", lambda batch: None)
    launched.clear()
    grouped.sweep(["concurrency=1,2", "model=tiny_wide"])  # the command line wins, in its place
    assert launched == [["model=tiny_wide", "concurrency=1"], ["model=tiny_wide", "concurrency=2"]]
    with pytest.raises(Exception, match="order must be one of"):
        precheck(["order=sideways"], multirun=False)
