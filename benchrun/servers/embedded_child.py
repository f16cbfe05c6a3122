"""Child process that runs llama.cpp's own C++ HTTP server from the xllamacpp wheel.

Run as `python -m benchrun.servers.embedded_child '<json params>'`; it serves until SIGTERM.
A child process (not a thread in benchrun) so the server's CPU work and crashes stay apart
from the client's, and stopping it is the same as stopping llama-server."""
from __future__ import annotations

import json
import signal
import sys


def main() -> None:
    import xllamacpp

    p = json.loads(sys.argv[1])
    params = xllamacpp.CommonParams()
    params.model.path = p["model_path"]
    params.port = p["port"]
    params.hostnames = [p["host"]]
    params.n_ctx = p["ctx_size"]
    params.n_parallel = p["parallel"]
    params.n_gpu_layers = p["n_gpu_layers"]
    params.kv_unified = p["kv_unified"]
    params.endpoint_metrics = p["metrics_endpoint"]
    params.endpoint_slots = True
    params.endpoint_props = True
    fa = {"on": "ENABLED", "off": "DISABLED", "auto": "AUTO"}[p["flash_attn"]]
    params.flash_attn_type = getattr(xllamacpp.llama_flash_attn_type, "LLAMA_FLASH_ATTN_TYPE_" + fa)
    if p.get("threads"):
        params.cpuparams.n_threads = p["threads"]
        params.cpuparams_batch.n_threads = p["threads"]
    for kind in ("cache_type_k", "cache_type_v"):
        if p.get(kind):
            setattr(params, kind, getattr(xllamacpp.ggml_type, "GGML_TYPE_" + p[kind].upper()))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server = xllamacpp.Server(params)  # noqa: F841 -- serves while referenced
    print(f"benchrun: embedded llama.cpp server listening on {server.listening_address}", flush=True)
    signal.pause()


if __name__ == "__main__":
    main()
