"""Server backends: launch a llama.cpp preset (or attach to a running server), wait for
health, stop it cleanly. `ServerPool` keeps one running across jobs of the same preset."""
from benchrun.servers.base import ServerError, ServerHandle, free_port, port_is_free
from benchrun.servers.pool import ServerPool, build_server

__all__ = ["ServerError", "ServerHandle", "ServerPool", "build_server", "free_port", "port_is_free"]
