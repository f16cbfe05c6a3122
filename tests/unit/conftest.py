"""The unit tier's contract, enforced: a test here that starts a process or opens a network
connection (a server, a fake one on loopback, the CLI as a subprocess, the sandbox) fails and
says so; such a test belongs in tests/integration."""
from __future__ import annotations

import _posixsubprocess
import os
import socket
import subprocess

# matplotlib builds its font cache on first import by running `fc-list`, which the guard below
# would refuse (on a machine where matplotlib never ran, every chart test failed). Build it here,
# at collection, before any test runs: the cache is matplotlib's, not a test's process.
import matplotlib.font_manager  # noqa: E402,F401  (imported for its side effect)
import pytest
from support import composecache


def _refuse(what: str):
    def refuse(*args, **kwargs):
        raise AssertionError(f"a unit test must not {what}: it belongs in tests/integration")
    return refuse


@pytest.fixture(autouse=True)
def _no_processes_or_sockets(monkeypatch):
    start = _refuse("start a process")
    # Every Popen (subprocess.run, asyncio's subprocesses) ends in fork_exec; 3.11+ binds it
    # into subprocess itself, 3.10 calls it through the module.
    monkeypatch.setattr(_posixsubprocess, "fork_exec", start)
    if hasattr(subprocess, "_fork_exec"):
        monkeypatch.setattr(subprocess, "_fork_exec", start)
    monkeypatch.setattr(os, "fork", start)
    if hasattr(os, "posix_spawn"):
        monkeypatch.setattr(os, "posix_spawn", start)
    # bind/connect, not socket creation: an event loop's own self-pipe is a socketpair.
    for name in ("bind", "connect", "connect_ex"):
        monkeypatch.setattr(socket.socket, name, _refuse(f"{name} a socket"))


@pytest.fixture(autouse=True)
def _no_model_fetch(monkeypatch):
    """precheck fetches a packaged model once (pip, a download): the unit tier checks the
    command line only, so a fresh machine with no model cache behaves as a warm one. The
    fetch itself is tested in tests/integration/test_packaged.py."""
    from benchrun.provision import packaged

    monkeypatch.setattr(packaged, "ensure_packaged_model", lambda key, *a, **k: packaged.cached_path(key))


@pytest.fixture(autouse=True)
def _compose_once(monkeypatch):
    """Hydra composes each command line once per unit session (support/composecache.py: keyed
    on the overrides, the search path and every config file on it; a deep copy per caller)."""
    import hydra

    monkeypatch.setattr(hydra, "compose", composecache.compose)
