"""JSONL traces without a server: the shipped sample loads, bad files are one-line errors.
This half needs no server, process or socket; the rest is in tests/integration/test_replay.py."""
from __future__ import annotations

import pytest

from benchrun.config import WorkloadConfig
from benchrun.workloads import make_workload
from benchrun.workloads.replay import load_jsonl, resolve_path


def test_shipped_sample_and_bad_files(tmp_path):
    assert resolve_path("replay_sample.jsonl").is_file()
    assert len(load_jsonl(resolve_path("replay_sample.jsonl"))) == 4
    bad = tmp_path / "bad.jsonl"
    for text, msg in [("{not json\n", "bad.jsonl:1: not JSON"),
                      ('{"messages": [{"role": "assistant", "content": "x"}]}\n', "no user message"),
                      ('{"prompt": "x"}\n', "needs \"messages\""), ("\n", "no conversations")]:
        bad.write_text(text)
        with pytest.raises(ValueError, match=msg):
            load_jsonl(bad)
    with pytest.raises(ValueError, match="no such file 'missing.jsonl'"):
        resolve_path("missing.jsonl")
    with pytest.raises(ValueError, match="workload.path is required"):
        make_workload(WorkloadConfig(name="r", kind="replay"), 1)
