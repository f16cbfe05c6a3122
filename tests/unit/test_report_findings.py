"""Key Findings that lead: at most six, ranked; a note that repeats over levels or presets is
one line saying where it applies; the rest in the Notes at the end; the Summary's reasons said
once each, as footnotes. Rendered from handmade result sets (no server)."""
from __future__ import annotations

import json

from support.handmade import footnote, make_job, table_after

from benchrun.report import write_report


def _noisy_sweep(root):
    """a vs b at C1-C3, one run each on a busy machine, every reply cut at max_tokens, b's
    client saturated at C3: the demo's situation that once gave 24 bullets."""
    num = 0
    for model, itl in (("a", 10), ("b", 11)):
        for c in (1, 2, 3):
            d = make_job(root, num, model, c, 100 * c, itl, n=10, seed=num)
            res = json.loads((d / "result.json").read_text())
            res["metrics"]["requests_cut_at_max_tokens"] = 10
            res["telemetry"] = {"enabled": True, "cpu": {"other_pct": 60.0 + 14 * num, "client_pct": 10.0}}
            if model == "b" and c == 3:
                res["client"] = {"saturated": True, "why": "the event loop lagged 40 ms behind its schedule"}
            (d / "result.json").write_text(json.dumps(res))
            num += 1
    return root


def test_repeated_notes_merge_into_one_line_each_and_findings_stay_few(tmp_path):
    w = write_report(_noisy_sweep(tmp_path), charts=False)
    md = w.report_md.read_text()
    findings = md.split("## Key Findings", 1)[1].split("\n## ", 1)[0]
    items = [ln for ln in findings.splitlines() if ln.startswith("- ")]
    assert 1 <= len(items) <= 6, items
    assert sum("max_tokens" in ln for ln in items) == 1
    assert "- **Replies cut at max_tokens** at C1-C3 for both presets: 60 in all (finish_reason length)" in findings
    assert "- **Busy machine** at C1-C3 for both presets: other processes used 60-130% of a core" in findings
    assert ("- **Client saturated** at C3 for b: the event loop lagged 40 ms behind its schedule. The load "
            "the client offered may be below") in findings
    # No preset wins on one busy run each: one line says so, with the gaps, not one line per axis.
    assert sum(ln.startswith("- **No winner**: one run each on a busy machine cannot tell") for ln in items) == 1
    assert "leads" not in findings
    # a decodes faster (ITL 10 vs 11 ms) and has the lower TTFT (same draws): it is ahead, not a winner
    assert "Ahead: a on decode speed (C1, C3)" in findings
    # Winner cells carry a marker; the reason is one footnote, said once.
    rows = table_after(md, "## Summary")[1:]
    cells = {r[-1] for r in rows if not r[0].startswith("Quality")}
    assert cells == {"Tie? ¹"}, cells
    assert footnote(md, "Tie? ¹").startswith("Busy machine: other processes took half a core")
    assert md.count("other processes took half a core") == 1
    # What did not make the findings closes the report, after Reproducing.
    assert md.index("## Notes") > md.index("## Reproducing")
    notes = md.split("## Notes", 1)[1]
    assert "not separable from noise with one run each" in notes
    # Both writers render the leads themselves: bold in Markdown, <strong> in HTML, never '**' there.
    page = w.report_html.read_text()
    assert "<li><strong>Replies cut at max_tokens</strong> at C1-C3 for both presets" in page
    assert "**" not in page.split("<body>", 1)[1]


def test_levels_and_presets_are_named_where_a_note_applies_only_there(tmp_path):
    from benchrun.analysis.verdicts import Group
    from benchrun.report.caveats import levels_text, where

    g = Group("w", ["a", "b"], [1, 2, 3, 4])
    assert levels_text([1, 2, 3], g) == "C1-C3" and levels_text([1, 3], g) == "C1 and C3"
    assert levels_text([2], g) == "C2" and levels_text([1, 2], g) == "C1 and C2"
    assert where([("a", 1), ("b", 1), ("a", 2), ("b", 2), ("a", 3), ("b", 3)], g) == "at C1-C3 for both presets"
    assert where([("a", 1), ("b", 2), ("b", 3)], g) == "at C1 for a, at C2 and C3 for b"


def test_presets_failing_every_check_share_one_line(tmp_path):
    fail = {"agent": "S1", "title": "Docstring", "role": "side", "repeat": 0, "turns": 1, "latency_ms": 900.0,
            "ttft_ms": 50.0, "output_tokens": 100, "passed": False, "isolation": "bwrap",
            "checks": [{"name": "has_docstrings", "passed": False, "reason": "no docstring found", "duration_ms": 3.0}]}
    for num, model in enumerate(("a", "b")):
        make_job(tmp_path, num, model, 1, 100, 10, seed=num, tasks=[fail])
    md = write_report(tmp_path, html=False, charts=False).report_md.read_text()
    findings = md.split("## Key Findings", 1)[1].split("\n## ", 1)[0]
    assert "- **a and b fail every quality check** (0/1 at C1 each)." in findings
    assert findings.count("fail") == 1
