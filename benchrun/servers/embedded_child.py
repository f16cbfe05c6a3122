"""Child process that runs llama.cpp's own C++ HTTP server from the xllamacpp wheel.

Run as `python -m benchrun.servers.embedded_child '<json params>'`; it serves until SIGTERM.
A child process (not a thread in benchrun) so the server's CPU work and crashes stay apart
from the client's, and stopping it is the same as stopping llama-server."""
from __future__ import annotations

import json
import signal
import sys


def main() -> None:
    p = json.loads(sys.argv[1])
    try:
        server = start(p)
    except (KeyError, AttributeError, ValueError, TypeError) as e:
        # A bad flag: one clear line at the end of server.log (benchrun shows the log tail).
        print(f"error: invalid server parameter: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        sys.exit(2)
    except RuntimeError as e:
        # llama.cpp logged the real cause (e.g. "couldn't bind HTTP server socket") above;
        # end the log with one line instead of a Python traceback.
        print(f"error: llama.cpp server failed to start ({e}); see the llama.cpp errors above",
              file=sys.stderr, flush=True)
        sys.exit(1)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"benchrun: embedded llama.cpp server listening on {server.listening_address}", flush=True)
    signal.pause()


def start(p: dict):
    """Build llama.cpp's params from the preset and start serving; returns the server."""
    import xllamacpp

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
    if p.get("threads"):
        params.cpuparams.n_threads = p["threads"]
        params.cpuparams_batch.n_threads = p["threads"]
    for kind in ("cache_type_k", "cache_type_v"):
        if p.get(kind):
            setattr(params, kind, getattr(xllamacpp.ggml_type, "GGML_TYPE_" + p[kind].upper()))
    if p.get("cache_ram_mib") is not None:  # 0: evicted slots' prompts are not kept in RAM
        params.cache_ram_mib = int(p["cache_ram_mib"])
    try:
        fa = {"on": "ENABLED", "off": "DISABLED", "auto": "AUTO"}[p["flash_attn"]]
    except KeyError:
        raise ValueError(f"flash_attn must be on, off or auto, got {p['flash_attn']!r}") from None
    params.flash_attn_type = getattr(xllamacpp.llama_flash_attn_type, "LLAMA_FLASH_ATTN_TYPE_" + fa)
    return xllamacpp.Server(params)  # serves while referenced


if __name__ == "__main__":
    main()
