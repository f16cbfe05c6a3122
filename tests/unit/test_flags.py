"""The llama.cpp --help layout (support.fakes, as common_arg::to_string() writes it, b11434)
parses into flags and whether each takes a value.
This half needs no server, process or socket; the rest is in tests/integration/test_flags.py."""
from __future__ import annotations

from support.fakes import help_of

from benchrun.servers.flags import parse_help


def test_the_help_layout_parses_into_flags_and_whether_they_take_a_value():
    flags = parse_help(help_of())
    assert flags["--ctx-size"] is True and flags["-c"] is True
    assert flags["--flash-attn"] is True and flags["-fa"] is True
    assert flags["--metrics"] is False and flags["--kv-unified"] is False and flags["--no-kv-unified"] is False
    assert flags["--n-gpu-layers"] is True and flags["-ngl"] is True
    assert "-----" not in flags and "(default:" not in " ".join(flags)
