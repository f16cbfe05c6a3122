"""Connection reuse policy without a server: `auto` pools only servers that are not llama.cpp.
This half needs no server, process or socket; the rest is in tests/integration/test_connections.py."""
from __future__ import annotations

import pytest


def test_auto_pools_only_servers_that_are_not_llama_cpp():
    from benchrun.load.client import reuse_for

    assert reuse_for("auto", llama_cpp=False) and not reuse_for("auto", llama_cpp=True)
    assert reuse_for("always", llama_cpp=True) and not reuse_for("never", llama_cpp=False)
    with pytest.raises(ValueError, match="reuse_connections must be one of auto, always, never"):
        reuse_for("sometimes", llama_cpp=False)
