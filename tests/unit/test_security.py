"""Every shipped preset binds loopback unless it says otherwise (composed, nothing started).
This half needs no server, process or socket; the rest is in tests/integration/test_security.py."""
from __future__ import annotations


def test_every_preset_binds_loopback_unless_it_says_otherwise(compose):
    from benchrun.config import ModelConfig

    assert ModelConfig.host == "127.0.0.1"
    for name in ("tiny", "tiny_wide", "qwen35", "qwen3coder"):
        assert compose([f"model={name}"]).model.host == "127.0.0.1", name
