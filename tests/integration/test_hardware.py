"""hardware=auto detection (GPUs through an injected fake NVML; CPU/RAM through psutil),
profiles, and the server build string.
This half runs servers, processes or sockets; the parts that need none are in tests/unit/test_hardware.py."""
from __future__ import annotations

import stat
from pathlib import Path

from benchrun.servers.base import ServerHandle
from benchrun.servers.llama_server import server_version
from benchrun.servers.registry import backend_for


def test_build_info_falls_back_to_version(tmp_path: Path):
    binary = tmp_path / "llama-server"
    binary.write_text("#!/bin/sh\necho 'load_backend: loaded CPU backend' >&2\n"
                      "echo 'version: 6543 (deadbee)' >&2\necho 'built with cc for x86_64' >&2\n")
    binary.chmod(binary.stat().st_mode | stat.S_IEXEC)
    h = ServerHandle(backend="llama_server", url="http://x", command=[str(binary), "--port", "1"])
    assert backend_for(h.backend).build_info(h) == "version: 6543 (deadbee)"
    h.build_info = "b6543-deadbee"  # /props answered: that wins
    assert backend_for(h.backend).build_info(h) == "b6543-deadbee"
    e = ServerHandle(backend="embedded", url="http://x", build_info="b0-unknown")
    import xllamacpp

    assert backend_for(e.backend).build_info(e) == f"b0-unknown (xllamacpp {xllamacpp.__version__})"
    assert server_version(str(tmp_path / "nope")) is None
