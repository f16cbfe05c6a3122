"""Report on hand-made output dirs: requests.jsonl of synthetic records with known timings,
result.json computed from them by benchrun's own metric functions (no server needed)."""
from __future__ import annotations

import json
import re

import pytest
from support.handmade import footnote, make_job, png_size, table_after

from benchrun.analysis.jobs import load_jobs
from benchrun.load.records import RecordWriter, RequestRecord
from benchrun.report import write_report
from benchrun.report.markdown import sweep_command


def task(agent, title, role, passed, latency, rep=0, reason="no docstring found", isolation="bwrap"):
    checks = [] if passed is None else [{"name": "has_docstrings", "passed": passed,
                                          "reason": "" if passed else reason, "duration_ms": 3.0}]
    return {"agent": agent, "title": title, "role": role, "repeat": rep, "turns": 1, "latency_ms": latency,
            "ttft_ms": 50.0, "output_tokens": 100, "passed": passed, "checks": checks, "isolation": isolation}


@pytest.fixture
def two_models(tmp_path):
    """fast (Q4, 20 GiB) vs slow (18 GiB, random weights -> fails checks), C1 and C3, 3 repeats."""
    root = tmp_path / "sweep"
    tiny_path = "/cache/tiny-0123456789.gguf"
    specs = [("fast", 1, 100, 10), ("fast", 3, 110, 11), ("slow", 1, 60, 20), ("slow", 3, 360, 21)]
    for num, (model, c, ttft, itl) in enumerate(specs):
        tasks = []
        if c == 3:
            for rep in range(3):
                ok = model == "fast"
                tasks += [task("P", "Primary", "primary", ok, 3000 + 100 * rep, rep),
                          task("S1", "Docstring", "side", ok, 1700 + 50 * rep if ok else 2100, rep),
                          task("S2", "Unit Tests", "side", ok, 2000 if ok else 3300, rep)]
        mem = {"kind": "vram", "peak_mib": 20480 if model == "fast" else 18432, "idle_mib": 18000, "estimate_mib": 19000}
        make_job(root, num, model, c, ttft, itl, repeats=3, seed=num, tasks=tasks, extra={"memory": mem},
                 path=tiny_path if model == "slow" else None)
    make_job(root, 4, "broken", 1, 1, 1, status="failed", error="server exited with code 1 (out of memory)")
    return root


def test_report_from_handmade_sweep(two_models):
    w = write_report(two_models)
    md = w.report_md.read_text()
    jobs = {j.dir.name: j for j in load_jobs(two_models)}
    # Seed structure, in order.
    heads = ["# Benchmark: fast vs slow", "## Models Under Test", "## Charts", "## Summary", "## Key Findings",
             "## Recommendation", "## Detailed Results", "## Side Tasks at C3", "## Failed Jobs",
             "## Prerequisites", "## Reproducing"]
    pos = [md.index(h) for h in heads]
    assert pos == sorted(pos)
    # Summary: values read from result.json, winners by direction.
    rows = {r[0]: r for r in table_after(md, "## Summary")}
    assert rows["Metric"] == ["Metric", "fast", "slow", "Winner"]
    fast3, slow3 = jobs["1_fast_c3"], jobs["3_slow_c3"]
    dec = rows["Decode speed per request, harmonic mean (C3)"]
    assert dec[1].startswith(f"{fast3.value('decode_tok_s.hmean'):.1f} ± ")
    ratio = fast3.value("decode_tok_s.hmean") / slow3.value("decode_tok_s.hmean")
    assert dec[3] == f"fast ({ratio:.1f}x)"
    assert rows["TTFT p50 (C1)"][3].startswith("slow (")  # lower is better: slow wins at C1
    assert rows["TTFT p50 (C3)"][3].startswith("fast (")
    assert rows["Peak memory"][3].startswith("slow (")  # less memory wins
    assert rows["Quality checks (C3)"][1:] == ["3/3 PASS (9/9 runs)", "0/3 PASS (0/9 runs)", "fast"]
    # Findings: ratios from the numbers, degradation, the random-weight model named plainly.
    findings = md.split("## Key Findings", 1)[1].split("## Recommendation", 1)[0]
    assert f"**fast** decodes {ratio:.1f}x faster per request than slow at C3" in findings
    t1, t3 = jobs["2_slow_c1"].value("ttft_ms.p50"), slow3.value("ttft_ms.p50")
    assert f"TTFT p50 degrades {t3 / t1:.1f}x from C1 to C3" in findings
    assert "**slow fails every quality check** (0/9 at C3)" in findings and "random-weight" in findings
    rec = md.split("## Recommendation", 1)[1].split("## Detailed", 1)[0]
    assert "**Pick fast** for speed" in rec
    assert "slow is still the better pick when first-token latency at C1 matters" in rec
    assert "when memory is tight: 2048 MiB less peak memory (18432 MiB vs 20480 MiB)" in rec
    # Side tasks: latency and PASS/FAIL per model; failed job listed with its error.
    side = {r[0]: r for r in table_after(md, "## Side Tasks at C3")}
    assert side["S1 Docstring"][1] == "1750ms PASS" and side["S1 Docstring"][2] == "2100ms FAIL"
    assert "server exited with code 1 (out of memory)" in md and "4_broken_c1" in md
    assert "hf download org/fast-GGUF fast.gguf" in md
    assert "written by benchrun itself" in md  # the random-weight file needs no download
    # Charts: every one, valid PNGs of a readable size; the HTML is self-contained.
    names = sorted(p.name for p in w.charts)
    assert names == ["degradation.png", "latency_cdf.png", "radar.png", "side_tasks.png", "throughput.png"]
    for p in w.charts:
        wpx, hpx = png_size(p)
        assert 500 <= wpx <= 2500 and 300 <= hpx <= 2000, (p.name, wpx, hpx)
        assert p.stat().st_size > 10_000
    page = w.report_html.read_text()
    assert page.count("data:image/png;base64,") == 5 and "src='charts/" not in page
    assert "<strong>fast</strong> decodes" in page
    # summary.csv / summary.json: one flat row per job.
    summary = json.loads((two_models / "summary.json").read_text())
    assert [r["job"] for r in summary] == sorted(jobs)
    assert summary[0]["memory_peak_mib"] == 20480 and summary[1]["tasks_passed"] == 9
    assert summary[0]["ttft_ms_p50_ci95_low"] < summary[0]["ttft_ms_p50"] < summary[0]["ttft_ms_p50_ci95_high"]
    # Time: these handmade results are schema 1, whose metrics.wall_s sums the 3 repeats;
    # summary.csv's wall_s is one repeat's in every version, wall_s_total the sum.
    s0 = summary[0]
    assert s0["wall_s"] == s0["wall_s_per_repeat"]
    assert s0["wall_s_total"] == pytest.approx(3 * s0["wall_s_per_repeat"])
    detail = table_after(md, "### Concurrency 3")
    assert "Total time per repeat (s)" in detail[0]
    assert detail[1][detail[0].index("Total time per repeat (s)")].startswith(f"{fast3.value('wall_s'):.2f} ± ")


def test_within_noise_is_a_tie(tmp_path):
    """Two presets drawn from the same distribution: no winner, no 'faster' claim."""
    for num, model in enumerate(("a", "b")):
        make_job(tmp_path, num, model, 2, 100, 10, repeats=3, seed=10 + num)
    md = write_report(tmp_path, html=False, charts=False).report_md.read_text()
    rows = {r[0]: r for r in table_after(md, "## Summary")}
    for row in ("TTFT p50 (C2)", "Decode speed per request, harmonic mean (C2)"):
        assert rows[row][3] == "Tie ¹", rows[row]
        assert footnote(md, rows[row][3]).startswith("Within noise")
    assert md.count("Within noise") == 1  # the reason once, under the table, not in each row
    assert "faster per request" not in md
    assert "are level on Decode speed per request (harmonic mean) at C2" in md
    assert "No preset is faster beyond noise" in md


def test_single_model_single_run(tmp_path):
    """One preset, one repeat, no tasks: no Winner column, no invented spread, no side_tasks.png."""
    make_job(tmp_path, 0, "solo", 1, 50, 5)
    make_job(tmp_path, 1, "solo", 4, 120, 9, seed=1)
    w = write_report(tmp_path)
    md = w.report_md.read_text()
    assert table_after(md, "## Summary")[0] == ["Metric", "solo"]
    assert "±" not in md.split("## Detailed Results")[1].split("## Side")[0]
    assert "Only one preset was measured (solo)" in md
    assert "declares no agents" in md
    assert not (tmp_path / "charts" / "side_tasks.png").exists()
    assert not (tmp_path / "charts" / "radar.png").exists()  # nothing to compare against
    assert (tmp_path / "charts" / "degradation.png").is_file()
    assert "uv run benchrun -m model=solo concurrency=1,4" in md


def test_optional_fields_rendered_when_present(tmp_path):
    extra = {"goodput": {"slo": {"ttft_ms": 200}, "share": 0.75, "rate_rps": 3.0},
             "energy": {"joules": 100.0, "tokens_per_joule": 4.8, "mean_power_w": 250.0}}
    make_job(tmp_path, 0, "m", 1, 50, 5, extra=extra)
    md = write_report(tmp_path, html=False, charts=False).report_md.read_text()
    rows = {r[0]: r for r in table_after(md, "## Summary")}
    assert rows["Goodput (C1)"][1] == "75%" and rows["Tokens per joule (C1)"][1] == "4.80 tok/J"
    assert "Peak memory" not in rows  # not measured: no row, no guess


def test_busy_machine_and_busy_client_are_findings(tmp_path):
    tel = lambda other, client: {"telemetry": {"enabled": True, "samples": 9, "cores": 2, "cpu": {
        "host_pct": 120.0 + other + client, "server_pct": 120.0, "client_pct": client, "other_pct": other}}}
    make_job(tmp_path, 0, "m", 1, 50, 5, extra=tel(other=130.0, client=20.0))
    make_job(tmp_path, 1, "m", 4, 50, 5, seed=1, extra=tel(other=5.0, client=97.0))
    md = write_report(tmp_path, html=False, charts=False).report_md.read_text()
    findings = md.split("## Key Findings")[1].split("\n## ")[0]
    assert "**Busy machine** at C1 for m: other processes used 130% of a core" in findings
    assert "**Busy client** at C4 for m: benchrun itself used 97% of a core" in findings
    assert findings.count("other processes used") == 1 and findings.count("benchrun itself used") == 1


def test_a_corrupt_result_is_a_failed_job_and_the_rest_still_reports(tmp_path):
    make_job(tmp_path, 0, "m", 1, 50, 5)
    bad = make_job(tmp_path, 1, "m", 4, 50, 5, seed=1)
    (bad / "result.json").write_text('{"schema_version": 1, "sta')  # a half-written file
    make_job(tmp_path, 2, "n", 1, 50, 5, seed=2)
    (tmp_path / "2_n_c1" / "result.json").write_text("[]")  # JSON, but not a result
    w = write_report(tmp_path, html=False, charts=False)
    md = w.report_md.read_text()
    assert (w.jobs, w.failed) == (3, 2)
    rows = {r[0]: r for r in table_after(md, "## Failed Jobs")}
    assert rows["1_m_c4"][1:4] == ["m", "C4", "unreadable"] and "JSONDecodeError" in rows["1_m_c4"][4]
    assert rows["2_n_c1"][3:] == ["unreadable", "unreadable result.json (not a benchrun result)"]
    assert table_after(md, "## Summary")[0] == ["Metric", "m"]  # the readable results are reported
    summary = (tmp_path / "summary.csv").read_text().splitlines()
    assert len(summary) == 4 and summary[2].startswith("1_m_c4,unreadable,")


def test_all_failed_still_reports(tmp_path):
    make_job(tmp_path, 0, "m", 1, 1, 1, status="failed", error="model file not found: /x.gguf")
    md = write_report(tmp_path, html=False, charts=False).report_md.read_text()
    assert "No job finished successfully" in md and "model file not found: /x.gguf" in md


def test_sweep_command_reconstruction(tmp_path):
    for num, (m, c) in enumerate([("a", 1), ("a", 2), ("b", 1), ("b", 2)]):
        make_job(tmp_path / "grid", num, m, c, 10, 1, n=3)
    assert sweep_command(load_jobs(tmp_path / "grid")) == ["uv run benchrun -m model=a,b concurrency=1,2"]
    for num, (m, c) in enumerate([("a", 1), ("b", 2)]):
        make_job(tmp_path / "partial", num, m, c, 10, 1, n=3)
    assert sweep_command(load_jobs(tmp_path / "partial")) == [
        "uv run benchrun model=a concurrency=1", "uv run benchrun model=b concurrency=2"]


def test_labels_keep_variants_apart(tmp_path):
    """A sweep over model.parallel: two columns for one model, never merged."""
    for num, par in enumerate((1, 3)):
        d = make_job(tmp_path, num, "m", 1, 50 * (num + 1), 5, seed=num)
        res = json.loads((d / "result.json").read_text())
        res["job"]["overrides"].append(f"model.parallel={par}")
        (d / "result.json").write_text(json.dumps(res))
    md = write_report(tmp_path, html=False, charts=False).report_md.read_text()
    assert table_after(md, "## Summary")[0] == ["Metric", "m (model.parallel=1)", "m (model.parallel=3)", "Winner"]
    assert re.search(r"model\.parallel=1,3", md)


def test_resume_override_is_ignored(tmp_path):
    """Older dirs of a resumed sweep carry resume=DIR on the rerun jobs only (in result.json, or
    in .hydra/overrides.yaml): still one column per model, and no resume= in Reproducing."""
    for num, (m, c) in enumerate([("a", 1), ("a", 2), ("b", 1), ("b", 2)]):
        d = make_job(tmp_path, num, m, c, 50 * (num + 1), 5, seed=num)
        res = json.loads((d / "result.json").read_text())
        if num == 1:
            res["job"]["overrides"].append(f"resume={tmp_path}")
        if num == 3:  # no overrides in result.json: read from Hydra's file
            (d / ".hydra").mkdir()
            (d / ".hydra" / "overrides.yaml").write_text(f"- model=b\n- concurrency=2\n- resume={tmp_path}\n")
            res["job"]["overrides"] = []
        (d / "result.json").write_text(json.dumps(res))
    md = write_report(tmp_path, html=False, charts=False).report_md.read_text()
    assert table_after(md, "## Summary")[0] == ["Metric", "a", "b", "Winner"]
    assert sweep_command(load_jobs(tmp_path)) == ["uv run benchrun -m model=a,b concurrency=1,2"]
    assert "resume=" not in md


def test_summary_written_even_when_the_report_fails(tmp_path, monkeypatch):
    """write_report writes summary.csv/json first: a failing chart still leaves them fresh."""
    import benchrun.report.charts as charts

    make_job(tmp_path, 0, "m", 1, 50, 5)

    def boom(*a, **k):
        raise RuntimeError("chart failed")

    monkeypatch.setattr(charts, "all_charts", boom)
    with pytest.raises(RuntimeError):
        write_report(tmp_path)
    rows = json.loads((tmp_path / "summary.json").read_text())
    assert [r["job"] for r in rows] == ["0_m_c1"] and (tmp_path / "summary.csv").is_file()


def test_report_says_plainly_when_generated_code_was_not_run_or_ran_unconfined(tmp_path):
    why = "no sandbox that contains generated code works here (bwrap: bubblewrap is not installed)"
    not_run = {**task("S2", "Unit Tests", "side", None, 2000, isolation=None),
               "checks": [{"name": "pytest_passes", "passed": None, "reason": f"not run: {why}", "duration_ms": 0.1}]}
    make_job(tmp_path / "a", 0, "m", 1, 100, 10, tasks=[not_run, task("S1", "Docstring", "side", True, 900)])
    md = write_report(tmp_path / "a", html=False, charts=False).report_md.read_text()
    findings = md.split("## Key Findings", 1)[1].split("\n## ", 1)[0]
    assert "**Generated code was not executed**: 1 check(s) that run code were not run" in findings
    assert why in findings
    side = {r[0]: r for r in table_after(md, "## Side Tasks")}
    assert side["S2 Unit Tests"][1].endswith("not run") and side["S1 Docstring"][1].endswith("PASS")
    assert "ran unconfined" not in md and "ran contained (bwrap)" in md

    make_job(tmp_path / "b", 0, "m", 1, 100, 10, tasks=[task("S1", "Docstring", "side", False, 900,
                                                              isolation="unconfined")])
    md = write_report(tmp_path / "b", html=False, charts=False).report_md.read_text()
    assert "**Generated code ran unconfined**" in md and "network access" in md
    assert "ran contained" not in md and "was not executed" not in md


def test_report_shows_the_code_each_verdict_judged(tmp_path):
    """Each checked turn's code block, read from requests.jsonl, under its verdict: cut at
    MAX_LINES, fenced so that backticks inside cannot end it, and the first repeat's reply."""
    from benchrun.report.generated import MAX_LINES
    long_body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES + 15))
    replies = {
        ("P", 1, 0): "Plan: read the file first.",
        ("P", 2, 0): f"Here it is:\n```python\ndef solve():\n{long_body}\n```\nDone.",
        ("P", 2, 1): "```python\ndef second_repeat(): pass\n```",
        ("S1", 1, 0): 'Sure.\n```py\nDOC = """```not a fence```"""\n```',
    }
    d = make_job(tmp_path, 0, "m", 1, 100, 10, repeats=2, tasks=[
        {**task("P", "Primary", "primary", False, 3000, reason="pytest: 2 failed"), "turns": 2,
         "truncated_turns": [2], "checks": [{"name": "pytest_passes", "passed": False, "turn": 2,
                                             "reason": "pytest: 2 failed", "duration_ms": 9.0}]},
        {**task("P", "Primary", "primary", True, 3000, rep=1), "checks": [
            {"name": "pytest_passes", "passed": True, "turn": 2, "reason": "", "duration_ms": 9.0}]},
        {**task("S1", "Docstring", "side", True, 900), "checks": [
            {"name": "has_docstrings", "passed": True, "turn": 1, "reason": "", "duration_ms": 1.0}]},
    ])
    w = RecordWriter(d / "requests.jsonl")
    for i, ((agent, turn, rep), text) in enumerate(replies.items()):
        w.write(RequestRecord(id=100 + i, repeat=rep, start_ns=0, end_ns=10, event_ns=[0, 5, 6, 7, 8],
                              event_kinds="rcfud", status=200, finish_reason="stop", done=True,
                              usage={"completion_tokens": 1}, tags={"agent": agent, "turn": turn}, text=text))
    w.close()
    md = write_report(tmp_path, html=False, charts=False).report_md.read_text()
    part = md.split("## Generated Code at C1", 1)[1]
    assert "**m** · P Primary · turn 2 (cut at max_tokens): **FAIL** — `pytest_passes`: pytest: 2 failed" in part
    assert "def solve():" in part and f"x{MAX_LINES - 2} = " in part and f"x{MAX_LINES} = " not in part
    assert "# … 16 more lines: the whole reply is in 0_m_c1/requests.jsonl" in part
    assert "second_repeat" not in part and "Plan: read the file" not in part  # first repeat, checked turn only
    assert "**m** · S1 Docstring · turn 1: **PASS**" in part
    # Backticks in the code: a four-backtick fence keeps the block whole.
    assert '````py\nDOC = """```not a fence```"""\n````' in part

    (d / "requests.jsonl").unlink()
    md = write_report(tmp_path, html=False, charts=False).report_md.read_text()
    assert "`0_m_c1/requests.jsonl` is missing, so the code behind the verdicts cannot be shown" in md


def test_a_move_noise_cannot_separate_is_stated_with_its_size_never_as_level(tmp_path):
    """8 requests a level with a wide spread: TTFT p50 rises ~1.9x from C1 to C2 but the
    requests' spread cannot separate it. The finding gives the size and says it cannot be told
    from noise; it does not call it level."""
    make_job(tmp_path, 0, "m", 1, 600, 10, n=8, jitter=0.9, seed=1)
    make_job(tmp_path, 1, "m", 2, 1100, 10, n=8, jitter=0.9, seed=11)
    md = write_report(tmp_path, html=False, charts=False).report_md.read_text()
    a, b = (j.value("ttft_ms.p50") for j in load_jobs(tmp_path))
    assert b > 1.5 * a
    assert (f"TTFT p50 {b / a:.1f}x higher from C1 to C2 ({a:.1f} ms → {b:.1f} ms; not separable from "
            "noise with n=8 requests: use repeats)") in md
    assert "stays level" not in md


def _series(ax) -> dict:
    """What an axis plots: {legend label: [y values]} from its bar or errorbar containers."""
    out = {}
    for cont in ax.containers:
        label = cont.get_label()
        if hasattr(cont, "patches"):  # bars
            out[label] = [p.get_height() for p in cont.patches]
        elif hasattr(cont, "lines") and cont.lines[0] is not None:  # errorbar's data line (not a bar's)
            out[label] = list(cont.lines[0].get_ydata())
    return out


def test_each_chart_plots_what_the_result_files_say(two_models):
    """Read back from each chart's Figure: the series, their order and values equal result.json
    (through Job.value), the radar's normalisation computed by hand; a metric whose presets differ
    more than 10x is points on a log axis, not bars; no label in scientific notation."""
    from benchrun.analysis.verdicts import build_groups
    from benchrun.report.charts import CHARTS

    jobs = load_jobs(two_models)
    (g,) = build_groups(jobs)
    val = {(j.model, j.concurrency): j for j in jobs if j.ok}

    def expect(key):
        return {lab: [val[(lab, c)].value(key) for c in (1, 3)] for lab in ("fast", "slow")}

    def same(got: dict, want: dict) -> bool:
        return list(got) == list(want) and all(got[k] == pytest.approx(want[k]) for k in want)

    a1, a2 = CHARTS["degradation"](g).axes
    for ax, key in ((a1, "ttft_ms.p50"), (a2, "wall_s")):
        assert same(_series(ax), expect(key)), key
    a1, a2 = CHARTS["throughput"](g).axes
    for ax, key in ((a1, "decode_tok_s.hmean"), (a2, "output_throughput_tok_s")):
        want = expect(key)
        assert same(_series(ax), want), key
        flat = [v for vs in want.values() for v in vs]
        wide = max(flat) / min(flat) > 10
        assert (ax.get_yscale() == "log") == wide and (not wide) == any(hasattr(c, "patches") for c in ax.containers)
        labels = [t.get_text() for t in ax.texts]
        assert len(labels) == 4 and not any("e+" in t or "e-" in t for t in labels), labels
    # Radar: one closed line per preset; each point the preset's value over the best on that axis
    # (lower is better: the best over the preset's), computed here by hand from result.json.
    def v(lab, c, key):
        return val[(lab, c)].value(key)

    def higher(d):
        return {k: x / max(d.values()) for k, x in d.items()}

    def lower(d):
        return {k: min(d.values()) / x for k, x in d.items()}

    labs = ("fast", "slow")
    stability = {lab: v(lab, 3, "ttft_ms.p50") / v(lab, 1, "ttft_ms.p50") for lab in labs}
    scaling = {lab: v(lab, 3, "output_throughput_tok_s") / v(lab, 1, "output_throughput_tok_s") for lab in labs}
    want = {
        "Decode speed C1": higher({lab: v(lab, 1, "decode_tok_s.hmean") for lab in labs}),
        "Decode speed C3": higher({lab: v(lab, 3, "decode_tok_s.hmean") for lab in labs}),
        "TTFT p50 C1": lower({lab: v(lab, 1, "ttft_ms.p50") for lab in labs}),
        "TTFT p50 C3": lower({lab: v(lab, 3, "ttft_ms.p50") for lab in labs}),
        "TTFT stability\n(C3/C1)": lower(stability),
        "Throughput scaling\n(C3/C1)": higher(scaling),
        "Aggregate tok/s C3": higher({lab: v(lab, 3, "output_throughput_tok_s") for lab in labs}),
        "Total time\nper repeat C3": lower({lab: v(lab, 3, "wall_s") for lab in labs}),
        "Peak memory": {"fast": 18432 / 20480, "slow": 1.0},  # the fixture's MiB: less is better
        "Quality checks C3": {"fast": 1.0, "slow": 0.0},  # 9/9 and 0/9 passed: the rate as it is
    }
    # The hand values say something: slow's TTFT p50 is best at C1 (60 vs 100 ms), fast's at C3
    # and fast degrades less, so each preset tops some lower-is-better axis.
    assert want["TTFT p50 C1"]["slow"] == 1.0 and want["TTFT p50 C1"]["fast"] == pytest.approx(0.6, rel=0.1)
    assert want["TTFT p50 C3"]["fast"] == 1.0 and want["TTFT stability\n(C3/C1)"]["fast"] == 1.0
    assert want["TTFT stability\n(C3/C1)"]["slow"] == pytest.approx((110 / 100) / (360 / 60), rel=0.1)
    ax = CHARTS["radar"](g).axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == list(want)
    lines = {ln.get_label(): list(ln.get_ydata()) for ln in ax.lines}
    assert set(lines) == set(labs)
    for lab in labs:
        ys = lines[lab]
        assert ys[0] == ys[-1] and len(ys) == len(want) + 1  # closed
        assert ys[:-1] == pytest.approx([w[lab] for w in want.values()]), lab
    side = CHARTS["side_tasks"](g).axes[0]
    assert [t.get_text() for t in side.texts] == ["PASS", "PASS", "FAIL", "FAIL"]


def test_latency_cdfs_plot_every_measured_request_of_each_job(two_models):
    """The latency CDF chart, read back from its Figure: per preset and level (C1 solid, C3
    dashed), the TTFT of every request in requests.jsonl and every gap between its tokens,
    sorted, each step 1/n higher -- computed here from the raw event stamps."""
    from benchrun.analysis.verdicts import build_groups
    from benchrun.report.charts import CHARTS

    (g,) = build_groups(load_jobs(two_models))
    a1, a2 = CHARTS["latency_cdf"](g).axes
    want_ttft, want_itl = {}, {}
    for i, lab in enumerate(("fast", "slow")):
        for c, style in ((1, "-"), (3, "--")):
            (d,) = two_models.glob(f"*_{lab}_c{c}")
            recs = [json.loads(line) for line in (d / "requests.jsonl").read_text().splitlines()]
            assert len(recs) == 90  # 30 requests x 3 repeats, none left out
            ttft, itl = [], []
            for r in recs:
                content = [ns for ns, k in zip(r["event_ns"], r["event_kinds"]) if k == "c"]
                ttft.append(content[0] / 1e6)
                itl += [(b - a) / 1e6 for a, b in zip(content, content[1:])]
            assert len(itl) == 90 * 15  # 16 tokens a request: 15 gaps each
            want_ttft[f"{lab} C{c} (n=90)"] = (sorted(ttft), f"C{i}", style)
            want_itl[f"{lab} C{c} (n={len(itl)})"] = (sorted(itl), f"C{i}", style)
    for ax, want in ((a1, want_ttft), (a2, want_itl)):
        got = {ln.get_label(): ln for ln in ax.lines}
        assert list(got) == list(want)
        for label, (xs, color, style) in want.items():
            ln = got[label]
            n = len(xs)
            assert list(ln.get_xdata()) == pytest.approx(xs, rel=1e-9), label
            assert list(ln.get_ydata()) == pytest.approx([k / n for k in range(1, n + 1)]), label
            assert ln.get_drawstyle() == "steps-post" and ln.get_color() == color and ln.get_linestyle() == style
    assert a2.get_xscale() == "log"


def test_value_labels_are_plain_numbers():
    from benchrun.report.charts import value_text

    assert [value_text(v) for v in (1810.4, 45.27, 0.0625, 0.00004)] == ["1,810", "45.3", "0.062", "4.0e-05"]


def test_a_metric_presets_differ_on_by_more_than_10x_is_points_on_a_log_axis(tmp_path):
    from benchrun.analysis.verdicts import build_groups
    from benchrun.report.charts import CHARTS, value_text

    make_job(tmp_path, 0, "quick", 1, 50, 1, seed=1)
    make_job(tmp_path, 1, "crawl", 1, 50, 40, seed=2)
    jobs = load_jobs(tmp_path)
    (g,) = build_groups(jobs)
    ax = CHARTS["throughput"](g).axes[0]  # decode speed: 40x apart
    assert ax.get_yscale() == "log" and not any(hasattr(c, "patches") for c in ax.containers)
    want = {j.model: [j.value("decode_tok_s.hmean")] for j in jobs}
    got = _series(ax)
    assert set(got) == set(want) and all(got[k] == pytest.approx(want[k]) for k in want)
    assert sorted(t.get_text() for t in ax.texts) == sorted(value_text(v[0]) for v in want.values())


def test_labels_read_recorded_settings_not_override_text(tmp_path):
    """A job that recorded job.settings is labelled from those values, however its override
    was spelled; an older one (overrides only) still gets the same label."""
    from benchrun.analysis.jobs import Job, settings_of
    from benchrun.analysis.verdicts import assign_labels

    def job(name, overrides, settings=None):
        j = {"overrides": overrides}
        if settings is not None:
            j["settings"] = settings
        return Job(tmp_path / name, {"model": {"name": "tiny"}, "job": j})

    new_2 = job("a", ["+model.parallel=2", "model=tiny"], {"model.parallel": 2, "model": "tiny", "fit_check": False})
    new_4 = job("b", ["model.parallel=4", "model=tiny"], {"model.parallel": 4, "model": "tiny", "fit_check": False})
    old_4 = job("c", ["model.parallel=4", "model=tiny", "fit_check=false"])
    assert settings_of(new_2.result) == {"model.parallel": "2", "model": "tiny", "fit_check": "false"}
    labels = assign_labels([new_2, new_4, old_4])
    assert [labels[id(j)] for j in (new_2, new_4, old_4)] == [
        "tiny (model.parallel=2)", "tiny (model.parallel=4)", "tiny (model.parallel=4)"]
