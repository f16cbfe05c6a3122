"""The llama.cpp --help layout (support.fakes, as common_arg::to_string() writes it, b11434)
parses into flags and whether each takes a value.
This half needs no server, process or socket; the rest is in tests/integration/test_flags.py."""
from __future__ import annotations

from pathlib import Path

from support.fakes import help_of

from benchrun.servers.flags import parse_help


def test_the_help_layout_parses_into_flags_and_whether_they_take_a_value():
    flags = parse_help(help_of())
    assert flags["--ctx-size"] is True and flags["-c"] is True
    assert flags["--flash-attn"] is True and flags["-fa"] is True
    assert flags["--metrics"] is False and flags["--kv-unified"] is False and flags["--no-kv-unified"] is False
    assert flags["--n-gpu-layers"] is True and flags["-ngl"] is True
    assert "-----" not in flags and "(default:" not in " ".join(flags)


def test_llama_server_gets_benchrun_default_threads_when_the_preset_sets_none(monkeypatch):
    """llama.cpp's own default is every physical core, which stalls all its threads whenever
    anything else (benchrun's client) runs: unset model.threads leaves one core free."""
    import psutil

    from benchrun.config import ModelConfig
    from benchrun.servers import base
    from benchrun.servers.llama_server import llama_server_flags

    def threads(m):
        return {f.name: f.value for f in llama_server_flags(m, Path("m.gguf"), 8080)}["--threads"]

    monkeypatch.setattr(base.os, "sched_getaffinity", lambda pid: set(range(2)))
    monkeypatch.setattr(psutil, "cpu_count", lambda logical=True: 2)
    assert threads(ModelConfig(name="p", backend="llama_server")) == "1"  # 2 cores: one left free
    assert threads(ModelConfig(name="p", backend="llama_server", threads=2)) == "2"  # set: as given
    monkeypatch.setattr(base.os, "sched_getaffinity", lambda pid: set(range(32)))
    monkeypatch.setattr(psutil, "cpu_count", lambda logical=True: 16 if logical is False else 32)
    assert threads(ModelConfig(name="p", backend="llama_server")) == "16"  # SMT: physical, as llama.cpp
