"""Backend `llama_server`: a llama.cpp `llama-server` binary (a path, a name on PATH, or the
one `benchrun build-server` put in the cache), every flag built from the preset and checked
against the binary's own --help before launch."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any, Optional

from benchrun.servers.backend import Backend, Need
from benchrun.servers.base import ServerError, default_threads
from benchrun.servers.flags import Flag, check_flags


def find_llama_server(m: Any) -> str:
    """The binary named by the preset (BENCHRUN_LLAMA_SERVER / paths.llama_server: a path or a
    name on PATH); when it is the plain default name and PATH has none, the one
    `benchrun build-server` put in the cache."""
    binary = shutil.which(m.binary) or (m.binary if Path(m.binary).is_file() else None)
    if not binary and m.binary == "llama-server":
        from benchrun.provision.llamabuild import cached_llama_server

        cached = cached_llama_server()
        binary = str(cached) if cached else None
    if not binary:
        raise ServerError(f"llama-server binary not found: {m.binary!r} (run `benchrun build-server` "
                          f"to build one into the cache, or set paths.llama_server in "
                          f"conf/local/default.yaml or BENCHRUN_LLAMA_SERVER)")
    return binary


def llama_server_flags(m: Any, model_path: Path, port: int) -> list[Flag]:
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
    # Unset: benchrun's default (servers.base.default_threads), not llama.cpp's every core.
    flags.append(Flag("--threads", str(m.threads or default_threads()), "model.threads"))
    if m.cache_type_k:
        flags.append(Flag("--cache-type-k", m.cache_type_k, "model.cache_type_k"))
    if m.cache_type_v:
        flags.append(Flag("--cache-type-v", m.cache_type_v, "model.cache_type_v"))
    if m.cache_ram_mib is not None:
        flags.append(Flag("--cache-ram", str(m.cache_ram_mib), "model.cache_ram_mib"))
    return flags


def server_version(binary: str, timeout_s: float = 10.0) -> Optional[str]:
    """`llama-server --version` -> 'version: 6123 (abc1234)' line, or None."""
    try:
        p = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in (p.stdout + p.stderr).splitlines():
        if line.strip().startswith("version"):
            return line.strip()
    return None


class LlamaServer(Backend):
    name = "llama_server"
    own_fields = ("binary", "extra_args")  # extra_args: passed to the binary as given

    def command(self, m: Any, model_path: Optional[Path], port: int, binary: Optional[str] = None) -> list[str]:
        cmd = [binary or find_llama_server(m)]
        for f in llama_server_flags(m, model_path, port):
            cmd += [f.name] if f.value is None else [f.name, f.value]
        return cmd + [str(a) for a in m.extra_args]

    def missing(self, m: Any) -> list[str]:
        try:
            find_llama_server(m)
            return []
        except ServerError as e:
            return [str(e)]

    def show_command(self, m: Any, model_path: Optional[Path], port: int) -> tuple[list[str], list[str]]:
        try:
            binary = find_llama_server(m)
        except ServerError as e:  # shown with the configured name, and said
            return self.command(m, model_path, port, binary=m.binary), [str(e)]
        try:  # the same check a launch makes: a flag this build does not take is listed
            check_flags(binary, llama_server_flags(m, model_path, port))
        except ServerError as e:
            return self.command(m, model_path, port, binary=binary), [str(e)]
        return self.command(m, model_path, port, binary=binary), []

    def preflight(self, m: Any, model_path: Optional[Path], port: int) -> Optional[str]:
        # A flag this build does not take is one clear line, not a silent misconfig.
        return check_flags(find_llama_server(m), llama_server_flags(m, model_path, port))

    def build_info(self, handle: Any) -> Optional[str]:
        info = handle.build_info
        if info and "unknown" not in info:
            return info
        return (server_version(handle.command[0]) if handle.command else None) or info

    def prerequisite(self, model: dict, server: dict) -> Optional[Need]:
        return Need("served by llama-server, build {}.", str(server.get("build_info") or "unknown"))
