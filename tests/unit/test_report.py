"""The end-of-sweep report hook on hand-made dirs: it follows the `report` key, and a report that
fails keeps the results.
This half needs no server, process or socket; the rest is in tests/integration/test_report.py."""
from __future__ import annotations


def test_report_hook_follows_the_report_key(tmp_path, capsys):
    """The end-of-run hook (cli._finish) writes the report only when cfg.report is true, and
    the summary either way."""
    from omegaconf import OmegaConf
    from support.handmade import make_job

    from benchrun.cli import _finish

    make_job(tmp_path, 0, "m", 1, 50, 5, n=5)
    _finish(OmegaConf.create({"report": False}), tmp_path)
    assert not (tmp_path / "report.md").exists()
    assert (tmp_path / "summary.csv").is_file()
    _finish(OmegaConf.create({"report": True}), tmp_path)
    assert (tmp_path / "report.md").is_file()
    assert capsys.readouterr().out.strip() == f"benchrun: report {tmp_path.resolve() / 'report.md'}"


def test_report_failure_keeps_results(tmp_path, capsys):
    """A report that cannot be written (report.md is a directory) costs one line at the end of
    a run, never an exception or the measured files. (The sweep above proves the hook is wired.)"""
    from omegaconf import OmegaConf
    from support.handmade import make_job

    from benchrun.cli import _finish

    d = make_job(tmp_path, 0, "m", 1, 50, 5, n=5)
    before = (d / "result.json").read_bytes()
    (tmp_path / "report.md").mkdir()
    _finish(OmegaConf.create({"report": True}), tmp_path)
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("benchrun: report failed (") and "results are intact" in out[0]
    assert (d / "result.json").read_bytes() == before and (d / "requests.jsonl").is_file()
