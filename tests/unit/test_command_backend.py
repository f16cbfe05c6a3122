"""The `command` backend without a server: the argv template is filled per argument and nothing
else is special; the result schema names every registered backend.
This half needs no server, process or socket; the rest is in tests/integration/test_command_backend.py."""
from __future__ import annotations

import json

from benchrun.config import ModelConfig
from benchrun.servers.registry import backend_for


def test_the_template_is_filled_per_argument_and_nothing_else_is_special(tmp_path):
    m = ModelConfig(name="p", backend="command", ctx_size=2048, parallel=3, threads=2,
                    command=["srv", "--model={model}", "-p", "{port}", "--cfg", '{"a": {"b": 1}}', "{nope}"])
    b = backend_for("command")
    assert b.command(m, tmp_path / "m.gguf", 8123) == [
        "srv", f"--model={tmp_path / 'm.gguf'}", "-p", "8123", "--cfg", '{"a": {"b": 1}}', "{nope}"]
    assert b.needs_model_file(m) and not b.sets_context(m)  # no {ctx_size}: the server decides
    assert not b.needs_model_file(ModelConfig(name="p", backend="command", command=["srv", "{port}"]))


def test_unset_threads_are_benchruns_llama_cpp_default_never_an_empty_argument():
    from benchrun.servers.base import default_threads

    m = ModelConfig(name="p", backend="command", command=["srv", "--threads", "{threads}", "{port}"])
    assert m.threads is None
    argv = backend_for("command").command(m, None, 8123)
    assert argv[2] == str(default_threads()) and int(argv[2]) >= 1


def test_result_schema_names_every_registered_backend():
    from importlib import resources

    from benchrun.servers.registry import BACKENDS

    schema = json.loads(resources.files("benchrun").joinpath("schemas/result.schema.json").read_text())
    assert set(schema["properties"]["server"]["properties"]["backend"]["enum"]) == set(BACKENDS)
