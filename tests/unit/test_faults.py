"""Faults without a server: a crash in the middle of writing result.json never leaves half a
file; the cause read from a server log skips a crash backtrace and prefers error lines.
This half needs no server, process or socket; the rest is in tests/integration/test_faults.py."""
from __future__ import annotations

import os

import pytest

from benchrun.results import write_result


def test_a_crash_mid_write_never_leaves_a_half_written_result(tmp_path, monkeypatch):
    from benchrun import results

    good = {"status": "ok", "marker": "first"}
    monkeypatch.setattr(results, "validate_result", lambda r: None)
    write_result(tmp_path, good)
    before = (tmp_path / "result.json").read_text()

    def crash(fd):  # the process dies after part of the new text reached the disk
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(KeyboardInterrupt):
        write_result(tmp_path, {"status": "failed", "marker": "x" * 1_000_000})
    assert (tmp_path / "result.json").read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]  # no temp file left


def test_log_cause_skips_a_crash_backtrace_and_prefers_error_lines(tmp_path):
    from benchrun.servers.base import log_cause

    log = tmp_path / "server.log"
    log.write_text("I srv init: loading model\nW llama_context: n_ctx rounded down\n"
                   "common.cpp:2245: get_sub_batch: failed to add token 2 at index 1\n\n"
                   "[New LWP 12121]\n[Thread debugging using libthread_db enabled]\n"
                   "#0  0x00007f in __GI___wait4 () at ../wait4.c:30\n#1  0x0000 in ggml_abort ()\n"
                   "[Inferior 1 (process 7718) detached]\n")
    assert log_cause(log) == "common.cpp:2245: get_sub_batch: failed to add token 2 at index 1"
    log.write_text("line one\nline two\n")  # nothing names an error: the last lines
    assert log_cause(log) == "line one\nline two"
    assert log_cause(tmp_path / "absent.log") == ""
