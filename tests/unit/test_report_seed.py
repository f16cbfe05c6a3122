"""The seed's own experiment rendered from a handmade result set that carries the seed's figures
(tests/support/handmade_seed.py): the report must read like the seed's -- the same Summary rows,
winners and recommendation, the seed's numbers in the cells, a handful of findings."""
from __future__ import annotations

import pytest
from support.handmade import table_after
from support.handmade_seed import seed_results

from benchrun.report import write_report


@pytest.fixture(scope="module")
def seed_md(tmp_path_factory):
    root = seed_results(tmp_path_factory.mktemp("seed"))
    w = write_report(root, html=False, charts=False)
    return w.report_md.read_text()


def test_summary_rows_and_winners_match_the_seed_table(seed_md):
    rows = {r[0]: r for r in table_after(seed_md, "## Summary")}
    assert rows["Metric"] == ["Metric", "qwen3coder", "qwen35", "Winner"]

    def cells(name):
        return [c.split(" ±")[0] for c in rows[name][1:3]], rows[name][3]

    # The seed: VRAM 20 vs 18 GB -> Qwen3.5; C1 86.1 vs 51.0 and C3 85.2 vs 50.4 tok/s -> Qwen3-Coder;
    # TTFT C1 170 vs 102 ms -> Qwen3.5, C3 105 vs 369 ms -> Qwen3-Coder; total time C3 3.47 vs 7.39 s.
    assert cells("Peak memory") == (["20480 MiB", "18432 MiB"], rows["Peak memory"][3])
    assert rows["Peak memory"][3].startswith("qwen35 (")
    vals, win = cells("Decode speed per request, harmonic mean (C1)")
    assert vals == ["86.1", "51.0"] and win.startswith("qwen3coder (1.7x)")
    vals, win = cells("Decode speed per request, harmonic mean (C3)")
    assert vals == ["85.2", "50.4"] and win.startswith("qwen3coder (1.7x)")
    vals, win = cells("TTFT p50 (C1)")
    assert vals == ["170.0", "102.0"] and win.startswith("qwen35 (1.7x)")
    vals, win = cells("TTFT p50 (C3)")
    assert vals == ["105.0", "369.0"] and win.startswith("qwen3coder (3.5x)")
    vals, win = cells("Total time per repeat (C3)")
    assert vals == ["3.47", "7.39"] and win.startswith("qwen3coder (2.1x)")
    assert rows["Quality checks (C3)"][1:] == ["2/2 PASS (6/6 runs)", "2/2 PASS (6/6 runs)", "Tie"]
    # With three repeats and gaps this size nothing on the seed's rows is a tie.
    assert not any(r[3].startswith("Tie") for name, r in rows.items() if name not in ("Metric", "Quality checks (C3)"))


def test_findings_and_recommendation_read_like_the_seed(seed_md):
    findings = seed_md.split("## Key Findings", 1)[1].split("\n## ", 1)[0]
    items = [ln for ln in findings.splitlines() if ln.startswith("- ")]
    assert 4 <= len(items) <= 6, items
    assert items[0].startswith("- **qwen3coder** decodes 1.7x faster per request than qwen35 at C3 (85.2")
    assert "finishes it 2.1x faster (3.47" in findings
    assert ("**qwen35** has 1.7x lower TTFT p50 than qwen3coder at C1 (102.0" in findings
            and "under load its TTFT p50 degrades 3.6x from C1 to C3 (102.0 ms → 369.0 ms)" in findings)
    assert "**qwen3coder** has 3.5x lower TTFT p50 than qwen35 at C3" in findings
    assert "improves 1.6x from C1 to C3 (170.0 ms → 105.0 ms)" in findings
    assert "**Both presets pass all quality checks**" in findings
    rec = seed_md.split("## Recommendation", 1)[1].split("\n## ", 1)[0]
    assert rec.startswith("\n\n**Pick qwen3coder** for speed")
    assert "qwen35 is still the better pick when first-token latency at C1 matters" in rec
    assert "when memory is tight: 2048 MiB less peak memory (18432 MiB vs 20480 MiB)" in rec
    assert "Mind quality" not in rec  # both pass everything


def test_side_tasks_and_reproducing_carry_the_seed(seed_md):
    side = {r[0]: r for r in table_after(seed_md, "## Side Tasks at C3")}
    assert side["S1 Docstring"][1:] == ["1776ms PASS", "2110ms PASS"]
    assert side["S2 Unit Tests"][1:] == ["2025ms PASS", "3279ms PASS"]
    assert "uv run benchrun -m experiment=qwen3_vs_qwen35 model=qwen3coder,qwen35 concurrency=1,2,3" in seed_md
