"""The `command` backend: any OpenAI-compatible server from the user's own argv template, here
the real llama-server (CI builds it), launched, health-checked on model.health_path, measured
and stopped like the built-in backends; a bad template is one line before anything runs.
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


def test_result_schema_names_every_registered_backend():
    from importlib import resources

    from benchrun.servers.registry import BACKENDS

    schema = json.loads(resources.files("benchrun").joinpath("schemas/result.schema.json").read_text())
    assert set(schema["properties"]["server"]["properties"]["backend"]["enum"]) == set(BACKENDS)
