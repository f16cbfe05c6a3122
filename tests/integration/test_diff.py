"""benchrun diff on hand-made dirs: a planted 20% TTFT regression is flagged (against a run-to-run
calibration, or by repeats), noise is not, and one run each without a calibration says it cannot
tell; comparability warnings; --fail-on; formats.
This half runs servers, processes or sockets; the parts that need none are in tests/unit/test_diff.py."""
from __future__ import annotations

import json

import pytest
from support.handmade import planted_regression, sweep


@pytest.fixture
def dirs(tmp_path):
    """base, noise, slow (+20% TTFT) and their calibration (support.handmade.planted_regression)."""
    return planted_regression(tmp_path)


def test_cli_fail_on_exit_codes(dirs, cli, capsys):
    from benchrun.cli import main

    base, noise, slow, cal = (str(dirs[k]) for k in ("base", "noise", "slow", "cal"))
    # the real command, as CI runs it
    proc, _ = cli("diff", base, slow, "--fail-on", "ttft_ms.p50:10", "--noise", cal)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "REGRESSION m / agentic / C1: ttft_ms.p50 worse by" in proc.stderr
    assert "beyond noise: calibrated floor" in proc.stderr
    assert any(line.startswith("   ttft_ms.p50") and "WORSE" in line for line in proc.stdout.splitlines())
    assert main(["diff", base, slow, "--fail-on", "ttft_ms.p50:30", "--noise", cal]) == 0  # 20% under a 30% bar
    capsys.readouterr()
    # Past the threshold, but one run each and no calibration: not fatal, and it says so.
    assert main(["diff", base, slow, "--fail-on", "ttft_ms.p50:10", "--no-calibration"]) == 0
    err = capsys.readouterr().err
    assert "CANNOT TELL m / agentic / C1: ttft_ms.p50 worse by" in err and "REGRESSION" not in err
    assert main(["diff", base, noise, "--fail-on", "ttft_ms.p50:5", "--fail-on", "decode_tok_s.mean:5",
                 "--noise", cal]) == 0
    out = capsys.readouterr().out
    table = [line for line in out.splitlines() if line.startswith("   ")]
    assert table and not [line for line in table if "WORSE" in line or "BETTER" in line]


def test_formats_and_warnings(tmp_path, cli, capsys):
    base = sweep(tmp_path / "b")
    cand = sweep(tmp_path / "c", sha="cd" * 32, jitter_seed=1)
    proc, _ = cli("diff", str(base), str(cand), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert [j["concurrency"] for j in data["jobs"]] == [1, 2]
    assert any("model file differs" in w for w in data["jobs"][0]["warnings"])
    keys = [m["key"] for m in data["jobs"][0]["metrics"]]
    assert {"ttft_ms.p50", "decode_tok_s.hmean", "output_throughput_tok_s", "wall_s"} <= set(keys)
    m = data["jobs"][0]["metrics"][keys.index("ttft_ms.p50")]
    assert m["abs"] == pytest.approx(m["cand"] - m["base"])
    from benchrun.cli import main

    capsys.readouterr()
    assert main(["diff", str(base), str(cand), "--format", "md"]) == 0
    out = capsys.readouterr().out
    assert "## m / agentic / C1" in out and "> **Not comparable:** model file differs" in out
    assert "| metric | baseline | candidate | abs | rel | verdict | noise |" in out
    assert "| wall_s per repeat (s) |" in out  # the diff names it: one repeat's time


def test_bad_input_subprocess(cli):
    proc, _ = cli("report", "/no/such/dir")
    assert proc.returncode == 2 and proc.stderr.strip() == "benchrun report: no such directory: /no/such/dir"
    assert "Traceback" not in proc.stderr
