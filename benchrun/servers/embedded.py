"""Backend `embedded`: llama.cpp's own C++ server from the xllamacpp wheel, run as a child
process (servers/embedded_child.py), so nothing but pip is needed."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional

from benchrun.servers.backend import Backend
from benchrun.servers.base import default_threads


def wheel_version() -> Optional[str]:
    try:
        import xllamacpp

        return f"xllamacpp {xllamacpp.__version__}"
    except Exception:  # noqa: BLE001
        return None


class Embedded(Backend):
    name = "embedded"

    def command(self, m: Any, model_path: Optional[Path], port: int) -> list[str]:
        params = {"model_path": str(model_path), "host": m.host, "port": port, "ctx_size": m.ctx_size,
                  "parallel": m.parallel, "n_gpu_layers": m.n_gpu_layers, "kv_unified": m.kv_unified,
                  "metrics_endpoint": m.metrics_endpoint, "flash_attn": m.flash_attn,
                  "threads": m.threads or default_threads(), "cache_type_k": m.cache_type_k,
                  "cache_type_v": m.cache_type_v, "cache_ram_mib": m.cache_ram_mib}
        return [sys.executable, "-m", "benchrun.servers.embedded_child", json.dumps(params)]

    def build_info(self, handle: Any) -> Optional[str]:
        # The wheel's server reports 'b0-unknown': its package version says which llama.cpp it is.
        info = handle.build_info
        if info and "xllamacpp" in info:
            return info  # a reused server keeps what the first job found
        ver = wheel_version()
        return f"{info} ({ver})" if info and ver else (ver or info)
