"""The flags benchrun passes to llama-server are checked against the binary's own --help.

Fast tests use stand-in binaries whose --help is laid out exactly as llama.cpp's
common_arg::to_string() writes it (b11434); tests/integration/test_llama_server_real.py checks the real
binary's help.
This half runs servers, processes or sockets; the parts that need none are in tests/unit/test_flags.py."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.fakes import OPTIONS, help_of

from benchrun.config import ModelConfig
from benchrun.servers import ServerError, build_server
from benchrun.servers.flags import Flag, check_flags, help_text
from benchrun.servers.llama_server import llama_server_flags


def fake_binary(tmp_path: Path, help_text_: str, name: str = "llama-server") -> Path:
    """A binary that prints `help_text_` for --help and counts the calls; run any other way it
    leaves a mark (it must never be launched when its flags do not fit)."""
    d = tmp_path / name
    d.mkdir()
    (d / "help.txt").write_text(help_text_)
    b = d / "llama-server"
    b.write_text(f'#!/bin/sh\nif [ "$1" = --help ]; then echo x >> {d}/calls; cat {d}/help.txt; exit 0; fi\n'
                 f'touch {d}/launched; exit 1\n')
    b.chmod(0o755)
    return b


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCHRUN_CACHE", str(tmp_path / "cache"))


FULL = ModelConfig(name="p", backend="llama_server", kv_unified=True, threads=2, cache_type_k="q8_0",
                   cache_type_v="q8_0", metrics_endpoint=True)


def test_every_flag_benchrun_emits_for_a_full_preset_passes_on_the_checked_build(tmp_path):
    b = fake_binary(tmp_path, help_of())
    emitted = llama_server_flags(FULL, Path("/m.gguf"), 8080)
    assert {f.name for f in emitted} == {"--model", "--host", "--port", "--ctx-size", "--n-gpu-layers",
                                         "--parallel", "--flash-attn", "--metrics", "--kv-unified",
                                         "--threads", "--cache-type-k", "--cache-type-v"}
    assert check_flags(str(b), emitted) is None


def test_a_flag_the_build_lacks_names_the_flag_its_preset_field_and_the_binary(tmp_path):
    older = [o for o in OPTIONS if "--kv-unified" not in o[0]]
    b = fake_binary(tmp_path, help_of(older))
    with pytest.raises(ServerError) as e:
        check_flags(str(b), llama_server_flags(FULL, Path("/m.gguf"), 8080))
    msg = str(e.value)
    assert msg.startswith(f"llama-server {b} (build 11434) has no --kv-unified option (benchrun passes it "
                          f"for model.kv_unified)") and "benchrun build-server" in msg and "\n" not in msg


def test_a_switch_where_benchrun_passes_a_value_is_refused_not_left_to_swallow_the_next_argument(tmp_path):
    # Older llama.cpp: a bare -fa. `--flash-attn auto` would make "auto" a stray argument.
    old_fa = [(n, None, t) if "--flash-attn" in n else (n, h, t) for n, h, t in OPTIONS]
    b = fake_binary(tmp_path, help_of(old_fa))
    with pytest.raises(ServerError, match=r"takes --flash-attn as a switch, benchrun passes "
                                          r"`--flash-attn auto` \(for model.flash_attn\)"):
        check_flags(str(b), llama_server_flags(ModelConfig(name="p"), Path("/m.gguf"), 1))
    # ...and the reverse: a switch that became an option with a value.
    metrics_valued = [(n, "on|off", t) if n == ["--metrics"] else (n, h, t) for n, h, t in OPTIONS]
    b2 = fake_binary(tmp_path, help_of(metrics_valued), "b2")
    with pytest.raises(ServerError, match=r"expects a value after --metrics"):
        check_flags(str(b2), llama_server_flags(ModelConfig(name="p"), Path("/m.gguf"), 1))


def test_help_is_read_once_per_binary_and_again_when_the_binary_changes(tmp_path):
    b = fake_binary(tmp_path, help_of())
    calls = b.parent / "calls"
    for _ in range(3):
        check_flags(str(b), [Flag("--metrics", None, "model.metrics_endpoint")])
    assert calls.read_text().count("x") == 1
    b.write_text(b.read_text() + "\n")  # a rebuilt binary: new size and mtime
    assert "--port" in help_text(str(b))
    assert calls.read_text().count("x") == 2


def test_a_binary_without_a_readable_help_is_not_checked_and_says_so(tmp_path):
    b = tmp_path / "llama-server"
    b.write_text('#!/bin/sh\necho "error: invalid argument: --help" >&2\nexit 2\n')
    b.chmod(0o755)
    note = check_flags(str(b), [Flag("--metrics", None, "model.metrics_endpoint")])
    assert note == f"benchrun: `{b} --help` lists no llama-server options; flags not checked"


def test_a_preset_whose_flags_the_binary_lacks_is_refused_before_launch(tmp_path, tiny_model_path):
    older = [o for o in OPTIONS if "--metrics" not in o[0]]
    b = fake_binary(tmp_path, help_of(older))
    m = ModelConfig(name="p", backend="llama_server", binary=str(b), path=str(tiny_model_path))
    with pytest.raises(ServerError, match="has no --metrics option .*model.metrics_endpoint"):
        build_server(m, tmp_path / "server.log")
    assert not (b.parent / "launched").exists()


def test_presets_lists_a_flag_the_binary_lacks_as_a_problem(cli, tmp_path, tiny_model_path):
    older = [o for o in OPTIONS if "--flash-attn" not in o[0]]
    b = fake_binary(tmp_path, help_of(older))
    proc, _ = cli("presets", "--json", "qwen3coder", f"paths.llama_server={b}",
                  f"model.path={tiny_model_path}", env={"BENCHRUN_CACHE": str(tmp_path / "cache")})
    assert proc.returncode == 0, proc.stderr
    problems = json.loads(proc.stdout)["presets"][0]["problems"]
    assert len(problems) == 1 and "has no --flash-attn option (benchrun passes it for model.flash_attn)" in problems[0]
